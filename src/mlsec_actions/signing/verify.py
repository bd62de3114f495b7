"""Verify bundles and gate attestations against an expected key or identity and the files on disk.

Every bundle is opened as the kind of statement the artifact calls for (`statements.Kind`): a file's
bundle must be a `signed-file/v1` statement (or a keyless Rekor v1 hashedrekord signature), a folder's
model_signing's manifest, an attestation a `gate-verdict/v1` statement; a bundle made for one kind
never verifies as another. Files are always re-hashed here (`hash_files`, never the digest cache: an
mtime can be forged), folders are walked with `scan_tree`, which sees every symlink, FIFO and device,
and every failure names what changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlsec_actions.digests import hash_files, scan_tree
from mlsec_actions.errors import InputError, UsageError
from mlsec_actions.signing import attest, model_folder
from mlsec_actions.signing import bundle as bl
from mlsec_actions.signing.interface import BUNDLE_SUFFIX, Bundle, VerificationError, Verifier
from mlsec_actions.signing.statements import Kind, file_digest, open_statement


@dataclass(frozen=True)
class Check:
    """The outcome for one artifact or attestation."""

    target: str
    """The artifact, folder or attestation checked."""
    ok: bool
    """True when its signature, signer and digests all check out."""
    message: str
    """Who signed it, or everything that failed (one item per `; `)."""
    kind: str = "file"
    """file, folder or attestation."""
    signer: str = ""
    """Who signed it (empty when the check failed)."""
    verdict: str = ""
    """An attestation's gate verdict (empty for artifacts)."""
    trusted: str = ""
    """The trust entry that verified it (`trust.yml signers[1] (name)`, `--public-key k.pub`); empty on failure."""

    def as_json(self) -> dict[str, object]:
        """One entry of `mlsec verify --json`."""
        out: dict[str, object] = {"target": self.target, "kind": self.kind, "ok": self.ok, "signer": self.signer,
                                  "trusted": self.trusted, "message": self.message}
        if self.kind == "attestation":
            out["verdict"] = self.verdict
        return out


def bundle_path(artifact: Path) -> Path:
    """`ARTIFACT.sigstore.json` beside the artifact (beside, not inside, a folder)."""
    return artifact.parent / (artifact.resolve().name + BUNDLE_SUFFIX)


def _pick(verifiers: Sequence[Verifier], bundle: Bundle) -> Verifier:
    for v in verifiers:
        if v.accepts(bundle):
            return v
    hint = bl.hint_of(bundle) or ""
    kind = ("keyless Sigstore (needs --identity and --issuer)" if not hint
            else "OpenPubkey (needs --identity and --issuer)" if hint.startswith("openpubkey")
            else "key (needs --public-key)")
    raise VerificationError(f"bundle is {kind}; no matching verifier was configured")


def _by(who: str, trusted: str) -> str:
    return f"signed by {who}" + (f" (trusted as {trusted})" if trusted else "")


def _verify_file(path: Path, verifiers: Sequence[Verifier]) -> tuple[str, str]:
    bundle = bl.read_bundle(bundle_path(path))
    verifier = _pick(verifiers, bundle)
    digest = hash_files([path])[path]
    if "messageSignature" in bundle:
        return verifier.verify_message_trusted(bundle, bytes.fromhex(digest))
    signed = verifier.verify_dsse_trusted(bundle)
    signed_digest = file_digest(open_statement(signed, Kind.FILE))
    if signed_digest != digest:
        raise VerificationError(f"digest mismatch: signed sha256:{signed_digest}, file is now sha256:{digest}")
    return signed.signer, signed.trusted


def _verify_folder(path: Path, verifiers: Sequence[Verifier]) -> tuple[str, str]:
    bundle = bl.read_bundle(bundle_path(path))
    if "dsseEnvelope" not in bundle:
        raise VerificationError("a model folder's bundle must be a DSSE model_signing manifest")
    signed = _pick(verifiers, bundle).verify_dsse_trusted(bundle)
    open_statement(signed, Kind.MODEL_FOLDER)  # payload type, statement type and predicate before any field
    tree = scan_tree(path, model_folder.IGNORED)
    ignore = model_folder.ignored_paths(signed.payload)
    hashed = hash_files(tree.files)
    actual = model_folder.without({p.relative_to(path).as_posix(): d for p, d in hashed.items()}, ignore)
    others = model_folder.without(dict(tree.others), ignore)
    changes = model_folder.diff(model_folder.signed_resources(signed.payload), actual, others)
    if changes:
        raise VerificationError("; ".join(changes))
    return signed.signer, signed.trusted


