"""sign-image and verify-image against the real distribution registry (tests/oci_registry.py) on loopback.

The image is pushed by our client (tests/oci_images.py); signatures go through the CLI. cosign is not
installable here (no Debian or PyPI package), so the stored layout is checked against cosign's documented format
(src/mlsec_actions/oci/cosign.py cites the sources) by reading it back with plain HTTP and cryptography, and
skopeo copies the signature tags, which checks every manifest and blob digest we wrote.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mlsec_actions import cli
from mlsec_actions.oci.client import OCI_MANIFEST, Client
from mlsec_actions.signing import key
from tests.oci_images import push_image
from tests.oci_registry import Registry, oci_registry

__all__ = ["oci_registry"]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("keys")
    out = {}
    for name in ("a", "b"):
        key.generate(folder / f"{name}.pem", folder / f"{name}.pub")
        out[name] = (folder / f"{name}.pem", folder / f"{name}.pub")
    return out


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for var in ("MLSEC_SIGNING_KEY", "GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY",
                "MLSEC_REGISTRY_TOKEN", "MLSEC_REGISTRY_USERNAME"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "verdict.json").write_text(json.dumps({"verdict": "pass", "policy": "default", "violations": []}))
    (tmp_path / "sbom.cdx.json").write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6",
                                                        "components": [{"type": "file", "name": "hello.txt"}]}))
    return tmp_path


def _sign(ws: Path, ref: str, private: Path, *extra: str) -> int:
    return cli.main(["sign-image", ref, "--backend", "key", "--key", str(private), "--verdict",
                     str(ws / "verdict.json"), *extra])


def _verify(ref: str, public: Path, *extra: str, out: Path | None = None) -> tuple[int, dict[str, object]]:
    args = ["verify-image", ref, "--public-key", str(public), *extra]
    if out is not None:
        args += ["--json", str(out)]
    code = cli.main(args)
    return code, (json.loads(out.read_text())["images"][0] if out is not None else {})


def _get(registry: Registry, path: str, accept: str = OCI_MANIFEST) -> dict[str, object]:
    req = urllib.request.Request(f"{registry.url}/v2/{path}", headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=10) as resp:
        doc: dict[str, object] = json.loads(resp.read())
        return doc


def _blob(registry: Registry, repo: str, digest: str) -> bytes:
    with urllib.request.urlopen(f"{registry.url}/v2/{repo}/blobs/{digest}", timeout=10) as resp:
        data: bytes = resp.read()
        return data


def test_key_signature_is_stored_in_cosign_layout_and_verifies(oci_registry: Registry, ws: Path,
                                                               keys: dict[str, tuple[Path, Path]]) -> None:
    client = Client(oci_registry.host)
    digest = push_image(client, "app/layout", "v1", "layout")
    ref = f"{oci_registry.host}/app/layout@{digest}"
    assert _sign(ws, ref, keys["a"][0], "--sbom", str(ws / "sbom.cdx.json"), "--json", str(ws / "w.json")) == 0
    assert json.loads((ws / "w.json").read_text())["digest"] == digest

    # cosign's .sig: one simple-signing layer, signature annotation over the exact payload bytes.
    sig = _get(oci_registry, f"app/layout/manifests/{digest.replace(':', '-')}.sig")
    layers = sig["layers"]
    assert isinstance(layers, list) and len(layers) == 1
    assert layers[0]["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    payload = _blob(oci_registry, "app/layout", layers[0]["digest"])
    doc = json.loads(payload)
    assert doc["critical"] == {"identity": {"docker-reference": f"{oci_registry.host}/app/layout"},
                               "image": {"docker-manifest-digest": digest},
                               "type": "cosign container image signature"}
    public = serialization.load_pem_public_key(keys["a"][1].read_bytes())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(base64.b64decode(layers[0]["annotations"]["dev.cosignproject.cosign/signature"]), payload,
                  ec.ECDSA(hashes.SHA256()))
    config = json.loads(_blob(oci_registry, "app/layout", sig["config"]["digest"]))  # type: ignore[index]
    assert config["rootfs"]["diff_ids"] == [layers[0]["digest"]]

    # cosign's .att: DSSE layers with the predicate type annotation, one per attestation.
    att = _get(oci_registry, f"app/layout/manifests/{digest.replace(':', '-')}.att")
    assert isinstance(att["layers"], list)
    types = sorted(layer["annotations"]["predicateType"] for layer in att["layers"])
    assert types == ["https://cyclonedx.org/bom", "https://mlsec-actions.dev/image-gate-verdict/v1"]
    assert {layer["mediaType"] for layer in att["layers"]} == {"application/vnd.dsse.envelope.v1+json"}

    # OCI 1.1 referrers through the fallback tag (distribution 2.8 has no referrers API).
    index = _get(oci_registry, f"app/layout/manifests/{digest.replace(':', '-')}",
                 "application/vnd.oci.image.index.v1+json")
    entries = index["manifests"]
    assert isinstance(entries, list) and len(entries) == 3
    assert {e["artifactType"] for e in entries} == {"application/vnd.dev.sigstore.bundle.v0.3+json"}
    referrer = _get(oci_registry, f"app/layout/manifests/{entries[0]['digest']}")
    assert referrer["subject"]["digest"] == digest  # type: ignore[index]

    code, report = _verify(ref, keys["a"][1], "--require-attestation", "sbom", "--require-attestation", "gate",
                           out=ws / "v.json")
    assert code == 0, report
    assert report["digest"] == digest and not report["problems"]
    assert sorted(report["attestations"]) == ["https://cyclonedx.org/bom",  # type: ignore[arg-type]
                                              "https://mlsec-actions.dev/image-gate-verdict/v1"]


def test_second_signature_is_appended_not_replaced(oci_registry: Registry, ws: Path,
                                                   keys: dict[str, tuple[Path, Path]]) -> None:
    client = Client(oci_registry.host)
    digest = push_image(client, "app/append", "v1", "append")
    ref = f"{oci_registry.host}/app/append@{digest}"
    assert _sign(ws, ref, keys["a"][0]) == 0
    assert _sign(ws, ref, keys["b"][0]) == 0
    assert _sign(ws, ref, keys["b"][0]) == 0  # the same key again adds no duplicate cosign layer
    sig = _get(oci_registry, f"app/append/manifests/{digest.replace(':', '-')}.sig")
    assert isinstance(sig["layers"], list) and len(sig["layers"]) == 2
    for name in ("a", "b"):
        code, report = _verify(ref, keys[name][1], out=ws / f"{name}.json")
        assert code == 0, report


def test_tag_is_resolved_once_and_a_moved_tag_fails(oci_registry: Registry, ws: Path,
                                                    keys: dict[str, tuple[Path, Path]]) -> None:
    client = Client(oci_registry.host)
    signed = push_image(client, "app/moved", "release", "moved-1")
    assert _sign(ws, f"{oci_registry.host}/app/moved:release", keys["a"][0], "--json", str(ws / "w.json")) == 0
    assert json.loads((ws / "w.json").read_text())["image"] == f"{oci_registry.host}/app/moved@{signed}"
    other = push_image(client, "app/moved", "release", "moved-2")  # someone moves the tag after signing
    code, report = _verify(f"{oci_registry.host}/app/moved:release", keys["a"][1], out=ws / "v.json")
    assert code == 1
    assert report["digest"] == other
    assert report["problems"] == [f"no valid signature for {other}"]
    assert _verify(f"{oci_registry.host}/app/moved@{signed}", keys["a"][1])[0] == 0


def test_signature_for_another_digest_fails(oci_registry: Registry, ws: Path,
                                            keys: dict[str, tuple[Path, Path]]) -> None:
    client = Client(oci_registry.host)
    signed = push_image(client, "app/swap", "a", "swap-a")
    victim = push_image(client, "app/swap", "b", "swap-b")
    assert _sign(ws, f"{oci_registry.host}/app/swap@{signed}", keys["a"][0]) == 0
    # An attacker copies A's signature manifests to B's tags (cosign layout and referrers fallback).
    for suffix in (".sig", ""):
        manifest = client.get_manifest("app/swap", signed.replace(":", "-") + suffix)
        assert manifest is not None
        client.put_manifest("app/swap", victim.replace(":", "-") + suffix, manifest.data, manifest.media_type)
    code, report = _verify(f"{oci_registry.host}/app/swap@{victim}", keys["a"][1], out=ws / "v.json")
    assert code == 1
    problems = report["problems"]
    assert isinstance(problems, list)
    assert problems[0] == f"no valid signature for {victim}"
    assert f"cosign signature 1: signed for another image digest ({signed}, the image is {victim})" in problems


def test_unsigned_wrong_key_and_other_repository_fail(oci_registry: Registry, ws: Path,
                                                      keys: dict[str, tuple[Path, Path]]) -> None:
    client = Client(oci_registry.host)
    unsigned = push_image(client, "app/plain", "v1", "plain")
    code, report = _verify(f"{oci_registry.host}/app/plain@{unsigned}", keys["a"][1], out=ws / "u.json")
    assert (code, report["problems"]) == (1, [f"no valid signature for {unsigned}"])
    signed = push_image(client, "app/keyed", "v1", "keyed")
    assert _sign(ws, f"{oci_registry.host}/app/keyed@{signed}", keys["a"][0]) == 0
    code, report = _verify(f"{oci_registry.host}/app/keyed@{signed}", keys["b"][1], out=ws / "k.json")
    assert code == 1
    assert "cosign signature 1: the signature does not verify with any trusted public key" in report["problems"]
    code, report = _verify(f"{oci_registry.host}/app/keyed@{signed}", keys["b"][1], "--public-key",
                           str(keys["a"][1]), "--require-attestation", "gate", out=ws / "two.json")
    assert code == 0 and not report["problems"], report  # any trusted key may have signed (.sig, .att, referrers)
    # The same image and signature served under another repository name: the signed identity differs.
    for ref in (signed, signed.replace(":", "-") + ".sig"):
        manifest = client.get_manifest("app/keyed", ref)
        assert manifest is not None
        for layer in [*manifest.json().get("layers", []), manifest.json()["config"]]:
            client.put_blob("app/copy", client.get_blob("app/keyed", layer["digest"], limit=1 << 20))
        client.put_manifest("app/copy", ref, manifest.data, manifest.media_type)
    code, report = _verify(f"{oci_registry.host}/app/copy@{signed}", keys["a"][1], out=ws / "c.json")
    assert code == 1
    assert f"cosign signature 1: signed for repository '{oci_registry.host}/app/keyed', not " \
           f"'{oci_registry.host}/app/copy'" in report["problems"]
    assert _verify(f"{oci_registry.host}/app/copy@{signed}", keys["a"][1], "--signed-repository",
                   f"{oci_registry.host}/app/keyed")[0] == 0


def test_failing_verdict_writes_nothing(oci_registry: Registry, ws: Path, keys: dict[str, tuple[Path, Path]]) -> None:
    client = Client(oci_registry.host)
    digest = push_image(client, "app/red", "v1", "red")
    (ws / "verdict.json").write_text(json.dumps({"verdict": "fail", "violations": [{"rule": "x"}]}))
    assert _sign(ws, f"{oci_registry.host}/app/red@{digest}", keys["a"][0]) == 1
    assert client.get_manifest("app/red", digest.replace(":", "-") + ".sig", missing_ok=True) is None
    assert client.get_manifest("app/red", digest.replace(":", "-"), missing_ok=True) is None


def test_bad_references_are_usage_errors(ws: Path, keys: dict[str, tuple[Path, Path]],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("app/nohost:v1", "127.0.0.1:5000/App", "127.0.0.1:5000/app@sha256:abc",
                "127.0.0.1:5000/app\n::error::x", "127.0.0.1:5000/app@md5:" + "0" * 32):
        assert _sign(ws, bad, keys["a"][0]) == 2, bad
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "::error::" not in err.replace("'", "").split("reference")[0]
    assert cli.main(["sign-image", "127.0.0.1:1/app", "--backend", "key", "--key", str(keys["a"][0]),
                     "--verdict", str(ws / "verdict.json")]) == 2  # neither a tag nor a digest: no default tag


def test_skopeo_reads_every_manifest_we_wrote(oci_registry: Registry, ws: Path,
                                              keys: dict[str, tuple[Path, Path]]) -> None:
    skopeo = shutil.which("skopeo")
    assert skopeo, "skopeo (Debian's package) is not installed: run scripts/bootstrap dev as root"
    client = Client(oci_registry.host)
    digest = push_image(client, "app/skopeo", "v1", "skopeo")
    assert _sign(ws, f"{oci_registry.host}/app/skopeo@{digest}", keys["a"][0]) == 0
    for suffix in (".sig", ".att"):
        dest = ws / f"copy{suffix}"
        subprocess.run([skopeo, "copy", "--src-tls-verify=false", "--preserve-digests",
                        f"docker://{oci_registry.host}/app/skopeo:{digest.replace(':', '-')}{suffix}",
                        f"oci:{dest}:x"], check=True, capture_output=True, timeout=120)
        index = json.loads((dest / "index.json").read_text())
        assert index["manifests"][0]["digest"] == client.get_manifest(
            "app/skopeo", digest.replace(":", "-") + suffix).digest  # type: ignore[union-attr]


def test_openpubkey_signature_verifies_by_identity_from_referrers(oci_registry: Registry, ws: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  keys: dict[str, tuple[Path, Path]]) -> None:
    """Against the loopback stand-in for GitHub's OIDC (tests/oidc_issuer.py): no .sig, only referrer bundles."""
    from tests import oidc_issuer

    client = Client(oci_registry.host)
    digest = push_image(client, "app/opk", "v1", "opk")
    ref = f"{oci_registry.host}/app/opk@{digest}"
    with oidc_issuer.running_issuer() as issuer:
        for k, v in issuer.env().items():
            monkeypatch.setenv(k, v)
        assert cli.main(["sign-image", ref, "--backend", "openpubkey", "--verdict", str(ws / "verdict.json")]) == 0
        (ws / "jwks.json").write_text(json.dumps(issuer.jwks()))
        url = issuer.url
    assert client.get_manifest("app/opk", digest.replace(":", "-") + ".sig", missing_ok=True) is None
    identity = ["--identity", oidc_issuer.IDENTITY, "--issuer", url, "--repository", oidc_issuer.REPO,
                "--jwks", str(ws / "jwks.json"), "--offline"]
    code, report = _verify(ref, keys["a"][1], *identity, "--require-attestation", "gate", out=ws / "v.json")
    assert code == 0, report
    assert report["signers"] and "key" not in str(report["signers"])
    # Another expected identity: the same evidence no longer counts.
    code, report = _verify(ref, keys["a"][1], "--identity", oidc_issuer.IDENTITY.replace("release", "other"),
                           "--issuer", url, "--jwks", str(ws / "jwks.json"), "--offline", out=ws / "o.json")
    assert code == 1 and report["problems"][0] == f"no valid signature for {digest}"  # type: ignore[index]


