"""Pickle analysis without loading: every malicious construct found, benign twins silent, errors reported."""

from __future__ import annotations

import collections
import io
import pickle
from pathlib import Path

import pytest

from mlsec_actions.analyzers import numpy_file, pickle_scan
from mlsec_actions.analyzers.base import Blob
from mlsec_actions.analyzers.pickle_policy import Verdict, judge
from mlsec_actions.findings import Finding, Severity
from tests import model_corpus as corpus

CMD = "touch /nonexistent/mlsec-canary"


def scan(data: bytes, analyzer: object = pickle_scan.analyze) -> list[Finding]:
    blob = Blob("model.pkl", None, len(data), lambda: io.BytesIO(data))
    return analyzer(blob)  # type: ignore[operator, no-any-return]


def globals_of(findings: list[Finding], rule: str = "pickle/dangerous-global") -> set[str]:
    return {dict(f.properties)["global"] for f in findings if f.rule.id == rule}


@pytest.mark.parametrize(("data", "qualname"), [
    (corpus.call("os", "system", CMD), "os.system"),
    (corpus.call("os", "system", CMD, protocol=0), "os.system"),
    (corpus.call("os", "system", CMD, protocol=1), "os.system"),
    (corpus.stack_global_with_memo(CMD), "os.system"),
    (corpus.inst_protocol0(CMD), "os.system"),
    (corpus.call("builtins", "eval", "1+1"), "builtins.eval"),
    (corpus.call("builtins", "getattr", "x", "y"), "builtins.getattr"),
    (corpus.call("__builtin__", "__import__", "os"), "__builtin__.__import__"),
    (corpus.call("importlib", "import_module", "os"), "importlib.import_module"),
    (corpus.call("importlib.util", "spec_from_file_location", "x", "/tmp/x.py"),
     "importlib.util.spec_from_file_location"),
    (corpus.call("pip", "main", ["install", "x"]), "pip.main"),
    (corpus.call("code", "interact"), "code.interact"),
    (corpus.call("operator", "methodcaller", "system", CMD), "operator.methodcaller"),
    (corpus.call("_operator", "attrgetter", "system"), "_operator.attrgetter"),
    (corpus.call("torch.hub", "load", "a/b", "m"), "torch.hub.load"),
    (corpus.call("runpy", "run_path", "x.py"), "runpy.run_path"),
    (corpus.call("subprocess", "check_output", ["id"]), "subprocess.check_output"),
    (corpus.call("socket", "create_connection", ("h", 1)), "socket.create_connection"),
    (corpus.call("webbrowser", "open", "http://x"), "webbrowser.open"),
    (corpus.call("shutil", "rmtree", "/"), "shutil.rmtree"),
    (corpus.call("ctypes", "CDLL", "libc.so.6"), "ctypes.CDLL"),
    (corpus.call("marshal", "loads", b"x"), "marshal.loads"),
    (corpus.call("types", "CodeType", 1), "types.CodeType"),
    (corpus.call("_pickle", "loads", b"x"), "_pickle.loads"),
    (corpus.call("sys", "exit", 1), "sys.exit"),
    (corpus.call("pty", "spawn", "sh"), "pty.spawn"),
    (corpus.call("nt", "system", "x"), "nt.system"),
])
def test_dangerous_globals_are_critical(data: bytes, qualname: str) -> None:
    findings = scan(data)
    assert qualname in globals_of(findings)
    assert max(f.severity for f in findings) is Severity.CRITICAL


def test_partial_wrapping_a_dangerous_call_is_critical_itself() -> None:
    findings = scan(corpus.partial_of_system(CMD))
    assert globals_of(findings) == {"os.system", "functools.partial"}
    partial = next(f for f in findings if dict(f.properties)["global"] == "functools.partial")
    assert "wrapping os.system" in partial.message


def test_partial_alone_is_high() -> None:
    findings = scan(corpus.call("functools", "partial", 1))
    assert [(f.rule.id, f.severity) for f in findings] == [("pickle/risky-global", Severity.HIGH)]


def test_unknown_global_is_high_and_named() -> None:
    findings = scan(corpus.call("mypackage.layers", "CustomThing", 1))
    assert [(f.rule.id, f.severity) for f in findings] == [("pickle/unknown-global", Severity.HIGH)]
    assert "mypackage.layers.CustomThing" in findings[0].message


def test_payload_followed_by_garbage_reports_both() -> None:
    data = corpus.call("os", "system", CMD)[:-1] + b"\xff\xfegarbage"
    rules = {f.rule.id for f in scan(data)}
    assert rules == {"pickle/dangerous-global", "pickle/malformed"}


def test_second_stream_is_scanned() -> None:
    data = pickle.dumps(collections.OrderedDict(a=1), protocol=4) + corpus.call("os", "system", CMD)
    assert globals_of(scan(data)) == {"os.system"}


def test_protocol0_second_stream_after_stop_is_scanned() -> None:
    data = pickle.dumps([1, 2], protocol=0) + corpus.call("os", "system", CMD, protocol=0)
    assert globals_of(scan(data)) == {"os.system"}


def test_trailing_binary_data_is_not_a_finding() -> None:
    # torch's legacy format: pickles, then raw storage bytes.
    data = pickle.dumps(collections.OrderedDict(a=1), protocol=2) + b"\x10\x00\x00\x00\x00\x00\x00\x00" + bytes(64)
    assert scan(data) == []


def test_location_names_offset_and_global() -> None:
    [finding] = scan(corpus.stack_global_with_memo(CMD))
    assert finding.location.logical == "offset 23::os.system"
    assert finding.location.path == "model.pkl"


