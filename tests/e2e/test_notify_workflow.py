"""The mlsecops workflow under act with `notify-channels: webhook`: the notify job runs after the gate (which
fails on the example's deliberate mistakes), collects the stages' SARIF and the last gate's verdict from the
run's artifacts, and POSTs one signed summary to a loopback recorder (a stand-in for the caller's endpoint),
with the secret from workflow_call `secrets:` never in the log. The job succeeds although the gate failed."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from tests.e2e.conftest import EXAMPLE, WORKFLOW, run_example
from tests.notify_servers import recorder

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(name="e2e-act")]

KEY = "e2e-notify-hmac-key-0123456789abcdef"


def test_notify_job_posts_the_runs_signed_summary(tmp_path: Path) -> None:
    workflow = (EXAMPLE / WORKFLOW).read_text(encoding="utf-8")
    workflow = workflow.replace("      path: .\n", "      path: .\n      config: .mlsec.yml\n"
                                "      notify-channels: webhook\n", 1)
    hook_secret = "      notify-webhook-secret: ${{ secrets.HOOK_KEY }}\n"
    workflow = workflow.replace("    secrets:\n", "    secrets:\n" + hook_secret, 1)
    assert "notify-channels" in workflow and "notify-webhook-secret" in workflow
    with recorder() as rec:
        run = run_example(tmp_path, files={str(WORKFLOW): workflow,
                                           ".mlsec.yml": f"notify:\n  webhook-url: {rec.url}/hook\n"},
                          secrets={"HOOK_KEY": KEY})
    assert run.job_result("notify") == "succeeded", run.log[-4000:]
    hooks = [s for s in rec.seen if s.path == "/hook"]
    assert len(hooks) == 1, run.log[-4000:]
    hook = hooks[0]
    stamp = hook.headers["x-mlsec-timestamp"]
    expected = hmac.new(KEY.encode(), stamp.encode() + b"." + hook.body, hashlib.sha256).hexdigest()
    assert hook.headers["x-mlsec-signature"] == f"sha256={expected}"
    body = json.loads(hook.body)
    assert body["verdict"] == "fail" and body["violations"] > 0 and body["run_id"]
    assert {"code-scan", "model-scan"} <= {s["stage"] for s in body["stages"]}
    assert KEY not in run.log
