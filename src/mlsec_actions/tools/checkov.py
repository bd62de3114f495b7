"""checkov: IaC misconfiguration (Terraform, CloudFormation, Kubernetes, Dockerfile, CI workflows, ARM, Bicep, ...).

checkov reads `.checkov.yaml`/`.checkov.yml` from the folder it scans, its current folder and the home
folder, a long list of environment variables (`CKV_*`, `CHECKOV_*`, `BC_*`, `PRISMA_*`, tokens it would use
to fetch data from GitHub or GitLab), and honours `#checkov:skip=` comments and `checkov.io/skip`
annotations. So it is given a private folder of links to the tree's IaC files only (`checkov_files`,
without those two files), runs from a folder of ours with `HOME` pointing at an empty folder, with
`--config-file` pointing at the (empty) file shipped in the package, every variable it reads removed, no
API key, `--skip-download`, the update check off, and only frameworks that work offline without running
another program. A check the tree suppresses is still reported (its suppression is not ours to accept);
with `repo_config` the suppression applies and is an `allow-rule` gap. A file checkov cannot parse is a
`format-unknown` gap; a crash, a timeout or output that is not checkov's report is a failed tool.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlsec_actions.analyzers.base import DOCS
from mlsec_actions.findings import CoverageGap, Finding, GapKind, Location, Rule, Severity, ToolRun, ToolStatus
from mlsec_actions.tools import checkov_files
from mlsec_actions.tools.base import Isolation, ToolSpec, execute, safe

CONFIG = Path(__file__).resolve().parent.parent / "data" / "checkov" / "checkov.yaml"
HELP = DOCS + "code-scan.md#checkov"
FRAMEWORKS = ("terraform", "terraform_json", "cloudformation", "kubernetes", "dockerfile", "github_actions",
              "gitlab_ci", "azure_pipelines", "bitbucket_pipelines", "circleci_pipelines", "argo_workflows", "arm",
              "bicep", "serverless", "ansible", "openapi")
"""Offline frameworks only: not secrets (three scanners do that), not the SCA/SAST ones (need the platform), not
the `*_configuration` ones (fetch from GitHub/GitLab APIs), not helm/kustomize (run programs that fetch)."""
ENV_PREFIXES = ("CKV_", "CHECKOV_", "BC_", "PRISMA_", "RENDER_", "CREATE_", "ENABLE_", "PROXY_", "REQUEST",
                "SLEEP_BETWEEN", "MAX_WILDCARD", "EXTERNAL_MODULES", "DOWNLOAD_EXTERNAL", "WORKDIR", "LOG_LEVEL",
                "HCL_", "JAVA_FULL", "RAW_TF", "RUN_", "TF_", "TFC_", "EVAL_TF", "LOCAL_", "SAST_", "SAVE_SAST",
                "HELM_", "GITHUB_", "GITLAB_", "CI_", "BITBUCKET_", "VCS_", "APP_PASSWORD", "JENKINS", "BUILD_",
                "GIT_", "HTTPS_PROXY", "HTTP_PROXY", "REQUESTS_CA")
"""What checkov reads from its environment (settings, platform credentials, CI tokens): none of it reaches it."""
FIXED_ENV = {"CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE", "CKV_IGNORE_HIDDEN_DIRECTORIES":
             "false", "LOG_LEVEL": "ERROR", "ANSI_COLORS_DISABLED": "1"}
"""Set by us: no update check, no download of the check-id mapping, every given file scanned, quiet logs."""
SERIAL_BELOW_FILES = 100
"""Fewer IaC files than this, or two cores or fewer: checkov checks them in its own process
(`CHECKOV_PARALLELIZATION_TYPE=none`) instead of forking a worker per core. On the example (a few files, two
cores) forking cost 1.0 s of CPU and was slower in wall time too (6.3 vs 5.3 s CPU, 22.3 vs 19.7 s wall, medians
of 4 alternated pairs at load 17-20); the findings are the same either way."""


def _parallelization(files: int) -> dict[str, str]:
    return {"CHECKOV_PARALLELIZATION_TYPE": "none"} if files < SERIAL_BELOW_FILES or (os.cpu_count() or 1) <= 2 else {}

SPEC = ToolSpec(
    name="checkov",
    executable="checkov",
    version_args=("--version",),
    version_pattern=r"(\d+\.\d+\.\d+)",
    ok_exit_codes=frozenset({0, 1}),  # 1: failed checks
    version_in_output=True,
    install_hint="install mlsec-actions[iac] (the pinned checkov) or run scripts/install-checkov",
    isolation=Isolation(discovers=checkov_files.REPO_FILES, forced_flags=("--config-file",),
                        env_prefixes=ENV_PREFIXES),
)


def _check(args: list[str]) -> list[str]:
    """No download and no external modules, ever (a bug here fails loudly rather than going online)."""
    if "--skip-download" not in args or "--framework" not in args or any(a.startswith("--bc-api-key") for a in args):
        raise ValueError("checkov command lacks --skip-download/--framework or carries an API key")
    return args


def scan(root: Path, timeout: float, repo_config: bool = False) -> tuple[list[Finding], ToolRun]:
    """Run checkov on the tree's IaC files and turn its JSON report into findings."""
    gaps: list[CoverageGap] = []
    files = checkov_files.iac_files(root, gaps)
    if not files:
        return [], ToolRun("checkov", ToolStatus.SKIPPED, message="no IaC files checkov checks", gaps=tuple(gaps))
    with tempfile.TemporaryDirectory(prefix="mlsec-checkov-") as tmp:
        work, farm, home = Path(tmp) / "cwd", Path(tmp) / "farm", Path(tmp) / "home"
        for d in (work, farm, home):
            d.mkdir()
        names = checkov_files.link_farm(files, farm)
        args = _check(["-d", str(farm), "--config-file", str(CONFIG), "--output", "json", "--compact",
                       "--skip-download", "--download-external-modules", "false", "--framework", *FRAMEWORKS])
        got = execute(SPEC, args, timeout=timeout, workdir=work, scanned=root,
                      env={**FIXED_ENV, **_parallelization(len(files)), "HOME": str(home),
                           "CKV_CACHE_DIR": str(Path(tmp) / "cache")})
    run = replace(got.run, gaps=(*got.run.gaps, *gaps))
    if run.status is not ToolStatus.OK:
        return [], run
    try:
        reports = _reports(json.loads(got.stdout))
    except (ValueError, RecursionError) as e:
        return [], replace(run, status=ToolStatus.FAILED, message=safe(f"output is not a checkov report: {e}"))
    findings: list[Finding] = []
    more: list[CoverageGap] = []
    versions = set()
    for report in reports:
        versions.add(str(report.get("summary", {}).get("checkov_version") or ""))
        _parse(report, names, str(farm), repo_config, findings, more)
    found = next((v for v in sorted(versions) if v), None)
    return findings, replace(run, version=found, gaps=(*run.gaps, *more))


