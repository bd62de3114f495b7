"""`mlsec run` with `notify-channels` in `.mlsec.yml` ends with notify, whose outcome never changes the run's exit
code; a bad channel name stops the run before it starts. The receiver is a loopback recorder (a stand-in for
the caller's webhook endpoint)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.notify_servers import recorder

KEY = "run-hook-hmac-key-0123456789"


@pytest.mark.parametrize("status", [200, 500])
def test_mlsec_run_ends_with_notify_and_keeps_its_exit_code(tmp_path: Path, example_project: Path, status: int,
                                                            run_mlsec) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "results"
    with recorder(status=status) as rec:
        (example_project / ".mlsec.yml").write_text(
            f"notify-channels: [webhook]\nnotify:\n  webhook-url: {rec.url}/hook\n  retries: 1\n")
        proc = run_mlsec("run", str(example_project), "--out", str(out), "--only", "data-scan",
                         env={"MLSEC_WEBHOOK_SECRET": KEY})
    record = json.loads((out / "run.json").read_text())
    assert proc.returncode == record["exit-code"] != 0, proc.stderr  # the gate's failure, not notify's
    assert len(rec.seen) == (1 if status == 200 else 2)
    body = rec.seen[0].json()
    assert isinstance(body, dict) and body["verdict"] == json.loads((out / "verdict.json").read_text())["verdict"]
    assert body["run_id"] == record["run-id"] and "data-scan" in {s["stage"] for s in body["stages"]}
    assert ("notify: 1 sent, 0 failed" if status == 200 else "notify: warning: webhook") in proc.stderr
    assert KEY not in proc.stderr + proc.stdout


def test_a_bad_channel_in_the_config_stops_the_run_before_it_starts(tmp_path: Path, example_project: Path,
                                                                    run_mlsec) -> None:  # type: ignore[no-untyped-def]
    (example_project / ".mlsec.yml").write_text("notify-channels: [teams]\n")
    out = tmp_path / "results"
    proc = run_mlsec("run", str(example_project), "--out", str(out))
    assert proc.returncode == 2 and "notify-channels: --channel: unknown channel 'teams'" in proc.stderr
    assert proc.stderr.count("\n") == 1 and not out.exists()
