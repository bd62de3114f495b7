"""infra-scan's target and policy parsing: one host per target, nothing nmap would widen, every host both listed
by the caller and allowed by the policy."""

from __future__ import annotations

import pytest

from mlsec_actions.errors import InputError, UsageError
from mlsec_actions.stages import infra_targets as it


@pytest.mark.parametrize(("text", "host", "spec"), [
    ("127.0.0.1", "127.0.0.1", ""),
    ("127.0.0.1:22", "127.0.0.1", "22"),
    ("10.0.0.5:22,443,8000-8010", "10.0.0.5", "22,443,8000-8010"),
    ("App.Internal.", "app.internal", ""),
    ("app.internal:443", "app.internal", "443"),
    ("::1", "::1", ""),
    ("[::1]:443", "::1", "443"),
    ("[0:0::1]", "::1", ""),
    ("host-1:1,65535", "host-1", "1,65535"),
])
def test_targets_parse_to_one_host(text: str, host: str, spec: str) -> None:
    target = it.parse_target(text)
    assert (target.host, target.port_spec) == (host, spec)


@pytest.mark.parametrize("text", [
    "127.0.0.0/24", "10.0.0.1-9", "10.0.0.*", "127.0.0.1,127.0.0.2", "-iL", "-iL/etc/hosts", "--script=x",
    "127.0.0.1 127.0.0.2", "", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:22-21", "127.0.0.1:22,", "127.0.0.1:a",
    "[::1", "[::1]22", "-host", "host-", "a..b", "1234", "127.1", "x" * 300, "h\nost", "[::1]:",
])
def test_anything_but_one_host_is_refused(text: str) -> None:
    with pytest.raises(UsageError):
        it.parse_target(text)


def test_too_many_port_items_or_targets_are_refused() -> None:
    with pytest.raises(UsageError):
        it.parse_target("127.0.0.1:" + ",".join(str(p) for p in range(1, it.MAX_PORT_ITEMS + 2)))
    assert len(it.parse_target("127.0.0.1:" + ",".join(str(p) for p in range(1, it.MAX_PORT_ITEMS + 1))).ports) == \
        it.MAX_PORT_ITEMS
    with pytest.raises(UsageError):
        it.parse_targets(["127.0.0.1"] * (it.MAX_TARGETS + 1))
    assert len(it.parse_targets(["127.0.0.1"] * it.MAX_TARGETS)) == it.MAX_TARGETS


def test_port_ranges_include_both_ends() -> None:
    (r,) = it.parse_ports("8000-8010", "x")
    assert 8000 in r and 8010 in r and 7999 not in r and 8011 not in r and "8000" not in r
    assert str(r) == "8000-8010" and str(it.PortRange(5, 5)) == "5"


SECTION = {"hosts": [{"host": "10.0.0.5", "allow": [{"ports": 22}, {"ports": "443,8000-8010", "tls": True}]},
                     {"host": "[::1]"}],
           "tls": {"min-version": "TLSv1.3", "expiry-days": 7},
           "openscap": {"profile": "p", "rules": ["r1"]}}


def test_the_policy_section_is_read() -> None:
    pol = it.from_section(SECTION, "pol.yml")
    host = pol.host("10.0.0.5")
    assert host is not None and pol.host("::1") is not None and pol.host("10.0.0.6") is None
    assert host.entry_for(22) is not None and host.entry_for(23) is None
    entry = host.entry_for(8010)
    assert entry is not None and entry.tls and not host.allow[0].tls
    assert (pol.tls_min_version, pol.expiry_days, pol.openscap_profile, pol.openscap_rules) == ("TLSv1.3", 7, "p",
                                                                                                ("r1",))
    default = it.from_section(None, "d")
    assert (default.hosts, default.tls_min_version, default.expiry_days, default.service_detection) == \
        ((), "TLSv1.2", 30, False)


@pytest.mark.parametrize(("section", "words"), [
    ({"hosts": [{"host": "10.0.0.0/8"}]}, "hosts[0].host"),
    ({"hosts": [{"host": "10.0.0.5"}, {"host": "10.0.0.05"}]}, "hosts[1].host"),
    ({"hosts": [{"host": "a"}, {"host": "A."}]}, "listed twice"),
    ({"hosts": [{"host": "a", "allow": [{"ports": "0"}]}]}, "hosts[0].allow[0].ports"),
    ({"hosts": [{"host": "a", "allow": [{"ports": "22", "service": "ssh"}]}]}, "service-detection"),
])
def test_a_malformed_allowlist_is_refused_naming_the_key(section: dict[str, object], words: str) -> None:
    with pytest.raises(InputError, match=r"pol\.yml") as e:
        it.from_section(section, "pol.yml")
    assert words in str(e.value)


def test_service_entries_need_detection() -> None:
    pol = it.from_section({"service-detection": True, "hosts": [{"host": "a", "allow": [{"ports": 22,
                                                                                          "service": "ssh"}]}]}, "p")
    assert pol.service_detection and pol.hosts[0].allow[0].service == "ssh"


def test_a_target_the_policy_does_not_list_is_refused() -> None:
    pol = it.from_section(SECTION, "pol.yml")
    it.refuse_unlisted(it.parse_targets(["10.0.0.5:22", "[::1]"]), pol)
    with pytest.raises(UsageError, match=r"10\.0\.0\.6 is not in the policy"):
        it.refuse_unlisted(it.parse_targets(["10.0.0.5", "10.0.0.6"]), pol)
    with pytest.raises(UsageError):
        it.refuse_unlisted(it.parse_targets(["10.0.0.5"]), it.from_section(None, "d"))