def _forge(client: Client, repo: str, digest: str, private: Path, statement: bytes) -> None:
    """Push a key-signed bundle over `statement` as a referrer of `digest`, as a hostile pipeline could."""
    from mlsec_actions.oci import cosign
    from mlsec_actions.signing.bundle import key_hint, sign_statement

    pem = serialization.load_pem_private_key(private.read_bytes(), None)
    assert isinstance(pem, ec.EllipticCurvePrivateKey)
    bundle = sign_statement(pem, key_hint(pem.public_key()), statement)  # below the typed-statement check
    manifest = client.get_manifest(repo, digest)
    assert manifest is not None
    cosign.push_referrer(client, repo, cosign.Subject(digest, manifest.media_type, len(manifest.data)),
                         json.dumps(bundle).encode(), "dsse-envelope", "forged")


def _statement(predicate_type: str, name: str, digest: str, predicate: dict[str, object]) -> bytes:
    return json.dumps({"_type": "https://in-toto.io/Statement/v1", "predicateType": predicate_type,
                       "subject": [{"name": name, "digest": {"sha256": digest.removeprefix("sha256:")}}],
                       "predicate": predicate}).encode()


def test_forged_referrers_do_not_count(oci_registry: Registry, ws: Path, keys: dict[str, tuple[Path, Path]]) -> None:
    client = Client(oci_registry.host)
    digest = push_image(client, "app/forged", "v1", "forged")
    other = push_image(client, "app/forged", "v2", "forged-other")
    name = f"{oci_registry.host}/app/forged"
    private = keys["a"][0]
    _forge(client, "app/forged", digest, private,  # a file signature moved onto the image
           _statement("https://mlsec-actions.dev/signed-file/v1", "x.bin", digest, {}))
    _forge(client, "app/forged", digest, private,  # an image statement about another digest
           _statement("https://mlsec-actions.dev/signed-image/v1", name, other, {}))
    _forge(client, "app/forged", digest, private,  # about this digest, but another repository
           _statement("https://mlsec-actions.dev/signed-image/v1", f"{oci_registry.host}/app/else", digest, {}))
    _forge(client, "app/forged", digest, private,  # a gate attestation of a failed gate
           _statement("https://mlsec-actions.dev/image-gate-verdict/v1", name, digest, {"verdict": "fail"}))
    code, report = _verify(f"{name}@{digest}", keys["a"][1], "--require-attestation", "gate", out=ws / "v.json")
    assert code == 1
    assert report["problems"] == [
        f"no valid signature for {digest}",
        "no valid gate verdict attestation (https://mlsec-actions.dev/image-gate-verdict/v1)",
        "referrer bundle 1: signed statement has predicate type 'https://mlsec-actions.dev/signed-file/v1', "
        "not one of an image",
        f"referrer bundle 2: signed for another image digest ({other}, the image is {digest})",
        f"referrer bundle 3: signed for repository '{oci_registry.host}/app/else', not '{name}'",
        "referrer bundle 4: the attested gate verdict is 'fail', not 'pass'",
    ]
    # The same valid image statement, signed by the right key, makes the image pass; a tampered one does not.
    _forge(client, "app/forged", digest, private, _statement("https://mlsec-actions.dev/signed-image/v1", name,
                                                             digest, {}))
    code, report = _verify(f"{name}@{digest}", keys["a"][1], out=ws / "ok.json")
    assert code == 0 and len(report["problems"]) == 4  # type: ignore[arg-type]


