"""A notebook corpus built at run time: credentials and personal data planted in cell sources, outputs,
tracebacks, MIME bundles and widget state, with decoys beside them (documented test cards and IBANs,
reserved domains, UUIDs, hashes, references, placeholders, a base64 image).

Values come from `secret_corpus.values` (split prefixes, seeded) and from generators here (a Luhn-valid card,
a mod-97-valid IBAN), so this file holds none. The expected `.ipynb` line of each planted value is found by
searching the written text for the value, independently of the scanner's own JSON reader.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass
from pathlib import Path

from tests.secret_corpus import values


@dataclass(frozen=True)
class Expected:
    """One planted value the scan must report."""

    rule: str
    """Rule id."""
    logical: str
    """Logical location (`cell[1]/outputs[0]`)."""
    value: str
    """The planted text (never to appear in any output); its line in the file is the expected line."""


def luhn_card(rng: random.Random, prefix: str = "4", length: int = 16) -> str:
    """A card number with a valid Luhn digit (not a published test number)."""
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
        digits = body + check
        total = sum((d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 else d
                    for i, d in enumerate(int(c) for c in reversed(digits)))
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


def iban(rng: random.Random, country: str = "DE", bban_len: int = 18) -> str:
    """An IBAN with valid mod-97 check digits."""
    bban = "".join(rng.choice("0123456789") for _ in range(bban_len))
    number = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    return f"{country}{98 - number % 97:02d}{bban}"


DECOYS = ("write to user@example.com or ops@corp.test", "test card 4242 4242 4242 4242 and 4111-1111-1111-1111",
          "IBAN example DE89370400440532013000", "run 6f1c2a4e-8b7d-4c3e-9a2f-1d5e7b9c0a3f",
          "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
          "token = os.environ['HF_TOKEN']", "api_key = '<your-api-key>'", "SSN format 123-45-6789",
          "call (555) 555-0123")


def build(root: Path, seed: int = 5) -> tuple[Path, list[Expected]]:
    """Write `root/analysis.ipynb`; return it and what must be found."""
    v = values(seed)
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    card, account, email = luhn_card(rng), iban(rng), f"maria.{rng.randint(100, 999)}@acme-mail.de"
    ssn = f"{rng.randint(100, 599)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"
    image = base64.b64encode(bytes(rng.randrange(256) for _ in range(6000))).decode()
    hf, gh, openai, wandb, anthropic = (v["huggingface-token"], v["github-token"], v["openai-api-key"],
                                        v["wandb-api-key"], v["anthropic-api-key"])
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Churn analysis\n", f"Owner: {email}\n",
                                                             *[d + "\n" for d in DECOYS]]},
        {"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": [
            {"output_type": "stream", "name": "stdout", "text": ["logged in\n", f"using token {gh}\n"]},
            {"output_type": "error", "ename": "KeyError", "evalue": "'x'", "traceback": [
                "\u001b[0;31mKeyError\u001b[0m", "File \u001b[0;32m/home/maria/work/churn.py:3\u001b[0m"]},
            {"output_type": "display_data", "metadata": {}, "data": {
                "image/png": image, "text/plain": ["<Figure size 640x480 with 1 Axes>"]}},
            {"output_type": "execute_result", "execution_count": 1, "metadata": {}, "data": {
                "text/html": ["<table><tr><td>customer</td>\n", f"<td>{account}</td></tr></table>\n"],
                "application/json": {"config": {"wandb_api_key": wandb}}}},
        ], "source": ["import pickle\n", "from huggingface_hub import login\n", f"login(token=\"{hf}\")\n",
                      "!curl -sSL https://get.example.dev/install.sh | sh\n", "%pip install transformers\n",
                      f"%env OPENAI_API_KEY={openai}\n", "model = pickle.load(open('model.pkl', 'rb'))\n"]},
        {"cell_type": "code", "execution_count": 3, "metadata": {}, "outputs": [
            {"output_type": "stream", "name": "stderr", "text": [f"card on file {card}; ssn {ssn}\n"]}],
         "source": ["print(customer)\n"]},
    ]
    doc = {"nbformat": 4, "nbformat_minor": 5, "cells": cells, "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3"},
        "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {"w1": {"model_name": "TextModel",
                                                                                  "state": {"value": anthropic}}}}}}}
    path = root / "analysis.ipynb"
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    expected = [
        Expected("pii/email", "cell[0]", email),
        Expected("secret/huggingface-token", "cell[1]", hf),
        Expected("notebook/curl-pipe-shell", "cell[1]", "install.sh | sh"),
        Expected("notebook/unpinned-install", "cell[1]", "%pip install transformers"),
        Expected("notebook/env-secret", "cell[1]", openai),
        Expected("secret/openai-api-key", "cell[1]", openai),
        Expected("ml/pickle-load", "cell[1]", "pickle.load("),
        Expected("secret/github-token", "cell[1]/outputs[0]", gh),
        Expected("notebook/home-path", "cell[1]/outputs[1]", "/home/maria/"),
        Expected("pii/iban", "cell[1]/outputs[3]/text/html", account),
        Expected("secret/wandb-api-key", "cell[1]/outputs[3]/application/json", wandb),
        Expected("pii/payment-card", "cell[2]/outputs[0]", card),
        Expected("pii/national-id", "cell[2]/outputs[0]", ssn),
        Expected("secret/anthropic-api-key", "metadata", anthropic),
    ]
    return path, expected


def planted_values(expected: list[Expected]) -> list[str]:
    """The values that are secrets or personal data (not the code snippets used to find a line)."""
    return [e.value for e in expected if e.rule.startswith(("secret/", "pii/"))]


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of the written file holding `needle` (JSON-escaped as written)."""
    text = path.read_text(encoding="utf-8")
    escaped = json.dumps(needle)[1:-1]
    index = text.index(escaped)
    return text.count("\n", 0, index) + 1
