"""redact: secret values leave third-party text whole, never a 12-character piece of them."""

from __future__ import annotations

import pytest

from mlsec_actions import redact

# Built at run time, so this repository's own secret scan does not report its test data.
GH = "ghp_" + "Zq3Xw9Lm2Np8Rt4Vy6Bc1Df5Gh7Jk0MnPqRs"
AWS_ID = "AKIA" + "QWERTYUIOPASDFGH"
AWS_SECRET = "".join(("wJalrXUtnFEMI/K7MDENG/", "bPxRfiCYPLANTEDKEY"))
PEM = "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEplantedKeyBody0123456789\n-----END RSA " + "PRIVATE KEY-----"
CASES = [
    (f"ENV GITHUB_TOKEN={GH}", GH),
    ("ENV DB_PASSWORD hunter2SuperSecretValue9", "hunter2SuperSecretValue9"),
    ('  password = "Tf-Planted-' 'Pass-9f8e7d6c"', "Tf-Planted-Pass-9f8e7d6c"),
    ('          value: "K8sPlantedSecretValue77aa"', "K8sPlantedSecretValue77aa"),
    ('{"client_secret": "with spaces inside it 42"}', "with spaces inside it 42"),
    ("dsn = postgres://admin:Pg-Planted-" "Pass-31337@db:5432/x", "Pg-Planted-Pass-31337"),
    ("ARG NPM_TOKEN=npm_plantedTokenValue1234567890", "npm_plantedTokenValue1234567890"),
    ("aws_secret_access_key: " + AWS_SECRET, AWS_SECRET),
    ("run --api-key sk-plantedOpenAIKey0123456789abcdef", "sk-plantedOpenAIKey0123456789abcdef"),
    (PEM, "MIIEplantedKeyBody0123456789"),
]


@pytest.mark.parametrize(("text", "value"), CASES, ids=[c[1][:12] for c in CASES])
def test_snippet_values_are_masked_whole(text: str, value: str) -> None:
    out = redact.snippet(text)
    assert redact.MASK in out
    for i in range(len(value) - 11):
        assert value[i:i + 12] not in out, (value[i:i + 12], out)


@pytest.mark.parametrize("text", ['Possible exposure of secret env "DB_PASSWORD" in ENV', 'author = "Jane Doe"',
                                  "token: ${{ secrets.DEPLOY_TOKEN }}", "image: nginx:1.25",
                                  "Instance does not have storage encryption enabled."])
def test_text_without_a_value_is_kept(text: str) -> None:
    assert redact.text(text) == text


def test_known_token_formats_are_masked_in_messages_too() -> None:
    assert GH not in redact.text(f"leaked {GH} here") and AWS_ID not in redact.text(f"key {AWS_ID}")


# Each known format at its shortest (masked) and one character shorter (kept: a word, not a credential).
KNOWN = [
    ("gho_" + "A" * 20, "gho_" + "A" * 19), ("ghu_" + "b1" * 10, "ghu_b"), ("ghs_" + "C" * 36, "ghs_"),
    ("ghr_" + "d" * 25, "ghx_" + "d" * 25), ("ghp_" + "e" * 20, "ghp_" + "e" * 19),
    ("github_pat_" + "11ABC_" + "x" * 14, "github_pat_" + "x" * 19),
    ("glpat-" + "abcDEF123_-xyz78", "glpat-" + "a" * 15),
    ("AKIA" + "Q" * 16, "AKIA" + "Q" * 15), ("ASIA" + "Q" * 16, "ASIA" + "Q" * 17), ("ABIA" + "1" * 16, "ABIA1"),
    ("ACCA" + "Z" * 16, "ACCA" + "z" * 16), ("A3TX" + "Y" * 16, "A3Tx" + "Y" * 16),
    ("xoxb-" + "1234567890", "xoxp-" + "1" * 9), ("xoxs-" + "a" * 10, "xoxc-" + "a" * 10),
    ("sk-" + "a" * 20, "sk-" + "a" * 19), ("sk-proj-" + "b" * 20, "sk-proj-" + "b" * 11),
    ("sk-live-" + "c" * 20, "sk-live-" + "c" * 11), ("sk-test-" + "d" * 20, "sk-test-" + "d" * 11),
    ("sk_live_" + "e" * 16, "sk_live_" + "e" * 15), ("rk_test_" + "f" * 16, "rk_prod_" + "f" * 16),
    ("pk_live_" + "g" * 16, "pk_live_" + "g" * 15),
    ("AIza" + "h" * 35, "AIza" + "h" * 34),
    ("eyJ" + "a" * 8 + "." + "b" * 8 + "." + "c" * 8, "eyJ" + "a" * 7 + "." + "b" * 8 + "." + "c" * 8),
]


@pytest.mark.parametrize(("masked", "kept"), KNOWN, ids=[k[0][:6] for k in KNOWN])
def test_each_known_format_is_masked_from_its_shortest_length(masked: str, kept: str) -> None:
    assert redact.text(f"a {masked} b") == "a *** b"
    assert redact.text(f"a {kept} b") == f"a {kept} b"


