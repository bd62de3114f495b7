"""Which pickle globals are fine, which run code, and which are merely unknown.

Data only. The allowlist is what torch state dicts, numpy arrays, sklearn estimators, joblib and the
standard containers legitimately import; it is checked first. The denylist names code-execution
primitives. Anything on neither list is reported as unknown, with its name, so nothing passes silently.
"""

from __future__ import annotations

import enum

ANY = "*"


class Verdict(enum.Enum):
    """How a global is judged."""

    ALLOWED = "allowed"
    CRITICAL = "critical"
    HIGH = "high"
    UNKNOWN = "unknown"


# module -> names ("*" = every name in the module, and in its submodules when the key ends with ".").
ALLOWED: dict[str, frozenset[str]] = {
    "collections": frozenset({"OrderedDict", "defaultdict", "deque", "Counter"}),
    "builtins": frozenset({"set", "frozenset", "slice", "range", "complex", "bytearray", "dict", "list",
                           "tuple", "int", "float", "bool", "str", "bytes", "object"}),
    "__builtin__": frozenset({"set", "frozenset", "slice", "complex", "object"}),
    "copy_reg": frozenset({"_reconstructor"}),
    "copyreg": frozenset({"_reconstructor", "__newobj__"}),
    "_codecs": frozenset({"encode"}),
    "datetime": frozenset({"datetime", "date", "time", "timedelta", "timezone"}),
    "decimal": frozenset({"Decimal"}),
    "fractions": frozenset({"Fraction"}),
    "uuid": frozenset({"UUID"}),
    "pathlib": frozenset({"PosixPath", "WindowsPath", "PurePosixPath", "PureWindowsPath"}),
    "numpy": frozenset({"ndarray", "dtype", "float16", "float32", "float64", "int8", "int16", "int32", "int64",
                        "uint8", "uint16", "uint32", "uint64", "bool_", "complex64", "complex128", "str_",
                        "bytes_", "object_", "void", "matrix"}),
    "numpy.core.multiarray": frozenset({"_reconstruct", "scalar", "_frombuffer"}),
    "numpy._core.multiarray": frozenset({"_reconstruct", "scalar", "_frombuffer"}),
    "numpy.core.numeric": frozenset({"_frombuffer"}),
    "numpy._core.numeric": frozenset({"_frombuffer"}),
    "numpy.random._pickle": frozenset({"__randomstate_ctor", "__bit_generator_ctor", "__generator_ctor"}),
    "numpy.random.mtrand": frozenset({"RandomState"}),
    "numpy.random": frozenset({"RandomState"}),
    "numpy.ma.core": frozenset({"_mareconstruct", "MaskedArray"}),
    "joblib.numpy_pickle": frozenset({"NumpyArrayWrapper", "NDArrayWrapper"}),
    "sklearn.": frozenset({ANY}),
    "scipy.sparse.": frozenset({ANY}),
    "pandas.core.": frozenset({ANY}),
    "pandas._libs.": frozenset({ANY}),
    "torch": frozenset({"Size", "device", "dtype", "float32", "float16", "bfloat16", "float64", "int64", "int32",
                        "int8", "uint8", "bool", "FloatStorage", "HalfStorage", "BFloat16Storage", "DoubleStorage",
                        "LongStorage", "IntStorage", "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage",
                        "ComplexFloatStorage", "ComplexDoubleStorage", "UntypedStorage", "TypedStorage",
                        "Tensor", "per_tensor_affine", "strided", "sparse_coo", "contiguous_format"}),
    "torch._utils": frozenset({"_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                               "_rebuild_parameter_with_state", "_rebuild_qtensor", "_rebuild_sparse_tensor",
                               "_rebuild_device_tensor_from_numpy", "_rebuild_meta_tensor_no_storage",
                               "_rebuild_nested_tensor", "_rebuild_wrapper_subclass"}),
    "torch.storage": frozenset({"_load_from_bytes", "UntypedStorage", "TypedStorage"}),
    "torch.nn.parameter": frozenset({"Parameter"}),
    "torch.nn.modules.": frozenset({ANY}),
    "torch._tensor": frozenset({"_rebuild_from_type_v2"}),
    "torch.serialization": frozenset({"_get_layout"}),
}

