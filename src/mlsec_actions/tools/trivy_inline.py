"""Inline ignore comments (`#trivy:ignore:<id>`, `#tfsec:ignore:<id>`): trivy honours them in the scanned
files and has no switch to refuse them, so a pull request could silence a misconfiguration by adding one
(`#trivy:ignore:*` above a Terraform resource hides every check on it, and trivy reports nothing, not even
an exception).

So the scanned tree's comments are refused unless the user opts in (`--repo-ignore-files`): when the tree
has any, `survey` lists its IaC files, `write_view` copies them into a folder of ours with every ignore
marker blanked out (same length, so lines and columns stay), and trivy judges misconfigurations on that
copy. With the opt-in the comments apply, and each one is an `allow-rule` coverage gap naming its file and
line (visible in the summary, the verdict and the attestation; `strict` fails on it).
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mlsec_actions import sanitize
from mlsec_actions.analyzers import tree
from mlsec_actions.findings import CoverageGap, GapKind

SUFFIXES = (".tf", ".tofu", ".tfvars", ".hcl", ".json", ".yaml", ".yml", ".tpl")
"""Files whose checks trivy lets a comment switch off (Terraform and its JSON form, YAML/JSON IaC)."""
NAMES = ("Dockerfile", "Containerfile")
"""File names (anywhere in the name) trivy reads as container files."""
MAX_BYTES = 4 * 1024 * 1024
MAX_GAPS = 200
_COMMENT = re.compile(rb"(?:#|//|/\*)\s*(?:trivy|tfsec):ignore:([^\s]{1,100})")
_MARKER = re.compile(rb"(?i)(trivy|tfsec)(\s*):(\s*)ignore")
"""What `neutralise` blanks: any spelling trivy might accept, wherever it stands."""


@dataclass(frozen=True)
class Comment:
    """One inline ignore comment."""

    path: str
    """The file, relative to the scanned root (POSIX)."""
    line: int
    """1-based line of the comment."""
    rule: str
    """What it ignores (`*`, `AVD-AWS-0086`, ...), sanitised."""


@dataclass
class Survey:
    """What `survey` found under the root."""

    candidates: list[str] = field(default_factory=list)
    """Every regular IaC file trivy may judge (relative paths): what a neutral view must hold."""
    comments: list[Comment] = field(default_factory=list)
    """The ignore comments, at most `MAX_GAPS`."""
    gaps: list[CoverageGap] = field(default_factory=list)
    """Files and folders the survey could not look into."""

    def honoured(self) -> list[CoverageGap]:
        """One `allow-rule` gap per comment, for when the user let the repository's comments apply."""
        return [CoverageGap(GapKind.ALLOW_RULE, f"inline ignore comment `trivy:ignore:{c.rule}` at line {c.line} "
                            "honoured (--repo-ignore-files): trivy does not report the checks it names", path=c.path)
                for c in self.comments]


def _is_candidate(name: str) -> bool:
    return name.endswith(SUFFIXES) or any(n in name for n in NAMES)


def survey(root: Path, skip_dirs: Iterable[str]) -> Survey:
    """The IaC files under `root` and their ignore comments (symlinks not followed)."""
    found = Survey()
    # Iterative and depth-bounded: trivy (Go) scans deeper, so what is below the limit is a gap of ours.
    unchecked = "inline ignore comments below it were not looked for"
    for folder, files in tree.folders(root, set(skip_dirs), found.gaps, unchecked=unchecked):
        for name in files:
            if not _is_candidate(name):
                continue
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            try:
                info = path.lstat()
                if not stat.S_ISREG(info.st_mode):
                    continue
                if info.st_size > MAX_BYTES:
                    found.gaps.append(CoverageGap(GapKind.FILE_SKIPPED, f"larger than {MAX_BYTES} bytes: not "
                                                  "looked into for inline ignore comments trivy may honour",
                                                  path=rel))
                    continue
                data = path.read_bytes()
            except OSError as e:
                found.gaps.append(CoverageGap(GapKind.FILE_UNREADABLE, f"cannot read for inline ignore comments: "
                                              f"{e.strerror or e}", path=rel))
                continue
            found.candidates.append(rel)
            for match in _COMMENT.finditer(data) if b"ignore" in data.lower() else ():
                if len(found.comments) < MAX_GAPS:
                    rule = sanitize.log_line(match.group(1).decode("utf-8", errors="replace"), 100)
                    found.comments.append(Comment(rel, data.count(b"\n", 0, match.start()) + 1, rule))
    return found


def neutralise(data: bytes) -> bytes:
    """`data` with every ignore marker turned into text trivy does not know, of the same length."""
    return _MARKER.sub(lambda m: b"x" * len(m.group(0)), data)


def write_view(root: Path, candidates: Iterable[str], dest: Path) -> None:
    """Copy each candidate file from `root` into `dest` (same relative path), ignore markers blanked."""
    for rel in candidates:
        source, target = root / rel, dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            info = source.lstat()
            if not stat.S_ISREG(info.st_mode):  # replaced since the survey: not followed
                continue
            target.write_bytes(neutralise(source.read_bytes()[:MAX_BYTES]))
        except OSError:
            continue  # gone since the survey: trivy's own scan of the tree does not see it either
