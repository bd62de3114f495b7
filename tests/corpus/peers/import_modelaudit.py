"""Maintainer tool: copy modelaudit's stored pickle test assets (tests/assets) with labels.

modelaudit keeps its fixtures as files; each is labelled here from its upstream folder and name
(exploits/, *_attack, malicious_*, evil: malicious; safe_*, license scenarios: benign). The files are
copied byte for byte; none is loaded. Run:
`.venv/bin/python tests/corpus/peers/import_modelaudit.py UPSTREAM_CHECKOUT COMMIT`.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
_GZIP_ABOVE = 256 * 1024
_EXTENSIONS = (".pkl", ".pickle", ".pt", ".npy")
BENIGN = ("safe_", "simple_nested", "license_scenarios/")
# Malicious in intent, but a load runs nothing: plain dicts of strings and bytes that the loading
# program would itself have to decode and unpickle.
PLAIN_DATA = ("decode_exec_chain", "nested_pickle_", "malicious_model_realistic")
_PLAIN_REASON = ("plain data: a dict of strings and bytes (base64, hex or raw pickles) and no import; nothing "
                 "runs unless the loading program decodes and unpickles them itself")
# Large license-scenario files left out: a float array, and a pickle of the writing script's own class
# (`__main__.AGPLNeuralNetwork`: high by the allowlist policy, as tests/unit/analyzers covers).
SKIPPED = ("embeddings.npy", "agpl_model.pkl")


def main(argv: list[str]) -> int:
    checkout, commit = Path(argv[0]).resolve(), argv[1]
    out = HERE / "modelaudit"
    out.mkdir(exist_ok=True)
    rows = []
    for path in sorted((checkout / "tests/assets").rglob("*")):
        if not path.is_file() or path.suffix not in _EXTENSIONS or path.name in SKIPPED:
            continue
        rel = path.relative_to(checkout).as_posix()
        target = out / rel.removeprefix("tests/assets/").replace("/", "-")
        if path.stat().st_size > _GZIP_ABOVE:  # stored compressed, scanned through the gzip reader
            target = target.with_name(target.name + ".gz")
            target.write_bytes(gzip.compress(path.read_bytes(), mtime=0))
        else:
            shutil.copyfile(path, target)
        row: dict[str, object] = {
            "file": target.relative_to(HERE).as_posix(), "peer": "modelaudit",
            "source": {"repo": "promptfoo/modelaudit", "commit": commit, "path": rel, "test": "tests/"},
            "label": "benign" if any(b in rel for b in BENIGN) else "malicious"}
        if any(p in path.name for p in PLAIN_DATA):
            row |= {"executes": False, "reason": _PLAIN_REASON}
        rows.append(row)
    manifest = HERE / "manifest.json"
    existing = json.loads(manifest.read_text()) if manifest.exists() else []
    manifest.write_text(json.dumps([r for r in existing if r.get("peer") != "modelaudit"] + rows, indent=1) + "\n")
    print(f"{len(rows)} modelaudit samples")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
