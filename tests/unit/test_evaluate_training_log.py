"""evaluate's early-stopping log: the kept epoch's metrics count (the best epoch's when early stopping restored
it, else the last), and every inconsistent or hostile log is refused whole, exit 2, file and line named."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlsec_actions import cli
from mlsec_actions.analyzers import training_log as tl
from mlsec_actions.errors import InputError

EPOCHS: list[dict[str, object]] = [
    {"epoch": 1, "val_loss": 0.5, "val_accuracy": 0.80}, {"epoch": 2, "val_loss": 0.3, "val_accuracy": 0.90},
    {"epoch": 3, "val_loss": 0.4, "val_accuracy": 0.85}, {"epoch": 4, "val_loss": 0.45, "val_accuracy": 0.7}]


def _log(*extra: dict[str, object], epochs: list[dict[str, object]] = EPOCHS) -> bytes:
    return "".join(json.dumps(d) + "\n" for d in (*epochs, *extra)).encode()


def test_restored_best_epoch_counts_not_the_last() -> None:
    got = tl.parse(_log({"best_epoch": 2, "restored": True, "monitor": "val_loss"}), "log.jsonl")
    assert got.values == {"val_loss": 0.3, "val_accuracy": 0.9}
    assert (got.epoch, got.epochs, got.best_epoch, got.restored, got.monitor) == (2, 4, 2, True, "val_loss")


def test_not_restored_or_no_marker_means_the_last_epoch() -> None:
    assert tl.parse(_log({"best_epoch": 2, "restored": False}), "l").values == {"val_loss": 0.45,
                                                                                 "val_accuracy": 0.7}
    got = tl.parse(_log(), "l")
    assert got.epoch == 4 and got.best_epoch is None and not got.restored


def test_monitor_higher_is_better_and_ties_are_consistent() -> None:
    assert tl.parse(_log({"best_epoch": 2, "restored": True, "monitor": "val_accuracy"}), "l").epoch == 2
    tie: list[dict[str, object]] = [{"epoch": 0, "auc": 0.9}, {"epoch": 1, "auc": 0.9}]
    assert tl.parse(_log({"best_epoch": 0, "restored": True, "monitor": "auc"}, epochs=tie), "l").values == {
        "auc": 0.9}


@pytest.mark.parametrize(("lines", "line", "problem"), [
    ([*EPOCHS[:2], {"epoch": 2, "val_loss": 0.1}], 3, "epoch 2 after epoch 2 (line 2)"),
    ([*EPOCHS[:2], {"epoch": 1, "val_loss": 0.1}], 3, "epochs must increase"),
    ([*EPOCHS, {"best_epoch": 9, "restored": True}], 5, "best_epoch 9 is not an epoch"),
    ([*EPOCHS, {"best_epoch": 0, "restored": True}], 5, "best_epoch 0 is not an epoch"),
    ([*EPOCHS, {"best_epoch": -1, "restored": True}], 5, "integer from 0"),
    ([*EPOCHS, {"best_epoch": True, "restored": True}], 5, "integer from 0"),
    ([*EPOCHS, {"best_epoch": 2.0, "restored": True}], 5, "integer from 0"),
    ([*EPOCHS, {"best_epoch": 2, "restored": "yes"}], 5, "restored must be true or false"),
    ([*EPOCHS, {"best_epoch": 2}], 5, "restored must be true or false"),
    ([*EPOCHS, {"best_epoch": 3, "restored": True, "monitor": "val_loss"}], 5,
     "best_epoch 3 has val_loss 0.4, but epoch 2 (line 2) has a better 0.3"),
    ([*EPOCHS, {"best_epoch": 4, "restored": True, "monitor": "val_accuracy"}], 5,
     "but epoch 1 (line 1) has a better 0.8"),
    ([*EPOCHS, {"best_epoch": 2, "restored": True, "monitor": "f1"}], 5, "has no f1"),
    ([*EPOCHS, {"best_epoch": 2, "restored": True, "monitor": 3}], 5, "monitor must be a metric name"),
    ([*EPOCHS, {"best_epoch": 2, "restored": True, "patience": 3}], 5, "unknown key 'patience'"),
    ([*EPOCHS, {"best_epoch": 2, "restored": True}, {"best_epoch": 2, "restored": True}], 6, "a second"),
    ([EPOCHS[0], {"best_epoch": 1, "restored": True}, EPOCHS[1]], 3, "an epoch after the early-stopping line"),
    ([{"epoch": 1}], 1, "needs 1 to"),
    ([{"epoch": 1, "loss": "0.2"}], 1, "loss is not a number (str)"),
    ([{"epoch": 1, "loss": None}], 1, "not a number (NoneType)"),
    ([{"epoch": 1, "loss": False}], 1, "not a number (bool)"),
    ([{"epoch": 1, "loss": [0.1]}], 1, "not a number (list)"),
    ([{"epoch": 1, "bad name": 0.1}], 1, "not a metric name"),
    ([{"epoch": "1", "loss": 0.1}], 1, "integer from 0"),
    ([{"epoch": 10**10, "loss": 0.1}], 1, "integer from 0"),
    ([{"step": 1, "loss": 0.1}], 1, "neither an epoch line"),
])
def test_inconsistent_logs_are_refused_with_the_line(lines: list[dict[str, object]], line: int,
                                                     problem: str) -> None:
    with pytest.raises(InputError, match=f"line {line}: .*") as e:
        tl.parse(_log(epochs=lines), "runs/log.jsonl")
    assert problem in str(e.value) and "runs/log.jsonl" in str(e.value)


@pytest.mark.parametrize(("text", "problem"), [
    (b'{"epoch": 1, "loss": NaN}\n', "NaN is not a metric value"),
    (b'{"epoch": 1, "loss": Infinity}\n', "Infinity is not a metric value"),
    (b'{"epoch": 1, "loss": -Infinity}\n', "-Infinity is not a metric value"),
    (b'{"epoch": 1, "loss": 1e999}\n', "loss is infinite"),
    (b'{"epoch": 1, "loss": ' + b"9" * 400 + b"}\n", "loss is infinite"),
    (b'{"epoch": 1, "loss": ' + b"9" * 5000 + b"}\n", "not valid JSON"),
    (b'{"epoch": 1, "loss": 0.1, "loss": 0.9}\n', "duplicate key 'loss'"),
    (b'{"epoch": 1, "epoch": 7, "loss": 0.1}\n', "duplicate key 'epoch'"),
    (b'[1, 2]\n', "must be a JSON object"),
    (b'{"epoch": 1, "loss": 0.1\n', "not valid JSON"),
    (b'{"epoch": 1, "l\xff": 0.1}\n', "not valid JSON"),
    (b"[" * 30000 + b"]" * 30000 + b"\n", "nested too deeply"),
    (b'{"epoch": 1, "loss": 0.1, "pad": "' + b"x" * tl.MAX_LINE_BYTES + b'"}\n', "over 65536 bytes"),
])
def test_hostile_lines_are_refused(text: bytes, problem: str) -> None:
    with pytest.raises(InputError, match="line 1: ") as e:
        tl.parse(text, "log.jsonl")
    assert problem in str(e.value)


def test_empty_huge_and_too_many_epochs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no epoch lines"):
        tl.parse(b"\n  \n", "l")
    many = b"".join(b'{"epoch": %d, "loss": 0.5}\n' % i for i in range(tl.MAX_EPOCHS + 1))
    with pytest.raises(InputError, match=f"line {tl.MAX_EPOCHS + 1}: more than {tl.MAX_EPOCHS} epochs"):
        tl.parse(many, "l")
    big = tmp_path / "log.jsonl"
    with big.open("wb") as f:
        f.truncate(tl.MAX_LOG_BYTES + 1)
    with pytest.raises(InputError, match="limit"):
        tl.load(big)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        tl.load(fifo)


def test_evaluate_uses_the_restored_epoch_against_the_policy(tmp_path: Path) -> None:
    """The last epoch's accuracy (0.7) is under the floor, the restored best epoch's (0.9) is over it."""
    log = tmp_path / "log.jsonl"
    log.write_bytes(_log({"best_epoch": 2, "restored": True, "monitor": "val_loss"}))
    policy = tmp_path / "policy.yml"
    policy.write_text("version: 1\nevaluate:\n  metrics:\n    val_accuracy: {min: 0.85}\n")
    sarif = tmp_path / "e.sarif"
    args = ["evaluate", str(tmp_path), "--policy", str(policy), "--training-log", str(log), "--sarif", str(sarif)]
    assert cli.main(args) == 0
    run = json.loads(sarif.read_text())["runs"][0]
    assert run["results"] == []
    assert run["properties"]["metrics"]["val_accuracy"] == 0.9
    assert run["properties"]["training_log"] == {"file": "log.jsonl", "epoch": 2, "epochs": 4, "best_epoch": 2,
                                                 "restored": True, "monitor": "val_loss"}
    log.write_bytes(_log({"best_epoch": 2, "restored": False}))
    assert cli.main(args) == 0
    run = json.loads(sarif.read_text())["runs"][0]
    assert [r["ruleId"] for r in run["results"]] == ["evaluate/metric-below-min"]
    assert "0.7" in run["results"][0]["message"]["text"]


def test_evaluate_refuses_an_inconsistent_log_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(_log({"best_epoch": 7, "restored": True}))
    sarif = tmp_path / "e.sarif"
    assert cli.main(["evaluate", str(tmp_path), "--training-log", str(log), "--sarif", str(sarif)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "log.jsonl" in err and "line 5" in err and "best_epoch 7" in err
    assert not sarif.exists()
