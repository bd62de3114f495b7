"""Issue 9 acceptance: the hostile repository through every implemented stage, each as its own
`python -I -m mlsec_actions <stage>` process started in the hostile root (the worst case), under strace.

Every test asserts the four boundaries (`observe.all_problems`: no hostile code ran, nothing outside the
root was opened through it, no injected workflow command or Markdown, no planted value in any output)
and what the stage itself must still do on such a tree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.adversarial import observe
from tests.adversarial.hostile_repo import HostileRepo, key_pair
from tests.adversarial.observe import Observed

pytestmark = pytest.mark.integration


def _held(h: HostileRepo, obs: Observed) -> None:
    problems = observe.all_problems(h, obs)
    assert problems == [], "\n".join(problems) + "\n\n" + obs.describe()


def _sarif(obs: Observed, name: str) -> dict[str, Any]:
    found = [p for p in obs.files if p.name == name]
    assert found, f"no {name} written\n{obs.describe()}"
    doc: dict[str, Any] = json.loads(found[0].read_text())
    return doc


def _rules(doc: dict[str, Any]) -> set[str]:
    return {r["ruleId"] for run in doc["runs"] for r in run.get("results", [])}


@pytest.fixture(scope="module")
def scans(hostile: HostileRepo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Observed, Path]]:
    """code-scan and model-scan on the hostile root, run once for the module; SARIF in one folder."""
    base = tmp_path_factory.mktemp("scans")
    sarif = base / "sarif"
    sarif.mkdir()
    out = {}
    for stage, extra in (("code-scan", ["--vuln-db", "skip"]), ("model-scan", [])):
        work = base / stage
        obs = observe.run(hostile, work, stage, str(hostile.root), "--sarif", str(work / f"{stage}.sarif"), *extra)
        if (work / f"{stage}.sarif").is_file():
            (sarif / f"{stage}.sarif").write_bytes((work / f"{stage}.sarif").read_bytes())
        out[stage] = (obs, sarif)
    return out


def test_code_scan_is_not_steered_by_the_tree(hostile: HostileRepo, scans: dict[str, tuple[Observed, Path]]) -> None:
    obs, _ = scans["code-scan"]
    _held(hostile, obs)
    assert obs.returncode == 0, obs.describe()
    rules = _rules(_sarif(obs, "code-scan.sarif"))
    # .trivyignore, trivy.yaml and trivy-secret.yaml in the tree would hide all of these (issue 9 item 4).
    assert "trivy/secret/github-pat" in rules, rules
    assert "trivy/secret/aws-access-key-id" in rules, rules
    assert any(r.startswith("trivy/misconfig/") for r in rules), rules
    assert "trivy/misconfig/AWS-0086" in rules, rules  # the public bucket under `#trivy:ignore:*`


def test_model_scan_reports_and_stays_inside(hostile: HostileRepo, scans: dict[str, tuple[Observed, Path]]) -> None:
    obs, _ = scans["model-scan"]
    _held(hostile, obs)
    assert obs.returncode == 0, obs.describe()
    doc = _sarif(obs, "model-scan.sarif")
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"]
            for run in doc["runs"] for r in run.get("results", []) for loc in r.get("locations", [])}
    assert "models/model.pkl" in uris, sorted(uris)[:20]
    # The folder ~1,000 deep is either scanned or its cut-off is a finding; never a crash or silence.
    assert any(u.startswith("d/d/d/") for u in uris), sorted(uris)[:20]


def test_gate_is_red_on_the_hostile_scans(hostile: HostileRepo, scans: dict[str, tuple[Observed, Path]],
                                          work: Path) -> None:
    _, sarif = scans["code-scan"]
    obs = observe.run(hostile, work, "gate", "--sarif-dir", str(sarif), "--policy", "default",
                      "--verdict", str(work / "verdict.json"), "--summary", str(work / "summary.md"),
                      "--sarif", str(work / "gate.sarif"))
    _held(hostile, obs)
    assert obs.returncode == 3, obs.describe()
    assert json.loads((work / "verdict.json").read_text())["verdict"] == "fail"


def test_the_prs_own_waiver_policy_does_not_turn_the_gate_green(
        hostile: HostileRepo, scans: dict[str, tuple[Observed, Path]], work: Path) -> None:
    """Issue 9 item 5: `rule: '*'`, `path: '**'`, a one-letter reason, expiry 9999, and an owner that
    prints `::error` (item 6). Refused (exit 2) or red (exit 3); never green, never an injected line."""
    _, sarif = scans["code-scan"]
    obs = observe.run(hostile, work, "gate", "--sarif-dir", str(sarif), "--policy", str(hostile.permissive_policy),
                      "--verdict", str(work / "verdict.json"), "--summary", str(work / "summary.md"),
                      "--sarif", str(work / "gate.sarif"))
    _held(hostile, obs)
    assert obs.returncode in (2, 3), obs.describe()


def test_stale_results_committed_to_the_tree_are_not_this_runs(hostile: HostileRepo, work: Path) -> None:
    """A clean SARIF committed under mlsec-results/ (no run id) must not stand in for a stage."""
    obs = observe.run(hostile, work, "gate", "--sarif-dir", str(hostile.root / "mlsec-results" / "sarif"),
                      "--run-id", "run-under-test", "--expect-stage", "code-scan",
                      "--verdict", str(work / "verdict.json"), "--summary", str(work / "summary.md"),
                      "--sarif", str(work / "gate.sarif"))
    _held(hostile, obs)
    assert obs.returncode == 3, obs.describe()
    kinds = {v["kind"] for v in json.loads((work / "verdict.json").read_text())["violations"]}
    assert "sarif-stale" in kinds or "stage-missing" in kinds, kinds


def test_sbom_reads_no_fifo_link_or_secret(hostile: HostileRepo, work: Path) -> None:
    obs = observe.run(hostile, work, "sbom", str(hostile.root), "--out", str(work / "sbom.cdx.json"),
                      "--model", str(hostile.root / "models"), "--digest-cache", str(work / "digests.json"))
    _held(hostile, obs)
    assert obs.returncode in (0, 2), obs.describe()


def test_sign_refuses_after_a_red_verdict(hostile: HostileRepo, work: Path, tmp_path: Path) -> None:
    key = key_pair(tmp_path)
    verdict = tmp_path / "verdict.json"
    verdict.write_text(json.dumps({"verdict": "fail", "violations": [{"kind": "threshold"}]}))
    obs = observe.run(hostile, work, "sign", "--backend", "key", "--key", str(key), "--verdict", str(verdict),
                      str(hostile.root / "models" / "model.pkl"))
    _held(hostile, obs)
    assert obs.returncode != 0, obs.describe()
    assert not list(hostile.root.glob("models/*.sigstore.json")) and not [
        p for p in obs.files if p.name.endswith(".sigstore.json")]


def test_verify_fails_on_unsigned_hostile_files(hostile: HostileRepo, work: Path, tmp_path: Path) -> None:
    pub = key_pair(tmp_path).with_suffix(".pub")
    obs = observe.run(hostile, work, "verify", "--public-key", str(pub), str(hostile.root / "models" / "model.pkl"),
                      str(hostile.root / "links" / "outside.pkl"))
    _held(hostile, obs)
    assert obs.returncode != 0, obs.describe()


def test_policy_validate_on_the_prs_policy(hostile: HostileRepo, work: Path) -> None:
    obs = observe.run(hostile, work, "policy", "validate", str(hostile.permissive_policy))
    _held(hostile, obs)
    assert obs.returncode == 2, obs.describe()


def test_notebook_scan_holds_on_the_hostile_tree(hostile: HostileRepo, work: Path) -> None:
    # In this module so it shares the hostile tree (building and removing it costs more than the scan).
    sarif = work / "notebook-scan.sarif"
    obs = observe.run(hostile, work, "notebook-scan", str(hostile.root), "--sarif", str(sarif))
    _held(hostile, obs)
    assert obs.returncode == 0, obs.describe()
    gaps = _sarif(obs, "notebook-scan.sarif")["runs"][0]["properties"]["mlsec-coverage"]["gaps"]
    assert any(g["kind"] == "limit-reached" for g in gaps), gaps  # the ~1,000-deep folder: said, never silent


def test_data_scan_holds_on_the_hostile_tree(hostile: HostileRepo, work: Path) -> None:
    sarif = work / "data-scan.sarif"
    obs = observe.run(hostile, work, "data-scan", str(hostile.root), "--sarif", str(sarif))
    _held(hostile, obs)
    assert obs.returncode == 0, obs.describe()
    gaps = _sarif(obs, "data-scan.sarif")["runs"][0]["properties"]["mlsec-coverage"]["gaps"]
    assert any(g["kind"] == "limit-reached" for g in gaps), gaps


def test_build_lint_holds_on_the_hostile_tree(hostile: HostileRepo, work: Path) -> None:
    # --lint-only: the hostile tree's Dockerfile is linted, never built (a build runs its RUN steps).
    obs = observe.run(hostile, work, "build", str(hostile.root), "--lint-only", "--sarif", str(work / "build.sarif"))
    _held(hostile, obs)
    assert obs.returncode == 0, obs.describe()
    rules = _rules(_sarif(obs, "build.sarif"))
    assert {"dockerfile/secret-arg-env", "dockerfile/root-user"} <= rules, rules


def test_image_scan_holds_on_the_hostile_tree(hostile: HostileRepo, work: Path) -> None:
    # A folder that is not an OCI layout is scanned as a root filesystem (trivy rootfs), from a folder of ours.
    obs = observe.run(hostile, work, "image-scan", str(hostile.root), "--vuln-db", "skip",
                      "--sarif", str(work / "image-scan.sarif"))
    _held(hostile, obs)
    assert obs.returncode == 0, obs.describe()
    assert "trivy/secret/github-pat" in _rules(_sarif(obs, "image-scan.sarif"))
