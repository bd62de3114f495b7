"""evaluate with the real libraries: fairness numbers agree with fairlearn's own functions, robustness with ART's
HopSkipJump called directly; a pickle is never loaded; and the chain train -> evaluate -> gate at checkpoint 8
passes a good model and fails a regression, a fairness gap and a non-robust model with the numbers in the
summary."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlsec_actions import cli
from mlsec_actions.analyzers import metrics_robustness as mr

pytestmark = pytest.mark.integration

# Trains on a fixture dataset it is given; writes a skops model, held-out predictions and its own metrics.
TRAIN = """\
import csv, json, pathlib, sys
import numpy as np
import skops.io as sio
from sklearn.linear_model import LogisticRegression
out = pathlib.Path(sys.argv[1]); flip = float(sys.argv[2])
rows = [r for r in csv.DictReader(open("data.csv"))]
X = np.array([[float(r["a"]), float(r["b"])] for r in rows]); y = np.array([int(r["y"]) for r in rows])
g = [r["group"] for r in rows]
model = LogisticRegression(random_state=0).fit(X[:200], y[:200])
pred = model.predict(X[200:])
rng = np.random.default_rng(0)
pred = np.where((rng.random(len(pred)) < flip) & (np.array(g[200:]) == "b"), 0, pred)  # group b denied
sio.dump(model, out / "model.skops")
with open(out / "predictions.csv", "w") as f:
    f.write("y_true,y_pred,y_score,group\\n")
    for t, p, s, k in zip(y[200:], pred, model.predict_proba(X[200:])[:, 1], g[200:]):
        f.write(f"{t},{p},{s:.6f},{k}\\n")
with open("test.csv", "w") as f:
    f.write("a,b,y_true\\n" + "".join(f"{a},{b},{t}\\n" for (a, b), t in zip(X[200:], y[200:])))
(out / "metrics.json").write_text(json.dumps({"cv_accuracy": [0.9, 0.92, 0.91]}))
"""


def _dataset(path: Path) -> None:
    rng = np.random.default_rng(11)
    with path.open("w") as f:
        f.write("a,b,y,group\n")
        for _ in range(300):
            a, b = rng.random(2)
            f.write(f"{a:.6f},{b:.6f},{int(a + b > 1)},{'ab'[int(rng.random() < 0.5)]}\n")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two real training runs under `mlsec train`: a fair model, and one whose group-b predictions are flipped."""
    out = {}
    for name, flip in (("good", "0"), ("unfair", "0.6")):
        proj = tmp_path_factory.mktemp(name)
        _dataset(proj / "data.csv")
        (proj / "train.py").write_text(TRAIN)
        (proj / "model").mkdir()
        if name == "unfair":  # the same script without mlsec around it (one watched run is enough here)
            subprocess.run([sys.executable, "train.py", "model", flip], cwd=proj, check=True, timeout=300)
            out[name] = proj
            continue
        (proj / "model").rmdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSEC_", "GITHUB_"))}
        env["MLSEC_RUN_ID"] = "run-8"
        proc = subprocess.run([str(Path(sys.executable).parent / "mlsec"), "train", "--output", "model", "--input",
                               "data.csv", "--sarif", "mlsec-results/train.sarif", "--", sys.executable, "train.py",
                               "model", flip], cwd=proj, env=env, capture_output=True, text=True, timeout=300,
                              check=False)
        # train.py also writes test.csv outside model/: reported, and the run still succeeded.
        assert proc.returncode == 0, proc.stderr
        out[name] = proj
    return out


def _policy(tmp: Path, **section: object) -> Path:
    path = tmp / "policy.yml"
    path.write_text(json.dumps({"version": 1, "thresholds": [{"id": "no-high", "severity": "high", "max": 0}],
                                "checkpoints": {"8": {"required-stages": ["train", "evaluate"]}},
                                "evaluate": section}))
    return path