# Code execution or its building blocks: loading a pickle that imports one of these runs attacker code.
CRITICAL: dict[str, frozenset[str]] = {
    "os": frozenset({ANY}), "posix": frozenset({ANY}), "nt": frozenset({ANY}), "subprocess": frozenset({ANY}),
    "builtins": frozenset({"eval", "exec", "compile", "getattr", "setattr", "delattr", "__import__", "open",
                           "breakpoint", "input", "globals", "locals", "vars", "memoryview"}),
    "__builtin__": frozenset({"eval", "exec", "execfile", "compile", "getattr", "setattr", "__import__", "open",
                              "file", "input", "globals"}),
    "runpy": frozenset({ANY}), "pty": frozenset({ANY}), "code": frozenset({ANY}), "codeop": frozenset({ANY}),
    "importlib": frozenset({ANY}), "importlib.": frozenset({ANY}), "imp": frozenset({ANY}),
    "pkgutil": frozenset({ANY}), "pip": frozenset({ANY}), "pip.": frozenset({ANY}), "webbrowser": frozenset({ANY}),
    "socket": frozenset({ANY}), "shutil": frozenset({ANY}), "sys": frozenset({ANY}), "ctypes": frozenset({ANY}),
    "ctypes.": frozenset({ANY}), "marshal": frozenset({ANY}), "pickle": frozenset({ANY}), "_pickle": frozenset({ANY}),
    "cPickle": frozenset({ANY}), "dill": frozenset({ANY}), "dill.": frozenset({ANY}), "shelve": frozenset({ANY}),
    "types": frozenset({"CodeType", "FunctionType", "LambdaType", "MethodType", "ModuleType"}),
    "operator": frozenset({"attrgetter", "itemgetter", "methodcaller"}),
    "_operator": frozenset({"attrgetter", "itemgetter", "methodcaller"}),
    "torch.hub": frozenset({ANY}), "torch.jit": frozenset({ANY}), "torch.ops": frozenset({ANY}),
    "torch": frozenset({"load", "hub"}), "torch.serialization": frozenset({"load"}),
    "numpy": frozenset({"load", "loadtxt", "fromfile"}), "numpy.testing._private.utils": frozenset({"runstring"}),
    "commands": frozenset({ANY}), "platform": frozenset({"popen"}), "asyncio": frozenset({ANY}),
    "asyncio.": frozenset({ANY}), "multiprocessing": frozenset({ANY}), "multiprocessing.": frozenset({ANY}),
    "threading": frozenset({ANY}), "signal": frozenset({ANY}), "tempfile": frozenset({ANY}),
    "urllib": frozenset({ANY}), "urllib.": frozenset({ANY}), "requests": frozenset({ANY}),
    "requests.": frozenset({ANY}), "http.client": frozenset({ANY}), "httplib": frozenset({ANY}),
    "ftplib": frozenset({ANY}), "smtplib": frozenset({ANY}), "telnetlib": frozenset({ANY}),
    "bdb": frozenset({ANY}), "pdb": frozenset({ANY}), "timeit": frozenset({ANY}), "trace": frozenset({ANY}),
    "profile": frozenset({ANY}), "cProfile": frozenset({ANY}), "doctest": frozenset({ANY}),
    "site": frozenset({ANY}), "venv": frozenset({ANY}), "ensurepip": frozenset({ANY}),
    "distutils": frozenset({ANY}), "setuptools": frozenset({ANY}), "zipimport": frozenset({ANY}),
    "io": frozenset({"open", "FileIO", "open_code"}), "_io": frozenset({"open", "FileIO", "open_code"}),
    "joblib": frozenset({"load"}), "keras": frozenset({ANY}), "tensorflow": frozenset({ANY}),
    "sklearn.externals.": frozenset({ANY}), "pandas": frozenset({"read_pickle", "eval", "read_csv"}),
    "pandas.io.": frozenset({ANY}), "pandas.core.computation.": frozenset({ANY}),
    "numpy.f2py": frozenset({ANY}), "numpy.f2py.": frozenset({ANY}), "numpy.distutils.": frozenset({ANY}),
}

# Not code execution alone, but the tool used to smuggle it (e.g. partial(os.system, "...")).
HIGH: dict[str, frozenset[str]] = {
    "functools": frozenset({"partial", "reduce", "partialmethod"}),
    "_functools": frozenset({"partial", "reduce"}),
    "builtins": frozenset({"map", "filter", "apply", "super", "staticmethod", "classmethod", "property"}),
    "__builtin__": frozenset({"map", "filter", "apply"}),
    "copyreg": frozenset({"__reduce_ex__"}),
    "itertools": frozenset({"starmap"}),
}


def _lookup(table: dict[str, frozenset[str]], module: str, name: str) -> int:
    """How specifically `table` names module.name: 2 by exact name, 1 by a wildcard, 0 not at all."""
    names = table.get(module)
    if names is not None and name in names:
        return 2
    if names is not None and ANY in names:
        return 1
    # Package-wide entries ("importlib." covers importlib.util, importlib.machinery...),
    # and a whole-module entry covers its submodules too (`os` covers `os.path`).
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        entry = table.get(".".join(parts[:i]) + ".")
        if entry is not None and (ANY in entry or name in entry):
            return 1
        parent = table.get(".".join(parts[:i])) if i < len(parts) else None
        if parent is not None and ANY in parent:
            return 1
    return 0


def _dunder(part: str) -> bool:
    return len(part) > 4 and part.startswith("__") and part.endswith("__")


def judge(module: str, name: str) -> Verdict:
    """Allowlist first, unless a denylist names the global at least as specifically; else unknown."""
    allowed, critical = _lookup(ALLOWED, module, name), _lookup(CRITICAL, module, name)
    # Protocol 4+ resolves dotted names attribute by attribute: `Class.__init__.__globals__` reaches any
    # module's globals (and builtins) from an allowed class, so dunder steps are never allowed.
    parts = name.split(".")
    if (len(parts) > 1 and any(_dunder(p) for p in parts)) or (_dunder(name) and allowed < 2):
        return Verdict.CRITICAL
    if critical and critical >= allowed:
        return Verdict.CRITICAL
    if allowed:
        return Verdict.ALLOWED
    if _lookup(HIGH, module, name):
        return Verdict.HIGH
    # Dotted names reach attributes of attributes (`os` + `path.join`): judge the full path too.
    if len(parts) > 1 and judge(f"{module}.{'.'.join(parts[:-1])}", parts[-1]) is Verdict.CRITICAL:
        return Verdict.CRITICAL
    return Verdict.UNKNOWN
