"""sign-image's SBOM sources (oci/sbom_source.py): a named CycloneDX file read as hostile input, and the trivy call
that makes one from the registry (its arguments and credentials, seen through a recording stand-in for trivy;
the real trivy against the real loopback registry is tests/integration/test_sign_image.py)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from mlsec_actions.errors import InputError, ToolError
from mlsec_actions.oci import sbom_source
from mlsec_actions.oci.reference import parse

DIGEST = "sha256:" + "ab" * 32
VALID = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
         "metadata": {"component": {"type": "container", "name": "app",
                                    "properties": [{"name": "aquasecurity:trivy:ImageID", "value": DIGEST}]}},
         "components": [{"type": "library", "name": "openssl", "version": "3.0.15"}]}


def _write(tmp_path: Path, doc: object, name: str = "sbom.cdx.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


@pytest.mark.parametrize("version", ["1.2", "1.4", "1.5", "1.6"])
def test_a_valid_sbom_of_each_json_version_loads(tmp_path: Path, version: str) -> None:
    doc = {"bomFormat": "CycloneDX", "specVersion": version, "version": 1,
           "components": [{"type": "library", "name": "zlib", "version": "1.3"}]}
    assert sbom_source.load(_write(tmp_path, doc)) == doc
    assert sbom_source.load(_write(tmp_path, VALID, "v.json")) == VALID


@pytest.mark.parametrize(("doc", "problem"), [
    ("{\"bomFormat\": \"CycloneDX\",", "SBOM is not valid JSON"),
    ("[1, 2]", "not a CycloneDX JSON SBOM"),
    ({"bomFormat": "SPDX", "specVersion": "1.6"}, "not a CycloneDX JSON SBOM"),
    ({"bomFormat": "CycloneDX", "specVersion": "1.1"}, "specVersion '1.1' is not a CycloneDX JSON version"),
    ({"bomFormat": "CycloneDX"}, "specVersion 'None' is not a CycloneDX JSON version"),
    ({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"type": "rootkit", "name": "x"}]},
     "SBOM is not valid CycloneDX 1.6: 'rootkit' is not one of"),
    ({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"type": "library"}]},
     "'name' is a required property (at /components/0)"),
    ({"bomFormat": "CycloneDX", "specVersion": "1.5", "smuggled": {"x": 1}},
     "SBOM is not valid CycloneDX 1.5: Additional properties are not allowed"),
    ("[" * 200 + "]" * 200, "nested deeper than 128 levels"),
])
def test_a_bad_sbom_is_one_line_naming_the_file(tmp_path: Path, doc: object, problem: str) -> None:
    path = _write(tmp_path, doc)
    with pytest.raises(InputError) as caught:
        sbom_source.load(path)
    message = caught.value.diagnostics()
    assert message.startswith(f"{path}: ") and problem in message, message
    assert "\n" not in message and len(message) < 400 + len(str(path)), message


def test_an_oversized_fifo_or_missing_sbom_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.cdx.json"
    with big.open("wb") as f:  # sparse: the size is refused before a byte is read
        f.truncate(sbom_source.MAX_SBOM_BYTES + 1)
    fifo = tmp_path / "fifo.cdx.json"
    os.mkfifo(fifo)
    for path, problem in ((big, f"the limit is {sbom_source.MAX_SBOM_BYTES}"), (fifo, "not a regular file"),
                          (tmp_path / "none.json", "cannot read SBOM")):
        with pytest.raises(InputError, match=problem):
            sbom_source.load(path)
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_registry_credentials_reach_trivy_as_its_own_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("MLSEC_REGISTRY_TOKEN", "MLSEC_REGISTRY_USERNAME", "MLSEC_REGISTRY_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    assert sbom_source._registry_env() == {}
    monkeypatch.setenv("MLSEC_REGISTRY_USERNAME", "ci")
    assert sbom_source._registry_env() == {}  # a user without a password is no credential
    monkeypatch.setenv("MLSEC_REGISTRY_PASSWORD", "s3cret")
    assert sbom_source._registry_env() == {"TRIVY_USERNAME": "ci", "TRIVY_PASSWORD": "s3cret"}
    monkeypatch.setenv("MLSEC_REGISTRY_TOKEN", "tok")
    assert sbom_source._registry_env() == {"TRIVY_REGISTRY_TOKEN": "tok"}


def _recording_trivy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sbom: object) -> Path:
    """A stand-in for trivy that records its arguments and TRIVY_* variables and writes `sbom` to --output."""
    record = tmp_path / "record.json"
    script = tmp_path / "trivy"
    script.write_text(f"""#!{sys.executable}
import json, os, sys
args = sys.argv[1:]
if args[:1] == ["--version"]:
    print("Version: 0.76.0"); sys.exit(0)
env = {{k: v for k, v in os.environ.items() if k.startswith("TRIVY_")}}
json.dump({{"args": args, "env": env}}, open({str(record)!r}, "w"))
open(args[args.index("--output") + 1], "w").write({json.dumps(json.dumps(sbom))})
""")
    script.chmod(0o755)
    monkeypatch.setenv("MLSEC_TRIVY_BIN", str(script))
    return record


def test_generate_reads_the_digest_from_the_registry_https_unless_loopback(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    record = _recording_trivy(tmp_path, monkeypatch, VALID)
    monkeypatch.setenv("TRIVY_INSECURE", "true")  # the job's own TRIVY_* never reach trivy
    monkeypatch.setenv("MLSEC_REGISTRY_TOKEN", "tok")
    out = sbom_source.generate(parse(f"ghcr.io/owner/app@{DIGEST}"), tmp_path / "out" / "s.json", 30)
    assert json.loads(out.read_text()) == VALID
    seen = json.loads(record.read_text())
    args = seen["args"]
    assert args[:3] == ["image", "--image-src", "remote"] and "--insecure" not in args
    assert args[-1] == f"ghcr.io/owner/app@{DIGEST}" and args[args.index("--format") + 1] == "cyclonedx"
    assert seen["env"] == {"TRIVY_REGISTRY_TOKEN": "tok"}
    sbom_source.generate(parse(f"127.0.0.1:5000/app@{DIGEST}"), tmp_path / "s2.json", 30)
    args = json.loads(record.read_text())["args"]
    assert args[:4] == ["image", "--image-src", "remote", "--insecure"], args  # plain HTTP: loopback only
    with pytest.raises(ValueError, match="never of a tag"):
        sbom_source.generate(parse("127.0.0.1:5000/app:v1"), tmp_path / "s3.json", 30)


def test_generate_fails_closed_when_trivy_fails_or_writes_no_cyclonedx(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _recording_trivy(tmp_path, monkeypatch, {"SchemaVersion": 2, "Results": []})
    ref = parse(f"127.0.0.1:5000/app@{DIGEST}")
    with pytest.raises(ToolError, match=r"no SBOM of .* from trivy \(failed\): the SBOM written is not CycloneDX"):
        sbom_source.generate(ref, tmp_path / "s.json", 30)
    monkeypatch.setenv("MLSEC_TRIVY_BIN", str(tmp_path / "no-such-trivy"))
    with pytest.raises(ToolError, match=r"\(missing\)"):
        sbom_source.generate(ref, tmp_path / "s.json", 30)