def _config(client: Client, repo: str, digest: str) -> str:
    manifest = client.get_manifest(repo, digest)
    assert manifest is not None
    config: str = manifest.json()["config"]["digest"]
    return config


def _trivy_sbom(image_id: str, component: str = "hello.txt") -> dict[str, object]:
    """What the build stage's trivy writes for an image: the config digest as aquasecurity:trivy:ImageID."""
    return {"bomFormat": "CycloneDX", "specVersion": "1.6",
            "metadata": {"component": {"type": "container", "name": "mlsec-results/image-layout",
                                       "properties": [{"name": "aquasecurity:trivy:ImageID", "value": image_id}]}},
            "components": [{"type": "file", "name": component}]}


def test_an_sbom_of_another_image_is_refused_before_anything_is_signed(oci_registry: Registry, ws: Path,
                                                                       keys: dict[str, tuple[Path, Path]],
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    client = Client(oci_registry.host)
    digest = push_image(client, "app/sbom-other", "v1", "sbom-mine")
    other = push_image(client, "app/sbom-other", "v2", "sbom-theirs")
    sbom = ws / "theirs.cdx.json"
    sbom.write_text(json.dumps(_trivy_sbom(_config(client, "app/sbom-other", other))))
    capsys.readouterr()
    assert _sign(ws, f"{oci_registry.host}/app/sbom-other@{digest}", keys["a"][0], "--sbom", str(sbom)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(sbom) in err, err
    assert f"the SBOM describes image {_config(client, 'app/sbom-other', other)}, not this one" in err
    for suffix in (".sig", ".att", ""):
        assert client.get_manifest("app/sbom-other", digest.replace(":", "-") + suffix, missing_ok=True) is None
    # The SBOM of this image (its config digest) is attested and verifies as required.
    sbom.write_text(json.dumps(_trivy_sbom(_config(client, "app/sbom-other", digest))))
    assert _sign(ws, f"{oci_registry.host}/app/sbom-other@{digest}", keys["a"][0], "--sbom", str(sbom)) == 0
    code, report = _verify(f"{oci_registry.host}/app/sbom-other@{digest}", keys["a"][1], "--require-attestation",
                           "sbom", out=ws / "v.json")
    assert code == 0 and not report["problems"], report


def _tampered_sbom(private: Path, name: str, digest: str, image_id: str) -> dict[str, object]:
    """A genuine key-signed SBOM statement whose payload is then swapped for another SBOM, signature kept."""
    from mlsec_actions.signing.bundle import key_hint, sign_statement

    pem = serialization.load_pem_private_key(private.read_bytes(), None)
    assert isinstance(pem, ec.EllipticCurvePrivateKey)
    bundle = sign_statement(pem, key_hint(pem.public_key()), _statement("https://cyclonedx.org/bom", name, digest,
                                                                        _trivy_sbom(image_id)))
    swapped = _statement("https://cyclonedx.org/bom", name, digest, _trivy_sbom(image_id, "backdoor.so"))
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(swapped).decode()
    return dict(bundle)


def test_a_missing_tampered_or_misbound_sbom_attestation_fails_verify(oci_registry: Registry, ws: Path,
                                                                      keys: dict[str, tuple[Path, Path]]) -> None:
    from mlsec_actions.oci import cosign

    client = Client(oci_registry.host)
    digest = push_image(client, "app/sbom-bad", "v1", "sbom-bad")
    other = push_image(client, "app/sbom-bad", "v2", "sbom-bad-other")
    name, ref = f"{oci_registry.host}/app/sbom-bad", f"{oci_registry.host}/app/sbom-bad@{digest}"
    config = _config(client, "app/sbom-bad", digest)
    assert _sign(ws, ref, keys["a"][0]) == 0  # signed, with the gate attestation, but no SBOM
    code, report = _verify(ref, keys["a"][1], "--require-attestation", "sbom", out=ws / "missing.json")
    assert (code, report["problems"]) == (1, ["no valid SBOM attestation (https://cyclonedx.org/bom)"])
    # Someone swaps the SBOM in the registry, keeping a genuine signature: in the .att layout and as a referrer.
    tampered = _tampered_sbom(keys["a"][0], name, digest, config)
    cosign.append_layers(client, "app/sbom-bad", cosign.tag_for(digest, ".att"),
                         [cosign.attestation_layer(tampered["dsseEnvelope"], "https://cyclonedx.org/bom")])  # type: ignore[arg-type]
    manifest = client.get_manifest("app/sbom-bad", digest)
    assert manifest is not None
    cosign.push_referrer(client, "app/sbom-bad", cosign.Subject(digest, manifest.media_type, len(manifest.data)),
                         json.dumps(tampered).encode(), "dsse-envelope", "tampered")
    # And a validly signed SBOM statement about this digest whose SBOM is another image's.
    _forge(client, "app/sbom-bad", digest, keys["a"][0],
           _statement("https://cyclonedx.org/bom", name, digest, _trivy_sbom(_config(client, "app/sbom-bad", other))))
    code, report = _verify(ref, keys["a"][1], "--require-attestation", "sbom", out=ws / "bad.json")
    problems = report["problems"]
    assert code == 1 and isinstance(problems, list), report
    assert problems[0] == "no valid SBOM attestation (https://cyclonedx.org/bom)"
    assert any(p.startswith("cosign attestation 2: ") and "signature" in p for p in problems), problems
    assert sum(p.startswith("referrer bundle ") and "signature" in p for p in problems) == 1, problems
    assert any(p.startswith("referrer bundle ") and "the attested SBOM is not of this image: the SBOM describes image "
               f"{_config(client, 'app/sbom-bad', other)}, not this one" in p for p in problems), problems
    assert "https://cyclonedx.org/bom" not in report["attestations"]  # type: ignore[operator]


def _attested_sboms(registry: Registry, repo: str, digest: str) -> list[Any]:
    """The SBOM predicates of every DSSE layer of the image's cosign `.att` tag."""
    att = _get(registry, f"{repo}/manifests/{digest.replace(':', '-')}.att")
    out = []
    for layer in att["layers"]:  # type: ignore[union-attr]
        if layer["annotations"]["predicateType"] == "https://cyclonedx.org/bom":
            envelope = json.loads(_blob(registry, repo, layer["digest"]))
            out.append(json.loads(base64.b64decode(envelope["payload"]))["predicate"])
    return out


def test_generated_sbom_of_an_explicit_image_is_trivys_of_that_digest(oci_registry: Registry, ws: Path,
                                                                      keys: dict[str, tuple[Path, Path]]) -> None:
    """No build: trivy reads the image from the loopback registry, the SBOM names its config, and it is attested."""
    client = Client(oci_registry.host)
    digest = push_image(client, "app/gen", "release", "gen")
    kept = ws / "kept" / "image.cdx.json"
    # A tag: resolved once, and trivy is asked for the digest, not the tag.
    assert _sign(ws, f"{oci_registry.host}/app/gen:release", keys["a"][0], "--generate-sbom", "--sbom-out",
                 str(kept), "--json", str(ws / "w.json")) == 0
    assert json.loads((ws / "w.json").read_text())["digest"] == digest
    sbom = json.loads(kept.read_text())
    props = {p["name"]: p["value"] for p in sbom["metadata"]["component"]["properties"]}
    assert props["aquasecurity:trivy:ImageID"] == _config(client, "app/gen", digest)
    assert props["aquasecurity:trivy:RepoDigest"] == f"{oci_registry.host}/app/gen@{digest}"
    assert _attested_sboms(oci_registry, "app/gen", digest) == [sbom]
    code, report = _verify(f"{oci_registry.host}/app/gen@{digest}", keys["a"][1], "--require-attestation", "sbom",
                           "--require-attestation", "gate", out=ws / "v.json")
    assert code == 0 and not report["problems"], report


def _fake_trivy(ws: Path, monkeypatch: pytest.MonkeyPatch, sbom: Path) -> None:
    """trivy replaced by a script that writes `sbom` (another image's, made by the real trivy) as its output."""
    script = ws / "trivy-other"
    script.write_text(f"#!{sys.executable}\nimport shutil, sys\nargs = sys.argv[1:]\n"
                      "if args[:1] == ['--version']:\n    print('Version: 0.76.0'); sys.exit(0)\n"
                      f"shutil.copy({str(sbom)!r}, args[args.index('--output') + 1])\n")
    script.chmod(0o755)
    monkeypatch.setenv("MLSEC_TRIVY_BIN", str(script))


def test_generated_sbom_of_another_image_or_no_trivy_signs_nothing(oci_registry: Registry, ws: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   keys: dict[str, tuple[Path, Path]],
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    client = Client(oci_registry.host)
    digest = push_image(client, "app/gen-bad", "v1", "gen-bad")
    other = push_image(client, "app/gen-bad", "v2", "gen-bad-other")
    theirs = ws / "theirs.cdx.json"
    assert _sign(ws, f"{oci_registry.host}/app/gen-bad@{other}", keys["a"][0], "--generate-sbom", "--sbom-out",
                 str(theirs)) == 0
    capsys.readouterr()
    ref = f"{oci_registry.host}/app/gen-bad@{digest}"
    # Whatever the source, the SBOM must be of the signed image: trivy answering with another image's is refused.
    _fake_trivy(ws, monkeypatch, theirs)
    assert _sign(ws, ref, keys["a"][0], "--generate-sbom") == 2
    made, err = capsys.readouterr().err.strip().splitlines()  # the progress line, then the one-line error
    assert made == f"sign-image: trivy made the SBOM of {ref}"
    assert err.startswith(f"mlsec: error: trivy's SBOM of {ref}: "), err
    assert f"the SBOM describes image {_config(client, 'app/gen-bad', other)}, not this one" in err
    # trivy missing: a tool error, and nothing signed rather than signed without the SBOM.
    monkeypatch.setenv("MLSEC_TRIVY_BIN", str(ws / "no-such-trivy"))
    assert _sign(ws, ref, keys["a"][0], "--generate-sbom") == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no SBOM of" in err and "(missing)" in err, err
    for suffix in (".sig", ".att", ""):
        assert client.get_manifest("app/gen-bad", digest.replace(":", "-") + suffix, missing_ok=True) is None


def test_a_hostile_sbom_file_is_exit_2_and_signs_nothing(oci_registry: Registry, ws: Path,
                                                         keys: dict[str, tuple[Path, Path]],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    client = Client(oci_registry.host)
    digest = push_image(client, "app/hostile-sbom", "v1", "hostile-sbom")
    ref = f"{oci_registry.host}/app/hostile-sbom@{digest}"
    bad = ws / "bad.cdx.json"
    for text, problem in (('{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"type": 7}]}',
                           "SBOM is not valid CycloneDX 1.6"), ("{\"bomFormat\"", "not valid JSON")):
        bad.write_text(text)
        capsys.readouterr()
        assert _sign(ws, ref, keys["a"][0], "--sbom", str(bad)) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(bad) in err and problem in err, err
    assert _sign(ws, ref, keys["a"][0], "--sbom", str(bad), "--generate-sbom") == 2
    assert _sign(ws, ref, keys["a"][0], "--sbom-out", str(ws / "x.json")) == 2
    for suffix in (".sig", ".att", ""):
        assert client.get_manifest("app/hostile-sbom", digest.replace(":", "-") + suffix, missing_ok=True) is None
