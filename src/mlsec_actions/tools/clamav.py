"""ClamAV (`clamscan`) as fetch's antivirus: every file it is given, against a signature database we name.

What it is given: never a tree to walk, but a private folder of links named `000001`, one per regular file
the stage found (the same farm idea as tools/modelscan.py): hostile names (newlines, `::error`, non-UTF-8)
stay out of clamscan's output, and we map its paths back. Our links are followed (`--follow-file-symlinks=2`),
no folder link is (`--follow-dir-symlinks=0`).

Where its signatures come from: `-d DB` always (a file or folder; default `/var/lib/clamav`, where Debian's
`freshclam` writes; `--clamav-db` or `MLSEC_CLAMAV_DB` point elsewhere). clamscan reads no configuration
file of its own and nothing from its working folder, which is an empty folder of ours. A missing or empty
database makes clamscan exit 2: a failed run, never a pass.

Size limits: clamscan skips files above `--max-filesize` (25 MiB by default) without a word. We raise its
limits to ClamAV's ceiling and ask it to alert when one is exceeded (`Heuristics.Limits.Exceeded`): that is
a finding and a coverage gap, never silence. Exit codes: 0 clean, 1 found; 2 is an error.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from mlsec_actions.findings import CoverageGap, Finding, GapKind, Location, Rule, Severity, ToolRun, ToolStatus
from mlsec_actions.tools.base import Isolation, ToolSpec, execute, safe

SPEC = ToolSpec(
    name="clamav",
    executable="clamscan",
    version_args=("--version",),
    version_pattern=r"ClamAV\s+([0-9][0-9.]*)",
    ok_exit_codes=frozenset({0, 1}),
    install_hint="install ClamAV (Debian: apt-get install clamav; scripts/bootstrap does it as root) and its "
                 "signatures (freshclam, or --clamav-db)",
    isolation=Isolation(discovers=(), forced_flags=("-d",)),  # reads no config file; -d names the database
)
DB_ENV = "MLSEC_CLAMAV_DB"
DEFAULT_DB = Path("/var/lib/clamav")
DOCS = "https://github.com/mlsec-actions/mlsec-actions/blob/main/docs/fetch.md"
MAX_SIZE = "2047M"
"""ClamAV scans no file over 2 GiB - 1; files above this are alerted on (`--alert-exceeds-max`)."""
_FOUND = re.compile(r"^(?P<path>.+): (?P<sig>[^\s:][^:]*) FOUND$")
_LIMITS = "Heuristics.Limits.Exceeded"
BASE_SECONDS, BYTES_PER_SECOND = 30.0, 8 * 1024 * 1024
"""clamscan's time budget: 30 s (loading signatures) plus a second per 8 MiB (it reads 10-20 MiB/s on a busy
core), capped by the stage's --timeout."""

MALWARE = Rule(
    id="clamav/malware", name="ClamavMalware",
    short_description="ClamAV: a signature matched",
    full_description="ClamAV matched one of its signatures (a virus, a trojan, a test string like EICAR, or a "
                     "custom rule of yours) in the file.",
    help_text="Do not use the file. Find where it came from, replace it with a clean copy from a trusted "
              "source and pin the new digest.",
    help_uri=f"{DOCS}#clamavmalware", tags=("security", "malware", "supply-chain"), precision="high")
LIMITS_EXCEEDED = Rule(
    id="clamav/limits-exceeded", name="ClamavLimitsExceeded",
    short_description="ClamAV: the file is over its scan limits; not fully scanned",
    full_description="The file (or an archive inside it) is larger, deeper or has more members than ClamAV "
                     "scans, so part of it was not checked.",
    help_text="Split the artifact, or scan it with a tool that reads it fully; the gate treats the unscanned "
              "part as not checked.",
    help_uri=f"{DOCS}#clamavlimits-exceeded", tags=("security", "supply-chain", "coverage"), precision="high")
RULES = (MALWARE, LIMITS_EXCEEDED)


