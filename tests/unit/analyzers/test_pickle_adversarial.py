"""Our own adversarial pickles, one group per bypass class of issue 10 (built here as bytes, never loaded).

1 allowlist by prefix / attribute chains, 2 unknown globals, 3 nested payloads built at load time,
4 parser differentials; each with benign twins that must stay silent.
"""

from __future__ import annotations

import io
import pickle
import struct

import pytest

from mlsec_actions.analyzers import pickle_scan
from mlsec_actions.analyzers.base import Blob
from mlsec_actions.analyzers.dispatch import Dispatcher
from mlsec_actions.analyzers.pickle_policy import Verdict, allowlist, checked, judge, why
from mlsec_actions.findings import Finding, Severity
from tests import pickle_corpus as pc

EVIL = pc.call("os", "system", pc.CMD)


def scan(data: bytes) -> list[Finding]:
    return pickle_scan.analyze(Blob("m.pkl", None, len(data), lambda: io.BytesIO(data)))


def scan_file(data: bytes, name: str = "model.bin") -> list[Finding]:
    """Through the dispatcher: format detection by content first, as the stage does."""
    return Dispatcher().scan_file(Blob(name, None, len(data), lambda: io.BytesIO(data)))


def top(findings: list[Finding]) -> Severity | None:
    return max((f.severity for f in findings), default=None)


def rules(findings: list[Finding]) -> set[str]:
    return {f.rule.id for f in findings}


# -- class 1: exact allowlist, attribute chains resolved ----------------------------------------------

@pytest.mark.parametrize(("module", "name"), [
    ("torch", "os.system"), ("posixpath", "os.system"), ("sklearn", "os.system"),
    ("pandas.core.common", "builtins.exec"), ("numpy.testing._private.utils", "runstring"),
    ("collections", "OrderedDict.__init__.__globals__"), ("torch._utils", "_rebuild_tensor_v2.__globals__"),
    ("numpy", "core.multiarray.os.system"), ("sklearn.utils._testing", "assert_run_python_script"),
    ("torch.nn.modules.linear", "sys.modules"), ("copyreg", "__reduce_ex__.__self__"),
])
@pytest.mark.parametrize("protocol", [2, 4])
def test_attribute_chains_through_allowed_modules_are_critical(module: str, name: str, protocol: int) -> None:
    data = pc.call(module, name, "x", protocol=protocol, stack=protocol >= 4)
    findings = scan(data)
    assert top(findings) is Severity.CRITICAL, [f.message for f in findings]
    assert f"{module}.{name}" in {dict(f.properties).get("global") for f in findings}


def test_getattr_gadget_over_an_allowed_class_is_critical() -> None:
    data = (b"\x80\x02" + pc.glob("builtins", "getattr") + pc.glob("collections", "OrderedDict")
            + pc._text("__init__") + b"\x86R.")
    assert top(scan(data)) is Severity.CRITICAL


def test_allowlist_entries_are_exact_pairs_with_reasons() -> None:
    pairs = allowlist()
    assert len(pairs) > 500
    for module, name in pairs:
        assert "*" not in module + name and not module.endswith(".")
        assert why(module, name) and len(str(why(module, name))) >= 10
        assert judge(module, name) is Verdict.ALLOWED
    assert set(checked()) <= pairs
    # Nothing a denylist names is allowed, and a neighbour of an entry is not allowed by it.
    assert judge("torch._utils", "_rebuild_tensor_v2") is Verdict.ALLOWED
    assert judge("torch._utils", "_rebuild_tensor_v9") is Verdict.UNKNOWN
    assert judge("sklearn.tree._classes", "DecisionTreeClassifier") is Verdict.ALLOWED
    assert judge("sklearn.tree._classes", "DecisionTreeClassifierX") is Verdict.UNKNOWN
    assert judge("sklearn.tree", "_classes.DecisionTreeClassifier") is Verdict.UNKNOWN


