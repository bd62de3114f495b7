"""Which files of a tree checkov is given: the IaC files it understands, found by name and a look at the content.

checkov is slow to start (seconds of imports), so it runs only when the tree holds something it checks, and
it is given only those files (a private folder of links, the tree's layout kept so Terraform modules and
`.github/workflows` still resolve). A YAML or JSON file counts when its first bytes say what it is
(Kubernetes `apiVersion` + `kind`, CloudFormation, ARM, OpenAPI, an Ansible play) or its path does (CI
workflow files). Helm charts and Kustomize overlays are not given to checkov: it renders them by running
`helm template --dependency-update` / `kustomize build`, which fetch remote charts and bases; they are gaps.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass
from pathlib import Path

from mlsec_actions.analyzers import tree
from mlsec_actions.findings import CoverageGap, GapKind

SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "mlsec-results", "__pycache__", ".tox", ".terraform",
                       ".pytest_cache", ".mypy_cache", ".ruff_cache"})
REPO_FILES = (".checkov.yaml", ".checkov.yml")
"""checkov's own configuration, which it looks for in the scanned folder, its current folder and the home folder."""
MAX_FILE_BYTES = 5_000_000
"""checkov's own default limit for one file; a larger IaC file is a gap (and not given to it)."""
MAX_FILES = 20_000
SNIFF_BYTES = 64 * 1024

_BY_SUFFIX = (".tf", ".tf.json", ".bicep")
_DOCKERFILE = re.compile(r"(?i)^(docker|container)file(\..+)?$|\.(docker|container)file$")
_CI_FILES = {".gitlab-ci.yml", ".gitlab-ci.yaml", "azure-pipelines.yml", "azure-pipelines.yaml",
             "bitbucket-pipelines.yml", "serverless.yml", "serverless.yaml"}
_MARKERS: tuple[tuple[re.Pattern[bytes], ...], ...] = (
    # Every pattern of one entry must match (separate searches: no pattern spans lines, none backtracks far).
    (re.compile(rb"(?m)(^|[{,])\s*[\"']?apiVersion[\"']?\s*:"), re.compile(rb"(?m)(^|[{,])\s*[\"']?kind[\"']?\s*:")),
    (re.compile(rb"(?m)AWSTemplateFormatVersion|^[\"']?Resources[\"']?\s*:|\"Resources\"\s*:\s*\{"),),  # CFN
    (re.compile(rb"schema\.management\.azure\.com/schemas/[^\"'\s]{0,200}deploymentTemplate"),),  # ARM
    (re.compile(rb"(?m)^[\"']?(openapi|swagger)[\"']?\s*:"),),  # OpenAPI
    (re.compile(rb"(?m)^-\s+hosts\s*:"), re.compile(rb"(?m)^\s+(tasks|roles)\s*:")),  # Ansible play
)
_RENDERED = {"Chart.yaml": "Helm chart", "kustomization.yaml": "Kustomize overlay", "kustomization.yml":
             "Kustomize overlay", "Kustomization": "Kustomize overlay"}


@dataclass(frozen=True)
class IacFile:
    """One file given to checkov."""

    rel: str
    """Its path in the tree (text; undecodable bytes replaced), as findings name it."""
    path: Path
    """Where it is on disk."""


def _is_ci_workflow(rel: str, name: str) -> bool:
    lowered = name.lower()
    if not lowered.endswith((".yml", ".yaml")):
        return False
    return rel.startswith(".github/workflows/") or rel.startswith(".circleci/") or name in _CI_FILES


def _sniff(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError:
        return False
    return any(all(p.search(head) for p in marker) for marker in _MARKERS)


def understood(rel: str, name: str, path: Path) -> bool:
    """checkov has checks for this file (by name, path, or the first bytes of a YAML/JSON/template file)."""
    if name.endswith(_BY_SUFFIX) or _DOCKERFILE.search(name) or _is_ci_workflow(rel, name):
        return True
    return name.lower().endswith((".yaml", ".yml", ".json", ".template")) and _sniff(path)


def iac_files(root: Path, gaps: list[CoverageGap]) -> list[IacFile]:
    """The tree's regular files checkov understands; links, special files and oversized files are not given."""
    found: list[IacFile] = []
    for folder, names in tree.folders(root, SKIP_DIRS, gaps):  # iterative and depth-bounded (the limit is a gap)
        for name in names:
            full = Path(folder) / name
            rel = full.relative_to(root).as_posix().encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            if name in _RENDERED:
                gaps.append(CoverageGap(GapKind.FORMAT_UNKNOWN, f"{_RENDERED[name]} not rendered for checkov (it would "
                                        "run helm/kustomize, which fetch remote content); trivy checks charts",
                                        path=rel))
                continue
            if rel in REPO_FILES:
                continue  # never given, so checkov cannot read it as its configuration
            try:
                info = full.lstat()
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode) or not understood(rel, name, full):
                continue
            if info.st_size > MAX_FILE_BYTES or len(found) >= MAX_FILES:
                gaps.append(CoverageGap(GapKind.FILE_SKIPPED, "IaC file not given to checkov (size or file-count "
                                        "limit)", path=rel))
                continue
            found.append(IacFile(rel, full))
    return found


def link_farm(files: list[IacFile], farm: Path) -> dict[str, str]:
    """Link each file under `farm` at its tree path (names made safe); returns farm path -> tree path."""
    names: dict[str, str] = {}
    for f in files:
        parts = [_safe(p) for p in f.rel.split("/")]
        candidate = "/".join(parts)
        n = 1
        while candidate in names:  # two names that only differed in undecodable bytes or line breaks
            parts[-1] = f"{n}~{_safe(f.rel.rsplit('/', 1)[-1])}"
            candidate = "/".join(parts)
            n += 1
        target = farm / candidate
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(f.path)
        names[candidate] = f.rel
    return names


def _safe(part: str) -> str:
    cleaned = "".join("_" if c in "\ufffd\r\n\t" or ord(c) < 32 else c for c in part)
    return cleaned if cleaned not in ("", ".", "..") else "_"
