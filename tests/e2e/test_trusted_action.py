"""actions/_trusted's two shell steps, run by bash as the runner runs them (no act): every branch of the decision
and of the copy, including the hostile ones a pull request's head can set up (symlinked folders and files,
a policy that only the head has, paths out of the repository).

The positive path under act, on a real pull_request event, is in test_two_pipelines.py.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.act_harness import ROOT

ACTION = ROOT / "actions" / "_trusted" / "action.yml"
BASE_SHA = "a" * 40


def _script(step_id: str) -> str:
    doc: dict[str, Any] = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    (step,) = [s for s in doc["runs"]["steps"] if s.get("id") == step_id]
    return str(step["run"])


def _run(step_id: str, ws: Path, **env: str) -> tuple[int, str, dict[str, str]]:
    out = ws.parent / f"{ws.name}-output"
    out.write_text("", encoding="utf-8")
    full = {"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(out), "RUNNER_TEMP": str(ws.parent / "runner-temp"),
            "BUILTINS": str(ROOT / "policies"), "POLICY": "", "CONFIG": "", **env}
    got = subprocess.run(["bash", "-e", "-c", _script(step_id)], cwd=ws, env=full, capture_output=True, text=True,
                         timeout=60, check=False)
    outputs: dict[str, str] = {}
    lines = iter(out.read_text(encoding="utf-8").splitlines())
    for line in lines:
        if "<<" in line:
            name, end = line.split("<<", 1)
            outputs[name] = "\n".join(iter(lambda: next(lines), end))
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
    return got.returncode, got.stdout + got.stderr, outputs


def _decide(ws: Path, **env: str) -> tuple[int, str, dict[str, str]]:
    return _run("decide", ws, **{"EVENT": "pull_request", "BASE_SHA": BASE_SHA, "FROM_HEAD": "false", **env})


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / ".mlsec-base" / ".github").mkdir(parents=True)
    (ws / ".mlsec-base" / ".github" / "policy.yml").write_text("base policy\n", encoding="utf-8")
    (ws / ".mlsec-base" / "mlsec.yml").write_text("base config\n", encoding="utf-8")
    (ws / ".github").mkdir()
    (ws / ".github" / "policy.yml").write_text("head policy, waives everything\n", encoding="utf-8")
    return ws


def _copy(ws: Path, **env: str) -> tuple[int, str, dict[str, str]]:
    return _run("copy", ws, **{"FROM_BASE": "true", "IN_PLACE": "true", "POLICY": ".github/policy.yml", **env})


def test_a_pull_request_reads_policy_and_config_from_the_base(tmp_path: Path) -> None:
    rc, log, out = _decide(tmp_path, POLICY=".github/policy.yml", CONFIG="mlsec.yml")
    assert rc == 0, log
    assert out["from-base"] == "true"
    assert out["files"].splitlines() == [".github/policy.yml", "mlsec.yml"]


def test_other_events_builtins_and_the_opt_out_read_the_workspace(tmp_path: Path) -> None:
    for env in ({"EVENT": "push", "POLICY": ".github/policy.yml"}, {"POLICY": "strict"}, {"POLICY": "default"},
                {"POLICY": ".github/policy.yml", "FROM_HEAD": "true"}, {}):
        rc, log, out = _decide(tmp_path, **env)
        assert rc == 0 and out == {"from-base": "false"}, (env, log, out)


def test_a_builtin_name_that_is_not_a_builtin_is_a_file(tmp_path: Path) -> None:
    rc, _, out = _decide(tmp_path, POLICY="lenient")
    assert rc == 0 and out["files"] == "lenient"


def test_a_pull_request_without_a_base_sha_fails_closed(tmp_path: Path) -> None:
    rc, log, _ = _decide(tmp_path, POLICY=".github/policy.yml", BASE_SHA="")
    assert rc == 1 and "without a base commit SHA" in log


def test_paths_out_of_the_repository_are_refused(tmp_path: Path) -> None:
    for bad in ("/etc/passwd", "../outside.yml", ".github/../../x.yml"):
        rc, log, _ = _decide(tmp_path, POLICY=bad)
        assert rc == 2 and "paths inside the repository" in log, bad


def test_the_gate_gets_the_base_policy_at_its_repository_path(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    rc, log, out = _copy(ws)
    assert rc == 0, log
    assert out == {"policy": ".github/policy.yml", "config": "", "trust-policy": "", "source": "base"}
    assert (ws / ".github" / "policy.yml").read_text(encoding="utf-8") == "base policy\n"
    assert not (ws / ".mlsec-base").exists()


def test_a_stage_gets_the_base_config_outside_the_workspace(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    rc, log, out = _copy(ws, IN_PLACE="false", POLICY="", CONFIG="mlsec.yml")
    assert rc == 0, log
    trusted = tmp_path / "runner-temp" / "mlsec-trusted" / "mlsec.yml"
    assert out["config"] == str(trusted) and trusted.read_text(encoding="utf-8") == "base config\n"
    assert not (ws / "mlsec.yml").exists() and not (ws / ".mlsec-base").exists()


def test_a_policy_only_the_head_has_fails(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    (ws / ".github" / "new.yml").write_text("waivers: everything\n", encoding="utf-8")
    rc, log, out = _copy(ws, POLICY=".github/new.yml")
    assert rc == 1 and "not a regular file in the pull request's base commit" in log
    assert "policy" not in out and not (ws / ".mlsec-base").exists()


def test_a_symlink_in_the_base_is_not_followed(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    (ws / ".mlsec-base" / ".github" / "policy.yml").unlink()
    (ws / ".mlsec-base" / ".github" / "policy.yml").symlink_to(ws / ".github" / "policy.yml")
    rc, log, _ = _copy(ws)
    assert rc == 1 and "not a regular file" in log


def test_a_head_that_symlinks_the_policy_folder_cannot_redirect_the_write(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (ws / ".github" / "policy.yml").unlink()
    (ws / ".github").rmdir()
    (ws / ".github").symlink_to(elsewhere)
    rc, log, _ = _copy(ws)
    assert rc == 1 and "is a symlink or a file" in log
    assert list(elsewhere.iterdir()) == []


def test_a_head_that_symlinks_the_policy_file_gets_it_replaced(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    target = tmp_path / "target.yml"
    target.write_text("untouched\n", encoding="utf-8")
    (ws / ".github" / "policy.yml").unlink()
    (ws / ".github" / "policy.yml").symlink_to(target)
    rc, log, _ = _copy(ws)
    assert rc == 0, log
    assert not (ws / ".github" / "policy.yml").is_symlink()
    assert (ws / ".github" / "policy.yml").read_text(encoding="utf-8") == "base policy\n"
    assert target.read_text(encoding="utf-8") == "untouched\n"


# The trust policy: who may sign what fetch, verify and publish accept. A pull request that could bring its own
# would add its own key or identity and sign its own artifacts.

def _trust_workspace(tmp_path: Path) -> tuple[Path, dict[str, tuple[Path, Path]]]:
    """Base: .github/trust.yml trusting keys/release.pub (named ../keys/release.pub, relative to the policy);
    head: the same paths, with the pull request author's key in both."""
    from mlsec_actions.signing import key

    keys = {}
    for name in ("release", "attacker"):
        key.generate(tmp_path / f"{name}.pem", tmp_path / f"{name}.pub")
        keys[name] = (tmp_path / f"{name}.pem", tmp_path / f"{name}.pub")
    ws = _workspace(tmp_path)
    for root, who in ((ws / ".mlsec-base", "release"), (ws, "attacker")):
        (root / "keys").mkdir()
        (root / "keys" / "release.pub").write_bytes(keys[who][1].read_bytes())
        (root / ".github" / "trust.yml").write_text("signers:\n  - public-key: ../keys/release.pub\n", encoding="utf-8")
    return ws, keys


