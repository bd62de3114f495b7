"""`.mlsec.yml` (run_config.py): the workflows' inputs as keys, checked, with errors naming file, line and key."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from mlsec_actions import catalog, cli, run_config
from mlsec_actions.stages import STAGE_IDS

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = ("mlsecops.yml", "devsecops.yml")
STAGES = frozenset(catalog.stage_ids()) | frozenset(STAGE_IDS)  # what mlsec run passes


def _inputs(name: str) -> dict[str, dict[str, object]]:
    doc = yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())
    trigger = doc.get(True) or doc["on"]  # PyYAML reads the key `on` as True
    inputs: dict[str, dict[str, object]] = trigger["workflow_call"]["inputs"]
    return inputs


def test_every_workflow_input_is_a_config_key_and_back() -> None:
    keys = {k.name: k for k in run_config.KEYS}
    seen: set[str] = set()
    for workflow in WORKFLOWS:
        for name, spec in _inputs(workflow).items():
            assert name in keys, f"{workflow} input {name} has no .mlsec.yml key (run_config.KEYS)"
            assert (spec.get("type") == "boolean") == (keys[name].kind == "flag"), name
            seen.add(name)
    assert set(keys) == seen, f"config keys that no workflow takes: {sorted(set(keys) - seen)}"
    for k in run_config.KEYS:  # each key says what mlsec run does with it
        assert k.use in ("run", "stage", "ci", "job")
        assert bool(k.stage) == (k.use in ("stage", "job")) and bool(k.option) == (k.use == "stage")
        if k.use == "stage":
            assert k.stage in STAGES


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".mlsec.yml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "where", "problem"), [
    ("policy: strict\nvuln-db: skp\n", 2, "vuln-db: 'skp' is not one of auto, download, skip"),
    ("policy: strict\n\npolcy: default\n", 3, "polcy: not a workflow input or a stage id"),
    ("models:\n  - a\n  - {x: 1}\n", 3, "models[1]: expected text, got dict"),
    ("upload-sarif: maybe\n", 1, "upload-sarif: expected true or false, got str"),
    ("code-scan: [1, 2]\n", 1, "code-scan: expected a mapping of option names to values, got list"),
    ("signing-backend: gpg\n", 1, "signing-backend: 'gpg' is not one of key, sigstore"),
    ("path: |\n  a\n  b\n", 1, "path: mlsec run scans one folder"),
    ("policy: a\npolicy: b\n", 2, "policy: duplicate key"),
    ("policy: [unclosed\n", 2, "not valid YAML"),
    ("- a\n- b\n", 1, "(top): expected"),
])
def test_bad_config_names_file_line_and_key(tmp_path: Path, text: str, where: int, problem: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(cli.InputError) as caught:
        run_config.load(path, "--config", STAGES)
    message = caught.value.diagnostics()
    assert message.startswith(f"{path}:{where}"), message
    assert problem in message and "\n" not in message


def test_config_values_stage_options_and_what_is_not_used_locally(tmp_path: Path) -> None:
    text = ("policy: policy.yml\nmodels: |\n  models/a\n  models/b\ndatasets: [data/train.csv]\nvuln-db: skip\n"
            "eval-metrics: [m1.json, m2.json]\neval-predictions: preds.csv\nupload-sarif: false\nlock: mlsec.lock\n"
            "instance: x\ncode-scan:\n  timeout: 30\n")
    path = _write(tmp_path, text)
    cfg = run_config.load(path, "project", STAGES)
    assert cfg.sha256 == hashlib.sha256(text.encode()).hexdigest() and cfg.path == path.resolve()
    assert cfg.items("models") == ["models/a", "models/b"] and cfg.items("datasets") == ["data/train.csv"]
    assert cfg.text("policy") == "policy.yml" and "code-scan" not in cfg.values
    root = tmp_path / "proj"
    assert cfg.stage_args(root) == {
        "code-scan": ("--vuln-db", "skip"),
        "evaluate": ("--metrics", str(root / "m1.json"), "--metrics", str(root / "m2.json"),
                     "--predictions", str(root / "preds.csv")),
    }
    assert cfg.unused() == ["config upload-sarif: used by the workflows only",
                            "config lock: the fetch job is not run by mlsec run (run `mlsec fetch` yourself)",
                            "config instance: used by the workflows only"]
    assert cfg.record() == {"source": "project", "path": str(path.resolve()), "sha256": cfg.sha256}


def test_project_config_is_found_on_a_laptop_but_never_in_actions(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, "policy: strict\n")
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    assert run_config.find(tmp_path, None, STAGES).source == "project"
    assert run_config.find(tmp_path, None, STAGES, discover=False) is run_config.NO_CONFIG
    monkeypatch.setenv("GITHUB_ACTIONS", "true")  # CI hands the base commit's copy with --config
    assert run_config.find(tmp_path, None, STAGES) is run_config.NO_CONFIG
    (tmp_path / "base").mkdir()
    given = _write(tmp_path / "base", "policy: default\n")
    assert run_config.find(tmp_path, given, STAGES).source == "--config"


def test_a_fifo_or_huge_config_is_refused(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / ".mlsec.yml"
    os.mkfifo(fifo)
    with pytest.raises(cli.InputError, match="not a regular file"):
        run_config.find(tmp_path, None, STAGES)


def test_stages_read_the_same_file_beside_the_workflow_keys(tmp_path: Path) -> None:
    # In CI the same .mlsec.yml reaches every stage (`config` input): the workflow keys must not upset them.
    path = _write(tmp_path, "policy: strict\nmodels: [m]\ncode-scan:\n  vuln-db: skip\n  timeout: 30\n")
    sub = cli.stage_parsers(["code-scan"])["code-scan"]
    assert cli.config_defaults(sub, "code-scan", path) == {"vuln_db": "skip", "timeout": 30.0}
    bad = _write(tmp_path, "policy: strict\ncode-scan:\n  vuln-dbb: skip\n")
    with pytest.raises(cli.UsageError, match=r"\.mlsec\.yml:3: code-scan\.vuln-dbb: unknown option"):
        cli.config_defaults(sub, "code-scan", bad)


def test_mlsec_run_with_a_bad_config_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    _write(proj, "models: [a]\nvuln-db: nope\n")
    out = tmp_path / "out"
    assert cli.main(["run", str(proj), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{proj / '.mlsec.yml'}:2: vuln-db: 'nope' is not one of" in err
    assert not out.exists()  # nothing ran
    assert cli.main(["run", str(proj), "--out", str(out), "--no-project-config", "--only", "nope"]) == 2
    assert "nope: not a scan stage of the mlsecops pipeline" in capsys.readouterr().err


def test_training_log_and_trust_policy_keys(tmp_path: Path) -> None:
    # eval-training-log is evaluate's --training-log, read from the project root like the other eval-* files;
    # trust-policy belongs to the fetch, verify and publish jobs, which mlsec run does not run.
    path = _write(tmp_path, "eval-training-log: train/log.jsonl\ntrust-policy: .github/trust.yml\n"
                            "publish-identity: https://github.com/a/b/.github/workflows/r.yml@refs/heads/main\n")
    cfg = run_config.load(path, "project", STAGES)
    root = tmp_path / "proj"
    assert cfg.stage_args(root) == {"evaluate": ("--training-log", str(root / "train" / "log.jsonl"))}
    assert cfg.unused() == [  # in KEYS' order
        "config publish-identity: the publish job is not run by mlsec run (run `mlsec publish` yourself)",
        "config trust-policy: the verify job is not run by mlsec run (run `mlsec verify` yourself)"]


def test_an_alias_bomb_config_is_refused_before_it_expands(tmp_path: Path) -> None:
    """Nine levels of nine aliases would be 9**9 strings: the reader's alias limits stop it, exit 2 with the file."""
    lines = ["a0: &a0 x"] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = _write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(cli.InputError) as caught:
        run_config.load(path, "--config", STAGES)
    message = caught.value.diagnostics()
    assert message.startswith(str(path)) and "not valid YAML" in message and "\n" not in message, message
