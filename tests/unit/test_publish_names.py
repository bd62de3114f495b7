"""The names publish gives objects on S3 and Nexus, and the Nexus URL check, without a server: a name that could
leave the release path is refused (exit 2, naming the file); a Nexus object URL percent-encodes each segment whole,
so no name adds a segment, a query or a fragment; the repository URL must be https:// (http:// to loopback), carry
no credentials and end in /repository/REPO."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest

from mlsec_actions.errors import InputError, UsageError
from mlsec_actions.supply import nexus_publish, publish_plan


@pytest.mark.parametrize("name", ["..", "a/../b", "a/./b", "a//b", "/abs", "a/", "a\\..\\b", "a\x00b", "a\nb",
                                  "a\x7fb", "model/.."])
def test_a_name_that_could_leave_the_release_path_is_refused(name: str) -> None:
    with pytest.raises(InputError) as e:
        publish_plan.check_name(name, Path("some/file"))
    assert str(e.value).startswith("some/file: ") and "not published" in str(e.value)


@pytest.mark.parametrize("name", ["weights.bin", "model/sub/w.safetensors", "a..b", ".hidden", "w b.bin", "é.bin"])
def test_control_plain_names_pass(name: str) -> None:
    assert publish_plan.check_name(name, Path("f")) == name


@pytest.mark.parametrize(("name", "path"), [
    ("w b?.bin", "/repository/raw/1/w%20b%3F.bin"),
    ("a#b", "/repository/raw/1/a%23b"),
    ("m/sub/x.bin", "/repository/raw/1/m/sub/x.bin"),
])
def test_each_segment_is_encoded_whole(name: str, path: str) -> None:
    url = nexus_publish.Repository("https://nexus.example.com/repository/raw/1", 5.0).url(name)
    parts = urllib.parse.urlsplit(url)
    assert parts.path == path and not parts.query and not parts.fragment


@pytest.mark.parametrize(("url", "problem"), [
    ("https://u:p@nexus.example.com/repository/raw", "credentials in the Nexus URI"),
    ("https://u@nexus.example.com/repository/raw", "credentials in the Nexus URI"),
    ("http://nexus.example.com/repository/raw", "https://"),
    ("http://127.0.0.1.example.com/repository/raw", "https://"),
    ("https://nexus.example.com/repository/raw#x", "fragment"),
    ("https://nexus.example.com/repository/ra w", "space"),
    ("https://nexus.example.com/repository/raw\x00", "control"),
    ("https://nexus.example.com/repository/", "not a raw repository URL"),
    ("https://nexus.example.com/repository/raw/sub", "not a raw repository URL"),
    ("https://nexus.example.com/service/rest/v1/components", "not a raw repository URL"),
    ("https://nexus.example.com/../repository/raw", "not a raw repository URL"),
])
def test_a_bad_repository_url_is_a_usage_error(url: str, problem: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEXUS_USERNAME", raising=False)
    monkeypatch.delenv("NEXUS_PASSWORD", raising=False)
    with pytest.raises(UsageError) as e:
        nexus_publish.check_url(url)
    assert str(e.value).startswith("--nexus: ") and problem in str(e.value)
    assert "p@" not in str(e.value)


@pytest.mark.parametrize("url", ["https://nexus.example.com/repository/raw-releases",
                                 "https://nexus.example.com/nexus/repository/raw/",
                                 "http://127.0.0.1:8081/repository/raw", "http://[::1]:8081/repository/raw"])
def test_control_good_repository_urls_pass(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEXUS_USERNAME", raising=False)
    monkeypatch.delenv("NEXUS_PASSWORD", raising=False)
    assert nexus_publish.check_url(url) == url.rstrip("/")


def test_the_password_and_user_are_scrubbed_from_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXUS_USERNAME", "deployer-7")
    monkeypatch.setenv("NEXUS_PASSWORD", "s3cret-value-91")
    text = nexus_publish.scrub("failed for deployer-7 with s3cret-value-91\nsecond line")
    assert "s3cret-value-91" not in text and "deployer-7" not in text and "\n" not in text


def _plan(tmp_path: Path, sbom: bytes) -> publish_plan.Plan:
    from mlsec_actions.supply.registry import Extras, Item

    (tmp_path / "image.cdx.json").write_bytes(b'{"bomFormat": "CycloneDX"}')
    (tmp_path / "image.cdx.json.sigstore.json").write_bytes(b"bundle")
    (tmp_path / "gate.intoto.sigstore.json").write_bytes(b"attestation")
    (tmp_path / "sbom").mkdir(exist_ok=True)
    (tmp_path / "sbom" / "image.cdx.json").write_bytes(sbom)
    import hashlib

    item = Item("image.cdx.json", tmp_path / "image.cdx.json",
                hashlib.sha256(b'{"bomFormat": "CycloneDX"}').hexdigest())
    extras = Extras(bundles=(("image.cdx.json", tmp_path / "image.cdx.json.sigstore.json"),),
                    attestation=tmp_path / "gate.intoto.sigstore.json", sbom=tmp_path / "sbom" / "image.cdx.json",
                    model_card="")
    return publish_plan.Plan((item,), extras, "ab" * 32, None)


def test_an_sbom_that_is_also_an_artifact_goes_up_once_other_bytes_under_one_name_are_refused(
        tmp_path: Path) -> None:
    names = [o.name for o in publish_plan.objects(_plan(tmp_path, b'{"bomFormat": "CycloneDX"}'))]
    assert names == ["image.cdx.json", "image.cdx.json.sigstore.json", "gate.intoto.sigstore.json"]
    with pytest.raises(InputError) as e:
        publish_plan.objects(_plan(tmp_path, b'{"bomFormat": "CycloneDX", "other": 1}'))
    assert "sbom/image.cdx.json" in str(e.value) and "other bytes" in str(e.value)
