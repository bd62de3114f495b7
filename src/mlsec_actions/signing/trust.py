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

Every entry is either a key or an identity with its issuer; an unknown key, a wrong type, an empty list, a
public key that is not ECDSA P-256, or a pattern `patterns.parse` refuses (a wildcard-only identity, a
wildcard before the owner, one in the issuer) is one error naming the file, the line and the key.
`identity`, `repository` and `ref` are exact strings or anchored globs (`patterns`); `issuer` and `event`
are exact. Each verifier made from an entry carries its `label` (`trust.yml signers[2] (release key)`), and
`mlsec verify --json` reports the one that verified as `trusted`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from mlsec_actions.errors import InputError
from mlsec_actions.signing import patterns
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
    label: str = field(default="", compare=False)
    """Which trust entry this is, for the report (`trust.yml signers[1]`, `--identity`)."""


@dataclass(frozen=True)
class TrustPolicy:
    """The signers a trust policy file lists, in its order."""

    keys: tuple[Path, ...]
    """PEM public keys (resolved against the policy file's folder)."""
    identities: tuple[Identity, ...]
    """Keyless / OpenPubkey identities."""
    key_labels: tuple[str, ...] = ()
    """`label` of each key, in the order of `keys`."""


IDENTITY_FIELDS = ("identity", "issuer", "repository", "ref", "event")
"""The fields of an identity entry, in the order of `Identity`'s."""


def check_identity(who: Identity) -> str | None:
    """Why one of `who`'s patterns is refused (`field: reason`), or None when every one is allowed."""
    for name in IDENTITY_FIELDS:
        value = getattr(who, name)
        if value is None:
            continue
        try:
            patterns.parse(value, name)
        except ValueError as e:
            return f"{name}: {e}"
    return None


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
        return self._first(bundle, lambda m: replace(m.verify_dsse(bundle), trusted=m.label))

    def verify_message(self, bundle: Bundle, sha256: bytes) -> str:
        return self.verify_message_trusted(bundle, sha256)[0]

    def verify_message_trusted(self, bundle: Bundle, sha256: bytes) -> tuple[str, str]:
        return self._first(bundle, lambda m: (m.verify_message(bundle, sha256), m.label))


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
    key_labels: list[str] = []
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
        name = _text(path, line, entry, "name", required=False)
        label = f"{path} signers[{i}]" + (f" ({name})" if name else "")
        if "public-key" in entry:
            key_file = path.parent / str(_text(path, line, entry, "public-key", required=True))
            _check_key(path, line_of(lines, ("signers", i, "public-key")), i, key_file)
            keys.append(key_file)
            key_labels.append(label)
            continue
        repository, ref, event = (_text(path, line, entry, k, required=False) for k in ("repository", "ref", "event"))
        who = Identity(str(_text(path, line, entry, "identity", required=True)),
                       str(_text(path, line, entry, "issuer", required=True)), repository, ref, event, label)
        refused = check_identity(who)
        if refused:
            at = line_of(lines, ("signers", i, refused.split(":", 1)[0]))
            raise InputError(path, f"trust policy line {at}: signers[{i}]: {refused}")
        identities.append(who)
    return TrustPolicy(tuple(keys), tuple(identities), tuple(key_labels))


def _check_key(path: Path, line: int, i: int, key_file: Path) -> None:
    """The key file is read now, so a missing file or a key of another type names the policy's line."""
    from mlsec_actions.signing.bundle import load_public_key

    try:
        load_public_key(key_file)
    except InputError as e:
        raise InputError(path, f"trust policy line {line}: signers[{i}]: public-key: {e.path}: {e.problem}") from None
