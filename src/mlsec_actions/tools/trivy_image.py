"""trivy on an image: an OCI layout folder or docker-archive (`trivy image --input`), a registry reference
(`trivy image --image-src remote`), or an unpacked root filesystem (`trivy rootfs`).

The same isolation as code-scan's trivy (`tools/trivy.py`: our config, ignore file and secret config, every
`TRIVY_*` variable removed, run from a folder of ours) and the same vulnerability-DB rule: no DB is a
`vulnerabilities-not-scanned` gap, never silence. Each finding keeps the layer (diff_id) trivy names, so the
stage can map it to the Dockerfile line that made the layer.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlsec_actions.findings import CoverageGap, Finding, ToolRun, ToolStatus
from mlsec_actions.tools import trivy
from mlsec_actions.tools.base import Execution, execute, safe, version


@dataclass(frozen=True)
class ImageTarget:
    """What to scan."""

    kind: str
    """layout, archive, registry or rootfs."""
    value: str
    """The folder, file or reference."""
    plain_http: bool = False
    """Registry over plain HTTP (loopback only; checked by the stage)."""


@dataclass(frozen=True)
class ImageFinding:
    """A trivy finding and the layer it came from."""

    finding: Finding
    """The finding, located at the file inside the image (`/etc/app/aws.env`) or the package."""
    diff_id: str
    """The layer's diff_id, `sha256:...`, or empty when the report names none."""
    instruction: str = ""
    """The Dockerfile instruction the report names (Snyk's `dockerfileInstruction`), or empty."""


@dataclass(frozen=True)
class ImageScan:
    """One image scanned."""

    findings: tuple[ImageFinding, ...]
    """Every finding."""
    run: ToolRun
    """trivy's record."""
    config: dict[str, Any]
    """The image config trivy read (`history`, `rootfs`), empty when none."""


