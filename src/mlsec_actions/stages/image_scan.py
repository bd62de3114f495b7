"""image-scan (Dev stage 6): trivy on the built image, and third-party image reports imported into SARIF.

Targets: each PATH is an OCI layout folder (it has an `oci-layout` file), a docker-archive/OCI tarball, or any
other folder as an unpacked root filesystem (`trivy rootfs`); `--image REF` scans a registry reference
(`http://` only for a loopback registry); `--import FORMAT:FILE` reads a Grype, Snyk or Docker Scout report.
With `--dockerfile`, a finding whose layer the image history ties to a Dockerfile instruction is reported on
that line (the file inside the image and the layer stay in its logical location and properties).
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlsec_actions.errors import ExitCode, MlsecError, UsageError
from mlsec_actions.findings import Finding, Location, StageResult, ToolRun, ToolStatus, sort_findings
from mlsec_actions.stages import base
from mlsec_actions.stages.base import ScanContext, Stage, add_scan_arguments, processing

if TYPE_CHECKING:
    from mlsec_actions.analyzers.dockerfile import Parsed
    from mlsec_actions.tools.trivy_image import ImageFinding

STAGE_ID = "image-scan"
NO_FILE = "container-image"
"""The SARIF path of a finding in a registry image with no Dockerfile and no file of ours to point at."""


def registry_target(value: str) -> tuple[str, bool]:
    """argparse type: `HOST/REPO[:TAG|@DIGEST]` (HTTPS) or `http://HOST/...` (plain HTTP, loopback only)."""
    from mlsec_actions.oci.reference import is_loopback

    text = value.strip()
    plain = text.startswith("http://")
    ref = text.removeprefix("http://").removeprefix("https://").removeprefix("docker://")
    if not re.fullmatch(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*)(?::[0-9]{1,5})?(?:/[a-z0-9._-]+)+"
                        r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?", ref):
        raise argparse.ArgumentTypeError(f"{value!r}: not a registry reference HOST/REPOSITORY[:TAG][@DIGEST]")
    if plain and not is_loopback(ref.split("/", 1)[0]):
        raise argparse.ArgumentTypeError(f"{value!r}: plain HTTP is only allowed to a loopback registry")
    return ref, plain


def configure(parser: argparse.ArgumentParser) -> None:
    from mlsec_actions.tools import image_imports, trivy

    add_scan_arguments(parser, STAGE_ID)
    parser.set_defaults(paths=[])
    parser.add_argument("--image", type=registry_target, action="append", default=[], metavar="REF",
                        help="registry image to scan (repeatable); http://127.0.0.1:PORT/REPO:TAG for a loopback one")
    parser.add_argument("--import", dest="imports", type=image_imports.parse_import, action="append", default=[],
                        metavar="FORMAT:FILE", help="import a report: grype:FILE, snyk:FILE or scout:FILE (SARIF)")
    parser.add_argument("--dockerfile", type=Path, default=None,
                        help="the Dockerfile the image was built from: findings are mapped to its lines")
    parser.add_argument("--vuln-db", choices=trivy.VULN_DB_MODES, default="auto",
                        help="OS and language package vulnerabilities: auto, download, skip")
    parser.add_argument("--trivy-cache-dir", type=Path, default=None, help="trivy cache folder (default: trivy's own)")
    parser.add_argument("--trivy-db-repository", default=None, metavar="REF",
                        help="where trivy downloads its vulnerability DB from (a mirror; default: trivy's)")


def _rel(path: Path, root: Path) -> str:
    resolved = path.resolve()
    return os.path.relpath(resolved, root).replace(os.sep, "/") if resolved.is_relative_to(root) else path.name


def _dockerfile(args: argparse.Namespace, root: Path) -> tuple[str, Parsed] | None:
    from mlsec_actions import inputs
    from mlsec_actions.analyzers import dockerfile

    if args.dockerfile is None:
        return None
    data = inputs.read_regular(args.dockerfile, "Dockerfile", dockerfile.MAX_BYTES)
    return _rel(args.dockerfile, root), dockerfile.parse(data)


def _words(text: str) -> str:
    return " ".join(text.split())


def _place(found: list[ImageFinding], config: dict[str, Any], where: str, args: argparse.Namespace) -> list[Finding]:
    """Each image finding at its Dockerfile line where the history allows, else at `where`."""
    from mlsec_actions.analyzers import image_layers

    known: tuple[str, Parsed] | None = args.parsed_dockerfile
    rel, parsed = known if known else ("", None)
    layers = image_layers.layer_lines(config, parsed)
    texts = {_words(f"{i.keyword} {i.args}"): i for i in parsed.instructions} if parsed else {}
    out = []
    for item in found:
        f = item.finding
        ins = layers.get(item.diff_id) or texts.get(_words(item.instruction))
        inner = "::".join(p for p in (f.location.path, f.location.logical) if p) or None
        props = (*f.properties, *((("layer", item.diff_id),) if item.diff_id else ()))
        if ins is not None:
            loc = Location(rel, ins.line, ins.end_line, logical=inner, logical_kind="object")
        else:
            loc = Location(rel if rel and where == NO_FILE else where, logical=inner, logical_kind="object")
        out.append(replace(f, location=loc, properties=props))
    return out


def _target(path: Path) -> tuple[str, str]:
    if path.is_dir():
        return ("layout" if (path / "oci-layout").is_file() else "rootfs"), str(path)
    return "archive", str(path)


def scan(ctx: ScanContext) -> StageResult:
    from mlsec_actions.tools import image_imports, trivy, trivy_image

    args = ctx.args
    root: Path = args.image_source_root
    options = trivy.TrivyOptions(vuln_db=args.vuln_db, timeout=args.timeout, cache_dir=args.trivy_cache_dir,
                                 db_repository=args.trivy_db_repository)
    findings: list[Finding] = []
    tools: list[ToolRun] = []
    jobs: list[tuple[trivy_image.ImageTarget, str]] = []
    if args.scan_paths:
        kind, value = _target(ctx.target)
        jobs.append((trivy_image.ImageTarget(kind, value), _rel(ctx.target, root)))
    if ctx.target == args.first_target:
        jobs += [(trivy_image.ImageTarget("registry", ref, plain), NO_FILE) for ref, plain in args.image]
    for target, where in jobs:
        done = trivy_image.scan(target, options, ctx.root if target.kind != "registry" else None)
        tools.append(done.run)
        findings += _place(list(done.findings), done.config, where, args)
    if ctx.target == args.first_target:
        for fmt, file in args.imports:
            processing(file)
            imported = image_imports.read(fmt, file)
            findings += _place(list(imported), {}, _rel(file, root), args)
            tools.append(ToolRun(fmt, ToolStatus.OK, notes=(f"imported {len(imported)} findings from {file.name}",)))
    return StageResult(STAGE_ID, sort_findings(findings), tuple(tools))


def execute(args: argparse.Namespace) -> int:
    from mlsec_actions.sarif import write_sarif

    targets = [Path(p) for p in args.paths]
    for t in targets:
        if not t.exists():
            raise UsageError(f"{t}: no such file or folder")
    if not targets and not args.image and not args.imports:
        raise UsageError("nothing to scan: give an OCI layout, an image archive, a folder, --image or --import")
    for _, file in args.imports:
        if not file.is_file():
            raise UsageError(f"{file}: no such report file")
    resolved = [t.resolve() for t in targets] or [Path.cwd().resolve()]
    source_root = base._source_root(args.source_root, resolved[0])
    args.image_source_root, args.scan_paths, args.first_target = source_root, bool(targets), resolved[0]
    args.parsed_dockerfile = _dockerfile(args, source_root)
    findings: list[Finding] = []
    tools: list[ToolRun] = []
    try:
        for target in resolved:
            processing(target)
            result = scan(ScanContext(root=target if target.is_dir() else target.parent, target=target, args=args))
            findings.extend(result.findings)
            tools.extend(result.tools)
        processing(None)
        merged = StageResult(STAGE_ID, sort_findings(findings), tuple(tools))
        out = write_sarif(merged, args.sarif, root=source_root)
    except MlsecError:
        raise
    except Exception as e:  # a crash: still a SARIF that says so, and exit 1 with one line
        message = base.crash_message(STAGE_ID, e, base.current_file())
        base.write_crash_sarif(STAGE_ID, args.sarif, message, findings, tools, source_root)
        raise base.StageCrash(message) from None
    base.report(merged, out)
    return ExitCode.OK if merged.succeeded else ExitCode.ERROR


STAGE = Stage(id=STAGE_ID, summary="image vulnerabilities, secrets and misconfigurations",
              configure=configure, execute=execute)
