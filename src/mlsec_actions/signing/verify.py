"""Verify bundles and gate attestations against an expected key or identity and the files on disk.

Files are always re-hashed here (never taken from the digest cache: an mtime can be forged), and
every failure names what changed: a file's digest, a file added to or removed from a model folder,
an edited verdict, a different signer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlsec_actions.digests import DigestCache, sha256_file, walk_files
from mlsec_actions.errors import UsageError
from mlsec_actions.signing import attest, model_folder
from mlsec_actions.signing import bundle as bl
from mlsec_actions.signing.interface import BUNDLE_SUFFIX, INTOTO_PAYLOAD_TYPE, Bundle, VerificationError, Verifier


@dataclass(frozen=True)
class Check:
    """The outcome for one artifact or attestation."""

    target: str
    """The artifact, folder or attestation checked."""
    ok: bool
    """True when its signature, signer and digests all check out."""
    message: str
    """Who signed it, or everything that failed (one item per `; `)."""


def bundle_path(artifact: Path) -> Path:
    """`ARTIFACT.sigstore.json` beside the artifact (beside, not inside, a folder)."""
    return artifact.parent / (artifact.resolve().name + BUNDLE_SUFFIX)


def _pick(verifiers: Sequence[Verifier], bundle: Bundle) -> Verifier:
    for v in verifiers:
        if v.accepts(bundle):
            return v
    material = bundle.get("verificationMaterial") or {}
    hint = bl.hint_of(bundle) or ""
    kind = ("keyless Sigstore (needs --identity and --issuer)" if not hint and isinstance(material, dict)
            else "OpenPubkey (needs --identity and --issuer)" if hint.startswith("openpubkey:")
            else "key (needs --public-key)")
    raise VerificationError(f"bundle is {kind}; no matching verifier was configured")


def _verify_file(path: Path, verifiers: Sequence[Verifier]) -> str:
    bundle = bl.read_bundle(bundle_path(path))
    verifier = _pick(verifiers, bundle)
    digest = bytes.fromhex(sha256_file(path))
    bl.message_parts(bundle, digest)  # the same named digest-mismatch message for every backend
    return verifier.verify_digest(bundle, digest)


def _verify_folder(path: Path, verifiers: Sequence[Verifier]) -> str:
    bundle = bl.read_bundle(bundle_path(path))
    signed = _pick(verifiers, bundle).verify_dsse(bundle)
    if signed.payload_type != INTOTO_PAYLOAD_TYPE:
        raise VerificationError(f"unexpected payload type {signed.payload_type}")
    actual = model_folder.without(DigestCache().tree(path, model_folder.IGNORED),
                                  model_folder.ignored_paths(signed.payload))
    changes = model_folder.diff(model_folder.signed_resources(signed.payload), actual)
    if changes:
        raise VerificationError("; ".join(changes))
    return signed.signer


def verify_artifact(path: Path, verifiers: Sequence[Verifier]) -> Check:
    """One file (its bundle) or one model folder (its model_signing manifest bundle)."""
    try:
        if path.is_dir():
            who = _verify_folder(path, verifiers)
        elif path.is_file():
            who = _verify_file(path, verifiers)
        else:
            raise VerificationError("no such file or folder")
    except VerificationError as e:
        return Check(str(path), False, e.diagnostics())
    return Check(str(path), True, f"signed by {who}")


def _subject_problems(doc: dict[str, object], base: Path) -> list[str]:
    subjects: dict[str, str] = {}
    for s in doc.get("subject") or []:  # type: ignore[attr-defined]  # checked to be a list by parse_statement
        if isinstance(s, dict) and isinstance(s.get("name"), str) and isinstance(s.get("digest"), dict):
            subjects[s["name"]] = str(s["digest"].get("sha256", ""))
    escaping = sorted(n for n in subjects if Path(n).is_absolute() or ".." in Path(n).parts)
    for n in escaping:  # names are relative to --base; never hash what a statement points at elsewhere
        del subjects[n]
    present = {n: base / n for n in subjects if (base / n).is_file()}
    hashed = DigestCache().digests(present.values())
    actual = {n: hashed[p] for n, p in present.items()}
    problems = [f"subject {n} is outside the base folder" for n in escaping]
    problems += [f"file {n} was removed after signing" for n in sorted(subjects.keys() - present.keys())]
    problems += [f"file {n} digest mismatch (signed sha256:{subjects[n][:16]}..., now sha256:{actual[n][:16]}...)"
                 for n in sorted(present) if actual[n] != subjects[n]]
    predicate = doc.get("predicate")
    models = predicate.get("models", []) if isinstance(predicate, dict) else []
    for model in models:
        folder = base / str(model.get("name", ""))
        if not folder.is_dir():
            continue  # its files were reported as removed above
        signed = set(model.get("files") or [])
        on_disk = {p.relative_to(base).as_posix() for p in walk_files(folder, model_folder.IGNORED)}
        problems += [f"file {n} was added to model folder {model.get('name')} after signing"
                     for n in sorted(on_disk - signed)]
    return problems


def verify_attestation(path: Path, verifiers: Sequence[Verifier], base: Path) -> Check:
    """The attestation's signature and signer, its verdict, and every subject against the disk."""
    try:
        bundle = bl.read_bundle(path)
        signed = _pick(verifiers, bundle).verify_dsse(bundle)
        doc = attest.parse_statement(signed.payload)
        problems = _subject_problems(doc, base)
        predicate = doc.get("predicate")
        verdict = predicate.get("verdict") if isinstance(predicate, dict) else None
        if verdict != "pass":
            problems.insert(0, f"the attested gate verdict is {verdict!r}, not 'pass'")
        if problems:
            raise VerificationError("; ".join(problems))
    except VerificationError as e:
        return Check(str(path), False, e.diagnostics())
    n = len(doc["subject"])
    return Check(str(path), True, f"gate verdict 'pass', {n} subjects match, signed by {signed.signer}")


def verify_all(artifacts: Sequence[Path], attestations: Sequence[Path], verifiers: Sequence[Verifier],
               base: Path) -> list[Check]:
    if not artifacts and not attestations:
        raise UsageError("name at least one ARTIFACT or --attestation FILE")
    return ([verify_artifact(a, verifiers) for a in artifacts]
            + [verify_attestation(a, verifiers, base) for a in attestations])
