"""`.npy` headers read the way numpy reads them: every object spelling, Python 2 shapes, no field-name guesses."""

from __future__ import annotations

import io
import struct

import numpy
import pytest

from mlsec_actions.analyzers import numpy_file
from mlsec_actions.analyzers.base import Blob
from mlsec_actions.findings import Finding
from tests import model_corpus as corpus

EVIL = corpus.call("os", "system", "touch /nonexistent/canary")


def analyze(data: bytes) -> list[Finding]:
    return numpy_file.analyze(Blob("a.npy", None, len(data), lambda: io.BytesIO(data)))


def rules(findings: list[Finding]) -> set[str]:
    return {f.rule.id for f in findings}


def npy(header: str, payload: bytes, version: int = 1) -> bytes:
    raw = header.encode("latin-1" if version < 3 else "utf-8")
    size = "<H" if version == 1 else "<I"
    pre = 8 + struct.calcsize(size)
    raw += b" " * (63 - (pre + len(raw)) % 64) + b"\n"
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack(size, len(raw)) + raw + payload


OBJECT_DESCRS = ["'object'", "'|O'", "'O'", "'<O'", "'O8'", "'object_'", "'i4,O'", "'int32, object'",
                 "'(2,)O'", "'2O'", "[('a', '<f8'), ('b', 'O')]", "[('a', [('b', '|O')])]",
                 "[('a', '<f8', (2,)), ('o', 'O', (3,))]", "('O', (2,))", "[(('title', 'name'), 'O')]"]


@pytest.mark.parametrize("descr", OBJECT_DESCRS)
def test_every_object_spelling_numpy_accepts(descr: str) -> None:
    from ast import literal_eval

    assert numpy.lib.format.descr_to_dtype(literal_eval(descr)).hasobject  # numpy agrees: it would unpickle
    findings = analyze(npy(f"{{'descr': {descr}, 'fortran_order': False, 'shape': (1,), }}", EVIL))
    assert {"numpy/object-array", "pickle/dangerous-global"} <= rules(findings)


@pytest.mark.parametrize("descr", ["'<f8'", "[('Obj', '<f8'), ('O', '<i4')]", "[('Ovalue', '<f4', (2,))]",
                                   "'|V8'", "'<U3'", "[('', '|V4'), ('x', '<i2')]"])
def test_numeric_dtypes_with_o_names_are_not_object(descr: str) -> None:
    from ast import literal_eval

    assert not numpy.lib.format.descr_to_dtype(literal_eval(descr)).hasobject
    header = f"{{'descr': {descr}, 'fortran_order': False, 'shape': (1,), }}"
    assert analyze(npy(header, b"\0" * 64)) == []


@pytest.mark.parametrize("version", [1, 2])
def test_python2_long_shape_is_re_parsed_like_numpy(version: int) -> None:
    data = npy("{'descr': '|O', 'fortran_order': False, 'shape': (1L,), }", EVIL, version)
    with pytest.warns(UserWarning), pytest.raises(Exception, match=r"allow_pickle"):
        numpy.load(io.BytesIO(data), allow_pickle=False)  # numpy parses it and then wants to unpickle
    assert {"numpy/object-array", "pickle/dangerous-global"} <= rules(analyze(data))


def test_python2_long_shape_in_version_3_is_refused_like_numpy() -> None:
    data = npy("{'descr': '|O', 'fortran_order': False, 'shape': (1L,), }", EVIL, 3)
    with pytest.raises(ValueError, match="header"):
        numpy.load(io.BytesIO(data), allow_pickle=True)
    assert rules(analyze(data)) == {"numpy/malformed"}


def test_real_numpy_object_array_file() -> None:
    out = io.BytesIO()
    numpy.save(out, numpy.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    findings = analyze(out.getvalue())
    assert rules(findings) == {"numpy/object-array"}  # the pickle inside holds only builtins


def test_real_structured_array_is_clean() -> None:
    out = io.BytesIO()
    numpy.save(out, numpy.zeros(3, dtype=[("Obj", "<f8"), ("Other", "<i4")]))
    assert analyze(out.getvalue()) == []


def test_object_deep_inside_nesting() -> None:
    descr: object = "O"
    for i in range(30):
        descr = [(f"f{i}", descr)]
    header = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': (1,), }}"
    assert numpy_file.has_object(descr)
    assert "numpy/object-array" in rules(analyze(npy(header, EVIL)))
