"""infra-scan's in-house rules: the port allowlist (judging nmap's results).

Each rule id is `<tool>/<rule>` and its help link is the heading of the same name in docs/infra-scan.md.
"""

from __future__ import annotations

from mlsec_actions.findings import Rule

DOCS = "https://github.com/mlsec-actions/mlsec-actions/blob/main/docs/infra-scan.md"


def _rule(rule_id: str, name: str, short: str, full: str, fix: str, *tags: str) -> Rule:
    return Rule(id=rule_id, name=name, short_description=short, full_description=full, help_text=fix,
                help_uri=f"{DOCS}#{rule_id.replace('/', '')}", tags=("security", "infrastructure", *tags))


PORT_NOT_ALLOWED = _rule(
    "nmap/port-not-allowed", "PortNotAllowed", "An open port is not in the policy's allowlist for its host",
    "nmap found the port open on a host the policy lists, and no `allow` entry of that host covers it: a service "
    "is exposed that nobody declared.",
    "Close the port (stop the service, bind it to loopback, or filter it), or add an `allow` entry for it to the "
    "host in the policy's `infra-scan.hosts`, with a reason.", "network", "exposure")
SERVICE_NOT_ALLOWED = _rule(
    "nmap/service-not-allowed", "ServiceNotAllowed", "An allowed port runs another service than the policy names",
    "Service detection (nmap -sV) found a different service on the port than the policy's `allow` entry names "
    "(for example a debug HTTP server where SSH is expected).",
    "Find what listens on the port and stop it, or correct the entry's `service` in the policy.", "network")
RULES = (PORT_NOT_ALLOWED, SERVICE_NOT_ALLOWED)
