"""infra-scan's target and policy parsing: one host per target, nothing nmap would widen, every host both listed
by the caller and allowed by the policy."""

from __future__ import annotations

from pathlib import Path

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


SHAPES = [
    ({}, True), ({"hosts": []}, True), (SECTION, True),
    ({"hosts": [{"host": "a", "reason": "r", "allow": [{"ports": 1, "reason": "x", "tls": False}]}]}, True),
    ({"service-detection": True, "hosts": [{"host": "a", "allow": [{"ports": "22", "service": "ssh"}]}]}, True),
    ({"tls": {"min-version": "TLSv1", "expiry-days": 0}}, True), ({"tls": {"expiry-days": 3650}}, True),
    ({"openscap": {"profile": "p", "content": "c", "rules": []}}, True),
    ([], False), ("x", False), ({"other": 1}, False), ({"hosts": {}}, False), ({"hosts": [{}]}, False),
    ({"hosts": ["a"]}, False), ({"hosts": [{"host": ""}]}, False), ({"hosts": [{"host": 1}]}, False),
    ({"hosts": [{"host": "a", "port": 1}]}, False), ({"hosts": [{"host": "a", "allow": [{}]}]}, False),
    ({"hosts": [{"host": "a", "allow": [{"ports": True}]}]}, False),
    ({"hosts": [{"host": "a", "allow": [{"ports": 70000}]}]}, False),
    ({"hosts": [{"host": "a", "allow": [{"ports": 0}]}]}, False),
    ({"hosts": [{"host": "a", "allow": [{"ports": ""}]}]}, False),
    ({"hosts": [{"host": "a", "allow": [{"ports": 1.5}]}]}, False),
    ({"hosts": [{"host": "a", "allow": [{"ports": 1, "tls": "yes"}]}]}, False),
    ({"hosts": [{"host": "a", "allow": "22"}]}, False), ({"hosts": [{"host": "a"}] * 65}, False),
    ({"service-detection": "yes"}, False), ({"tls": {"min-version": "SSLv3"}}, False),
    ({"tls": {"expiry-days": -1}}, False), ({"tls": {"expiry-days": 3651}}, False),
    ({"tls": {"expiry-days": True}}, False), ({"tls": {"expiry-days": "30"}}, False), ({"tls": []}, False),
    ({"openscap": {"profile": ""}}, False), ({"openscap": {"rules": "r"}}, False),
    ({"openscap": {"rules": [1]}}, False), ({"openscap": {"extra": 1}}, False),
    # every bound, on both sides
    ({"hosts": [{"host": "a", "reason": ""}]}, True), ({"hosts": [{"host": "a", "reason": "r" * 500}]}, True),
    ({"hosts": [{"host": "a", "reason": "r" * 501}]}, False),
    ({"hosts": [{"host": "a", "allow": [{"ports": 1, "reason": ""}]}]}, True),
    ({"hosts": [{"host": "a", "allow": [{"ports": 1, "reason": "r" * 500}]}]}, True),
    ({"hosts": [{"host": "a", "allow": [{"ports": 1, "reason": "r" * 501}]}]}, False),
    ({"hosts": [{"host": "a", "allow": [{"ports": 1, "reason": 1}]}]}, False),
    ({"hosts": [{"host": "a", "allow": [{"ports": 65535}]}]}, True),
    ({"hosts": [{"host": "a", "allow": [{"ports": "1"}]}]}, True),
    ({"hosts": [{"host": "a", "allow": [{"ports": "22" + " " * 1998}]}]}, True),
    ({"hosts": [{"host": "a", "allow": [{"ports": "22" + " " * 1999}]}]}, False),
    ({"service-detection": True, "hosts": [{"host": "a", "allow": [{"ports": 22, "service": "s"}]}]}, True),
    ({"service-detection": True, "hosts": [{"host": "a", "allow": [{"ports": 22, "service": "s" * 64}]}]}, True),
    ({"service-detection": True, "hosts": [{"host": "a", "allow": [{"ports": 22, "service": "s" * 65}]}]}, False),
    ({"service-detection": True, "hosts": [{"host": "a", "allow": [{"ports": 22, "service": 1}]}]}, False),
    ({"openscap": {"profile": "p" * 300}}, True), ({"openscap": {"profile": "p" * 301}}, False),
    ({"openscap": {"content": "c" * 1000}}, True), ({"openscap": {"content": "c" * 1001}}, False),
    ({"openscap": {"content": 1}}, False),
    ({"openscap": {"rules": ["r"] * 2000}}, True), ({"openscap": {"rules": ["r"] * 2001}}, False),
    ({"openscap": {"rules": ["r" * 300]}}, True), ({"openscap": {"rules": ["r" * 301]}}, False),
]


