"""Helpers allowed only with checked arguments, and the payloads they would load.

- nested-payload (`torch.storage._load_from_bytes`): runs `torch.load` on its argument. The argument must
  be a literal byte string, or one the machine computed from literals (`_codecs.encode`, `bytes(list)`);
  those bytes are walked in place (a pickle, or a PyTorch zip whose `.pkl` members are walked).
- import-by-name (`numpy.core._ufunc_reconstruct(module, name)`): imports `module.name`. The pair must be
  literal strings; it is then judged as an import of its own.
- apply (`torch._tensor._rebuild_from_type_v2(func, type, args, state)`): calls `func(*args)`. `func` must
  be an imported global (judged on its own); a checked helper there is checked with `args`.

Anything else (a computed argument, a helper passed around as a value, nesting deeper than
`MAX_DEPTH`) is reported as unchecked: the walk cannot tell what the load would do.
"""

from __future__ import annotations

import io
import mmap
import zipfile
from collections.abc import Callable

from mlsec_actions.analyzers.pickle_policy import checked
from mlsec_actions.analyzers.pickle_values import Global, Region
from mlsec_actions.analyzers.pickle_walk import Report

MAX_DEPTH = 3
_MAX_MATERIALISED = 16 << 20
_MAX_ZIP_MEMBER = 64 << 20

Rewalk = Callable[[bytes | mmap.mmap, int, int, int], Report]
"""Walks data[start:end] as a nested payload at a nesting depth."""


def watched() -> frozenset[tuple[str, str]]:
    """Calls the walker must record with their arguments."""
    return frozenset(checked())


def resolve(report: Report, data: bytes | mmap.mmap, depth: int, rewalk: Rewalk) -> None:
    """Check every call of an argument-checked helper in `report`; walk the payloads they load."""
    kinds = checked()
    handled: set[tuple[int, Global]] = set()
    work: list[tuple[Global, object, int]] = [
        (c.func, c.args, c.offset) for c in report.calls if isinstance(c.func, Global)]
    while work:
        func, args, offset = work.pop(0)
        key = (func.module, func.name)
        kind = kinds.get(key)
        if kind is None:
            continue
        values = args if isinstance(args, tuple) else None
        if values is None:
            report.unchecked.append((offset, func.qualname, "is called with arguments computed at load time"))
        elif kind == "nested-payload":
            _payload(report, func, values, offset, data, depth, rewalk)
        elif kind == "import-by-name":
            if len(values) >= 2 and isinstance(values[0], str) and isinstance(values[1], str):
                report.add_global(Global(values[0], values[1], offset, "REDUCE " + func.qualname))
            else:
                report.unchecked.append((offset, func.qualname, "imports a name computed at load time"))
        elif kind == "apply":
            target = values[0] if values else None
            inner_args = values[2] if len(values) > 2 else None
            if isinstance(target, Global):
                handled.add((offset, target))
                work.append((target, inner_args, offset))
            else:
                report.unchecked.append((offset, func.qualname, "calls a callable computed at load time"))
    for offset, g in report.escaped:
        if (g.module, g.name) not in kinds or (offset, g) in handled:
            continue
        report.unchecked.append((offset, g.qualname, "is passed as a value, so its arguments cannot be checked"))


def _payload(report: Report, func: Global, values: tuple[object, ...], offset: int, data: bytes | mmap.mmap,
             depth: int, rewalk: Rewalk) -> None:
    arg = values[0] if values else None
    label = f"<bytes at {offset}>"
    if depth >= MAX_DEPTH:
        report.unchecked.append((offset, func.qualname, f"loads a payload nested deeper than {MAX_DEPTH} levels"))
        return
    if isinstance(arg, bytes):
        _walk_bytes(report, label, arg, 0, len(arg), depth, rewalk)
    elif isinstance(arg, Region) and arg.codec == "bytes":
        _walk_bytes(report, label, data, arg.start, arg.end, depth, rewalk)
    elif isinstance(arg, Region) and arg.end - arg.start <= _MAX_MATERIALISED:
        # A long str turned into bytes by _codecs.encode(text, "latin1") (protocol 2): decode it once.
        try:
            raw = str(data[arg.start:arg.end], arg.codec).encode("latin-1")
        except (UnicodeDecodeError, UnicodeEncodeError):
            report.unchecked.append((offset, func.qualname, "loads text that is not a latin-1 byte string"))
            return
        _walk_bytes(report, label, raw, 0, len(raw), depth, rewalk)
    else:
        report.unchecked.append((offset, func.qualname, "loads bytes computed at load time (or too large to "
                                                        "check)"))


def _walk_bytes(report: Report, label: str, data: bytes | mmap.mmap, start: int, end: int, depth: int,
                rewalk: Rewalk) -> None:
    if data[start:start + 4] == b"PK\x03\x04":
        chunk = bytes(data[start:end])
        try:
            with zipfile.ZipFile(io.BytesIO(chunk)) as archive:
                for info in archive.infolist():
                    if info.filename.endswith(".pkl") and info.file_size <= _MAX_ZIP_MEMBER:
                        member = archive.read(info)
                        report.nested.append((f"{label}!{info.filename}", rewalk(member, 0, len(member), depth + 1)))
            return
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError):
            pass  # not a readable zip: walk the bytes as a pickle
    report.nested.append((label, rewalk(data, start, end, depth + 1)))