@pytest.mark.parametrize(("text", "expected"), [
    ("https://user:pa55@host/x", "https://***@host/x"),
    ("ftp://u:p@h", "ftp://***@h"),
    ("https://host/a:b@c", "https://host/a:b@c"),  # a path, not credentials
    ("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----tail", "***tail"),
    ("-----BEGIN EC PRIVATE KEY-----\nunterminated", "***"),
    ("-----BEGIN PGP PRIVATE KEY BLOCK-----\nx\n-----END PGP PRIVATE KEY BLOCK----- t", "*** t"),
    ("password = hunter2", "password = ***"),
    ("dbPassword: 's3cr3t'", "dbPassword: '***'"),
    ('API_KEY => "v a l"', 'API_KEY => "***"'),
    ('{"client_secret": "x y"}', '{"client_secret": "***"}'),
    ("pwd=x;", "pwd=***;"), ("passwd = y", "passwd = ***"), ("auth_token = z", "auth_token = ***"),
    ("bearer: q", "bearer: ***"), ("signing-key = k", "signing-key = ***"), ("signingkey = k", "signingkey = ***"),
    ("conn_str = c", "conn_str = ***"), ("connection_string = d", "connection_string = ***"),
    ("connstring = d", "connstring = ***"), ("credentials = e", "credentials = ***"),
    ("access_key=f", "access_key=***"), ("accesskey=f", "accesskey=***"), ("private_key: g", "private_key: ***"),
    ("privatekey: g", "privatekey: ***"), ("apikey = h", "apikey = ***"), ("api-key = i", "api-key = ***"),
    ("secrets = j", "secrets = ***"), ("token.value = k", "token.value = ***"),
    ("my.password = 2", "my.password = ***"),
    ("TOKEN:\tv", "TOKEN:\t***"), ("Secret=v", "Secret=***"),
    ('password = "a\\"b" rest', 'password = "***" rest'), ("password = 'x' rest", "password = '***' rest"),
    ("password = v, next", "password = ***, next"),
    ("author = jane", "author = jane"), ("x_password = 1", "x_password = ***"), ("apassword = 1", "apassword = ***"),
    ("(password = 1)", "(password = ***)"), ("_password = 1", "_password = ***"),
    ("password = ", "password = "), ('password = ""', 'password = ""'), ("password = ''", "password = ''"),
    ("password = ${X}", "password = ${X}"), ("password = $(cat f)", "password = $(cat f)"),
    ("password = {{ x }}", "password = {{ x }}"), ("", ""),
])
def test_text_exact(text: str, expected: str) -> None:
    assert redact.text(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("ENV TOKEN value1", "ENV TOKEN ***"), ("ARG SECRET v2", "ARG SECRET ***"), ("--password v3", "--password ***"),
    ("ENV TOKEN ***", "ENV TOKEN ***"), ("ENV TOKEN\t'q'", "ENV TOKEN\t'***'"), ("RUN TOKEN v", "RUN TOKEN v"),
    ("ENV TOKEN ${REF}", "ENV TOKEN ${REF}"),
    ("  value: abc def  ", "  value: ***"), ("- value: x", "- value: ***"), ("VALUE: y", "VALUE: ***"),
    ("a\n  value: s\nb", "a\n  value: ***\nb"), ("values: z", "values: z"), ("value:", "value:"),
    ("id " + "aB3" * 8, "id ***"), ("aB3" * 7 + "a", "aB3" * 7 + "a"), ("ab3" * 9, "ab3" * 9), ("AB3" * 9, "AB3" * 9),
    ("abC" * 9, "abC" * 9), ("x/" + "aB3" * 8 + "=", "***"), ("p-" + "aB3" * 8, "***"), ("", ""),
    ("k." + "aB3" * 8, "k.***"),
])
def test_snippet_exact(text: str, expected: str) -> None:
    assert redact.snippet(text) == expected


def test_a_third_party_finding_is_redacted_in_message_snippet_and_properties() -> None:
    from mlsec_actions.findings import Finding, Location, Rule, Severity

    rule = Rule("ds-0031", "secret in env", "a secret in an ENV line")
    f = Finding(rule, f"leaked {GH}", Severity.HIGH, Location("Dockerfile", 3, snippet="ENV TOKEN value1"),
                properties=(("match", "password = hunter2"), ("line", "3")))
    got = redact.finding(f)
    assert (got.message, got.location.snippet, got.properties) == (
        "leaked ***", "ENV TOKEN ***", (("match", "password = ***"), ("line", "3")))
    assert (got.rule, got.severity, got.location.path, got.location.start_line) == (rule, Severity.HIGH,
                                                                                    "Dockerfile", 3)
    bare = Finding(rule, "m", Severity.LOW, Location("a"))
    assert redact.finding(bare) == bare


def test_only_a_real_quote_is_kept_around_the_mask() -> None:
    assert redact.text("password = Xyz") == "password = ***"
    assert redact.text("password = 'Xyz'") == "password = '***'"
    assert redact.text('password = "Xyz"') == 'password = "***"'
