"""kms and vault signing backends, end to end through `mlsec sign` and `mlsec verify --public-key`.

AWS KMS is moto's standalone server on loopback (a real process speaking the KMS API; AWS itself cannot be
reached here). Vault is a STAND-IN (tests/vault_transit.py) for the two documented transit endpoints, since
Vault is not installable here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlsec_actions import cli
from tests import vault_transit
from tests.supply_servers import S3Server, free_port


@pytest.fixture
def aws(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """The session's moto server (tests/supply_servers.py) speaks KMS and Secrets Manager too."""
    monkeypatch.chdir(tmp_path)
    for k in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "GITHUB_ACTIONS"):
        monkeypatch.delenv(k, raising=False)
    env = {**s3_server.env(), "AWS_ENDPOINT_URL": s3_server.endpoint}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def _kms_key(spec: str = "ECC_NIST_P256") -> str:
    import boto3

    client = boto3.client("kms")
    key_id = str(client.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"])
    alias = f"alias/release-{key_id[:8]}"
    client.create_alias(AliasName=alias, TargetKeyId=key_id)
    return alias


def test_kms_signs_files_and_folders_that_verify_with_the_exported_key(aws: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"weights")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "a.txt").write_text("a")
    alias = _kms_key()
    assert cli.main(["sign", "--backend", "kms", "--kms-key", alias, "--public-key-out", "kms.pub",
                     "model.bin", "folder"]) == 0
    assert cli.main(["verify", "--public-key", "kms.pub", "model.bin", "folder"]) == 0
    (tmp_path / "model.bin").write_bytes(b"poisoned")
    assert cli.main(["verify", "--public-key", "kms.pub", "model.bin"]) == 1


