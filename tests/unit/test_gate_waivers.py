"""Trusted waivers (issue 9, build 3 and seen 5/6): specific, owned, reasoned, short-lived; their text reaches
logs and the summary only through the sanitiser. Each bound is tested on both sides of its limit."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from mlsec_actions import cli
from mlsec_actions.gate import policy
from mlsec_actions.gate import report as gate_report
from mlsec_actions.gate.engine import run_gate
from mlsec_actions.gate.model import WAIVER_MAX_DAYS, WAIVER_MIN_REASON
from mlsec_actions.sarif import write_sarif
from tests.unit.test_gate import TODAY, hit, stage

HEAD = "version: 1\nthresholds:\n  - severity: high\n"
STRICT = policy.builtin_path("strict").read_text(encoding="utf-8").replace("waivers: []\n", "")


def waiver_text(*, rule: str | None = "trivy/secret/*", path: str | None = None, fingerprint: str | None = None,
                reason: str = "fixture keys, never deployed", owner: str = "'@sec'",
                expires: dt.date = TODAY + dt.timedelta(days=30)) -> str:
    lines = ["waivers:", "  - id: w1"]
    lines += [f"    {k}: '{v}'" for k, v in (("rule", rule), ("path", path), ("fingerprint", fingerprint)) if v]
    lines += [f"    reason: '{reason}'", f"    owner: {owner}", f"    expires: {expires.isoformat()}"]
    return "\n".join(lines) + "\n"


def load(tmp_path: Path, text: str) -> policy.Policy:
    path = tmp_path / "policy.yml"
    path.write_text(text, encoding="utf-8")
    return policy.load(path)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(policy.PolicyError) as caught:
        load(tmp_path, text)
    return [p.split(": ", 1)[1] for p in caught.value.problems]


# --- specific matchers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("matchers", [
    {"rule": "*", "path": "**"},          # issue 9 seen 5, verbatim
    {"rule": "*"}, {"rule": "**"}, {"rule": "*/*"}, {"rule": "?*"},
    {"rule": None, "path": "**"}, {"rule": None, "path": "**/*"},
])
def test_a_waiver_matching_every_finding_is_refused(tmp_path: Path, matchers: dict[str, str | None]) -> None:
    (got,) = problems(tmp_path, HEAD + waiver_text(**matchers))
    assert "matches every finding" in got


@pytest.mark.parametrize("matchers", [
    {"rule": "trivy/secret/*"}, {"rule": "*/secret/*"}, {"rule": "trivy/*", "path": "**"},
    {"rule": "*", "path": "tests/fixtures/**"}, {"rule": None, "path": "tests/**"},
    {"rule": "*", "fingerprint": "0123abcd:1"}, {"rule": None, "fingerprint": "0123abcd:1"},
])
def test_specific_waivers_load(tmp_path: Path, matchers: dict[str, str | None]) -> None:
    assert len(load(tmp_path, HEAD + waiver_text(**matchers)).waivers) == 1


def test_strict_forbids_path_only_waivers(tmp_path: Path) -> None:
    for matchers in ({"rule": None, "path": "tests/**"}, {"rule": "*", "path": "tests/**"}):
        (got,) = problems(tmp_path, STRICT + waiver_text(**matchers))
        assert "forbids path-only waivers" in got
    for matchers in ({"rule": "trivy/secret/*", "path": "tests/**"}, {"rule": None, "fingerprint": "ab:1"}):
        assert len(load(tmp_path, STRICT + waiver_text(**matchers)).waivers) == 1


def test_waiver_path_only_allow_is_the_default_and_forbid_is_a_key(tmp_path: Path) -> None:
    text = HEAD + waiver_text(rule=None, path="tests/**")
    assert load(tmp_path, text).waiver_path_only is True
    (got,) = problems(tmp_path, "waiver-path-only: forbid\n" + text)
    assert got.startswith("waivers[0].path: ")


# --- reason and owner --------------------------------------------------------------------------------------------


def test_reason_length_limit_both_sides(tmp_path: Path) -> None:
    assert WAIVER_MIN_REASON == 10
    assert load(tmp_path, HEAD + waiver_text(reason="a" * 10)).waivers[0].reason == "a" * 10
    (got,) = problems(tmp_path, HEAD + waiver_text(reason="a" * 9))
    assert got.startswith("waivers[0].reason: too short")
    # Blanks around it do not count.
    (got,) = problems(tmp_path, HEAD + waiver_text(reason="   " + "a" * 9 + "   "))
    assert "too short" in got


@pytest.mark.parametrize("owner", ['"bob\\n::error title=pwned::X"', '"bob\\rx"', "'   '", '"a\\tb"'])
def test_owner_must_be_one_line(tmp_path: Path, owner: str) -> None:
    (got,) = problems(tmp_path, HEAD + waiver_text(owner=owner))
    assert got.startswith("waivers[0].owner: ")


# --- expiry ------------------------------------------------------------------------------------------------------


def kinds_for(tmp_path: Path, text: str) -> list[str]:
    folder = tmp_path / "sarif"
    write_sarif(stage("code-scan", hit()), folder / "code-scan.sarif")
    return sorted(v.kind for v in run_gate(load(tmp_path, text), folder, today=TODAY).violations)


@pytest.mark.parametrize(("days", "kinds"), [(WAIVER_MAX_DAYS, []), (WAIVER_MAX_DAYS + 1, ["waiver-too-long"]),
                                             (0, []), (-1, ["threshold", "waiver-expired"])])
def test_default_max_days_both_sides(tmp_path: Path, days: int, kinds: list[str]) -> None:
    assert WAIVER_MAX_DAYS == 90
    text = HEAD + waiver_text(expires=TODAY + dt.timedelta(days=days))
    assert kinds_for(tmp_path, text) == kinds


@pytest.mark.parametrize(("days", "kinds"), [(30, []), (31, ["waiver-too-long"])])
def test_policy_max_days_both_sides(tmp_path: Path, days: int, kinds: list[str]) -> None:
    text = "waiver-max-days: 30\n" + HEAD + waiver_text(expires=TODAY + dt.timedelta(days=days))
    assert kinds_for(tmp_path, text) == kinds


def test_a_too_long_waiver_still_hides_nothing_more_than_it_matches(tmp_path: Path) -> None:
    text = HEAD + waiver_text(expires=TODAY + dt.timedelta(days=400))
    folder = tmp_path / "sarif"
    write_sarif(stage("code-scan", hit()), folder / "code-scan.sarif")
    (v,) = run_gate(load(tmp_path, text), folder, today=TODAY).violations
    assert v.kind == "waiver-too-long" and "expires in 400 days" in v.message and "at most 90" in v.message


# --- waiver text in logs and the summary --------------------------------------------------------------------------


def test_waiver_text_reaches_logs_and_summary_inert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 9 seen 6: an owner or reason carrying `::error` or Markdown must not become a workflow command,
    a link or an image anywhere we print it."""
    payload = "::error title=pwned::X ![i](https://evil.example/i.png) <b>x</b> [l](https://evil.example)"
    text = HEAD + waiver_text(owner=f"'@sec {payload}'", reason=f"accepted {payload}",
                              expires=TODAY - dt.timedelta(days=1))
    (tmp_path / "policy.yml").write_text(text, encoding="utf-8")
    write_sarif(stage("code-scan", hit()), tmp_path / "sarif" / "code-scan.sarif")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    summary_file = tmp_path / "gh-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary_file))
    code = cli.main(["gate", "--sarif-dir", str(tmp_path / "sarif"), "--policy", str(tmp_path / "policy.yml"),
                     "--verdict", str(tmp_path / "v.json"), "--summary", str(tmp_path / "s.md"),
                     "--sarif", str(tmp_path / "gate.sarif")])
    assert code == 3
    out = capsys.readouterr()
    for line in (out.out + out.err).splitlines():
        body = line.split("::", 2)[2] if line.startswith("::error ") else line  # our own annotation's header
        assert "::" not in body, line
    summary = summary_file.read_text(encoding="utf-8")
    html = MarkdownIt("commonmark").enable("table").render(summary)
    assert "evil.example" in html  # the text is shown...
    assert "<img" not in html and 'href="https://evil' not in html and "<b>" not in html  # ...inert
    # The verdict JSON keeps the text as written: JSON cannot inject anything, and the record is exact.
    doc = json.loads((tmp_path / "v.json").read_text())
    assert doc["waivers"]["expired"][0]["owner"] == f"@sec {payload}"
    md = gate_report.markdown(run_gate(load(tmp_path, text), tmp_path / "sarif", today=TODAY))
    assert "::error" not in md
