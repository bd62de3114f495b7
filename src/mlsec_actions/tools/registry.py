"""Every external-tool adapter, explicitly listed, with a way to run it on a folder with its defaults.

A test walks this tuple: for each adapter it plants the files its `Isolation` says the tool discovers,
sets the environment variables it reads, runs it through a recording stand-in, and checks that none of
it reached the tool (cwd ours, variables gone, forced flags pointing at our files). An adapter module
with a `SPEC` that is missing here fails that test too. Not here, on purpose: pre-commit
(`tools/precommit.py`), which runs the repository's own hooks inside it, only when the caller opts in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlsec_actions.findings import ToolRun
from mlsec_actions.tools import bandit, buildah, checkov, clamav, gitleaks, modelscan, nmap, openscap, trivy, wapiti
from mlsec_actions.tools import semgrep as semgrep_tool
from mlsec_actions.tools.base import ToolSpec


@dataclass(frozen=True)
class Adapter:
    """One external tool as the stages run it."""

    spec: ToolSpec
    """How it is found, run and isolated."""
    run_on: Callable[[Path, float], ToolRun]
    """Run it on a folder (timeout in seconds) the way its stage does, returning its record."""


def _trivy(root: Path, timeout: float) -> ToolRun:
    return trivy.scan(root, trivy.TrivyOptions(vuln_db="skip", timeout=timeout))[1]


def _modelscan(root: Path, timeout: float) -> ToolRun:
    from mlsec_actions.analyzers import tree

    # The model-scan stage's own walk (iterative; rglob recurses per level): regular files, never a link.
    files = [(e.rel, e.path) for e in tree.walk(root, root, frozenset()) if e.path is not None]
    return modelscan.scan(files, timeout)[1]


def _gitleaks(root: Path, timeout: float) -> ToolRun:
    return gitleaks.scan(root, timeout)[1]


def _bandit(root: Path, timeout: float) -> ToolRun:
    return bandit.scan(root, timeout)[1]


def _clamav(root: Path, timeout: float) -> ToolRun:
    from mlsec_actions.analyzers import tree

    files = [(e.rel, e.path) for e in tree.walk(root, root, frozenset()) if e.path is not None]
    return clamav.scan(files, timeout, clamav.database())[1]


def _wapiti(root: Path, timeout: float) -> ToolRun:
    from mlsec_actions.web_targets import parse_target

    # A web scanner reads no tree: it is pointed at a URL (here one nothing listens on) from a folder of ours.
    return wapiti.scan(parse_target("http://127.0.0.1:9/"), wapiti.DEFAULT_MODULES, 1, timeout)[1]


def _checkov(root: Path, timeout: float) -> ToolRun:
    return checkov.scan(root, timeout)[1]


def _semgrep(root: Path, timeout: float) -> ToolRun:
    return semgrep_tool.scan(root, timeout)[1]


def _buildah(root: Path, timeout: float) -> ToolRun:
    import tempfile

    # The build stage's call: our sandbox (config, storage, auth) in a temporary folder, the tree as the context.
    with tempfile.TemporaryDirectory(prefix="mlsec-buildah-") as tmp:
        box = buildah.Sandbox(Path(tmp)).prepare()
        request = buildah.BuildRequest(root, root / "Containerfile", "localhost/mlsec-isolation:1", timeout=timeout)
        return buildah.build(box, request, Path(tmp) / "layout", None, ()).run


def _nmap(root: Path, timeout: float) -> ToolRun:
    # infra-scan's nmap never reads the scanned tree: it scans a host (here a closed loopback port).
    return nmap.scan("127.0.0.1", "9", detect=False, timeout=timeout)[1]


def _openscap(root: Path, timeout: float) -> ToolRun:
    # The folder is the root OpenSCAP's probes read (OSCAP_PROBE_ROOT); the content and results are ours.
    content = openscap.SSG_CONTENT / "ssg-debian11-ds.xml"
    return openscap.evaluate(root, content, "xccdf_org.ssgproject.content_profile_standard", (), timeout)[1]


ADAPTERS: tuple[Adapter, ...] = (
    Adapter(trivy.SPEC, _trivy),
    Adapter(modelscan.SPEC, _modelscan),
    Adapter(gitleaks.SPEC, _gitleaks),
    Adapter(bandit.SPEC, _bandit),
    Adapter(clamav.SPEC, _clamav),
    Adapter(wapiti.SPEC, _wapiti),
    Adapter(checkov.SPEC, _checkov),
    Adapter(semgrep_tool.SPEC, _semgrep),
    Adapter(buildah.SPEC, _buildah),
    Adapter(nmap.SPEC, _nmap),
    Adapter(openscap.SPEC, _openscap),
)
