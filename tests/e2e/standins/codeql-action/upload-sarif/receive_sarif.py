"""What the upload-sarif stand-in does: check the SARIF the way an upload would, then record it.

Checks: the file(s) exist and parse as JSON, `version` is 2.1.0, `runs` is a non-empty list, each run
names its tool and has a results list, and when a run carries `automationDetails.id` it agrees with
the category input (otherwise GitHub files the alerts under the run's own id, not the category).
Records one JSON line per file in $E2E_RECORD_DIR/upload-sarif.jsonl and a copy under sarif/.
Standard library only: it runs on the host's python3, outside the project's venv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path


def _files(target: Path) -> list[Path]:
    if target.is_dir():
        return sorted(target.rglob("*.sarif"))
    return [target] if target.is_file() else []


def check(doc: object, category: str) -> list[str]:
    """Problems an upload would hit; empty when the SARIF is acceptable."""
    if not isinstance(doc, dict):
        return ["top level is not a JSON object"]
    problems = []
    if doc.get("version") != "2.1.0":
        problems.append(f"version is {doc.get('version')!r}, not '2.1.0'")
    runs = doc.get("runs")
    if not isinstance(runs, list) or not runs:
        return [*problems, "runs is missing or empty"]
    want = category.rstrip("/") + "/" if category else None
    for i, run in enumerate(runs):
        if not isinstance(run, dict):
            problems.append(f"runs[{i}] is not an object")
            continue
        if not (run.get("tool") or {}).get("driver", {}).get("name"):
            problems.append(f"runs[{i}].tool.driver.name is missing")
        if not isinstance(run.get("results"), list):
            problems.append(f"runs[{i}].results is not a list")
        got = (run.get("automationDetails") or {}).get("id")
        if want and got is not None and not str(got).startswith(want):
            problems.append(f"runs[{i}].automationDetails.id {got!r} does not match category {category!r}")
    return problems


def main() -> int:
    record = Path(os.environ["E2E_RECORD_DIR"])
    category = os.environ.get("CATEGORY", "")
    target = Path(os.environ.get("SARIF_FILE", ""))
    files = _files(target)
    if not files:
        print(f"::error::upload-sarif stand-in: no SARIF at {target}")
        return 1
    (record / "sarif").mkdir(parents=True, exist_ok=True)
    failed = False
    for f in files:
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            print(f"::error::upload-sarif stand-in: {f}: not readable JSON: {e}")
            failed = True
            continue
        problems = check(doc, category)
        for p in problems:
            print(f"::error::upload-sarif stand-in: {f}: {p}")
        failed = failed or bool(problems)
        seq = len(list((record / "sarif").iterdir()))
        copy = record / "sarif" / f"{seq:02d}-{re.sub(r'[^A-Za-z0-9._-]+', '_', category or 'none')}.sarif"
        shutil.copyfile(f, copy)
        results = [r for run in doc.get("runs") or [] for r in run.get("results") or []] if not problems else []
        entry = {"category": category, "sarif_file": str(f), "copy": str(copy), "valid": not problems,
                 "checkout_path": os.environ.get("CHECKOUT_PATH", ""),
                 "rule_ids": [r.get("ruleId") for r in results]}
        with (record / "upload-sarif.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
        print(f"upload-sarif stand-in: {f} -> category {category!r}, {len(results)} results")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
