"""checkov in its own process (`CHECKOV_PARALLELIZATION_TYPE=none`, for a few IaC files or two cores) finds
exactly what its forked workers find: the real checkov on the example project both ways."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlsec_actions.findings import ToolStatus
from mlsec_actions.tools import checkov

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ml-project"


def _scan(monkeypatch: pytest.MonkeyPatch, *, serial: bool) -> tuple[list[tuple[str, ...]], dict[str, str]]:
    seen: dict[str, str] = {}
    real = checkov.execute

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs["env"])
        return real(*args, **kwargs)

    monkeypatch.setattr(checkov, "execute", recording)
    monkeypatch.setattr(checkov.os, "cpu_count", lambda: 2 if serial else 4)
    monkeypatch.setattr(checkov, "SERIAL_BELOW_FILES", 100 if serial else 0)
    findings, run = checkov.scan(EXAMPLE, 600)
    assert run.status is ToolStatus.OK, run.message
    return sorted((f.rule.id, f.location.path, str(f.location.start_line), f.message) for f in findings), seen


def test_serial_checkov_finds_what_forked_checkov_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    serial, env_serial = _scan(monkeypatch, serial=True)
    forked, env_forked = _scan(monkeypatch, serial=False)
    assert env_serial.get("CHECKOV_PARALLELIZATION_TYPE") == "none"
    assert "CHECKOV_PARALLELIZATION_TYPE" not in env_forked
    assert serial == forked and len(serial) >= 5