def database(explicit: Path | None = None) -> Path:
    """The signature database: the option, else `$MLSEC_CLAMAV_DB`, else Debian's freshclam folder."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(DB_ENV)
    return Path(from_env) if from_env else DEFAULT_DB


def budget(total_bytes: int, cap: float) -> float:
    """Seconds clamscan may take for `total_bytes`, never more than `cap`."""
    return min(cap, BASE_SECONDS + total_bytes / BYTES_PER_SECOND)


def scan(files: Sequence[tuple[str, Path]], timeout: float, db: Path) -> tuple[list[Finding], ToolRun]:
    """clamscan over `files` ((shown path, regular file)); findings name the shown paths."""
    if not files:
        return [], ToolRun(SPEC.name, ToolStatus.SKIPPED, message="no file to scan")
    with tempfile.TemporaryDirectory(prefix="mlsec-clamav-") as tmp:
        work, farm = Path(tmp) / "cwd", Path(tmp) / "farm"
        work.mkdir()
        farm.mkdir()
        names: dict[str, str] = {}
        total = 0
        for shown, path in files:
            name = f"{len(names) + 1:06d}"
            (farm / name).symlink_to(path.resolve())
            names[name] = shown
            with contextlib.suppress(OSError):  # clamscan reports it (exit 2)
                total += path.stat().st_size
        args = ["-d", str(db), "--follow-dir-symlinks=0", "--follow-file-symlinks=2", "--recursive=yes",
                "--infected", "--no-summary", "--stdout", f"--max-filesize={MAX_SIZE}", f"--max-scansize={MAX_SIZE}",
                "--alert-exceeds-max=yes", "--", str(farm)]
        got = execute(SPEC, args, timeout=budget(total, timeout), workdir=work, max_stdout=16 * 1024 * 1024)
        run = got.run
        if run.status is not ToolStatus.OK and not _has_db(db):
            run = replace(run, message=safe(f"no signature database at {db} (run freshclam, or give --clamav-db): "
                                            f"{run.message}"))
        if run.status is not ToolStatus.OK:
            return [], run
        return _read(got.stdout.decode("utf-8", errors="replace"), names, str(farm), run)


def _has_db(db: Path) -> bool:
    if db.is_file():
        return db.stat().st_size > 0
    return db.is_dir() and any(db.iterdir())


def _read(stdout: str, names: dict[str, str], farm: str, run: ToolRun) -> tuple[list[Finding], ToolRun]:
    findings: list[Finding] = []
    gaps: list[CoverageGap] = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        match = _FOUND.match(line.strip())
        if not match:  # with --infected --no-summary a clean run prints nothing: anything else is not clamscan
            return [], replace(run, status=ToolStatus.FAILED, message=safe(f"output not understood: {line[:200]}"))
        name = match["path"].removeprefix(farm).lstrip("/").split("/", 1)[0]
        shown = names.get(name)
        if shown is None:  # a path we never gave it: its output is not to be trusted
            return [], replace(run, status=ToolStatus.FAILED, message=safe(f"unexpected path in output: {line}"))
        signature = safe(match["sig"])[:200]
        if signature.startswith(_LIMITS):
            gaps.append(CoverageGap(GapKind.LIMIT_REACHED, f"ClamAV did not scan all of it ({signature})", shown))
            findings.append(Finding(rule=LIMITS_EXCEEDED, severity=Severity.MEDIUM, location=Location(shown),
                                    message=f"ClamAV did not scan all of the file: {signature}.",
                                    properties=(("signature", signature),)))
            continue
        findings.append(Finding(rule=MALWARE, severity=Severity.CRITICAL, location=Location(shown),
                                message=f"ClamAV signature {signature} matched.",
                                properties=(("signature", signature),)))
    if run.exit_code == 1 and not findings:
        return [], replace(run, status=ToolStatus.FAILED, message="exited 1 (found) but reported no file")
    return findings, replace(run, gaps=(*run.gaps, *gaps))
