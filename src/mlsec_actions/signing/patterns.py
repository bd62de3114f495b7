"""Anchored globs for the identities a trust policy names (docs/signing.md#trust-policy-matching).

A pattern matches a whole value, never part of it: `https://github.com/acme/models/*` does not match
`https://github.com/acme/models-evil/x` nor `https://evil.example/?https://github.com/acme/models/x`.
Two wildcards exist, everything else is a literal character (`.`, `?`, `[`, `\\` included: no regular
expression and no fnmatch class is ever built from the file):

- `*` matches any run of characters except `/` (possibly none);
- `**` matches any run of characters, `/` included (possibly none).

Matching is a set-of-states walk over the value, linear in value length times pattern length, so no
pattern a policy file holds can make it backtrack exponentially.

Where wildcards may stand is checked when the policy is read (`identity`, `repository`, `ref`); the
issuer and the event are compared exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LENGTH = 1024
"""Longer than any GitHub workflow identity; a bound on what one pattern costs to match."""
_STAR, _GLOBSTAR = "*", "**"


@dataclass(frozen=True)
class Pattern:
    """One exact string or anchored glob, checked by `parse`."""

    text: str
    """As written in the policy (or on the command line)."""
    tokens: tuple[str, ...]
    """One literal character, `*` or `**` per token."""

    @property
    def exact(self) -> bool:
        """True when it holds no wildcard: then it matches only the identical string."""
        return _STAR not in self.tokens and _GLOBSTAR not in self.tokens

    def matches(self, value: str) -> bool:
        """True when the whole of `value` matches (anchored at both ends)."""
        if self.exact:
            return value == self.text
        states = self._closure({0})
        for ch in value:
            following: set[int] = set()
            for i in states:
                if i == len(self.tokens):
                    continue
                token = self.tokens[i]
                if token == _GLOBSTAR or (token == _STAR and ch != "/"):
                    following.add(i)
                elif token == ch:
                    following.add(i + 1)
            states = self._closure(following)
            if not states:
                return False
        return len(self.tokens) in states

    def _closure(self, states: set[int]) -> set[int]:
        out = set(states)
        for i in sorted(states):  # a wildcard may match nothing: the token after it is reachable too
            while i < len(self.tokens) and self.tokens[i] in (_STAR, _GLOBSTAR):
                i += 1
                out.add(i)
        return out


def _tokens(text: str) -> tuple[str, ...]:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("***", i):
            raise ValueError("'***' is ambiguous: use '*' (no '/') or '**' (any characters)")
        if text.startswith(_GLOBSTAR, i):
            out.append(_GLOBSTAR)
            i += 2
        else:
            out.append(text[i])
            i += 1
    return tuple(out)


def _literal_prefix(text: str) -> str:
    return text.split("*", 1)[0]


def glob(text: str) -> Pattern:
    """`text` as a pattern without the per-field rules (already checked by `parse` when the policy was read)."""
    return Pattern(text, _tokens(text))


def parse(text: str, field: str) -> Pattern:
    """`text` as the pattern of trust-policy field `field` (identity, repository, ref, issuer, event).

    Raises ValueError saying why it is refused: a wildcard where it would trust any owner (or anyone at
    all), a wildcard in a field compared exactly, `***`, or a pattern longer than `MAX_LENGTH`.
    """
    if len(text) > MAX_LENGTH:
        raise ValueError(f"longer than {MAX_LENGTH} characters")
    pattern = glob(text)
    if pattern.exact:
        return pattern
    if field in ("issuer", "event"):
        raise ValueError(f"the {field} is compared exactly: wildcards are not allowed")
    if not text.replace("*", "").replace("/", ""):
        raise ValueError(f"a wildcard-only {field} matches every value: name it, or leave the key out"
                         if field != "identity" else "a wildcard-only identity would trust every signer of the "
                                                     "issuer")
    prefix = _literal_prefix(text)
    if field == "identity":
        host_owner = prefix.removeprefix("https://").split("/")
        if not prefix.startswith("https://") or len(host_owner) < 3 or not all(host_owner[:2]):
            raise ValueError("a wildcard may follow only a literal https://HOST/OWNER/ (before it, it would trust "
                             "other hosts or owners); other identities are matched exactly")
    elif field == "repository":
        owner, slash, _ = prefix.partition("/")
        if not owner or not slash:
            raise ValueError("a wildcard may follow only a literal OWNER/ (before it, it would trust other owners)")
    return pattern
