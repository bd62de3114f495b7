"""OpenSCAP (`oscap xccdf eval`) as infra-scan's OS compliance check, of the runner (`/`) or a target root folder
(an image's unpacked root filesystem).

How it runs: `oscap xccdf eval --skip-valid --profile P [--rule R ...] --results FILE CONTENT` in an empty
folder of ours. A root other than `/` is scanned the way `oscap-chroot` does it: `OSCAP_PROBE_ROOT=<root>`
makes every probe read files, packages and permissions under the root (Debian ships no `oscap-chroot`; the
variable is what it sets). Every other `OSCAP_*` variable of the caller is removed. The content is the
policy's `openscap.content`, else the SCAP Security Guide data stream for the root's OS from Debian's
`ssg-debian`/`ssg-debderived` (`/usr/share/xml/scap/ssg/content/ssg-<id><major>-ds.xml`, chosen by the root's
`os-release`); no content for that OS is a failed run, not a pass.

Exit codes: 0 all selected rules passed, 2 at least one failed (both "ran"); anything else failed. The
results file is read with `xml_safe` (only its TestResult). A failed rule is a finding with its XCCDF rule id;
rules that errored or could not be checked, a probe that failed (`E: oscap: ...` on standard error: a failed
dpkg probe otherwise reads as "package not installed", i.e. a pass) and a profile where nothing applied (the
content is for another OS) are coverage gaps.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from mlsec_actions.findings import CoverageGap, Finding, GapKind, ToolRun, ToolStatus
from mlsec_actions.tools.base import Isolation, ToolSpec, execute, safe

SPEC = ToolSpec(
    name="openscap",
    executable="oscap",
    version_args=("--version",),
    version_pattern=r"\(oscap\)\s+([0-9][0-9.]*)",
    ok_exit_codes=frozenset({0, 2}),
    install_hint="install OpenSCAP and the SCAP Security Guide (Debian: apt-get install openscap-scanner "
                 "ssg-debian; scripts/bootstrap does it as root)",
    # It discovers no configuration; --results names our file, and OSCAP_* variables of the caller are removed.
    isolation=Isolation(discovers=(), forced_flags=("--results",), env_prefixes=("OSCAP",)),
    version_in_output=True,
)
SSG_CONTENT = Path("/usr/share/xml/scap/ssg/content")
MAX_RESULTS = 256 * 1024 * 1024
RULE_PREFIX = "xccdf_org.ssgproject.content_rule_"
_VERSION = re.compile(r"openscap:([0-9][0-9.]*)")


@dataclass(frozen=True)
class RuleResult:
    """One selected rule's outcome."""

    rule: str
    """The XCCDF rule id (`xccdf_org.ssgproject.content_rule_sshd_disable_root_login`)."""
    result: str
    """pass, fail, error, unknown, notapplicable, notchecked, informational, fixed."""
    severity: str
    """The rule's severity: high, medium, low, unknown."""
    title: str = ""
    """Its title, from oscap's output."""


def os_id(root: Path) -> str | None:
    """`debian11` from the root's os-release (`ID` + major `VERSION_ID`), or None. A link is not followed out of
    the root: `etc/os-release` is usually one, to `../usr/lib/os-release`, which is read instead."""
    from mlsec_actions import inputs
    from mlsec_actions.errors import InputError

    for rel in ("etc/os-release", "usr/lib/os-release"):
        path = root / rel
        if path.is_symlink() or not path.is_file():
            continue
        try:
            text = inputs.read_regular(path, "os-release", 64 * 1024).decode("utf-8", errors="replace")
        except InputError:
            continue
        fields = dict(re.findall(r'^([A-Z_]+)="?([^"\n]*)"?$', text, flags=re.M))
        ident, version = fields.get("ID", ""), fields.get("VERSION_ID", "").split(".")[0]
        if re.fullmatch(r"[a-z][a-z0-9_-]{0,30}", ident) and version.isdigit():
            return f"{ident}{version}"
    return None


def default_content(root: Path) -> Path | None:
    """The SSG data stream for the root's OS, when installed."""
    ident = os_id(root)
    candidate = SSG_CONTENT / f"ssg-{ident}-ds.xml" if ident else None
    return candidate if candidate is not None and candidate.is_file() else None


