"""Keras: Lambda layers and custom modules in HDF5 `model_config` and `.keras` `config.json`.

A Lambda layer stores Python bytecode (marshalled, base64) that runs when the model is loaded or called;
a `module` outside keras/tensorflow makes the loader import and call arbitrary code (CVE-2025-1550).
HDF5 files are read without h5py: the JSON config is an attribute stored contiguously, so every JSON
object in the raw bytes is decoded (keys in any order, escaped or not) and judged by its decoded keys;
nothing is loaded with Keras. `TorchModuleWrapper` and `TFSMLayer` layers are reported as well.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from mlsec_actions.analyzers.base import FORMATS_DOCS, Blob, model_rule
from mlsec_actions.findings import Finding, Rule, Severity

MAX_CONFIG = 64 * 1024 * 1024
"""A `config.json` larger than this is reported, not parsed."""
CHUNK = 8 * 1024 * 1024
OVERLAP = 64
MAX_DEPTH = 200

# Packages whose objects a Keras model legitimately deserializes.
SAFE_PACKAGES = frozenset({"keras", "keras_core", "tensorflow", "tf_keras", "keras_nlp", "keras_hub", "keras_cv",
                           "keras_rs", "tensorflow_hub", "tensorflow_text", "tensorflow_addons",
                           "tensorflow_probability"})
# Modules whose functions are code execution outright.
DANGEROUS_MODULES = frozenset({"os", "posix", "nt", "subprocess", "builtins", "__builtin__", "sys", "runpy",
                               "importlib", "pty", "code", "shutil", "socket", "pickle", "marshal", "webbrowser",
                               "ctypes", "pip", "operator", "functools", "types", "codecs"})
# Any JSON object start: keys may come in any order and be escaped (`"\\u0063lass_name"`), so the object is
# decoded first and judged by its decoded keys.
_CONFIG_START = re.compile(rb'\{\s*"')


_rule = functools.partial(model_rule, ("model", "keras", "code-execution"), FORMATS_DOCS)


LAMBDA = _rule(
    "keras/lambda-layer", "KerasLambdaLayer", "Keras model contains a Lambda layer (arbitrary code)",
    "A `Lambda` layer carries a Python function, usually as marshalled bytecode, that runs when the model is "
    "loaded with `safe_mode=False`, by older Keras versions, or when it is called.",
    "Replace the Lambda layer with a built-in layer or a registered custom layer whose code lives in your "
    "repository, re-save the model, and load models with `safe_mode=True`.")
CUSTOM_MODULE = _rule(
    "keras/custom-module", "KerasCustomModule", "Keras config imports a module outside keras/tensorflow",
    "An object in the model config names a `module` outside the Keras and TensorFlow namespaces. Loading the "
    "model imports that module and calls the named attribute, which can be any Python function.",
    "Load only models whose config references keras/tensorflow objects; ship custom layers as reviewed code "
    "and pass them through `custom_objects` instead of letting the file name a module.")
CUSTOM_OBJECT = _rule(
    "keras/custom-object", "KerasCustomObject", "Keras config requires a custom registered object",
    "An object is registered under a package outside keras/tensorflow (`registered_name` or `class_name` of "
    "the form `package>Name`). Loading runs whatever code provides that object.",
    "Make sure the custom object's code is reviewed and pinned in your repository, not taken from the model.")
MALFORMED = _rule(
    "keras/malformed-config", "KerasMalformedConfig", "Keras model config could not be parsed",
    "The model config is not valid JSON (or too large), so the model could not be checked for Lambda layers "
    "and custom modules.",
    "Re-save the model with Keras from a trusted source; do not load a model that cannot be checked.")

UNSAFE_LAYER = _rule(
    "keras/unsafe-layer", "KerasUnsafeLayer", "Keras layer deserializes code or a graph from outside the config",
    "`TorchModuleWrapper` stores a whole PyTorch module that Keras restores with `torch.load` (a pickle: "
    "CVE-2025-49655); `TFSMLayer` loads a TensorFlow SavedModel from a path named in the config, with all its "
    "ops (CVE-2026-1462). Loading the model runs what those carry.",
    "Rebuild the model from built-in layers; never load a model with these layers from an untrusted source.")

RULES = (LAMBDA, CUSTOM_MODULE, CUSTOM_OBJECT, MALFORMED, UNSAFE_LAYER)
_UNSAFE_LAYERS = {
    "TorchModuleWrapper": (Severity.CRITICAL, "restores a PyTorch module with torch.load (pickle)"),
    "TFSMLayer": (Severity.HIGH, "loads a TensorFlow SavedModel and its ops"),
}


def analyze_keras_config(blob: Blob) -> list[Finding]:
    """Check the `config.json` of a Keras v3 `.keras` archive."""
    if blob.size > MAX_CONFIG:
        return [_finding(MALFORMED, Severity.MEDIUM, blob, f"config is {blob.size} bytes, over the limit")]
    with blob.open() as fh:
        raw = fh.read(MAX_CONFIG + 1)
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        return [_finding(MALFORMED, Severity.MEDIUM, blob, f"config is not valid JSON: {e}")]
    return check_config(blob, config)


def analyze_h5(blob: Blob) -> list[Finding]:
    """Find the JSON configs (`model_config`, `training_config`) in a Keras HDF5 file and check them."""
    findings: list[Finding] = []
    seen: set[str] = set()
    for config in _h5_configs(blob):
        for f in check_config(blob, config):
            key = f"{f.rule.id}|{f.location.logical}|{f.message}"
            if key not in seen:
                seen.add(key)
                findings.append(f)
    return findings


def _h5_configs(blob: Blob) -> Iterator[Any]:
    """JSON objects that look like Keras configs, found anywhere in the file's bytes (read in chunks)."""
    decoder = json.JSONDecoder()
    with blob.open() as fh:
        buffer = b""
        pos = 0  # where the next search starts in `buffer`
        while True:
            chunk = fh.read(CHUNK)
            at_end = not chunk
            buffer += chunk
            need_more = False
            while match := _CONFIG_START.search(buffer, pos):
                end = _json_end(buffer, match.start())
                if end is None and not at_end and len(buffer) - match.start() < MAX_CONFIG:
                    need_more, pos = True, match.start()  # the object continues in the next chunk
                    break
                pos = match.start() + 1
                if end is None or end < 0:
                    continue
                try:
                    obj, _ = decoder.raw_decode(buffer[match.start():end].decode("utf-8"))
                except (UnicodeDecodeError, ValueError, RecursionError):
                    continue
                pos = end
                if isinstance(obj, dict) and "class_name" in obj:
                    yield obj
            if at_end:
                return
            if not need_more:
                pos = max(pos, len(buffer) - OVERLAP)
            buffer, pos = buffer[pos:], 0


