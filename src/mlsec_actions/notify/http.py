"""The one way a notification leaves the runner.

- URLs are https, or http to a loopback host only (`oci.reference.is_loopback`, the project's one check);
  anything else is bad configuration (UsageError, exit 2), found before anything is sent.
- Redirects are never followed: a 3xx is a failed delivery that names the host it pointed to (a webhook that
  redirects elsewhere must not carry our body, or a token in its URL, to that host).
- Retries with exponential backoff on connection errors, timeouts, 429 and 5xx, all inside one time budget
  shared by every channel of the run; 4xx other than 429 is not retried.
- Errors name the channel and the host only, never a URL path or query (Slack's and Telegram's carry the
  credential) and never a response body; `scrub` removes every known secret as a last line of defence.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from mlsec_actions.errors import UsageError
from mlsec_actions.notify.model import NotifyFailed
from mlsec_actions.oci.reference import is_loopback

MAX_RESPONSE_BYTES = 1024 * 1024
PER_REQUEST_SECONDS = 15.0
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


def check_url(value: str, what: str) -> str:
    """`value` if it is an absolute https URL, or http to loopback; else UsageError naming `what` (the URL
    itself is not repeated: it may hold a credential)."""
    try:
        parts = urllib.parse.urlsplit(value.strip())
        port = parts.port  # raises ValueError for a bad port
    except ValueError:
        raise UsageError(f"{what}: not a valid URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UsageError(f"{what}: not an absolute http(s) URL")
    if any(c in value for c in "\r\n\t \\") or parts.fragment:
        raise UsageError(f"{what}: not a valid URL (whitespace, backslash or fragment)")
    if parts.username is not None or parts.password is not None:
        raise UsageError(f"{what}: a user or password in the URL; credentials come from the environment only")
    host = parts.hostname
    if parts.scheme == "http" and not is_loopback(f"[{host}]" if ":" in host else host):
        raise UsageError(f"{what}: http:// only to a loopback host; use https:// for {host}")
    del port
    return value.strip()


def host_of(url: str) -> str:
    """The host (and port) of a URL: all an error message may show of it."""
    return urllib.parse.urlsplit(url).netloc.rpartition("@")[2]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: urllib.request.Request, fp: object, code: int, msg: str,
                         headers: http.client.HTTPMessage, newurl: str) -> None:
        raise _Redirected(code, host_of(urllib.parse.urljoin(req.full_url, newurl)))


class _Redirected(Exception):
    def __init__(self, code: int, host: str) -> None:
        super().__init__(code, host)
        self.code = code
        self.host = host


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: Mapping[str, str]


@dataclass
class Client:
    """HTTP with retries inside a budget. One per `mlsec notify` run, shared by its channels."""

    budget: float
    """Seconds for every request of the run, retries and backoff included."""
    retries: int = 3
    """Attempts after the first, per request."""
    secrets: Iterable[str] = ()
    sleep: Callable[[float], None] = time.sleep
    max_response_bytes: int = MAX_RESPONSE_BYTES
    """At most this much of an answer is read (a longer one is cut here)."""
    started: float = field(default_factory=time.monotonic)
    attempts: int = 0
    """Requests sent (for the outcome lines and tests)."""

    def remaining(self) -> float:
        return self.budget - (time.monotonic() - self.started)

    def scrub(self, text: str) -> str:
        for secret in sorted((s for s in self.secrets if s), key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def request(self, channel: str, method: str, url: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None, ok: Iterable[int] = (200, 201, 202, 204)) -> Response:
        """Send one request, retrying what may succeed later; NotifyFailed when it does not."""
        accepted = frozenset(ok)
        try:
            check_url(url, channel)  # the channels checked it already; this keeps the one way out honest
        except UsageError as e:
            raise NotifyFailed(str(e)) from None
        host = host_of(url)
        last, sent = "not sent: the time budget ran out", 0
        for attempt in range(self.retries + 1):
            if attempt:
                pause = min(0.5 * 2 ** (attempt - 1), 8.0)
                if self.remaining() <= pause + 0.1:
                    break
                self.sleep(pause)
            left = self.remaining()
            if left <= 0.1:
                break
            sent += 1
            outcome = self._once(method, url, body, headers or {}, min(PER_REQUEST_SECONDS, left))
            if isinstance(outcome, Response):
                if outcome.status in accepted:
                    return outcome
                last = f"HTTP {outcome.status}"
                if outcome.status not in _RETRY_STATUS:
                    raise NotifyFailed(self.scrub(f"{channel}: {host} answered {last}"))
            elif isinstance(outcome, _Redirected):
                raise NotifyFailed(self.scrub(f"{channel}: {host} answered HTTP {outcome.code}, a redirect to "
                                              f"{outcome.host}: refused (redirects are never followed)"))
            else:
                last = outcome
        raise NotifyFailed(self.scrub(f"{channel}: {host}: {last} after {sent} attempt(s) "
                                      f"(time budget {self.budget:g}s)"))

    def _once(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str],
              timeout: float) -> Response | _Redirected | str:
        self.attempts += 1
        handlers: list[urllib.request.BaseHandler] = [_NoRedirects()]
        if is_loopback(host_of(url)):
            handlers.append(urllib.request.ProxyHandler({}))  # a proxy must not see loopback traffic
        opener = urllib.request.build_opener(*handlers)
        req = urllib.request.Request(  # noqa: S310 - scheme checked by check_url in request()
            url, data=body, method=method, headers={"User-Agent": "mlsec-notify", **headers})
        try:
            with opener.open(req, timeout=timeout) as resp:
                return Response(resp.status, resp.read(self.max_response_bytes), dict(resp.headers.items()))
        except _Redirected as r:
            return r
        except urllib.error.HTTPError as e:
            with e:
                return Response(e.code, e.read(self.max_response_bytes), dict(e.headers.items()))
        except (TimeoutError, urllib.error.URLError, OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", None) or e
            return "timed out" if isinstance(reason, TimeoutError) else f"{type(reason).__name__}"
