"""Which pickle globals are inert, which run code, and what everything else is.

The allowlist (`data/pickle_allowlist.json`) holds exact `(module, qualname)` pairs, each with the reason
it is inert; nothing is allowed by prefix. A few entries are allowed only with checked arguments
(`CHECKED`: pickle_scan verifies every call). The denylist below names code-execution primitives and
known gadgets; a name reached through an attribute chain (`torch.os.system`, `posixpath.os.system`,
`Class.__init__.__globals__`) is judged by every module it passes through. Anything else is UNKNOWN,
which in a model file is a high finding: any importable callable may run code when unpickled.
"""

from __future__ import annotations

import enum
import json
from functools import cache, lru_cache
from pathlib import Path

ANY = "*"
_MAX_PARTS = 32


class Verdict(enum.Enum):
    """How a global is judged."""

    ALLOWED = "allowed"
    CRITICAL = "critical"
    HIGH = "high"
    UNKNOWN = "unknown"


@cache
def _data() -> dict[str, object]:
    # Shipped in the wheel next to this module (hatch packages the whole folder); read once, on first use.
    text = (Path(__file__).parent / "data" / "pickle_allowlist.json").read_text(encoding="utf-8")
    data: dict[str, object] = json.loads(text)
    return data


@cache
def allowlist() -> frozenset[tuple[str, str]]:
    """Every allowed (module, qualname) pair."""
    table = _data()["allow"]
    assert isinstance(table, dict)
    return frozenset((m, n) for m, names in table.items() for n in names)


@cache
def checked() -> dict[tuple[str, str], str]:
    """Allowed only with checked arguments: (module, name) -> check kind (nested-payload, apply, import-by-name)."""
    rows = _data()["checked"]
    assert isinstance(rows, list)
    return {(r["module"], r["name"]): r["check"] for r in rows}


def why(module: str, name: str) -> str | None:
    """The allowlist's reason for an entry, if it is one."""
    table = _data()["allow"]
    assert isinstance(table, dict)
    reason = table.get(module, {}).get(name)
    return reason if isinstance(reason, str) else None


