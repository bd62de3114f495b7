"""Inline ignore comments (`#trivy:ignore:<id>`, `#tfsec:ignore:<id>`): trivy honours them in the scanned
files and has no switch to refuse them, so a pull request can silence a misconfiguration by adding one
(`#trivy:ignore:*` above a Terraform resource hides every check on it). Each one found is an `allow-rule`
coverage gap naming its file and line: the suppression is visible in the summary, the verdict and the
attestation, and `strict` fails on it.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterable
from pathlib import Path

from mlsec_actions import sanitize
from mlsec_actions.analyzers import tree
from mlsec_actions.findings import CoverageGap, GapKind

SUFFIXES = (".tf", ".tfvars", ".hcl", ".json", ".yaml", ".yml", ".tpl")
"""Files whose checks trivy lets a comment switch off (Terraform and its JSON form, YAML/JSON IaC)."""
MAX_BYTES = 4 * 1024 * 1024
MAX_GAPS = 200
_COMMENT = re.compile(rb"(?:#|//)\s*(?:trivy|tfsec):ignore:([^\s]{1,100})")


def inline_ignores(root: Path, skip_dirs: Iterable[str]) -> list[CoverageGap]:
    """One gap per inline ignore comment under `root` (symlinks not followed, large files not read)."""
    skip = set(skip_dirs)
    gaps: list[CoverageGap] = []
    # Iterative and depth-bounded: trivy (Go) scans deeper, so what is below the limit is a gap of ours.
    unchecked = "inline ignore comments below it were not looked for"
    for folder, files in tree.folders(root, skip, gaps, unchecked=unchecked):
        for name in files:
            if not name.endswith(SUFFIXES) and "Dockerfile" not in name:
                continue
            path = Path(folder) / name
            try:
                info = path.lstat()
                if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            if b":ignore:" not in data:
                continue
            rel = path.relative_to(root).as_posix()
            for match in _COMMENT.finditer(data):
                line = data.count(b"\n", 0, match.start()) + 1
                rule = sanitize.log_line(match.group(1).decode("utf-8", errors="replace"), 100)
                gaps.append(CoverageGap(GapKind.ALLOW_RULE, f"inline ignore comment `trivy:ignore:{rule}` at line "
                                        f"{line}: trivy does not report the checks it names", path=rel))
                if len(gaps) >= MAX_GAPS:
                    return gaps
    return gaps