def _reports(data: Any) -> list[dict[str, Any]]:
    """One report per framework: a list of them, one alone, or only a summary when no framework found a file."""
    if isinstance(data, dict) and "check_type" not in data and isinstance(data.get("failed"), int):
        return []
    reports = data if isinstance(data, list) else [data]
    for r in reports:
        results = r.get("results") if isinstance(r, dict) else None
        if not isinstance(r, dict) or not isinstance(r.get("check_type"), str) or not isinstance(results, dict):
            raise ValueError("not a list of checkov reports (check_type, results)")
        for key in ("failed_checks", "skipped_checks", "parsing_errors"):
            value = results.get(key, [])
            if not isinstance(value, list):
                raise ValueError(f"{key} is not a list")
        if not isinstance(r.get("summary", {}), dict):
            raise ValueError("summary is not an object")
    return reports


def _tree_path(entry: dict[str, Any] | str, names: dict[str, str], farm: str) -> str | None:
    raw = entry if isinstance(entry, str) else str(entry.get("file_path") or "")
    if raw.startswith(farm + "/"):
        raw = raw[len(farm):]
    return names.get(raw.lstrip("/"))


def _parse(report: dict[str, Any], names: dict[str, str], farm: str, repo_config: bool,
           findings: list[Finding], gaps: list[CoverageGap]) -> None:
    results = report["results"]
    framework = re.sub(r"[^a-z0-9_]", "", str(report["check_type"]))[:40]
    for check in results.get("failed_checks", []):
        if isinstance(check, dict):
            _add(check, framework, names, farm, findings, gaps, suppressed=None)
    for check in results.get("skipped_checks", []):
        if not isinstance(check, dict):
            continue
        why = safe(str(_dict(check.get("check_result")).get("suppress_comment") or "no reason given"))[:200]
        if repo_config:
            gaps.append(CoverageGap(GapKind.ALLOW_RULE, f"checkov/{_id(check)} suppressed by the repository "
                                    f"(--repo-ignore-files): {why}", path=_tree_path(check, names, farm) or ""))
        else:
            _add(check, framework, names, farm, findings, gaps, suppressed=why)
    for failed in results.get("parsing_errors", []):
        gaps.append(CoverageGap(GapKind.FORMAT_UNKNOWN, f"checkov could not parse this file as {framework}",
                                path=_tree_path(str(failed), names, farm) or ""))


def _id(check: dict[str, Any]) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "", str(check.get("check_id") or "unknown"))[:40] or "unknown"


def _add(check: dict[str, Any], framework: str, names: dict[str, str], farm: str, findings: list[Finding],
         gaps: list[CoverageGap], suppressed: str | None) -> None:
    cid = _id(check)
    path = _tree_path(check, names, farm)
    if path is None:
        gaps.append(CoverageGap(GapKind.TOOL_ERROR, f"checkov/{cid} result for a file it was not given; ignored"))
        return
    name = safe(str(check.get("check_name") or cid))[:300]
    span = check.get("file_line_range")
    lines = [n for n in span if isinstance(n, int) and not isinstance(n, bool)] if isinstance(span, list) else []
    start = max(1, lines[0]) if lines else None  # checkov counts some workflow lines from 0
    end = max(start, lines[-1]) if start and lines else start
    resource = safe(str(check.get("resource") or ""))[:200] or None
    guide = check.get("guideline")
    rule = Rule(id=f"checkov/{cid}", name="Checkov" + "".join(w.title() for w in re.split(r"[_\W]+", cid) if w),
                short_description=f"checkov {cid}: {name}", full_description=name,
                help_text=f"{name}. Fix the resource, or accept the risk with a waiver in the mlsec policy.",
                help_uri=guide if isinstance(guide, str) and guide.startswith("https://") else HELP,
                tags=("misconfiguration", "iac", framework, "checkov"))
    message = f"{name} ({path}{f', {resource}' if resource else ''})"
    props: tuple[tuple[str, str], ...] = (("checkov-framework", framework),)
    if suppressed is not None:
        message += f"; suppressed in the repository ({suppressed}), not honoured without --repo-ignore-files"
        props += (("checkov-suppressed-by-repository", suppressed),)
    findings.append(Finding(rule=rule, severity=Severity.MEDIUM, message=message,
                            location=Location(path, start, end, logical=resource, logical_kind="resource"),
                            properties=props))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