def test_a_pull_request_reads_the_trust_policy_and_its_keys_from_the_base(tmp_path: Path) -> None:
    rc, log, out = _decide(tmp_path, TRUST_POLICY=".github/trust.yml")
    assert rc == 0, log
    assert out["from-base"] == "true"
    # The policy itself, and every key file of the base commit: the keys it names are relative to it.
    assert out["files"].splitlines() == [".github/trust.yml", "*.pub", "*.pem"]
    for env in ({"EVENT": "push"}, {"FROM_HEAD": "true"}, {"EVENT": "workflow_dispatch"}):
        rc, log, out = _decide(tmp_path, TRUST_POLICY=".github/trust.yml", **env)
        assert rc == 0 and out == {"from-base": "false"}, (env, log, out)


def test_a_trust_policy_out_of_the_repository_is_refused(tmp_path: Path) -> None:
    for bad in ("/home/runner/trust.yml", "../trust.yml", ".github/../../trust.yml", "a\nb.yml"):
        rc, log, _ = _decide(tmp_path, TRUST_POLICY=bad)
        assert rc == 2 and "paths inside the repository" in log, bad


def test_other_events_pass_the_trust_policy_through(tmp_path: Path) -> None:
    rc, log, out = _run("copy", tmp_path, FROM_BASE="false", TRUST_POLICY=".github/trust.yml")
    assert rc == 0, log
    assert out == {"policy": "", "config": "", "trust-policy": ".github/trust.yml", "source": "workspace"}


