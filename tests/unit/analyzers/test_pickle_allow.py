"""The policy's per-global allows (`model-scan.allow-globals`): exact pairs only, never a dangerous name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlsec_actions.analyzers import pickle_allow
from mlsec_actions.cli import main
from mlsec_actions.gate import policy
from tests import pickle_corpus as pc

REASON = "our own layer class; its constructor only stores tensors"


def _policy(tmp_path: Path, entries: list[dict[str, str]]) -> Path:
    path = tmp_path / "policy.yml"
    path.write_text("version: 1\nmodel-scan:\n  allow-globals:\n" + "".join(
        f"    - {{module: '{e['module']}', name: '{e['name']}', reason: '{e.get('reason', REASON)}'}}\n"
        for e in entries), encoding="utf-8")
    return path


def test_an_exact_pair_with_a_reason_is_loaded(tmp_path: Path) -> None:
    loaded = policy.load(_policy(tmp_path, [{"module": "mypkg.layers", "name": "Custom"}]))
    assert loaded.allow_globals == (pickle_allow.Allow("mypkg.layers", "Custom", REASON),)


@pytest.mark.parametrize(("module", "name"), [
    ("os", "system"), ("posix", "system"), ("builtins", "eval"),   # denied names
    ("os", "*"), ("o*", "system"), ("os.", "system"), ("", "x"),   # wildcards and prefixes
    ("torch", "os.system"), ("torch", "os"), ("mypkg", "sub.os"),  # chains through a denied module
    ("functools", "partial"), ("operator", "attrgetter"),          # call chaining
    ("mypkg", "Custom.__init__"),                                  # a dunder step reaches anything
])
def test_dangerous_wildcard_or_chained_entries_make_the_policy_invalid(tmp_path: Path, module: str,
                                                                        name: str) -> None:
    with pytest.raises(policy.PolicyError) as info:
        policy.load(_policy(tmp_path, [{"module": module, "name": name}]))
    assert info.value.problems[0].startswith(f"{tmp_path / 'policy.yml'}:4: model-scan.allow-globals[0]")


def test_a_short_reason_is_refused(tmp_path: Path) -> None:
    with pytest.raises(policy.PolicyError):
        policy.load(_policy(tmp_path, [{"module": "mypkg", "name": "Custom", "reason": "ok"}]))


def _scan(tmp_path: Path, data: bytes, entries: list[dict[str, str]]) -> tuple[dict[str, set[str]], list[str]]:
    root = tmp_path / "models"
    root.mkdir(exist_ok=True)
    (root / "model.pkl").write_bytes(data)
    sarif = tmp_path / "model-scan.sarif"
    argv = ["model-scan", str(root), "--no-modelscan", "--sarif", str(sarif), "--source-root", str(root),
            "--policy", str(_policy(tmp_path, entries))]
    assert main(argv) == 0
    run = json.loads(sarif.read_text())["runs"][0]
    found: dict[str, set[str]] = {}
    for r in run["results"]:
        found.setdefault(r["ruleId"], set()).add(r["properties"].get("global", ""))
    gaps = [g["detail"] for g in run["properties"]["mlsec-coverage"]["gaps"] if g["kind"] == "allow-rule"]
    return found, gaps


def test_an_allowed_import_is_a_gap_and_everything_else_is_still_reported(tmp_path: Path) -> None:
    data = (b"\x80\x04" + pc.stack_glob("mypkg.layers", "Custom") + b")R0"
            + pc.stack_glob("mypkg.layers", "Other") + b")R0" + pc.stack_glob("mypkg", "layers.Custom") + b")R0"
            + pc.stack_glob("mypkg.layers", "Custom.os.system") + pc.sbu(pc.CMD) + b"\x85R.")
    found, gaps = _scan(tmp_path, data, [{"module": "mypkg.layers", "name": "Custom"}])
    # Only the exact pair: the same name reached another way, a sibling, and a chain from it are all reported.
    assert found == {"pickle/unknown-global": {"mypkg.layers.Other", "mypkg.layers.Custom"},
                     "pickle/dangerous-global": {"mypkg.layers.Custom.os.system"}}
    [gap] = gaps
    assert "mypkg.layers.Custom" in gap and REASON in gap and "1 finding(s)" in gap


def test_without_the_policy_the_import_is_high(tmp_path: Path) -> None:
    data = b"\x80\x04" + pc.stack_glob("mypkg.layers", "Custom") + b")R."
    found, gaps = _scan(tmp_path, data, [{"module": "mypkg.layers", "name": "Different"}])
    assert found == {"pickle/unknown-global": {"mypkg.layers.Custom"}} and gaps == []