def _entries(report: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """One single-entry trivy report per secret / misconfiguration / vulnerability, with the entry's layer."""
    out = []
    for result in report.get("Results") or []:
        for key in ("Secrets", "Misconfigurations", "Vulnerabilities"):
            for entry in result.get(key) or []:
                layer = entry.get("Layer") if isinstance(entry.get("Layer"), dict) else {}
                one = {k: v for k, v in result.items() if k not in ("Secrets", "Misconfigurations", "Vulnerabilities")}
                one[key] = [entry]
                out.append(({**report, "Results": [one]}, str(layer.get("DiffID") or "")))
    return out


def parse(stdout: bytes, run: ToolRun) -> ImageScan:
    """trivy's image JSON -> findings with layers; a failed run when it is not a trivy report."""
    from mlsec_actions.tools.trivy_report import ReportError, parse_report, validate

    try:
        report = validate(json.loads(stdout))
        found: list[ImageFinding] = []
        gaps: list[CoverageGap] = []
        for one, diff_id in _entries(report):
            findings, dropped = parse_report(one, None)
            found.extend(ImageFinding(f, diff_id) for f in findings)
            gaps.extend(dropped)
    except (ValueError, RecursionError) as e:
        what = "output is not a trivy report" if isinstance(e, ReportError) else "output is not JSON"
        return ImageScan((), replace(run, status=ToolStatus.FAILED, message=safe(f"{what}: {e}")), {})
    meta = report.get("Metadata")
    config = meta.get("ImageConfig") if isinstance(meta, dict) else None
    config = config if isinstance(config, dict) else {}
    found_version = report["Trivy"].get("Version") if isinstance(report.get("Trivy"), dict) else None
    run = replace(run, version=str(found_version) if found_version else version(trivy.SPEC),
                  gaps=(*run.gaps, *gaps))
    return ImageScan(tuple(found), run, config)


def scan(target: ImageTarget, options: trivy.TrivyOptions, scanned: Path | None) -> ImageScan:
    """Run trivy on one image target."""
    deadline = time.monotonic() + options.timeout
    cache = trivy._cache_dir(options)
    config, gaps = trivy._config_args(Path("/nonexistent"), replace(options, repo_config=False))
    common = [*config, "--cache-dir", str(cache)]
    if options.db_repository:
        common += ["--db-repository", options.db_repository]
    scan_vulns, failed, db_gap = trivy._prepare_db(options, cache, common, deadline)
    if failed is not None:
        return ImageScan((), failed, {})
    if db_gap is not None:
        gaps.append(db_gap)
    scanners = "secret,misconfig" + (",vuln" if scan_vulns else "")
    remaining = deadline - time.monotonic()
    args = ["rootfs" if target.kind == "rootfs" else "image", "--format", "json", "--quiet", "--skip-check-update",
            "--skip-db-update", *common, "--timeout", f"{max(1, int(remaining))}s", "--scanners", scanners]
    source = _image_source(target)
    if source is None:
        return _scan_rootfs(Path(target.value), args, deadline, scanned, gaps, db_gap, options)
    got = execute(trivy.SPEC, [*args, *source[0], *source[1]], timeout=remaining, scanned=scanned)
    return _finish(got, gaps, db_gap, options)


def _image_source(target: ImageTarget) -> tuple[list[str], list[str]] | None:
    """trivy image's options and positional argument naming the image (`--insecure` only for plain HTTP); None
    for a root filesystem."""
    if target.kind in ("layout", "archive"):
        return ["--input", target.value], []
    if target.kind == "registry":
        return ["--image-src", "remote", *(["--insecure"] if target.plain_http else [])], [target.value]
    return None


def _scan_rootfs(folder: Path, args: list[str], deadline: float, scanned: Path | None, gaps: list[CoverageGap],
                 db_gap: CoverageGap | None, options: trivy.TrivyOptions) -> ImageScan:
    """`trivy rootfs` on a view of `folder` without its `.git` (tools/trivy_view.py: trivy's git handling at
    the scan root is stalled by a hostile repository); the paths it reports are the folder's."""
    from mlsec_actions.tools import trivy_view

    try:
        with trivy_view.view(folder, deadline=deadline) as tree:
            got = execute(trivy.SPEC, [*args, str(tree.root)], timeout=deadline - time.monotonic(), scanned=scanned)
            done = _finish(got, [*gaps, *tree.gaps], db_gap, options)
            notes = trivy_view.notes(tree)
    except trivy_view.ViewError as e:
        return ImageScan((), ToolRun(trivy.SPEC.name, e.status, message=safe(str(e)), gaps=tuple(gaps)), {})
    return replace(done, run=replace(done.run, notes=(*done.run.notes, *notes)))


def _finish(got: Execution, gaps: list[CoverageGap], db_gap: CoverageGap | None,
            options: trivy.TrivyOptions) -> ImageScan:
    run = replace(got.run, gaps=(*got.run.gaps, *gaps))
    if db_gap is not None and options.vuln_db == "auto":
        run = replace(run, notes=(*run.notes, db_gap.detail))
    if run.status is not ToolStatus.OK:
        return ImageScan((), run, {})
    return parse(got.stdout, run)


def sbom(layout: Path, out: Path, timeout: float) -> ToolRun:
    """A CycloneDX SBOM of an OCI layout (`trivy image --input LAYOUT --format cyclonedx`), written to `out`."""
    return sbom_of(ImageTarget("layout", str(layout)), out, timeout)


def sbom_of(target: ImageTarget, out: Path, timeout: float, env: dict[str, str] | None = None) -> ToolRun:
    """A CycloneDX SBOM of a layout, archive or registry image (`--image-src remote`, `--insecure` only for plain
    HTTP), written to `out`; `env` adds variables trivy reads (registry credentials; every other TRIVY_* is removed)."""
    options = trivy.TrivyOptions(timeout=timeout)
    config, _ = trivy._config_args(Path("/nonexistent"), options)
    out.parent.mkdir(parents=True, exist_ok=True)
    source = _image_source(target)
    if source is None:
        raise ValueError(f"no SBOM of a {target.kind} target")
    flags, positional = source
    args = ["image", *flags, "--format", "cyclonedx", "--quiet", "--skip-check-update", "--skip-db-update", *config,
            "--cache-dir", str(trivy._cache_dir(options)), "--timeout", f"{max(1, int(timeout))}s", "--output",
            str(out), *positional]
    got = execute(trivy.SPEC, args, timeout=timeout, env=env)
    if got.run.status is ToolStatus.OK:
        try:
            doc = json.loads(out.read_bytes())
        except (OSError, ValueError) as e:
            return replace(got.run, status=ToolStatus.FAILED, message=safe(f"no CycloneDX SBOM written: {e}"))
        if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
            return replace(got.run, status=ToolStatus.FAILED, message="the SBOM written is not CycloneDX")
        return got.run
    return replace(got.run, message=safe(f"SBOM of the image failed: {got.run.message}"))