def test_a_statement_over_the_raw_limit_is_sent_as_a_digest(aws: dict[str, str], tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """moto does not implement MessageType=DIGEST (it signs the digest as a message), so the signature it
    returns for a large statement does not verify and the backend must refuse to write it: fail closed."""
    folder = tmp_path / "big"
    folder.mkdir()
    for i in range(80):
        (folder / f"shard-{i:03}.bin").write_bytes(bytes([i]))
    assert cli.main(["sign", "--backend", "kms", "--kms-key", _kms_key(), "big"]) == 1
    assert "does not verify under the key" in capsys.readouterr().err
    assert not (tmp_path / "big.sigstore.json").exists()


def test_kms_refuses_a_wrong_key_type_missing_key_and_unreachable_endpoint(
        aws: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "f").write_text("x")
    assert cli.main(["sign", "--backend", "kms", "--kms-key", _kms_key("RSA_2048"), "f"]) == 1
    assert "ECC_NIST_P256" in capsys.readouterr().err
    monkeypatch.delenv("MLSEC_KMS_KEY", raising=False)
    assert cli.main(["sign", "--backend", "kms", "f"]) == 1
    assert "--kms-key" in capsys.readouterr().err
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    assert cli.main(["sign", "--backend", "kms", "--kms-key", "alias/x", "f"]) == 1
    err = capsys.readouterr().err
    assert "kms backend" in err and "Traceback" not in err and "testing" not in err
    assert not (tmp_path / "f.sigstore.json").exists()


@pytest.fixture
def vault(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[vault_transit.Transit]:
    monkeypatch.chdir(tmp_path)
    with vault_transit.running_transit() as transit:
        for k, v in transit.env().items():
            monkeypatch.setenv(k, v)
        yield transit


def test_vault_transit_signs_and_the_token_is_masked(vault: vault_transit.Transit, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    vault.add_key("release")
    vault.add_key("release")  # two versions: the latest signs, and its public key is the one exported
    (tmp_path / "model.bin").write_bytes(b"weights")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert cli.main(["sign", "--backend", "vault", "--vault-key", "release", "--public-key-out", "v.pub",
                     "model.bin"]) == 0
    out = capsys.readouterr().out
    assert f"::add-mask::{vault_transit.TOKEN}" in out
    monkeypatch.delenv("GITHUB_ACTIONS")
    assert vault.signed == ["release"]
    assert cli.main(["verify", "--public-key", "v.pub", "model.bin"]) == 0
    bundle = json.loads((tmp_path / "model.bin.sigstore.json").read_text())
    assert vault_transit.TOKEN not in json.dumps(bundle)


def test_vault_refuses_bad_token_wrong_type_remote_http_and_path_injection(
        vault: vault_transit.Transit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    vault.add_key("rsa", kind="rsa-2048")
    vault.add_key("release")
    (tmp_path / "f").write_text("x")
    assert cli.main(["sign", "--backend", "vault", "--vault-key", "rsa", "f"]) == 1
    assert "not ecdsa-p256" in capsys.readouterr().err
    assert cli.main(["sign", "--backend", "vault", "--vault-key", "../sys/raw", "f"]) == 1
    assert "plain Vault path segment" in capsys.readouterr().err
    monkeypatch.setenv("VAULT_TOKEN", "wrong")
    assert cli.main(["sign", "--backend", "vault", "--vault-key", "release", "f"]) == 1
    assert "HTTP 403 permission denied" in capsys.readouterr().err
    monkeypatch.setenv("VAULT_ADDR", "http://vault.example.com:8200")
    assert cli.main(["sign", "--backend", "vault", "--vault-key", "release", "f"]) == 1
    assert "must be https" in capsys.readouterr().err
    assert not (tmp_path / "f.sigstore.json").exists()
    assert os.environ["VAULT_TOKEN"] == "wrong"


def _pem(tmp_path: Path) -> tuple[str, Path]:
    from mlsec_actions.signing import key

    key.generate(tmp_path / "k.pem", tmp_path / "k.pub")
    pem = (tmp_path / "k.pem").read_text()
    (tmp_path / "k.pem").unlink()  # the key lives only in the secret store now
    return pem, tmp_path / "k.pub"


def test_key_from_secrets_manager_is_masked_and_signs(aws: dict[str, str], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import boto3

    pem, pub = _pem(tmp_path)
    boto3.client("secretsmanager").create_secret(Name="release/signing-key", SecretString=pem)
    (tmp_path / "f").write_text("x")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("MLSEC_KEY_SOURCE", "aws-secretsmanager:release/signing-key")  # as the action passes it
    assert cli.main(["sign", "--backend", "key", "f"]) == 0
    out = capsys.readouterr().out
    first_line = pem.splitlines()[1]
    assert "::add-mask::" in out and first_line in out.split("::add-mask::", 1)[1]  # masked before use
    assert out.count(first_line) == 1
    monkeypatch.delenv("GITHUB_ACTIONS")
    assert cli.main(["verify", "--public-key", str(pub), "f"]) == 0
    assert cli.main(["sign", "--backend", "key", "--key-source", "aws-secretsmanager:missing", "f"]) == 1
    assert "ResourceNotFoundException" in capsys.readouterr().err


def test_key_from_vault_kv_and_malformed_sources(vault: vault_transit.Transit, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    pem, pub = _pem(tmp_path)
    vault.kv["secret/release/signing"] = {"pem": pem}
    (tmp_path / "f").write_text("x")
    assert cli.main(["sign", "--backend", "key", "--key-source", "vault-kv:secret/release/signing#pem", "f"]) == 0
    assert cli.main(["verify", "--public-key", str(pub), "f"]) == 0
    assert cli.main(["sign", "--backend", "key", "--key-source", "vault-kv:secret/release/signing#other", "f"]) == 1
    assert "no field 'other'" in capsys.readouterr().err
    for bad in ("vault-kv:secret/../sys/raw#pem", "file:/etc/passwd", "vault-kv:secret/x"):
        assert cli.main(["sign", "--backend", "key", "--key-source", bad, "f"]) == 2, bad
        assert "--key-source" in capsys.readouterr().err