def test_the_base_trust_policy_trusts_the_base_key_not_the_head_one(tmp_path: Path) -> None:
    from mlsec_actions.signing import trust

    ws, keys = _trust_workspace(tmp_path)
    # In place for the policy (a gate job), never for the trust policy: the head's file stays where it is.
    rc, log, out = _copy(ws, TRUST_POLICY=".github/trust.yml")
    assert rc == 0, log
    trusted = tmp_path / "runner-temp" / "mlsec-trusted"
    assert out == {"policy": ".github/policy.yml", "config": "", "trust-policy": str(trusted / ".github" / "trust.yml"),
                   "source": "base"}
    assert "trust policy and its keys from the base commit" in log and "policy and config" in log
    assert (trusted / "keys" / "release.pub").read_bytes() == keys["release"][1].read_bytes()
    assert (ws / "keys" / "release.pub").read_bytes() == keys["attacker"][1].read_bytes()  # head's: not read
    policy = trust.load_trust_policy(Path(out["trust-policy"]))
    (only,) = policy.keys
    assert only.resolve() == (trusted / "keys" / "release.pub").resolve()
    assert only.read_bytes() == keys["release"][1].read_bytes() != keys["attacker"][1].read_bytes()
    assert not (ws / ".mlsec-base").exists()


def test_a_trust_policy_only_the_head_has_fails(tmp_path: Path) -> None:
    ws, _ = _trust_workspace(tmp_path)
    (ws / ".github" / "mine.yml").write_text("signers:\n  - public-key: ../keys/release.pub\n", encoding="utf-8")
    rc, log, out = _copy(ws, POLICY="", TRUST_POLICY=".github/mine.yml")
    assert rc == 1 and "the trust policy is not a regular file in the pull request's base commit" in log
    assert "trust-policy" not in out and not (ws / ".mlsec-base").exists()


def test_a_symlinked_key_in_the_base_is_not_copied(tmp_path: Path) -> None:
    from mlsec_actions.errors import InputError
    from mlsec_actions.signing import trust

    ws, _ = _trust_workspace(tmp_path)
    base_key = ws / ".mlsec-base" / "keys" / "release.pub"
    base_key.unlink()
    base_key.symlink_to(ws / "keys" / "release.pub")  # would read the head's key
    rc, log, out = _copy(ws, POLICY="", TRUST_POLICY=".github/trust.yml")
    assert rc == 0, log
    assert "policy and config" not in log  # only the trust policy was asked for
    trusted = tmp_path / "runner-temp" / "mlsec-trusted"
    assert not (trusted / "keys" / "release.pub").exists()
    # mlsec then refuses the policy (a key it names is missing): exit 2 naming the line, never the head's key.
    try:
        trust.load_trust_policy(Path(out["trust-policy"]))
    except InputError as e:
        assert "signers[0]: public-key" in e.problem
    else:
        raise AssertionError("a trust policy whose key is missing was accepted")


def test_a_symlinked_trust_policy_in_the_base_is_not_followed(tmp_path: Path) -> None:
    ws, _ = _trust_workspace(tmp_path)
    (ws / ".mlsec-base" / ".github" / "trust.yml").unlink()
    (ws / ".mlsec-base" / ".github" / "trust.yml").symlink_to(ws / ".github" / "trust.yml")
    rc, log, _ = _copy(ws, POLICY="", TRUST_POLICY=".github/trust.yml")
    assert rc == 1 and "the trust policy is not a regular file" in log