@pytest.mark.parametrize(("module", "name"), [
    ("numpy", "log1p"), ("numpy", "add"), ("numpy.core._multiarray_umath", "log1p"), ("numpy._core.umath", "exp"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("numpy.random._pcg64", "PCG64"), ("numpy.random._mt19937", "MT19937"), ("re", "_compile"),
    ("collections", "OrderedDict"), ("datetime", "datetime"), ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"), ("torch", "FloatStorage"), ("torch", "bfloat16"),
    ("sklearn.ensemble._forest", "RandomForestClassifier"), ("sklearn.tree._tree", "Tree"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("__builtin__", "set"), ("copy_reg", "_reconstructor"), ("__builtin__", "xrange"),
])
def test_real_model_globals_are_allowed(module: str, name: str) -> None:
    assert judge(module, name) is Verdict.ALLOWED


# -- class 2: anything not on the allowlist is high ---------------------------------------------------

@pytest.mark.parametrize(("module", "name"), [
    *pc.GADGETS, ("__main__", "MyTransformer"), ("torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_expr"),
])
def test_gadgets_and_unknown_globals_are_at_least_high(module: str, name: str) -> None:
    findings = scan(pc.call(module, name, "x", protocol=4, stack=True))
    assert top(findings) in (Severity.HIGH, Severity.CRITICAL)


# -- class 3: nested payloads built at load time -------------------------------------------------------

LOAD = pc.glob("torch.storage", "_load_from_bytes")


def _binunicode(text: str) -> bytes:
    raw = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(raw)) + raw


@pytest.mark.parametrize(("label", "argument"), [
    ("literal", pc.binbytes(EVIL)),
    ("literal over 256 bytes", pc.binbytes(EVIL[:-1] + b"N0" * 200 + b".")),
    ("codecs.encode", pc.glob("_codecs", "encode") + _binunicode(EVIL.decode("latin-1")) + pc._text("latin1")
     + b"\x86R"),
    ("bytes of a list", pc.glob("builtins", "bytes") + b"]("
     + b"".join(b"K" + bytes([c]) for c in EVIL) + b"e\x85R"),
    ("bytearray of a list", pc.glob("builtins", "bytearray") + b"]("
     + b"".join(b"K" + bytes([c]) for c in EVIL) + b"e\x85R"),
    ("torch zip", pc.binbytes(pc.torch_zip(EVIL))),
    ("through the memo", pc.binbytes(EVIL) + b"q\x070h\x07"),
])
def test_load_from_bytes_payload_is_scanned(label: str, argument: bytes) -> None:
    data = b"\x80\x02" + LOAD + argument + b"\x85R."
    findings = scan(data)
    hits = [f for f in findings if f.rule.id == "pickle/dangerous-global"]
    assert hits and all("<bytes at " in (f.location.logical or "") for f in hits), label


@pytest.mark.parametrize(("label", "data"), [
    ("computed by an unknown call", b"\x80\x02" + LOAD + pc.glob("mypkg", "make") + b")R\x85R."),
    ("passed as a value", b"\x80\x02" + pc.glob("collections", "defaultdict") + LOAD + b"\x85R."),
    ("nested four deep", b"\x80\x02" + LOAD + pc.binbytes(b"\x80\x02" + LOAD + pc.binbytes(
        b"\x80\x02" + LOAD + pc.binbytes(b"\x80\x02" + LOAD + pc.binbytes(EVIL) + b"\x85R.") + b"\x85R.")
        + b"\x85R.") + b"\x85R."),
    ("ufunc_reconstruct of os.system", b"\x80\x02" + pc.glob("numpy.core", "_ufunc_reconstruct")
     + pc._text("os") + pc._text("system") + b"\x86R."),
    ("ufunc_reconstruct of a computed name", b"\x80\x02" + pc.glob("numpy._core", "_ufunc_reconstruct")
     + pc._text("numpy") + pc.glob("mypkg", "name") + b")R\x86R."),
    ("apply of load_from_bytes", b"\x80\x02" + pc.glob("torch._tensor", "_rebuild_from_type_v2") + b"(" + LOAD
     + pc.glob("torch", "Tensor") + pc.binbytes(EVIL) + b"\x85}tR."),
])
def test_unverifiable_or_dangerous_helper_use_is_critical(label: str, data: bytes) -> None:
    assert top(scan(data)) is Severity.CRITICAL, label


def test_benign_nested_and_checked_helpers_are_silent() -> None:
    inner = pc.torch_state_dict(3)
    assert scan(b"\x80\x02" + LOAD + pc.binbytes(inner) + b"\x85R.") == []
    assert scan(b"\x80\x02" + LOAD + pc.binbytes(pc.torch_zip(inner)) + b"\x85R.") == []
    ufunc = b"\x80\x02" + pc.glob("numpy.core", "_ufunc_reconstruct") + pc._text("numpy") + pc._text("log1p")
    assert scan(ufunc + b"\x86R.") == []


def test_indirect_call_and_build_on_global_are_high() -> None:
    returned = b"\x80\x02" + pc.glob("numpy.core", "_ufunc_reconstruct") + pc._text("numpy") + pc._text("add") \
        + b"\x86R" + pc._text("x") + b"\x85R."
    assert "pickle/indirect-call" in rules(scan(returned))
    patched = b"\x80\x02" + pc.glob("collections", "OrderedDict") + b"N}" + pc._text("x") + b"K\x01s\x86b."
    findings = scan(patched)
    assert "pickle/build-on-global" in rules(findings) and top(findings) is Severity.HIGH


# -- STACK_GLOBAL operands built at load time: evaluated, so the real target is judged ---------------------

def _apply(module: str, name: str, *args: bytes) -> bytes:
    """module.name(*args) at load time (each arg is opcodes pushing one value)."""
    return pc.stack_glob(module, name) + b"(" + b"".join(args) + b"tR"


def _strings(*items: str) -> bytes:
    return b"](" + b"".join(pc.sbu(i) for i in items) + b"e"


_BUILT_MODULE = {
    "join": _apply("builtins", "str.join", pc.sbu(""), _strings("o", "s")),
    "lower": _apply("builtins", "str.lower", pc.sbu("OS")),
    "replace": _apply("builtins", "str.replace", pc.sbu("oXs"), pc.sbu("X"), pc.sbu("")),
    "codecs_decode": _apply("_codecs", "decode", pc.binbytes(b"os"), pc.sbu("ascii")),
    "bytes_decode": _apply("builtins", "bytes.decode", pc.binbytes(b"os")),
    "getitem": _apply("operator", "getitem", _strings("x", "os"), b"K\x01"),
    "through_memo": _apply("builtins", "str.strip", pc.sbu(" os ")) + b"\x94" + b"0" + b"h\x00",
    # A BUILD on an imported module sets an attribute; importing that attribute yields the value set.
    "module_attribute_set": pc.stack_glob("torch", "_utils") + b"}" + pc.sbu("_x") + pc.sbu("os") + b"sb0"
    + pc.stack_glob("torch._utils", "_x"),
}


@pytest.mark.parametrize("label", sorted(_BUILT_MODULE))
def test_stack_global_of_a_name_built_at_load_time_judges_the_real_target(label: str) -> None:
    data = b"\x80\x04" + _BUILT_MODULE[label] + pc.sbu("system") + b"\x93" + pc.sbu(pc.CMD) + b"\x85R."
    findings = scan(data)
    assert top(findings) is Severity.CRITICAL
    assert "os.system" in {dict(f.properties).get("global") for f in findings if f.severity is Severity.CRITICAL}
    assert "pickle/dynamic-global" not in rules(findings)


@pytest.mark.parametrize("module", [
    pc.stack_glob("mypkg", "make") + b")R",  # an unknown callable's result
    _apply("builtins", "str.join", pc.sbu("o"), b"](" + pc.sbu("x" * 255) * 300 + b"e"),  # longer than it builds
], ids=["unknown-call", "too-long"])
def test_stack_global_of_a_name_that_cannot_be_evaluated_stays_high(module: bytes) -> None:
    data = b"\x80\x04" + module + pc.sbu("system") + b"\x93" + pc.sbu(pc.CMD) + b"\x85R."
    findings = scan(data)
    assert "pickle/dynamic-global" in rules(findings) and top(findings) >= Severity.HIGH  # type: ignore[operator]


def test_stack_global_of_a_non_string_literal_imports_nothing() -> None:
    # CPython raises "STACK_GLOBAL requires str": the load fails there, nothing is imported.
    findings = scan(b"\x80\x04J\x2a\x00\x00\x00" + pc.sbu("os") + b"\x93.")
    assert rules(findings) == {"pickle/malformed"}


# -- class 4: parser differentials -----------------------------------------------------------------------

def test_protocol0_pickle_without_proto_is_found_under_any_name() -> None:
    for name in ("weights.txt", "README.md", "model.json"):
        assert top(scan_file(pc.call("os", "system", pc.CMD, protocol=0), name)) is Severity.CRITICAL


@pytest.mark.parametrize("size", [70_000, 300_000, 3 << 20])
@pytest.mark.parametrize(("opening", "closing"), [(b"V", b""), (b"S'", b"'")])
def test_long_leading_string_does_not_hide_the_payload(size: int, opening: bytes, closing: bytes) -> None:
    # CPython reads a protocol 0 string line whatever its length: padding past 1 MiB must not end the walk.
    data = opening + b"a" * size + closing + b"\n0" + pc.call("os", "system", pc.CMD, protocol=0)
    assert top(scan_file(data, "notes.txt")) is Severity.CRITICAL
    text = opening + b"a" * size + b" not a pickle\n\x00\xff"
    assert top(scan_file(text, "notes.txt")) is None


def test_frame_longer_than_the_file_does_not_hide_the_payload() -> None:
    body = pc.stack_glob("os", "system") + pc.sbu(pc.CMD) + b"\x85R."
    data = b"\x80\x04\x95" + struct.pack("<Q", 1 << 30) + body
    assert top(scan(data)) is Severity.CRITICAL


def test_opcode_straddling_a_frame_end_is_reported_and_its_bytes_walked() -> None:
    hidden = pc.glob("os", "system") + pc._text("echo pwned") + b"\x85R"
    data = (b"\x80\x05N\x95" + struct.pack("<Q", 2) + b"B" + struct.pack("<I", 2 + len(hidden) + 1)
            + b"\x00\x00" + hidden + b"(" + b"0.")
    findings = scan(data)
    assert "pickle/frame-violation" in rules(findings)
    assert "os.system" in {dict(f.properties).get("global") for f in findings}


def test_well_formed_frames_are_silent() -> None:
    for obj in ([1, 2, 3], b"x" * 100_000, [1, b"y" * 100_000, 2], list(range(50_000))):
        for protocol in (4, 5):
            assert scan(pickle.dumps(obj, protocol=protocol)) == []


def test_declared_length_past_the_end_keeps_what_came_before() -> None:
    data = EVIL[:-1] + b"\x8e" + struct.pack("<Q", 2 << 30) + b"tail"
    findings = scan(data)
    assert top(findings) is Severity.CRITICAL and "pickle/malformed" in rules(findings)


def test_payload_before_a_deliberate_error_is_found() -> None:
    # "nullifAI": the REDUCE runs, then the load fails on what follows.
    for tail in (b"\xff", b"\x80\x09", b"h\x99", b"t"):
        findings = scan(EVIL[:-1] + tail + b".")
        assert top(findings) is Severity.CRITICAL and "pickle/malformed" in rules(findings)


def test_payload_in_a_later_stream_is_found() -> None:
    legacy = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2) + EVIL
    assert top(scan(legacy)) is Severity.CRITICAL


