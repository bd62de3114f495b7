"""A vectorised prefilter for the personal-data check: one RE2 pass (pyarrow's compute kernels) over a
column block picks the values in which some `dataset_pii` pattern could match; only those go through the
exact patterns and checks. Without pyarrow every value goes through them (the same findings, slower).

The gate is a necessary condition of every pattern (each pattern with its look-arounds dropped and its
quantifiers cut to their minimum), so no match is lost; any value with a character outside ASCII is
always a candidate, so Unicode classes (`\\d` is any decimal digit to Python, ASCII to RE2) never
differ. `tests/unit/analyzers/test_dataset_speed.py` compares gated and ungated results.
"""

from __future__ import annotations

import importlib
from typing import Any

_D = "[0-9]"
GATE = "|".join((
    "[^\\x00-\\x7f]",  # outside ASCII: always checked
    "@",  # e-mail
    f"{_D}(?:[ -]?{_D}){{12}}",  # payment card: 13 digits at least
    f"[A-Z]{{2}}{_D}{{2}}",  # IBAN
    f"{_D}{{3}}-{_D}{{2}}-{_D}{{4}}",  # SSN
    f"{_D}{{8}}-?[A-Z]",  # DNI
    f"\\+[1-9]|\\({_D}{{3}}\\)",  # phone
    f"{_D}\\.{_D}{{1,3}}\\.{_D}{{1,3}}\\.{_D}",  # IPv4
    f"{_D}[A-Za-z]? [A-Z0-9]",  # street: number, street words
    "(?:straße|strasse|weg|gasse|allee|platz) [0-9]",  # street: Lindenstraße 12
    "[A-Z][a-z]+,? [A-Z]",  # person name
))
"""One RE2 pattern that matches wherever a personal-data pattern could."""


def _compute() -> tuple[Any, Any] | None:
    try:  # optional (the `data` extra); imported by name so the type checker does not need it
        return importlib.import_module("pyarrow"), importlib.import_module("pyarrow.compute")
    except ImportError:
        return None


_ARROW = _compute()


def candidates(values: list[str]) -> list[int] | None:
    """Indices of the values that may hold personal data; None without pyarrow (check them all)."""
    if _ARROW is None or not values:
        return None
    pa, pc = _ARROW
    mask = pc.match_substring_regex(pa.array(values, type=pa.string()), GATE)
    return pc.indices_nonzero(mask).to_pylist()  # type: ignore[no-any-return]