def evaluate(root: Path, content: Path, profile: str, rules: tuple[str, ...], timeout: float
             ) -> tuple[list[RuleResult], ToolRun]:
    """Run the evaluation; the selected rules' results and the run record."""
    with tempfile.TemporaryDirectory(prefix="mlsec-oscap-") as tmp:
        results = Path(tmp) / "results.xml"
        args = ["xccdf", "eval", "--skip-valid", "--profile", profile]
        for r in rules:
            args += ["--rule", r]
        args += ["--results", str(results), str(content)]
        env = {} if root.resolve() == Path("/") else {"OSCAP_PROBE_ROOT": str(root.resolve())}
        got = execute(SPEC, args, timeout=timeout, workdir=Path(tmp), env=env)
        if got.run.status is not ToolStatus.OK:
            return [], got.run
        try:
            found, version = parse_results(results, _titles(got.stdout))
        except ValueError as e:
            return [], replace(got.run, status=ToolStatus.FAILED, message=safe(f"its results were not usable: {e}"))
    gaps = [CoverageGap(GapKind.TOOL_ERROR, safe(f"oscap: {line[:200]}"))
            for line in dict.fromkeys(got.stderr.splitlines()) if line.startswith("E: ")][:20]
    gaps += _result_gaps(found, profile)
    return found, replace(got.run, version=version, gaps=tuple(gaps))


def _titles(stdout: bytes) -> dict[str, str]:
    """Rule id -> title from oscap's progress output (`Title\\t...` then `Rule\\t...`)."""
    out, title = {}, ""
    for line in stdout.decode("utf-8", errors="replace").split("\n"):  # not splitlines: it splits at the \r
        key, _, value = line.partition("\t")
        key = key.rstrip("\r")  # oscap writes `Title\r\t...` (a carriage return to redraw a terminal line)
        if key == "Title":
            title = value
        elif key == "Rule":
            out[value.strip()] = title.strip()[:200]
    return out


def parse_results(path: Path, titles: dict[str, str]) -> tuple[list[RuleResult], str | None]:
    """The TestResult's rule results (selected rules only) and oscap's version; ValueError when unusable."""
    from mlsec_actions import inputs, xml_safe
    from mlsec_actions.errors import InputError

    try:
        data = inputs.read_regular(path, "results", MAX_RESULTS)
        tests = xml_safe.parse(data, keep={"TestResult"}, limits=xml_safe.Limits(max_bytes=MAX_RESULTS))
    except (InputError, xml_safe.XmlRefused) as e:
        raise ValueError(str(e)) from None
    if len(tests) != 1:
        raise ValueError(f"{len(tests)} TestResult elements, expected 1")
    (test,) = tests
    match = _VERSION.search(test.get("test-system", ""))
    found = []
    for rr in test:
        if xml_safe.local(rr.tag) != "rule-result":
            continue
        result = next((c.text or "" for c in rr if xml_safe.local(c.tag) == "result"), "").strip()
        if result == "notselected":
            continue
        rule = rr.get("idref", "")
        found.append(RuleResult(rule, result, rr.get("severity", "unknown"), titles.get(rule, "")))
    return found, match.group(1) if match else None


def _result_gaps(found: list[RuleResult], profile: str) -> list[CoverageGap]:
    gaps = []
    unsure = [r.rule for r in found if r.result in ("error", "unknown", "notchecked")]
    if unsure:
        gaps.append(CoverageGap(GapKind.TOOL_ERROR, f"{len(unsure)} rule(s) could not be decided (error, unknown "
                                f"or notchecked), e.g. {short(unsure[0])}"))
    if not found:
        gaps.append(CoverageGap(GapKind.FORMAT_UNKNOWN, f"profile {profile[:100]}: no rule was selected"))
    elif all(r.result == "notapplicable" for r in found):
        gaps.append(CoverageGap(GapKind.FORMAT_UNKNOWN, f"profile {profile[:100]}: no rule applies to this root "
                                "(the content is for another OS or release)"))
    return gaps


def short(rule: str) -> str:
    """`sshd_disable_root_login` from the SSG rule id (other ids unchanged)."""
    return rule.removeprefix(RULE_PREFIX)


DOCS = "https://github.com/mlsec-actions/mlsec-actions/blob/main/docs/infra-scan.md#openscap"
_SEVERITY = {"high": "HIGH", "medium": "MEDIUM", "low": "LOW"}


def findings(found: list[RuleResult], root: Path, where: str) -> list[Finding]:
    """A finding per failed rule, with the rule id as `openscap/<rule>` and the root as its logical place."""
    from mlsec_actions.findings import Finding, Location, Rule, Severity

    out = []
    for r in found:
        if r.result != "fail":
            continue
        name = short(r.rule)[:120]
        title = r.title or name
        rule = Rule(id=f"openscap/{name}", name="OpenscapRule", short_description=f"OpenSCAP: {title}"[:200],
                    full_description=f"The XCCDF rule {r.rule[:200]} of the evaluated profile failed.",
                    help_text="Apply the rule's remediation from the SCAP Security Guide (`oscap xccdf "
                              "generate fix`), or waive it in the gate policy with a reason.",
                    help_uri=DOCS, tags=("security", "infrastructure", "compliance"))
        severity = Severity[_SEVERITY.get(r.severity, "LOW")]
        out.append(Finding(rule, f"OpenSCAP rule {name} failed on {root}: {title}.", severity,
                           Location(where, logical=f"{root}:{name}", logical_kind="object"),
                           properties=(("xccdf-rule", r.rule[:200]), ("root", str(root)))))
    return out
