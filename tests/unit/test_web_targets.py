"""Target URLs of dast and runtime-probe are hostile input: each bad form is refused with a one-line reason, and
a host outside the allowlist is refused."""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from mlsec_actions.errors import UsageError
from mlsec_actions.web_targets import (
    MAX_RESPONSE,
    Response,
    Target,
    checked_targets,
    normalise_host,
    parse_target,
    policy_hosts,
    send,
)
from tests.tls_services import make_certificate, modern_context


def test_a_plain_url_is_read_with_its_query_in_order() -> None:
    t = parse_target("http://127.0.0.1:8080/item?id=1&b=&id=2")
    assert (t.scheme, t.host, t.port, t.path) == ("http", "127.0.0.1", 8080, "/item")
    assert t.query == (("id", "1"), ("b", ""), ("id", "2"))
    assert t.origin == "http://127.0.0.1:8080"
    assert t.with_query([("id", "1' OR")]) == "/item?id=1%27+OR"
    assert parse_target("https://Example.COM").port == 443
    assert parse_target("http://example.com").path == "/"
    assert parse_target("http://[::1]:9/").origin == "http://[::1]:9"


@pytest.mark.parametrize(("url", "why"), [
    ("ftp://127.0.0.1/", "only http"),
    ("file:///etc/passwd", "only http"),
    ("http://user:pw@127.0.0.1/", "credentials"),
    ("http://ghp_token@127.0.0.1/", "credentials"),
    ("http://:pw@127.0.0.1/", "credentials"),
    ("http://127.0.0.1/a b", "control characters"),
    ("http://127.0.0.1/\r\nHost: evil", "control characters"),
    ("http:///path", "no host"),
    ("http://127.0.0.1:99999/", "not a valid URL"),
    ("http://127.0.0.1/#frag", "fragment"),
    ("http://bad_host!/", "not a host name"),
    ("http://127.0.0.1/" + "a" * 2100, "longer than"),
])
def test_a_bad_url_is_refused_naming_why(url: str, why: str) -> None:
    with pytest.raises(UsageError, match=why) as e:
        parse_target(url)
    assert "\n" not in str(e.value) and "\r" not in str(e.value)


def test_hosts_compare_in_one_form() -> None:
    assert normalise_host("[::0001]") == "::1"
    assert normalise_host("LocalHost.") == "localhost"
    assert normalise_host("127.0.0.1") == "127.0.0.1"


def test_a_target_outside_the_allowlist_is_refused() -> None:
    assert checked_targets(["http://127.0.0.1:1/"], ["127.0.0.1"])[0].host == "127.0.0.1"
    with pytest.raises(UsageError, match="not in the allowlist"):
        checked_targets(["http://127.0.0.1:1/", "http://10.0.0.1/"], ["127.0.0.1"])
    with pytest.raises(UsageError, match="not in the allowlist"):
        checked_targets(["http://127.0.0.2/"], ["127.0.0.1", "localhost"])
    for near in ("http://127.0.0.10/", "http://localhost.evil.example/", "http://local/"):  # whole hosts only
        with pytest.raises(UsageError, match="not in the allowlist"):
            checked_targets([near], ["127.0.0.1", "localhost"])
    # without an allowlist, the targets' own hosts are the list
    assert len(checked_targets(["http://127.0.0.1/", "http://127.0.0.2/"], [])) == 2


def test_response_headers_are_found_by_any_case() -> None:
    r = Response(200, (("x-frame-options", "DENY"),), "")
    assert r.header("X-Frame-Options") == "DENY"
    assert r.header("Content-Security-Policy") is None


def test_the_policys_allow_hosts_bound_every_target() -> None:
    assert checked_targets(["http://127.0.0.1/"], [], policy_hosts=["127.0.0.1"])
    with pytest.raises(UsageError, match="policy's allow-hosts"):
        checked_targets(["http://127.0.0.1/"], ["127.0.0.1"], policy_hosts=["10.0.0.1"])
    with pytest.raises(UsageError, match=r"policy's allow-hosts \(none\)"):
        checked_targets(["http://127.0.0.1/"], [], policy_hosts=[])  # an empty list allows nothing