@pytest.mark.parametrize(("section", "valid"), SHAPES)
def test_the_section_checks_agree_with_the_policy_schema(section: object, valid: bool) -> None:
    import jsonschema

    from mlsec_actions.gate.policy import schema

    by_schema = jsonschema.Draft202012Validator(schema()).is_valid({"version": 1, "infra-scan": section})
    try:
        it.from_section(section, "p.yml")
        by_stage = True
    except InputError:
        by_stage = False
    assert (by_schema, by_stage) == (valid, valid)


@pytest.mark.parametrize("name", it.BUILTIN)
def test_the_builtin_policies_have_no_infra_scan_section(name: str) -> None:
    from mlsec_actions.gate.policy import load_document

    doc, _ = load_document(name)
    assert "infra-scan" not in doc and it.read_policy(name) == (None, f"policies/{name}.yml")


def test_a_policy_file_is_read_bounded(tmp_path: Path) -> None:
    good = tmp_path / "p.yml"
    good.write_text("version: 1\ninfra-scan:\n  hosts: [{host: a}]\n")
    assert it.read_policy(str(good)) == ({"hosts": [{"host": "a"}]}, str(good))
    laughs = "version: 1\na: &a [x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 8)}]\n" for i in range(8))
    for body in ("version: 2\n", "- 1\n", laughs, "version: 1\nversion: 1\n", "version: 1\n" + "x" * 300_000):
        good.write_text(body)
        with pytest.raises(InputError):
            it.read_policy(str(good))


@pytest.mark.parametrize(("text", "message"), [
    ("[::1]]:22", "--target '[::1]]:22': write an IPv6 address as [ADDRESS] or [ADDRESS]:PORTS"),
    ("[" + "1" * 90, f"--target {('[' + '1' * 90)[:80]!r}: write an IPv6 address as [ADDRESS] or [ADDRESS]:PORTS"),
    (":", "--target ':': not one IP address or DNS name (ranges, CIDR blocks and options are refused)"),
    ("x" * 100, f"--target {'x' * 80!r}: not one IP address or DNS name (ranges, CIDR blocks and options are "
                "refused)"),
    ("127.0.0.1:", "--target '127.0.0.1:': no ports after ':'"),
    ("a" * 85 + ":", f"--target {'a' * 80!r}: no ports after ':'"),
    ("127.0.0.1:" + "9" * 90, f"--target {('127.0.0.1:' + '9' * 90)[:80]!r}: {'9' * 60!r} is not a port list like "
                              "22,80,8000-8010"),
    ("127.0.0.1:99999", "--target '127.0.0.1:99999': '99999' is not a port range within 1-65535"),
])
def test_a_refused_target_is_named_shortened_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(UsageError) as e:
        it.parse_target(text)
    assert str(e.value) == message


def test_the_count_refusals_say_the_bound() -> None:
    with pytest.raises(UsageError) as e:
        it.parse_targets(["a"] * (it.MAX_TARGETS + 1))
    assert str(e.value) == f"--target: at most {it.MAX_TARGETS} targets"
    with pytest.raises(ValueError) as v:
        it.parse_ports(",".join(["1"] * (it.MAX_PORT_ITEMS + 1)), "W")
    assert str(v.value) == f"W: more than {it.MAX_PORT_ITEMS} port items"


def test_spaces_in_a_port_list_are_ignored() -> None:
    assert it.parse_ports(" 22, 8000 - 8010 ", "W") == (it.PortRange(22, 22), it.PortRange(8000, 8010))


@pytest.mark.parametrize(("text", "host"), [
    ("app.internal]", None),  # half a bracket pair is not an IPv6 literal
    ("[app.internal", None),
    ("app.1", None), ("x.y.1", None),  # the last label is numeric: an IP-like range, not a name
    ("1.app", "1.app"), ("a.b.c", "a.b.c"), ("[::1]", "::1"),
])
def test_host_names_need_a_letter_in_the_last_label(text: str, host: str | None) -> None:
    assert it.normalise_host(text) == host


