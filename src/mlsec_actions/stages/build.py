"""build (Dev stage 5): lint the context's Dockerfiles, then build the image with buildah into an OCI layout,
optionally a docker-archive and a registry; the image digest is the stage's output (step output + JSON file).

Lint findings go to SARIF and never stop the build (the gate judges them). A failed build, layout or push is a
failed `buildah` tool: exit 1, and the gate fails on it. Push references are checked before anything runs:
plain HTTP only to a loopback registry.
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import tempfile
from pathlib import Path

from mlsec_actions import gha, outputs
from mlsec_actions.errors import UsageError
from mlsec_actions.findings import CoverageGap, Finding, GapKind, StageResult, ToolRun, ToolStatus, sort_findings
from mlsec_actions.oci.reference import is_loopback
from mlsec_actions.stages.base import ScanContext, Stage, add_scan_arguments, processing, run_scan

STAGE_ID = "build"
LINT_TOOL = "mlsec-dockerfile"
DEFAULT_FILES = ("Containerfile", "Dockerfile")
MAX_DOCKERFILES = 200
"""Dockerfiles linted per context; more are a coverage gap."""
SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "mlsec-results"})
_REFERENCE = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*)(?::[0-9]{1,5})?(?:/[a-z0-9._-]+)+"
                        r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?")


def is_dockerfile(name: str) -> bool:
    """Dockerfile, Containerfile, Dockerfile.dev, app.Dockerfile, ... (case-insensitive)."""
    low = name.lower()
    return low in ("dockerfile", "containerfile") or low.startswith(("dockerfile.", "containerfile.")) \
        or low.endswith((".dockerfile", ".containerfile"))


def push_target(value: str) -> tuple[str, bool]:
    """argparse type: `HOST/REPO[:TAG]` (HTTPS) or `http://HOST/REPO[:TAG]` (plain HTTP, loopback hosts only)."""
    text = value.strip()
    plain = text.startswith("http://")
    ref = text.removeprefix("http://").removeprefix("docker://")
    if text.startswith("https://"):
        ref = text.removeprefix("https://")
    if not _REFERENCE.fullmatch(ref):
        raise argparse.ArgumentTypeError(f"{value!r}: not a registry reference HOST/REPOSITORY[:TAG]")
    host = ref.split("/", 1)[0]
    if plain and not is_loopback(host):
        raise argparse.ArgumentTypeError(f"{value!r}: plain HTTP is only allowed to a loopback registry "
                                         f"(127.0.0.0/8, ::1, localhost); use HTTPS for {host}")
    return ref, plain


def local_tag(value: str) -> str:
    """argparse type: the local image name, `NAME[:TAG]` made of safe characters."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9._/-]{0,127}(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?", value):
        raise argparse.ArgumentTypeError(f"{value!r}: not an image name NAME[:TAG] (lower case, digits, ._/-)")
    return value if "/" in value.split(":", 1)[0] else f"localhost/{value}"


def build_arg(value: str) -> str:
    """argparse type: KEY=VALUE."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", value, re.S) or "\n" in value:
        raise argparse.ArgumentTypeError(f"{value!r}: not KEY=VALUE")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    add_scan_arguments(parser, STAGE_ID)
    parser.set_defaults(timeout=1800.0)
    parser.add_argument("--file", default=None, metavar="DOCKERFILE",
                        help="the Dockerfile to build, relative to the context "
                             "(default: Containerfile, else Dockerfile)")
    parser.add_argument("--tag", type=local_tag, default="localhost/mlsec-build:latest",
                        help="local image name and the OCI layout's tag (default: %(default)s)")
    parser.add_argument("--layout", type=outputs.output_dir, default=Path("mlsec-results") / "image-layout",
                        help="OCI layout folder to write (default: %(default)s)")
    parser.add_argument("--archive", type=outputs.output_file, default=None,
                        help="also write a docker-archive tarball here (docker load, trivy --input)")
    parser.add_argument("--sbom", type=outputs.output_file, default=Path("mlsec-results") / "image.cdx.json",
                        help="CycloneDX SBOM of the built image, made by trivy (default: %(default)s)")
    parser.add_argument("--push", type=push_target, action="append", default=[], metavar="REF",
                        help="push to HOST/REPO[:TAG] over HTTPS, or http://127.0.0.1:PORT/REPO[:TAG] (loopback only); "
                             "repeatable")
    parser.add_argument("--image-json", type=outputs.output_file, default=Path("mlsec-results") / "image.json",
                        help="where to write the image digest and references (default: %(default)s)")
    parser.add_argument("--build-arg", type=build_arg, action="append", default=[], metavar="KEY=VALUE",
                        help="build argument (repeatable; never a secret: it is recorded in the image history)")
    parser.add_argument("--auth-file", type=Path, default=None,
                        help="registry credentials (containers-auth.json) for pulls and pushes (default: none)")
    parser.add_argument("--lint-only", action="store_true", help="lint the Dockerfiles, do not build")


def _read(path: Path, limit: int) -> bytes | None:
    """A regular file's first `limit` bytes; None for anything else (never blocks on a FIFO, never follows a link)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        return f.read(limit)