def verify_artifact(path: Path, verifiers: Sequence[Verifier]) -> Check:
    """One file (its bundle) or one model folder (its model_signing manifest bundle)."""
    kind = "folder" if path.is_dir() and not path.is_symlink() else "file"
    try:
        if path.is_symlink():
            raise VerificationError("is a symlink; verify the file or folder it points to")
        if path.is_dir():
            who = _verify_folder(path, verifiers)
        elif path.is_file():
            who = _verify_file(path, verifiers)
        elif path.exists():
            raise InputError(path, "not a regular file or folder (FIFO, socket or device)")
        else:
            raise VerificationError("no such file or folder")
    except VerificationError as e:
        return Check(str(path), False, e.diagnostics(), kind)
    return Check(str(path), True, _by(*who), kind, who[0], trusted=who[1])


def _inside(base: Path, name: str) -> Path | None:
    """`base/name` when it stays inside `base` once resolved (no `..`, absolute name or symlink out)."""
    if Path(name).is_absolute() or ".." in Path(name).parts:
        return None
    candidate = (base / name).resolve()
    return candidate if candidate.is_relative_to(base.resolve()) else None


def _subject_problems(doc: dict[str, Any], base: Path) -> list[str]:
    subjects: dict[str, str] = {}
    for s in doc["subject"]:
        digest = s.get("digest") if isinstance(s, dict) else None
        if not isinstance(s, dict) or not isinstance(s.get("name"), str) or not isinstance(digest, dict) \
                or not isinstance(digest.get("sha256"), str):
            raise VerificationError("attestation subject without a name and a sha256 digest")
        subjects[s["name"]] = digest["sha256"]
    located = {n: _inside(base, n) for n in subjects}
    escaping = sorted(n for n, p in located.items() if p is None)  # never hash what points elsewhere
    present = {n: p for n, p in located.items() if p is not None and p.is_file()}
    hashed = hash_files(present.values())
    actual = {n: hashed[p] for n, p in present.items()}
    problems = [f"subject {n} is outside the base folder" for n in escaping]
    problems += [f"file {n} was removed after signing" for n in sorted(subjects.keys() - present.keys())
                 if n not in escaping]
    problems += [f"file {n} digest mismatch (signed sha256:{subjects[n][:16]}..., now sha256:{actual[n][:16]}...)"
                 for n in sorted(present) if actual[n] != subjects[n]]
    predicate = doc.get("predicate")
    models = predicate.get("models", []) if isinstance(predicate, dict) else []
    for model in models if isinstance(models, list) else []:
        problems += _model_problems(model, base)
    return problems


def _model_problems(model: object, base: Path) -> list[str]:
    """Entries added to a model folder the attestation lists (removals and edits show as subjects)."""
    name = model.get("name") if isinstance(model, dict) else None
    files = model.get("files") if isinstance(model, dict) else None
    if not isinstance(name, str) or not isinstance(files, list):
        raise VerificationError("attestation predicate.models entry without a name and a list of files")
    folder = _inside(base, name)
    if folder is None:
        return [f"model folder {name} is outside the base folder"]
    if not folder.is_dir():
        return []  # its files were reported as removed above
    tree = scan_tree(base / name, model_folder.IGNORED)
    on_disk = {p.relative_to(base).as_posix() for p in tree.files}
    out = [f"file {n} was added to model folder {name} after signing" for n in sorted(on_disk - set(files))]
    out += [f"{w.partition(' -> ')[0]} {name}/{n} was added to model folder {name} after signing"
            for n, w in tree.others]
    return out


def verify_attestation(path: Path, verifiers: Sequence[Verifier], base: Path) -> Check:
    """The attestation's signature and signer, its verdict, and every subject against the disk."""
    try:
        bundle = bl.read_bundle(path)
        if "dsseEnvelope" not in bundle:
            raise VerificationError("an attestation bundle must be a DSSE envelope")
        signed = _pick(verifiers, bundle).verify_dsse_trusted(bundle)
        doc = attest.parse_statement(open_statement(signed, Kind.GATE_VERDICT))
        problems = _subject_problems(doc, base)
        verdict = doc["predicate"].get("verdict")
        if verdict != "pass":
            problems.insert(0, f"the attested gate verdict is {verdict!r}, not 'pass'")
        if problems:
            raise VerificationError("; ".join(problems))
    except VerificationError as e:
        return Check(str(path), False, e.diagnostics(), "attestation")
    n = len(doc["subject"])
    return Check(str(path), True, f"gate verdict 'pass', {n} subjects match, {_by(signed.signer, signed.trusted)}",
                 "attestation", signed.signer, "pass", signed.trusted)


def verify_all(artifacts: Sequence[Path], attestations: Sequence[Path], verifiers: Sequence[Verifier],
               base: Path) -> list[Check]:
    if not artifacts and not attestations:
        raise UsageError("name at least one ARTIFACT or --attestation FILE")
    return ([verify_artifact(a, verifiers) for a in artifacts]
            + [verify_attestation(a, verifiers, base) for a in attestations])