def test_dynamic_stack_global_is_flagged() -> None:
    # STACK_GLOBAL over a value built at load time (a call result), not a literal string.
    data = b"\x80\x04" + corpus._sbu("mypkg") + b"\x8c\x04make\x93)R\x8c\x06system\x93."
    assert "pickle/dynamic-global" in {f.rule.id for f in scan(data)}


@pytest.mark.parametrize("data", [b"", b"\x80", b"\x80\x02", b"\x80\x02cos\nsys", b"\x80\x02]q\x00(K\x01"])
def test_empty_or_truncated_is_malformed(data: bytes) -> None:
    findings = scan(data)
    assert findings and {f.rule.id for f in findings} == {"pickle/malformed"}


def test_memo_read_before_write_is_malformed() -> None:
    assert {f.rule.id for f in scan(b"\x80\x02h\x05.")} == {"pickle/malformed"}


@pytest.mark.parametrize("data", [
    corpus.sklearn_pickle(),
    pickle.dumps(collections.OrderedDict(a=[1.0, 2.0]), protocol=2),
    corpus.torch_state_dict_pickle(),
    corpus.joblib_like(None),
    pickle.dumps({"a": (1, 2.0, "x", b"y", None, True)}, protocol=5),
], ids=["sklearn", "ordereddict", "torch-state-dict", "joblib", "plain"])
def test_benign_twins_are_silent(data: bytes) -> None:
    assert scan(data) == []


def test_numpy_pickles_are_allowed() -> None:
    numpy = pytest.importorskip("numpy")  # numpy ships with modelscan, a pinned dependency
    assert scan(pickle.dumps(numpy.arange(4.0), protocol=2)) == []


def test_joblib_array_bytes_are_skipped_and_payload_after_them_found() -> None:
    findings = scan(corpus.joblib_like(("os", "system")))
    assert globals_of(findings) == {"os.system"}
    assert not [f for f in findings if f.rule.id == "pickle/malformed"]


def test_npy_object_array_pickle_is_scanned() -> None:
    payload = corpus.call("os", "system", CMD)
    data = corpus.npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", payload)
    findings = scan(data, numpy_file.analyze)
    assert {f.rule.id for f in findings} == {"numpy/object-array", "pickle/dangerous-global"}


def test_npy_numeric_array_is_silent_and_bad_header_reported() -> None:
    good = corpus.npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", b"\x00" * 4)
    assert scan(good, numpy_file.analyze) == []
    bad = b"\x93NUMPY\x01\x00\xff\x00{'descr'"
    assert [f.rule.id for f in scan(bad, numpy_file.analyze)] == ["numpy/malformed"]


@pytest.mark.parametrize(("module", "name", "verdict"), [
    ("collections", "OrderedDict", Verdict.ALLOWED),
    ("torch._utils", "_rebuild_tensor_v2", Verdict.ALLOWED),
    ("numpy._core.multiarray", "_reconstruct", Verdict.ALLOWED),
    ("sklearn.tree._classes", "DecisionTreeClassifier", Verdict.ALLOWED),
    ("os", "anything", Verdict.CRITICAL),
    ("importlib.machinery", "SourceFileLoader", Verdict.CRITICAL),
    ("builtins", "set", Verdict.ALLOWED),
    ("builtins", "exec", Verdict.CRITICAL),
    ("torch", "load", Verdict.CRITICAL),
    ("os.path", "join", Verdict.CRITICAL),
    ("builtins", "print", Verdict.HIGH),
    ("mypackage", "Thing", Verdict.UNKNOWN),
    ("functools", "partial", Verdict.HIGH),
])
def test_policy(module: str, name: str, verdict: Verdict) -> None:
    assert judge(module, name) is verdict


def test_nothing_is_ever_loaded(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    for case in corpus.cases(canary):
        scan(case.data)
        scan(case.data, numpy_file.analyze)
    assert not canary.exists()


def test_dunder_attribute_chains_from_allowed_classes_are_critical() -> None:
    # Protocol 4 resolves dotted names step by step: an allowed class leads to any module's globals.
    data = b"\x80\x04" + corpus._sbu("collections") + corpus._sbu("OrderedDict.__init__.__globals__") + b"\x93."
    assert globals_of(scan(data)) == {"collections.OrderedDict.__init__.__globals__"}
    assert judge("sklearn.externals.joblib", "load") is Verdict.CRITICAL  # deny beats a wildcard allow


def test_pickle_inside_load_from_bytes_is_scanned() -> None:
    inner = corpus.call("os", "system", CMD)
    outer = corpus.call("torch.storage", "_load_from_bytes", inner)
    findings = scan(outer)
    [hit] = [f for f in findings if f.rule.id == "pickle/dangerous-global"]
    assert (hit.location.logical or "").startswith("<bytes at ")
    zipped = corpus.call("torch.storage", "_load_from_bytes", corpus.torch_zip("archive", inner))
    assert "os.system" in globals_of(scan(zipped))
    benign = corpus.call("torch.storage", "_load_from_bytes", corpus.torch_state_dict_pickle())
    assert scan(benign) == []


def test_npy_object_array_severity_follows_its_pickle() -> None:
    import numpy

    clean = corpus.npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }",
                             pickle.dumps(numpy.array([1, "a"], dtype=object), protocol=2))
    assert [(f.rule.id, f.severity) for f in scan(clean, numpy_file.analyze)] == [("numpy/object-array", Severity.LOW)]
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    evil = corpus.npy_bytes(header, corpus.call("os", "system", CMD))
    object_array = [f for f in scan(evil, numpy_file.analyze) if f.rule.id == "numpy/object-array"]
    assert [f.severity for f in object_array] == [Severity.MEDIUM]
