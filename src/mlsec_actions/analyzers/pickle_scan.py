"""Pickle analyzer: judge every callable a load would import, without loading.

The walk (`pickle_walk.py`) names each import and call; `pickle_policy.py` judges them. One finding per
distinct global per blob (first offset, with a count), so a file with a thousand tensors stays readable.
Joblib files are pickles with raw numpy array bytes between opcodes: the BUILD hook skips those bytes
and walks the nested pickle of object arrays.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from typing import BinaryIO

from mlsec_actions.analyzers.base import MODEL_SCAN_DOCS, Blob, model_rule
from mlsec_actions.analyzers.pickle_policy import Verdict, judge
from mlsec_actions.analyzers.pickle_walk import Call, Global, Report, _Machine, walk, walk_one
from mlsec_actions.findings import Finding, Rule, Severity

_FIX = ("Do not load this file. Get the model from a trusted source, or convert it to a format that cannot run "
        "code (safetensors, ONNX without custom ops, GGUF) and load it with `weights_only=True` or equivalent.")


def _rule(rid: str, name: str, short: str, full: str, help_text: str = _FIX, precision: str = "high") -> Rule:
    return model_rule(("model", "pickle", "supply-chain"), MODEL_SCAN_DOCS, rid, name, short, full, help_text,
                      precision=precision)


DANGEROUS = _rule("pickle/dangerous-global", "PickleDangerousGlobal", "Pickle imports a code-execution primitive",
                  "Loading this pickle imports a callable that runs commands or code (os.system, eval, "
                  "importlib, subprocess...). Unpickling it executes the attacker's payload.")
RISKY = _rule("pickle/risky-global", "PickleRiskyGlobal", "Pickle imports a callable used to smuggle code",
              "Loading this pickle imports a higher-order callable (functools.partial, map, reduce...) that "
              "payloads use to chain other calls; no model format needs it.", precision="medium")
UNKNOWN = _rule("pickle/unknown-global", "PickleUnknownGlobal", "Pickle imports a callable outside the allowlist",
                "Loading this pickle imports a callable that is neither on the allowlist of what torch, numpy, "
                "sklearn and the standard containers need, nor a known code-execution primitive. Review it: "
                "any importable callable can run code when unpickled.",
                "Check that the named class or function is yours and safe to call with attacker-chosen "
                "arguments; prefer a format that stores only tensors (safetensors).", precision="medium")
DYNAMIC = _rule("pickle/dynamic-global", "PickleDynamicGlobal", "Pickle builds an import name at load time",
                "A STACK_GLOBAL takes its module or name from values computed while loading, so what it imports "
                "cannot be read from the file. Legitimate pickles write these names as plain strings.")
EXTENSION = _rule("pickle/extension-code", "PickleExtensionCode", "Pickle imports through the extension registry",
                  "EXT1/EXT2/EXT4 opcodes import whatever the loading process registered in copyreg under that "
                  "code; the callable cannot be judged from the file.", precision="medium")
MALFORMED = _rule("pickle/malformed", "PickleMalformed", "Pickle data is malformed or truncated",
                  "The pickle stream does not parse to the end (bad opcode, truncated argument, stack error). "
                  "Scanners that stop at the first error miss what follows; loaders may still run what precedes.",
                  "Re-export the file from its source. If it was not corrupted in transit, treat it as crafted.",
                  precision="medium")
RULES = (DANGEROUS, RISKY, UNKNOWN, DYNAMIC, EXTENSION, MALFORMED)

_SEVERITY = {Verdict.CRITICAL: (DANGEROUS, Severity.CRITICAL), Verdict.HIGH: (RISKY, Severity.HIGH),
             Verdict.UNKNOWN: (UNKNOWN, Severity.MEDIUM)}
_JOBLIB_WRAPPERS = {("joblib.numpy_pickle", "NumpyArrayWrapper")}
_NESTED_LOADERS = {("torch.storage", "_load_from_bytes")}
_MAX_NESTING = 3
_MAX_NESTED_BYTES = 64 * 1024 * 1024
_MAX_ERRORS = 5


def analyze(blob: Blob) -> list[Finding]:
    """The registry entry: a whole blob that is a pickle (or a joblib file)."""
    with blob.open() as stream:
        return findings(blob, scan_stream(stream))


def scan_stream(stream: BinaryIO) -> Report:
    """Walk every pickle stream from the current position; joblib array payloads are skipped or walked."""
    return walk(stream, on_build=_joblib_build)


def findings(blob: Blob, report: Report, depth: int = 0) -> list[Finding]:
    """Turn a walk into findings: one per distinct global, plus errors, plus pickles nested in byte arguments."""
    out: list[Finding] = _nested(blob, report, depth)
    seen: dict[tuple[str, str], list[Global]] = {}
    for g in report.globals:
        seen.setdefault((g.module, g.name), []).append(g)
    wrapped = _partial_targets(report.calls)
    for (module, name), hits in seen.items():
        verdict = judge(module, name)
        if verdict is Verdict.ALLOWED:
            continue
        rule, severity = _SEVERITY[verdict]
        first = hits[0]
        count = f" ({len(hits)} times)" if len(hits) > 1 else ""
        message = f"Pickle imports {first.qualname} at byte {first.offset}{count}"
        inner = wrapped.get((module, name))
        if inner:
            rule, severity = DANGEROUS, Severity.CRITICAL
            message += f", wrapping {inner}"
        message += "." if verdict is not Verdict.UNKNOWN else "; it is not on the allowlist."
        out.append(Finding(rule=rule, severity=severity, message=message,
                           location=blob.location(f"offset {first.offset}::{first.qualname}", "function"),
                           properties=(("global", first.qualname), ("opcode", first.opcode),
                                       ("offset", str(first.offset)))))
    for offset in report.dynamic[:1]:
        out.append(Finding(rule=DYNAMIC, severity=Severity.HIGH, location=blob.location(f"offset {offset}"),
                           message=f"STACK_GLOBAL at byte {offset} imports a name computed at load time "
                                   f"({len(report.dynamic)} such imports)."))
    for offset, code in report.extensions[:1]:
        out.append(Finding(rule=EXTENSION, severity=Severity.MEDIUM, location=blob.location(f"offset {offset}"),
                           message=f"Extension code {code} at byte {offset} imports an unknown callable."))
    for offset, problem in report.errors[:_MAX_ERRORS]:
        out.append(Finding(rule=MALFORMED, severity=Severity.MEDIUM, location=blob.location(f"offset {offset}"),
                           message=f"Pickle does not parse at byte {offset}: {_clip(problem)}."))
    if report.ops == 0 and not report.errors:
        out.append(Finding(rule=MALFORMED, severity=Severity.LOW, location=blob.location(),
                           message="Pickle is empty."))
    return out


def _nested(blob: Blob, report: Report, depth: int) -> list[Finding]:
    """`torch.storage._load_from_bytes(b"...")` runs torch.load on its argument: scan those bytes too."""
    out: list[Finding] = []
    for call in report.calls:
        func, args = call.func, call.args
        if not (isinstance(func, Global) and (func.module, func.name) in _NESTED_LOADERS and isinstance(args, tuple)
                and args and isinstance(args[0], bytes)) or depth >= _MAX_NESTING:
            continue
        data = args[0]
        member = f"{blob.member}!" if blob.member else ""
        streams = [(f"<bytes at {call.offset}>", data)]
        if data.startswith(b"PK"):
            streams = _zip_pickles(data, f"<bytes at {call.offset}>")
        for label, payload in streams:
            inner = Blob(blob.path, member + label, len(payload), lambda p=payload: io.BytesIO(p))  # type: ignore[misc]
            out.extend(findings(inner, scan_stream(io.BytesIO(payload)), depth + 1))
    return out


def _zip_pickles(data: bytes, label: str) -> list[tuple[str, bytes]]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return [(f"{label}!{i.filename}", archive.read(i)) for i in archive.infolist()
                    if i.filename.endswith(".pkl") and i.file_size <= _MAX_NESTED_BYTES]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError):
        return [(label, data)]


def _partial_targets(calls: list[Call]) -> dict[tuple[str, str], str]:
    """functools.partial(f, ...) and friends: which wrapper wraps a critical callable."""
    out: dict[tuple[str, str], str] = {}
    for call in calls:
        func = call.func
        if not isinstance(func, Global) or judge(func.module, func.name) is not Verdict.HIGH:
            continue
        args = call.args if isinstance(call.args, tuple) else ()
        for arg in args:
            if isinstance(arg, Global) and judge(arg.module, arg.name) is Verdict.CRITICAL:
                out[(func.module, func.name)] = arg.qualname
    return out


def _clip(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().rstrip(".")[:200]


# joblib: after BUILD of a NumpyArrayWrapper, the array's bytes follow in the file.
_ITEMSIZE = re.compile(r"^[<>|=]?([a-zA-Z])(\d*)")
_KIND_UNIT = {"U": 4}


def _joblib_build(machine: _Machine, obj: object, state: object) -> None:
    if not (isinstance(obj, Call) and isinstance(obj.func, Global)
            and (obj.func.module, obj.func.name) in _JOBLIB_WRAPPERS and isinstance(state, dict)):
        return
    stream = machine.stream
    dtype = state.get("dtype")
    code = dtype.args[0] if isinstance(dtype, Call) and isinstance(dtype.args, tuple) and dtype.args else None
    if not isinstance(code, str):
        raise _joblib_error(machine, "array dtype cannot be read")
    kind_match = _ITEMSIZE.match(code)
    if kind_match is None:
        raise _joblib_error(machine, f"array dtype {code!r} is not understood")
    kind, digits = kind_match.groups()
    if kind == "O":
        walk_one(stream, machine.report, on_build=_joblib_build)
        return
    if state.get("numpy_array_alignment_bytes") is not None:
        pad = stream.read(1)
        stream.seek(pad[0] if pad else 0, io.SEEK_CUR)
    shape = state.get("shape")
    if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)):
        raise _joblib_error(machine, "array shape cannot be read")
    itemsize = int(digits or 1) * _KIND_UNIT.get(kind, 1)
    stream.seek(math.prod(shape) * itemsize, io.SEEK_CUR)


def _joblib_error(machine: _Machine, problem: str) -> ValueError:
    return ValueError(f"joblib array at byte {machine.stream.tell()}: {problem}")
