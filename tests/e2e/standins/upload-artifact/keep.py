"""What the upload-artifact stand-in does: copy the named files to $E2E_RECORD_DIR/artifacts/<name>/.

Paths are kept relative to the least common ancestor folder of everything uploaded, the layout the real
action gives (one file -> just its name; `a/x` and `b/y` -> `a/x`, `b/y`). An artifact name used twice
in one run is an error, as on GitHub. Standard library only: it runs on the host's python3.

Fault injection: an artifact named in $E2E_SWAP_ARTIFACTS (one name per line) is stored with every SARIF
run's results emptied and its result counts zeroed, as an attacker who swaps a stage's SARIF for a clean
one between the stage job and the gate would leave it (same run id, valid SARIF, other bytes).
A line `NAME FILE` of $E2E_TAMPER_ARTIFACTS stores the artifact NAME with one byte appended to its FILE (a path
inside the artifact), as an attacker who changes a signed file in the artifact store after the sign job would.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path


def main() -> int:
    name = os.environ.get("NAME", "artifact")
    out = Path(os.environ["E2E_RECORD_DIR"]) / "artifacts" / name
    named = [line.strip() for line in os.environ.get("FILES", "").splitlines() if line.strip()]
    found = [Path(n).resolve() for n in named if Path(n).exists()]
    if not found:
        if os.environ.get("IF_NONE") == "error":
            print(f"::error::upload-artifact stand-in: no files found for {name}")
            return 1
        print(f"upload-artifact stand-in: no files for {name}")
        return 0
    if out.exists():
        print(f"::error::upload-artifact stand-in: an artifact named {name} was already uploaded in this run")
        return 1
    base = Path(os.path.commonpath([p if p.is_dir() else p.parent for p in found]))
    for p in found:
        target = out / p.relative_to(base) if p != base else out
        if p.is_dir():
            shutil.copytree(p, target, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, target)
    if name in os.environ.get("E2E_SWAP_ARTIFACTS", "").split():
        for sarif in out.rglob("*.sarif"):
            doc = json.loads(sarif.read_text(encoding="utf-8"))
            for run in doc.get("runs") or []:
                run["results"] = []
                # A careful forger also zeroes the true counts the gate reads (they survive truncation).
                props = run.setdefault("properties", {})
                props["mlsec-result-counts"] = {k: 0 for k in ("total", "info", "low", "medium", "high", "critical")}
                props["mlsec-truncated"] = False
            sarif.write_text(json.dumps(doc), encoding="utf-8")
        print(f"upload-artifact stand-in: swapped the SARIF in {name} for a clean one (fault injection)")
    for line in os.environ.get("E2E_TAMPER_ARTIFACTS", "").splitlines():
        tampered, _, file = line.strip().partition(" ")
        if tampered == name and file:
            if not (out / file).is_file():
                print(f"::error::upload-artifact stand-in: {name} has no file {file} to tamper with")
                return 1
            with (out / file).open("ab") as handle:
                handle.write(b"\n")
            print(f"upload-artifact stand-in: appended a byte to {file} in {name} (fault injection)")
    print(f"upload-artifact stand-in: kept {len(found)} path(s) as {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
