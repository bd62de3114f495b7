"""Cross-protocol forgery (issue 9, seen 3) on every backend: a signature made for one kind of artifact
never verifies as another.

The attack: get a file signed whose bytes are the DSSE pre-authentication encoding (PAE) of a gate
statement saying `pass`, then move that signature into an attestation bundle. Before typed statements
the key backend signed `sha256(file)` and `sha256(PAE)` with one key, so `mlsec verify --attestation`
printed OK. Key and OpenPubkey run here end to end (OpenPubkey against the loopback stand-in issuer in
tests/oidc_issuer.py); keyless Sigstore cannot sign here, so its verifier is attacked with the real
GitHub Actions bundle in tests/fixtures/sigstore/.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlsec_actions import cli
from mlsec_actions.signing import BACKENDS, attest, key
from mlsec_actions.signing import bundle as bl
from mlsec_actions.signing.interface import BUNDLE_MEDIA_TYPE, INTOTO_PAYLOAD_TYPE, Signer
from tests import oidc_issuer, vault_transit

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sigstore"
GH_IDENTITY = "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"
GH_ISSUER = "https://token.actions.githubusercontent.com"


def _gate_statement(subject: Path) -> bytes:
    """What the attacker wants attested: a passing gate over a file of their choice."""
    digest = hashlib.sha256(subject.read_bytes()).hexdigest()
    return json.dumps({"_type": attest.STATEMENT_TYPE, "predicateType": attest.PREDICATE_TYPE,
                       "subject": [{"name": subject.name, "digest": {"sha256": digest}}],
                       "predicate": {"verdict": "pass", "models": []}}).encode()


def _envelope_bundle(material: dict[str, object], payload: bytes, sig: str) -> dict[str, object]:
    return {"mediaType": BUNDLE_MEDIA_TYPE, "verificationMaterial": material,
            "dsseEnvelope": {"payload": bl.b64(payload), "payloadType": INTOTO_PAYLOAD_TYPE,
                             "signatures": [{"sig": sig, "keyid": ""}]}}


def _sig_of(bundle: dict[str, object]) -> str:
    if "dsseEnvelope" in bundle:
        return str(bundle["dsseEnvelope"]["signatures"][0]["sig"])  # type: ignore[index]
    return str(bundle["messageSignature"]["signature"])  # type: ignore[index]


@pytest.fixture(params=["key", "openpubkey", "vault"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[tuple[list[str], list[str]]]:
    """(sign args, verify trust args) for one backend we can run end to end here."""
    monkeypatch.chdir(tmp_path)
    for var in ("MLSEC_SIGNING_KEY", "GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(var, raising=False)
    if request.param == "key":
        key.generate(tmp_path / "signing.pem", tmp_path / "signing.pub")
        yield ["--backend", "key", "--key", "signing.pem"], ["--public-key", "signing.pub"]
        return
    if request.param == "vault":  # the kms backend writes the same bundles (tests/integration/test_sign_kms_vault.py)
        with vault_transit.running_transit() as transit:
            transit.add_key("release")
            for k, v in transit.env().items():
                monkeypatch.setenv(k, v)
            from mlsec_actions.signing.vault import VaultSigner

            (tmp_path / "vault.pub").write_bytes(bl.public_pem(VaultSigner("release").public_key))
            yield ["--backend", "vault", "--vault-key", "release"], ["--public-key", "vault.pub"]
        return
    with oidc_issuer.running_issuer() as issuer:
        for k, v in issuer.env().items():
            monkeypatch.setenv(k, v)
        yield ["--backend", "openpubkey"], ["--identity", oidc_issuer.IDENTITY, "--issuer", issuer.url]


def test_file_signature_moved_into_an_attestation_fails(backend: tuple[list[str], list[str]], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    sign, trust = backend
    (tmp_path / "evil.bin").write_bytes(b"the attacker's model")
    statement = _gate_statement(tmp_path / "evil.bin")
    (tmp_path / "forge.bin").write_bytes(bl.pae(INTOTO_PAYLOAD_TYPE, statement))
    assert cli.main(["sign", *sign, "forge.bin"]) == 0  # the signing oracle: any file a pipeline signs
    file_bundle = json.loads((tmp_path / "forge.bin.sigstore.json").read_text())
    assert "messageSignature" not in file_bundle  # a typed statement, never a bare digest
    forged = _envelope_bundle(file_bundle["verificationMaterial"], statement, _sig_of(file_bundle))
    (tmp_path / "forged.sigstore.json").write_text(json.dumps(forged))
    (tmp_path / "as-is.sigstore.json").write_text(json.dumps(file_bundle))
    capsys.readouterr()
    for attestation in ("forged.sigstore.json", "as-is.sigstore.json"):
        assert cli.main(["verify", *trust, "--attestation", attestation]) == 1, attestation
    err = capsys.readouterr().err
    assert "verify: OK" not in err
    assert "statement was modified" in err  # the moved signature is over the file statement's PAE
    assert "signed statement has predicate type 'https://mlsec-actions.dev/signed-file/v1'" in err
    # The file's own bundle still verifies: nothing else was broken to get here.
    assert cli.main(["verify", *trust, "forge.bin"]) == 0


def test_attestation_signature_moved_onto_a_file_fails(backend: tuple[list[str], list[str]], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The other direction: a real attestation's signature as a bare-digest bundle of a file holding its PAE."""
    sign, trust = backend
    (tmp_path / "verdict.json").write_text(json.dumps({"verdict": "pass", "violations": []}))
    assert cli.main(["sign", *sign, "--verdict", "verdict.json", "--attest", "--attestation-out",
                     "gate.intoto.sigstore.json"]) == 0
    att = json.loads((tmp_path / "gate.intoto.sigstore.json").read_text())
    pae = bl.pae(INTOTO_PAYLOAD_TYPE, base64.b64decode(att["dsseEnvelope"]["payload"]))
    (tmp_path / "x.bin").write_bytes(pae)
    digest = bl.b64(hashlib.sha256(pae).digest())
    bare = {"mediaType": BUNDLE_MEDIA_TYPE, "verificationMaterial": att["verificationMaterial"],
            "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": digest},
                                 "signature": _sig_of(att)}}
    (tmp_path / "x.bin.sigstore.json").write_text(json.dumps(bare))
    # The whole attestation bundle offered as a file's bundle, and as a model folder's.
    (tmp_path / "y.bin").write_bytes(b"y")
    shutil.copyfile(tmp_path / "gate.intoto.sigstore.json", tmp_path / "y.bin.sigstore.json")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "y.bin").write_bytes(b"y")
    shutil.copyfile(tmp_path / "gate.intoto.sigstore.json", tmp_path / "folder.sigstore.json")
    capsys.readouterr()
    for target in ("x.bin", "y.bin", "folder"):
        assert cli.main(["verify", *trust, target]) == 1, target
    err = capsys.readouterr().err
    assert "verify: OK" not in err
    assert "messageSignature bundle (a bare file digest" in err
    assert "predicate type 'https://mlsec-actions.dev/gate-verdict/v1'" in err


