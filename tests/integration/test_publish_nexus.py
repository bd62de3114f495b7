"""publish to a Nexus raw repository, against the loopback recording stand-in of `tests/nexus_standin.py` (Nexus
itself is a Java server from Sonatype that cannot run here), with the project's own key signing: the files,
bundles, attestation, SBOM and digests manifest PUT under the release path with basic auth, each read back and
checked; idempotent; other bytes under a release path refused with nothing uploaded; non-2xx, 401, redirects
and a read-back with other bytes fail closed; bad URLs and hostile names are exit 2 with no request sent."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlsec_actions import cli
from tests.nexus_standin import nexus_standin
from tests.notify_servers import recorder

pytestmark = pytest.mark.integration
USER, PASSWORD = "mlsec-deployer", "nexus-test-password-5d1e"
RESULTS = "mlsec-results"


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """After a passing gate: a model file signed with a key, the gate attestation, an SBOM; Nexus credentials."""
    from mlsec_actions.signing import key

    monkeypatch.chdir(tmp_path)
    for var in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS", "MLSEC_NEXUS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NEXUS_USERNAME", USER)
    monkeypatch.setenv("NEXUS_PASSWORD", PASSWORD)
    (tmp_path / "weights.bin").write_bytes(b"model weights v1" * 100)
    (tmp_path / "sbom.cdx.json").write_text('{"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []}\n')
    (tmp_path / RESULTS).mkdir()
    verdict = {"verdict": "pass", "policy": {"path": "policies/default.yml", "sha256": "cd" * 32}, "inputs": [],
               "violations": [], "counts": {}, "tools": []}
    (tmp_path / RESULTS / "verdict.json").write_text(json.dumps(verdict))
    key.generate(tmp_path / "k.pem", tmp_path / "k.pub")
    _sign(tmp_path, "weights.bin")
    return tmp_path


def _sign(ws: Path, artifact: str) -> None:
    assert cli.main(["sign", "--backend", "key", "--key", str(ws / "k.pem"), "--verdict", f"{RESULTS}/verdict.json",
                     "--attest", artifact]) == 0


def _args(url: str, *extra: str, artifact: str = "weights.bin") -> list[str]:
    return ["publish", artifact, "--nexus", url, "--public-key", "k.pub", "--verdict", f"{RESULTS}/verdict.json",
            "--attestation", f"{RESULTS}/gate.intoto.sigstore.json", *extra]


def _record(ws: Path) -> dict[str, list[str]]:
    return dict(json.loads((ws / RESULTS / "publish.json").read_text())["nexus"])


def test_nexus_only_uploads_every_object_reads_each_back_and_republishing_is_a_no_op(ws: Path) -> None:
    with nexus_standin(users={USER: PASSWORD}) as nexus:
        assert cli.main(_args(nexus.url, "--name", "clf", "--release", "1.0.0", "--sbom", "sbom.cdx.json")) == 0
        names = ["weights.bin", "weights.bin.sigstore.json", "gate.intoto.sigstore.json", "sbom.cdx.json",
                 "mlsec-digests.json"]
        assert sorted(nexus.objects) == sorted(f"clf/1.0.0/{n}" for n in names)
        for name in names[:4]:
            source = ws / RESULTS / name if name.startswith("gate.") else ws / name
            assert nexus.objects[f"clf/1.0.0/{name}"] == source.read_bytes()
        manifest = json.loads(nexus.objects["clf/1.0.0/mlsec-digests.json"])
        sha = hashlib.sha256((ws / "weights.bin").read_bytes()).hexdigest()
        assert manifest["objects"]["weights.bin"] == sha and len(manifest["objects"]) == 4
        puts = [r for r in nexus.seen if r.method == "PUT"]
        assert len(puts) == 5 and puts[-1].path.endswith("/mlsec-digests.json")  # the manifest last
        auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        assert {r.authorization for r in nexus.seen} == {auth}
        # 5 GETs before (all absent), 5 PUTs, then 5 GETs reading each upload back.
        assert nexus.methods() == ["GET"] * 5 + ["PUT"] * 5 + ["GET"] * 5
        record = _record(ws)
        assert len(record["uploaded"]) == 5 and record["prefix"] == [f"{nexus.url}/clf/1.0.0"]
        # What was uploaded verifies with our own verify, read back from the repository.
        back = ws / "back"
        back.mkdir()
        for name in ("weights.bin", "weights.bin.sigstore.json"):
            (back / name).write_bytes(nexus.objects[f"clf/1.0.0/{name}"])
        assert cli.main(["verify", "--public-key", "k.pub", str(back / "weights.bin")]) == 0
        # The same bytes again: read, compared, nothing uploaded.
        nexus.seen.clear()
        assert cli.main(_args(nexus.url, "--name", "clf", "--release", "1.0.0", "--sbom", "sbom.cdx.json")) == 0
        assert nexus.methods() == ["GET"] * 5
        assert _record(ws)["uploaded"] == [] and len(_record(ws)["unchanged"]) == 5


def test_without_a_release_the_digest_is_the_release_path(ws: Path) -> None:
    with nexus_standin() as nexus:  # anonymous access, no credentials needed
        assert cli.main(_args(nexus.url)) == 0
        digest = json.loads((ws / RESULTS / "publish.json").read_text())["digest"]
        assert f"{digest}/weights.bin" in nexus.objects and len(nexus.objects) == 4


def test_other_bytes_under_a_release_path_are_refused_and_nothing_is_uploaded(
        ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with nexus_standin(users={USER: PASSWORD}) as nexus:
        assert cli.main(_args(nexus.url, "--release", "1")) == 0
        before = dict(nexus.objects)
        (ws / "weights.bin").write_bytes(b"model weights v2" * 100)
        _sign(ws, "weights.bin")
        nexus.seen.clear()
        capsys.readouterr()
        assert cli.main(_args(nexus.url, "--release", "1")) == 1
        err = capsys.readouterr().err
        assert "other bytes" in err and "release path 1" in err, err
        assert "PUT" not in nexus.methods() and nexus.objects == before
        # Control: a new release label takes the new bytes.
        assert cli.main(_args(nexus.url, "--release", "2")) == 0
        assert nexus.objects["2/weights.bin"] == b"model weights v2" * 100


@pytest.mark.parametrize(("answers", "message"), [
    ({"put_status": 500}, "HTTP 500"),
    ({"put_status": 400}, "HTTP 400"),
    ({"users": {USER: "another password"}}, "HTTP 401"),
    ({"tamper": True}, "reads back with other bytes"),
])
def test_a_failing_or_lying_repository_fails_the_publish(ws: Path, capsys: pytest.CaptureFixture[str],
                                                         answers: dict[str, object], message: str) -> None:
    with nexus_standin(**answers) as nexus:
        assert cli.main(_args(nexus.url)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and PASSWORD not in err[0], err
    assert nexus.seen  # it did get past the checks: the repository's answer failed it


def test_a_redirect_is_refused_not_followed(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with recorder() as elsewhere, nexus_standin(users={USER: PASSWORD}) as nexus:
        nexus.redirect = f"{elsewhere.url}/repository/raw-releases/x"
        assert cli.main(_args(nexus.url)) == 1
        assert elsewhere.seen == []  # neither the bytes nor the credentials went to the other host
        assert len(nexus.seen) == 1
    err = capsys.readouterr().err
    assert "HTTP 302" in err and "redirect, not followed" in err, err


@pytest.mark.parametrize(("url", "message"), [
    (f"http://{USER}:{PASSWORD}@127.0.0.1:{{port}}/repository/raw-releases", "credentials in the Nexus URI"),
    ("http://127.0.0.1:{port}/repository/raw-releases?x=1", "query"),
    ("http://nexus.example.com:{port}/repository/raw-releases", "https://"),
    ("ftp://127.0.0.1:{port}/repository/raw-releases", "https://"),
    ("http://127.0.0.1:{port}/raw-releases", "not a raw repository URL"),
    ("http://127.0.0.1:{port}/repository/raw-releases/../admin", "not a raw repository URL"),
    ("http://127.0.0.1:{port}/repository/%2e%2e", "not a raw repository URL"),
    ("http://127.0.0.1:{port}/../repository/raw-releases", "not a raw repository URL"),
])
def test_a_bad_nexus_url_is_exit_2_with_nothing_sent(ws: Path, capsys: pytest.CaptureFixture[str], url: str,
                                                     message: str) -> None:
    with nexus_standin() as nexus:
        port = nexus.base.rsplit(":", 1)[1]
        assert cli.main(_args(url.format(port=port))) == 2
        assert nexus.seen == []
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and PASSWORD not in err[0], err


def test_one_credential_without_the_other_is_exit_2(ws: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("NEXUS_PASSWORD")
    with nexus_standin() as nexus:
        assert cli.main(_args(nexus.url)) == 2
        assert nexus.seen == []
    assert "NEXUS_PASSWORD" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["w%2f..%2fx.bin", "mlsec-digests.json"])
def test_a_hostile_artifact_name_is_exit_2_naming_it_with_nothing_sent(ws: Path, name: str,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    (ws / name).write_bytes(b"model weights v1" * 100)
    _sign(ws, name)
    with nexus_standin() as nexus:
        capsys.readouterr()
        assert cli.main(_args(nexus.url, artifact=name)) == 2
        assert nexus.seen == []
    err = capsys.readouterr().err.strip().splitlines()
    # One line naming the file (the log line escapes '%' as a workflow-command-safe '%\\') and the problem.
    problem = "the digests manifest" if name == "mlsec-digests.json" else "a '%' in the name"
    shown = name.replace("%", "%\\")
    assert len(err) == 1 and f"{shown}: " in err[0] and problem in err[0], err


def test_the_credentials_never_appear_in_any_output(ws: Path, tmp_path: Path) -> None:
    summary, out = tmp_path / "summary.md", tmp_path / "out.txt"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(out)}
    exe = str(Path(sys.executable).parent / "mlsec")

    def run(url: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([exe, *_args(url)], env=env, capture_output=True, text=True, check=False, cwd=ws)

    with nexus_standin(users={USER: PASSWORD}) as good, nexus_standin(users={USER: "other"}) as bad:
        runs = [run(good.url), run(bad.url), run("http://127.0.0.1:9/repository/raw-releases"),
                run(good.url.replace("http://", f"http://{USER}:{PASSWORD}@"))]
    assert [r.returncode for r in runs] == [0, 1, 1, 2], [r.stderr for r in runs]
    written = [r.stdout + r.stderr for r in runs] + [p.read_text() for p in (summary, out) if p.exists()]
    written.append((ws / RESULTS / "publish.json").read_text())
    for text in written:
        assert PASSWORD not in text, text
    assert "Traceback" not in "".join(written)


def test_a_failing_verdict_sends_nothing_and_no_target_is_still_exit_2(ws: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    verdict = ws / RESULTS / "verdict.json"
    verdict.write_text(verdict.read_text().replace('"pass"', '"fail"'))
    with nexus_standin() as nexus:
        assert cli.main(_args(nexus.url)) == 1
        assert nexus.seen == []
    assert "verdict" in capsys.readouterr().err
    no_target = [a for a in _args("x") if a not in ("--nexus", "x")]
    assert cli.main(no_target) == 2
    assert "--nexus URL" in capsys.readouterr().err
