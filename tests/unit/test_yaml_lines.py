"""yaml_lines: the same data as PyYAML's safe loader on ordinary documents, the line of every key, and
bounds (depth, aliases, expanded nodes) that make hostile documents fail at once with a YAML error."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsec_actions import yaml_lines
from mlsec_actions.yaml_lines import DuplicateKey, LimitExceeded, Limits, compose, key_name, line_of
from tests.trees import nesting_depth

SMALL = Limits(max_depth=5, max_aliases=3, max_nodes=50)


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    """The classic: each level a list of `width` aliases of the level below; a few hundred bytes that
    expand to width**levels values."""
    rows = ['l0: &l0 "lol"']
    for i in range(1, levels + 1):
        rows.append(f"l{i}: &l{i} [{', '.join(f'*l{i - 1}' for _ in range(width))}]")
    return "\n".join(rows) + "\n"


def nested(depth: int, flow: bool, mapping: bool) -> str:
    if flow:
        return ("{a: " * depth + "1" + "}" * depth) if mapping else ("[" * depth + "1" + "]" * depth)
    if mapping:
        return "".join(" " * i + "a:\n" for i in range(depth - 1)) + " " * (depth - 1) + "a: 1\n"
    return "".join(" " * (2 * i) + "-\n" for i in range(depth - 1)) + " " * (2 * (depth - 1)) + "- 1\n"


def test_data_and_lines() -> None:
    doc, lines = compose("a: 1\nb:\n  - x\n  - {c: 2026-01-02, d: null}\n")
    assert doc == {"a": 1, "b": ["x", {"c": "2026-01-02", "d": None}]}
    assert lines[("b",)] == 2 and lines[("b", 0)] == 3 and lines[("b", 1, "d")] == 4
    assert line_of(lines, ("b", 1, "d", "missing")) == 4
    assert key_name(("waivers", 0, "reason")) == "waivers[0].reason" and key_name(()) == "(top)"


def test_bad_date_stays_text() -> None:
    assert compose("d: 2026-13-01\n")[0] == {"d": "2026-13-01"}


def test_empty_and_scalar_documents() -> None:
    assert compose("")[0] is None
    assert compose("# only a comment\n")[0] is None
    assert compose("42\n")[0] == 42


def test_duplicate_key_names_its_line() -> None:
    with pytest.raises(DuplicateKey) as e:
        compose("a:\n  b: 1\n  b: 2\n")
    assert (e.value.key, e.value.line) == ("a.b", 3)


@pytest.mark.parametrize("text", [
    "a: *nowhere\n",                       # undefined alias
    "a: &x [1, *x]\n",                     # an alias into the node being defined (a cycle)
    "? [a, b]\n: 1\n",                     # a non-scalar key
    "? {a: 1}\n: 1\n",
    "a: &k [1]\n*k : 2\n",                 # an alias to a list as a key
    "a: 1\n---\nb: 2\n",                   # two documents
    "a: !!python/object/apply:os.system [echo pwned]\n",
    "a: !!python/name:os.system\n",
    "a: !!set {x, y}\n",
    "a: !custom [1]\n",
    "a: [1\n",                             # syntax
])
def test_refused_documents_raise_a_yaml_error(text: str) -> None:
    with pytest.raises(yaml.MarkedYAMLError):
        compose(text)


def test_billion_laughs_fails_on_the_alias_count() -> None:
    with pytest.raises(LimitExceeded, match="more than 16 aliases") as e:
        compose(billion_laughs())
    assert e.value.problem_mark is not None and e.value.problem_mark.line == 2


def test_expanded_node_budget_counts_aliases_at_their_size() -> None:
    # 3 aliases, well under the alias limit, but each names 20 values: 1 + 20 + 1 + 3*20 > 50.
    text = "a: &a [" + ", ".join("1" for _ in range(20)) + "]\nb: [*a, *a, *a]\n"
    with pytest.raises(LimitExceeded, match="more than 50 values"):
        compose(text, SMALL)
    assert compose("a: &a [1, 2]\nb: [*a, *a, *a]\n", SMALL)[0] == {"a": [1, 2], "b": [[1, 2]] * 3}


@pytest.mark.parametrize(("limit", "ok"), [(3, True), (2, False)])
def test_alias_limit_is_exact(limit: int, ok: bool) -> None:
    text = "a: &a 1\nb: [*a, *a, *a]\n"
    limits = Limits(max_aliases=limit)
    if ok:
        assert compose(text, limits)[0] == {"a": 1, "b": [1, 1, 1]}
    else:
        with pytest.raises(LimitExceeded):
            compose(text, limits)


@pytest.mark.parametrize("flow", [True, False])
@pytest.mark.parametrize("mapping", [True, False])
def test_depth_limit_is_exact(flow: bool, mapping: bool) -> None:
    compose(nested(5, flow, mapping), SMALL)
    with pytest.raises(LimitExceeded, match="deeper than 5") as e:
        compose(nested(6, flow, mapping), SMALL)
    assert e.value.problem_mark is not None


@pytest.mark.parametrize("loader", [yaml.SafeLoader, getattr(yaml, "CSafeLoader", yaml.SafeLoader)])
def test_depth_100k_is_a_yaml_error_not_a_recursion_error(monkeypatch: pytest.MonkeyPatch,
                                                          loader: type[yaml.SafeLoader]) -> None:
    monkeypatch.setattr(yaml_lines, "_Loader", loader)
    for text in ("[" * 100_000 + "]" * 100_000, "{a: " * 100_000 + "1" + "}" * 100_000,
                 nested(1_400, flow=False, mapping=True)):
        with pytest.raises(yaml.MarkedYAMLError):
            compose(text)


def test_node_limit_is_exact() -> None:
    # root list + 49 scalars = 50 values: at the limit; one more is over.
    compose("[" + ", ".join("1" for _ in range(49)) + "]", SMALL)
    with pytest.raises(LimitExceeded):
        compose("[" + ", ".join("1" for _ in range(50)) + "]", Limits(max_depth=5, max_aliases=3, max_nodes=50))


# --- property-based: ordinary documents load as PyYAML loads them; hostile ones fail as a YAML error.

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20),
                    st.floats(allow_nan=False), st.dates().map(dt.date.isoformat))
DATA = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                    max_leaves=30)


@settings(max_examples=200, deadline=None)
@given(data=DATA, flow=st.booleans())
def test_agrees_with_safe_load(data: Any, flow: bool) -> None:
    text = yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True)
    expected = yaml.safe_load(text)
    if nesting_depth(expected) > yaml_lines.DEFAULT_LIMITS.max_depth:
        return
    assert compose(text)[0] == expected


@settings(max_examples=100, deadline=None)
@given(shared=DATA, copies=st.integers(min_value=2, max_value=30))
def test_aliases_up_to_the_limit_load_and_beyond_fail(shared: Any, copies: int) -> None:
    shared = [shared, 1]  # a list, so safe_dump writes an anchor and aliases for the copies
    text = yaml.safe_dump({"items": [shared] * copies}, default_flow_style=False)
    aliases = copies - 1
    if aliases <= yaml_lines.DEFAULT_LIMITS.max_aliases:
        assert compose(text)[0] == yaml.safe_load(text)
    else:
        with pytest.raises(LimitExceeded, match="aliases"):
            compose(text)


@settings(max_examples=100, deadline=None)
@given(depth=st.integers(min_value=1, max_value=200), flow=st.booleans(), mapping=st.booleans())
def test_random_nesting_loads_or_fails_by_depth(depth: int, flow: bool, mapping: bool) -> None:
    text = nested(depth, flow, mapping)
    if depth <= yaml_lines.DEFAULT_LIMITS.max_depth:
        assert compose(text)[0] == yaml.safe_load(text)
    else:
        with pytest.raises(LimitExceeded):
            compose(text)


@settings(max_examples=100, deadline=None)
@given(levels=st.integers(min_value=1, max_value=12), width=st.integers(min_value=1, max_value=12))
def test_random_laughs_never_exceed_the_node_budget(levels: int, width: int) -> None:
    text = billion_laughs(levels, width)
    expanded = sum(width ** i for i in range(levels + 1)) + levels + 1  # values + the top mapping
    try:
        doc, _ = compose(text)
    except LimitExceeded:
        assert levels * width > 16 or expanded > yaml_lines.DEFAULT_LIMITS.max_nodes
        return
    assert levels * width <= 16
    assert doc == yaml.safe_load(text)


def test_a_control_character_is_a_marked_error_with_its_line() -> None:
    # A sparse (NUL-filled) file: PyYAML's reader error carries no mark; callers get one.
    with pytest.raises(yaml.MarkedYAMLError, match="unacceptable character #x0000") as e:
        compose("waivers:\n- " + "\x00" * 10)
    assert e.value.problem_mark is not None and e.value.problem_mark.line == 1
