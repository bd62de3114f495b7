"""Property tests: random safe object graphs, pickled with protocols 0-5, are silent; the same graphs with
one dangerous global injected at a random depth are always a high finding. Built as bytes, never loaded.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import io
import pickle

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlsec_actions.analyzers import pickle_scan
from mlsec_actions.analyzers.base import Blob
from mlsec_actions.findings import Finding, Severity
from tests import pickle_corpus as pc

_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40),
    st.binary(max_size=300), st.complex_numbers(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False), st.datetimes(), st.dates(), st.timedeltas(),
    st.builds(bytearray, st.binary(max_size=20)), st.builds(lambda n: range(n), st.integers(0, 5)),
    st.frozensets(st.integers(), max_size=4), st.sets(st.text(max_size=5), max_size=4),
)


def _graphs(leaves: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.recursive(leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.tuples(inner, inner), st.tuples(inner),
        st.dictionaries(st.text(max_size=8), inner, max_size=5),
        st.builds(collections.OrderedDict, st.dictionaries(st.text(max_size=8), inner, max_size=4)),
        st.builds(lambda d: collections.defaultdict(list, d), st.dictionaries(st.integers(), inner, max_size=3)),
        st.builds(collections.deque, st.lists(inner, max_size=3)),
    ), max_leaves=25)


SAFE = _graphs(_LEAVES)
DANGEROUS = st.sampled_from([
    ("os", "system"), ("posix", "system"), ("subprocess", "Popen"), ("builtins", "eval"), ("builtins", "exec"),
    ("builtins", "getattr"), ("builtins", "__import__"), ("runpy", "_run_code"), ("torch", "os.system"),
    ("collections", "OrderedDict.__init__.__globals__"), ("pickle", "loads"), ("webbrowser", "open"),
    ("mypackage", "Anything"), ("functools", "partial"), ("pydoc", "pipepager"), ("logging.config", "dictConfig"),
])


def _scan(data: bytes) -> list[Finding]:
    return pickle_scan.analyze(Blob("m.pkl", None, len(data), lambda: io.BytesIO(data)))


def _inject(graph: object, payload: pc.Injected, path: list[int]) -> object:
    """Put `payload` at the place `path` picks in the graph (depth = how far the walk goes)."""
    if not path:
        return [graph, payload]
    here, rest = path[0], path[1:]
    if isinstance(graph, list) and graph:
        out = list(graph)
        out[here % len(out)] = _inject(out[here % len(out)], payload, rest)
        return out
    if isinstance(graph, tuple) and graph:
        items = list(graph)
        items[here % len(items)] = _inject(items[here % len(items)], payload, rest)
        return tuple(items)
    if isinstance(graph, dict) and graph:
        keys = list(graph)
        key = keys[here % len(keys)]
        copy = dict(graph)
        copy[key] = _inject(graph[key], payload, rest)
        return copy
    return (graph, payload)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SAFE, st.integers(0, pickle.HIGHEST_PROTOCOL))
def test_safe_graphs_are_silent(graph: object, protocol: int) -> None:
    assert _scan(pickle.dumps(graph, protocol=protocol)) == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SAFE, st.integers(0, pickle.HIGHEST_PROTOCOL), DANGEROUS, st.lists(st.integers(0, 7), max_size=6),
       st.text(max_size=30))
def test_one_dangerous_global_anywhere_is_high(graph: object, protocol: int, target: tuple[str, str],
                                               path: list[int], argument: str) -> None:
    data = pc.dumps_injected(_inject(graph, pc.Injected(*target, (argument,)), path), protocol)
    findings = _scan(data)
    hit = [f for f in findings if dict(f.properties).get("global") == ".".join(target)]
    assert hit and max(f.severity for f in hit) >= Severity.HIGH


def test_the_strategies_cover_the_stdlib_value_types() -> None:
    # A value type missing from the allowlist would make every graph holding it a finding.
    values = [decimal.Decimal("1.5"), datetime.datetime(2020, 1, 1), datetime.timedelta(1), 1j, bytearray(b"x"),
              range(3), frozenset({1}), {1}, collections.Counter("ab"), collections.deque([1])]
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert _scan(pickle.dumps(values, protocol=protocol)) == []
