"""Personal data by value: e-mail addresses, phone numbers, payment cards (Luhn), IBANs (ISO 7064
mod 97), national ids with their check rules (US SSN ranges, Spanish DNI letter), public IP
addresses, street addresses and person names (both parts in a bundled list, `person_names`). Shared
by notebook-scan (cell text and outputs) and data-scan (dataset values).

A match is personal data unless it is a documented example: a reserved domain (`example.com`, `.test`),
a card number the issuers publish for testing, the IBANs of the standard's own examples, SSNs that
were never issued, reserved documentation address ranges. A value is never returned: only its kind,
where it was and a redacted form (`redact`).
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import itertools
import operator
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from mlsec_actions.analyzers import person_names
from mlsec_actions.analyzers.base import DOCS
from mlsec_actions.findings import Rule, Severity

DATA_SCAN_DOCS = DOCS + "data-scan.md"
TEST_CARDS = frozenset({
    "4111111111111111", "4242424242424242", "4012888888881881", "4000056655665556", "4222222222222",
    "5555555555554444", "5105105105105100", "2223003122003222", "5200828282828210",
    "378282246310005", "371449635398431", "378734493671000", "6011111111111117", "6011000990139424",
    "3530111333300000", "3566002020360505", "30569309025904", "38520000023237", "6200000000000005",
})
"""Card numbers payment processors publish for testing (Stripe, Adyen, PayPal documentation)."""
EXAMPLE_IBANS = frozenset({"GB82WEST12345698765432", "DE89370400440532013000", "FR1420041010050500013M02606",
                           "NL91ABNA0417164300", "GB29NWBK60161331926819", "CH9300762011623852957"})
"""The IBANs of the standard's and the banks' own documentation."""
_IBAN_LENGTH = {"AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20,
                "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27,
                "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25,
                "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TR": 26, "UA": 29, "BR": 29, "SA": 24, "AE": 23}
_RESERVED_DOMAINS = ("example.com", "example.org", "example.net", "localhost")
_RESERVED_TLDS = ("test", "example", "invalid", "localhost", "local", "png", "jpg", "jpeg", "gif", "svg", "webp")
_RESERVED_SUFFIXES = tuple("." + d for d in _RESERVED_DOMAINS)
_PLACEHOLDER_STREETS = frozenset({
    "123 main street", "123 main st", "1234 main street", "1234 main st", "123 fake street", "123 any street",
    "123 example street", "123 elm street", "742 evergreen terrace", "221b baker street", "4 privet drive",
    "12 musterstraße 1"})
"""Addresses of forms and fiction."""
_NEVER_ISSUED_SSN = frozenset({"078-05-1120", "219-09-9999", "123-45-6789"})
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"

# Each pattern starts with its first character's class and checks the character before it afterwards (a
# look-behind first would make the engine try every position): the same matches, found several times faster.
EMAIL = re.compile(r"[A-Za-z0-9](?<![\w.+-].)[A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}\b")
PHONE = re.compile(r"\+(?<![\w+]\+)[1-9]\d{0,2}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?!\w)|\(\d{3}\) ?\d{3}-\d{4}\b")
CARD = re.compile(r"\d(?<![\d.-]\d)(?:[ -]?\d){12,18}(?![\d.-])")
IBAN = re.compile(r"[A-Z](?<!\w.)[A-Z]\d{2}(?: ?[A-Z0-9]){11,30}\b")
SSN = re.compile(r"\d(?<![\d-]\d)\d{2}-\d{2}-\d{4}(?![\d-])")
DNI = re.compile(r"\d(?<!\w\d)\d{7}-?[A-Z]\b")
IPV4 = re.compile(r"\d(?<![\d.]\d)\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?![\d.])")
_WORD = r"[A-Z][a-z]{1,20}(?:[A-Z][a-z]{1,20})?"  # Smith, McDonald
# a capitalised word right after is a title, not a name ("Kelly Green Paint", "John Smith Street")
NAME = re.compile(rf"[A-Z](?<![\w'-].)[a-z]{{1,20}}(?: [A-Z]\.)? {_WORD}(?:-{_WORD})?(?![\w'-]| [A-Z0-9])"
                  rf"|[A-Z](?<![\w'-].){_WORD[5:]}, [A-Z][a-z]{{1,20}}(?![\w'-])")
_STREET_TYPES = ("Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Terrace|Way|"
                 "Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq")
STREET = re.compile(rf"\d(?<![\w.,/-]\d)\d{{0,4}}[A-Za-z]? (?:(?:[A-Z][a-z]*|\d{{1,3}}(?:st|nd|rd|th)) ){{1,3}}"
                    rf"(?:{_STREET_TYPES})\b(?!-)"
                    r"|[A-Z](?<![\w-].)[a-zäöüß]{2,30}(?:straße|strasse|weg|gasse|allee|platz) \d{1,4}[a-z]?\b")


@dataclass(frozen=True)
class Kind:
    """One kind of personal data."""

    name: str
    """Rule name after `pii/` (the docs anchor is `pii<name>`)."""
    title: str
    """What it is, for messages."""
    severity: Severity
    """How bad a leak of one is."""

    @property
    def rule(self) -> Rule:
        """Its SARIF rule; the help link is its section of docs/data-scan.md."""
        rid = f"pii/{self.name}"
        return Rule(id=rid, name="Pii" + "".join(w.title() for w in self.name.split("-")),
                    short_description=f"Personal data: {self.title}",
                    full_description=f"A {self.title} of a real person appears in the repository (notebook text or "
                    "output, or a dataset). Anyone with read access to the repository or its history sees it, and "
                    "data-protection law (GDPR and the like) applies to holding it.",
                    help_text="Remove or pseudonymise it (and clear notebook outputs before committing); keep "
                    "personal data out of the repository unless there is a legal basis to hold it there.",
                    help_uri=f"{DATA_SCAN_DOCS}#{rid.replace('/', '')}", tags=("pii", "privacy", self.name))


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("email", "e-mail address", Severity.LOW),
    Kind("phone", "phone number", Severity.LOW),
    Kind("payment-card", "payment card number", Severity.HIGH),
    Kind("iban", "IBAN bank account number", Severity.MEDIUM),
    Kind("national-id", "national identity number", Severity.HIGH),
    Kind("ip-address", "public IP address", Severity.LOW),
    Kind("street-address", "street address", Severity.MEDIUM),
    Kind("person-name", "person's name", Severity.LOW),
)}
"""Every kind, by name."""
RULES: tuple[Rule, ...] = tuple(k.rule for k in KINDS.values())
"""One SARIF rule per kind."""
NOTEBOOK_KINDS = frozenset(KINDS) - {"ip-address", "street-address", "person-name"}
"""What notebook-scan looks for (IP addresses in notebooks are mostly servers, not people; names and street
addresses are data-scan's, by column)."""


class Match(NamedTuple):
    """One piece of personal data in a text (a named tuple: datasets make millions of them)."""

    kind: str
    """Its kind (a `KINDS` key)."""
    start: int
    """Offset in the text."""
    end: int
    """Offset just past it."""


def luhn_ok(digits: str) -> bool:
    """The Luhn check (ISO/IEC 7812) every payment card number passes."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_prefix_ok(digits: str) -> bool:
    two, three, four = int(digits[:2]), int(digits[:3]), int(digits[:4])
    n = len(digits)
    return ((digits[0] == "4" and n in (13, 16, 19)) or ((51 <= two <= 55 or 2221 <= four <= 2720) and n == 16)
            or (two in (34, 37) and n == 15) or ((four == 6011 or two == 65 or 644 <= three <= 649) and n in (16, 19))
            or (3528 <= four <= 3589 and n in (16, 19)))


def card_ok(text: str) -> bool:
    """A real-looking card number: issuer prefix and length, Luhn, not a published test number."""
    digits = re.sub(r"[ -]", "", text)
    return (13 <= len(digits) <= 19 and len(set(digits)) > 2 and _card_prefix_ok(digits) and luhn_ok(digits)
            and digits not in TEST_CARDS)


def iban_ok(text: str) -> bool:
    """ISO 13616: the country's length and the mod-97 check; the standard's own examples are not personal."""
    value = text.replace(" ", "")
    if _IBAN_LENGTH.get(value[:2]) != len(value) or value in EXAMPLE_IBANS:
        return False
    moved = value[4:] + value[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def ssn_ok(text: str) -> bool:
    """A US SSN that can have been issued: area not 000, 666 or 9xx, group not 00, serial not 0000."""
    area, group, serial = text.split("-")
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000" \
        and text not in _NEVER_ISSUED_SSN


def dni_ok(text: str) -> bool:
    """A Spanish DNI: eight digits and the check letter (the number mod 23)."""
    number, letter = text[:8], text[-1]
    return len(set(number)) > 1 and _DNI_LETTERS[int(number) % 23] == letter


def email_ok(text: str) -> bool:
    """Not a reserved domain (RFC 2606 / 6761) nor an image name (`logo@2x.png`)."""
    return _domain_ok(text[text.rindex("@") + 1:])


@functools.lru_cache(maxsize=4096)  # a dataset's addresses share few domains
def _domain_ok(domain: str) -> bool:
    domain = domain.lower()
    return not (domain in _RESERVED_DOMAINS or domain.endswith(_RESERVED_SUFFIXES)
                or domain.rsplit(".", 1)[-1] in _RESERVED_TLDS)


def phone_ok(text: str) -> bool:
    """8 to 15 digits (E.164), not one digit repeated, not the 555-01xx numbers reserved for fiction."""
    digits = re.sub(r"\D", "", text)
    return 8 <= len(digits) <= 15 and len(set(digits)) > 2 and not re.search(r"555-?01\d\d$", text)


def name_ok(text: str) -> bool:
    """A given name and a surname of the bundled lists ("Given Surname", "Given X. Surname", "Surname, Given")."""
    if ", " in text:
        surname, given = text.split(", ", 1)
    else:
        parts = text.split(" ")
        given, surname = parts[0], parts[-1]
    return given.lower() in person_names.GIVEN and any(
        part.lower() in person_names.SURNAMES for part in surname.split("-"))


def street_ok(text: str) -> bool:
    """Not an address of forms and fiction (123 Main Street, 742 Evergreen Terrace)."""
    return " ".join(text.lower().split()) not in _PLACEHOLDER_STREETS


def ip_ok(text: str) -> bool:
    """A public address (private, loopback, reserved and documentation ranges are nobody's)."""
    try:
        return ipaddress.IPv4Address(text).is_global
    except ValueError:
        return False


_CHECKS: tuple[tuple[str, re.Pattern[str], str, Callable[[str], bool]], ...] = (
    ("email", EMAIL, "@", email_ok), ("payment-card", CARD, "", card_ok), ("iban", IBAN, "", iban_ok),
    ("national-id", SSN, "-", ssn_ok), ("national-id", DNI, "", dni_ok), ("phone", PHONE, "", phone_ok),
    ("ip-address", IPV4, ".", ip_ok), ("street-address", STREET, "", street_ok), ("person-name", NAME, " ", name_ok))


def _checks(text: str, kinds: frozenset[str] | None) -> list[tuple[str, re.Pattern[str], str, Callable[[str], bool]]]:
    return [c for c in _CHECKS if (kinds is None or c[0] in kinds) and (not c[2] or c[2] in text)]


def tally(text: str, kinds: frozenset[str] | None = None) -> dict[str, tuple[int, Match]]:
    """Per kind `find` finds in `text`: how many matches and the first (all data-scan keeps). With one
    pattern to check, its matches go through their check without a `Match` each."""
    checks = _checks(text, kinds)
    if len(checks) == 1:
        kind, pattern, _, ok = checks[0]
        found = list(pattern.finditer(text))
        kept = list(itertools.compress(found, map(ok, map(_GROUP, found))))
        return {kind: (len(kept), Match(kind, *kept[0].span()))} if kept else {}
    matches = find(text, kinds)
    first = dict(zip(map(_KIND, reversed(matches)), reversed(matches), strict=True))
    return {kind: (count, first[kind]) for kind, count in Counter(map(_KIND, matches)).items()}


def find(text: str, kinds: frozenset[str] | None = None) -> list[Match]:
    """Every piece of personal data in `text` (the first check wins where two overlap), in text order."""
    checks = _checks(text, kinds)
    if len(checks) == 1:  # one pattern's matches never overlap: no spans to compare
        kind, pattern, _, ok = checks[0]
        return [Match(kind, *m.span()) for m in pattern.finditer(text) if ok(m.group())]
    taken: list[tuple[int, int]] = []  # sorted, non-overlapping spans already claimed
    out: list[Match] = []
    for kind, pattern, _, ok in checks:
        for m in pattern.finditer(text):
            start, end = m.span()
            at = bisect.bisect_left(taken, (start, end))
            if (at and taken[at - 1][1] > start) or (at < len(taken) and taken[at][0] < end) or not ok(m.group()):
                continue
            taken.insert(at, (start, end))
            out.append(Match(kind, start, end))
    return sorted(out, key=lambda m: m.start)


_GROUP = operator.methodcaller("group")
_KIND = operator.attrgetter("kind")


def redact(value: str) -> str:
    """A shape of the value that identifies no one: its first character, its length and its last one."""
    return f"{value[:1]}…({len(value)} characters)…{value[-1:]}" if len(value) > 6 else f"…({len(value)} characters)"
