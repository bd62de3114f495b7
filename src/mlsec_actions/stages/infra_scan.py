"""infra-scan (Dev stage 10): the deployment as it runs, against the policy.

- nmap on every `--target HOST[:PORTS]` (each must also be in the policy's `infra-scan.hosts` allowlist, or
  the stage refuses with exit 2 before any packet is sent): each open port no `allow` entry covers is a
  finding; with `service-detection`, a port whose service differs from its entry's is one too.
- TLS (in-house, Python's ssl) on every open port nmap saw TLS on or the policy marks `tls: true`:
  protocol versions below the policy's minimum, weak suites, certificate validity, self-signed, name.
- OpenSCAP (`oscap xccdf eval`) of the runner or a target root (`--oscap-root`) with a profile from the policy:
  each failed rule a finding with its XCCDF rule id.
- Nessus `.nessus` (v2) reports (`--nessus FILE`) imported as findings.

Inputs are options, not the scanned tree: nothing in PATH configures anything. Reference: docs/infra-scan.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from mlsec_actions.errors import UsageError
from mlsec_actions.findings import CoverageGap, Finding, GapKind, StageResult, ToolRun, ToolStatus, sort_findings
from mlsec_actions.stages.base import ScanContext, Stage, add_scan_arguments, positive_float, processing, run_scan

if TYPE_CHECKING:
    from mlsec_actions.stages.infra_targets import InfraPolicy, Target
    from mlsec_actions.tools.nmap import OpenPort

STAGE_ID = "infra-scan"


def configure(parser: argparse.ArgumentParser) -> None:
    add_scan_arguments(parser, STAGE_ID)
    parser.add_argument("--target", action="append", default=[], metavar="HOST[:PORTS]",
                        help="a host to scan, with optional ports (22,443,8000-8010); repeatable; it must also be "
                             "in the policy's infra-scan.hosts")
    parser.add_argument("--policy", default="default",
                        help="policy whose `infra-scan` section holds the host allowlist (default: %(default)s)")
    parser.add_argument("--tls-timeout", type=positive_float, default=5.0,
                        help="seconds per TLS handshake (default: %(default)s)")
    parser.add_argument("--tls-ca", type=Path, default=None, metavar="PEM",
                        help="CA certificates to verify TLS chains against (default: the system trust store)")
    parser.add_argument("--nessus", action="append", type=Path, default=[], metavar="FILE",
                        help="a Nessus .nessus (v2) report to import (repeatable)")
    parser.add_argument("--oscap-root", type=Path, default=None, metavar="DIR",
                        help="evaluate the policy's OpenSCAP profile against this root folder (/ for this machine)")
    parser.add_argument("--oscap-profile", default=None, metavar="ID",
                        help="XCCDF profile id (default: the policy's infra-scan.openscap.profile)")
    parser.add_argument("--oscap-content", type=Path, default=None, metavar="DATASTREAM",
                        help="SCAP source data stream (default: the policy's, else the SSG one for the root's OS)")


def _where(path: Path, root: Path) -> str:
    full = path.resolve()
    return full.relative_to(root).as_posix() if full.is_relative_to(root) else path.name


def scan(ctx: ScanContext) -> StageResult:
    if Path(ctx.args.paths[0]).resolve() != ctx.target:  # the inputs are options: judged once
        return StageResult(STAGE_ID)
    from mlsec_actions.stages import infra_targets as it

    args = ctx.args
    processing(args.policy)
    section, label = it.read_policy(str(args.policy))
    policy = it.from_section(section, label)
    targets = it.parse_targets(list(args.target))
    it.refuse_unlisted(targets, policy)  # exit 2: nothing contacted
    processing(None)
    where = _where(Path(label), ctx.root)
    findings: list[Finding] = []
    tools: list[ToolRun] = []
    if not targets:
        # As dast and runtime-probe: scanning nothing is a coverage gap (a strict policy fails on it), not silence.
        gap = CoverageGap(GapKind.EXCLUSION, "no --target given: no host was scanned")
        tools.append(ToolRun("nmap", ToolStatus.SKIPPED, message="no --target given: no host was scanned",
                             gaps=(gap,)))
    if args.tls_ca is not None and not Path(args.tls_ca).is_file():
        raise UsageError(f"{args.tls_ca}: --tls-ca is not a file")
    scap = _scap_inputs(args, policy)  # checked before any host is contacted
    findings += _nessus(args, ctx.root, tools)
    tls_ports: list[OpenPort] = []
    for target in targets:
        found, run = _nmap(target, policy, args.timeout)
        tools.append(run)
        findings += _judge_ports(found, policy, where)
        tls_ports += [p for p in found if p.tls or _marked_tls(policy, p)]
    tls_findings, tls_run = _tls(tls_ports, policy, args, where)
    findings += tls_findings
    tools.append(tls_run)
    findings += _openscap(scap, policy, args.timeout, tools, where)
    return StageResult(STAGE_ID, sort_findings(findings), tuple(tools),
                       extra={"targets": [t.host for t in targets], "policy": {"path": label}})


def _nmap(target: Target, policy: InfraPolicy, timeout: float) -> tuple[list[OpenPort], ToolRun]:
    from mlsec_actions.tools import nmap

    return nmap.scan(target.host, target.port_spec, detect=policy.service_detection, timeout=timeout)


def _nessus(args: argparse.Namespace, root: Path, tools: list[ToolRun]) -> list[Finding]:
    """Every --nessus report imported (bad input: exit 2, before any host is contacted)."""
    if not args.nessus:
        return []
    from mlsec_actions.analyzers import nessus_import

    findings: list[Finding] = []
    notes = []
    for path in [Path(p) for p in args.nessus]:
        processing(path)
        got = nessus_import.load(path, _where(path, root))
        findings += got.findings
        notes.append(f"{path.name}: {got.hosts} host(s), {len(got.findings)} finding(s), {got.informational} "
                     "informational item(s) not reported")
    processing(None)
    tools.append(ToolRun("nessus", ToolStatus.OK, notes=tuple(notes)))
    return findings


def _scap_inputs(args: argparse.Namespace, policy: InfraPolicy) -> tuple[Path, str, Path | None] | None:
    """(root, profile, content or None for the default) when OpenSCAP is asked for; UsageError when unusable."""
    if args.oscap_root is None:
        return None
    root = Path(args.oscap_root)
    if not root.is_dir():
        raise UsageError(f"{root}: --oscap-root is not a folder")
    profile = args.oscap_profile or policy.openscap_profile
    if not profile:
        raise UsageError("infra-scan: --oscap-root needs a profile (--oscap-profile or the policy's "
                         "infra-scan.openscap.profile)")
    named = args.oscap_content or policy.openscap_content
    content = Path(named) if named else None
    if content is not None and not content.is_file():
        raise UsageError(f"{content}: SCAP content is not a file")
    return root, profile, content


def _openscap(scap: tuple[Path, str, Path | None] | None, policy: InfraPolicy, timeout: float,
              tools: list[ToolRun], where: str) -> list[Finding]:
    from mlsec_actions.tools import openscap

    if scap is None:
        tools.append(ToolRun("openscap", ToolStatus.SKIPPED, message="no --oscap-root given: no OS was evaluated"))
        return []
    root, profile, content = scap
    content = content or openscap.default_content(root)
    if content is None:
        tools.append(ToolRun("openscap", ToolStatus.FAILED, message=f"no SCAP Security Guide content for "
                             f"{openscap.os_id(root) or 'an unknown OS'} in {openscap.SSG_CONTENT}; set "
                             "infra-scan.openscap.content"))
        return []
    found, run = openscap.evaluate(root, content, profile, policy.openscap_rules, timeout)
    tools.append(run)
    return openscap.findings(found, root, where)


def _marked_tls(policy: InfraPolicy, port: OpenPort) -> bool:
    host = policy.host(port.host)
    entry = host.entry_for(port.port) if host else None
    return entry is not None and entry.tls


def _tls(ports: list[OpenPort], policy: InfraPolicy, args: argparse.Namespace, where: str
         ) -> tuple[list[Finding], ToolRun]:
    """The in-house TLS checks on every TLS port found (analyzers/tls_config.py)."""
    if not ports:
        return [], ToolRun("tls", ToolStatus.SKIPPED, message="no TLS port: nmap saw none and the policy marks none")
    import ssl

    from mlsec_actions.analyzers import tls_config

    findings: list[Finding] = []
    gaps = [tls_config.untestable_gap()]
    for p in ports:
        probe = tls_config.probe(p.host, p.port, args.tls_timeout, args.tls_ca)
        got, unread = tls_config.judge(probe, policy.tls_min_version, policy.expiry_days, where)
        findings += got
        gaps += [*probe.gaps, *unread]
    return findings, ToolRun("tls", ToolStatus.OK, version=ssl.OPENSSL_VERSION, gaps=tuple(gaps))


def _judge_ports(found: list[OpenPort], policy: InfraPolicy, where: str) -> list[Finding]:
    from mlsec_actions.analyzers import infra_rules as rules
    from mlsec_actions.findings import Location, Severity

    out = []
    for p in found:
        host = policy.host(p.host)
        entry = host.entry_for(p.port) if host else None
        place = Location(where, logical=f"{p.host}:{p.port}/tcp", logical_kind="object")
        facts = (("host", p.host), ("port", str(p.port)), ("service", p.service))
        if entry is None:
            service = f" ({p.service})" if p.service else ""
            out.append(Finding(rules.PORT_NOT_ALLOWED, f"Port {p.port}/tcp{service} is open on {p.host}, and the "
                               "policy does not allow it.", Severity.HIGH, place, properties=facts))
        elif entry.service is not None and p.service != entry.service:
            seen = p.service or "an unknown service"
            out.append(Finding(rules.SERVICE_NOT_ALLOWED, f"Port {p.port}/tcp on {p.host} runs {seen}, not "
                               f"{entry.service} as the policy says.", Severity.HIGH, place, properties=facts))
    return out


def execute(args: argparse.Namespace) -> int:
    return run_scan(args, STAGE_ID, scan)


STAGE = Stage(id=STAGE_ID, summary="exposed ports vs the policy's allowlist (nmap), TLS configuration, OpenSCAP "
                                   "compliance, Nessus import", configure=configure, execute=execute)
