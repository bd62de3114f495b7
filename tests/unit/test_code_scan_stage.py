"""code-scan's parts: a part that raises is a FAILED tool of its own, the others' findings stay."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from mlsec_actions.findings import ToolStatus
from mlsec_actions.stages import code_scan
from mlsec_actions.stages.base import ScanContext


def _boom(ctx: ScanContext) -> tuple[list, object]:  # type: ignore[type-arg]
    raise RuntimeError("analyzer bug with token=ghp_" + "Q1w2E3r4T5y6U7i8O9p0" * 2)


def test_a_crashing_part_fails_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.py").write_text("k = 'r8" "_" + "Zq8Wk2Lp9Rt4Yc7Vn0Bm5Hj3Gf6Ds1Ae8Xu4K'\n")
    secrets_part = next(p for p in code_scan.PARTS if p.name == "mlsec-secrets")
    monkeypatch.setattr(code_scan, "PARTS", (code_scan.Part("mlsec-ml-sast", _boom), secrets_part))
    args = argparse.Namespace(timeout=30.0)
    result = code_scan.scan(ScanContext(root=tmp_path, target=tmp_path, args=args))
    runs = {t.name: t for t in result.tools}
    assert runs["mlsec-ml-sast"].status is ToolStatus.FAILED and "RuntimeError" in runs["mlsec-ml-sast"].message
    assert "ghp_" not in runs["mlsec-ml-sast"].message  # the crash text is redacted
    assert runs["mlsec-secrets"].status is ToolStatus.OK
    assert [f.rule.id for f in result.findings] == ["secret/replicate-api-token"]
    assert not result.succeeded
