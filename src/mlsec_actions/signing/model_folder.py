"""Model folders in OpenSSF model_signing's manifest format (in-toto, predicate `model_signing/signature/v1.0`).

The manifest is built from digests we already have (the shared digest cache), so a folder is read once
per run; the statement is the one model_signing itself signs (a test compares the two), and
`model_signing verify key` accepts our key-mode bundles.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath

from mlsec_actions.signing.interface import VerificationError
from mlsec_actions.signing.statements import Kind

PREDICATE_TYPE = Kind.MODEL_FOLDER.value
"""model_signing's predicate type."""
IGNORED = (".git", ".gitattributes", ".github", ".gitignore")
"""Top-level names model_signing leaves out of a model's manifest by default."""


def manifest_payload(folder: Path, digests: dict[str, str]) -> bytes:
    """The in-toto statement model_signing would sign for `folder`, from `{relative path: hex sha256}`.

    Written here rather than with model_signing's types: importing model_signing (sigstore, pydantic) costs
    seconds, the whole fixed cost of signing a small folder. The statement is model_signing's v1.0 format (its
    `Payload` and `_FileSerialization`, pinned version): resources sorted as its manifest sorts paths (part by
    part), the subject digest SHA-256 over their raw digests in that order; a unit test compares it with
    model_signing's own, and an integration test has `model_signing` verify our bundle.
    """
    names = sorted(digests, key=lambda n: PurePosixPath(n).parts)
    root = hashlib.sha256(b"".join(bytes.fromhex(digests[n]) for n in names)).hexdigest()
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": folder.resolve().name, "digest": {"sha256": root}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": False,
                              "ignore_paths": list(IGNORED)},
            "resources": [{"name": str(PurePosixPath(n)), "algorithm": "sha256", "digest": digests[n]} for n in names],
        },
    }
    return json.dumps(statement, indent=2).encode("utf-8")


def signed_resources(payload: bytes) -> dict[str, str]:
    """`{relative path: hex sha256}` recorded in a model_signing statement."""
    try:
        doc = json.loads(payload)
        if doc.get("predicateType") != PREDICATE_TYPE:
            raise VerificationError(f"not a model_signing manifest (predicateType {doc.get('predicateType')!r})")
        resources = doc["predicate"]["resources"]
        out = {str(r["name"]): str(r["digest"]) for r in resources}
        other = sorted({str(r.get("algorithm")) for r in resources} - {"sha256"})
    except (ValueError, KeyError, TypeError, AttributeError):
        raise VerificationError("the signed model manifest is malformed") from None
    if other:
        raise VerificationError(f"the signed model manifest uses digest algorithm(s) {other}; only sha256 is checked")
    return out


def ignored_paths(payload: bytes) -> tuple[str, ...]:
    """Paths the signer left out (`serialization.ignore_paths`), e.g. model_signing's own `model.sig`."""
    try:
        paths = json.loads(payload)["predicate"]["serialization"].get("ignore_paths") or []
    except (ValueError, KeyError, TypeError, AttributeError):
        return ()
    return tuple(str(p).strip("/") for p in paths if isinstance(p, str))


def without(tree: dict[str, str], ignore: tuple[str, ...]) -> dict[str, str]:
    """`tree` minus files at or under any of `ignore` (relative paths)."""
    return {n: d for n, d in tree.items() if not any(n == i or n.startswith(i + "/") for i in ignore)}


def diff(signed: dict[str, str], actual: dict[str, str], others: dict[str, str] | None = None) -> list[str]:
    """What changed in a folder since it was signed, one line per entry.

    `others` maps entries that are not regular files (symlinks, FIFOs, devices) to what they are: a
    signed manifest holds only regular files, so each of them is a change.
    """
    others = others or {}
    out = [f"file {n} was added after signing" for n in sorted(actual.keys() - signed.keys())]
    out += [f"{_named(n, what)} was added after signing" if n not in signed
            else f"file {n} was replaced by a {_named(n, what)} after signing" for n, what in sorted(others.items())]
    out += [f"file {n} was removed after signing" for n in sorted(signed.keys() - actual.keys() - others.keys())]
    out += [f"file {n} digest mismatch (signed sha256:{signed[n][:16]}..., now sha256:{actual[n][:16]}...)"
            for n in sorted(signed.keys() & actual.keys()) if signed[n] != actual[n]]
    return out


def _named(name: str, what: str) -> str:
    """`symlink etc -> /etc`, `FIFO pipe`: the kind, the name, then a link's target."""
    kind, arrow, target = what.partition(" -> ")
    return f"{kind} {name} -> {target}" if arrow else f"{kind} {name}"