def _json_end(buf: bytes, start: int) -> int | None:
    """Index after the JSON object at `start` (string-aware brace matching); None: buffer ended; -1: broken."""
    depth = 0
    in_string = False
    escaped = False
    for i in range(start, min(len(buf), start + MAX_CONFIG)):
        c = buf[i]
        if in_string:
            if escaped:
                escaped = False
            elif c == 0x5C:
                escaped = True
            elif c == 0x22:
                in_string = False
            elif c < 0x20:
                return -1  # raw control bytes never occur inside a JSON string
        elif c == 0x22:
            in_string = True
        elif c == 0x7B:
            depth += 1
        elif c == 0x7D:
            depth -= 1
            if depth == 0:
                return i + 1
        elif c < 0x09:
            return -1  # NUL padding or binary: not a config
    return None if len(buf) - start < MAX_CONFIG else -1


def check_config(blob: Blob, config: Any) -> list[Finding]:
    """Walk a Keras config tree (any nesting: models in models, wrappers, compile configs)."""
    findings: list[Finding] = []
    _walk(blob, config, "", findings, 0, in_lambda=False)
    return findings


def _walk(blob: Blob, node: Any, path: str, findings: list[Finding], depth: int, in_lambda: bool) -> None:
    if depth > MAX_DEPTH:
        findings.append(_finding(MALFORMED, Severity.MEDIUM, blob, "config nested too deeply to check", path))
        return
    if isinstance(node, list):
        for item in node:
            _walk(blob, item, path, findings, depth + 1, in_lambda)
        return
    if not isinstance(node, dict):
        return
    if "class_name" in node:
        path = _layer_path(path, node)
        findings += _check_object(blob, node, path, in_lambda)
        in_lambda = in_lambda or node.get("class_name") == "Lambda"
    for value in node.values():
        _walk(blob, value, path, findings, depth + 1, in_lambda)


