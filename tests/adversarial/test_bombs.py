"""Issue 9 item 9: loader bombs from the tree, given to every command that reads YAML or JSON. Each must
be refused at once with one line naming the file (exit 2), never a traceback, a hang or gigabytes.

The policy, config and model card come from the caller, but on a pull request a careless workflow takes
them from the PR's checkout, so they are as hostile as the tree.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adversarial import observe
from tests.adversarial.hostile_repo import HostileRepo, key_pair
from tests.adversarial.observe import Observed

pytestmark = pytest.mark.integration

FAST = 60.0
"""Seconds a refusal may take on a loaded 2-core machine (the loaders take well under 1 s: benchmarks/)."""
MEMORY = 2 * 1024**3
"""Address-space cap: a bomb that grows past it fails the test, not the machine."""
YAML_BOMBS = ("laughs.yml", "deep-flow.yml", "deep-block.yml", "big.yml", "fifo.yml")
JSON_BOMBS = ("deep.json", "fifo.json")


def _refused(obs: Observed, bomb: Path, codes: tuple[int, ...] = (2,)) -> None:
    """Refused (exit 2: one line naming the file) or, where `codes` allows, failed closed."""
    assert obs.returncode in codes, obs.describe()
    assert "Traceback" not in obs.stderr and "RecursionError" not in obs.stderr, obs.describe()
    if obs.returncode == 2:
        assert bomb.name in obs.stderr + obs.stdout, obs.describe()


def _run(h: HostileRepo, work: Path, *args: str) -> Observed:
    clean = work.parent / "clean"
    clean.mkdir(exist_ok=True)
    (clean / "app.py").write_text("print('hello')\n")
    return observe.run(h, work, *args, cwd=work.parent, timeout=FAST, trace=False, max_memory=MEMORY)


@pytest.mark.parametrize("bomb", YAML_BOMBS)
def test_gate_policy_bomb(hostile: HostileRepo, work: Path, bomb: str) -> None:
    path = hostile.root / "bombs" / bomb
    (work.parent / "sarif").mkdir(parents=True, exist_ok=True)
    _refused(_run(hostile, work, "gate", "--sarif-dir", str(work.parent / "sarif"), "--policy", str(path),
                  "--verdict", str(work / "v.json"), "--summary", str(work / "s.md"), "--sarif", str(work / "g.sarif")),
             path)


@pytest.mark.parametrize("bomb", YAML_BOMBS)
def test_policy_validate_bomb(hostile: HostileRepo, work: Path, bomb: str) -> None:
    path = hostile.root / "bombs" / bomb
    _refused(_run(hostile, work, "policy", "validate", str(path)), path)


@pytest.mark.parametrize("bomb", YAML_BOMBS)
def test_config_bomb(hostile: HostileRepo, work: Path, bomb: str) -> None:
    path = hostile.root / "bombs" / bomb
    _refused(_run(hostile, work, "code-scan", str(work.parent / "clean"), "--config", str(path),
                  "--vuln-db", "skip", "--sarif", str(work / "c.sarif")), path)


@pytest.mark.parametrize("bomb", YAML_BOMBS)
def test_model_card_bomb(hostile: HostileRepo, work: Path, bomb: str) -> None:
    path = hostile.root / "bombs" / bomb
    _refused(_run(hostile, work, "sbom", str(work.parent / "clean"), "--model-card", str(path),
                  "--out", str(work / "sbom.json"), "--digest-cache", str(work / "d.json")), path)


@pytest.mark.parametrize("bomb", JSON_BOMBS)
def test_garak_report_bomb(hostile: HostileRepo, work: Path, bomb: str) -> None:
    path = hostile.root / "bombs" / bomb
    _refused(_run(hostile, work, "model-scan", str(work.parent / "clean"), "--garak-report", str(path),
                  "--sarif", str(work / "m.sarif")), path)


@pytest.mark.parametrize("bomb", JSON_BOMBS)
def test_metrics_bomb(hostile: HostileRepo, work: Path, bomb: str) -> None:
    path = hostile.root / "bombs" / bomb
    _refused(_run(hostile, work, "sbom", str(work.parent / "clean"), "--metrics", str(path),
                  "--out", str(work / "sbom.json"), "--digest-cache", str(work / "d.json")), path)


@pytest.mark.parametrize("bomb", JSON_BOMBS)
def test_sarif_bomb_fails_the_gate_closed(hostile: HostileRepo, work: Path, bomb: str) -> None:
    """A SARIF input that is a bomb: refused or red at once, never a pass or a hang."""
    sarif = work.parent / "sarif"
    sarif.mkdir(parents=True, exist_ok=True)
    (sarif / "code-scan.sarif").symlink_to(hostile.root / "bombs" / bomb)
    obs = _run(hostile, work, "gate", "--sarif-dir", str(sarif), "--verdict", str(work / "v.json"),
               "--summary", str(work / "s.md"), "--sarif", str(work / "g.sarif"))
    _refused(obs, sarif / "code-scan.sarif", codes=(2, 3))


@pytest.mark.parametrize("bomb", JSON_BOMBS)
def test_attestation_bomb(hostile: HostileRepo, work: Path, bomb: str, tmp_path: Path) -> None:
    path = hostile.root / "bombs" / bomb
    pub = key_pair(tmp_path).with_suffix(".pub")
    _refused(_run(hostile, work, "verify", "--public-key", str(pub), "--attestation", str(path)), path,
             codes=(1, 2))
