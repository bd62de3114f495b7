"""In-house ML SAST: an AST walk over the tree's Python files (parsed, never imported or run).

Calls are named by their dotted path with import aliases resolved (`import numpy as np` makes
`np.load` `numpy.load`; `from torch import load` makes `load` `torch.load`). Data flow is one cheap
step: in each function, a name assigned from request data (`request.args`, `input()`, `sys.argv`) or from
a model's output (`.generate(`, `.invoke(`, `.predict(`, `.create(`) is tainted, and so is any name
assigned from a tainted one; `eval`/`exec` and shell commands are checked against that set.
"""

from __future__ import annotations

import ast
import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlsec_actions.analyzers import ml_sast_rules as R
from mlsec_actions.analyzers import source_files
from mlsec_actions.analyzers.ml_sast_requirements import is_requirements, scan_requirements
from mlsec_actions.findings import CoverageGap, Finding, GapKind, Location, ToolRun, ToolStatus

TOOL = "mlsec-ml-sast"
VERSION = "1"
_PICKLE = {f"{m}.{f}" for m in ("pickle", "cPickle", "_pickle", "dill", "cloudpickle") for f in ("load", "loads",
                                                                                                 "Unpickler")}
_PICKLE |= {"joblib.load", "pandas.read_pickle", "sklearn.externals.joblib.load"}
_SAFE_YAML = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}
_HF = {"hf_hub_download", "snapshot_download", "huggingface_hub.hf_hub_download", "huggingface_hub.snapshot_download"}
_SHELL = {"os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput", "commands.getoutput"}
_SUBPROCESS = {f"subprocess.{f}" for f in ("run", "call", "check_call", "check_output", "Popen")}
_DOWNLOADS = {"urllib.request.urlretrieve", "urllib.request.urlopen", "requests.get", "httpx.get", "wget.download",
              "torch.hub.load_state_dict_from_url", "torch.hub.download_url_to_file", "gdown.download",
              "tensorflow.keras.utils.get_file", "keras.utils.get_file"}
