"""Which Dockerfile line made which image layer: the image's history aligned with the Dockerfile's final stage.

An image config lists one history entry per instruction (`empty_layer` for those that add no files) and
`rootfs.diff_ids` for the layers, in order. buildah writes `/bin/sh -c #(nop) COPY ...` for file
instructions and `/bin/sh -c <command>` for RUN; BuildKit writes `COPY ... # buildkit` / `RUN ... # buildkit`.
The last history entries are the final stage's own instructions (a base image's come first); they are matched
from the end by instruction keyword, skipping instructions that leave no history (ARG). Where the history
does not allow it (squashed, unknown keywords, no Dockerfile), a layer has no line: never a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlsec_actions.analyzers.dockerfile import Instruction, Parsed

_KEYWORDS = frozenset({"RUN", "COPY", "ADD", "ENV", "USER", "WORKDIR", "LABEL", "EXPOSE", "ENTRYPOINT", "CMD",
                       "VOLUME", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "ONBUILD", "ARG", "MAINTAINER"})


def history_keyword(created_by: str) -> str | None:
    """The instruction a history entry's `created_by` records, or None when it cannot be told."""
    text = created_by.strip()
    for prefix in ("/bin/sh -c ", "|"):
        if text.startswith(prefix):
            text = text[len(prefix):].lstrip()
    if text.startswith("#(nop)"):
        word = text[6:].split(None, 1)[0] if text[6:].split() else ""
        return word.upper() if word.upper() in _KEYWORDS else None
    word = text.split(None, 1)[0] if text.split() else ""
    if word.upper() in _KEYWORDS and word.isupper():
        return word  # BuildKit's form: `COPY src dst # buildkit`
    return "RUN" if text else None


def layer_lines(config: dict[str, Any], parsed: Parsed | None) -> dict[str, Instruction]:
    """diff_id -> the final-stage instruction that made that layer, for the layers the history allows."""
    if parsed is None or parsed.stages == 0:
        return {}
    history = _list(config.get("history"))
    rootfs = config.get("rootfs")
    diff_ids = _list(rootfs.get("diff_ids")) if isinstance(rootfs, dict) else []
    entries = [h for h in history if isinstance(h, dict)]
    layered = [h for h in entries if not h.get("empty_layer")]
    if len(layered) != len(diff_ids):
        return {}  # history and layers disagree (squashed or rewritten): no mapping
    layer_of = {id(h): str(d) for h, d in zip(layered, diff_ids, strict=True)}
    final = [i for i in parsed.instructions if i.stage == parsed.stages - 1 and i.keyword != "FROM"]
    return _align(entries, final, layer_of)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _align(entries: Sequence[dict[str, Any]], final: Sequence[Instruction], layer_of: dict[int, str]
           ) -> dict[str, Instruction]:
    out: dict[str, Instruction] = {}
    h, j = len(entries) - 1, len(final) - 1
    while h >= 0 and j >= 0:
        keyword = history_keyword(str(entries[h].get("created_by", "")))
        if keyword is None:
            break  # cannot tell what this entry is: stop rather than guess below it
        if keyword == final[j].keyword:
            if id(entries[h]) in layer_of:
                out[layer_of[id(entries[h])]] = final[j]
            h, j = h - 1, j - 1
        elif final[j].keyword in ("ARG", "ONBUILD"):
            j -= 1  # instructions that may leave no history entry
        else:
            break
    return out