def _layer_path(parent: str, node: dict[str, Any]) -> str:
    config = node.get("config")
    name = node.get("name") or (config.get("name") if isinstance(config, dict) else None)
    if not isinstance(name, str) or not name:
        return parent
    return f"{parent}/{name}" if parent else name


def _check_object(blob: Blob, node: dict[str, Any], path: str, in_lambda: bool) -> list[Finding]:
    out: list[Finding] = []
    class_name = node.get("class_name")
    module = node.get("module")
    registered = node.get("registered_name")
    if class_name == "Lambda" or (class_name == "__lambda__" and not in_lambda):
        out.append(_lambda_finding(blob, node, path))
    if isinstance(class_name, str) and class_name.rpartition(">")[2] in _UNSAFE_LAYERS:
        severity, what = _UNSAFE_LAYERS[class_name.rpartition(">")[2]]
        config = node.get("config") if isinstance(node.get("config"), dict) else {}
        source = config.get("filepath") if isinstance(config, dict) else None
        extra = f" from `{source}`" if isinstance(source, str) else ""
        out.append(_finding(UNSAFE_LAYER, severity, blob, f"layer `{path or class_name}` is a {class_name}: it "
                                                          f"{what}{extra}", path))
    if isinstance(module, str) and module and _package(module) not in SAFE_PACKAGES:
        target = f"{module}.{node.get('config') if class_name == 'function' else class_name}"
        severity = Severity.CRITICAL if _package(module) in DANGEROUS_MODULES else Severity.HIGH
        out.append(_finding(CUSTOM_MODULE, severity, blob, f"object `{path or class_name}` loads `{target}` "
                                                           f"from module `{module}`", path))
    for value in (registered, class_name):
        if isinstance(value, str) and ">" in value and value.split(">", 1)[0].strip() not in SAFE_PACKAGES:
            out.append(_finding(CUSTOM_OBJECT, Severity.MEDIUM, blob,
                                f"object `{path or class_name}` requires custom object `{value}`", path))
            break
    return out


def _package(module: str) -> str:
    return module.split(".", 1)[0]


def _lambda_finding(blob: Blob, node: dict[str, Any], path: str) -> Finding:
    config = node.get("config") if isinstance(node.get("config"), dict) else {}
    assert isinstance(config, dict)
    function = config.get("function", config.get("value", config.get("code")))
    detail = _describe_function(function)
    kind = config.get("function_type")
    what = "Lambda layer" if node.get("class_name") == "Lambda" else "lambda function"
    where = f"{what} `{path}`" if path else what
    message = f"{where} carries {detail}" + (f" (function_type {kind})" if isinstance(kind, str) else "")
    finding = _finding(LAMBDA, Severity.CRITICAL, blob, message, path)
    code = _base64_code(function)
    if code:  # the payload itself, so a reviewer can decode it offline (never unmarshalled here)
        return replace(finding, properties=(("function_base64", code[:2048]),))
    return finding


def _base64_code(function: Any) -> str | None:
    if isinstance(function, dict):
        inner = function.get("config")
        return _base64_code(inner.get("code", inner.get("value"))) if isinstance(inner, dict) else None
    if isinstance(function, list | tuple) and function:
        return _base64_code(function[0])
    return function if isinstance(function, str) and re.fullmatch(r"[A-Za-z0-9+/=\s]{8,}", function) else None


def _describe_function(function: Any) -> str:
    """Say what the Lambda carries; for bytecode, list the names in it (decoded, never unmarshalled)."""
    if isinstance(function, dict):
        inner = function.get("config")
        if isinstance(inner, dict):
            return _describe_function(inner.get("code", inner.get("value")))
        if isinstance(inner, str):
            return f"a reference to function `{function.get('module', '?')}.{inner}`"
    if isinstance(function, list | tuple) and function:
        return _describe_function(function[0])
    if isinstance(function, str):
        try:
            code = base64.b64decode(function.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            return f"source or a function name `{function[:80]}`"
        names = sorted({n.decode() for n in re.findall(rb"[A-Za-z_][A-Za-z0-9_.]{2,40}", code)})
        shown = ", ".join(names[:12])
        return f"marshalled bytecode ({len(code)} bytes; names: {shown or 'none'})"
    return "a function"


def _finding(rule: Rule, severity: Severity, blob: Blob, message: str, path: str | None = None) -> Finding:
    return Finding(rule=rule, message=message, severity=severity,
                   location=blob.location(path or None, kind="object" if path else "member"))