def test_every_backend_signs_only_statements() -> None:
    """No backend keeps a method that signs a bare digest or caller-chosen payload type."""
    from mlsec_actions.signing.key import KeySigner
    from mlsec_actions.signing.kms import KmsSigner
    from mlsec_actions.signing.openpubkey import OpenPubkeySigner
    from mlsec_actions.signing.sigstore import SigstoreSigner
    from mlsec_actions.signing.vault import VaultSigner

    classes: dict[str, type[Signer]] = {"key": KeySigner, "openpubkey": OpenPubkeySigner, "sigstore": SigstoreSigner,
                                        "kms": KmsSigner, "vault": VaultSigner}
    assert set(classes) == set(BACKENDS)
    for cls in classes.values():
        assert {n for n in dir(cls) if n.startswith("sign")} == {"sign_statement"}, cls


@pytest.fixture
def gh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """The real keyless GitHub Actions bundle (a hashedrekord over a wheel), beside a copy of its wheel."""
    monkeypatch.chdir(tmp_path)
    shutil.copyfile(FIXTURES / "bundle_v3_github.whl", tmp_path / "a.whl")
    doc: dict[str, object] = json.loads((FIXTURES / "bundle_v3_github.whl.sigstore").read_text())
    return doc


KEYLESS = ["verify", "--identity", GH_IDENTITY, "--issuer", GH_ISSUER, "--offline"]