# Code execution, file or network access, or their building blocks. "*" = the whole module; a key ending
# with "." covers every submodule; a whole-module entry covers its submodules too (`os` covers `os.path`).
CRITICAL: dict[str, frozenset[str]] = {
    "os": frozenset({ANY}), "posix": frozenset({ANY}), "nt": frozenset({ANY}), "posixpath": frozenset({ANY}),
    "ntpath": frozenset({ANY}), "subprocess": frozenset({ANY}), "_posixsubprocess": frozenset({ANY}),
    "builtins": frozenset({"eval", "exec", "compile", "getattr", "setattr", "delattr", "__import__", "open",
                           "breakpoint", "input", "globals", "locals", "vars", "memoryview", "help", "exit", "quit"}),
    "runpy": frozenset({ANY}), "pty": frozenset({ANY}), "code": frozenset({ANY}), "codeop": frozenset({ANY}),
    "importlib": frozenset({ANY}), "importlib.": frozenset({ANY}), "imp": frozenset({ANY}),
    "_frozen_importlib": frozenset({ANY}), "_frozen_importlib_external": frozenset({ANY}), "_imp": frozenset({ANY}),
    "pkgutil": frozenset({ANY}), "pip": frozenset({ANY}), "pip.": frozenset({ANY}), "webbrowser": frozenset({ANY}),
    "socket": frozenset({ANY}), "_socket": frozenset({ANY}), "ssl": frozenset({ANY}), "_ssl": frozenset({ANY}),
    "shutil": frozenset({ANY}), "sys": frozenset({ANY}), "ctypes": frozenset({ANY}), "ctypes.": frozenset({ANY}),
    "_ctypes": frozenset({ANY}), "marshal": frozenset({ANY}), "pickle": frozenset({ANY}), "_pickle": frozenset({ANY}),
    "pickletools": frozenset({ANY}), "dill": frozenset({ANY}), "dill.": frozenset({ANY}), "shelve": frozenset({ANY}),
    "cloudpickle": frozenset({ANY}), "cloudpickle.": frozenset({ANY}), "joblib": frozenset({"load"}),
    "types": frozenset({"CodeType", "FunctionType", "LambdaType", "MethodType", "ModuleType", "BuiltinFunctionType",
                        "CellType", "new_class", "coroutine", "MethodWrapperType"}),
    "operator": frozenset({"attrgetter", "itemgetter", "methodcaller"}),
    "_operator": frozenset({"attrgetter", "itemgetter", "methodcaller"}),
    "torch.hub": frozenset({ANY}), "torch.jit": frozenset({ANY}), "torch.jit.": frozenset({ANY}),
    "torch.ops": frozenset({ANY}), "torch._dynamo": frozenset({ANY}), "torch._dynamo.": frozenset({ANY}),
    "torch._inductor": frozenset({ANY}), "torch._inductor.": frozenset({ANY}), "torch.utils.collect_env":
    frozenset({ANY}), "torch.utils.bottleneck": frozenset({ANY}), "torch.utils.bottleneck.": frozenset({ANY}),
    "torch": frozenset({"load", "hub", "compile", "save"}), "torch.serialization": frozenset({"load", "save"}),
    "torch._C": frozenset({ANY}), "torch.package": frozenset({ANY}), "torch.package.": frozenset({ANY}),
    "numpy": frozenset({"load", "loadtxt", "fromfile", "save", "savetxt", "genfromtxt", "memmap", "tofile"}),
    "numpy.testing": frozenset({ANY}), "numpy.testing.": frozenset({ANY}), "numpy.lib.npyio": frozenset({ANY}),
    "commands": frozenset({ANY}), "platform": frozenset({"popen", "_syscmd_file", "_syscmd_ver"}),
    "asyncio": frozenset({ANY}), "asyncio.": frozenset({ANY}), "multiprocessing": frozenset({ANY}),
    "multiprocessing.": frozenset({ANY}), "threading": frozenset({ANY}), "_thread": frozenset({ANY}),
    "signal": frozenset({ANY}), "tempfile": frozenset({ANY}), "glob": frozenset({ANY}), "fileinput": frozenset({ANY}),
    "urllib": frozenset({ANY}), "urllib.": frozenset({ANY}), "urllib2": frozenset({ANY}), "requests": frozenset({ANY}),
    "requests.": frozenset({ANY}), "http": frozenset({ANY}), "http.": frozenset({ANY}), "httplib": frozenset({ANY}),
    "aiohttp": frozenset({ANY}), "aiohttp.": frozenset({ANY}), "httpx": frozenset({ANY}), "httpx.": frozenset({ANY}),
    "ftplib": frozenset({ANY}), "smtplib": frozenset({ANY}), "telnetlib": frozenset({ANY}),
    "imaplib": frozenset({ANY}), "poplib": frozenset({ANY}), "nntplib": frozenset({ANY}), "xmlrpc": frozenset({ANY}),
    "xmlrpc.": frozenset({ANY}), "socketserver": frozenset({ANY}),
    "bdb": frozenset({ANY}), "pdb": frozenset({ANY}), "timeit": frozenset({ANY}), "trace": frozenset({ANY}),
    "profile": frozenset({ANY}), "cProfile": frozenset({ANY}), "doctest": frozenset({ANY}), "pydoc": frozenset({ANY}),
    "pydoc_data": frozenset({ANY}), "site": frozenset({ANY}), "venv": frozenset({ANY}), "ensurepip": frozenset({ANY}),
    "distutils": frozenset({ANY}), "distutils.": frozenset({ANY}), "setuptools": frozenset({ANY}),
    "setuptools.": frozenset({ANY}), "zipimport": frozenset({ANY}), "idlelib": frozenset({ANY}),
    "idlelib.": frozenset({ANY}), "lib2to3": frozenset({ANY}), "lib2to3.": frozenset({ANY}),
    "test": frozenset({ANY}), "test.": frozenset({ANY}), "_pyrepl": frozenset({ANY}), "_pyrepl.": frozenset({ANY}),
    "_osx_support": frozenset({ANY}), "_aix_support": frozenset({ANY}), "_sysconfigdata": frozenset({ANY}),
    "sysconfig": frozenset({ANY}), "uuid": frozenset({"_get_command_stdout", "_popen", "_find_mac",
                                                      "_ifconfig_getnode", "_ip_getnode", "_arp_getnode",
                                                      "_lanscan_getnode", "_netstat_getnode", "_netbios_getnode"}),
    "io": frozenset({"open", "FileIO", "open_code", "BufferedReader", "BufferedWriter", "TextIOWrapper"}),
    "_io": frozenset({ANY}), "_pyio": frozenset({ANY}), "codecs": frozenset({"open", "EncodedFile"}),
    "pathlib": frozenset({"Path.write_text", "Path.write_bytes", "Path.open", "Path.unlink", "Path.rmdir",
                          "Path.rename", "Path.replace", "Path.mkdir", "Path.touch", "Path.read_text",
                          "Path.read_bytes", "Path.symlink_to", "Path.chmod"}),
    "logging": frozenset({"FileHandler", "config"}), "logging.config": frozenset({ANY}),
    "logging.handlers": frozenset({ANY}), "keras": frozenset({ANY}), "keras.": frozenset({ANY}),
    "tensorflow": frozenset({ANY}), "tensorflow.": frozenset({ANY}), "sklearn.externals.": frozenset({ANY}),
    "sklearn.utils._testing": frozenset({ANY}), "pandas": frozenset({"read_pickle", "eval", "read_csv", "read_json",
                                                                       "read_parquet", "read_sql", "read_html"}),
    "pandas.io.": frozenset({ANY}), "pandas.core.computation.": frozenset({ANY}), "pandas._testing": frozenset({ANY}),
    "numpy.f2py": frozenset({ANY}), "numpy.f2py.": frozenset({ANY}), "numpy.distutils.": frozenset({ANY}),
    "IPython": frozenset({ANY}), "IPython.": frozenset({ANY}), "jinja2": frozenset({ANY}),
    "yaml": frozenset({"load", "unsafe_load", "full_load"}), "sqlite3": frozenset({ANY}),
}