def test_policy_hosts_are_read_from_the_stages_own_section(tmp_path: Path) -> None:
    policy = tmp_path / "p.yml"
    policy.write_text("version: 1\nthresholds: []\ndast:\n  allow-hosts: [127.0.0.1, '::1']\nruntime-probe: {}\n")
    assert policy_hosts(str(policy), "dast") == ("127.0.0.1", "::1")
    assert policy_hosts(str(policy), "runtime-probe") is None  # the section has no allow-hosts: no second list
    assert policy_hosts(None, "dast") is None
    assert policy_hosts("default", "dast") is None


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A loopback server: /redirect answers 302 to another host, /big sends more than MAX_RESPONSE, /slow never
    answers; every request's line, headers and body are recorded."""

    seen: ClassVar[list[tuple[str, str, dict[str, str], bytes]]] = []

    def log_message(self, *_: object) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.seen.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                          self.rfile.read(length)))
        route = self.path.partition("?")[0]
        if route == "/slow":
            time.sleep(2)
            return
        body = b"x" * (MAX_RESPONSE + 4096) if route == "/big" else "caf\u00e9 \xff".encode("latin-1")
        self.send_response(302 if route == "/redirect" else 200)
        if route == "/redirect":
            self.send_header("Location", "http://10.0.0.1/elsewhere")
        self.send_header("X-Mixed-Case", "Yes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer


@pytest.fixture
def server() -> Iterator[Target]:
    _Recorder.seen.clear()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield parse_target(f"http://127.0.0.1:{httpd.server_address[1]}/")
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_send_makes_one_request_to_the_targets_origin_and_follows_no_redirect(server: Target) -> None:
    before = time.monotonic()
    got = send(server, "GET", "/redirect?a=1", headers={"X-Probe": "1"})
    window = time.monotonic() - before
    assert got.status == 302 and got.header("location") == "http://10.0.0.1/elsewhere" and not got.error
    assert len(_Recorder.seen) == 1  # the Location was only reported, never fetched
    method, path, headers, _ = _Recorder.seen[0]
    assert (method, path) == ("GET", "/redirect?a=1")
    assert headers["user-agent"] == "mlsec-actions" and headers["connection"] == "close"
    assert headers["x-probe"] == "1" and headers["host"] == f"127.0.0.1:{server.port}"
    assert ("x-mixed-case", "Yes") in got.headers  # names lower case, values as sent
    assert 0 < got.seconds <= window  # the request's own wall time, inside the one measured around it


def test_send_passes_the_body_and_decodes_leniently(server: Target) -> None:
    got = send(server, "POST", "/form", body=b"q=1")
    assert _Recorder.seen[0][0::3] == ("POST", b"q=1")
    assert got.status == 200 and got.body == "caf\ufffd \ufffd"  # latin-1 bytes are not UTF-8: replaced


def test_send_keeps_at_most_max_response_bytes(server: Target) -> None:
    assert len(send(server, "GET", "/big").body) == MAX_RESPONSE


def test_send_reports_a_timeout_and_a_refused_connection_as_one_line_without_status(server: Target) -> None:
    slow = send(server, "GET", "/slow", timeout=0.3)
    assert slow.status is None and "timed out" in slow.error and slow.body == "" and slow.headers == ()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = parse_target(f"http://127.0.0.1:{s.getsockname()[1]}/")
    before = time.monotonic()
    refused = send(closed, "GET", "/")
    assert 0 < refused.seconds <= time.monotonic() - before
    assert refused.status is None and refused.error.startswith("ConnectionRefusedError: ") and "\n" not in refused.error


def test_an_https_target_is_spoken_to_with_certificate_checks(server: Target) -> None:
    plain = Target(server.url, "https", server.host, server.port, "/", ())
    got = send(plain, "GET", "/")  # a TLS handshake against a plain-HTTP server fails: never a fallback
    assert got.status is None and got.error.startswith("SSLError")


def test_a_request_without_query_has_no_question_mark() -> None:
    assert parse_target("http://127.0.0.1/item?id=1").with_query([]) == "/item"


def test_a_refused_target_is_named_with_the_option_and_the_list() -> None:
    with pytest.raises(UsageError) as e:
        checked_targets(["http://10.0.0.1/"], ["localhost", "127.0.0.1"], what="--url")
    assert str(e.value) == ("--url 'http://10.0.0.1/': host 10.0.0.1 is not in the allowlist (127.0.0.1, localhost); "
                            "nothing was sent")
    with pytest.raises(UsageError, match=r"^--url 'ftp://x/': only http"):
        checked_targets(["ftp://x/"], [], what="--url")


def test_https_checks_the_certificate_even_if_the_process_default_was_turned_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _Recorder.seen.clear()
    cert, key, _, _ = make_certificate(tmp_path, "self", host="127.0.0.1", days=(-1, 30), issuer=None)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    httpd.socket = modern_context(cert, key).wrap_socket(httpd.socket, server_side=True)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    # Another library in the process may have made unverified TLS the default: send must not inherit it.
    monkeypatch.setattr(ssl, "_create_default_https_context", ssl._create_unverified_context)
    try:
        got = send(parse_target(f"https://127.0.0.1:{httpd.server_address[1]}/"), "GET", "/")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert got.status is None and "CERTIFICATE_VERIFY_FAILED" in got.error and not _Recorder.seen


def test_an_https_target_that_never_answers_times_out() -> None:
    with socket.socket() as listener:  # the kernel completes the handshake; nobody ever speaks TLS
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        got = send(parse_target(f"https://127.0.0.1:{listener.getsockname()[1]}/"), "GET", "/", timeout=0.3)
    assert got.status is None and "timed out" in got.error


def test_the_default_ports_the_url_length_bound_and_the_default_option_name() -> None:
    assert (parse_target("http://example.com").port, parse_target("https://example.com").port) == (80, 443)
    at_bound = "http://127.0.0.1/" + "a" * (2048 - len("http://127.0.0.1/"))
    assert parse_target(at_bound).url == at_bound
    with pytest.raises(UsageError) as e:
        parse_target(at_bound + "a")
    assert str(e.value) == f"--target {repr(at_bound + 'a')[:80]}...: URL longer than 2048 characters"
    with pytest.raises(UsageError, match=r"^--target 'http://10\.0\.0\.1/': host 10\.0\.0\.1 is not in the allowlist"):
        checked_targets(["http://10.0.0.1/"], ["127.0.0.1"])
