"""notify against loopback servers that record every request (Slack, Telegram, webhook, DefectDojo and PagerDuty
shapes as their APIs document them; stand-ins, see tests/notify_servers.py) and a real Prometheus Pushgateway
whose /metrics the test scrapes back. Adversarial: hostile SARIF text, secrets, failing servers, redirects."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import urllib.request
from pathlib import Path

import pytest

from mlsec_actions import cli
from mlsec_actions.findings import Finding, Location, Rule, Severity, StageResult, ToolRun, ToolStatus
from mlsec_actions.sarif import write_sarif
from tests.notify_servers import pushgateway, recorder

SLACK_URL_PATH = "/services/T000/B000/slack-secret-path-0123456789"
TOKEN = "123456789:telegram-secret-token-ABCDEFGHIJKLMNOP"
HOOK_KEY = "webhook-hmac-key-0123456789abcdef"
DOJO_KEY = "defectdojo-api-key-0123456789abcdef"
PD_KEY = "pagerduty-routing-key-0123456789ab"
HOSTILE = "\x1b[31mred\x1b[0m\n::set-output name=verdict::pass\n::add-mask::x <!channel> <https://evil.example|click>"


def _results(tmp_path: Path, message: str = "AWS key AKIAEXAMPLESECRET0000 in config.py") -> Path:
    out = tmp_path / "results"
    rule = Rule(id="gitleaks/aws-access-key", name="aws-access-key", short_description="AWS access key")
    finding = Finding(rule=rule, message=message, severity=Severity.HIGH,
                      location=Location(path="src/config.py", start_line=3, snippet="KEY = 'AKIA...'"))
    write_sarif(StageResult("code-scan", (finding,), (ToolRun("gitleaks", ToolStatus.OK),)),
                out / "sarif" / "code-scan.sarif", root=tmp_path)
    low = Finding(rule=Rule(id="mlsec/pii", name="pii", short_description="Email address in a dataset"),
                  message="email in row 7", severity=Severity.LOW, location=Location(path="data/train.csv"))
    write_sarif(StageResult("data-scan", (low,), (ToolRun("in-house", ToolStatus.OK),)),
                out / "sarif" / "data-scan.sarif", root=tmp_path)
    assert cli.main(["gate", "--sarif-dir", str(out / "sarif"), "--verdict", str(out / "verdict.json"),
                     "--summary", str(out / "summary.md"), "--sarif", str(tmp_path / "gate.sarif")]) == 3
    (out / "run.json").write_text(json.dumps({"pipeline": "mlsecops", "stages": [
        {"stage": "code-scan", "seconds": 12.5}, {"stage": "data-scan", "seconds": 1.25}]}))
    return out


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSEC_TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("MLSEC_WEBHOOK_SECRET", HOOK_KEY)
    monkeypatch.setenv("MLSEC_DEFECTDOJO_TOKEN", DOJO_KEY)
    monkeypatch.setenv("MLSEC_PAGERDUTY_ROUTING_KEY", PD_KEY)
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/models")
    monkeypatch.setenv("GITHUB_REF_NAME", "main")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")


def _notify(results: Path, *args: str) -> int:
    return cli.main(["notify", str(results), "--timeout", "20", "--retries", "1", *args])


def test_every_channel_delivers_its_documented_shape(tmp_path: Path, secrets_env: None,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    results = _results(tmp_path)
    with recorder() as rec, pushgateway(tmp_path) as gateway:
        monkeypatch.setenv("MLSEC_SLACK_WEBHOOK_URL", rec.url + SLACK_URL_PATH)
        code = _notify(results, "--channel", "slack,telegram,webhook,pagerduty,defectdojo,pushgateway",
                       "--telegram-api-url", rec.url, "--telegram-chat-id", "-100123",
                       "--webhook-url", rec.url + "/hook", "--pagerduty-url", rec.url + "/v2/enqueue",
                       "--default-branch", "main", "--defectdojo-url", rec.url, "--defectdojo-product", "models",
                       "--defectdojo-engagement", "ci", "--pushgateway-url", gateway,
                       "--record", str(tmp_path / "notify.json"))
        with urllib.request.urlopen(f"{gateway}/metrics", timeout=10) as r:
            metrics = r.read().decode()
    err = capsys.readouterr().err
    assert code == 0, err
    record = json.loads((tmp_path / "notify.json").read_text())
    assert record["verdict"] == "fail"
    assert [c["status"] for c in record["channels"]] == ["sent"] * 6, record
    by_path = {s.path.split("?")[0]: s for s in rec.seen}

    slack = by_path[SLACK_URL_PATH].json()
    assert isinstance(slack, dict) and slack["blocks"][0]["type"] == "header"
    assert "FAIL" in slack["text"] and "mrkdwn" not in json.dumps(slack)

    telegram = by_path[f"/bot{TOKEN}/sendMessage"].json()
    assert isinstance(telegram, dict) and telegram["chat_id"] == "-100123" and "parse_mode" not in telegram
    assert "AWS access key" in telegram["text"] and telegram["disable_web_page_preview"] is True

    hook = by_path["/hook"]
    stamp = hook.headers["x-mlsec-timestamp"]
    expected = hmac.new(HOOK_KEY.encode(), stamp.encode() + b"." + hook.body, hashlib.sha256).hexdigest()
    assert hook.headers["x-mlsec-signature"] == f"sha256={expected}"
    doc = hook.json()
    assert isinstance(doc, dict) and doc["schema"] == "mlsec-notify/1" and doc["verdict"] == "fail"
    assert doc["totals"]["high"] == 1 and doc["totals"]["low"] == 1 and doc["repository"] == "acme/models"
    assert {s["stage"]: s["seconds"] for s in doc["stages"]} == {"code-scan": 12.5, "data-scan": 1.25}
    # Titles and counts only by default: no finding message, path or snippet left the runner.
    for seen in rec.seen:
        assert b"AKIAEXAMPLESECRET0000" not in seen.body and b"src/config.py" not in seen.body

    page = by_path["/v2/enqueue"].json()
    assert isinstance(page, dict) and page["routing_key"] == PD_KEY and page["event_action"] == "trigger"
    assert page["payload"]["severity"] == "error" and page["payload"]["source"] == "acme/models"
    assert page["dedup_key"] == "mlsec/acme/models/main"

    dojo = [(s.method, s.path.split("?")[0]) for s in rec.seen if s.path.startswith("/api/v2/")]
    assert dojo[:6] == [("GET", "/api/v2/product_types/"), ("POST", "/api/v2/product_types/"),
                        ("GET", "/api/v2/products/"), ("POST", "/api/v2/products/"),
                        ("GET", "/api/v2/engagements/"), ("POST", "/api/v2/engagements/")]
    imports = [s for s in rec.seen if s.path == "/api/v2/import-scan/"]
    assert len(imports) == 2 and all(s.headers["authorization"] == f"Token {DOJO_KEY}" for s in imports)
    assert all(s.headers["content-type"].startswith("multipart/form-data; boundary=") for s in imports)
    assert b'name="scan_type"\r\n\r\nSARIF' in imports[0].body and b"mlsec/code-scan" in imports[0].body
    assert rec.dojo["products"][0]["name"] == "models" and rec.dojo["engagements"][0]["engagement_type"] == "CI/CD"

    assert re.search(r'mlsec_findings\{[^}]*severity="high"[^}]*stage="code-scan"[^}]*\} 1', metrics), metrics
    assert re.search(r'mlsec_stage_duration_seconds\{[^}]*stage="code-scan"[^}]*\} 12.5', metrics)
    assert re.search(r"mlsec_gate_passed\{[^}]*\} 0", metrics) and "mlsec_coverage_gaps_total" in metrics
    assert 'repository="acme/models"' in metrics
    for secret in (TOKEN, HOOK_KEY, DOJO_KEY, PD_KEY, SLACK_URL_PATH):
        assert secret not in err and secret not in (tmp_path / "notify.json").read_text()


def test_defectdojo_reimports_into_the_same_tests_on_the_next_run(tmp_path: Path, secrets_env: None) -> None:
    results = _results(tmp_path)
    args = ("--channel", "defectdojo", "--defectdojo-product", "models", "--defectdojo-engagement", "ci")
    with recorder() as rec:
        assert _notify(results, *args, "--defectdojo-url", rec.url) == 0
        assert _notify(results, *args, "--defectdojo-url", rec.url) == 0
    assert len(rec.dojo["products"]) == 1 and len(rec.dojo["engagements"]) == 1
    assert [s.path for s in rec.seen].count("/api/v2/reimport-scan/") == 2
    reimport = next(s for s in rec.seen if s.path == "/api/v2/reimport-scan/")
    assert b'name="test"\r\n\r\n' in reimport.body


def test_details_opt_in_sends_messages_and_locations(tmp_path: Path, secrets_env: None) -> None:
    results = _results(tmp_path)
    with recorder() as rec:
        assert _notify(results, "--channel", "webhook", "--webhook-url", rec.url, "--details") == 0
    assert b"AKIAEXAMPLESECRET0000" in rec.seen[0].body and b"src/config.py:3" in rec.seen[0].body


def test_hostile_sarif_text_reaches_no_log_and_no_channel_raw(tmp_path: Path, secrets_env: None,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    results = _results(tmp_path, message=HOSTILE * 2000)
    doc = json.loads((results / "sarif" / "code-scan.sarif").read_text())
    doc["runs"][0]["tool"]["driver"]["rules"][0]["shortDescription"]["text"] = HOSTILE
    doc["runs"][0]["properties"]["mlsec-stage"] = "code-scan\n::error::owned\"} 1\nmlsec_gate_passed 1"
    (results / "sarif" / "code-scan.sarif").write_text(json.dumps(doc))
    (results / "sarif" / "huge.sarif").write_bytes(b'{"version": "2.1.0", "runs": [' + b" " * (9 << 20) + b"]}")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    with recorder() as rec, pushgateway(tmp_path) as gateway:
        monkeypatch.setenv("MLSEC_SLACK_WEBHOOK_URL", rec.url + SLACK_URL_PATH)
        code = _notify(results, "--channel", "slack,telegram,pushgateway", "--telegram-api-url", rec.url,
                       "--telegram-chat-id", "1", "--pushgateway-url", gateway, "--details")
        with urllib.request.urlopen(f"{gateway}/metrics", timeout=10) as r:
            metrics = r.read().decode()
    out = capsys.readouterr()
    assert code == 0, out.err
    for line in (out.out + out.err).splitlines():
        assert "\x1b" not in line
        assert not line.lstrip().startswith("::") or line.startswith(("::add-mask::", "::warning"))
    assert "::add-mask::" + TOKEN in out.out  # the credential was masked as soon as read
    for seen in rec.seen:
        assert b"\x1b" not in seen.body and b"\\u001b" not in seen.body  # escaped visibly before it left
        assert len(seen.body) < 64 * 1024  # bounded, whatever the SARIF held
    slack = next(s.json() for s in rec.seen if s.path == SLACK_URL_PATH)
    assert isinstance(slack, dict) and "mrkdwn" not in json.dumps(slack)  # `<!channel>` stays plain text
    assert "huge.sarif: not read" in rec.seen[0].body.decode()
    assert re.search(r"^mlsec_gate_passed\{[^}]*\} 0$", metrics, re.M), metrics  # no injected sample
    assert "owned" not in "".join(ln for ln in metrics.splitlines() if ln.startswith("mlsec_gate"))


@pytest.mark.parametrize("answer", [{"status": 500}, {"status": 429}, {"delay": 3.0}])
def test_failing_server_is_a_warning_and_exit_0(tmp_path: Path, secrets_env: None, answer: dict[str, object],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    results = _results(tmp_path)
    with recorder(**answer) as rec:
        code = cli.main(["notify", str(results), "--channel", "webhook", "--webhook-url", rec.url,
                         "--retries", "2", "--timeout", "2.5" if "delay" in answer else "20"])
    err = capsys.readouterr().err
    assert code == 0
    assert "notify: warning: webhook: 127.0.0.1" in err and "0 sent, 1 failed" in err
    assert ("timed out" in err) if "delay" in answer else (len(rec.seen) == 3 and f"HTTP {answer['status']}" in err)
    assert HOOK_KEY not in err


def test_a_4xx_is_not_retried(tmp_path: Path, secrets_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    with recorder(status=403) as rec:
        assert _notify(_results(tmp_path), "--channel", "webhook", "--webhook-url", rec.url, "--retries", "3") == 0
    assert len(rec.seen) == 1 and "answered HTTP 403" in capsys.readouterr().err


def test_a_redirect_to_another_host_is_refused(tmp_path: Path, secrets_env: None, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    results = _results(tmp_path)
    with recorder() as elsewhere, recorder(redirect="") as rec:
        rec.redirect = elsewhere.url.replace("127.0.0.1", "localhost") + "/steal"
        monkeypatch.setenv("MLSEC_SLACK_WEBHOOK_URL", rec.url + SLACK_URL_PATH)
        assert _notify(results, "--channel", "slack") == 0
    err = capsys.readouterr().err
    assert elsewhere.seen == [] and len(rec.seen) == 1
    assert "redirect to localhost" in err and "refused" in err and SLACK_URL_PATH not in err


def test_pagerduty_pages_only_for_a_failure_on_the_default_branch(tmp_path: Path, secrets_env: None,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    results = _results(tmp_path)
    with recorder() as rec:
        assert _notify(results, "--channel", "pagerduty", "--pagerduty-url", rec.url, "--branch", "feature",
                       "--default-branch", "main") == 0
        assert _notify(results, "--channel", "pagerduty", "--pagerduty-url", rec.url) == 0  # default unknown
    assert rec.seen == []
    assert "pagerduty: not sent (branch feature is not the default branch main)" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--channel", "teams"], {}, "unknown channel 'teams'"),
    (["--channel", "webhook", "--webhook-url", "http://hooks.example.com/x"], {}, "http:// only to a loopback host"),
    (["--channel", "webhook", "--webhook-url", "https://[bad/x"], {}, "--webhook-url: not a valid URL"),
    (["--channel", "webhook", "--webhook-url", "ftp://example.com/x"], {}, "not an absolute http(s) URL"),
    (["--channel", "pushgateway", "--pushgateway-url", "file:///etc/passwd"], {}, "not an absolute http(s) URL"),
    (["--channel", "slack"], {"MLSEC_SLACK_WEBHOOK_URL": "http://hooks.slack.com/services/T/B/x"},
     "MLSEC_SLACK_WEBHOOK_URL: http:// only to a loopback host"),
    (["--channel", "telegram", "--telegram-chat-id", "1"], {"MLSEC_TELEGRAM_BOT_TOKEN": ""},
     "set MLSEC_TELEGRAM_BOT_TOKEN"),
    (["--channel", "webhook", "--webhook-url", "https://example.com/x"], {"MLSEC_WEBHOOK_SECRET": ""},
     "set MLSEC_WEBHOOK_SECRET"),
])
def test_bad_configuration_is_one_line_exit_2_and_nothing_sent(tmp_path: Path, secrets_env: None,
                                                               monkeypatch: pytest.MonkeyPatch, args: list[str],
                                                               env: dict[str, str], message: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    results = _results(tmp_path)
    capsys.readouterr()
    assert cli.main(["notify", str(results), *args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert "hooks.slack.com/services" not in err  # a credential-bearing URL is never repeated


def test_no_channel_is_exit_0_and_nothing_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["notify", str(tmp_path / "absent")]) == 0
    assert "no channel configured" in capsys.readouterr().err



def test_the_time_budget_bounds_every_retry() -> None:
    from mlsec_actions.notify.http import Client
    from mlsec_actions.notify.model import NotifyFailed

    pauses: list[float] = []
    with recorder(status=503) as rec:
        with pytest.raises(NotifyFailed, match=r"HTTP 503 after 4 attempt\(s\)"):
            Client(budget=60, retries=3, sleep=pauses.append).request("webhook", "POST", rec.url, b"{}")
        assert len(rec.seen) == 4 and pauses == [0.5, 1.0, 2.0]  # exponential backoff between attempts
        with pytest.raises(NotifyFailed, match="the time budget ran out after 0 attempt"):
            Client(budget=0.05, retries=3, sleep=pauses.append).request("webhook", "POST", rec.url, b"{}")
        assert len(rec.seen) == 4  # nothing more was sent


# bcrypt (cost 4) of GATEWAY_PASSWORD, made once with `crypt.crypt(GATEWAY_PASSWORD, crypt.mksalt(
# crypt.METHOD_BLOWFISH, rounds=16))` (libxcrypt); the real gateway accepting the right pair below proves it.
GATEWAY_USER = "mlsec-pusher"
GATEWAY_PASSWORD = "gateway-password-0123456789"
GATEWAY_HASH = "$2b$04$5f1HgXKUJKdDcg3JFWTNxuBVuDeibC19XoZyk1hUfhBRuK2eM2/Lu"


def _scrape(gateway: str, user: str, password: str) -> str:
    req = urllib.request.Request(f"{gateway}/metrics", headers={
        "Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()})
    with urllib.request.urlopen(req, timeout=10) as r:
        return str(r.read().decode())


def test_pushgateway_basic_auth_against_a_gateway_that_requires_it(tmp_path: Path, secrets_env: None,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    results = _results(tmp_path)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("MLSEC_PUSHGATEWAY_USERNAME", GATEWAY_USER)
    with pushgateway(tmp_path, {GATEWAY_USER: GATEWAY_HASH}) as gateway:
        monkeypatch.setenv("MLSEC_PUSHGATEWAY_PASSWORD", "wrong-password-0123456789")
        assert _notify(results, "--channel", "pushgateway", "--pushgateway-url", gateway) == 0
        wrong = capsys.readouterr()
        monkeypatch.delenv("MLSEC_PUSHGATEWAY_PASSWORD")
        monkeypatch.delenv("MLSEC_PUSHGATEWAY_USERNAME")
        assert _notify(results, "--channel", "pushgateway", "--pushgateway-url", gateway) == 0
        anonymous = capsys.readouterr()
        assert "mlsec_gate_passed" not in _scrape(gateway, GATEWAY_USER, GATEWAY_PASSWORD)  # neither got in
        monkeypatch.setenv("MLSEC_PUSHGATEWAY_USERNAME", GATEWAY_USER)
        monkeypatch.setenv("MLSEC_PUSHGATEWAY_PASSWORD", GATEWAY_PASSWORD)
        assert _notify(results, "--channel", "pushgateway", "--pushgateway-url", gateway) == 0
        right = capsys.readouterr()
        metrics = _scrape(gateway, GATEWAY_USER, GATEWAY_PASSWORD)
    assert "notify: warning: pushgateway: 127.0.0.1" in wrong.err and "answered HTTP 401" in wrong.err
    assert "0 sent, 1 failed" in wrong.err and "answered HTTP 401" in anonymous.err
    assert "1 sent, 0 failed" in right.err and "(basic auth)" in right.err
    assert re.search(r"^mlsec_gate_passed\{[^}]*\} 0$", metrics, re.M), metrics
    assert 'repository="acme/models"' in metrics
    # Both halves masked as soon as read; neither (nor the encoded pair) in any line printed.
    assert f"::add-mask::{GATEWAY_PASSWORD}" in right.out and f"::add-mask::{GATEWAY_USER}" in right.out
    encoded = base64.b64encode(f"{GATEWAY_USER}:{GATEWAY_PASSWORD}".encode()).decode()
    for text in (wrong.err, right.err, wrong.out.replace("::add-mask::wrong-password-0123456789", "")):
        assert GATEWAY_PASSWORD not in text and "wrong-password" not in text and encoded not in text


@pytest.mark.parametrize(("env", "url", "message"), [
    ({"MLSEC_PUSHGATEWAY_USERNAME": "u"}, "https://push.example.com",
     "set both MLSEC_PUSHGATEWAY_USERNAME and MLSEC_PUSHGATEWAY_PASSWORD, or neither"),
    ({"MLSEC_PUSHGATEWAY_PASSWORD": "p-secret-value"}, "https://push.example.com", "or neither"),
    ({"MLSEC_PUSHGATEWAY_USERNAME": "a:b", "MLSEC_PUSHGATEWAY_PASSWORD": "p-secret-value"},
     "https://push.example.com", "MLSEC_PUSHGATEWAY_USERNAME: printable, no ':'"),
    ({"MLSEC_PUSHGATEWAY_USERNAME": "u", "MLSEC_PUSHGATEWAY_PASSWORD": "p-secret-value\n"},
     "https://push.example.com", "MLSEC_PUSHGATEWAY_PASSWORD: printable"),
    # Credentials never go out in clear: http:// is loopback only, whatever the channel.
    ({"MLSEC_PUSHGATEWAY_USERNAME": "u", "MLSEC_PUSHGATEWAY_PASSWORD": "p-secret-value"},
     "http://push.example.com", "http:// only to a loopback host"),
])
def test_pushgateway_credentials_are_checked_before_anything_is_sent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], url: str, message: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["notify", str(tmp_path), "--channel", "pushgateway", "--pushgateway-url", url]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert "p-secret-value" not in err and "a:b" not in err