# Not code execution alone, but the tools payloads chain calls with (partial(os.system, "...")).
HIGH: dict[str, frozenset[str]] = {
    "functools": frozenset({"partial", "reduce", "partialmethod", "cached_property", "singledispatch"}),
    "_functools": frozenset({"partial", "reduce"}),
    "builtins": frozenset({"map", "filter", "apply", "sorted", "min", "max", "iter", "next", "zip", "enumerate",
                           "type", "super", "classmethod", "staticmethod", "property", "print",
                           "hasattr", "isinstance", "callable", "id", "hash", "format", "repr"}),
    "itertools": frozenset({ANY}), "operator": frozenset({ANY}), "_operator": frozenset({ANY}),
    "copyreg": frozenset({"__reduce_ex__", "_reduce_ex"}), "contextlib": frozenset({ANY}),
}

# Python 2 names the unpickler maps (fix_imports) before importing.
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg", "cPickle": "pickle", "commands": "subprocess",
                "urllib2": "urllib.request", "httplib": "http.client", "exceptions": "builtins",
                "cStringIO": "io", "StringIO": "io", "Queue": "queue", "thread": "_thread"}
_PY2_NAMES = {("__builtin__", "xrange"): ("builtins", "range"), ("__builtin__", "unicode"): ("builtins", "str"),
              ("__builtin__", "long"): ("builtins", "int"), ("__builtin__", "basestring"): ("builtins", "str"),
              ("__builtin__", "reduce"): ("functools", "reduce"), ("__builtin__", "intern"): ("sys", "intern"),
              ("__builtin__", "raw_input"): ("builtins", "input"), ("__builtin__", "execfile"): ("builtins", "exec"),
              ("__builtin__", "file"): ("builtins", "open"), ("__builtin__", "apply"): ("builtins", "apply")}


def normalize(module: str, name: str) -> tuple[str, str]:
    """The (module, name) the unpickler imports after its Python 2 mapping."""
    mapped = _PY2_NAMES.get((module, name))
    if mapped is not None:
        return mapped
    return _PY2_MODULES.get(module, module), name


def _lookup(table: dict[str, frozenset[str]], module: str, name: str) -> bool:
    names = table.get(module)
    if names is not None and (name in names or ANY in names):
        return True
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        prefix = ".".join(parts[:i])
        entry = table.get(prefix + ".")
        if entry is not None and (ANY in entry or name in entry):
            return True
        parent = table.get(prefix) if i < len(parts) else None
        if parent is not None and ANY in parent:
            return True
    return False


def _dunder(part: str) -> bool:
    return len(part) > 4 and part.startswith("__") and part.endswith("__")


def _denied_path(parts: list[str]) -> bool:
    """Whether any module met along `a.b.c.d` reaches a denied name: every split of every suffix is tried.

    `torch.os.system` passes through `os` (denied); `pathlib.Path.write_text` is a denied dotted name.
    """
    for i in range(len(parts) - 1):
        for j in range(i + 1, len(parts)):
            module = ".".join(parts[i:j])
            if _lookup(CRITICAL, module, ".".join(parts[j:])) or _lookup(CRITICAL, module, parts[j]):
                return True
    return False


@lru_cache(maxsize=8192)
def judge(module: str, name: str) -> Verdict:
    """Exact allowlist first; then the denylist along the whole attribute chain; then the risky list."""
    module_n, name_n = normalize(module, name)
    if (module_n, name_n) in allowlist():
        return Verdict.ALLOWED
    parts = [*module_n.split("."), *name_n.split(".")][:_MAX_PARTS]
    raw = [*module.split("."), *name.split(".")][:_MAX_PARTS]
    # `Class.__init__.__globals__`, `x.__builtins__`: attribute chains through dunders reach anything.
    if any(_dunder(p) for p in name_n.split(".")) or _denied_path(parts) or _denied_path(raw):
        return Verdict.CRITICAL
    if _lookup(HIGH, module_n, name_n):
        return Verdict.HIGH
    return Verdict.UNKNOWN
