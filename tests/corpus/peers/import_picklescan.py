"""Maintainer tool: copy picklescan's test samples (tests/data, tests/data2) with their upstream labels.

picklescan's tests assert, per file, which globals it must report and how dangerous each is
(tests/test_scanner.py); a file with a Dangerous or Suspicious global there is labelled malicious here,
one with only Innocuous globals (or none) benign. The files are copied byte for byte; none is loaded.
Run: `.venv/bin/python tests/corpus/peers/import_picklescan.py UPSTREAM_CHECKOUT COMMIT`.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENIGN = {"benign0_v0.pkl", "benign0_v3.pkl", "benign0_v4.pkl", "benign_password_protected.zip", "bad_pytorch.pt",
          "new_pytorch_model.bin", "pytorch_model.bin", "not_a_pickle.bin", "int_array.npy", "int_arrays.npz",
          "int_arrays_compressed.npz", "object_array.npy", "object_arrays.npz", "object_arrays_compressed.npz"}
# Malicious by intent, but CPython's loader stops before anything runs.
NOT_EXECUTABLE = {
    "broken_model.pkl": "BINUNICODE declares 543,558,206 bytes in a 95-byte file: CPython stops with 'pickle data "
                        "was truncated' before the REDUCE that would call exec",
}


def main(argv: list[str]) -> int:
    checkout, commit = Path(argv[0]).resolve(), argv[1]
    out = HERE / "picklescan"
    out.mkdir(exist_ok=True)
    rows = []
    for folder in ("tests/data", "tests/data2"):
        for path in sorted((checkout / folder).iterdir()):
            if not path.is_file():
                continue
            target = out / f"{path.parent.name}-{path.name}"
            shutil.copyfile(path, target)
            row: dict[str, object] = {
                "file": target.relative_to(HERE).as_posix(), "peer": "picklescan",
                "source": {"repo": "mmaitre314/picklescan", "commit": commit, "path": f"{folder}/{path.name}",
                           "test": "tests/test_scanner.py"},
                "label": "benign" if path.name in BENIGN else "malicious"}
            if path.name in NOT_EXECUTABLE:
                row["executes"] = False
                row["reason"] = NOT_EXECUTABLE[path.name]
            rows.append(row)
    manifest = HERE / "manifest.json"
    existing = json.loads(manifest.read_text()) if manifest.exists() else []
    manifest.write_text(json.dumps([r for r in existing if r.get("peer") != "picklescan"] + rows, indent=1) + "\n")
    print(f"{len(rows)} picklescan samples")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
