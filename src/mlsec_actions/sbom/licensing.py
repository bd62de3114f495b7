"""Dependency licences for the BOM, from code-scan's SARIF (`--licenses-from`): the inventory trivy's licence
scanner made there (`run.properties.mlsec-licenses`, mlsec_actions/licenses.py). Nothing of the tree is run or read.

A declared Python dependency takes the licences of the inventory's package of the same normalised name (and
version, when both have one); a package of the inventory that no dependency file of the root declares (an npm
lockfile, a requirements file in a sub-folder) is added as a component of its own. Each licence is an SPDX id
(`{license: {id}}`), an SPDX expression (`{expression}`) or, for anything else, a name (`{license: {name}}`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlsec_actions import licenses
from mlsec_actions.errors import InputError
from mlsec_actions.inputs import MAX_SARIF_BYTES, read_regular
from mlsec_actions.licenses import PackageLicense
from mlsec_actions.sbom.depfiles import normalize

PYTHON = frozenset({"pip", "pipenv", "poetry", "uv", "conda", "python-pkg", "pylock"})
PURL_TYPES = {"npm": "npm", "yarn": "npm", "pnpm": "npm", "bun": "npm", "node-pkg": "npm", "gomod": "golang",
              "gobinary": "golang", "cargo": "cargo", "rust-binary": "cargo", "bundler": "gem", "gemspec": "gem",
              "composer": "composer", "pom": "maven", "gradle": "maven", "jar": "maven", "nuget": "nuget",
              "dotnet-core": "nuget", "packages-props": "nuget", "cocoapods": "cocoapods", "swift": "swift",
              "pub": "pub", "hex": "hex", "conan": "conan", **dict.fromkeys(PYTHON, "pypi")}
"""trivy's package type -> purl type; another type is `generic`."""


@dataclass(frozen=True)
class Inventory:
    """What `--licenses-from` gave."""

    packages: tuple[PackageLicense, ...]
    """Every package with its licences."""
    complete: bool
    """False when code-scan's trivy did not finish everywhere (then noted in the BOM)."""
    source: str
    """The SARIF file."""


def read(path: Path) -> Inventory:
    """The inventory of a code-scan SARIF; bad input (not JSON, not SARIF, no inventory) is an `InputError`."""
    try:
        doc = json.loads(read_regular(path, "SARIF file", MAX_SARIF_BYTES))
    except (ValueError, RecursionError) as e:
        raise InputError(path, f"not JSON: {e}") from None
    runs = doc.get("runs") if isinstance(doc, dict) else None
    if not isinstance(runs, list):
        raise InputError(path, "not a SARIF log (no runs)")
    found = [r["properties"][licenses.PROPERTY] for r in runs if isinstance(r, dict)
             and isinstance(r.get("properties"), dict) and licenses.PROPERTY in r["properties"]]
    if not found:
        raise InputError(path, f"no licence inventory (run.properties.{licenses.PROPERTY}): give the code-scan "
                               "stage's SARIF, written by a code-scan whose trivy ran")
    packages: list[PackageLicense] = []
    complete = True
    for value in found:
        try:
            got, done = licenses.from_property(value)
        except licenses.InventoryError as e:
            raise InputError(path, str(e)) from None
        packages.extend(got)
        complete = complete and done
    return Inventory(tuple(packages), complete, str(path))


def python_key(pkg: PackageLicense) -> str | None:
    """The normalised name a Python package of the inventory matches declared dependencies by."""
    return normalize(pkg.name) if pkg.ecosystem in PYTHON else None


def component_licenses(pkg: PackageLicense) -> list[Any]:
    """cyclonedx licence objects for a package's declared licences (none for an unknown one). CycloneDX allows
    one expression or a list of licences: several licences with an expression among them become one `AND`."""
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression

    declared = [x.strip() for x in pkg.licenses if x.strip().lower() not in licenses.UNKNOWN]
    factory = LicenseFactory()
    made = [factory.make_from_string(x) for x in dict.fromkeys(declared)]
    if len(made) > 1 and any(isinstance(m, LicenseExpression) for m in made):
        joined = " AND ".join(f"({x})" if isinstance(m, LicenseExpression) else x
                              for x, m in zip(dict.fromkeys(declared), made, strict=True))
        combined = factory.make_from_string(joined)
        if isinstance(combined, LicenseExpression):
            return [combined]
        # A name among them (not SPDX): no one expression can hold all; the expressions become names.
        return [DisjunctiveLicense(name=x) if isinstance(m, LicenseExpression) else m
                for x, m in zip(dict.fromkeys(declared), made, strict=True)]
    return made


def purl_type(pkg: PackageLicense) -> str:
    return PURL_TYPES.get(pkg.ecosystem, "generic")
