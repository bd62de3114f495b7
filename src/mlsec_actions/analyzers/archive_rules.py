"""Rules for archive structure (zip, tar, compressed wrappers) found while opening model files."""

from __future__ import annotations

import functools

from mlsec_actions.analyzers.base import FORMATS_DOCS, MODEL_SCAN_DOCS, model_rule

_rule = functools.partial(model_rule, ("model", "archive", "supply-chain"), MODEL_SCAN_DOCS)


TRAVERSAL = _rule("archive/path-traversal", "ArchivePathTraversal", "Archive entry escapes the extraction folder",
                  "An entry name is absolute or contains `..`, so extracting the archive writes outside the "
                  "target folder (zip-slip): it can overwrite code or configuration.",
                  "Rebuild the archive with relative names only; extract untrusted archives with a library that "
                  "rejects such names.")
SYMLINK = _rule("archive/symlink-escape", "ArchiveSymlinkEscape", "Link points outside the scanned root",
                "A symbolic or hard link (in an archive, or in the scanned folder) points to an absolute path or "
                "out of its root. Extracting or loading through it reads or overwrites files elsewhere.",
                "Replace the link with the file it should contain; never ship links in model artifacts.")
BOMB = _rule("archive/bomb", "ArchiveBomb", "Compressed data expands beyond the limits",
             "An entry's compression ratio or decompressed size is beyond what a model needs (a zip or "
             "gzip bomb): extracting it exhausts memory or disk. It was not decompressed.",
             "Remove the entry; if it is real data, store it uncompressed or raise the scan limits.")
LIMIT = _rule("archive/limit", "ArchiveLimit", "Archive exceeds the scan limits",
              "The archive has more entries, nesting or total data than the scanner reads, so part of it was "
              "not scanned.",
              "Split the archive, or scan its contents unpacked.", precision="medium")
MALFORMED = _rule("archive/malformed", "ArchiveMalformed", "Archive structure is malformed",
                  "The archive's directory or an entry cannot be read; loaders that are more lenient may still "
                  "load what the scanner could not check.",
                  "Re-create the archive from its source; treat a file that was not corrupted in transit as "
                  "crafted.", precision="medium")
ENCRYPTED = _rule("archive/encrypted-flag", "ArchiveEncryptedFlag", "Zip entry carries the encryption flag",
                  "The entry's general-purpose flag says it is encrypted. Model loaders ignore the flag, while "
                  "many scanners skip or fail on it: a known way to slip a payload past them.",
                  "Re-save the model with its normal tooling (torch.save, keras save); it never sets the flag.")
UNSCANNED = _rule("model/unscanned-format", "ModelUnscannedFormat", "Model format recognised but not analysed",
                  "The file's format was recognised by content, but no analyzer for it ran, so its contents "
                  "were not checked.",
                  "Convert the model to a format the scanner analyses, or review it by hand.", precision="medium")
UNREADABLE = _rule("model/unreadable", "ModelUnreadable", "File could not be read",
                   "The file could not be opened or read (permissions, I/O error, or it vanished), so it was not "
                   "scanned.",
                   "Make the file readable by the scanner, or remove it from the scanned paths.", precision="medium")
# Documented with the containers, on the formats page.
DIFFERENTIAL = model_rule(("model", "archive", "supply-chain"), FORMATS_DOCS,
                          "archive/reader-differential", "ArchiveReaderDifferential",
                          "Zip reads differently in different loaders",
                          "The archive's central directories and local headers disagree (two directories, entries only "
                          "in local headers, names or sizes that differ, values that make Python's zipfile refuse what "
                          "PyTorch's miniz reads). Scanners that use one reader miss what a loader using the other "
                          "runs. Every entry any reader sees was scanned.",
                          "Re-create the archive with standard tooling (torch.save, zipfile); no tool writes such "
                          "archives by accident.")
RULES = (TRAVERSAL, SYMLINK, BOMB, LIMIT, MALFORMED, ENCRYPTED, UNSCANNED, UNREADABLE, DIFFERENTIAL)
