"""Pickle test data built as bytes: real-looking model pickles, and adversarial ones for each bypass class.

Nothing here is ever unpickled. Benign model pickles are written by the real `pickle.Pickler` over
stand-in objects registered under the real library names (`torch._utils._rebuild_tensor_v2`...) for the
duration of the dump only, so the opcodes are exactly what those libraries produce. Malicious ones are
assembled opcode by opcode.
"""

from __future__ import annotations

import collections
import contextlib
import io
import pickle
import struct
import sys
import types
import zipfile
from collections.abc import Iterator
from pathlib import Path

CMD = "touch /nonexistent/mlsec-canary"
HERE = Path(__file__).resolve().parent


# -- opcode assembly --------------------------------------------------------------------------------


# Gadgets outside the critical denylist (issue 10, class 2): each must be at least a high finding.
GADGETS: tuple[tuple[str, str], ...] = (
    ("pathlib", "PosixPath.write_text"), ("logging.config", "dictConfig"), ("_pyio", "FileIO"),
    ("pydoc", "pipepager"), ("_frozen_importlib_external", "_os"), ("ctypes", "cdll"),
    ("idlelib.pyshell", "ModifiedInterpreter.runcode"), ("lib2to3.pgen2.grammar", "Grammar.loads"),
    ("_aix_support", "_read_cmd_output"), ("uuid", "_get_command_stdout"), ("imaplib", "IMAP4_stream"),
    ("_pyrepl.pager", "pipe_pager"), ("test.support.script_helper", "assert_python_ok"),
    ("torch._dynamo.guards", "GuardBuilder.get"), ("torch._inductor.codecache", "compile_file"),
    ("cloudpickle.cloudpickle", "_make_function"), ("ssl", "get_server_certificate"),
    ("logging", "FileHandler"), ("aiohttp.client", "ClientSession"), ("mypackage.layers", "Custom"))

def sbu(text: str) -> bytes:
    """SHORT_BINUNICODE (or BINUNICODE when long)."""
    raw = text.encode("utf-8")
    return b"\x8c" + bytes([len(raw)]) + raw if len(raw) < 256 else b"X" + struct.pack("<I", len(raw)) + raw


def binbytes(raw: bytes) -> bytes:
    return b"C" + bytes([len(raw)]) + raw if len(raw) < 256 else b"B" + struct.pack("<I", len(raw)) + raw


