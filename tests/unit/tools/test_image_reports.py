"""image-scan's report readers: Grype, Snyk and Docker Scout imports, a recorded trivy image report with
vulnerabilities, and the layer -> Dockerfile line mapping from an image's history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlsec_actions.analyzers import image_layers
from mlsec_actions.analyzers.dockerfile import parse
from mlsec_actions.errors import InputError
from mlsec_actions.findings import Severity, ToolRun, ToolStatus
from mlsec_actions.tools import image_imports, trivy_image

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "image"
SERVICE = parse(b"FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"true\"]\nCOPY config/ /etc/app/\n"
                b"USER 65532\nENTRYPOINT [\"/bin/busybox\"]\n")


def test_grype_report() -> None:
    found = image_imports.read("grype", FIXTURES / "grype.json")
    assert [(f.finding.rule.id, f.finding.severity, f.finding.score) for f in found] == [
        ("grype/CVE-2023-5363", Severity.HIGH, 7.5), ("grype/GHSA-9wx4-h78v-vm56", Severity.MEDIUM, None)]
    first = found[0]
    assert first.diff_id.startswith("sha256:94c6") and first.finding.location.path == "/var/lib/dpkg/status"
    assert dict(first.finding.properties)["fixed"] == "3.0.11-1~deb12u2"
    assert first.finding.rule.help_uri == "https://security-tracker.debian.org/tracker/CVE-2023-5363"


def test_snyk_report_and_its_dockerfile_instruction() -> None:
    found = image_imports.read("snyk", FIXTURES / "snyk.json")
    assert [(f.finding.rule.id, f.finding.severity) for f in found] == [
        ("snyk/CVE-2023-5363", Severity.CRITICAL), ("snyk/SNYK-DEBIAN12-ZLIB-6008963", Severity.LOW)]
    assert found[0].instruction == "COPY config/ /etc/app/" and found[0].finding.score == 9.8


def test_scout_sarif_report() -> None:
    found = image_imports.read("scout", FIXTURES / "scout.sarif.json")
    assert [(f.finding.rule.id, f.finding.severity) for f in found] == [("scout/CVE-2024-2511", Severity.MEDIUM)]
    assert found[0].finding.location.logical == "var/lib/dpkg/status" or \
        found[0].finding.location.logical == "/var/lib/dpkg/status"


@pytest.mark.parametrize(("fmt", "doc"), [("grype", {"results": []}), ("grype", {"matches": [{}]}),
                                          ("snyk", {"vulns": []}), ("snyk", []), ("snyk", {"vulnerabilities": [{}]}),
                                          ("scout", {"runs": "x"})])
def test_a_report_not_of_its_format_is_bad_input(tmp_path: Path, fmt: str, doc: object) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"report\.json"):
        image_imports.read(fmt, path)


def test_import_option_form() -> None:
    assert image_imports.parse_import("grype:out/g.json") == ("grype", Path("out/g.json"))
    for bad in ("grype", "nessus:x.json", "snyk:"):
        with pytest.raises(Exception, match="FORMAT:FILE"):
            image_imports.parse_import(bad)


def test_recorded_trivy_image_report_with_vulnerabilities_maps_to_the_copy_line() -> None:
    done = trivy_image.parse((FIXTURES / "trivy-vulns.json").read_bytes(), ToolRun("trivy", ToolStatus.OK))
    assert done.run.status is ToolStatus.OK and done.run.version == "0.76.0"
    [item] = done.findings
    assert item.finding.rule.id == "trivy/vuln/CVE-2022-48174" and item.finding.score == 9.8
    lines = image_layers.layer_lines(done.config, SERVICE)
    assert lines[item.diff_id].line == 2  # COPY busybox made the layer busybox's package is in
    assert sorted(i.line for i in lines.values()) == [2, 3, 4]


def test_not_a_trivy_report_fails_the_run() -> None:
    done = trivy_image.parse(b"{}", ToolRun("trivy", ToolStatus.OK))
    assert done.run.status is ToolStatus.FAILED and not done.findings


def test_history_keywords() -> None:
    kw = image_layers.history_keyword
    assert kw("/bin/sh -c #(nop) COPY file:abc in /x ") == "COPY"
    assert kw('/bin/sh -c ["/bin/busybox", "true"]') == "RUN" and kw("/bin/sh -c apt-get update") == "RUN"
    assert kw("COPY app /app # buildkit") == "COPY" and kw("RUN /bin/sh -c make # buildkit") == "RUN"
    assert kw("|1 A=b /bin/sh -c make") == "RUN" and kw("") is None and kw("/bin/sh -c #(nop) FOO x") is None


def test_no_mapping_when_history_and_layers_disagree_or_keywords_differ() -> None:
    config = json.loads((FIXTURES / "trivy-vulns.json").read_text())["Metadata"]["ImageConfig"]
    squashed = {**config, "rootfs": {"diff_ids": config["rootfs"]["diff_ids"][:1]}}
    assert image_layers.layer_lines(squashed, SERVICE) == {}
    other = parse(b"FROM scratch\nADD x /x\nRUN a\nRUN b\nUSER 1\nENTRYPOINT [\"x\"]\n")
    lines = image_layers.layer_lines(config, other)
    assert all(i.keyword != "ADD" for i in lines.values()) and len(lines) < 3  # stops at the first mismatch
    assert image_layers.layer_lines(config, None) == {}
