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
