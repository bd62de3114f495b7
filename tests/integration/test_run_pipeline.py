"""`mlsec run`: the local pipeline on the example project, with real scanners, gate, SBOM and key signing."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest

from mlsec_actions import catalog, outputs, pipeline


def _key(tmp_path: Path) -> tuple[Path, Path]:
    key, pub = tmp_path / "signing.pem", tmp_path / "signing.pub"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)], check=True)
    subprocess.run(["openssl", "ec", "-in", str(key), "-pubout", "-out", str(pub)], check=True, capture_output=True)
    return key, pub


def test_plan_comes_from_the_catalog() -> None:
    for name in catalog.PIPELINES:
        p = pipeline.plan(Path("/p"), Path("/o"), name, sign_key=Path("/k.pem"))
        rows = catalog.pipeline(name)
        assert p.scans == tuple(s.id for s in rows if s.implemented and s.kind is catalog.Kind.SCAN)
        assert p.unavailable == tuple(s.id for s in rows if not s.implemented)
        assert {p.gate, p.sbom, p.sign, *p.not_local} == {s.id for s in rows if s.implemented} - set(p.scans)
        assert p.gate == "gate" and p.sign_key == Path("/k.pem")
    ml = pipeline.plan(Path("/p"), Path("/o"), "mlsecops")
    assert ml.scans == ("code-scan", "notebook-scan", "data-scan", "evaluate", "model-scan")
    assert ml.unavailable == ()  # every stage of both pipelines is built (notify is in neither)
    assert pipeline.plan(Path("/p"), Path("/o"), "devsecops").unavailable == ()
    assert ml.not_local == ("precommit", "fetch", "train", "verify", "publish")
    assert pipeline.plan(Path("/p"), Path("/o"), "devsecops").scans == (
        "code-scan", "image-scan", "dast", "infra-scan", "runtime-probe")
    # Every run gets its own id.
    assert ml.run_id != pipeline.plan(Path("/p"), Path("/o"), "mlsecops").run_id


def test_leaky_example_goes_red_and_nothing_is_signed(tmp_path: Path, example_project: Path,
                                                       run_mlsec) -> None:  # type: ignore[no-untyped-def]
    key, _ = _key(tmp_path)
    out = tmp_path / "results"
    proc = run_mlsec("run", str(example_project), "--out", str(out), "--sign-key", str(key),
                     "--model", str(example_project / "models"))
    assert proc.returncode == 3, proc.stderr
    assert "[code-scan] ok" in proc.stderr and "[model-scan] ok" in proc.stderr
    assert "[notebook-scan] ok" in proc.stderr and "[precommit] not run by mlsec run" in proc.stderr
    assert "[sign] skipped" in proc.stderr
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["verdict"] == "fail"
    assert {p.name for p in (out / "sarif").iterdir()} == {"code-scan.sarif", "notebook-scan.sarif", "data-scan.sarif",
                                                           "evaluate.sarif", "model-scan.sarif"}
    assert not list(out.rglob("*.sigstore.json"))
    # One run id everywhere: the record, the gate's expectation and every SARIF.
    record = json.loads((out / "run.json").read_text())
    assert verdict["run_id"] == record["run-id"] and record["exit-code"] == 3
    assert sorted(verdict["expected_stages"]) == ["code-scan", "data-scan", "evaluate", "model-scan", "notebook-scan"]
    for f in (out / "sarif").iterdir():
        assert json.loads(f.read_text())["runs"][0]["properties"]["mlsec-run-id"] == record["run-id"]


def test_waived_example_goes_green_signs_and_verifies(tmp_path: Path, example_project: Path,
                                                      run_mlsec) -> None:  # type: ignore[no-untyped-def]
    key, pub = _key(tmp_path)
    policy = tmp_path / "policy.yml"
    policy.write_text(
        "version: 1\nrequired-stages: [code-scan, model-scan]\n"
        "thresholds:\n  - {id: no-high, stage: '*', severity: high, max: 0}\n"
        "waivers:\n  - {id: demo, rule: 'trivy/*', reason: deliberately leaky demo, owner: '@ml',"
        f" expires: {dt.date.today() + dt.timedelta(days=30)}}}\n")  # the gate allows waivers of up to 90 days
    out = tmp_path / "results"
    models = example_project / "models"
    proc = run_mlsec("run", str(example_project), "--out", str(out), "--policy", str(policy), "--sign-key", str(key),
                     "--model", str(models), "--model-card", str(example_project / "model-card.yml"))
    assert proc.returncode == 0, proc.stderr
    sbom = json.loads((out / "sbom.cdx.json").read_text())
    assert any(c.get("type") == "machine-learning-model" for c in sbom["components"])
    # Dependencies' licences come from code-scan's licence inventory (docs/sbom.md#sbom-licenses).
    assert {"name": "mlsec:sbom:licenses-from", "value": str(out / "sarif" / "code-scan.sarif")} in sbom["metadata"][
        "properties"]
    verify = run_mlsec("verify", "--public-key", str(pub), str(models), str(out / "sbom.cdx.json"),
                       "--attestation", str(out / "gate.intoto.sigstore.json"), "--base", str(tmp_path))
    assert verify.returncode == 0, verify.stderr
    # A model byte changed after signing is caught, by name.
    weights = models / "linear.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    tampered = run_mlsec("verify", "--public-key", str(pub), str(models), "--base", str(tmp_path))
    assert tampered.returncode == 1
    assert "linear.safetensors" in tampered.stderr


@pytest.mark.parametrize(("args", "problem"), [
    (["--policy", "nope.yml"], "policy file not found"),
    (["--model", "no-model"], "model not found"),
])
def test_bad_input_is_exit_2(tmp_path: Path, example_project: Path, run_mlsec, args: list[str],
                             problem: str) -> None:  # type: ignore[no-untyped-def]
    proc = run_mlsec("run", str(example_project), "--out", str(tmp_path / "o"), *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert problem in proc.stderr
    assert not (tmp_path / "o").exists()


def test_builtin_policy_name_is_accepted(tmp_path: Path, example_project: Path,
                                         run_mlsec) -> None:  # type: ignore[no-untyped-def]
    # Issue 8, seen 9: `mlsec run --policy strict` said "strict: policy file not found".
    out = tmp_path / "o"
    proc = run_mlsec("run", str(example_project), "--pipeline", "devsecops", "--out", str(out), "--policy", "strict")
    assert proc.returncode == 3, proc.stderr
    assert json.loads((out / "verdict.json").read_text())["policy"]["path"].endswith("strict.yml")


def test_the_network_stages_get_the_runs_policy(tmp_path: Path, example_project: Path,
                                                run_mlsec) -> None:  # type: ignore[no-untyped-def]
    # infra-scan contacts only hosts its policy lists: mlsec run must hand it the run's policy, or every
    # configured target is refused (exit 2) and the run fails although the policy allows the host.
    policy = tmp_path / "policy.yml"
    policy.write_text("version: 1\nthresholds: []\ninfra-scan:\n  hosts:\n    - host: 127.0.0.1\n"
                      "      allow:\n        - ports: 1-65535\n")
    config = tmp_path / "mlsec.yml"
    config.write_text("infra-targets: ['127.0.0.1:9']\n")
    out = tmp_path / "o"
    proc = run_mlsec("run", str(example_project), "--pipeline", "devsecops", "--only", "infra-scan", "--no-report",
                     "--out", str(out), "--policy", str(policy), "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "sarif" / "infra-scan.sarif").read_text())
    (nmap_run,) = [i for i in doc["runs"][0]["invocations"] if i["properties"]["tool"] == "nmap"]
    assert nmap_run["executionSuccessful"] and "no --target" not in json.dumps(nmap_run)


def test_scanned_project_is_never_imported(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    # Issue 9, seen 2: stages ran as `python -m mlsec_actions` with the project as cwd, importing proj/argparse.py.
    proj = tmp_path / "proj"
    proj.mkdir()
    canary = tmp_path / "PWNED"
    payload = f"open({str(canary)!r}, 'a').write(__name__ + '\\n')\n"
    for name in ("argparse.py", "json.py", "yaml.py", "sitecustomize.py", "usercustomize.py", "mlsec_actions.py"):
        (proj / name).write_text(payload)
    (proj / "pip").mkdir()
    (proj / "pip" / "__main__.py").write_text(payload)
    out = tmp_path / "o"
    proc = run_mlsec("run", str(proj), "--out", str(out), "--policy", "default", cwd=proj,
                     env={"PYTHONSTARTUP": str(proj / "argparse.py")})
    assert not canary.exists(), canary.read_text()
    assert proc.returncode in (0, 3), proc.stderr
    assert json.loads((out / "run.json").read_text())["stages"]


def test_second_run_into_a_locked_folder_fails_at_once(tmp_path: Path, example_project: Path,
                                                       run_mlsec) -> None:  # type: ignore[no-untyped-def]
    # Issue 9, seen 11: two runs into one --out signed one project with the other's clean SARIF.
    out = tmp_path / "o"
    with outputs.lock(out):
        proc = run_mlsec("run", str(example_project), "--out", str(out), timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "another mlsec run, gate or sign is writing" in proc.stderr
    assert not (out / "sarif").exists()


def test_two_concurrent_runs_never_mix(tmp_path: Path, example_project: Path, mlsec_bin: str) -> None:
    out = tmp_path / "o"
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("MLSEC_", "GITHUB_"))}
    first = subprocess.Popen([mlsec_bin, "run", str(example_project), "--out", str(out)], env=env,
                             stderr=subprocess.PIPE, text=True)
    lock = out / outputs.LOCK_NAME
    import time

    deadline = time.monotonic() + 30
    while not (out / "sarif").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run([mlsec_bin, "run", str(example_project), "--out", str(out)], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    first.communicate(timeout=300)
    assert lock.exists()
    assert second.returncode == 2 and "another mlsec run" in second.stderr
    assert first.returncode == 3
    record = json.loads((out / "run.json").read_text())
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["run_id"] == record["run-id"]


def test_results_of_an_earlier_run_are_removed_before_this_one(tmp_path: Path, example_project: Path,
                                                                run_mlsec) -> None:  # type: ignore[no-untyped-def]
    # Issue 8, seen 1: a stale sarif/model-scan.sarif from an earlier run was read as this run's result.
    out = tmp_path / "o"
    (out / "sarif").mkdir(parents=True)
    (out / "sarif" / "model-scan.sarif.bad").write_text("{}")
    (out / "sarif" / "notebook-scan.sarif.bad").write_text("{}")
    (out / "verdict.json").write_text('{"verdict": "pass"}')
    (out / "keep.txt").write_text("not ours")
    proc = run_mlsec("run", str(example_project), "--pipeline", "devsecops", "--out", str(out))
    assert proc.returncode == 3, proc.stderr
    assert sorted(p.name for p in (out / "sarif").iterdir()) == [
        "code-scan.sarif", "dast.sarif", "image-scan.sarif", "infra-scan.sarif", "runtime-probe.sarif"]
    assert json.loads((out / "verdict.json").read_text())["verdict"] == "fail"
    assert (out / "keep.txt").read_text() == "not ours"


def test_stage_error_with_a_passing_gate_is_still_non_zero_and_unsigned(
        tmp_path: Path, example_project: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    key, _ = _key(tmp_path)
    policy = tmp_path / "lenient.yml"
    policy.write_text("version: 1\ntool-errors: warn\nthresholds: []\n")
    # modelscan is only given files it reads: a benign pickle makes sure it is asked to run.
    (example_project / "models" / "extra.pkl").write_bytes(b"\x80\x04K\x01.")
    out = tmp_path / "o"
    proc = run_mlsec("run", str(example_project), "--out", str(out), "--policy", str(policy), "--sign-key", str(key),
                     env={"MLSEC_MODELSCAN_BIN": str(tmp_path / "no-such-modelscan")})
    record = json.loads((out / "run.json").read_text())
    gate = next(s for s in record["stages"] if s["stage"] == "gate")
    assert gate["exit-code"] == 0  # the lenient policy passed ...
    assert proc.returncode == 1, proc.stderr  # ... but model-scan had a tool error: the run is not green
    assert "[sign] skipped" in proc.stderr and not list(out.rglob("*.sigstore.json"))


def test_non_utf8_model_name_goes_red_and_is_not_signed(tmp_path: Path, example_project: Path,
                                                        run_mlsec) -> None:  # type: ignore[no-untyped-def]
    # Issue 8, seen 1: open(b'p/w\xe9ights.pkl', 'wb') crashed model-scan in sarif.py fingerprints; no SARIF was
    # written, the gate passed and --sign-key signed, exit 0.
    import os

    key, _ = _key(tmp_path)
    evil = (b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94"
            b"\x8c\x02id\x94\x85\x94R\x94.")
    with open(os.fsencode(example_project) + b"/w\xe9ights.pkl", "wb") as f:  # noqa: PTH123 -- a bytes name on purpose
        f.write(evil)
    policy = tmp_path / "models-only.yml"
    policy.write_text("version: 1\nrequired-stages: [model-scan]\nthresholds:\n"
                      "  - {id: no-high, stage: model-scan, severity: high, max: 0}\n")
    out = tmp_path / "o"
    proc = run_mlsec("run", str(example_project), "--out", str(out), "--policy", str(policy), "--sign-key", str(key))
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr and "[model-scan] ok" in proc.stderr
    sarif = json.loads((out / "sarif" / "model-scan.sarif").read_bytes().decode("utf-8"))
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in sarif["runs"][0]["results"]}
    assert "w%E9ights.pkl" in uris
    assert not list(out.rglob("*.sigstore.json"))
