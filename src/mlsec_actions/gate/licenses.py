"""`code-scan.licenses`: the dependency licences of code-scan's inventory against the policy's allow and deny lists.

The gate reads the inventory code-scan wrote to its SARIF (`run.properties.mlsec-licenses`, mlsec_actions/licenses.py),
never the tree. Fails closed: no code-scan SARIF, a run without the inventory (trivy failed), an incomplete or
malformed inventory are `license-unchecked` violations. A dependency whose licence cannot be complied with
(`license`) or that declares none (`license-unknown`, or a warning with `unknown: warn`) is named with its manifest.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any

from mlsec_actions import licenses
from mlsec_actions.gate.model import LicensePolicy
from mlsec_actions.gate.rules import Violation
from mlsec_actions.licenses import PackageLicense

CODE_SCAN = "code-scan"
RULE = "code-scan.licenses"
WARN_LISTED = 20
"""With `unknown: warn`, the packages named in the one warning; the rest are counted."""


def _match(patterns: tuple[str, ...], licence: str) -> str | None:
    """The first pattern (a glob, any case) that matches the licence id."""
    low = licence.strip().lower()
    return next((p for p in patterns if fnmatch.fnmatchcase(low, p.lower())), None)


def accepted(policy: LicensePolicy, licence: str) -> bool:
    """Whether one licence id is acceptable: not denied and, when an allow list is given, on it."""
    if _match(policy.deny, licence) is not None:
        return False
    return not policy.allow or _match(policy.allow, licence) is not None


def _why(policy: LicensePolicy, licence: str) -> str:
    """Which terms of a refused licence (expression) are the reason."""
    parts = []
    for term in dict.fromkeys(licenses.terms(licence)):
        denied = _match(policy.deny, term)
        if denied is not None:
            parts.append(f"{term} is denied ('{denied}')")
        elif policy.allow and _match(policy.allow, term) is None:
            parts.append(f"{term} is not in the allow list")
    return "; ".join(parts) or "not a valid SPDX expression"


def judge(policy: LicensePolicy, pkg: PackageLicense) -> tuple[str, str] | None:
    """(violation kind, reason) for a dependency the policy refuses; None when it is accepted."""
    if not pkg.known:
        return "license-unknown", "declares no licence"
    for licence in pkg.licenses:
        if licence.strip().lower() in licenses.UNKNOWN:
            continue
        if not licenses.acceptable(licence, lambda term: accepted(policy, term)):
            return "license", f"is under {licence}: {_why(policy, licence)}"
    return None


def _name(pkg: PackageLicense) -> str:
    return f"{pkg.name} {pkg.version}".strip() + f" ({pkg.ecosystem}, {pkg.path})"


def evaluate(policy: LicensePolicy, runs: Iterable[tuple[str, str, dict[str, Any]]], policy_path: str
             ) -> tuple[list[Violation], list[str]]:
    """Violations and warnings for the code-scan runs among (stage, source, run.properties)."""
    out: list[Violation] = []
    unknown: list[PackageLicense] = []
    line = policy.line or 1

    def unchecked(text: str, source: str = "") -> None:
        out.append(Violation("license-unchecked", text + "; dependency licences were not checked", RULE,
                             CODE_SCAN, source or policy_path, None if source else line))

    scans = [(source, props) for stage, source, props in runs if stage == CODE_SCAN]
    if not scans:
        unchecked("the policy judges dependency licences (code-scan.licenses) but no code-scan SARIF was given")
    for source, props in scans:
        value = props.get(licenses.PROPERTY)
        if value is None:
            unchecked(f"{source}: code-scan recorded no licence inventory (run.properties.{licenses.PROPERTY}: "
                      "trivy failed, did not run, or the stage crashed)", source)
            continue
        try:
            packages, complete = licenses.from_property(value)
        except licenses.InventoryError as e:
            unchecked(f"{source}: {e}", source)
            continue
        if not complete:
            unchecked(f"{source}: the licence inventory is incomplete (trivy did not finish on every path, or more "
                      f"than {licenses.MAX_PACKAGES} packages)", source)
        for pkg in packages:
            found = judge(policy, pkg)
            if found is None:
                continue
            kind, reason = found
            if kind == "license-unknown" and not policy.unknown_fails:
                unknown.append(pkg)
                continue
            out.append(Violation(kind, f"{_name(pkg)} {reason}", RULE, CODE_SCAN, policy_path, line))
    warnings = []
    if unknown:
        named = ", ".join(_name(p) for p in unknown[:WARN_LISTED])
        more = f" and {len(unknown) - WARN_LISTED} more" if len(unknown) > WARN_LISTED else ""
        warnings.append(f"code-scan: {len(unknown)} dependenc{'y declares' if len(unknown) == 1 else 'ies declare'} "
                        f"no licence (code-scan.licenses.unknown: warn): {named}{more}")
    return out, warnings
