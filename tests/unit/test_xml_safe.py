"""The bounded, entity-safe XML reader behind infra-scan's report parsing."""

from __future__ import annotations

import pytest

from mlsec_actions import xml_safe
from mlsec_actions.xml_safe import Limits, XmlRefused

LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          + b"".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'.encode()
                     for i in range(1, 10)) + b"]><lolz>&lol9;</lolz>")


@pytest.mark.parametrize("doc", [
    LAUGHS,
    b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>',
    b'<!DOCTYPE a SYSTEM "http://127.0.0.1:9/a.dtd"><a/>',
    b'<!DOCTYPE a PUBLIC "-//x//y" "a.dtd"><a/>',
    b'<!DOCTYPE a [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p">%p;]><a/>',
    b'<!DOCTYPE a [<!ENTITY u SYSTEM "x" NDATA n>]><a/>',
    b'<!DOCTYPE a [<!ATTLIST a admin CDATA "yes">]><a/>',  # no entity, but a default attribute injected
    b"<!DOCTYPE a []><a/>",
    b"<a>&undefined;</a>",
    b"<a><b></a>",
    b"",
])
def test_dtd_features_and_malformed_documents_are_refused(doc: bytes) -> None:
    with pytest.raises(XmlRefused):
        xml_safe.parse(doc)


def test_a_bare_doctype_and_character_references_are_read() -> None:
    (root,) = xml_safe.parse(b'<?xml version="1.0"?>\n<!DOCTYPE nmaprun>\n<nmaprun a="-&#45;x &amp; y">t&lt;</nmaprun>')
    assert (root.tag, root.get("a"), root.text) == ("nmaprun", "--x & y", "t<")


def test_only_the_kept_subtrees_are_built_in_order() -> None:
    doc = b'<r><skip><big>xxxx</big></skip><k n="1"><c>one</c>tail</k><d><k n="2"><k n="inner"/></k></d></r>'
    roots = xml_safe.parse(doc, keep={"k"})
    assert [r.get("n") for r in roots] == ["1", "2"]
    assert roots[0][0].text == "one" and roots[0][0].tail == "tail"
    assert [c.get("n") for c in roots[1]] == ["inner"]
    namespaced = xml_safe.parse(b'<r xmlns="urn:x"><k/></r>', keep={"k"})
    assert [xml_safe.local(r.tag) for r in namespaced] == ["k"] and namespaced[0].tag == "urn:x}k"


@pytest.mark.parametrize(("limits", "doc"), [
    (Limits(max_bytes=10), b"<a>0123456789</a>"),
    (Limits(max_depth=3), b"<a><b><c><d/></c></b></a>"),
    (Limits(max_elements=3), b"<a><b/><b/><b/></a>"),
    (Limits(max_text=5), b"<a>123456</a>"),
    (Limits(max_text=5), b'<a x="123456"/>'),
])
def test_limits_are_enforced(limits: Limits, doc: bytes) -> None:
    with pytest.raises(XmlRefused):
        xml_safe.parse(doc, limits=limits)


@pytest.mark.parametrize(("limits", "doc"), [
    (Limits(max_bytes=17), b"<a>0123456789</a>"),
    (Limits(max_depth=4), b"<a><b><c><d/></c></b></a>"),
    (Limits(max_elements=4), b"<a><b/><b/><b/></a>"),
    (Limits(max_text=6), b"<a>123456</a>"),
])
def test_documents_at_the_limit_are_read(limits: Limits, doc: bytes) -> None:
    assert len(xml_safe.parse(doc, limits=limits)) == 1


def test_text_outside_kept_subtrees_does_not_count() -> None:
    assert xml_safe.parse(b"<a>" + b"x" * 100 + b"<k>1</k></a>", keep={"k"}, limits=Limits(max_text=5))[0].text == "1"


@pytest.mark.parametrize(("limits", "doc", "message"), [
    (Limits(max_bytes=10), b"<a>0123456789</a>", "17 bytes; the limit is 10"),
    (Limits(max_depth=3), b"<a><b><c><d/></c></b></a>", "nested deeper than 3 elements"),
    (Limits(max_elements=3), b"<a><b/><b/><b/></a>", "more than 3 elements"),
    (Limits(max_text=5), b"<a>123456</a>", "more than 5 characters of text"),
    (Limits(), b"<a><b></a>", "not well-formed XML: mismatched tag at line 1"),
    (Limits(), b"<a>\n\n&undefined;</a>", "not well-formed XML: undefined entity at line 3"),
])
def test_a_refusal_says_what_was_refused(limits: Limits, doc: bytes, message: str) -> None:
    with pytest.raises(XmlRefused) as e:
        xml_safe.parse(doc, limits=limits)
    assert str(e.value) == message


def test_a_doctype_refusal_names_the_doctype_shortened() -> None:
    name = "d" * 50
    with pytest.raises(XmlRefused) as e:
        xml_safe.parse(f'<!DOCTYPE {name} SYSTEM "x.dtd"><{name}/>'.encode())
    assert str(e.value) == f"DOCTYPE {name[:40]!r} with a DTD (internal subset or external id) is not read"


def test_text_is_counted_across_pieces_of_one_element() -> None:
    # Each piece (text, then the tail after <b/>) is under the bound; together they are over it.
    with pytest.raises(XmlRefused, match="more than 5 characters"):
        xml_safe.parse(b"<a>123<b/>456</a>", limits=Limits(max_text=5))
    with pytest.raises(XmlRefused, match="more than 5 characters"):
        xml_safe.parse(b'<a x="12"><b y="34"/>56</a>', limits=Limits(max_text=5))