# `path`: devsecops' verify and publish check the repository out into mlsec-caller/, apart from the release evidence
# they download to the workspace root. The files are then the checkout's, on every event.

def _caller(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "mlsec-caller" / ".github").mkdir(parents=True)
    (ws / "mlsec-caller" / ".github" / "trust.yml").write_text("signers: []\n", encoding="utf-8")
    (ws / "mlsec-results").mkdir()
    (ws / "mlsec-results" / "trust.yml").write_text("evidence, not the repository's\n", encoding="utf-8")
    return ws


def test_with_a_path_other_events_get_the_checkouts_file(tmp_path: Path) -> None:
    ws = _caller(tmp_path)
    rc, log, out = _run("decide", ws, EVENT="push", ROOT="mlsec-caller", TRUST_POLICY=".github/trust.yml")
    assert rc == 0 and out == {"from-base": "false"}, log
    rc, log, out = _run("copy", ws, FROM_BASE="false", ROOT="mlsec-caller", TRUST_POLICY=".github/trust.yml",
                        POLICY="strict", CONFIG="")
    assert rc == 0, log
    assert out == {"policy": "strict", "config": "", "trust-policy": "mlsec-caller/.github/trust.yml",
                   "source": "workspace"}


def test_with_a_path_no_event_reads_outside_the_checkout(tmp_path: Path) -> None:
    ws = _caller(tmp_path)
    for event in ("push", "workflow_dispatch", "pull_request"):
        for bad in ("../mlsec-results/trust.yml", "/etc/hostname", ".github/../../mlsec-results/trust.yml"):
            rc, log, out = _decide(ws, EVENT=event, ROOT="mlsec-caller", TRUST_POLICY=bad, FROM_HEAD="true")
            assert rc == 2 and "paths inside the repository" in log and out == {}, (event, bad)


def test_with_a_path_a_symlink_or_a_missing_file_is_refused(tmp_path: Path) -> None:
    ws = _caller(tmp_path)
    caller = ws / "mlsec-caller"
    (caller / "link.yml").symlink_to(caller / ".github" / "trust.yml")
    (caller / "out").symlink_to(ws / "mlsec-results")  # a folder of the checkout pointing at the evidence
    for bad in ("link.yml", "out/trust.yml", "missing.yml", ".github"):
        rc, log, out = _run("copy", ws, FROM_BASE="false", ROOT="mlsec-caller", TRUST_POLICY=bad)
        assert rc == 2 and "the trust policy is not a regular file of the repository" in log, bad
        assert out == {}, bad
    rc, log, out = _run("copy", ws, FROM_BASE="false", ROOT="mlsec-caller", CONFIG="missing.yml")
    assert rc == 2 and "the config file is not a regular file of the repository" in log and out == {}


def test_with_a_path_a_pull_request_still_reads_the_base(tmp_path: Path) -> None:
    ws, keys = _trust_workspace(tmp_path)
    (ws / "mlsec-caller").mkdir()
    rc, log, out = _decide(ws, ROOT="mlsec-caller", TRUST_POLICY=".github/trust.yml")
    assert rc == 0 and out["from-base"] == "true", log
    rc, log, out = _copy(ws, IN_PLACE="false", POLICY="", ROOT="mlsec-caller", TRUST_POLICY=".github/trust.yml")
    assert rc == 0, log
    trusted = tmp_path / "runner-temp" / "mlsec-trusted"
    assert out["trust-policy"] == str(trusted / ".github" / "trust.yml") and out["source"] == "base"
    assert (trusted / "keys" / "release.pub").read_bytes() == keys["release"][1].read_bytes()
    assert not (ws / ".mlsec-base").exists()


def test_a_path_is_not_taken_in_place(tmp_path: Path) -> None:
    rc, log, _ = _decide(tmp_path, ROOT="mlsec-caller", IN_PLACE="true", POLICY=".github/policy.yml")
    assert rc == 2 and "path and in-place together" in log
