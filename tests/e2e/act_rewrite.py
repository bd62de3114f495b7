"""The one rewrite the e2e harness makes before act reads the workflows: `$/` self-references.

GitHub resolves `uses: $/path` to the repository of the file it appears in, at the commit that is
running. act (0.2.89) does not know the syntax, so the staged copy of this repository spells the same
thing out: `uses: OWNER/REPO/path@REF`, and the harness maps `OWNER/REPO@REF` back to the staged
copy with `--local-repository`. Only `uses:` values are touched; nothing else in the YAML changes.
"""

from __future__ import annotations

import re

# `uses:` (also as the first key of a list item), an optional quote, `$/`, the path, the same quote.
_SELF_REF = re.compile(r"""(?m)^(?P<lead>[ \t]*(?:-[ \t]+)?uses:[ \t]*)(?P<q>['"]?)\$/(?P<path>[^\s'"#@]+)(?P=q)""")


def rewrite_self_refs(text: str, repo: str, ref: str) -> str:
    """Replace every `uses: $/path` with `uses: repo/path@ref` (what GitHub resolves it to)."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repo):
        raise ValueError(f"not an owner/repo: {repo!r}")
    if not re.fullmatch(r"[A-Za-z0-9_./-]+", ref):
        raise ValueError(f"not a git ref: {ref!r}")

    def sub(m: re.Match[str]) -> str:
        path = m["path"].rstrip("/")
        return f"{m['lead']}{m['q']}{repo}/{path}@{ref}{m['q']}"

    return _SELF_REF.sub(sub, text)


def self_refs(text: str) -> list[str]:
    """The `$/` paths a YAML text uses (for asserting the rewrite left none behind)."""
    return [m["path"] for m in _SELF_REF.finditer(text)]
