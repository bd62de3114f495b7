"""Who may sign, in both workflows: the trust policy reaches fetch, verify and publish only through
actions/_trusted (on a pull request, the base commit's copy and its keys; otherwise the file of the job's own
checkout); in mlsecops.yml the verify job (ML 9) checks what sign signed before publish may run, and the keyless
signer (publish-identity, publish-issuer) reaches both. devsecops.yml's verify and publish are in
test_workflow_publish.py.

Structure only: the _trusted scripts themselves run under bash in tests/e2e/test_trusted_action.py, and the
pipeline under act in tests/e2e/test_supply_workflow.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ("mlsecops", "devsecops")
RAW = "${{ inputs.trust-policy }}"
TRUSTED = "${{ steps.trusted.outputs.trust-policy }}"
FROM_HEAD = "${{ inputs.pr-policy-from-head }}"
CHECKOUT = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1"
SIGNER_JOBS = [(w, j, j) for w in WORKFLOWS for j in ("fetch", "verify", "publish")]


def _doc(workflow: str = "mlsecops") -> dict[Any, Any]:
    path = ROOT / ".github" / "workflows" / f"{workflow}.yml"
    doc: dict[Any, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return doc


def _step(job: dict[str, Any], uses: str) -> tuple[int, dict[str, Any]]:
    (found,) = [(i, s) for i, s in enumerate(job["steps"]) if s.get("uses") == uses]
    return found


def _action(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "actions" / name / "action.yml").read_text(encoding="utf-8"))
    return doc


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


@pytest.mark.parametrize(("workflow", "job_id", "action"), SIGNER_JOBS)
def test_each_signer_check_gets_the_trusted_copy_not_the_input(workflow: str, job_id: str, action: str) -> None:
    job = _doc(workflow)["jobs"][job_id]
    t, trusted = _step(job, "$/actions/_trusted")
    s, stage = _step(job, f"$/actions/{action}")
    assert t < s and trusted["id"] == "trusted" and trusted["if"] == "inputs.trust-policy != ''"
    # _trusted reads the repository where the job checked it out: the workspace root, or (devsecops' verify and
    # publish, which download the evidence to the root) mlsec-caller/, through its `path` input.
    ((c, checkout),) = [(i, st) for i, st in enumerate(job["steps"]) if str(st.get("uses", "")).startswith(CHECKOUT)]
    assert c < t
    assert "inputs.trust-policy != ''" in checkout.get("if", "inputs.trust-policy != ''")
    assert checkout["with"]["persist-credentials"] is False
    want = {"trust-policy": RAW, "from-head": FROM_HEAD}
    if "path" in checkout["with"]:
        want["path"] = checkout["with"]["path"]
    assert trusted["with"] == want
    assert stage["with"]["trust-policy"] == TRUSTED
    # Nothing another job made is in the workspace yet when the base commit is checked out beside it.
    downloads = [i for i, st in enumerate(job["steps"]) if "download-artifact" in str(st.get("uses", ""))]
    if "path" in trusted["with"]:
        assert downloads and t < min(downloads)


def test_devsecops_keeps_the_trust_policy_apart_from_the_evidence() -> None:
    jobs = _doc("devsecops")["jobs"]
    assert "path" not in _step(jobs["fetch"], "$/actions/_trusted")[1]["with"]  # the lock's checkout is the root
    for job_id in ("verify", "publish"):
        assert _step(jobs[job_id], "$/actions/_trusted")[1]["with"]["path"] == "mlsec-caller", job_id


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_the_raw_input_reaches_nothing_but_trusted(workflow: str) -> None:
    for job_id, job in _doc(workflow)["jobs"].items():
        for step in job.get("steps", []):
            for key, value in {**step.get("with", {}), **step.get("env", {})}.items():
                if "inputs.trust-policy" in str(value):
                    assert step.get("uses") == "$/actions/_trusted" and key == "trust-policy", (job_id, step)
            assert "inputs.trust-policy" not in str(step.get("run", "")), job_id


@pytest.mark.parametrize(("action", "variable"), [("fetch", "MLSEC_INPUT_TRUST_POLICY"),
                                                  ("publish", "MLSEC_TRUST_POLICY"),
                                                  ("verify", "MLSEC_TRUST_POLICY")])
def test_the_actions_take_the_trust_policy_through_env(action: str, variable: str) -> None:
    doc = _action(action)
    assert "trust-policy" in doc["inputs"] and doc["inputs"]["trust-policy"]["default"] == ""
    steps = [s for s in doc["runs"]["steps"] if "inputs.trust-policy" in str(s)]
    (step,) = steps
    assert step["env"][variable] == RAW
    assert "${{" not in step["run"]
    if variable != "MLSEC_TRUST_POLICY":  # fetch: exported under the name mlsec reads only when set
        assert f'[[ -n "${variable}" ]] && export MLSEC_TRUST_POLICY="${variable}"' in step["run"]


def test_publish_puts_trust_policy_with_the_other_signers() -> None:
    names = list(_action("publish")["inputs"])
    assert names.index("trust-policy") == names.index("issuer") + 1 == names.index("identity") + 2


def test_verify_checks_what_sign_signed_after_sign_and_before_publish() -> None:
    jobs = _doc()["jobs"]
    names = list(jobs)
    assert names.index("sign") < names.index("verify") < names.index("publish")
    verify, publish, sign = jobs["verify"], jobs["publish"], jobs["sign"]
    assert verify["name"] == "verify (ML stage 9)"
    assert "sign" in verify["needs"] and "needs.sign.result == 'success'" in verify["if"]
    assert verify["if"].startswith("${{ !cancelled() && ")
    # Least privilege: it only reads (no id-token, no security-events, no secrets).
    assert verify["permissions"] == {"contents": "read"}
    assert "secrets." not in yaml.safe_dump(verify)
    # publish refuses after a failed (or skipped) verify.
    assert "verify" in publish["needs"] and "needs.verify.result == 'success'" in publish["if"]
    # It runs whenever a signer is named or publish would run: never skipped in front of a publish.
    for name in ("publish-public-key", "publish-identity", "trust-policy", "publish-mlflow-uri", "publish-s3"):
        assert f"inputs.{name} != ''" in verify["if"], name
    _, signing = _step(sign, "$/actions/sign")
    _, checking = _step(verify, "$/actions/verify")
    _, publishing = _step(publish, "$/actions/publish")
    signed = _lines(signing["with"]["artifacts"])
    assert _lines(checking["with"]["artifacts"]) == [signed[0], signing["with"]["verdict"], *signed[1:]]
    assert checking["with"]["attestation"] == publishing["with"]["attestation"] == \
        "mlsec-results/gate.intoto.sigstore.json"
    # The provenance sign signed (when train ran) is checked too, by its bundle beside the statement.
    assert "mlsec-results/train.provenance.json.sigstore.json" in checking["with"]["provenance"]
    assert "mlsec-results/train.provenance.json" in signing["with"]["provenance"]


def test_verify_lays_out_what_publish_lays_out() -> None:
    jobs = _doc()["jobs"]

    def downloads(job: dict[str, Any]) -> list[tuple[str, str]]:
        return [(s["with"]["name"], s["with"]["path"]) for s in job["steps"]
                if "download-artifact" in s.get("uses", "")]

    verify, publish = downloads(jobs["verify"]), downloads(jobs["publish"])
    signatures = "mlsec-signatures-${{ needs.run-id.outputs.ns }}"
    assert [d for d in verify if d[0] != signatures] == [d for d in publish if d[0] != signatures]
    # upload-artifact roots the signatures at the folder its files share: mlsec-results/ without models.
    (path,) = [p for n, p in verify if n == signatures]
    assert path == "${{ inputs.models != '' && '.' || 'mlsec-results' }}"


def test_keyless_signers_reach_verify_and_publish() -> None:
    doc = _doc()
    inputs = doc[True]["workflow_call"]["inputs"]
    assert inputs["publish-identity"]["default"] == ""
    assert inputs["publish-issuer"]["default"] == "https://token.actions.githubusercontent.com"
    _, checking = _step(doc["jobs"]["verify"], "$/actions/verify")
    _, publishing = _step(doc["jobs"]["publish"], "$/actions/publish")
    for step in (checking, publishing):
        assert step["with"]["public-key"] == "${{ inputs.publish-public-key }}"
        assert step["with"]["identity"] == "${{ inputs.publish-identity }}"
    # The verify action passes the issuer only with an identity itself; publish refuses an issuer alone.
    assert checking["with"]["issuer"] == "${{ inputs.publish-issuer || 'https://token.actions.githubusercontent.com' }}"
    # Every caller of this reusable workflow signs as it: verify also requires the caller's repository.
    assert checking["with"]["repository"] == "${{ inputs.publish-identity != '' && github.repository || '' }}"
    assert publishing["with"]["issuer"] == ("${{ inputs.publish-identity != '' && (inputs.publish-issuer || "
                                            "'https://token.actions.githubusercontent.com') || '' }}")


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_the_trust_policy_is_an_input_of_both_triggers_and_from_head_says_so(workflow: str) -> None:
    on = _doc(workflow)[True]
    assert "trust-policy" in on["workflow_call"]["inputs"] and "trust-policy" in on["workflow_dispatch"]["inputs"]
    assert len(on["workflow_dispatch"]["inputs"]) <= 25  # GitHub's limit for a dispatch
    assert "trust policy" in on["workflow_call"]["inputs"]["pr-policy-from-head"]["description"]


def test_the_training_log_reaches_evaluate() -> None:
    doc = _doc()
    assert doc[True]["workflow_call"]["inputs"]["eval-training-log"]["default"] == ""
    _, step = _step(doc["jobs"]["evaluate"], "$/actions/evaluate")
    assert step["with"]["training-log"] == "${{ inputs.eval-training-log }}"
    action = _action("evaluate")
    (run,) = [s for s in action["runs"]["steps"] if s.get("id") == "scan"]
    assert run["env"]["MLSEC_TRAINING_LOG"] == "${{ inputs.training-log }}"
    assert "MLSEC_TRAINING_LOG" in run["run"].split("done")[0]  # an empty input is unset, not an option
