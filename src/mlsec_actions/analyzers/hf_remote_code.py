"""Hugging Face model folders: code that `trust_remote_code=True` would run.

`auto_map` in `config.json` (and the tokenizer/processor configs) names `module.Class` pairs; with
`trust_remote_code=True`, transformers imports `module.py` from the folder (or, with `repo--module`,
from another Hub repository) and runs it. Each entry is reported, and the reachable `.py` files are
read with `ast` (never imported) for calls that run commands or reach the network.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlsec_actions.analyzers.base import FORMATS_DOCS, model_rule
from mlsec_actions.analyzers.gguf import describe, template_issues
from mlsec_actions.findings import Finding, Location, Severity

CONFIG_FILES = ("config.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json",
                "image_processor_config.json", "feature_extractor_config.json", "video_preprocessor_config.json")
MAX_FILE = 16 * 1024 * 1024
MAX_MODULES = 200

# Fully qualified callables that run code or commands; a prefix ending in "." matches a whole module.
DANGEROUS = ("os.system", "os.popen", "os.exec", "os.spawn", "os.posix_spawn", "subprocess.", "pty.spawn",
             "builtins.eval", "builtins.exec", "builtins.compile", "builtins.__import__", "eval", "exec",
             "compile", "__import__", "importlib.import_module", "pickle.load", "pickle.loads", "marshal.loads",
             "ctypes.", "runpy.", "code.interact", "shutil.rmtree", "torch.hub.load")
NETWORK = ("requests.", "urllib.request.", "urllib3.", "httpx.", "http.client.", "socket.", "aiohttp.",
           "ftplib.", "smtplib.", "telnetlib.", "paramiko.", "urlopen")


_rule = functools.partial(model_rule, ("model", "huggingface"), FORMATS_DOCS)


AUTO_MAP = _rule(
    "hf/auto-map", "HfAutoMapRemoteCode", "Hugging Face model runs custom code with trust_remote_code",
    "An `auto_map` entry makes transformers import a Python module shipped with the model (or from another "
    "Hub repository) when it is loaded with `trust_remote_code=True`. That code runs with your privileges.",
    "Prefer a model whose architecture is built into transformers. If you need the custom code, review it, "
    "vendor it into your repository, pin the model by commit (`revision=`), and keep `trust_remote_code=False` "
    "everywhere else.", ("remote-code", "code-execution"))
DANGEROUS_CALL = _rule(
    "hf/dangerous-call", "HfRemoteCodeDangerousCall", "Remote-code module runs commands or dynamic code",
    "A module that `trust_remote_code=True` would execute calls `os.system`, `subprocess`, `eval`/`exec`, "
    "`pickle.loads` or similar. Model code has no reason to do that.",
    "Do not load this model with `trust_remote_code=True`; report it to the publisher.",
    ("remote-code", "code-execution"))
NETWORK_CALL = _rule(
    "hf/network-call", "HfRemoteCodeNetworkCall", "Remote-code module opens network connections",
    "A module that `trust_remote_code=True` would execute uses requests, urllib, sockets or similar, which "
    "can exfiltrate data or fetch a second stage.",
    "Review where it connects; load the model offline (`HF_HUB_OFFLINE=1`) and without remote code if possible.",
    ("remote-code", "network"))
UNPARSABLE = _rule(
    "hf/unparsable-code", "HfRemoteCodeUnparsable", "Remote-code module could not be checked",
    "A module named by `auto_map` is not valid Python (or too large) here, so it could not be inspected.",
    "Review the module by hand before trusting it.", ("remote-code",))
TEMPLATE = _rule(
    "hf/chat-template-injection", "HfChatTemplateInjection", "Tokenizer chat template contains a Jinja sandbox escape",
    "`chat_template` in `tokenizer_config.json` reaches Python internals (`__globals__`, `__subclasses__`...). "
    "Servers that render it outside a Jinja sandbox run attacker code.",
    "Use the publisher's template and render only in `jinja2.sandbox.ImmutableSandboxedEnvironment`.",
    ("jinja", "ssti", "code-execution"))
MALFORMED = _rule(
    "hf/malformed-config", "HfMalformedConfig", "Hugging Face config file is not valid JSON",
    "A config file transformers reads is not a JSON object, so `auto_map` could not be checked.",
    "Fix or re-download the file from the publisher.", ("correctness",))

RULES = (AUTO_MAP, DANGEROUS_CALL, NETWORK_CALL, UNPARSABLE, TEMPLATE, MALFORMED)


def analyze_folder(root: Path, rel: str) -> list[Finding]:
    """Check the Hugging Face model folder `root/rel` (`rel` POSIX, "" or "." for the root itself)."""
    folder = (root / rel).resolve()
    if not folder.is_relative_to(root.resolve()):
        return []  # a symlinked folder pointing out of the scanned root is not followed
    prefix = "" if rel in ("", ".") else rel.rstrip("/") + "/"
    findings: list[Finding] = []
    modules: list[str] = []
    for name in config_files(folder):
        path = folder / name
        text, data = _load(path)
        if not isinstance(data, dict):
            findings.append(Finding(rule=MALFORMED, severity=Severity.LOW, location=Location(prefix + name),
                                    message=f"{name} is not a JSON object"))
            continue
        for key, ref in _auto_map(data):
            findings.append(_auto_map_finding(folder, prefix + name, text, key, ref))
            repo, _, dotted = ref.rpartition("--")
            if not repo and "." in dotted:
                modules.append(dotted.rsplit(".", 1)[0])
        if name == "tokenizer_config.json":
            findings += _templates(prefix + name, text, data.get("chat_template"))
    for module_file in _reachable(folder, modules):
        findings += _check_module(module_file, prefix + module_file.relative_to(folder).as_posix())
    return findings


def is_config_name(name: str) -> bool:
    """A file transformers may read `auto_map` from: `config.json` or any `*_config.json`.

    `AutoTokenizer`, `AutoProcessor`, `AutoImageProcessor`... each read their own config and honour its
    `auto_map` even when the folder has no `config.json`.
    """
    return name == "config.json" or (name.endswith("_config.json") and len(name) > len("_config.json"))


def config_files(folder: Path) -> list[str]:
    """The folder's config files (regular files only, symlinks not followed): known names first, then the rest."""
    try:
        with os.scandir(folder) as listing:
            names = {e.name for e in listing if is_config_name(e.name) and e.is_file(follow_symlinks=False)}
    except OSError:
        return []
    return [n for n in CONFIG_FILES if n in names] + sorted(names - set(CONFIG_FILES))


