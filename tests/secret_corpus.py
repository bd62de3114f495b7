"""A secret corpus built at run time: one planted credential per format, in the files ML teams leak them
in, plus decoys (placeholders, references, documented examples) that must not be reported.

Values are generated from a seeded random source and assembled from split prefixes, so this file holds no
credential and the repository's own secret scan does not flag it. `build(root)` writes the tree and
returns what was planted (file, line, expected rule name, value) and the decoy values.
"""

from __future__ import annotations

import random
import string
import zlib
from dataclasses import dataclass
from pathlib import Path

ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
URLSAFE = ALNUM + "_-"
_B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


@dataclass(frozen=True)
class Planted:
    """One credential written into the tree."""

    rule: str
    """The in-house rule expected to report it (after `secret/`)."""
    path: str
    """File, relative to the tree."""
    line: int
    """1-based line of the value."""
    value: str
    """The secret value (never to appear in any output)."""


def _crc_token(rng: random.Random, prefix: str) -> str:
    body = "".join(rng.choice(ALNUM) for _ in range(30))
    number, out = zlib.crc32(body.encode()), ""
    while number:
        number, digit = divmod(number, 62)
        out = _B62[digit] + out
    return prefix + body + out.rjust(6, "0")


def _r(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def values(seed: int) -> dict[str, str]:
    """One fresh value per format (rule name -> value)."""
    rng = random.Random(seed)  # noqa: S311 - test data, reproducible on purpose
    pem_body = "\n".join(_r(rng, ALNUM + "+/", 64) for _ in range(6))
    return {
        "huggingface-token": "hf" "_" + _r(rng, string.ascii_letters, 34),
        "openai-api-key": "sk-" "proj-" + _r(rng, URLSAFE, 74) + "T3Blbk" "FJ" + _r(rng, URLSAFE, 74),
        "anthropic-api-key": "sk-" "ant-" "api03-" + _r(rng, URLSAFE, 93) + "AA",
        "wandb-api-key": _r(rng, HEX, 40),
        "replicate-api-token": "r8" "_" + _r(rng, ALNUM, 37),
        "kaggle-json-key": _r(rng, HEX, 32),
        "databricks-token": "dap" "i" + _r(rng, HEX, 32),
        "cohere-api-key": _r(rng, ALNUM, 40),
        "comet-api-key": _r(rng, ALNUM, 25),
        "pinecone-api-key": "pcsk" "_" + _r(rng, ALNUM, 6) + "_" + _r(rng, ALNUM, 64),
        "langsmith-api-key": "lsv2" "_pt_" + _r(rng, HEX, 32) + "_" + _r(rng, HEX, 10),
        "telegram-bot-token": str(rng.randint(10**8, 10**9)) + ":A" "A" + _r(rng, URLSAFE, 33),
        "slack-webhook": "https://hooks.slack" ".com/services/T" + _r(rng, string.ascii_uppercase + string.digits, 9)
                         + "/B" + _r(rng, string.ascii_uppercase + string.digits, 9) + "/" + _r(rng, ALNUM, 24),
        "google-api-key": "AI" "za" + _r(rng, URLSAFE, 35),
        "npm-token": _crc_token(rng, "np" "m_"),
        "npmrc-auth": _r(rng, HEX, 8) + "-" + _r(rng, HEX, 4) + "-" + _r(rng, HEX, 4) + "-" + _r(rng, HEX, 12),
        "connection-uri-password": _r(rng, ALNUM, 14),
        "private-key": "-----BEGIN RSA PRIVATE" " KEY-----\n" + pem_body + "\n-----END RSA PRIVATE" " KEY-----",
        "aws-access-key-id": "AK" "IA" + _r(rng, string.ascii_uppercase + "234567", 16),
        "aws-secret-access-key": _r(rng, ALNUM + "/+", 40),
        "github-token": _crc_token(rng, "gh" "p_"),
        "token-in-url": _r(rng, ALNUM, 32),
        "databricks-uri": "dap" "i" + _r(rng, HEX, 32),
        "kaggle-api-token": "KG" "AT_" + _r(rng, HEX, 32),
    }


def _files(v: dict[str, str]) -> dict[str, tuple[list[str], dict[str, int]]]:
    """File -> (lines, {rule: 1-based line}) for the planted values."""
    return {
        "notebooks/train.ipynb": ([
            '{"cells": [{"cell_type": "code", "source": [',
            f'"from huggingface_hub import login\\n", "login(token=\\"{v["huggingface-token"]}\\")\\n",',
            f'"import wandb\\n", "wandb.login(key=\\"{v["wandb-api-key"]}\\")\\n"',
            "]}]}"], {"huggingface-token": 2, "wandb-api-key": 3}),
        "app/llm.py": ([
            "import anthropic, openai, cohere, replicate",
            f'client = openai.OpenAI(api_key="{v["openai-api-key"]}")',
            f'claude = anthropic.Anthropic(api_key="{v["anthropic-api-key"]}")',
            f'co = cohere.Client("{v["cohere-api-key"]}")',
            f'REPLICATE_API_TOKEN = "{v["replicate-api-token"]}"',
            f'exp = comet_ml.Experiment(api_key="{v["comet-api-key"]}", project_name="churn")',
            f'pc = Pinecone(api_key="{v["pinecone-api-key"]}")',
        ], {"openai-api-key": 2, "anthropic-api-key": 3, "cohere-api-key": 4, "replicate-api-token": 5,
            "comet-api-key": 6, "pinecone-api-key": 7}),
        ".kaggle/kaggle.json": ([f'{{"username": "ana", "key": "{v["kaggle-json-key"]}"}}'], {"kaggle-json-key": 1}),
        "config/.env": ([
            f"DATABRICKS_TOKEN={v['databricks-token']}",
            f"LANGSMITH_API_KEY={v['langsmith-api-key']}",
            f"TELEGRAM_BOT={v['telegram-bot-token']}",
            f"SLACK_WEBHOOK_URL={v['slack-webhook']}",
            f"KAGGLE_API_TOKEN={v['kaggle-api-token']}",
        ], {"databricks-token": 1, "langsmith-api-key": 2, "telegram-bot-token": 3, "slack-webhook": 4,
            "kaggle-api-token": 5}),
        "web/maps.js": ([f'const key = "{v["google-api-key"]}";'], {"google-api-key": 1}),
        ".npmrc": ([f"//registry.npmjs.org/:_authToken={v['npmrc-auth']}", f"# backup {v['npm-token']}"],
                   {"npmrc-auth": 1, "npm-token": 2}),
        "etl/settings.yaml": ([
            f"warehouse: postgres://etl:{v['connection-uri-password']}@db.internal:5432/sales",
            f"tracking_uri: https://adb-1.azuredatabricks.net/api?token={v['token-in-url']}",
            f"mlflow: databricks://{v['databricks-uri']}@adb-1.azuredatabricks.net",
        ], {"connection-uri-password": 1, "token-in-url": 2, "databricks-uri": 3}),
        "deploy/id_rsa": (v["private-key"].split("\n"), {"private-key": 1}),
        "infra/aws.tf": ([
            f'access_key = "{v["aws-access-key-id"]}"',
            f'aws_secret_access_key = "{v["aws-secret-access-key"]}"',
        ], {"aws-access-key-id": 1, "aws-secret-access-key": 2}),
        ".github/scripts/push.sh": ([f"git push https://x:{v['github-token']}@github.com/o/r"],
                                    {"github-token": 1}),
    }


EXPECTED_RULE = {"databricks-uri": "databricks-token"}
"""Corpus entries found by a rule of another name (a Databricks token inside a URI)."""

DECOY_LINES = (
    'HF_TOKEN = os.environ["HF_TOKEN"]',
    "OPENAI_API_KEY = os.getenv('OPENAI_API_KEY')",
    "token: ${{ secrets.HF_TOKEN }}",
    "hf" "_" + "x" * 34,
    "sk-" "ant-" "api03-" + "x" * 93 + "AA",
    "AWS_ACCESS_KEY_ID=" "AKIA" "IOSFODNN7EXAMPLE",
    "api_key = '<your-api-key>'",
    "WANDB_API_KEY=${WANDB_API_KEY}",
    "postgres://user:password@localhost:5432/db",
    "postgres://user:${DB_PASSWORD}@localhost/db",
    'url = f"postgresql://{user}:{password}@{host}/db"',
    "gh" "p_" + "aBcD" * 9,
    "np" "m_" + "Zz09" * 9,
    "cohere_model = 'command-r-plus-08-2024-long-name'",
    "comet_ml.Experiment(project_name='abcdefghijklmnopqrstuvwxy')",
    "sha = '" + "0123456789abcdef" * 2 + "0123456789ab'",
    "git push https://x:gh" "p_...@github.com/o/r",
    "DATABASE_URL=postgres://app:***@db/app",
)
"""Lines that look like credentials but are not (placeholders, references, a checksum that fails)."""


def build(root: Path, seed: int = 11) -> tuple[list[Planted], list[str]]:
    """Write the corpus under `root`; return what was planted and the decoy lines."""
    v = values(seed)
    planted: list[Planted] = []
    for rel, (lines, where) in _files(v).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        planted += [Planted(EXPECTED_RULE.get(rule, rule), rel, line, v[rule]) for rule, line in where.items()]
    (root / "docs").mkdir(exist_ok=True)
    (root / "docs" / "setup.md").write_text("\n".join(DECOY_LINES) + "\n", encoding="utf-8")
    return planted, list(DECOY_LINES)


def windows(value: str, width: int = 12) -> set[str]:
    """Every `width`-character window of `value` (a leak of part of a secret is still a leak)."""
    flat = value.replace("\n", "")
    return {flat[i:i + width] for i in range(max(1, len(flat) - width + 1))}


def _other_files(v: dict[str, str]) -> dict[str, tuple[list[str], dict[str, int]]]:
    """A second layout: the same formats in other file types and spellings (shell exports, TOML, YAML
    lists, Dockerfiles, JSON configs, Markdown), so the rules are not tuned to one way of writing them."""
    return {
        "scripts/env.sh": ([
            "#!/bin/sh",
            f"export HUGGING_FACE_HUB_TOKEN='{v['huggingface-token']}'",
            f"export WANDB_API_KEY={v['wandb-api-key']}",
            f"export ANTHROPIC_API_KEY=\"{v['anthropic-api-key']}\"",
        ], {"huggingface-token": 2, "wandb-api-key": 3, "anthropic-api-key": 4}),
        "pyproject.toml": ([
            "[tool.app]",
            f'openai_key = "{v["openai-api-key"]}"',
            f'replicate = "{v["replicate-api-token"]}"',
        ], {"openai-api-key": 2, "replicate-api-token": 3}),
        "k8s/secret.yaml": ([
            "env:",
            f"  - {{name: COHERE_API_KEY, value: {v['cohere-api-key']}}}",
            f"  - {{name: DB, value: 'mysql://svc:{v['connection-uri-password']}@mysql:3306/app'}}",
            "  - name: COMET_API_KEY",
            f"    value: {v['comet-api-key']}",
        ], {"cohere-api-key": 2, "connection-uri-password": 3, "comet-api-key": 5}),
        "Dockerfile": ([
            "FROM python:3.12-slim",
            f"ENV LANGCHAIN_API_KEY={v['langsmith-api-key']}",
            f"ARG GH_TOKEN={v['github-token']}",
            f"ENV DATABRICKS_HOST=https://adb-1.net DATABRICKS_TOKEN={v['databricks-token']}",
        ], {"langsmith-api-key": 2, "github-token": 3, "databricks-token": 4}),
        "config/settings.json": ([
            "{",
            f'  "google": {{"maps_key": "{v["google-api-key"]}"}},',
            f'  "slack": "{v["slack-webhook"]}",',
            f'  "aws": {{"id": "{v["aws-access-key-id"]}", "secret_access_key": "{v["aws-secret-access-key"]}"}},',
            f'  "pinecone": {{"key": "{v["pinecone-api-key"]}"}}',
            "}",
        ], {"google-api-key": 2, "slack-webhook": 3, "aws-access-key-id": 4, "aws-secret-access-key": 4,
            "pinecone-api-key": 5}),
        "README.md": ([
            "Run the bot:",
            f"    python bot.py --token {v['telegram-bot-token']}",
            f"    curl 'https://dbc-1.cloud.databricks.com/api?access_token={v['token-in-url']}'",
            f"    npm config set //registry.npmjs.org/:_authToken {v['npm-token']}",
        ], {"telegram-bot-token": 2, "token-in-url": 3, "npm-token": 4}),
        "home/.kaggle/kaggle.json": ([f'{{"username":"x","key":"{v["kaggle-json-key"]}"}}'], {"kaggle-json-key": 1}),
        "keys/sa.json": (['{"type": "service' '_account", "private_key": "' + v["private-key"].replace("\n", "\\n")
                          + '"}'], {"private-key": 1}),
    }


def build_other(root: Path, seed: int = 23) -> list[Planted]:
    """Write the second layout under `root`; return what was planted."""
    v = values(seed)
    planted: list[Planted] = []
    for rel, (lines, where) in _other_files(v).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        planted += [Planted(rule, rel, line, v[rule]) for rule, line in where.items()]
    return planted
