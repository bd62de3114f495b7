"""Format -> analyzer registry, and the recursion through archives and compressed wrappers.

Every blob is detected by content; containers are opened with limits and their members dispatched the
same way (`outer.zip!inner/x.pkl`). The registry is an explicit tuple so the set is visible.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from mlsec_actions.analyzers import (
    archive,
    compression,
    gguf,
    keras,
    numpy_file,
    onnx_model,
    pickle_scan,
    prompts,
    safetensors,
    saved_model,
    sevenzip,
)
from mlsec_actions.analyzers import archive_rules as rules
from mlsec_actions.analyzers.base import Analyzer, Blob
from mlsec_actions.analyzers.formats import HEAD_BYTES, Format, classify_zip, could_be_pickle, detect, detect_head
from mlsec_actions.findings import CoverageGap, Finding, GapKind, Severity


@dataclass(frozen=True)
class Entry:
    """One registry line."""

    format: Format
    """What it handles."""
    tool: str
    """The analyzer's name in the SARIF run (a ToolRun)."""
    analyze: Analyzer
    """The analyzer."""


REGISTRY: tuple[Entry, ...] = (
    Entry(Format.PICKLE, "mlsec-pickle", pickle_scan.analyze),
    Entry(Format.JOBLIB, "mlsec-pickle", pickle_scan.analyze),
    Entry(Format.NUMPY, "mlsec-numpy", numpy_file.analyze),
    Entry(Format.SAVED_MODEL, "mlsec-saved-model", saved_model.analyze),
    Entry(Format.HDF5, "mlsec-keras", keras.analyze_h5),
    Entry(Format.ONNX, "mlsec-onnx", onnx_model.analyze),
    Entry(Format.SAFETENSORS, "mlsec-safetensors", safetensors.analyze),
    Entry(Format.GGUF, "mlsec-gguf", gguf.analyze),
)
KERAS_CONFIG = Entry(Format.KERAS_ZIP, "mlsec-keras", keras.analyze_keras_config)
"""Keras v3 archives: their `config.json` member goes to the Keras config check."""
SAVED_MODEL_TEXT = Entry(Format.SAVED_MODEL, "mlsec-saved-model", saved_model.analyze_text)
"""SavedModel and GraphDef text format (`.pbtxt`)."""


def prompt_entry(canaries: tuple[str, ...] = ()) -> Entry:
    """Text files outside archives that look like prompt templates or system prompts."""
    def analyze(blob: Blob) -> list[Finding]:
        with blob.open() as stream:
            head = stream.read(8192)
        if not prompts.looks_like_prompt(blob.path, head):
            return []
        return prompts.analyze_with_canaries(blob, canaries)
    return Entry(Format.TEXT, "mlsec-prompts", analyze)

# Archive members that need no analysis (prompts are checked in the repository, not inside model archives).
_SKIP_IN_ARCHIVE = frozenset({Format.UNKNOWN, Format.EMPTY, Format.TEXT})
# Formats recognised but with no analyzer: reported so a gap is visible, never silent.
_UNANALYZED_OK = frozenset({Format.TEXT, Format.UNKNOWN, Format.EMPTY})


