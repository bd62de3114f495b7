"""Write the copy of a stage's SARIF that is uploaded to code scanning, under the category asked for.

GitHub files an uploaded run under its own `automationDetails.id` and ignores upload-sarif's `category`
input when the run has one (ours always do: `mlsec/<stage>/`). So a category other than the stage's own
(a second call of a pipeline, a gate per pipeline) is set here, in a copy: the SARIF the gate reads and
whose digest the stage job exported stays byte for byte as the stage wrote it.

Usage: python -I upload_copy.py SRC DEST CATEGORY
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

_CATEGORY = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$")


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: upload_copy.py SRC DEST CATEGORY", file=sys.stderr)
        return 2
    src, dest, category = Path(argv[0]), Path(argv[1]), argv[2].rstrip("/")
    if not _CATEGORY.fullmatch(category) or len(category) > 200:
        print("::error title=mlsec upload::category must be lowercase path segments such as mlsec/code-scan",
              file=sys.stderr)
        return 2
    doc = json.loads(src.read_text(encoding="utf-8"))
    for run in doc.get("runs") or []:
        run["automationDetails"] = {"id": f"{category}/"}
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(doc), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
