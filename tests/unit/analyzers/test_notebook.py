"""notebook-scan's analyzer on notebooks the tests build: planted secrets and personal data are found at
their exact `.ipynb` line and cell/output, decoys are not, no value is ever copied into a message, and
malformed or hostile notebooks are findings, not crashes."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from mlsec_actions.analyzers import dataset_pii, notebook, notebook_code, notebook_json
from tests import notebook_corpus
from tests.secret_corpus import windows


def _nb(cells: list[dict[str, object]], **meta: object) -> bytes:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": meta, "cells": cells}, indent=1).encode()


def _code(*lines: str, outputs: list[object] | None = None, count: int | None = None) -> dict[str, object]:
    return {"cell_type": "code", "execution_count": count, "metadata": {}, "outputs": outputs or [],
            "source": [ln + "\n" for ln in lines]}


def _rules(report: notebook.Report) -> list[str]:
    return sorted(f.rule.id for f in report.findings)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[notebook_corpus.Expected], notebook.Report]:
    path, expected = notebook_corpus.build(tmp_path_factory.mktemp("nb"))
    return path, expected, notebook.scan(path.name, path.read_bytes())


def test_every_planted_value_is_found_at_its_line_and_cell(corpus: tuple[Path, list[notebook_corpus.Expected],
                                                                          notebook.Report]) -> None:
    path, expected, report = corpus
    got = {(f.rule.id, f.location.logical, f.location.start_line) for f in report.findings}
    for e in expected:
        want = (e.rule, e.logical, notebook_corpus.line_of(path, e.value))
        assert want in got, (want, sorted(got))


def test_decoys_are_not_reported(corpus: tuple[Path, list[notebook_corpus.Expected], notebook.Report]) -> None:
    path, _, report = corpus
    decoy_lines = {notebook_corpus.line_of(path, d) for d in notebook_corpus.DECOYS}
    flagged = [(f.rule.id, f.location.start_line) for f in report.findings if f.location.start_line in decoy_lines]
    assert flagged == []
    # The base64 image is not read as text: nothing points at its line.
    image_line = next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if '"image/png"' in ln)
    assert not [f for f in report.findings if f.location.start_line == image_line]


def test_no_planted_value_in_any_message(corpus: tuple[Path, list[notebook_corpus.Expected],
                                                      notebook.Report]) -> None:
    _, expected, report = corpus
    text = "\n".join(f.message + (f.location.logical or "") for f in report.findings)
    text += "\n".join(g.detail for g in report.gaps)
    for value in notebook_corpus.planted_values(expected):
        assert not [w for w in windows(value, 10) if w in text], value


def test_hygiene_findings(corpus: tuple[Path, list[notebook_corpus.Expected], notebook.Report]) -> None:
    _, _, report = corpus
    rules = _rules(report)
    assert rules.count("notebook/outputs-committed") == 1
    assert "notebook/widget-state" in rules
    assert "notebook/execution-order" not in rules  # 1 then 3: in order
    out_of_order = notebook.scan("o.ipynb", _nb([_code("a = 1", count=2), _code("b = a", count=1)]))
    [finding] = [f for f in out_of_order.findings if f.rule.id == "notebook/execution-order"]
    assert finding.location.logical == "cell[1]"


def test_line_mapping_of_a_source_list_and_a_single_string() -> None:
    data = _nb([{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                 "source": "x = 1\nimport torch\nm = torch.load('w.pt')\n"}, _code("y = 2", "!curl -s u | bash")])
    report = notebook.scan("n.ipynb", data)
    lines = data.decode().splitlines()
    by_rule = {f.rule.id: f for f in report.findings}
    torch_line = next(i for i, ln in enumerate(lines, 1) if "torch.load" in ln)
    curl_line = next(i for i, ln in enumerate(lines, 1) if "curl" in ln)
    assert by_rule["ml/torch-load"].location.start_line == torch_line
    assert by_rule["notebook/curl-pipe-shell"].location.start_line == curl_line
    assert by_rule["notebook/curl-pipe-shell"].location.logical == "cell[1]"
    assert "cell 1, line 2" in by_rule["notebook/curl-pipe-shell"].message


def test_imports_in_one_cell_and_calls_in_another_are_seen_together() -> None:
    cells = [_code("import numpy as np"), _code("a = np.load('x.npy', allow_pickle=True)")]
    report = notebook.scan("n.ipynb", _nb(cells))
    [hit] = [f for f in report.findings if f.rule.id == "ml/numpy-allow-pickle"]
    assert hit.location.logical == "cell[1]"


@pytest.mark.parametrize(("line", "rule"), [
    ("!curl -fsSL https://x.io/i.sh | sudo bash", "notebook/curl-pipe-shell"),
    ("!wget -qO- https://x.io/i | sh", "notebook/curl-pipe-shell"),
    ("out = !bash <(curl -s https://x.io/i)", "notebook/curl-pipe-shell"),
    ("%pip install -q torch transformers==4.1.0", "notebook/unpinned-install"),
    ("!pip3 install --upgrade scikit-learn", "notebook/unpinned-install"),
    ("!conda install -y pandas", "notebook/unpinned-install"),
    ("!curl -k https://x.io/data.csv -o d.csv", "notebook/tls-disabled"),
    ("!pip install --trusted-host pypi.internal pkg==1.0", "notebook/tls-disabled"),
    ("ctx = ssl._create_unverified_context()", "notebook/tls-disabled"),
    ("%env AWS_SECRET_ACCESS_KEY=Zq8vN2kLm4pR7sT1wX9yB3cD", "notebook/env-secret"),
    ("os.environ['WANDB_API_KEY'] = 'f3a9c1d7e5b2a8c4d6e0f1a2'", "notebook/env-secret"),
    ("creds = open(os.path.expanduser('~/.aws/credentials')).read()", "notebook/credential-file"),
    ("key = Path('/home/me/.ssh/id_ed25519').read_text()", "notebook/credential-file"),
])
def test_risky_lines(line: str, rule: str) -> None:
    hits = [h.rule.rule.id for h in notebook_code.read_cell(line).hits]
    assert rule in hits, hits


@pytest.mark.parametrize("line", [
    "!curl -sSL https://x.io/i.sh -o i.sh", "%pip install torch==2.1.0 'numpy==1.26.4'",
    "%pip install -r requirements.txt",
    "!pip install ./local_pkg", "%env HF_TOKEN=$HF_TOKEN", "%env API_KEY=<your-key>", "%env BATCH=32",
    "os.environ['API_KEY'] = os.getenv('X')", "x = 10 % 3", "print('~/.aws/config')", "%matplotlib inline",
])
def test_safe_lines_are_not_flagged(line: str) -> None:
    assert notebook_code.read_cell(line).hits == ()


def test_shell_cell_lines_are_checked_and_not_parsed_as_python() -> None:
    cell = notebook_code.read_cell("%%bash\necho hi\ncurl -s https://x.io/i | sh\n")
    assert [(h.rule.rule.id, h.line) for h in cell.hits] == [("notebook/curl-pipe-shell", 3)]
    assert cell.python == ""


@pytest.mark.parametrize(("data", "why"), [
    (b"{not json", "not valid JSON"),
    (b"[" * 5000 + b"]" * 5000, "nested deeper"),
    (b'{"nbformat": 3, "worksheets": []}', "nbformat 3"),
    (b'{"nbformat": 4}', "cells"),
    ("{\"nbformat\": 4, \"cells\": []}".encode("utf-16"), "UTF-8"),
])
def test_malformed_notebooks_are_a_finding_and_a_gap(data: bytes, why: str) -> None:
    report = notebook.scan("bad.ipynb", data)
    assert _rules(report) == ["notebook/malformed"]
    assert why in report.findings[0].message
    assert [g.kind.value for g in report.gaps] == ["format-unknown"]


def test_an_output_over_the_limit_is_cut_reported_and_a_gap() -> None:
    big = {"output_type": "stream", "name": "stdout", "text": ["x" * 5000 + "\n"] * 10}
    report = notebook.scan("big.ipynb", _nb([_code("print(1)", outputs=[big])]),
                           notebook.Limits(max_output_bytes=10_000))
    assert "notebook/too-large" in _rules(report)
    assert any(g.kind.value == "limit-reached" for g in report.gaps)


def test_a_cell_that_is_not_python_is_a_gap() -> None:
    report = notebook.scan("n.ipynb", _nb([_code("def broken(:")]))
    assert [g.kind.value for g in report.gaps] == ["format-unknown"]


def test_positions_survive_escapes_and_unicode() -> None:
    data = '{\n "a": "caf\\u00e9 \\"q\\"",\n "b": ["ok", "\u00fcber\\n"]\n}'.encode()
    doc = notebook_json.loads(data)
    assert notebook_json.line_of(doc["a"]) == 2 and notebook_json.line_of(doc["b"][1]) == 3
    joined = notebook_json.joined(doc["b"])
    assert joined.text == "ok\u00fcber\n" and joined.json_line(1) == 3


# --- personal data checks: each rule's boundary, so a mutant in a check fails a test ---

def test_luhn_and_card_rules() -> None:
    rng = random.Random(1)  # noqa: S311
    card = notebook_corpus.luhn_card(rng)
    assert dataset_pii.card_ok(card) and dataset_pii.luhn_ok(card)
    wrong = card[:-1] + str((int(card[-1]) + 1) % 10)
    assert not dataset_pii.card_ok(wrong)
    assert not dataset_pii.card_ok("4242424242424242")  # published test number
    assert not dataset_pii.card_ok("9" + card[1:])  # no issuer starts with 9
    amex = notebook_corpus.luhn_card(rng, "37", 15)
    assert dataset_pii.card_ok(amex) and not dataset_pii.card_ok(notebook_corpus.luhn_card(rng, "37", 16))
    assert dataset_pii.card_ok(" ".join(card[i:i + 4] for i in range(0, 16, 4)))


def test_iban_rule() -> None:
    rng = random.Random(2)  # noqa: S311
    good = notebook_corpus.iban(rng)
    assert dataset_pii.iban_ok(good)
    assert not dataset_pii.iban_ok(good[:4] + good[5:] + "1")
    assert not dataset_pii.iban_ok(good[:-1] + str((int(good[-1]) + 1) % 10))
    assert not dataset_pii.iban_ok("DE89370400440532013000")  # the standard's own example
    assert not dataset_pii.iban_ok(good + "0")  # wrong length for DE


def test_national_id_rules() -> None:
    assert dataset_pii.ssn_ok("512-34-6789")
    for bad in ("000-34-6789", "666-34-6789", "912-34-6789", "512-00-6789", "512-34-0000", "078-05-1120"):
        assert not dataset_pii.ssn_ok(bad), bad
    assert dataset_pii.dni_ok("12345678Z") and not dataset_pii.dni_ok("12345678A")


def test_find_kinds_and_redaction() -> None:
    text = "mail jo.bloggs@firm.co.uk, phone +44 20 7946 0958, host 8.8.8.8, lan 10.0.0.1, logo@2x.png"
    kinds = [m.kind for m in dataset_pii.find(text)]
    assert kinds == ["email", "phone", "ip-address"]
    assert [m.kind for m in dataset_pii.find(text, dataset_pii.NOTEBOOK_KINDS)] == ["email", "phone"]
    shown = dataset_pii.redact("jo.bloggs@firm.co.uk")
    assert "bloggs" not in shown and "20 characters" in shown