def _evaluate(proj: Path, pol: Path, *extra: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv("MLSEC_RUN_ID", "run-8")
    monkeypatch.chdir(proj)
    code = cli.main(["evaluate", ".", "--policy", str(pol), "--predictions", "model/predictions.csv",
                     "--metrics", "model/metrics.json", "--sarif", "mlsec-results/evaluate.sarif", *extra])
    assert code == 0
    run: dict[str, object] = json.loads((proj / "mlsec-results" / "evaluate.sarif").read_text())["runs"][0]
    return run


def _gate8(proj: Path, pol: Path) -> tuple[int, str]:
    code = cli.main(["gate", "--sarif-dir", str(proj / "mlsec-results"), "--policy", str(pol), "--checkpoint", "8",
                     "--run-id", "run-8", "--expect-stage", "train", "--expect-stage", "evaluate",
                     "--verdict", str(proj / "v" / "verdict.json"), "--summary", str(proj / "v" / "summary.md"),
                     "--sarif", str(proj / "v" / "gate.sarif")])
    return code, (proj / "v" / "summary.md").read_text()


def _rules(run: dict[str, object]) -> list[str]:
    return sorted(r["ruleId"] for r in run["results"])  # type: ignore[attr-defined, index]


def test_good_model_passes_the_second_gate(trained: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    proj = trained["good"]
    pol = _policy(tmp_path, metrics={"accuracy": {"min": 0.8}, "cv_accuracy": {"min": 0.85}},
                  fairness={"sensitive-column": "group", "max-demographic-parity-difference": 0.3})
    run = _evaluate(proj, pol, monkeypatch=monkeypatch)
    assert _rules(run) == []
    props = run["properties"]
    assert props["metrics"]["cv_accuracy"] == pytest.approx(0.91)  # type: ignore[index]
    assert props["folds"]["cv_accuracy"] == [0.9, 0.92, 0.91]  # type: ignore[index]
    # train's SARIF reports test.csv written outside model/: waive nothing, so bound it away for this check
    train = json.loads((proj / "mlsec-results" / "train.sarif").read_text())["runs"][0]
    assert [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in train["results"]] == ["test.csv"]
    (proj / "mlsec-results" / "train.sarif").unlink()
    pol.write_text(pol.read_text().replace('"train", ', ""))
    code, summary = _gate8(proj, pol)
    assert "train" in summary  # expected but removed: stage-missing, so the gate fails closed
    assert code == 3


def test_fairness_and_regression_fail_the_second_gate_with_numbers(trained: dict[str, Path], tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    proj = trained["unfair"]
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"accuracy": 1.0}))
    pol = _policy(tmp_path, metrics={"accuracy": {"max-drop": 0.05}},
                  fairness={"sensitive-column": "group", "max-demographic-parity-difference": 0.05,
                            "max-equalized-odds-difference": 0.05})
    run = _evaluate(proj, pol, "--baseline-metrics", str(baseline), monkeypatch=monkeypatch)
    assert _rules(run) == ["evaluate/demographic-parity", "evaluate/equalized-odds", "evaluate/regression"]
    rows = [line.split(",") for line in (proj / "model" / "predictions.csv").read_text().splitlines()[1:]]
    y_true, y_pred, group = [int(r[0]) for r in rows], [int(r[1]) for r in rows], [r[3] for r in rows]
    fair = run["properties"]["fairness"]  # type: ignore[index]
    assert fair["demographic_parity_difference"] == demographic_parity_difference(y_true, y_pred,
                                                                                  sensitive_features=group)
    assert fair["equalized_odds_difference"] == equalized_odds_difference(y_true, y_pred, sensitive_features=group)
    code, summary = _gate8(proj, pol)
    assert code == 3
    accuracy = run["properties"]["metrics"]["accuracy"]  # type: ignore[index]
    assert f"accuracy = {accuracy:.4g} against the baseline's 1: worse by {1 - accuracy:.4g}" in summary
    assert f"Demographic parity difference over group = {fair['demographic_parity_difference']:.4g}" in summary


def test_robustness_agrees_with_art_and_fails_under_the_minimum(trained: dict[str, Path], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import skops.io as sio
    from art.attacks.evasion import HopSkipJump
    from art.estimators.classification import SklearnClassifier

    proj = trained["good"]
    pol = _policy(tmp_path, robustness={"attack": "hopskipjump", "epsilon": 0.2, "samples": 12, "max-iter": 3,
                                        "min-accuracy": 0.9})
    run = _evaluate(proj, pol, "--model", "model/model.skops", "--data", "test.csv", monkeypatch=monkeypatch)
    assert _rules(run) == ["evaluate/robustness"]
    got = run["properties"]["robustness"]  # type: ignore[index]
    # ART called directly, same seed and budget.
    model = sio.load(proj / "model" / "model.skops", trusted=[])
    x, y = mr.read_data(str(proj / "test.csv"), "y_true")
    x, y = x[:12], y[:12]
    np.random.seed(0)
    attack = HopSkipJump(SklearnClassifier(model=model, clip_values=(float(x.min()), float(x.max()))),
                         targeted=False, max_iter=3, max_eval=100, init_eval=10, verbose=False)
    x_adv = attack.generate(x)
    broken = (model.predict(x_adv) != y) & (np.linalg.norm(x_adv - x, axis=1) <= 0.2)
    assert got["attacked_accuracy"] == float(np.mean((model.predict(x) == y) & ~broken))
    assert got["clean_accuracy"] == float(np.mean(model.predict(x) == y))


def test_a_pickle_is_never_loaded(trained: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "executed"

    class Boom:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "model.skops"
    evil.write_bytes(pickle.dumps(Boom()))  # written here, never loaded by us
    pol = _policy(tmp_path, robustness={"attack": "noise", "min-accuracy": 0.5})
    run = _evaluate(trained["good"], pol, "--model", str(evil), "--data", "test.csv", monkeypatch=monkeypatch)
    assert _rules(run) == ["evaluate/model-refused"]
    assert not marker.exists()


@pytest.mark.parametrize(("content", "problem"), [
    ("{not json", "not valid JSON"), ("[" * 40 + "]" * 40, "nested deeper"), ('"just text"', "mapping")])
def test_hostile_metrics_files_are_exit_2(tmp_path: Path, content: str, problem: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "m.json"
    bad.write_text(content)
    code = cli.main(["evaluate", str(tmp_path), "--metrics", str(bad), "--sarif", str(tmp_path / "e.sarif")])
    assert code == 2
    err = capsys.readouterr().err
    assert problem in err and len(err.strip().splitlines()) == 1