def test_keyless_file_signature_moved_into_an_attestation_fails(gh: dict[str, object], tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    statement = _gate_statement(tmp_path / "a.whl")
    forged = _envelope_bundle(gh["verificationMaterial"], statement, _sig_of(gh))  # type: ignore[arg-type]
    forged["mediaType"] = gh["mediaType"]
    (tmp_path / "forged.sigstore.json").write_text(json.dumps(forged))
    (tmp_path / "as-is.sigstore.json").write_text(json.dumps(gh))
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder.sigstore.json").write_text(json.dumps(gh))
    capsys.readouterr()
    assert cli.main([*KEYLESS, "--attestation", "forged.sigstore.json"]) == 1
    assert cli.main([*KEYLESS, "--attestation", "as-is.sigstore.json"]) == 1
    assert cli.main([*KEYLESS, "folder"]) == 1
    err = capsys.readouterr().err
    assert "verify: OK" not in err
    assert "keyless verification failed" in err
    assert "an attestation bundle must be a DSSE envelope" in err
    assert "a model folder's bundle must be a DSSE model_signing manifest" in err


def _write(gh: dict[str, object], tmp_path: Path) -> None:
    (tmp_path / "a.whl.sigstore.json").write_text(json.dumps(gh))


def test_keyless_file_bundle_verifies_and_its_typing_fields_are_checked(
        gh: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(gh, tmp_path)
    assert cli.main([*KEYLESS, "a.whl"]) == 0
    # A Rekor v2 hashedrekord/0.0.2 entry is what a DSSE envelope is logged as too: refused for a bare digest.
    v2 = copy.deepcopy(gh)
    v2["verificationMaterial"]["tlogEntries"][0]["kindVersion"]["version"] = "0.0.2"  # type: ignore[index]
    _write(v2, tmp_path)
    assert cli.main([*KEYLESS, "a.whl"]) == 1
    assert "must have one Rekor v1 hashedrekord/0.0.1 entry, not ['hashedrekord/0.0.2']" in capsys.readouterr().err
    algo = copy.deepcopy(gh)
    algo["messageSignature"]["messageDigest"]["algorithm"] = "SHA2_384"  # type: ignore[index]
    _write(algo, tmp_path)
    assert cli.main([*KEYLESS, "a.whl"]) == 1
    assert "messageDigest.algorithm is 'SHA2_384', expected 'SHA2_256'" in capsys.readouterr().err


@pytest.mark.parametrize(("edit", "message"), [
    ({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json;evil"}, "mediaType"),
    ({"mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.2x"}, "mediaType"),
    ({"extra": 1}, "unknown fields ['extra']"),
    ({"dsseEnvelope": {}}, "exactly one of messageSignature and dsseEnvelope"),
    ({"messageSignature": {"messageDigest": {}, "signature": "", "kindVersion": 1}},
     "messageSignature has unknown fields ['kindVersion']"),
    ({"verificationMaterial": {"tlogEntries": [], "dsseEnvelope": {}}},
     "verificationMaterial has unknown fields ['dsseEnvelope']"),
])
def test_bundle_fields_are_checked_before_use(gh: dict[str, object], tmp_path: Path, edit: dict[str, object],
                                              message: str, capsys: pytest.CaptureFixture[str]) -> None:
    _write({**gh, **edit}, tmp_path)
    assert cli.main([*KEYLESS, "a.whl"]) == 2
    err = capsys.readouterr().err
    assert "a.whl.sigstore.json" in err
    assert message in err
