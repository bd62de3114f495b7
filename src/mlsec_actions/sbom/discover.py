"""Models and datasets found in a project by their bytes, with model-scan's format detection.

A file is a model when `analyzers.formats` names it a model format (pickle, joblib, PyTorch zip,
Keras, HDF5, ONNX, safetensors, GGUF, a TensorFlow SavedModel's `saved_model.pb`, which makes its
folder the model), a dataset when it is a NumPy array (`.npy`/`.npz` bytes), Parquet or Arrow IPC.
Names and extensions are never trusted (a `weights.txt` pickle is a model). The walk is iterative,
follows no link, skips tool and cache folders, and stops at a depth and a file count it reports.
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlsec_actions.analyzers.formats import HEAD_BYTES, Format, classify_zip, detect

SKIP_DIRS = frozenset({".git", ".hg", ".svn", ".venv", "venv", "node_modules", "mlsec-results", "__pycache__",
                       ".mypy_cache", ".ruff_cache", ".pytest_cache", ".tox"})
"""Folders that hold tools, caches and our own output, not the project's models (as model-scan skips them)."""
MODEL_FORMATS = frozenset({Format.PICKLE, Format.JOBLIB, Format.TORCH_ZIP, Format.KERAS_ZIP, Format.HDF5,
                           Format.ONNX, Format.SAFETENSORS, Format.GGUF, Format.SAVED_MODEL})
DATA_FORMATS = frozenset({Format.NUMPY, Format.NPZ})
_DATA_MAGIC = (b"PAR1", b"ARROW1\x00\x00", b"FEA1")  # Parquet, Arrow IPC file, Feather v1
MAX_DEPTH = 64
MAX_FILES = 100_000


@dataclass(frozen=True)
class Found:
    """What the walk found: paths under the root, as the root was given."""

    models: tuple[Path, ...]
    """Model files, and SavedModel folders."""
    datasets: tuple[Path, ...]
    """Dataset files."""
    skipped: tuple[str, ...]
    """Why parts of the tree were not looked at (depth or file-count limit, unreadable folders)."""


def _head(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, HEAD_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)


def classify(path: Path) -> Format | None:
    """The format of one regular file by content; `None` when it cannot be read."""
    head = _head(path)
    if head is None:
        return None
    if head.startswith(_DATA_MAGIC):
        return Format.NPZ  # any columnar data file: a dataset
    fmt = detect(io.BytesIO(head))
    if fmt is Format.ZIP:
        if not _few_members(path):
            return Format.ZIP  # not listed: reading a huge central directory is what a zip bomb wants
        try:
            with zipfile.ZipFile(path) as zf:
                return classify_zip(zf.namelist())
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            return Format.ZIP
    return fmt


MAX_ZIP_MEMBERS = 10_000


def _few_members(path: Path) -> bool:
    """True when the zip's end record names at most `MAX_ZIP_MEMBERS` entries (zip64 counts as many)."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - 65_557))
            tail = fh.read()
    except OSError:
        return False
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 12:
        return False
    total = int.from_bytes(tail[at + 10:at + 12], "little")
    return total <= MAX_ZIP_MEMBERS


def find(root: Path, exclude: Sequence[Path] = ()) -> Found:
    """Every model and dataset under `root`, minus anything at or under `exclude` (explicit paths)."""
    excluded = {p.resolve() for p in exclude}
    models: list[Path] = []
    datasets: list[Path] = []
    skipped: list[str] = []
    seen = 0
    stack: list[tuple[Path, int]] = [(root, 0)]
    while stack:
        here, depth = stack.pop()
        try:
            entries = sorted(os.scandir(here), key=lambda e: e.name)
        except OSError as e:
            skipped.append(f"{here}: cannot list ({e.strerror or e})")
            continue
        for entry in entries:
            path = Path(entry.path)
            if entry.is_symlink():  # never resolved: a link loop or a link out of the tree is not ours
                skipped.append(f"{path}: a symbolic link, not followed")
                continue
            if path.resolve() in excluded:
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name in SKIP_DIRS:
                    continue
                if depth + 1 > MAX_DEPTH:
                    skipped.append(f"{path}: deeper than {MAX_DEPTH} folders, not searched for models")
                    continue
                stack.append((path, depth + 1))
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            seen += 1
            if seen > MAX_FILES:
                skipped.append(f"{root}: over {MAX_FILES} files; the rest was not searched for models")
                return _found(models, datasets, skipped)
            fmt = classify(path)
            if fmt is None:
                skipped.append(f"{path}: unreadable, not classified")
            elif fmt is Format.SAVED_MODEL:
                models.append(path.parent)
            elif fmt in MODEL_FORMATS:
                models.append(path)
            elif fmt in DATA_FORMATS:
                datasets.append(path)
    return _found(models, datasets, skipped)


def _found(models: list[Path], datasets: list[Path], skipped: list[str]) -> Found:
    # A SavedModel folder holds its variables: files inside a found folder are not listed twice.
    folders = {m for m in models if m.is_dir()}
    models = [m for m in models if m in folders or not any(m.is_relative_to(f) for f in folders)]
    datasets = [d for d in datasets if not any(d.is_relative_to(f) for f in folders)]
    return Found(tuple(sorted(set(models))), tuple(sorted(set(datasets))), tuple(skipped))