def glob(module: str, name: str) -> bytes:
    """GLOBAL module name."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def stack_glob(module: str, name: str) -> bytes:
    return sbu(module) + sbu(name) + b"\x93"


def call(module: str, name: str, *args: str, protocol: int = 2, stack: bool = False) -> bytes:
    """A whole pickle calling module.name(*args) (string arguments)."""
    head = b"\x80" + bytes([protocol]) if protocol >= 2 else b""
    target = stack_glob(module, name) if stack else glob(module, name)
    return head + target + b"(" + b"".join(sbu(a) if protocol >= 4 else _text(a) for a in args) + b"tR."


def _text(value: str) -> bytes:
    return b"V" + value.encode("raw-unicode-escape") + b"\n"


# -- benign model pickles, written by the real Pickler ----------------------------------------------

class _Storage:
    """Stands in for torch.FloatStorage (a class the persistent id names)."""


def _rebuild_tensor_v2(*args: object) -> None:
    """Stands in for torch._utils._rebuild_tensor_v2."""


class _Tensor:
    def __init__(self, key: str, shape: tuple[int, ...]) -> None:
        self.key, self.shape = key, shape

    def __reduce__(self) -> tuple[object, ...]:
        stride = tuple(int(n) for n in _strides(self.shape))
        numel = 1
        for n in self.shape:
            numel *= n
        return (_rebuild_tensor_v2, (("storage", _Storage, self.key, "cpu", numel), 0, self.shape, stride, False,
                                     collections.OrderedDict()))


def _strides(shape: tuple[int, ...]) -> list[int]:
    out, acc = [], 1
    for n in reversed(shape):
        out.append(acc)
        acc *= n
    return out[::-1]


class _TorchPickler(pickle.Pickler):
    def persistent_id(self, obj: object) -> object:
        return obj if isinstance(obj, tuple) and obj and obj[0] == "storage" else None


@contextlib.contextmanager
def real_names(objects: dict[str, object]) -> Iterator[None]:
    """Register stand-ins under real dotted names ("torch._utils._rebuild_tensor_v2") while pickling."""
    saved = dict(sys.modules)
    try:
        for dotted, obj in objects.items():
            module, _, name = dotted.rpartition(".")
            parts = module.split(".")
            for i in range(1, len(parts) + 1):
                prefix = ".".join(parts[:i])
                assert prefix not in saved or prefix.startswith("tests"), f"{prefix} is a real module"
                sys.modules.setdefault(prefix, types.ModuleType(prefix))
            setattr(sys.modules[module], name, obj)
            obj.__module__, obj.__qualname__ = module, name  # type: ignore[attr-defined]
        yield
    finally:
        for key in set(sys.modules) - set(saved):
            del sys.modules[key]


def torch_state_dict(n_tensors: int, protocol: int = 2, shape: tuple[int, ...] = (4, 4)) -> bytes:
    """A torch.save state dict's data.pkl: an OrderedDict of `n_tensors` tensors over persistent storages."""
    state = collections.OrderedDict((f"layers.{i}.weight", _Tensor(str(i), shape)) for i in range(n_tensors))
    out = io.BytesIO()
    with real_names({"torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2, "torch.FloatStorage": _Storage}):
        _TorchPickler(out, protocol=protocol).dump(state)
    return out.getvalue()


def torch_zip(data_pkl: bytes, storages: dict[str, bytes] | None = None, folder: str = "archive") -> bytes:
    """A PyTorch zip checkpoint: data.pkl, its storages under data/, and the version record."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for name, payload in ((f"{folder}/data.pkl", data_pkl), (f"{folder}/version", b"3\n"),
                              *((f"{folder}/data/{k}", v) for k, v in (storages or {}).items())):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            z.writestr(info, payload)
    return out.getvalue()


def torch_legacy(count: int, itemsize: int = 4) -> bytes:
    """torch.save(..., _use_new_zipfile_serialization=False): magic, protocol, sys_info, the object and the storage
    keys as five pickles, then the storage as its int64 element count and raw bytes (a count of 128 starts `80 00`)."""
    info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    pickles = (0x1950A86A20F9469CFC6C, 1001, info, {"w": 1}, ["0"])
    return b"".join(pickle.dumps(p, protocol=2) for p in pickles) + struct.pack("<q", count) + bytes(
        itemsize * min(count, 4096))


def torch_checkpoint(n_tensors: int, tensor_bytes: int, protocol: int = 2) -> bytes:
    side = max(1, int((tensor_bytes // 4) ** 0.5))
    pkl = torch_state_dict(n_tensors, protocol, (side, side))
    return torch_zip(pkl, {str(i): bytes(side * side * 4) for i in range(n_tensors)})


# -- dangerous globals injected into real pickles (Hypothesis) --------------------------------------

class Injected:
    """A placeholder the injecting pickler writes as `module.name(*args)`: the global is never imported."""

    def __init__(self, module: str, name: str, args: tuple[object, ...] = ()) -> None:
        self.module, self.name, self.args = module, name, args


def _marker() -> None:
    """The callable the injecting pickler writes under an Injected's name."""


class InjectingPickler(pickle._Pickler):  # the pure-Python pickler: its save_global can be overridden
    """Writes every `Injected` as a call of the global it names, at whatever depth it sits in the graph."""

    def __init__(self, file: io.BytesIO, protocol: int) -> None:
        super().__init__(file, protocol)
        self._names: dict[int, tuple[str, str]] = {}

    def reducer_override(self, obj: object) -> object:
        if isinstance(obj, Injected):
            stand_in = types.FunctionType(_marker.__code__, {})
            self._names[id(stand_in)] = (obj.module, obj.name)
            self._keep = [*getattr(self, "_keep", []), stand_in]
            return stand_in, obj.args
        return NotImplemented

    def save_global(self, obj: object, name: str | None = None) -> None:
        target = self._names.get(id(obj))
        if target is None:
            super().save_global(obj, name)
            return
        module, qualname = target
        if self.proto >= 4:
            self.save(module)
            self.save(qualname)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + module.encode() + b"\n" + qualname.encode() + b"\n")
        self.memoize(obj)


def dumps_injected(obj: object, protocol: int) -> bytes:
    out = io.BytesIO()
    InjectingPickler(out, protocol).dump(obj)
    return out.getvalue()


InjectingPickler.dispatch = {**pickle._Pickler.dispatch, types.FunctionType: InjectingPickler.save_global}


# -- a labelled adversarial corpus (benchmarks/model_scan.py, test_pickle_adversarial.py) -------------

def _load_from_bytes(argument: bytes) -> bytes:
    return b"\x80\x02" + glob("torch.storage", "_load_from_bytes") + argument + b"\x85R."


def adversarial_cases() -> list[tuple[str, bytes, bool]]:
    """(relative path, bytes, malicious) for each bypass class; benign twins are real model pickles."""
    evil = call("os", "system", CMD)
    raw = evil.decode("latin-1").encode("utf-8")
    hidden = glob("os", "system") + _text("echo pwned") + b"\x85R"
    bad: dict[str, bytes] = {
        "c1/torch_os_system.pkl": call("torch", "os.system", CMD, protocol=4, stack=True),
        "c1/posixpath_os_system.pkl": call("posixpath", "os.system", CMD, protocol=4, stack=True),
        "c1/sklearn_os_system.pkl": call("sklearn", "os.system", CMD, protocol=4, stack=True),
        "c1/pandas_builtins_exec.pkl": call("pandas.core.common", "builtins.exec", "x", protocol=4, stack=True),
        "c1/numpy_runstring.pkl": call("numpy.testing._private.utils", "runstring", "x", protocol=2),
        "c1/dunder_globals.pkl": call("collections", "OrderedDict.__init__.__globals__", "x", protocol=4,
                                      stack=True),
        "c1/getattr_gadget.pkl": b"\x80\x02" + glob("builtins", "getattr") + glob("collections", "OrderedDict")
        + _text("__init__") + b"\x86R.",
        "c3/literal.pkl": _load_from_bytes(binbytes(evil)),
        "c3/codecs_encode.pkl": _load_from_bytes(glob("_codecs", "encode") + b"X" + struct.pack("<I", len(raw))
                                                 + raw + _text("latin1") + b"\x86R"),
        "c3/bytes_of_list.pkl": _load_from_bytes(glob("builtins", "bytes") + b"](" + b"".join(
            b"K" + bytes([c]) for c in evil) + b"e\x85R"),
        "c3/computed.pkl": _load_from_bytes(glob("mypkg", "make") + b")R"),
        "c3/torch_zip.pkl": _load_from_bytes(binbytes(torch_zip(evil))),
        "c3/ufunc_reconstruct.pkl": b"\x80\x02" + glob("numpy.core", "_ufunc_reconstruct") + _text("os")
        + _text("system") + b"\x86R.",
        # STACK_GLOBAL over names the pickle builds: "".join(["o", "s"]); an attribute a BUILD set to "os".
        "c3/stack_global_built_name.pkl": b"\x80\x04" + stack_glob("builtins", "str.join") + b"(" + sbu("")
        + b"](" + sbu("o") + sbu("s") + b"etR" + sbu("system") + b"\x93" + sbu(CMD) + b"\x85R.",
        "c3/stack_global_patched_module.pkl": b"\x80\x04" + stack_glob("torch", "_utils") + b"}" + sbu("_x")
        + sbu("os") + b"sb0" + stack_glob("torch._utils", "_x") + sbu("system") + b"\x93" + sbu(CMD) + b"\x85R.",
        "c4/no_proto.txt": call("os", "system", CMD, protocol=0),
        "c4/long_leading_string.txt": b"V" + b"a" * 70_000 + b"\n0" + call("os", "system", CMD, protocol=0),
        "c4/leading_string_over_1mib.txt": b"S'" + b"a" * (2 << 20) + b"'\n0" + call("os", "system", CMD, protocol=0),
        "c4/frame_too_long.pkl": b"\x80\x04\x95" + struct.pack("<Q", 1 << 30) + stack_glob("os", "system")
        + sbu(CMD) + b"\x85R.",
        "c4/frame_straddle.pkl": b"\x80\x05N\x95" + struct.pack("<Q", 2) + b"B"
        + struct.pack("<I", 2 + len(hidden) + 1) + b"\x00\x00" + hidden + b"(0.",
        "c4/binbytes_past_end.pkl": evil[:-1] + b"\x8e" + struct.pack("<Q", 2 << 30) + b"tail",
        "c4/nullifai_error_after.pkl": evil[:-1] + b"\xff.",
        "c4/second_stream.pkl": pickle.dumps({"a": 1}, protocol=2) + evil,
    }
    bad |= {f"c2/{m}.{n}.pkl": call(m, n, "x", protocol=4, stack=True) for m, n in GADGETS}
    good = {f"benign/{p.name}": p.read_bytes() for p in sorted((HERE / "corpus/pickle/benign").iterdir())}
    good |= {f"benign/torch_p{p}.pt": torch_checkpoint(20, 256, p) for p in (2, 4)}
    good["benign/load_from_bytes.pkl"] = _load_from_bytes(binbytes(torch_state_dict(2)))
    good |= {f"benign/torch_legacy_{n}.pt": torch_legacy(n) for n in (128, 640)}
    return [(n, d, True) for n, d in bad.items()] + [(n, d, False) for n, d in good.items()]
