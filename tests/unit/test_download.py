"""fetch's HTTP download (supply/download.py) against a real loopback server: bytes hashed as written, the size
cap and the deadline, the target created new and never through a link, and redirects followed only to https://
or back to the same loopback host (never to file:, ftp: or plain http elsewhere). S3 against moto's server."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from mlsec_actions.supply import download
from mlsec_actions.supply.download import DownloadError, LimitError
from mlsec_actions.supply.lock import Source, parse_url
from tests.supply_servers import S3Server, s3_server  # noqa: F401 -- the fixture (moto's real server)

BODY = b"model bytes " * 1000
SHORT = 5000


class _Handler(http.server.BaseHTTPRequestHandler):
    """/file: BODY with its length; /unsized: BODY with no Content-Length; /redirect?to=URL: 302 to URL;
    /chain?n=N: 302 to /chain?n=N+1; /missing: 404; .../short: BODY's length, SHORT bytes, then the connection
    closed; .../stall: the same, then silence; .../nocode: an S3 error without a code (these also for S3 GETs:
    /bucket/key; any other path: BODY with no length). Every path asked for is recorded."""

    protocol_version = "HTTP/1.0"  # the body ends when the connection closes: /unsized needs no length
    asked: ClassVar[list[str]] = []
    seen_headers: ClassVar[list[dict[str, str]]] = []

    def log_message(self, *_: object) -> None:
        pass

    def do_GET(self) -> None:
        self.asked.append(self.path)
        self.seen_headers.append({k.lower(): v for k, v in self.headers.items()})
        route, _, query = self.path.partition("?")
        if route == "/endless":  # never ends, never says how long: only our count stops it
            self.send_response(200)
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"\0" * 65536)
            except OSError:
                return
        if route in ("/redirect", "/chain"):
            self.send_response(302)
            got = urllib.parse.parse_qs(query)
            to = got["to"][0] if route == "/redirect" else f"/chain?n={int(got['n'][0]) + 1}"
            self.send_header("Location", to)
            self.end_headers()
            return
        if route.endswith(("/short", "/stall")):  # a length it never sends: closes early, or stops sending
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[:SHORT])
            self.wfile.flush()
            if route.endswith("/stall"):
                time.sleep(5)
            return
        if route.endswith("/nocode"):  # an S3 error document that names no error code
            body = b"<Error><Message>denied</Message></Error>"
            self.send_response(403)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if route == "/missing":
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        if route == "/file":
            self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(autouse=True)
def _fresh() -> None:
    _Handler.asked.clear()
    _Handler.seen_headers.clear()


def _source(url: str) -> Source:
    return parse_url(url, "artifacts[0].url", Path("mlsec.lock"))


def _redirect(base: str, to: str) -> Source:
    return _source(f"{base}/redirect?to={urllib.parse.quote(to, safe='')}")


@pytest.mark.parametrize("route", ["/file", "/unsized"])
def test_the_bytes_are_written_to_a_new_file_and_hashed(base: str, tmp_path: Path, route: str) -> None:
    got = download.fetch(_source(base + route), tmp_path / "a.bin", len(BODY), 30)
    assert (got.path, got.size, got.sha256) == (tmp_path / "a.bin", len(BODY), hashlib.sha256(BODY).hexdigest())
    assert got.path.read_bytes() == BODY and got.path.stat().st_mode & 0o777 == 0o600


def test_an_announced_length_over_the_cap_is_refused_before_a_file_is_made(base: str, tmp_path: Path) -> None:
    with pytest.raises(LimitError, match=f"announced {len(BODY)} bytes; the limit is {len(BODY) - 1}"):
        download.fetch(_source(base + "/file"), tmp_path / "a.bin", len(BODY) - 1, 30)
    assert not (tmp_path / "a.bin").exists()


def test_bytes_are_counted_when_no_length_is_announced(base: str, tmp_path: Path) -> None:
    with pytest.raises(LimitError, match=f"more than {len(BODY) - 1} bytes"):
        download.fetch(_source(base + "/unsized"), tmp_path / "a.bin", len(BODY) - 1, 30)


def test_a_download_past_its_deadline_is_stopped(base: str, tmp_path: Path) -> None:
    with pytest.raises(LimitError, match=r"^took longer than the timeout; stopped$"):  # a deadline already passed
        download.fetch(_source(base + "/unsized"), tmp_path / "a.bin", len(BODY), -1)


def test_the_target_is_never_an_existing_file_or_a_link(base: str, tmp_path: Path) -> None:
    existing = tmp_path / "a.bin"
    existing.write_bytes(b"mine")
    with pytest.raises(DownloadError):
        download.fetch(_source(base + "/file"), existing, len(BODY), 30)
    assert existing.read_bytes() == b"mine"
    link = tmp_path / "link.bin"
    link.symlink_to(tmp_path / "elsewhere.bin")
    with pytest.raises(DownloadError):
        download.fetch(_source(base + "/file"), link, len(BODY), 30)
    assert not (tmp_path / "elsewhere.bin").exists()


def test_an_http_error_and_an_unreachable_host_are_download_errors(base: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"^HTTP 404 Not Found$"):
        download.fetch(_source(base + "/missing"), tmp_path / "a.bin", len(BODY), 30)
    with pytest.raises(DownloadError, match=r"^cannot download: \[Errno 111\] Connection refused$"):
        download.fetch(_source("http://127.0.0.1:9/x"), tmp_path / "b.bin", len(BODY), 30)


def test_a_redirect_back_to_the_same_loopback_host_is_followed(base: str, tmp_path: Path) -> None:
    got = download.fetch(_redirect(base, base + "/file"), tmp_path / "a.bin", len(BODY), 30)
    assert got.size == len(BODY) and _Handler.asked[-1] == "/file"


@pytest.mark.parametrize(("to", "why"), [
    # urllib itself refuses a scheme other than http(s)/ftp before asking us
    ("file:///etc/passwd", "HTTP 302 Found - Redirection to url 'file:///etc/passwd' is not allowed"),
    ("ftp://127.0.0.1/x", "redirect to a ftp URL refused (only https:// is followed)"),
    ("http://example.com/x", "redirect to a http URL refused (only https:// is followed)"),
    ("http://10.0.0.1/x", "redirect to a http URL refused (only https:// is followed)"),
    # loopback, but another host than the one the lock names
    ("HTTP://localhost/x", "redirect to a http URL refused (only https:// is followed)"),
])
def test_a_redirect_off_https_elsewhere_is_refused_unfollowed(base: str, tmp_path: Path, to: str, why: str) -> None:
    with pytest.raises(DownloadError) as e:
        download.fetch(_redirect(base, to), tmp_path / "a.bin", len(BODY), 30)
    assert str(e.value) == why
    assert len(_Handler.asked) == 1 and not (tmp_path / "a.bin").exists()


def test_a_redirect_to_https_is_followed(base: str, tmp_path: Path) -> None:
    port = base.rsplit(":", 1)[1]
    with pytest.raises(DownloadError, match=r"^cannot download: ") as e:  # followed: the TLS handshake then fails
        download.fetch(_redirect(base, f"https://127.0.0.1:{port}/file"), tmp_path / "a.bin", len(BODY), 30)
    assert "refused" not in str(e.value)


def test_redirects_are_bounded(base: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP 302"):
        download.fetch(_source(base + "/chain?n=0"), tmp_path / "a.bin", len(BODY), 30)
    assert len(_Handler.asked) == download.MAX_REDIRECTS + 1


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:  # noqa: F811 -- the fixture above
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    client = s3_server.client()
    client.create_bucket(Bucket="models-dl")
    client.put_object(Bucket="models-dl", Key="m/a.bin", Body=BODY)
    return s3_server


def test_an_s3_object_is_written_and_hashed(s3: S3Server, tmp_path: Path) -> None:
    got = download.fetch(_source("s3://models-dl/m/a.bin"), tmp_path / "a.bin", len(BODY), 30)
    assert (got.size, got.sha256) == (len(BODY), hashlib.sha256(BODY).hexdigest())
    assert got.path.read_bytes() == BODY


def test_an_s3_objects_announced_size_is_checked_first(s3: S3Server, tmp_path: Path) -> None:
    with pytest.raises(LimitError, match=f"^announced {len(BODY)} bytes; the limit is 10$"):
        download.fetch(_source("s3://models-dl/m/a.bin"), tmp_path / "a.bin", 10, 30)
    assert not (tmp_path / "a.bin").exists()


def test_a_missing_s3_object_or_endpoint_is_a_download_error(s3: S3Server, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DownloadError, match=r"^S3 NoSuchKey$"):
        download.fetch(_source("s3://models-dl/m/none.bin"), tmp_path / "a.bin", len(BODY), 30)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        monkeypatch.setenv("MLSEC_S3_ENDPOINT_URL", f"http://127.0.0.1:{s.getsockname()[1]}")
    with pytest.raises(DownloadError, match=r"^S3: Could not connect"):
        download.fetch(_source("s3://models-dl/m/a.bin"), tmp_path / "a.bin", len(BODY), 1)


def test_the_request_names_us_and_asks_for_the_bytes_as_stored(base: str, tmp_path: Path) -> None:
    download.fetch(_source(base + "/file"), tmp_path / "a.bin", len(BODY), 30)
    (seen,) = _Handler.seen_headers
    assert seen["user-agent"] == "mlsec-fetch" and seen["accept-encoding"] == "identity"  # no gzip bomb


def test_an_endless_body_is_stopped_at_the_cap(base: str, tmp_path: Path) -> None:
    cap = 2 * download.CHUNK + 1
    with pytest.raises(LimitError, match=f"^more than {cap} bytes; stopped$"):
        download.fetch(_source(base + "/endless"), tmp_path / "a.bin", cap, 60)


def test_a_server_that_never_answers_times_out(tmp_path: Path) -> None:
    with socket.socket() as listener:  # the kernel accepts the connection; nobody ever answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        with pytest.raises(DownloadError, match=r"^cannot download: timed out$"):
            download.fetch(_source(f"http://127.0.0.1:{listener.getsockname()[1]}/x"), tmp_path / "a.bin", 10, 1)


def test_a_body_shorter_than_its_announced_length_is_a_download_error(base: str, tmp_path: Path) -> None:
    url = base + "/short"  # http.client hands back the short body as if it were complete
    with pytest.raises(DownloadError) as e:
        download.fetch(_source(url), tmp_path / "a.bin", len(BODY), 30)
    assert str(e.value) == f"{url}: connection closed after {SHORT} of {len(BODY)} bytes"


def test_a_body_that_stops_mid_way_times_out(base: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"^download interrupted: timed out$"):
        download.fetch(_source(base + "/stall"), tmp_path / "a.bin", len(BODY), 1)


def test_a_short_s3_body_is_a_download_error(base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSEC_S3_ENDPOINT_URL", base)  # our liar answers the GET as an S3 server would
    with pytest.raises(DownloadError) as e:
        download.fetch(_source("s3://models-dl/m/short"), tmp_path / "a.bin", len(BODY), 30)
    assert str(e.value) == f"s3://models-dl/m/short: connection closed after {SHORT} of {len(BODY)} bytes"
    assert _Handler.asked == ["/models-dl/m/short"]


def test_an_s3_body_that_stops_mid_way_times_out(base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSEC_S3_ENDPOINT_URL", base)
    with pytest.raises(DownloadError, match=r"^S3 download interrupted: Read timeout on endpoint URL"):
        download.fetch(_source("s3://models-dl/m/stall"), tmp_path / "a.bin", len(BODY), 1)


def test_an_s3_error_without_a_code_and_an_unsized_s3_body(base: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSEC_S3_ENDPOINT_URL", base)
    with pytest.raises(DownloadError, match=r"^S3 error$"):
        download.fetch(_source("s3://models-dl/m/nocode"), tmp_path / "a.bin", len(BODY), 30)
    got = download.fetch(_source("s3://models-dl/m/plain"), tmp_path / "b.bin", len(BODY), 30)  # no ContentLength
    assert (got.size, got.sha256) == (len(BODY), hashlib.sha256(BODY).hexdigest())