@dataclass
class Dispatcher:
    """Scans blobs; collects findings, per-analyzer errors, coverage gaps and format counts."""

    limits: archive.Limits = field(default_factory=archive.Limits)
    """Archive limits."""
    formats: Counter[str] = field(default_factory=Counter)
    """How many blobs of each format were seen."""
    ran: set[str] = field(default_factory=set)
    """Analyzers that ran at least once."""
    errors: dict[str, list[str]] = field(default_factory=dict)
    """Analyzer name -> crashes (a crash is a tool failure, not a finding)."""
    gaps: list[CoverageGap] = field(default_factory=list)
    """What could not be checked (nesting limit, missing codec library), for the in-house tool's ToolRun."""
    text: Entry | None = field(default_factory=prompt_entry)
    """What top-level text files go to (prompt checks); None skips them."""

    def scan_file(self, blob: Blob) -> list[Finding]:
        """A top-level file: its own byte budget for everything nested in it."""
        budget = archive.Budget(self.limits.max_total_bytes)
        with blob.open() as stream:
            found = self._scan(blob, stream, 0, budget, top=True)
        # Content a limit kept from being read is a coverage gap as well as a finding.
        for f in found:
            if f.rule in (rules.LIMIT, rules.BOMB):
                where = f"{blob.path}!{f.location.logical}" if f.location.logical else blob.path
                self.gaps.append(CoverageGap(GapKind.LIMIT_REACHED, f"{where}: {f.message}", blob.path))
        return found

    def _scan(self, blob: Blob, stream: BinaryIO, depth: int, budget: archive.Budget, top: bool,
              known: Format | None = None) -> list[Finding]:
        fmt = known or detect(stream, blob.size)
        stream.seek(0)
        if fmt in (Format.UNKNOWN, Format.TEXT):
            codec = _suffix_codec(blob)
            if codec is not None:
                fmt = Format(codec)  # pandas and joblib pick the codec by name: so do we, when content says nothing
        if fmt is Format.ZIP:
            return self._container(blob, depth, lambda: self._zip(blob, stream, depth, budget))
        self.formats[fmt.value] += 1
        if fmt is Format.TAR:
            return self._container(blob, depth, lambda: self._members(
                blob, archive.list_tar(stream, blob, self.limits, budget), depth, budget, None))
        if fmt is Format.SEVEN_ZIP:
            return self._container(blob, depth, lambda: self._seven_zip(blob, stream, depth, budget))
        if fmt.is_compressed:
            return self._container(blob, depth, lambda: self._decompress(blob, stream, fmt, depth, budget))
        out = self._leaf(blob, stream, fmt, top)
        if fmt not in (Format.EMPTY, Format.NUMPY) and _zip_in_tail(stream):
            out += self._container(blob, depth, lambda: self._appended_zip(blob, stream, fmt, depth, budget))
        return out

    def _appended_zip(self, blob: Blob, stream: BinaryIO, fmt: Format, depth: int,
                      budget: archive.Budget) -> list[Finding]:
        """A zip after other data: `zipfile` (Keras, `zipfile.is_zipfile` users) reads it, magic-byte readers do not."""
        stream.seek(0)
        listing = archive.list_zip(stream, blob, self.limits, budget)
        if not listing.members:
            return []
        notice = Finding(rule=rules.DIFFERENTIAL, severity=Severity.HIGH, location=blob.location(),
                         message=f"A zip archive is appended to {fmt.value} data: loaders built on zipfile read "
                                 "the zip, others the data in front; both were scanned.")
        listing.findings = [f for f in listing.findings if f.rule is not rules.DIFFERENTIAL]
        return [notice, *self._members(blob, listing, depth, budget, None)]

    def _leaf(self, blob: Blob, stream: BinaryIO, fmt: Format, top: bool) -> list[Finding]:
        if fmt is Format.TEXT:
            out = self._run(self.text, blob) if top else []
            if _looks_like_keras_json(stream):
                out += self._run(KERAS_CONFIG, blob)  # model.to_json() architecture files (Lambda layers)
            stream.seek(0)
            if saved_model.looks_like_text_graph(stream.read(HEAD_BYTES)):
                out += self._run(SAVED_MODEL_TEXT, blob)  # saved_model.pbtxt: the text format TF also loads
            return out
        entry = next((e for e in REGISTRY if e.format is fmt), None)
        if entry is not None:
            return self._run(entry, blob)
        if fmt is Format.UNKNOWN and top and _starts_like_zip(stream):
            # Only at top level: inside an archive such bytes are raw tensor data far more often than a zip.
            return [Finding(rule=rules.MALFORMED, severity=Severity.MEDIUM, location=blob.location(),
                            message="Data starts like a zip archive but has no readable zip structure.")]
        if fmt in _UNANALYZED_OK:
            return []  # an empty file holds nothing a loader could run (56 empty `__init__.py` are normal)
        return [Finding(rule=rules.UNSCANNED, severity=Severity.INFO, location=blob.location(),
                        message=f"{fmt.value} content was recognised but not analysed.")]

    def _container(self, blob: Blob, depth: int, open_it: Callable[[], list[Finding]]) -> list[Finding]:
        """Open a container one level deeper, unless that is past the nesting limit (a gap and a finding)."""
        if depth + 1 > self.limits.max_depth:  # the gap is recorded by scan_file, as for every limit
            # HIGH: no model nests containers this deep, and what is inside was not checked.
            return [Finding(rule=rules.LIMIT, severity=Severity.HIGH, location=blob.location(),
                            message=f"Containers nested deeper than {self.limits.max_depth}; inner ones not "
                                    "scanned.")]
        try:
            return open_it()
        except (compression.MissingCodecError, sevenzip.MissingLibraryError) as e:
            self.gaps.append(CoverageGap(GapKind.FORMAT_UNKNOWN, f"{blob.path}: {e}; not scanned.", blob.path))
            return [Finding(rule=rules.UNSCANNED, severity=Severity.MEDIUM, location=blob.location(),
                            message=f"Compressed content not scanned: {e}.")]

    def _run(self, entry: Entry | None, blob: Blob) -> list[Finding]:
        if entry is None:
            return []
        self.ran.add(entry.tool)
        try:
            return entry.analyze(blob)
        except Exception as e:  # an analyzer crash is recorded as that tool's failure (fail closed)
            where = f"{blob.path}{'!' + blob.member if blob.member else ''}"
            self.errors.setdefault(entry.tool, []).append(f"{where}: {type(e).__name__}: {e}")
            return []

    def _zip(self, blob: Blob, stream: BinaryIO, depth: int, budget: archive.Budget) -> list[Finding]:
        listing = archive.list_zip(stream, blob, self.limits, budget)
        kind = classify_zip(m.name for m in listing.members)
        self.formats[kind.value] += 1
        config = KERAS_CONFIG if kind is Format.KERAS_ZIP else None
        return self._members(blob, listing, depth, budget, config)

    def _seven_zip(self, blob: Blob, stream: BinaryIO, depth: int, budget: archive.Budget) -> list[Finding]:
        listing = sevenzip.list_7z(stream, blob, self.limits, budget)
        try:
            return self._members(blob, listing, depth, budget, None)
        finally:
            for close in listing.closers:
                close()

    def _members(self, blob: Blob, listing: archive.Listing, depth: int, budget: archive.Budget,
                 config: Entry | None) -> list[Finding]:
        out = list(listing.findings)
        self.gaps.extend(listing.gaps)
        for member in listing.members:
            child = Blob(blob.path, _join(blob.member, member.name), member.size, member.open)
            try:
                if config is not None and member.name == "config.json":
                    out.extend(self._run(config, child))
                    continue
                # Detect from the head first: raw tensor data (most bytes of a model zip) is never copied. A
                # head that could start a pickle whose first argument outruns the head is judged on the whole.
                head = member.head(HEAD_BYTES)
                fmt = detect(io.BytesIO(head), member.size)
                whole = len(head) < HEAD_BYTES  # the head is the whole member: its format is final
                if fmt in _SKIP_IN_ARCHIVE and _suffix_codec(child) is None and (whole or not could_be_pickle(head)):
                    continue
                with member.open() as inner:
                    out.extend(self._scan(child, inner, depth + 1, budget, top=False,
                                          known=fmt if whole and fmt is not Format.UNKNOWN else None))
            except archive.LimitExceededError as e:
                rule, severity = (rules.LIMIT, Severity.MEDIUM) if member.stored else (rules.BOMB, Severity.HIGH)
                out.append(Finding(rule=rule, severity=severity, location=child.location(),
                                   message=f"Entry {member.name!r} {e}; not scanned."))
            except archive.READ_ERRORS as e:
                out.append(Finding(rule=rules.MALFORMED, severity=Severity.MEDIUM, location=child.location(),
                                   message=f"Entry {member.name!r} cannot be read: {e}."))
        return out

    def _decompress(self, blob: Blob, stream: BinaryIO, fmt: Format, depth: int,
                    budget: archive.Budget) -> list[Finding]:
        decoded = compression.decode(stream, fmt.value, self.limits, budget)
        out: list[Finding] = []
        if decoded.limit is not None:
            out.append(Finding(rule=rules.BOMB, severity=Severity.HIGH, location=blob.location(),
                               message=f"{fmt.value} data {decoded.limit}; only the first {decoded.size} bytes "
                                       "were scanned."))
        elif decoded.error is not None:
            out.append(Finding(rule=rules.MALFORMED, severity=Severity.MEDIUM, location=blob.location(),
                               message=f"{fmt.value} data is damaged after {decoded.size} bytes ({decoded.error}); "
                                       "what decoded before it was scanned (a loader runs that part too)."))
        with decoded.data:
            if decoded.size:
                child = Blob(blob.path, _join(blob.member, f"<{fmt.value}>"), decoded.size,
                             compression.opener(decoded))
                with child.open() as inner:
                    out.extend(self._scan(child, inner, depth + 1, budget, top=False))
        return out


def _looks_like_keras_json(stream: BinaryIO) -> bool:
    stream.seek(0)
    head = stream.read(4096).lstrip()
    return head.startswith(b"{") and (b'"class_name"' in head or b"\\u0063" in head.lower())


def _zip_in_tail(stream: BinaryIO) -> bool:
    """An end-of-central-directory record where zipfile looks for one (the last 64 KiB)."""
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(max(0, size - 65557))
    found = b"PK\x05\x06" in stream.read()
    stream.seek(0)
    return found


def _starts_like_zip(stream: BinaryIO) -> bool:
    stream.seek(0)
    return detect_head(stream.read(4)) is Format.ZIP


def _suffix_codec(blob: Blob) -> str | None:
    """The codec a loader picks from the name (`x.pkl.zst` for pandas), when its content is not recognised."""
    name = (blob.member or blob.path).rsplit("!", 1)[-1].lower()
    for suffix, codec in compression.SUFFIXES.items():
        if name.endswith(suffix):
            return codec
    return None


def _join(parent: str | None, name: str) -> str:
    return f"{parent}!{name}" if parent else name
