"""What the traced run read and reached, judged: undeclared data reads and network access (docs/train.md).

A file the run opened for reading counts when it is a regular file inside the work tree, outside `.git`, the
output folder, our own results and any virtual environment or `site-packages` folder in the tree (the
interpreter's installation, recorded as packages). Then it is a declared input (`--input`: recorded already),
pinned in `mlsec.lock` (recorded by digest; a digest other than the pin's is a finding), code (a source or
program suffix, or a program the run executed: the commit records it; listed by digest as `role: code`), or
else data nobody declared: `train/undeclared-read`. An internet address outside the loopback range that a
process connected or sent to is `train/network-access`: a note with `--network allow`, high with `forbid`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mlsec_actions.digests import hash_files
from mlsec_actions.errors import InputError
from mlsec_actions.findings import CoverageGap, Finding, GapKind, Location, Severity
from mlsec_actions.training import rules, snapshot
from mlsec_actions.training.trace import Endpoint, Observation

CODE_SUFFIXES = frozenset({
    ".py", ".pyc", ".pyi", ".pyx", ".pxd", ".pth", ".so", ".ipynb", ".sh", ".bash", ".zsh", ".r", ".jl", ".js",
    ".mjs", ".cjs", ".ts", ".lua", ".pl", ".pm", ".rb", ".java", ".jar", ".class", ".scala", ".kt", ".go", ".rs",
    ".c", ".h", ".cc", ".cpp", ".hpp", ".cu", ".cuh", ".m", ".ps1"})
"""Suffixes (case-insensitive) of files that are code, not data."""
ENVIRONMENT_PARTS = frozenset({"site-packages", "dist-packages", "node_modules", "__pypackages__"})
"""Folder names whose contents are installed packages, not the repository's data."""
MAX_LISTED = 50
"""Findings listed per rule; more are summarised in one."""
MAX_RECORDED = 1_000
"""Files recorded per role in the provenance."""


@dataclass(frozen=True)
class Judged:
    """The verdict on one observation."""

    findings: tuple[Finding, ...]
    """Undeclared reads and network access."""
    code: Mapping[str, str]
    """Code files of the tree the run read or executed: name -> SHA-256 (after the run)."""
    pinned: Mapping[str, str]
    """Files pinned in mlsec.lock the run read, whose digest matches the pin: name -> SHA-256."""
    undeclared: Mapping[str, str]
    """Data files read that are neither declared nor pinned (or differ from their pin): name -> SHA-256."""
    hosts: tuple[str, ...]
    """Internet endpoints outside loopback, `ADDRESS:PORT` (`[ADDRESS]:PORT` for IPv6), in order of first use."""
    gaps: tuple[CoverageGap, ...] = ()
    """What the observation missed."""


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1, the unspecified address (which reaches this host) and IPv4-mapped forms of those."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def host(e: Endpoint) -> str:
    return f"[{e.address}]:{e.port}" if ":" in e.address else f"{e.address}:{e.port}"


def _environment(rel: str, workdir: Path) -> bool:
    parts = PurePosixPath(rel).parts
    if parts[0] == ".git" or ENVIRONMENT_PARTS & set(parts[:-1]):
        return True
    return any((workdir.joinpath(*parts[:n]) / "pyvenv.cfg").is_file() for n in range(1, min(len(parts), 4)))


def _skipped(rel: str, excluded: tuple[str, ...]) -> bool:
    return any(rel == x or rel.startswith(x + "/") for x in excluded)


def _outside(name: str, tree: str, seen: Observation) -> bool:
    """A file read (not executed) whose name does not start with the work tree's real path. A read's name is
    the kernel's own for the open file (strace -y), real already, so this string test is what resolving it
    would decide, without the thousands of `Path.resolve` calls an interpreter's start-up would cost. An
    executed name is as the process gave it (relative, or through a link): it is resolved, below."""
    return not name.startswith(tree) and name not in seen.executed


def judge(seen: Observation, *, workdir: Path, excluded: tuple[str, ...], inputs: frozenset[Path],
          pins: Mapping[str, str], forbid_network: bool, anchor: str) -> Judged:
    """`excluded`: the output folder and our results (relative); `pins`: lock name -> SHA-256; `anchor`: the
    location of findings that belong to no file (the command's script, else the output folder)."""
    code: dict[str, Path] = {}
    data: dict[str, Path] = {}
    root = str(workdir.resolve())
    tree = root if root.endswith("/") else root + "/"
    for name in sorted(seen.reads | seen.executed):
        if _outside(name, tree, seen):
            continue
        path = Path(name)
        rel = snapshot.relative_inside(path, workdir) if path.is_absolute() else None
        if not rel or _skipped(rel, excluded) or path in inputs or _environment(rel, workdir):
            continue
        if path.is_symlink() or not path.is_file():
            continue  # gone, or not a file: a removal is already a write outside the output folder
        is_code = name in seen.executed or path.suffix.lower() in CODE_SUFFIXES
        (code if is_code and rel not in pins else data)[rel] = path
    code_digests = _digests(dict(list(code.items())[:MAX_RECORDED]))
    data_digests = _digests(data)
    pinned = {n: d for n, d in data_digests.items() if pins.get(n) == d}
    undeclared = {n: d for n, d in data_digests.items() if n not in pinned}
    findings: list[Finding] = []
    for n in list(undeclared)[:MAX_LISTED]:
        why = (f"its SHA-256 {undeclared[n][:16]}... differs from its pin in mlsec.lock" if n in pins
               else "it is neither a declared input (--input) nor pinned in mlsec.lock")
        findings.append(Finding(rules.UNDECLARED_READ, f"The training run read {n}, but {why}.", Severity.MEDIUM,
                                Location(n)))
    if len(undeclared) > MAX_LISTED:
        findings.append(Finding(rules.UNDECLARED_READ, f"The training run read {len(undeclared) - MAX_LISTED} more "
                                f"undeclared files (the first {MAX_LISTED} are listed).", Severity.MEDIUM,
                                Location(anchor)))
    hosts = tuple(host(e) for e in seen.endpoints if not is_loopback(e.address))
    severity = Severity.HIGH if forbid_network else Severity.INFO
    policy = "the policy forbids network access (--network forbid)" if forbid_network else "network is allowed"
    for h in hosts[:MAX_LISTED]:
        findings.append(Finding(rules.NETWORK_ACCESS, f"The training run reached {h} ({policy}).", severity,
                                Location(anchor), properties=(("host", h),)))
    if len(hosts) > MAX_LISTED:
        findings.append(Finding(rules.NETWORK_ACCESS, f"The training run reached {len(hosts) - MAX_LISTED} more "
                                f"internet addresses ({policy}).", severity, Location(anchor)))
    gaps = [CoverageGap(GapKind.LIMIT_REACHED, f"the read/network trace is incomplete: {seen.incomplete}; what "
                        "lies past it was not observed")] if seen.incomplete else []
    if len(code) > MAX_RECORDED:
        gaps.append(CoverageGap(GapKind.LIMIT_REACHED, f"{len(code)} code files read; the provenance lists the "
                                f"first {MAX_RECORDED}"))
    return Judged(tuple(findings), code_digests, pinned, dict(list(undeclared.items())[:MAX_RECORDED]), hosts,
                  tuple(gaps))


def _digests(files: dict[str, Path]) -> dict[str, str]:
    out = {}
    for rel, path in files.items():
        try:
            out[rel] = hash_files([path])[path]
        except InputError:
            continue  # removed or replaced since it was read
    return out