def _load(path: Path) -> tuple[str, Any]:
    try:
        if path.stat().st_size > MAX_FILE:
            return "", None
        text = path.read_text(encoding="utf-8")
        return text, json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return "", None


def _auto_map(data: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(key, `module.Class` reference) for `auto_map` entries and custom pipeline implementations."""
    auto_map = data.get("auto_map")
    if isinstance(auto_map, dict):
        for auto_class, value in auto_map.items():
            for ref in value if isinstance(value, list) else [value]:
                if isinstance(ref, str) and ref:
                    yield f"auto_map.{auto_class}", ref
    pipelines = data.get("custom_pipelines")
    if isinstance(pipelines, dict):
        for task, spec in pipelines.items():
            impl = spec.get("impl") if isinstance(spec, dict) else None
            if isinstance(impl, str) and impl:
                yield f"custom_pipelines.{task}", impl


def _line_of(text: str, needle: str) -> int | None:
    at = text.find(json.dumps(needle))
    return text.count("\n", 0, at) + 1 if at >= 0 else None


def _auto_map_finding(folder: Path, path: str, text: str, key: str, ref: str) -> Finding:
    repo, _, dotted = ref.rpartition("--")
    module, _, cls = dotted.rpartition(".")
    if repo:
        where = f"code from another Hub repository `{repo}` (not in this folder, cannot be reviewed here)"
    elif (folder / f"{module}.py").is_file():
        where = f"`{module}.py` in this folder"
    else:
        where = f"`{module}.py`, missing here, fetched from the Hub at load time"
    return Finding(rule=AUTO_MAP, severity=Severity.HIGH,
                   message=f"`{key}` loads class `{cls or dotted}` from {where}",
                   location=Location(path, start_line=_line_of(text, ref), logical=key,
                                     logical_kind="object"))


def _reachable(folder: Path, modules: list[str]) -> list[Path]:
    """The named modules plus the modules they import relatively (`from .x import y`), inside the folder."""
    seen: dict[str, Path] = {}
    todo = list(modules)
    while todo and len(seen) < MAX_MODULES:
        name = todo.pop()
        if name in seen:
            continue
        path = folder / (name.replace(".", "/") + ".py")
        if not path.is_file() or path.is_symlink() or not path.resolve().is_relative_to(folder):
            continue
        seen[name] = path
        try:
            tree = ast.parse(path.read_bytes()) if path.stat().st_size <= MAX_FILE else None
        except (SyntaxError, ValueError, OSError):
            continue
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    todo.append(node.module)
                else:
                    todo += [alias.name for alias in node.names]
    return sorted(seen.values())


def _check_module(path: Path, shown: str) -> list[Finding]:
    try:
        if path.stat().st_size > MAX_FILE:
            raise ValueError("file too large")
        tree = ast.parse(path.read_bytes(), filename=shown)
    except (SyntaxError, ValueError, OSError) as e:
        return [Finding(rule=UNPARSABLE, severity=Severity.MEDIUM, location=Location(shown),
                        message=f"remote-code module could not be parsed: {e}")]
    aliases = _aliases(tree)
    findings: list[Finding] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _resolve(node.func, aliases)
        if name is None:
            continue
        if _matches(name, DANGEROUS):
            rule, severity = DANGEROUS_CALL, Severity.CRITICAL
        elif _matches(name, NETWORK):
            rule, severity = NETWORK_CALL, Severity.HIGH
        else:
            continue
        findings.append(Finding(rule=rule, severity=severity, message=f"remote-code module calls `{name}`",
                                location=Location(shown, start_line=node.lineno, logical=name,
                                                  logical_kind="function")))
    return findings


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> qualified name, from the module's imports."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                out[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return out


def _resolve(func: ast.expr, aliases: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return None
    parts.append(aliases.get(func.id, func.id))
    return ".".join(reversed(parts))


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(name.startswith(p) if p.endswith(".") or p in ("os.exec", "os.spawn") else name == p
               for p in patterns)


def _templates(path: str, text: str, value: Any) -> list[Finding]:
    templates: list[tuple[str, str]] = []
    if isinstance(value, str):
        templates.append(("chat_template", value))
    elif isinstance(value, list):
        templates += [(f"chat_template.{t.get('name', i)}", t["template"]) for i, t in enumerate(value)
                      if isinstance(t, dict) and isinstance(t.get("template"), str)]
    out: list[Finding] = []
    for key, template in templates:
        issues = template_issues(template)
        if issues:
            out.append(Finding(rule=TEMPLATE, severity=max(i.severity for i in issues),
                               message=f"`{key}` contains {describe(issues)}",
                               location=Location(path, start_line=_first_line(text, issues[0].excerpt), logical=key,
                                                 logical_kind="object")))
    return out


def _first_line(text: str, excerpt: str) -> int | None:
    # The excerpt is decoded template text; in the JSON file it is escaped, so look for a distinctive word.
    word = max(re.findall(r"\w+", excerpt) or [""], key=len)
    at = text.find(word) if word else -1
    return text.count("\n", 0, at) + 1 if at >= 0 else None
