"""Signing and verifying a training run's provenance statement (`mlsec sign --provenance`, `mlsec verify
--provenance`).

The statement train wrote is signed as it is (a DSSE envelope over its exact bytes, payload type in-toto), never
rebuilt, after checking it is ours (`provenance.check`, the `train/v1` build type) and that every subject on disk
under `--base` still has the digest it records: a model swapped between the train job and the sign job is
refused. Verification opens the envelope as `Kind.TRAIN_PROVENANCE` only and re-checks the subjects.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mlsec_actions.errors import InputError
from mlsec_actions.inputs import load_json, read_regular
from mlsec_actions.signing.interface import SigningError, VerificationError, Verifier
from mlsec_actions.training import provenance

MAX_STATEMENT_BYTES = 16 * 1024 * 1024


def checked_statement(path: Path, base: Path) -> bytes:
    """The statement's bytes, once it is a train/v1 provenance whose subjects match the files under `base`."""
    from mlsec_actions.digests import hash_files
    from mlsec_actions.signing.verify import _inside

    raw = read_regular(path, "provenance", MAX_STATEMENT_BYTES)
    doc = load_json(path, "provenance", MAX_STATEMENT_BYTES, max_depth=16)
    problems = provenance.check(doc)
    if problems:
        raise InputError(path, f"not a training provenance statement: {problems[0]}")
    subjects = provenance.subjects(doc)
    located = {n: _inside(base, n) for n in subjects}
    outside = sorted(n for n, p in located.items() if p is None)
    if outside:
        raise SigningError(f"{path}: subject {outside[0]} is outside the base folder {base}; refusing to sign")
    missing = sorted(n for n, p in located.items() if p is None or not p.is_file() or p.is_symlink())
    if missing:
        raise SigningError(f"{path}: subject {missing[0]} is not a regular file under {base}; refusing to sign")
    actual = hash_files(p for p in located.values() if p is not None)
    for name, p in located.items():
        if p is not None and actual[p] != subjects[name]:
            raise SigningError(f"{path}: {name} changed since training (recorded sha256:{subjects[name][:16]}..., "
                               f"now sha256:{actual[p][:16]}...); refusing to sign")
    return raw


def verify(bundle_file: Path, verifiers: Sequence[Verifier], base: Path) -> tuple[bool, str]:
    """(ok, message) for a provenance bundle: signature, signer, statement kind and every subject on disk."""
    from mlsec_actions.signing import bundle as bl
    from mlsec_actions.signing.statements import Kind, open_statement
    from mlsec_actions.signing.verify import _pick, _subject_problems

    try:
        bundle = bl.read_bundle(bundle_file)
        if "dsseEnvelope" not in bundle:
            raise VerificationError("a provenance bundle must be a DSSE envelope")
        signed = _pick(verifiers, bundle).verify_dsse_trusted(bundle)
        doc = open_statement(signed, Kind.TRAIN_PROVENANCE)
        problems = provenance.check(doc) + _subject_problems(doc, base)
        if problems:
            raise VerificationError("; ".join(problems))
    except VerificationError as e:
        return False, e.diagnostics()
    trusted = f" (trusted as {signed.trusted})" if signed.trusted else ""
    return True, f"training provenance, {len(doc['subject'])} outputs match, signed by {signed.signer}{trusted}"
