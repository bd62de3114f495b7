"""Which controls of which frameworks a rule bears on (OWASP ML and LLM Top 10, MITRE ATLAS, NIST 800-53,
ISO/IEC 27001, PCI DSS): the mappings are data (`data/compliance.json`), shipped in the package.

A control is written `<framework>:<control>` (`owasp-llm:LLM01`, `atlas:AML.T0010.003`); it travels as a SARIF rule
tag, and the gate derives it again from the rule id (never from the tags of the SARIF it reads: a stage's file
cannot take its findings out of a framework). Reference: docs/compliance.md.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

SEPARATOR = ":"


@dataclass(frozen=True)
class Framework:
    """A catalogue of controls findings can be grouped under."""

    id: str
    """The prefix of its controls (`owasp-llm`)."""
    title: str
    """Its name."""
    version: str
    """The edition the mappings were made for."""
    url: str
    """Where it is published."""
    controls: dict[str, str]
    """Control id (`LLM01`) -> short title."""


@dataclass(frozen=True)
class Catalog:
    """Every framework, and every rule-id glob with the controls it maps to."""

    frameworks: dict[str, Framework]
    mappings: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...]

    def controls(self) -> tuple[str, ...]:
        """Every control of every framework, `<framework>:<control>`."""
        return tuple(f"{f.id}{SEPARATOR}{c}" for f in self.frameworks.values() for c in f.controls)

    def title(self, control: str) -> str:
        framework, _, cid = control.partition(SEPARATOR)
        f = self.frameworks.get(framework)
        return f.controls.get(cid, "") if f is not None else ""


@cache
def catalog() -> Catalog:
    """The shipped catalogue (read once per process)."""
    raw = json.loads(resources.files("mlsec_actions").joinpath("data", "compliance.json").read_text("utf-8"))
    frameworks = {fid: Framework(fid, f["title"], f["version"], f["url"], dict(f["controls"]))
                  for fid, f in raw["frameworks"].items()}
    mappings = tuple((re.compile("|".join(fnmatch.translate(g) for g in m["rules"])), tuple(m["controls"]))
                     for m in raw["mappings"])
    return Catalog(frameworks, mappings)


@lru_cache(maxsize=8192)  # bounded: rule ids come from SARIF files, and a hostile one may hold millions
def controls_for(rule_id: str) -> tuple[str, ...]:
    """The controls a rule maps to, in the catalogue's order, each once. Case matters: rule ids are lowercase."""
    out: dict[str, None] = {}
    for pattern, controls in catalog().mappings:
        if pattern.match(rule_id):
            out.update(dict.fromkeys(controls))
    return tuple(out)


def unknown_patterns(patterns: Iterable[str]) -> list[str]:
    """The patterns (`!` for exclusion allowed) that match no control of the catalogue: a typo in a policy's
    `control` would otherwise count nothing and pass."""
    known = catalog().controls()
    out = []
    for p in patterns:
        rx = re.compile(fnmatch.translate(p.removeprefix("!")))
        if not any(rx.match(c) for c in known):
            out.append(p)
    return out