def lint_tree(root: Path) -> tuple[list[Finding], ToolRun]:
    """Every Dockerfile under `root` linted."""
    from mlsec_actions.analyzers import dockerfile, dockerfile_lint, tree

    gaps: list[CoverageGap] = []
    findings: list[Finding] = []
    seen = 0
    for folder, names in tree.folders(root, SKIP_DIRS, gaps):
        for name in names:
            if not is_dockerfile(name):
                continue
            path = Path(folder) / name
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            if seen >= MAX_DOCKERFILES:
                gaps.append(CoverageGap(GapKind.LIMIT_REACHED, f"more than {MAX_DOCKERFILES} Dockerfiles: not linted",
                                        rel))
                continue
            seen += 1
            processing(path)
            data = _read(path, dockerfile.MAX_BYTES + 1)
            if data is None:
                gaps.append(CoverageGap(GapKind.FILE_SKIPPED, "not a regular file (link, FIFO, device): not linted",
                                        rel))
                continue
            parsed = dockerfile.parse(data)
            if parsed.not_utf8:
                gaps.append(CoverageGap(GapKind.FILE_UNREADABLE, "not valid UTF-8: linted with the bad bytes replaced",
                                        rel))
            for line, what in parsed.problems:
                gaps.append(CoverageGap(GapKind.LIMIT_REACHED, f"line {line}: {what}", rel))
            findings.extend(dockerfile_lint.lint(rel, parsed))
    processing(None)
    return findings, ToolRun(LINT_TOOL, ToolStatus.OK, gaps=tuple(gaps))


def _dockerfile(root: Path, chosen: str | None) -> Path:
    names = [chosen] if chosen else list(DEFAULT_FILES)
    for name in names:
        path = (root / name)
        if not path.resolve().is_relative_to(root.resolve()):
            raise UsageError(f"{name}: the Dockerfile must be inside the build context {root}")
        if path.is_file() and not path.is_symlink():
            return path
    raise UsageError(f"{root}: no {' or '.join(names)} to build (a regular file inside the context)")


def _auth(path: Path | None) -> bytes | None:
    """The caller's auth file, checked to be a bounded JSON object (exit 2 otherwise)."""
    if path is None:
        return None
    from mlsec_actions import inputs

    doc = inputs.load_json(path, "registry auth file", 1024 * 1024)
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: registry auth file is not a JSON object")
    return inputs.read_regular(path, "registry auth file", 1024 * 1024)


def _build(ctx: ScanContext) -> tuple[ToolRun, dict[str, object]]:
    from mlsec_actions.tools import buildah

    args = ctx.args
    dockerfile = _dockerfile(ctx.root, args.file)  # checked before the stage started; the tree may have changed
    layout = Path(args.layout).resolve()
    archive = Path(args.archive).resolve() if args.archive else None
    request = buildah.BuildRequest(ctx.root, dockerfile, args.tag, tuple(args.build_arg), args.timeout)
    with tempfile.TemporaryDirectory(prefix="mlsec-buildah-") as tmp:
        if Path(tmp).resolve().is_relative_to(ctx.root.resolve()):
            raise UsageError(f"the temporary folder {tmp} is inside the build context; set TMPDIR elsewhere")
        layout.parent.mkdir(parents=True, exist_ok=True)
        auth = _auth(args.auth_file)
        built = buildah.build(buildah.Sandbox(Path(tmp)).prepare(auth), request, layout, archive, tuple(args.push))
    image: dict[str, object] = {
        "digest": built.digest, "image-id": built.image_id, "tag": args.tag, "layout": str(layout),
        "archive": str(archive) if archive else None,
        "dockerfile": os.path.relpath(dockerfile, ctx.root).replace(os.sep, "/"),
        "pushed": [{"reference": ref, "digest": dig, "pinned": pinned(ref, dig)} for ref, dig in built.pushed],
    }
    return built.run, image


def pinned(reference: str, digest: str) -> str:
    """`host/repo:tag` + digest -> `host/repo@sha256:...` (what signing and deploys should name)."""
    host, _, path = reference.partition("/")
    return f"{host}/{path.rsplit(':', 1)[0]}@{digest}"


def scan(ctx: ScanContext) -> StageResult:
    findings, lint_run = lint_tree(ctx.root)
    tools = [lint_run]
    extra: dict[str, object] = {}
    if not ctx.args.lint_only:
        from mlsec_actions.tools import trivy_image

        run, image = _build(ctx)
        tools.append(run)
        if run.status is ToolStatus.OK:
            sbom_run = trivy_image.sbom(Path(str(image["layout"])), Path(ctx.args.sbom).resolve(), ctx.args.timeout)
            tools.append(sbom_run)
            if sbom_run.status is ToolStatus.OK:
                image["sbom"] = str(Path(ctx.args.sbom).resolve())
                extra["mlsec-image"] = image
                _publish(ctx.args, image)
    return StageResult(STAGE_ID, sort_findings(findings), tuple(tools), extra=extra)


def _publish(args: argparse.Namespace, image: dict[str, object]) -> None:
    import json

    outputs.write_text(Path(args.image_json), json.dumps(image, indent=2, sort_keys=True) + "\n")
    pushed = image["pushed"]
    first = pushed[0]["pinned"] if isinstance(pushed, list) and pushed else ""
    for name, value in (("digest", image["digest"]), ("image-id", image["image-id"]), ("layout", image["layout"]),
                        ("archive", image["archive"] or ""), ("reference", first), ("sbom", image["sbom"]),
                        ("image-json", str(args.image_json))):
        gha.set_output(name, str(value))


def execute(args: argparse.Namespace) -> int:
    if len(args.paths) != 1:
        raise UsageError("build takes one build context folder")
    if not Path(args.paths[0]).is_dir():
        raise UsageError(f"{args.paths[0]}: the build context is not a folder")
    if not args.lint_only:
        _dockerfile(Path(args.paths[0]), args.file)  # bad input is exit 2 before anything runs
        _auth(args.auth_file)
    return run_scan(args, STAGE_ID, scan)


STAGE = Stage(id=STAGE_ID, summary="Dockerfile lint, then a daemonless image build: OCI layout, digest, SBOM, push",
              configure=configure, execute=execute)
