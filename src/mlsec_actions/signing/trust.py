"""Who may sign: a trust policy of several keys and identities for `mlsec verify`.

A consumer rarely trusts exactly one signer: a release key and its successor during a rotation, the release
workflow and the nightly one, a KMS key beside a keyless identity. `AnyOf` accepts a bundle when any one
trusted signer verifies it; when none does, the error lists why each candidate refused, so a user sees
"signed by a different key" for the keys and "identity does not match" for the identities at once.

The trust policy file (`mlsec verify --trust-policy FILE`) is YAML, read with the bounded loader:

    signers:
      - public-key: keys/release-2026.pub      # relative to this file
      - identity: https://github.com/acme/models/.github/workflows/release.yml@refs/heads/main
        issuer: https://token.actions.githubusercontent.com
        repository: acme/models                # optional
        ref: refs/heads/main                   # optional
        event: push                            # optional, OpenPubkey only

Every entry is either a key or an identity with its issuer; an unknown key, a wrong type or an empty list
is one error naming the file, the line and the key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mlsec_actions.errors import InputError
from mlsec_actions.signing.interface import Bundle, SignedPayload, VerificationError, Verifier

T = TypeVar("T")

_KEY_FIELDS = frozenset({"public-key", "name"})
_IDENTITY_FIELDS = frozenset({"identity", "issuer", "repository", "ref", "event", "name"})
MAX_SIGNERS = 64
"""More trusted signers than any real rotation needs; a bound on what one policy file makes us try."""


@dataclass(frozen=True)
class Identity:
    """A keyless (Sigstore) or OpenPubkey signer the policy trusts."""

    identity: str
    """Certificate SAN / token workflow identity."""
    issuer: str
    """Exact OIDC issuer."""
    repository: str | None = None
    """GitHub `OWNER/REPO`, when it must also match."""
    ref: str | None = None
    """Git ref, when it must also match."""
    event: str | None = None
    """OpenPubkey `event_name`, when it must also match."""


@dataclass(frozen=True)
class TrustPolicy:
    """The signers a trust policy file lists, in its order."""

    keys: tuple[Path, ...]
    """PEM public keys (resolved against the policy file's folder)."""
    identities: tuple[Identity, ...]
    """Keyless / OpenPubkey identities."""


class AnyOf(Verifier):
    """Accepts a bundle that any one of `members` verifies; the first that does names the signer."""

    name = "trust policy"

    def __init__(self, members: Sequence[Verifier]) -> None:
        if not members:
            raise ValueError("a trust policy needs at least one signer")
        self.members = tuple(members)

    def accepts(self, bundle: Bundle) -> bool:
        return any(m.accepts(bundle) for m in self.members)

    def _first(self, bundle: Bundle, check: Callable[[Verifier], T]) -> T:
        refusals: list[str] = []
        for member in self.members:
            if not member.accepts(bundle):
                continue
            try:
                return check(member)
            except VerificationError as e:
                refusals.append(e.diagnostics())
        if len(refusals) == 1:  # one candidate of this bundle's kind: its own message says it all
            raise VerificationError(refusals[0])
        raise VerificationError(f"none of the {len(refusals)} trusted signers of this kind verifies it: "
                                + "; ".join(f"[{i}] {r}" for i, r in enumerate(refusals, 1)))

    def verify_dsse(self, bundle: Bundle) -> SignedPayload:
        return self._first(bundle, lambda m: m.verify_dsse(bundle))

    def verify_message(self, bundle: Bundle, sha256: bytes) -> str:
        return self._first(bundle, lambda m: m.verify_message(bundle, sha256))


def _text(path: Path, line: int, entry: dict[str, Any], key: str, required: bool) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(path, f"trust policy line {line}: {key}: a non-empty string is required")
    return value


def load_trust_policy(path: Path) -> TrustPolicy:
    """Read and check a trust policy file (see the module docstring for its shape)."""
    from mlsec_actions.inputs import load_yaml_lines
    from mlsec_actions.yaml_lines import line_of

    doc, lines = load_yaml_lines(path, "trust policy", 256 * 1024)
    if not isinstance(doc, dict) or set(doc) != {"signers"}:
        extra = sorted(set(doc) - {"signers"}, key=str) if isinstance(doc, dict) else []
        what = f"unknown key {extra[0]!r}" if extra else "a mapping with one key, 'signers', is required"
        raise InputError(path, f"trust policy line {line_of(lines, (extra[0],) if extra else ())}: {what}")
    signers = doc["signers"]
    if not isinstance(signers, list) or not signers:
        raise InputError(path, f"trust policy line {line_of(lines, ('signers',))}: signers: a non-empty list is "
                               "required")
    if len(signers) > MAX_SIGNERS:
        raise InputError(path, f"trust policy: {len(signers)} signers, more than {MAX_SIGNERS}")
    keys: list[Path] = []
    identities: list[Identity] = []
    for i, entry in enumerate(signers):
        line = line_of(lines, ("signers", i))
        if not isinstance(entry, dict):
            raise InputError(path, f"trust policy line {line}: signers[{i}]: a mapping is required")
        fields = set(entry)
        if "public-key" in entry:
            unknown = sorted(fields - _KEY_FIELDS, key=str)
        elif "identity" in entry:
            unknown = sorted(fields - _IDENTITY_FIELDS, key=str)
        else:
            raise InputError(path, f"trust policy line {line}: signers[{i}]: 'public-key' or 'identity' is required")
        if unknown:
            raise InputError(path, f"trust policy line {line_of(lines, ('signers', i, unknown[0]))}: "
                                   f"signers[{i}]: unknown key {unknown[0]!r}")
        _text(path, line, entry, "name", required=False)
        if "public-key" in entry:
            keys.append(path.parent / str(_text(path, line, entry, "public-key", required=True)))
            continue
        identities.append(Identity(
            str(_text(path, line, entry, "identity", required=True)),
            str(_text(path, line, entry, "issuer", required=True)),
            *(_text(path, line, entry, k, required=False) for k in ("repository", "ref", "event"))))
    return TrustPolicy(tuple(keys), tuple(identities))
