"""sign / verify end to end through the CLI: every artifact kind, every backend we can run here, tampering.

Key mode runs fully offline. OpenPubkey runs against tests/oidc_issuer.py, a loopback STAND-IN for
GitHub's OIDC token service. Sigstore keyless signing needs GitHub and Sigstore's servers, so here it
is checked up to that boundary; keyless verification runs offline on the real GitHub Actions bundle
kept in tests/fixtures/sigstore/ (see its README), so those tests never skip. Keyless signing end to
end, against loopback stand-ins for Fulcio and Rekor and checked by sigstore-python's own CLI, is in
tests/integration/test_sigstore_interop.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlsec_actions import cli, digests
from mlsec_actions.findings import StageResult, ToolRun, ToolStatus
from mlsec_actions.sarif import write_sarif
from mlsec_actions.signing import key
from tests import oidc_issuer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sigstore"
GH_IDENTITY = "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"
GH_ISSUER = "https://token.actions.githubusercontent.com"


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pipeline's output after a passing gate: model folder, SARIF, verdict naming the SARIF, SBOM, keys."""
    monkeypatch.chdir(tmp_path)
    for var in ("MLSEC_SIGNING_KEY", "GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "model" / "tok").mkdir(parents=True)
    (tmp_path / "model" / "weights.bin").write_bytes(bytes(range(256)) * 4096)
    (tmp_path / "model" / "tok" / "vocab.txt").write_text("a\nb\n")
    (tmp_path / ".gitignore").write_text("")
    sarif = write_sarif(StageResult("model-scan", (), (ToolRun("pickle", ToolStatus.OK, "1"),)),
                        tmp_path / "mlsec-results" / "model-scan.sarif", root=tmp_path)
    verdict = {"verdict": "pass", "policy": {"path": "policies/default.yml", "sha256": "cd" * 32},
               "inputs": [{"path": "mlsec-results/model-scan.sarif",
                           "sha256": hashlib.sha256(sarif.read_bytes()).hexdigest()}],
               "violations": [], "counts": {"model-scan": {"high": 0}},
               "tools": [{"stage": "model-scan", "name": "pickle", "version": "1", "status": "ok"}]}
    (tmp_path / "mlsec-results" / "verdict.json").write_text(json.dumps(verdict))
    (tmp_path / "requirements.txt").write_text("numpy==1.26.4\n")
    assert cli.main(["sbom", ".", "--model", "model", "--out", "mlsec-results/sbom.cdx.json",
                     "--verdict", "mlsec-results/verdict.json"]) == 0
    key.generate(tmp_path / "signing.pem", tmp_path / "signing.pub")
    return tmp_path


ARTIFACTS = ["model", "mlsec-results/sbom.cdx.json", "mlsec-results/model-scan.sarif"]
VERIFY_ALL = ["verify", "--public-key", "signing.pub", *ARTIFACTS, "mlsec-results/verdict.json",
              "--attestation", "mlsec-results/gate.intoto.sigstore.json"]


def _sign_key(*extra: str) -> int:
    return cli.main(["sign", "--backend", "key", "--key", "signing.pem", "--verdict", "mlsec-results/verdict.json",
                     "--attest", *extra, *ARTIFACTS])


def test_key_round_trip_every_artifact_kind(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _sign_key() == 0
    for bundle in ["model.sigstore.json", "mlsec-results/sbom.cdx.json.sigstore.json",
                   "mlsec-results/model-scan.sarif.sigstore.json", "mlsec-results/verdict.json.sigstore.json",
                   "mlsec-results/gate.intoto.sigstore.json"]:
        assert (ws / bundle).is_file(), bundle
    capsys.readouterr()
    assert cli.main(VERIFY_ALL) == 0
    err = capsys.readouterr().err
    assert err.count("verify: OK") == 5
    statement = json.loads(__import__("base64").b64decode(
        json.loads((ws / "mlsec-results/gate.intoto.sigstore.json").read_text())["dsseEnvelope"]["payload"]))
    names = {s["name"] for s in statement["subject"]}
    assert {"model/weights.bin", "model/tok/vocab.txt", "mlsec-results/sbom.cdx.json",
            "mlsec-results/model-scan.sarif", "mlsec-results/verdict.json"} == names
    assert statement["predicate"]["verdict"] == "pass"
    assert statement["predicate"]["policy"]["sha256"] == "cd" * 32
    assert statement["predicate"]["tools"][0]["name"] == "pickle"
    # The bare predicate for actions/attest is written beside the attestation.
    assert json.loads((ws / "mlsec-results" / "gate.predicate.json").read_text()) == statement["predicate"]


def test_model_signing_accepts_our_model_folder_bundle(ws: Path) -> None:
    from model_signing import verifying

    assert _sign_key() == 0
    verifying.Config().use_elliptic_key_verifier(  # type: ignore[no-untyped-call]  # untyped library
        public_key=ws / "signing.pub").verify(ws / "model", ws / "model.sigstore.json")
    (ws / "model" / "weights.bin").write_bytes(b"swapped")
    with pytest.raises(ValueError, match=r"weights\.bin"):
        verifying.Config().use_elliptic_key_verifier(  # type: ignore[no-untyped-call]  # untyped library
            public_key=ws / "signing.pub").verify(ws / "model", ws / "model.sigstore.json")


def test_sign_reads_each_file_once_after_sbom(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[Path] = []
    real = digests.sha256_file

    def counting(path: Path) -> str:
        read.append(path)
        return real(path)

    monkeypatch.setattr(digests, "sha256_file", counting)
    assert _sign_key() == 0
    # The model files were hashed by sbom; only files sbom did not see are read now.
    assert not [p for p in read if p.parent.name in ("model", "tok")]
    assert len(read) == len(set(read))


@pytest.fixture
def signed(ws: Path) -> Iterator[Path]:
    assert _sign_key() == 0
    yield ws


def _flip(path: Path) -> bytes:
    data = path.read_bytes()
    path.write_bytes(data[:-2] + bytes([data[-2] ^ 0x01]) + data[-1:])
    return data


@pytest.mark.parametrize("target", ["model/weights.bin", "mlsec-results/sbom.cdx.json",
                                    "mlsec-results/model-scan.sarif", "mlsec-results/verdict.json"])
def test_one_flipped_byte_is_named(signed: Path, target: str, capsys: pytest.CaptureFixture[str]) -> None:
    original = _flip(signed / target)
    try:
        capsys.readouterr()
        assert cli.main(VERIFY_ALL) == 1
        err = capsys.readouterr().err
        assert f"file {target} digest mismatch" in err  # from the attestation
        owner = "model" if target.startswith("model/") else target
        assert f"FAIL {owner}:" in err  # and from the artifact's own bundle
    finally:
        (signed / target).write_bytes(original)  # keep the SARIF valid for the session's SARIF check


def test_file_added_to_model_folder(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (signed / "model" / "backdoor.pkl").write_bytes(b"\x80\x04.")
    assert cli.main(VERIFY_ALL) == 1
    err = capsys.readouterr().err
    assert "FAIL model: file backdoor.pkl was added after signing" in err
    assert "file model/backdoor.pkl was added to model folder model" in err


def test_file_removed_from_model_folder(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (signed / "model" / "tok" / "vocab.txt").unlink()
    assert cli.main(VERIFY_ALL) == 1
    err = capsys.readouterr().err
    assert "FAIL model: file tok/vocab.txt was removed after signing" in err
    assert "file model/tok/vocab.txt was removed after signing" in err


def test_verdict_edited_inside_the_attestation(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import base64

    path = signed / "mlsec-results" / "gate.intoto.sigstore.json"
    bundle = json.loads(path.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["counts"] = {"model-scan": {"high": 0, "critical": 0}}
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    path.write_text(json.dumps(bundle))
    assert cli.main(VERIFY_ALL) == 1
    assert "statement was modified" in capsys.readouterr().err


def test_wrong_public_key_fails(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key.generate(signed / "other.pem", signed / "other.pub")
    assert cli.main(["verify", "--public-key", "other.pub", "model"]) == 1
    assert "signed by a different key" in capsys.readouterr().err


def test_sign_refuses_after_a_failing_verdict(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    verdict = ws / "mlsec-results" / "verdict.json"
    doc = json.loads(verdict.read_text())
    doc.update(verdict="fail", violations=[{"rule": "no-critical"}])
    verdict.write_text(json.dumps(doc))
    assert _sign_key() == 1
    assert "refusing to sign" in capsys.readouterr().err
    assert not list(ws.rglob("*.sigstore.json"))


def test_sign_refuses_when_sarif_changed_after_the_gate(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sarif = ws / "mlsec-results" / "model-scan.sarif"
    original = sarif.read_bytes()
    sarif.write_bytes(original.replace(b'"version"', b'"version" ', 1))
    try:
        assert _sign_key() == 1
        assert "changed since the gate read it" in capsys.readouterr().err
    finally:
        sarif.write_bytes(original)


def test_verify_without_trust_anchor_is_usage_error(signed: Path) -> None:
    assert cli.main(["verify", "model"]) == 2


def test_key_bundle_needs_a_public_key(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["verify", "--identity", "x", "--issuer", "https://i", "--offline", "model"]) == 1
    assert "needs --public-key" in capsys.readouterr().err


def test_openpubkey_round_trip_via_cli(ws: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Against the loopback stand-in for GitHub's OIDC (tests/oidc_issuer.py), then with a pinned JWKS."""
    with oidc_issuer.running_issuer() as issuer:
        for k, v in issuer.env().items():
            monkeypatch.setenv(k, v)
        assert cli.main(["sign", "--backend", "openpubkey", "--verdict", "mlsec-results/verdict.json", "--attest",
                         *ARTIFACTS]) == 0
        base = ["verify", "--identity", oidc_issuer.IDENTITY, "--issuer", issuer.url, "--repository",
                oidc_issuer.REPO, *ARTIFACTS, "--attestation", "mlsec-results/gate.intoto.sigstore.json"]
        assert cli.main(base) == 0
        (ws / "jwks.json").write_text(json.dumps(issuer.jwks()))
    # The issuer is gone: the pinned JWKS is enough.
    assert cli.main([*base, "--jwks", "jwks.json"]) == 0
    _flip(ws / "model" / "weights.bin")
    capsys.readouterr()
    assert cli.main([*base, "--jwks", "jwks.json"]) == 1
    assert "file weights.bin digest mismatch" in capsys.readouterr().err


def test_sigstore_sign_stops_at_the_credential_boundary(ws: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    for var in ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "SIGSTORE_ID_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    assert cli.main(["sign", "--backend", "sigstore", "--staging", "model"]) == 1
    assert "no ambient OIDC credential" in capsys.readouterr().err
    assert not (ws / "model.sigstore.json").exists()


@pytest.fixture
def gh_bundle(tmp_path: Path) -> Path:
    art = tmp_path / "bundle_v3_github.whl"
    shutil.copyfile(FIXTURES / "bundle_v3_github.whl", art)
    shutil.copyfile(FIXTURES / "bundle_v3_github.whl.sigstore", tmp_path / "bundle_v3_github.whl.sigstore.json")
    return art


def test_keyless_bundle_from_github_actions_verifies_offline(gh_bundle: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    args = ["verify", "--identity", GH_IDENTITY, "--issuer", GH_ISSUER, "--offline", str(gh_bundle)]
    assert cli.main([*args, "--repository", "trailofbits/rfc8785.py", "--ref", "refs/tags/v0.1.2"]) == 0
    assert f"signed by {GH_IDENTITY}" in capsys.readouterr().err


def test_keyless_bundle_wrong_identity_fails(gh_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wrong = GH_IDENTITY.replace("release.yml", "evil.yml")
    assert cli.main(["verify", "--identity", wrong, "--issuer", GH_ISSUER, "--offline", str(gh_bundle)]) == 1
    assert "keyless verification failed" in capsys.readouterr().err
    assert cli.main(["verify", "--identity", GH_IDENTITY, "--issuer", GH_ISSUER, "--repository", "evil/repo",
                     "--offline", str(gh_bundle)]) == 1


def test_keyless_bundle_modified_file_fails(gh_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _flip(gh_bundle)
    assert cli.main(["verify", "--identity", GH_IDENTITY, "--issuer", GH_ISSUER, "--offline", str(gh_bundle)]) == 1
    assert "digest mismatch" in capsys.readouterr().err


def test_inputs_from_environment_as_the_composite_actions_pass_them(ws: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSEC_SIGNING_KEY", (ws / "signing.pem").read_text())
    env = {"MLSEC_ARTIFACTS": "model\nmlsec-results/sbom.cdx.json\n", "MLSEC_BACKEND": "key",
           "MLSEC_VERDICT": "mlsec-results/verdict.json", "MLSEC_ATTEST": "true", "MLSEC_STAGING": "false"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert cli.main(["sign"]) == 0
    for k in env:
        monkeypatch.delenv(k)
    monkeypatch.setenv("MLSEC_ARTIFACTS", "model\nmlsec-results/sbom.cdx.json")
    monkeypatch.setenv("MLSEC_ATTESTATION", "mlsec-results/gate.intoto.sigstore.json")
    monkeypatch.setenv("MLSEC_PUBLIC_KEY", "signing.pub")
    assert cli.main(["verify"]) == 0


def test_we_verify_a_folder_signed_by_the_model_signing_cli(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess
    import sys

    # model_signing's default: the signature inside the folder, left out of the manifest it signs.
    subprocess.run([sys.executable, "-m", "model_signing", "sign", "key", "--private_key", "signing.pem",
                    "--signature", "model/model.sig", "model"], check=True, capture_output=True)
    shutil.copyfile(ws / "model" / "model.sig", ws / "model.sigstore.json")
    assert cli.main(["verify", "--public-key", "signing.pub", "model"]) == 0
    (ws / "model" / "extra.bin").write_bytes(b"x")
    assert cli.main(["verify", "--public-key", "signing.pub", "model"]) == 1
    assert "file extra.bin was added after signing" in capsys.readouterr().err


@pytest.mark.parametrize(("make", "named"), [
    (lambda m: (m / "etc").symlink_to("/etc"), "symlink etc -> /etc was added after signing"),
    (lambda m: (m / "tok" / "alias.txt").symlink_to("vocab.txt"),
     "symlink tok/alias.txt -> vocab.txt was added after signing"),
    (lambda m: (m / "dangling").symlink_to("nowhere"), "symlink dangling -> nowhere was added after signing"),
    (lambda m: __import__("os").mkfifo(m / "pipe"), "FIFO pipe was added after signing"),
])
def test_links_and_special_files_added_to_a_model_folder(signed: Path, make: object, named: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    make(signed / "model")  # type: ignore[operator]
    capsys.readouterr()
    assert cli.main(VERIFY_ALL) == 1
    err = capsys.readouterr().err
    assert f"FAIL model: {named}" in err
    assert "was added to model folder model after signing" in err  # and from the attestation


def test_a_signed_file_replaced_by_a_symlink(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vocab = signed / "model" / "tok" / "vocab.txt"
    (signed / "copy.txt").write_bytes(vocab.read_bytes())
    vocab.unlink()
    vocab.symlink_to(signed / "copy.txt")  # same content, now a link
    assert cli.main(VERIFY_ALL) == 1
    assert f"file tok/vocab.txt was replaced by a symlink tok/vocab.txt -> {signed / 'copy.txt'}" \
        in capsys.readouterr().err


def test_sign_refuses_a_model_folder_holding_a_symlink(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (ws / "model" / "etc").symlink_to("/etc")
    assert _sign_key() == 2
    assert "model/etc: symlink -> /etc" in capsys.readouterr().err
    assert not (ws / "model.sigstore.json").exists()


def test_verification_never_trusts_the_digest_cache(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An in-place edit keeping size, mtime and inode: the cache (filled by sbom and sign) still says 'unchanged'."""
    import os

    assert (signed / digests.DEFAULT_CACHE).is_file()
    for target in ("model/weights.bin", "mlsec-results/sbom.cdx.json"):
        path = signed / target
        st = path.stat()
        data = bytearray(path.read_bytes())
        data[0] ^= 0x01 if target.endswith(".bin") else 0
        data[-2] ^= 0x01
        with path.open("r+b") as fh:
            fh.write(data)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert (path.stat().st_size, path.stat().st_mtime_ns, path.stat().st_ino) == \
            (st.st_size, st.st_mtime_ns, st.st_ino)
    capsys.readouterr()
    assert cli.main(VERIFY_ALL) == 1
    err = capsys.readouterr().err
    assert "FAIL model: file weights.bin digest mismatch" in err
    assert "FAIL mlsec-results/sbom.cdx.json: digest mismatch" in err
    assert "file model/weights.bin digest mismatch" in err  # the attestation's subjects too


def test_folder_bundle_with_another_payload_type_fails(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Validly signed by the right key, the right model_signing statement, but not an in-toto payload type."""
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from mlsec_actions.signing import bundle as bl

    bundle_file = signed / "model.sigstore.json"
    payload = base64.b64decode(json.loads(bundle_file.read_text())["dsseEnvelope"]["payload"])
    private = key.load_private_key(signed / "signing.pem")
    sig = private.sign(bl.pae("application/json", payload), ec.ECDSA(hashes.SHA256()))
    bl.write_bundle(bundle_file, bl.dsse_bundle(bl.key_hint(private.public_key()), "application/json", payload, sig))
    assert cli.main(["verify", "--public-key", "signing.pub", "model"]) == 1
    assert "unexpected DSSE payload type 'application/json'" in capsys.readouterr().err


def test_fifo_artifacts_and_bundles_are_refused(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os

    os.mkfifo(signed / "pipe")
    assert cli.main(["sign", "--backend", "key", "--key", "signing.pem", "pipe"]) == 2
    assert "pipe: not a regular file or folder" in capsys.readouterr().err
    assert cli.main(["verify", "--public-key", "signing.pub", "pipe"]) == 2
    (signed / "model.sigstore.json").unlink()
    os.mkfifo(signed / "model.sigstore.json")
    assert cli.main(["verify", "--public-key", "signing.pub", "model"]) == 2
    assert "model.sigstore.json: bundle is not a regular file" in capsys.readouterr().err


@pytest.mark.parametrize("named", ["/etc/hostname", "../outside.json"])
def test_sign_refuses_verdict_inputs_outside_the_base_before_reading_them(
        ws: Path, named: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (ws.parent / "outside.json").write_text("{}")
    verdict = ws / "mlsec-results" / "verdict.json"
    doc = json.loads(verdict.read_text())
    doc["inputs"].append({"path": named, "sha256": ""})
    verdict.write_text(json.dumps(doc))
    read: list[Path] = []
    real = digests.sha256_file
    monkeypatch.setattr(digests, "sha256_file", lambda p: read.append(p) or real(p))
    assert _sign_key() == 2
    assert "outside the base folder" in capsys.readouterr().err
    assert not [p for p in read if "hostname" in str(p) or "outside" in str(p)]
    assert not list(ws.rglob("*.sigstore.json"))


def test_hostile_names_in_a_model_folder_do_not_reach_the_log_raw(signed: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    (signed / "model" / "x\n::error title=pwned::X\n.pkl").write_bytes(b"\x80\x04.")
    (signed / "model" / "l").symlink_to("\n::warning::y")
    assert cli.main(["verify", "--public-key", "signing.pub", "model"]) == 1
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).splitlines()
    commands = [line for line in lines if line.startswith("::")]
    assert commands and all(line.startswith("::error title=mlsec verify::") for line in commands)
    assert any("x\\x0a:\\:error title=pwned" in line for line in lines)  # the sanitiser's visible escape


def test_fifos_among_sign_and_verify_inputs_are_refused(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os

    fifo = ws / "mlsec-results" / "late.sarif"  # a SARIF the attestation would name, as a FIFO
    os.mkfifo(fifo)
    try:
        assert _sign_key("--sarif-dir", "mlsec-results") == 2
        assert "late.sarif: not a regular file" in capsys.readouterr().err
    finally:
        fifo.unlink()  # the session's SARIF check reads every *.sarif left behind
    os.mkfifo(ws / "jwks.json")
    assert cli.main(["verify", "--identity", "x", "--issuer", "https://i", "--jwks", "jwks.json", "model"]) == 2
    assert "jwks.json: JWKS is not a regular file" in capsys.readouterr().err
    os.mkfifo(ws / "pem")
    assert cli.main(["sign", "--backend", "key", "--key", "pem", "model"]) == 2
    assert "pem: private key is not a regular file" in capsys.readouterr().err


def test_a_non_utf8_name_in_a_model_folder_is_bad_input(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os

    (ws / "model" / os.fsdecode(b"w\xe9ights.pkl")).write_bytes(b"\x80\x04.")
    assert cli.main(["sign", "--backend", "key", "--key", "signing.pem", "model"]) == 2
    assert "file name is not valid UTF-8" in capsys.readouterr().err
    assert not (ws / "model.sigstore.json").exists()


def test_json_report_names_each_check_kind_signer_and_verdict(signed: Path, capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    assert cli.main([*VERIFY_ALL, "--json", "-"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    kinds = {c["target"]: c["kind"] for c in report["checks"]}
    assert kinds["model"] == "folder" and kinds["mlsec-results/verdict.json"] == "file"
    attestation = next(c for c in report["checks"] if c["kind"] == "attestation")
    assert attestation["verdict"] == "pass" and attestation["signer"].startswith("key ")
    _flip(signed / "model" / "weights.bin")
    assert cli.main([*VERIFY_ALL, "--json", "report.json"]) == 1
    failed = json.loads((signed / "report.json").read_text())
    assert failed["ok"] is False
    model = next(c for c in failed["checks"] if c["target"] == "model")
    assert model == {"target": "model", "kind": "folder", "ok": False, "signer": "", "trusted": "",
                     "message": model["message"]} and "weights.bin" in model["message"]