def _joblib(dtype_args: bytes, dtype_state: bytes, shape: tuple[int, ...], payload: bytes, tail: bytes) -> bytes:
    """A joblib-style pickle: NumpyArrayWrapper BUILD with the given dtype, raw bytes, then `tail`."""
    dtype = pc.glob("numpy", "dtype") + dtype_args + b"R" + dtype_state + b"b"
    shape_ops = b"(" + b"".join(b"K" + bytes([n]) for n in shape) + b"t"
    state = (b"}(" + pc._text("dtype") + dtype + pc._text("shape") + shape_ops + pc._text("order") + pc._text("C")
             + b"u")
    return b"\x80\x02" + pc.glob("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81" + state + b"b" + payload + tail


def test_joblib_skip_uses_the_item_size_numpy_recorded() -> None:
    # A 'U2' dtype whose state records elsize 12: numpy's __setstate__ takes the 12, so joblib reads 3 * 12
    # bytes; a guess from the type code (3 * 8) would land inside the array.
    u2 = pc._text("U2") + b"K\x00K\x01\x87"
    state = b"(K\x03" + pc._text("<") + b"NNNK\x0cK\x04K\x08t"
    payload = b"\x00" * 36
    benign = _joblib(u2, state, (3,), payload, b"0N.")
    assert scan(benign) == []
    evil = _joblib(u2, state, (3,), payload, b"0" + EVIL[2:])
    assert top(scan(evil)) is Severity.CRITICAL


def test_joblib_object_field_in_a_structured_dtype_is_walked_as_a_pickle() -> None:
    field = pc.glob("numpy", "dtype") + pc._text("O8") + b"K\x00K\x01\x87R"
    fields = b"}(" + pc._text("a") + field + b"K\x00\x86u"
    state = b"(K\x03" + pc._text("|") + b"N" + b"(" + pc._text("a") + b"t" + fields + b"K\x08K\x01K\x3ft"
    data = _joblib(pc._text("V8") + b"K\x00K\x01\x87", state, (1,), EVIL, b"0N.")
    assert top(scan(data)) is Severity.CRITICAL


# -- benign twins: real pickles of fitted models and common values ------------------------------------

BENIGN = sorted((pc.HERE / "corpus" / "pickle" / "benign").iterdir())


@pytest.mark.parametrize("path", BENIGN, ids=lambda p: p.name)
def test_real_benign_model_files_are_silent(path: object) -> None:
    data = path.read_bytes()  # type: ignore[attr-defined]
    assert scan_file(data, path.name) == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("n_tensors", [1, 300])
@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_torch_checkpoints_are_silent(n_tensors: int, protocol: int) -> None:
    assert scan_file(pc.torch_checkpoint(n_tensors, 64, protocol), "model.pt") == []


def test_sniffing_takes_a_dangerous_import_as_a_pickle_but_not_source_code() -> None:
    assert top(scan_file(b"cos\nsystem\nS'id'S'broken", "notes.txt")) is Severity.CRITICAL
    for text in (b"import os\nos.system('make')\n", b"class Model:\n    pass\n", b"(a, b) = (1, 2)\n",
                 b"cfg\nversion\n1.0\n", b"Version 2\n"):
        assert scan_file(text, "script.py") == []


@pytest.mark.parametrize(("name", "data", "malicious"), pc.adversarial_cases(), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_adversarial_corpus_full_recall_no_false_positive(name: str, data: bytes, malicious: bool) -> None:
    severity = top(scan_file(data, name.rsplit("/", 1)[1]))
    if malicious:
        assert severity in (Severity.HIGH, Severity.CRITICAL), name
    else:
        assert severity is None or severity < Severity.MEDIUM, name


def test_trailing_storage_bytes_produce_no_structural_findings() -> None:
    # torch's legacy format: pickles, then raw storage bytes that may happen to start like an opcode.
    data = pickle.dumps({"a": 1}, protocol=2) + b"(NN\x93" + b"\x95\x01\x00\x00\x00\x00\x00\x00\x00NNR\xff" + bytes(64)
    assert scan(data) == []
    hidden = pickle.dumps({"a": 1}, protocol=2) + b"(" + pc.glob("os", "system") + b"\xff"
    assert top(scan(hidden)) is Severity.CRITICAL  # a real name is still reported


@pytest.mark.parametrize("count", [128, 384, 640, 0x0580, 0x10080, 0x7F_0380])
def test_legacy_torch_storage_count_that_reads_as_proto_is_silent(count: int) -> None:
    # torch's legacy format: its pickles, then each storage as an int64 element count and raw bytes.
    assert scan(pc.torch_legacy(count)) == []


def test_a_later_stream_after_the_header_bytes_still_reports_its_errors() -> None:
    data = pickle.dumps({"a": 1}, protocol=2) + EVIL[:-1] + b"\xff."
    assert {"pickle/dangerous-global", "pickle/malformed"} <= rules(scan(data))


@pytest.mark.parametrize("first", [pc.sbu("x"), pc.binbytes(b"x"), b"\x88", b"\x8a\x01\x05", b"\x95" + bytes(8) + b"N"])
def test_pickle_without_proto_starting_with_any_opcode_is_found(first: bytes) -> None:
    # CPython accepts protocol 2-5 opcodes without a PROTO header: the first byte decides nothing.
    data = first + b"0" + pc.stack_glob("os", "system") + pc.sbu(pc.CMD) + b"\x85R."
    assert top(scan_file(data, "tensor.bin")) is Severity.CRITICAL
