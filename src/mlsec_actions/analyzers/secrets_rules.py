"""The credential formats the in-house secret scanner knows, as data: one `SecretRule` per format.

Formats are what the issuers publish or what every scanner agrees on: a fixed prefix and a length
(`hf_` + 34 letters, `r8_` + 37, `dapi` + 32 hex, `lsv2_pt_` + 32 hex + `_` + 10 hex), a CRC32 checksum in
the last six characters (GitHub's `ghp_`, npm's `npm_`: base62 of the CRC32 of the 30 random
characters), or, for keys without a prefix (Weights & Biases' 40 hex, Cohere's 40 characters), the
vendor's name on the same line. Each pattern has one group `v`, the secret value; `min_entropy` is the
Shannon entropy (bits per character) below which the value is a placeholder, not a key.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlsec_actions.analyzers.base import DOCS
from mlsec_actions.findings import Rule, Severity

CODE_SCAN_DOCS = DOCS + "code-scan.md"
_KEYED = r"""[\w\-]{0,30}?(?:(?i:key|token|secret|password)[\w\-]{0,10}|(?:\.\w+)+|(?=\())"""
"""After a vendor's name, the word naming a key (`WANDB_API_KEY`), a call (`wandb.login`) or an open parenthesis."""
_ASSIGN = r"""\\?["']?\]?\s*(?:=|:|=>|,|\(|\s)\s*(?:\w*(?i:key|token)\s*=\s*|value\s*:\s*)?\\?["'`]?"""
"""Between that and the value: `="`, `: `, `(key='`, `"] = "`, JSON-escaped quotes (`\\"`) in notebooks, and
Kubernetes env entries (`name: X_API_KEY` then `value: ...`, on one line or the next)."""


@dataclass(frozen=True)
class SecretRule:
    """One credential format."""

    name: str
    """Rule name after `secret/` (the docs anchor is `secret<name>`)."""
    title: str
    """What the credential is, for the alert title."""
    pattern: str
    """Regex (Python syntax, no flags of its own) with one named group `v`: the secret value."""
    severity: Severity = Severity.HIGH
    """How bad a leak is."""
    min_entropy: float = 3.0
    """Bits per character of the value (less its fixed prefix) below which it is a placeholder."""
    checksum: str = ""
    """`crc32-base62`: the last 6 characters are base62(CRC32(the random part)); a mismatch is not a key."""
    prefix: str = ""
    """Fixed characters at the start of the value, left out of the entropy measure."""
    files: tuple[str, ...] = ()
    """File names this rule applies to (`.npmrc`); empty: every text file."""
    keywords: tuple[str, ...] = ()
    """Lower-case strings one of which a file must hold for the regex to run (speed); empty: the prefix."""

    @property
    def triggers(self) -> tuple[str, ...]:
        """What gates the regex: `keywords`, else the lower-cased prefix."""
        return self.keywords or (self.prefix.lower(),)


def _ctx(words: str, value: str) -> str:
    """A vendor name (case-insensitive) then, on the same line, the value."""
    return rf"(?i:{words}){_KEYED}{_ASSIGN}(?P<v>{value})(?![A-Za-z0-9])"


RULES: tuple[SecretRule, ...] = (
    SecretRule(
        "private-key",
        "private key",
        r"(?P<v>-----BEGIN[ A-Z0-9]{0,20}PRIVATE KEY(?: BLOCK)?-----"
        r"(?:\\n|[\s])+[A-Za-z0-9+/=\s\\:,-]{64,}?-----END[ A-Z0-9]{0,20}PRIVATE KEY(?: BLOCK)?-----)",
        Severity.CRITICAL,
        min_entropy=4.0,
        keywords=("private key",),
    ),
    SecretRule(
        "anthropic-api-key",
        "Anthropic API key",
        r"\b(?P<v>sk-ant-(?:api|admin|oat)\d\d-[A-Za-z0-9_-]{80,110})(?![A-Za-z0-9_-])",
        Severity.CRITICAL,
        prefix="sk-ant-api03-",
        keywords=("sk-ant-",),
    ),
    SecretRule(
        "openai-api-key",
        "OpenAI API key",
        r"\b(?P<v>sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,200}|[A-Za-z0-9]{20})T3BlbkFJ"
        r"[A-Za-z0-9_-]{20,200})(?![A-Za-z0-9_-])",
        Severity.CRITICAL,
        prefix="sk-proj-",
        keywords=("t3blbkfj",),
    ),
    SecretRule(
        "openai-project-key",
        "OpenAI project key",
        r"\b(?P<v>sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,250})(?![A-Za-z0-9_-])",
        Severity.CRITICAL,
        min_entropy=3.5,
        prefix="sk-proj-",
        keywords=("sk-proj-", "sk-svcacct-", "sk-admin-"),
    ),
    SecretRule(
        "huggingface-token",
        "Hugging Face access token",
        r"\b(?P<v>(?:hf_|api_org_)[A-Za-z]{34})(?![A-Za-z0-9])",
        prefix="hf_",
        keywords=("hf_", "api_org_"),
    ),
    SecretRule(
        "replicate-api-token", "Replicate API token", r"\b(?P<v>r8_[A-Za-z0-9]{37})(?![A-Za-z0-9])", prefix="r8_"
    ),
    SecretRule(
        "databricks-token",
        "Databricks personal access token",
        r"\b(?P<v>dapi[a-f0-9]{32}(?:-\d)?)(?![A-Za-z0-9])",
        prefix="dapi",
    ),
    SecretRule(
        "langsmith-api-key",
        "LangSmith API key",
        r"\b(?P<v>lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10})(?![A-Za-z0-9])",
        prefix="lsv2_pt_",
    ),
    SecretRule(
        "pinecone-api-key",
        "Pinecone API key",
        r"\b(?P<v>pcsk_[A-Za-z0-9]{4,10}_[A-Za-z0-9]{40,90})(?![A-Za-z0-9])",
        prefix="pcsk_",
    ),
    SecretRule("kaggle-api-token", "Kaggle API token", r"\b(?P<v>KGAT_[a-f0-9]{32})(?![A-Za-z0-9])", prefix="KGAT_"),
    SecretRule(
        "github-token",
        "GitHub token",
        r"\b(?P<v>gh[pousr]_[A-Za-z0-9]{36})(?![A-Za-z0-9])",
        Severity.CRITICAL,
        checksum="crc32-base62",
        prefix="ghp_",
        keywords=("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
    ),
    SecretRule(
        "github-fine-grained-token",
        "GitHub fine-grained token",
        r"\b(?P<v>github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})(?![A-Za-z0-9])",
        Severity.CRITICAL,
        prefix="github_pat_",
    ),
    SecretRule(
        "gitlab-token",
        "GitLab personal access token",
        r"\b(?P<v>glpat-[A-Za-z0-9_-]{20})(?![A-Za-z0-9_-])",
        prefix="glpat-",
    ),
    SecretRule(
        "npm-token",
        "npm access token",
        r"\b(?P<v>npm_[A-Za-z0-9]{36})(?![A-Za-z0-9])",
        checksum="crc32-base62",
        prefix="npm_",
    ),
    SecretRule(
        "pypi-token", "PyPI upload token", r"\b(?P<v>pypi-AgE[A-Za-z0-9_-]{60,300})(?![A-Za-z0-9_-])", prefix="pypi-AgE"
    ),
    SecretRule(
        "aws-access-key-id",
        "AWS access key id",
        r"\b(?P<v>(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})(?![A-Za-z0-9])",
        min_entropy=2.5,
        prefix="AKIA",
        keywords=("akia", "asia", "abia", "acca"),
    ),
    SecretRule(
        "aws-secret-access-key",
        "AWS secret access key",
        r"(?i:aws[\w\-]{0,20}secret[\w\-]{0,20}|secret[_-]?access[_-]?key)[\"']?\]?\s*(?:=|:|=>)\s*[\"']?"
        r"(?P<v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
        Severity.CRITICAL,
        min_entropy=4.0,
        keywords=("secret",),
    ),
    SecretRule(
        "azure-storage-key",
        "Azure storage account key",
        r"AccountKey=(?P<v>[A-Za-z0-9+/]{86}==)",
        Severity.CRITICAL,
        min_entropy=4.0,
        keywords=("accountkey=",),
    ),
    SecretRule("google-api-key", "Google API key", r"\b(?P<v>AIza[0-9A-Za-z_-]{35})(?![A-Za-z0-9_-])", prefix="AIza"),
    SecretRule(
        "slack-webhook",
        "Slack incoming webhook",
        r"(?P<v>https://hooks\.slack\.com/(?:services|workflows|triggers)/T[A-Z0-9]{8,12}/[AB][A-Z0-9]{8,12}"
        r"/[A-Za-z0-9]{24,32})",
        Severity.MEDIUM,
        prefix="https://hooks.slack.com/services/",
        keywords=("hooks.slack.com",),
    ),
    SecretRule(
        "slack-token",
        "Slack token",
        r"\b(?P<v>xox[abposr]-[0-9]{6,15}-[0-9A-Za-z-]{10,100})",
        prefix="xoxb-",
        keywords=("xox",),
    ),
    SecretRule(
        "telegram-bot-token",
        "Telegram bot token",
        r"(?<![A-Za-z0-9:])(?P<v>[0-9]{8,10}:AA[A-Za-z0-9_-]{33})(?![A-Za-z0-9_-])",
        min_entropy=3.5,
        keywords=(":aa",),
    ),
    SecretRule(
        "wandb-api-key",
        "Weights & Biases API key",
        _ctx(r"wandb|weights.and.biases", r"[a-f0-9]{40}"),
        keywords=("wandb", "weights"),
    ),
    SecretRule(
        "wandb-netrc",
        "Weights & Biases key in .netrc",
        r"machine\s+api\.wandb\.ai\s+login\s+\S+\s+password\s+(?P<v>[a-f0-9]{40})(?![a-f0-9])",
        keywords=("api.wandb.ai",),
    ),
    SecretRule(
        "cohere-api-key",
        "Cohere API key",
        _ctx(r"cohere|\bco_api_key", r"[A-Za-z0-9]{40}"),
        min_entropy=3.5,
        keywords=("cohere", "co_api_key"),
    ),
    SecretRule(
        "comet-api-key", "Comet API key", _ctx(r"comet", r"[A-Za-z0-9]{20,40}"), min_entropy=3.5, keywords=("comet",)
    ),
    SecretRule(
        "pinecone-legacy-key",
        "Pinecone API key (UUID)",
        _ctx(r"pinecone", r"[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}"),
        keywords=("pinecone",),
    ),
    SecretRule("kaggle-key", "Kaggle API key", _ctx(r"kaggle", r"[a-f0-9]{32}"), keywords=("kaggle",)),
    SecretRule(
        "kaggle-json-key",
        "Kaggle API key in kaggle.json",
        r"\"key\"\s*:\s*\"(?P<v>[a-f0-9]{32})\"",
        files=("kaggle.json",),
        keywords=('"key"',),
    ),
    SecretRule(
        "npmrc-auth",
        "registry credential in .npmrc",
        r"(?:_authToken|_auth|_password)\s*=\s*(?P<v>[^\s\"'$]{16,})(?=\s|$)",
        files=(".npmrc",),
        min_entropy=3.0,
        keywords=("_auth", "_password"),
    ),
    SecretRule(
        "token-in-url",
        "access token in a URL",
        r"https?://[^\s\"'<>]{1,200}?[?&](?:token|access_token|api_key|apikey|private_token)="
        r"(?P<v>[A-Za-z0-9._~%-]{16,200})",
        min_entropy=3.3,
        keywords=("token=", "api_key=", "apikey="),
    ),
    SecretRule(
        "connection-uri-password",
        "password in a connection URI",
        r"\b[a-z][a-z0-9+.-]{1,20}://[^\s:/@\"'<>]{1,64}:(?P<v>[^\s@/\"'<>]{3,128})@"
        r"[A-Za-z0-9_.\[\]-]+",
        min_entropy=0.0,
        keywords=("://",),
    ),
)
"""Earlier rules win where two could match at one place (Anthropic before the `sk-` OpenAI forms)."""


def rule_of(spec: SecretRule) -> Rule:
    """The SARIF rule of a format; its help link is its section of docs/code-scan.md."""
    rid = f"secret/{spec.name}"
    return Rule(
        id=rid,
        name="Secret" + "".join(w.title() for w in spec.name.split("-")),
        short_description=f"Secret: {spec.title} committed",
        full_description=f"A {spec.title} is committed in the source. Anyone with read access to the "
        "repository, its forks or its history can use it.",
        help_text="Revoke and rotate the credential now, remove it from the code and its history, and "
        "load it at run time from a secret store (GitHub secrets, Vault, a cloud KMS).",
        help_uri=f"{CODE_SCAN_DOCS}#{rid.replace('/', '')}",
        tags=("secret", spec.name),
    )


SARIF_RULES: tuple[Rule, ...] = tuple(rule_of(r) for r in RULES)
"""One SARIF rule per format, in `RULES` order."""
