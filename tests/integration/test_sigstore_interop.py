"""Keyless bundles other tools verify: sigstore-python's own CLI against `mlsec sign`, `mlsec verify` against it.

Sigstore's public servers (Fulcio, Rekor) cannot be reached here, so every test runs against the loopback
STAND-INS of tests/sigstore_standin.py (a CA issuing Fulcio-profile certificates with an embedded SCT, a
Rekor v1 log with inclusion proofs and signed checkpoints) and the GitHub OIDC stand-in of
tests/oidc_issuer.py; the test holds every key and writes the ClientTrustConfig both tools read. What is
real: sigstore-python's `sigstore sign` / `sigstore verify identity` (the installed CLI, as a process), and
our `mlsec sign --backend sigstore` / `mlsec verify` with `--trust-config`. On GitHub,
.github/workflows/interop.yml checks the same against the public instance.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlsec_actions import cli
from tests import oidc_issuer, sigstore_standin
from tests.integration.test_provenance_schema_pipeline import _mlsec, trained  # noqa: F401 - a trained project
from tests.integration.test_sign_verify import ws  # noqa: F401 - the pipeline-output fixture
from tests.oci_registry import Registry, oci_registry

__all__ = ["oci_registry"]

SIGSTORE = Path(sys.executable).parent / "sigstore"
IDENTITY = oidc_issuer.IDENTITY


@pytest.fixture(scope="module")
def instance() -> Iterator[sigstore_standin.Instance]:
    with oidc_issuer.running_issuer() as issuer, sigstore_standin.running_instance(issuer) as inst:
        yield inst


@pytest.fixture
def conf(instance: sigstore_standin.Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in's trust config; `mlsec sign` gets a fresh stand-in GitHub token as SIGSTORE_ID_TOKEN."""
    for var in ("GITHUB_ACTIONS", "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
                "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "MLSEC_SIGNING_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SIGSTORE_ID_TOKEN", instance.issuer.token("sigstore"))
    return instance.trust_config(tmp_path / "trust-config.json")


def sigstore_cli(conf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACTIONS_ID_TOKEN", "GITHUB_", "SIGSTORE_"))}
    return subprocess.run([str(SIGSTORE), "--trust-config", str(conf), *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def verify_identity(conf: Path, bundle: Path, artifact: Path, identity: str, issuer: str) \
        -> subprocess.CompletedProcess[str]:
    return sigstore_cli(conf, "verify", "identity", "--offline", "--bundle", str(bundle), "--cert-identity",
                        identity, "--cert-oidc-issuer", issuer, str(artifact))


def _payload(bundle: Path) -> dict[str, object]:
    return dict(json.loads(base64.b64decode(json.loads(bundle.read_text())["dsseEnvelope"]["payload"])))


def test_sigstore_cli_verifies_mlsec_file_bundles(conf: Path, instance: sigstore_standin.Instance,
                                                   tmp_path: Path) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"model bytes\n" * 100)
    b.write_bytes(b"other bytes\n")
    assert cli.main(["sign", "--backend", "sigstore", "--trust-config", str(conf), str(a), str(b)]) == 0
    bundle = tmp_path / "a.bin.sigstore.json"
    doc = json.loads(bundle.read_text())
    assert doc["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert doc["verificationMaterial"]["tlogEntries"][0]["kindVersion"] == {"kind": "dsse", "version": "0.0.1"}
    assert instance.issued and instance.entries  # the stand-ins were used, not a public instance

    ok = verify_identity(conf, bundle, a, IDENTITY, instance.issuer.url)
    assert ok.returncode == 0, ok.stderr
    assert f"OK: {a}" in ok.stderr
    assert json.loads(ok.stdout)["predicateType"] == "https://mlsec-actions.dev/signed-file/v1"

    wrong_who = verify_identity(conf, bundle, a, IDENTITY.replace("release.yml", "evil.yml"), instance.issuer.url)
    wrong_issuer = verify_identity(conf, bundle, a, IDENTITY, "https://token.actions.githubusercontent.com")
    other_file = verify_identity(conf, tmp_path / "b.bin.sigstore.json", a, IDENTITY, instance.issuer.url)
    a.write_bytes(a.read_bytes() + b"x")
    changed = verify_identity(conf, bundle, a, IDENTITY, instance.issuer.url)
    for refused in (wrong_who, wrong_issuer, other_file, changed):
        assert refused.returncode != 0, refused.stderr
        assert "FAIL" in refused.stderr
    assert "no subject for digest" in changed.stderr and "no subject for digest" in other_file.stderr


def test_sigstore_cli_refuses_mlsec_bundle_under_another_trust_root(conf: Path, instance: sigstore_standin.Instance,
                                                                    tmp_path: Path) -> None:
    """The same bundle under a trust config with other keys (another CA, CT log and Rekor) fails: the check
    above accepted it because of the stand-in's keys, not in spite of them."""
    art = tmp_path / "a.bin"
    art.write_bytes(b"payload")
    assert cli.main(["sign", "--backend", "sigstore", "--trust-config", str(conf), str(art)]) == 0
    with sigstore_standin.running_instance(instance.issuer) as stranger:
        other = stranger.trust_config(tmp_path / "other-trust-config.json")
    got = verify_identity(other, tmp_path / "a.bin.sigstore.json", art, IDENTITY, instance.issuer.url)
    assert got.returncode != 0
    assert "FAIL" in got.stderr


def test_mlsec_verifies_sigstore_cli_bundles(conf: Path, instance: sigstore_standin.Instance, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    art = tmp_path / "release.tar.gz"
    art.write_bytes(b"\x1f\x8b" + b"release" * 50)
    bundle = tmp_path / "release.tar.gz.sigstore.json"
    signed = sigstore_cli(conf, "sign", "--identity-token", instance.issuer.token("sigstore"), "--bundle",
                          str(bundle), str(art))
    assert signed.returncode == 0, signed.stderr
    assert "messageSignature" in json.loads(bundle.read_text())  # a plain file signature, not our DSSE form

    base = ["verify", str(art), "--trust-config", str(conf), "--issuer", instance.issuer.url]
    capsys.readouterr()
    assert cli.main([*base, "--identity", IDENTITY, "--repository", oidc_issuer.REPO, "--ref", "refs/heads/main"]) \
        == 0
    assert f"verify: OK   {art}" in capsys.readouterr().err
    assert cli.main([*base, "--identity", "https://github.com/octo-org/*/.github/workflows/*@refs/heads/main"]) == 0
    assert cli.main([*base, "--identity", IDENTITY.replace("octo-repo", "other-repo")]) == 1
    assert cli.main([*base, "--identity", IDENTITY, "--repository", "octo-org/other-repo"]) == 1
    assert cli.main([*base, "--identity", IDENTITY, "--ref", "refs/heads/dev"]) == 1
    # Sigstore's public trust root (shipped with sigstore-python, offline) does not trust the stand-in CA.
    assert cli.main(["verify", str(art), "--offline", "--issuer", instance.issuer.url, "--identity", IDENTITY]) == 1
    art.write_bytes(art.read_bytes() + b"\0")
    capsys.readouterr()
    assert cli.main([*base, "--identity", IDENTITY]) == 1
    assert "FAIL" in capsys.readouterr().err


def test_mlsec_verify_refuses_a_sigstore_attest_bundle_as_a_file_signature(
        conf: Path, instance: sigstore_standin.Instance, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sigstore attest` (SLSA provenance about the file, same identity, valid under the trust config) is a claim
    about the file, not our `signed-file/v1` statement: verify must not take it as the file's signature."""
    art = tmp_path / "a.bin"
    art.write_bytes(b"payload")
    predicate = tmp_path / "slsa.json"
    predicate.write_text(json.dumps({"buildDefinition": {"buildType": "https://example.test/build/v1",
                                                         "externalParameters": {}},
                                     "runDetails": {"builder": {"id": "https://example.test/builder"}}}))
    bundle = tmp_path / "a.bin.sigstore.json"
    made = sigstore_cli(conf, "attest", "--identity-token", instance.issuer.token("sigstore"), "--predicate",
                        str(predicate), "--predicate-type", "https://slsa.dev/provenance/v1", "--bundle", str(bundle),
                        str(art))
    assert made.returncode == 0, made.stderr
    assert verify_identity(conf, bundle, art, IDENTITY, instance.issuer.url).returncode == 0  # valid as what it is
    capsys.readouterr()
    assert cli.main(["verify", str(art), "--trust-config", str(conf), "--identity", IDENTITY, "--issuer",
                     instance.issuer.url]) == 1
    err = capsys.readouterr().err
    assert "FAIL" in err and "https://slsa.dev/provenance/v1" in err, err


def test_sigstore_cli_verifies_mlsec_gate_attestation(ws: Path, conf: Path,  # noqa: F811 - fixture
                                                      instance: sigstore_standin.Instance) -> None:
    assert cli.main(["sign", "--backend", "sigstore", "--trust-config", str(conf), "--verdict",
                     "mlsec-results/verdict.json", "--attest", "--sarif-dir", "mlsec-results", "model",
                     "mlsec-results/sbom.cdx.json"]) == 0
    attestation = ws / "mlsec-results" / "gate.intoto.sigstore.json"
    assert _payload(attestation)["predicateType"] == "https://mlsec-actions.dev/gate-verdict/v1"
    for subject in ("mlsec-results/verdict.json", "mlsec-results/sbom.cdx.json", "model/weights.bin"):
        got = verify_identity(conf, attestation, ws / subject, IDENTITY, instance.issuer.url)
        assert got.returncode == 0, (subject, got.stderr)
        assert json.loads(got.stdout)["predicate"]["verdict"] == "pass"
    (ws / "notes.txt").write_text("not a subject\n")
    got = verify_identity(conf, attestation, ws / "notes.txt", IDENTITY, instance.issuer.url)
    assert got.returncode != 0 and "no subject for digest" in got.stderr
    # ... and our own verifier agrees, with the same trust config.
    assert cli.main(["verify", "--trust-config", str(conf), "--identity", IDENTITY, "--issuer", instance.issuer.url,
                     "model", "mlsec-results/sbom.cdx.json", "--attestation", str(attestation)]) == 0


def test_mlsec_verify_refuses_a_log_entry_the_trusted_log_did_not_sign(
        conf: Path, instance: sigstore_standin.Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Rekor answer (inclusion proof, checkpoint, SET) signed by a key the trust config does not list."""
    art = tmp_path / "a.bin"
    art.write_bytes(b"payload")
    monkeypatch.setattr(instance, "rekor_key", sigstore_standin._ec())
    assert cli.main(["sign", "--backend", "sigstore", "--trust-config", str(conf), str(art)]) == 0
    assert cli.main(["verify", str(art), "--trust-config", str(conf), "--identity", IDENTITY, "--issuer",
                     instance.issuer.url]) == 1
    got = verify_identity(conf, tmp_path / "a.bin.sigstore.json", art, IDENTITY, instance.issuer.url)
    assert got.returncode != 0


def test_mlsec_sign_refuses_a_certificate_without_a_trusted_sct(
        conf: Path, instance: sigstore_standin.Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    art = tmp_path / "a.bin"
    art.write_bytes(b"payload")
    monkeypatch.setattr(instance, "ct_key", sigstore_standin._ec())
    entries = len(instance.entries)
    assert cli.main(["sign", "--backend", "sigstore", "--trust-config", str(conf), str(art)]) == 1
    err = capsys.readouterr().err
    assert "no signing certificate from the CA (Fulcio)" in err and "SCT" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a.bin.sigstore.json").exists()
    assert len(instance.entries) == entries  # nothing was logged


def test_mlsec_sign_reports_a_fulcio_refusal_in_one_line(
        conf: Path, instance: sigstore_standin.Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A token from an issuer the CA does not trust (another key and URL): the stand-in Fulcio answers 400."""
    art = tmp_path / "a.bin"
    art.write_bytes(b"payload")
    with oidc_issuer.running_issuer() as stranger:
        monkeypatch.setenv("SIGSTORE_ID_TOKEN", stranger.token("sigstore"))
        issued = len(instance.issued)
        capsys.readouterr()
        assert cli.main(["sign", "--backend", "sigstore", "--trust-config", str(conf), str(art)]) == 1
    err = capsys.readouterr().err.strip()
    assert "no signing certificate from the CA (Fulcio)" in err and "400" in err
    assert len(err.splitlines()) == 1
    assert len(instance.issued) == issued and not (tmp_path / "a.bin.sigstore.json").exists()


@pytest.mark.parametrize(("text", "problem"), [
    (None, "cannot read the trust config"),
    ("fifo", "the trust config is not a regular file"),
    ("{not json", "the trust config is not valid JSON"),
    ('{"mediaType": "a", "mediaType": "b"}', "the trust config has a duplicate key 'mediaType'"),
    ("[" * 200 + "]" * 200, "nested deeper than 128 levels"),
    ('{"mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"}', "trustedRoot: Field required"),
    ("wrong-media-type", "mediaType: Input should be"),
    ("no-tlogs", "no transparency log instances"),
    ("no-rekor-url", "No valid Rekor"),
])
def test_bad_trust_config_is_a_one_line_error_before_anything_is_signed(
        conf: Path, instance: sigstore_standin.Instance, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        text: str | None, problem: str) -> None:
    bad = tmp_path / "bad-trust-config.json"
    doc = json.loads(conf.read_text())
    if text == "wrong-media-type":
        doc["mediaType"] = "application/vnd.dev.sigstore.clienttrustconfig.v9+json"
    elif text == "no-tlogs":
        doc["trustedRoot"]["tlogs"] = []
    elif text == "no-rekor-url":
        doc["signingConfig"]["rekorTlogUrls"] = []
    if text == "fifo":
        os.mkfifo(bad)  # opening it for reading would wait for a writer forever
    elif text is not None:
        bad.write_text(text if text.startswith(("{", "[")) else json.dumps(doc))
    art = tmp_path / "a.bin"
    art.write_bytes(b"payload")
    issued = len(instance.issued)
    capsys.readouterr()
    assert cli.main(["sign", "--backend", "sigstore", "--trust-config", str(bad), str(art)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and problem in err and len(err.splitlines()) == 1
    assert not (tmp_path / "a.bin.sigstore.json").exists() and len(instance.issued) == issued
    if text == "no-rekor-url":  # the verifier does not need the signing config
        return
    assert cli.main(["verify", str(art), "--trust-config", str(bad), "--identity", IDENTITY, "--issuer",
                     instance.issuer.url]) == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and problem in err and len(err.splitlines()) == 1


def test_trust_config_is_for_the_sigstore_backend_alone(conf: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    art = tmp_path / "a.bin"
    art.write_bytes(b"payload")
    assert cli.main(["sign", "--backend", "key", "--trust-config", str(conf), str(art)]) == 2
    assert cli.main(["sign", "--staging", "--trust-config", str(conf), str(art)]) == 2
    assert cli.main(["verify", str(art), "--staging", "--trust-config", str(conf), "--identity", IDENTITY,
                     "--issuer", "https://issuer.example"]) == 2
    assert cli.main(["sign-image", "127.0.0.1:1/app@sha256:" + "0" * 64, "--backend", "key", "--trust-config",
                     str(conf), "--verdict", str(art)]) == 2
    err = capsys.readouterr().err
    assert err.count("--trust-config is for the sigstore backend") == 3 and "--staging: give one" in err
    assert not (tmp_path / "a.bin.sigstore.json").exists()


def test_model_signing_verifies_mlsec_keyless_model_folder_bundle(ws: Path, conf: Path,  # noqa: F811 - fixture
                                                                  instance: sigstore_standin.Instance) -> None:
    """OpenSSF model_signing's own Sigstore verifier (sigstore-python inside, same trust config) accepts the
    folder bundle `mlsec sign --backend sigstore` writes, and refuses it for another identity or a changed file."""
    from model_signing import verifying
    from sigstore.errors import VerificationError as SigstoreFailure

    assert cli.main(["sign", "--backend", "sigstore", "--trust-config", str(conf), "model"]) == 0

    def check(identity: str) -> None:
        verifying.Config().use_sigstore_verifier(  # type: ignore[no-untyped-call]  # untyped library
            identity=identity, oidc_issuer=instance.issuer.url, trust_config=conf,
        ).verify(ws / "model", ws / "model.sigstore.json")

    check(IDENTITY)
    with pytest.raises(SigstoreFailure, match="SANs do not match"):
        check(IDENTITY.replace("release.yml", "evil.yml"))
    (ws / "model" / "weights.bin").write_bytes(b"swapped")
    with pytest.raises(ValueError, match=r"weights\.bin"):
        check(IDENTITY)


def test_keyless_image_signature_verifies_under_the_trust_config(oci_registry: Registry, conf: Path,
                                                                 instance: sigstore_standin.Instance,
                                                                 tmp_path: Path) -> None:
    """sign-image / verify-image with the sigstore backend on the real loopback registry (tests/oci_registry.py)."""
    from mlsec_actions.oci.client import Client
    from tests.oci_images import push_image

    digest = push_image(Client(oci_registry.host), "app/keyless", "v1", "keyless")
    ref = f"{oci_registry.host}/app/keyless@{digest}"
    verdict = tmp_path / "verdict.json"
    verdict.write_text(json.dumps({"verdict": "pass", "policy": "default", "violations": []}))
    assert cli.main(["sign-image", ref, "--backend", "sigstore", "--trust-config", str(conf), "--verdict",
                     str(verdict)]) == 0
    who = ["--trust-config", str(conf), "--issuer", instance.issuer.url]
    assert cli.main(["verify-image", ref, *who, "--identity", IDENTITY, "--require-attestation", "gate"]) == 0
    assert cli.main(["verify-image", ref, *who, "--identity", IDENTITY.replace("release", "other")]) == 1
    assert cli.main(["verify-image", ref, "--offline", "--issuer", instance.issuer.url, "--identity", IDENTITY]) == 1


def test_sigstore_cli_verifies_mlsec_training_provenance(trained: Path, conf: Path,  # noqa: F811 - fixture
                                                        instance: sigstore_standin.Instance) -> None:
    """The train provenance (a DSSE bundle like the gate attestation) is verified by `sigstore verify identity`
    for each output it names, and refused for a file it does not name or an output changed after training."""
    env = {"SIGSTORE_ID_TOKEN": instance.issuer.token("sigstore")}
    signed = _mlsec(trained, "sign", "--backend", "sigstore", "--trust-config", str(conf), "model",
                    "--provenance", "mlsec-results/train.provenance.json", env=env)
    assert signed.returncode == 0, signed.stderr
    bundle = trained / "mlsec-results" / "train.provenance.json.sigstore.json"
    outputs = sorted(p for p in (trained / "model").rglob("*") if p.is_file())
    assert len(outputs) == 2, outputs
    for output in outputs:
        got = verify_identity(conf, bundle, output, IDENTITY, instance.issuer.url)
        assert got.returncode == 0, (output.name, got.stderr)
        assert json.loads(got.stdout)["predicateType"] == "https://slsa.dev/provenance/v1"
    got = verify_identity(conf, bundle, trained / "data.csv", IDENTITY, instance.issuer.url)
    assert got.returncode != 0 and "no subject for digest" in got.stderr
    outputs[0].write_bytes(outputs[0].read_bytes() + b"\n")
    got = verify_identity(conf, bundle, outputs[0], IDENTITY, instance.issuer.url)
    assert got.returncode != 0 and "no subject for digest" in got.stderr
