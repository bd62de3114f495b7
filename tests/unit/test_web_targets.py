"""Target URLs of dast and runtime-probe are hostile input: each bad form is refused with a one-line reason, and
a host outside the allowlist is refused."""

from __future__ import annotations

import pytest

from mlsec_actions.errors import UsageError
from mlsec_actions.web_targets import Response, checked_targets, normalise_host, parse_target


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