@pytest.mark.parametrize(("section", "message"), [
    ([], "infra-scan: must be a mapping"),
    ({"other": 1}, "infra-scan: unknown key 'other'"),
    ({"y" * 50: 1}, f"infra-scan: unknown key {'y' * 40!r}"),
    ({"hosts": {}}, "infra-scan.hosts: must be a list of at most 64 items"),
    ({"hosts": [{}]}, "infra-scan.hosts[0]: 'host' is required"),
    ({"hosts": ["a"]}, "infra-scan.hosts[0]: must be a mapping"),
    ({"hosts": [{"host": ""}]}, "infra-scan.hosts[0].host: must be text of 1 to 255 characters"),
    ({"hosts": [{"host": "h" * 256}]}, "infra-scan.hosts[0].host: must be text of 1 to 255 characters"),
    ({"hosts": [{"host": "a", "reason": 1}]}, "infra-scan.hosts[0].reason: must be text of 0 to 500 characters"),
    ({"hosts": [{"host": "x" * 70}]}, f"infra-scan.hosts[0].host: {'x' * 60!r} is not one IP address or DNS name"),
    ({"service-detection": "yes"}, "infra-scan.service-detection: must be true or false"),
    ({"hosts": [{"host": "a", "allow": {}}]}, "infra-scan.hosts[0].allow: must be a list of at most 256 items"),
    ({"hosts": [{"host": "a", "allow": ["x"]}]}, "infra-scan.hosts[0].allow[0]: must be a mapping"),
    *(({"hosts": [{"host": "a", "allow": [{"ports": bad}]}]},
       'infra-scan.hosts[0].allow[0].ports: must be a port number or a port list such as "22,8000-8010"')
      for bad in (0, 65536, "", True, "1" * 2001)),
    ({"service-detection": True, "hosts": [{"host": "a", "allow": [{"ports": 1, "service": 1}]}]},
     "infra-scan.hosts[0].allow[0].service: must be text of 1 to 64 characters"),
    ({"hosts": [{"host": "a", "allow": [{"ports": 1, "tls": "yes"}]}]},
     "infra-scan.hosts[0].allow[0].tls: must be true or false"),
    ({"hosts": [{"host": "a", "allow": [{"ports": 1, "reason": 1}]}]},
     "infra-scan.hosts[0].allow[0].reason: must be text of 0 to 500 characters"),
    ({"tls": []}, "infra-scan.tls: must be a mapping"),
    ({"tls": {"min-version": "SSLv3"}}, "infra-scan.tls.min-version: must be one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3"),
    ({"tls": {"expiry-days": -1}}, "infra-scan.tls.expiry-days: must be a whole number from 0 to 3650"),
    ({"openscap": []}, "infra-scan.openscap: must be a mapping"),
    ({"openscap": {"profile": ""}}, "infra-scan.openscap.profile: must be text of 1 to 300 characters"),
    ({"openscap": {"content": ""}}, "infra-scan.openscap.content: must be text of 1 to 1000 characters"),
    ({"openscap": {"rules": "r"}}, "infra-scan.openscap.rules: must be a list of at most 2000 items"),
    ({"openscap": {"rules": [1]}}, "infra-scan.openscap.rules[0]: must be text of 1 to 300 characters"),
])
def test_a_malformed_section_is_refused_with_its_key_and_the_problem(section: object, message: str) -> None:
    with pytest.raises(InputError) as e:
        it.from_section(section, "pol.yml")
    assert str(e.value) == f"pol.yml: {message}"


def test_a_section_at_its_bounds_is_read_and_its_defaults_filled() -> None:
    hosts = [{"host": f"h{i}.internal", "reason": "r" * 500} for i in range(it.MAX_TARGETS)]
    assert len(it.from_section({"hosts": hosts}, "p").hosts) == it.MAX_TARGETS
    pol = it.from_section({"hosts": [{"host": "a", "allow": [{"ports": 22}]}], "openscap": {"content": "c.xml"}}, "p")
    assert (pol.service_detection, pol.tls_min_version, pol.expiry_days, pol.hosts[0].allow[0].tls) == \
        (False, "TLSv1.2", 30, False)
    assert (pol.openscap_profile, pol.openscap_content, pol.openscap_rules, pol.label) == (None, "c.xml", (), "p")


@pytest.mark.parametrize("section", [None, SECTION])
def test_an_unlisted_target_is_refused_naming_the_policy(section: object) -> None:
    with pytest.raises(UsageError) as e:
        it.refuse_unlisted(it.parse_targets(["10.0.0.9"]), it.from_section(section, "pol.yml"))
    assert str(e.value) == ("infra-scan: target 10.0.0.9 is not in the policy's infra-scan.hosts allowlist "
                            "(pol.yml); nothing was contacted")


def test_a_policy_file_refusal_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p.yml"
    path.write_text("version: 2\n")
    with pytest.raises(InputError) as e:
        it.read_policy(str(path))
    assert str(e.value) == f"{path}: a policy is a mapping with version: 1"
    path.write_text("version: 1\n" + "#" * (2 * 1024 * 1024) + "\n")  # over the policy bound and the YAML default
    with pytest.raises(InputError) as e:
        it.read_policy(str(path))
    assert str(e.value) == f"{path}: policy is {path.stat().st_size} bytes; the limit is {it.MAX_POLICY_BYTES}"