_MODEL_CALLS = {"generate", "invoke", "predict", "complete", "create", "chat", "generate_content", "ainvoke"}
_SHA = re.compile(r"^[0-9a-f]{40}$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_LOCAL_URL = re.compile(r"^http://(?:localhost|127\.|0\.0\.0\.0|\[::1\])")
_BODIES = ("body", "orelse", "finalbody")
"""The fields of a statement that hold statements (besides `handlers` of try and `cases` of match)."""
_LEAVES = frozenset({ast.Constant, ast.Name, *(kind for base in (ast.expr_context, ast.operator, ast.unaryop,
                                                                   ast.cmpop, ast.boolop)
                                            for kind in base.__subclasses__())})
"""Node types no rule looks below (a Name is read through its parent; contexts and operators hold nothing)."""


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Call):  # requests.Session().get -> requests.Session.get
        return _dotted(node.func, aliases) + ("." + ".".join(reversed(parts)) if parts else "")
    if not isinstance(node, ast.Name):
        return ""
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Every import of the file, wherever it is; only statements are walked (an import is one), not the
    expressions that make up most of a tree."""
    out: dict[str, str] = {}
    todo: list[list[ast.stmt]] = [tree.body]
    while todo:
        for node in todo.pop():
            if isinstance(node, ast.Import):
                for a in node.names:
                    out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    out[a.asname or a.name] = f"{node.module}.{a.name}"
            else:
                todo.extend(getattr(node, f) for f in _BODIES if getattr(node, f, None))
                todo.extend(h.body for h in getattr(node, "handlers", ()))
                todo.extend(c.body for c in getattr(node, "cases", ()))
    return out


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _literal(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


class _Checker:
    """The rules over one file's tree: each node's handler (calls, assignments, functions) before its
    children, in the fields' order, as `ast.NodeVisitor` would, without its per-node method lookup."""

    def __init__(self, path: str, aliases: dict[str, str], imports_tar: bool) -> None:
        self.path, self.aliases, self.imports_tar = path, aliases, imports_tar
        self.found: list[Finding] = []
        self.tainted: list[set[str]] = [set()]
        self.handlers: dict[type[ast.AST], Callable[[Any], None]] = {
            ast.Call: self.visit_Call, ast.FunctionDef: self.visit_FunctionDef,
            ast.AsyncFunctionDef: self.visit_FunctionDef, ast.Assign: self.visit_Assign,
            ast.AnnAssign: self.visit_Assign, ast.AugAssign: self.visit_Assign}

    def visit(self, node: ast.AST) -> None:
        handler = self.handlers.get(type(node))
        if handler is not None:
            handler(node)
        else:
            self.generic_visit(node)

    def generic_visit(self, node: ast.AST) -> None:
        for field in node._fields:
            value = getattr(node, field, None)
            for child in value if isinstance(value, list) else (value,):
                if isinstance(child, ast.AST) and type(child) not in _LEAVES:
                    self.visit(child)

    def _hit(self, rule: R.MlRule, node: ast.AST, what: str) -> None:
        line = getattr(node, "lineno", None)
        self.found.append(Finding(rule=rule.rule, severity=rule.severity, message=f"{what} ({self.path}, line {line})",
                                  location=Location(self.path, line, getattr(node, "end_lineno", None) or line)))

    def _is_tainted(self, node: ast.AST) -> bool:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and (sub.id in self.tainted[-1] or sub.id in {"request", "req"}):
                return True
            if isinstance(sub, ast.Call):
                name = _dotted(sub.func, self.aliases)
                if name in {"input", "builtins.input"} or name.rsplit(".", 1)[-1] in _MODEL_CALLS:
                    return True
            if isinstance(sub, ast.Attribute) and _dotted(sub, self.aliases) == "sys.argv":
                return True
        return False

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.tainted.append(set())
        self.generic_visit(node)
        self.tainted.pop()

    def visit_Assign(self, node: ast.Assign | ast.AnnAssign | ast.AugAssign) -> None:
        value = node.value
        if value is not None and self._is_tainted(value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                self.tainted[-1].update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func, self.aliases)
        last = name.rsplit(".", 1)[-1]
        self._loads(node, name)
        self._code(node, name)
        self._network(node, name, last)
        if _true(_kw(node, "trust_remote_code")):
            self._hit(R.REMOTE_CODE, node, "trust_remote_code=True runs the model repository's Python")
        if _true(_kw(node, "allow_dangerous_deserialization")):
            self._hit(R.LANGCHAIN, node, "allow_dangerous_deserialization=True unpickles the index")
        if last in {"extractall", "extract"} and self.imports_tar and _kw(node, "filter") is None \
                and not name.startswith(("zipfile.", "shutil.")):
            self._hit(R.TAR_EXTRACT, node, f"{last}() without filter= (tar members may escape the folder)")
        self.generic_visit(node)

    def _loads(self, node: ast.Call, name: str) -> None:
        if name in _PICKLE:
            self._hit(R.PICKLE_LOAD, node, f"{name} deserializes with pickle (runs code from the data)")
        elif name == "torch.load" and not _true(_kw(node, "weights_only")):
            self._hit(R.TORCH_LOAD, node, "torch.load without weights_only=True unpickles the checkpoint")
        elif name == "numpy.load" and _true(_kw(node, "allow_pickle")):
            self._hit(R.NUMPY_PICKLE, node, "numpy.load with allow_pickle=True")
        elif name in {"yaml.unsafe_load", "yaml.unsafe_load_all", "yaml.full_load", "yaml.full_load_all"}:
            self._hit(R.YAML_LOAD, node, f"{name} builds arbitrary objects")
        elif name in {"yaml.load", "yaml.load_all"}:
            loader = _kw(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            loader_name = _dotted(loader, self.aliases).rsplit(".", 1)[-1] if loader is not None else ""
            if loader_name not in _SAFE_YAML:
                self._hit(R.YAML_LOAD, node, f"{name} without a safe Loader")

    def _code(self, node: ast.Call, name: str) -> None:
        if name in {"eval", "exec", "builtins.eval", "builtins.exec"} and node.args and self._is_tainted(node.args[0]):
            self._hit(R.EVAL, node, f"{name.rsplit('.', 1)[-1]}() of request data or model output")
        command = node.args[0] if node.args else _kw(node, "args") or _kw(node, "cmd")
        built = command is not None and not isinstance(command, ast.Constant | ast.List | ast.Tuple)
        if command is not None and (name in _SHELL or (name in _SUBPROCESS and _true(_kw(node, "shell")))) and (
                built or self._is_tainted(command)):
            self._hit(R.SHELL, node, f"{name} runs a shell command built from data")

    def _network(self, node: ast.Call, name: str, last: str) -> None:
        verify = _kw(node, "verify")
        if isinstance(verify, ast.Constant) and verify.value is False and name.startswith(("requests.", "httpx.")):
            self._hit(R.NO_VERIFY, node, f"{name} with verify=False")
        if last == "from_pretrained" or name in _HF:
            repo = _literal(node.args[0] if node.args else _kw(node, "repo_id") or
                            _kw(node, "pretrained_model_name_or_path"))
            revision = _literal(_kw(node, "revision"))
            if repo and _REPO_ID.match(repo) and not (revision and _SHA.match(revision)):
                self._hit(R.HF_REVISION, node, f"{last}({repo!r}) without a pinned commit revision")
        if last == "launch" and _kw(node, "auth") is None and (
                _literal(_kw(node, "server_name")) == "0.0.0.0" or _true(_kw(node, "share"))):  # noqa: S104
            self._hit(R.PUBLIC_APP, node, "app launched on all interfaces or shared without auth=")
        if name in _DOWNLOADS or last in {"download", "urlretrieve", "load_state_dict_from_url"}:
            url = _literal(node.args[0] if node.args else _kw(node, "url"))
            if url and url.startswith("http://") and not _LOCAL_URL.match(url):
                self._hit(R.HTTP_DOWNLOAD, node, f"{name or last} over plain http://")


def scan_source(path: str, text: str, gaps: list[CoverageGap]) -> list[Finding]:
    """Findings in one Python file's text; a file that does not parse is a gap."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for invalid escapes in scanned code
            tree = ast.parse(text, filename=path)
        aliases = _aliases(tree)
        checker = _Checker(path, aliases, any(v.split(".")[0] == "tarfile" for v in aliases.values()))
        checker.visit(tree)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        gaps.append(CoverageGap(GapKind.FORMAT_UNKNOWN, f"not parsed as Python ({type(e).__name__}); ML rules not "
                                "checked", path=path))
        return []
    return checker.found


def scan(root: Path, timeout: float = 600.0) -> tuple[list[Finding], ToolRun]:
    """Check every Python file and requirements file under `root`; past `timeout` seconds, a TIMEOUT."""
    deadline = time.monotonic() + timeout
    gaps: list[CoverageGap] = []
    findings: list[Finding] = []
    for source in source_files.files(root, gaps, suffixes=(".py", ".txt")):
        if time.monotonic() > deadline:
            return findings, ToolRun(TOOL, ToolStatus.TIMEOUT, version=VERSION, gaps=tuple(gaps),
                                     message=f"timed out after {timeout:g}s; the rest of the tree was not checked")
        if source.path.endswith(".py"):
            findings.extend(scan_source(source.path, source.text, gaps))
        elif is_requirements(source.path):
            findings.extend(scan_requirements(source.path, source.text))
    return findings, ToolRun(TOOL, ToolStatus.OK, version=VERSION, gaps=tuple(gaps))
