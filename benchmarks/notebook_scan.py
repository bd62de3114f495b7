"""`mlsec notebook-scan` vs NB Defense (`nbdefense scan`), whole processes alternated, on the notebook corpus.

The corpus is tests/notebook_corpus.py, COPIES notebooks (one seed each, so every copy plants other values):
credentials and personal data in cell sources, stream and error outputs, HTML and JSON MIME bundles and widget
state, with decoys beside them. NB Defense 1.0.5 crashes on the corpus as built (an HTML table output without a
`text/plain` twin: KeyError 'text/plain'), so both tools scan a copy where every MIME bundle has an empty
`text/plain` (the values and decoys are unchanged); one NB Defense run on the corpus as built is reported too.

Recall is counted on what both tools claim to find, the planted secrets and personal data (9 a notebook): a
value is found when a finding of its class (secret, PII) is at its place: for mlsec the rule, the `.ipynb` line
and the logical location, as tests/integration/test_notebook_scan.py checks; for NB Defense, which reports a
cell, an output, a line of that cell's text and a column, the same cell and output and, where the cell's text
is known (sources, streams, plain text), the line with the column inside the value. A finding that matches no
planted value is a false positive. mlsec's own rules (risky magics, pickle loads, paths) are counted apart.
NB Defense's PII plugin needs the spaCy model en_core_web_trf, which cannot be installed here: its report then
carries an error for that plugin, and the table says so (its PII recall is that of a plugin that did not run).

NB Defense is optional: without its venv (scripts/install-nbdefense) only mlsec runs, and that is said.
Run: .venv/bin/python benchmarks/notebook_scan.py [--copies N] [--runs N] [--nbdefense VENV]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent

from benchmarks import _harness as h  # noqa: E402 - needs the repo on sys.path first
from tests import notebook_corpus  # noqa: E402

_LOGICAL = re.compile(r"^cell\[(\d+)\](?:/outputs\[(\d+)\](?:/(.+))?)?$")
_MIME_CELL = {"text/html": "DATAFRAME", "text/plain": "PLAINTEXT"}
"""The MIME types NB Defense reads from a bundle, and the type of cell it reports them as (others it skips)."""


@dataclass(frozen=True)
class Planted:
    """One planted secret or personal-data value, where each tool reports it."""

    notebook: str
    """File name, relative to the corpus root."""
    kind: str
    """`secret` or `pii`."""
    rule: str
    """mlsec's rule id."""
    line: int
    """1-based line of the `.ipynb` file (mlsec's region)."""
    logical: str
    """mlsec's logical location."""
    cell: int | None
    """Cell index (None: notebook metadata)."""
    output: int | None
    """Output index (None: the cell's source)."""
    mime: str | None
    """The MIME type of the bundle it is in (None: a source or a stream)."""
    text_line: int | None
    """0-based line of the value in the cell's (or output's) text, None when that text is not known."""
    span: tuple[int, int] | None
    """Columns of the value on that line."""


@dataclass(frozen=True)
class Finding:
    """One NB Defense issue, reduced to where it is."""

    notebook: str
    kind: str
    cell: int
    output: int | None
    cell_type: str
    line: int | None
    column: int | None


@dataclass(frozen=True)
class Score:
    """Planted values found, missed, and findings that matched none."""

    found: int
    missed: tuple[str, ...]
    false_positives: int


def normalise(doc: dict[str, Any]) -> dict[str, Any]:
    """The notebook with an empty `text/plain` in every MIME bundle that has none (what NB Defense needs)."""
    for cell in doc.get("cells", []):
        for out in cell.get("outputs", []):
            if isinstance(out.get("data"), dict):
                out["data"].setdefault("text/plain", [""])
    return doc


def _text(doc: dict[str, Any], cell: int, output: int | None) -> str | None:
    """The text NB Defense scans for that place: the source, a stream's text, or a bundle's plain text."""
    c = doc["cells"][cell]
    if output is None:
        return "".join(c.get("source", []))
    out = c["outputs"][output]
    if out.get("output_type") == "stream":
        return "".join(out.get("text", []))
    return None


Place = tuple[str, str, int | None, str | None]
"""mlsec's (rule, file name, line, logical location)."""


def build(root: Path, copies: int) -> tuple[list[Planted], list[Place]]:
    """Write COPIES normalised notebooks (and the as-built ones under root/as-built); the planted values and
    mlsec's other expected findings (risky magics, pickle loads, paths)."""
    planted: list[Planted] = []
    other: list[Place] = []
    (root / "as-built").mkdir(parents=True)
    for i in range(copies):
        folder = root / "as-built" / f"nb{i:03d}"
        folder.mkdir()
        path, expected = notebook_corpus.build(folder, seed=5 + i)
        name = f"nb{i:03d}.ipynb"
        doc = normalise(json.loads(path.read_text(encoding="utf-8")))
        target = root / "corpus" / name
        target.parent.mkdir(exist_ok=True)
        target.write_text(json.dumps(doc, indent=1), encoding="utf-8")
        for e in expected:
            if not e.rule.startswith(("secret/", "pii/")):
                other.append((e.rule, name, notebook_corpus.line_of(target, e.value), e.logical))
                continue
            m = _LOGICAL.match(e.logical)
            cell, output, mime = ((int(m.group(1)), int(m.group(2)) if m.group(2) else None, m.group(3)) if m
                                  else (None, None, None))
            text = _text(doc, cell, output) if cell is not None else None
            text_line = span = None
            if text is not None and e.value in text:
                at = text.index(e.value)
                text_line = text.count("\n", 0, at)
                col = at - (text.rfind("\n", 0, at) + 1)
                span = (col, col + len(e.value))
            planted.append(Planted(name, e.rule.split("/")[0], e.rule, notebook_corpus.line_of(target, e.value),
                                   e.logical, cell, output, mime, text_line, span))
    return planted, other


def read_nbdefense(report: dict[str, Any]) -> tuple[list[Finding], list[str]]:
    """NB Defense's JSON report: its issues and the errors it reports (e.g. a plugin that could not run).
    Raises ValueError on a report of another shape."""
    findings: list[Finding] = []
    for nb in report["notebook_issues"]:
        name = Path(str(nb["path"])).name
        for issue in nb["issues"]:
            code = issue["code"]
            kind = {"SECRETS": "secret", "PII": "pii"}.get(code)
            if kind is None:
                raise ValueError(f"unknown issue code {code!r}")
            cell = issue["cell"]
            index = _int(cell["cell_index"])
            if index is None:
                raise ValueError("an issue without a cell index")
            findings.append(Finding(name, kind, index, _int(cell.get("output_index")), str(cell["cell_type"]),
                                    _int(issue.get("line_index")), _int(issue.get("character_start_index"))))
    errors = [f"{e.get('plugin_name', '?')}: {e.get('message', '?')}" for e in report.get("errors", [])]
    return findings, errors


def _int(x: object) -> int | None:
    if x is None:
        return None
    if not isinstance(x, int) or isinstance(x, bool):
        raise ValueError(f"not an integer: {x!r}")
    return x


def _hits(p: Planted, f: Finding) -> bool:
    if (f.notebook, f.kind, f.cell, f.output) != (p.notebook, p.kind, p.cell, p.output):
        return False
    if p.mime is not None:  # a bundle: NB Defense names only the kind of cell it made of it (a table, plain text)
        return _MIME_CELL.get(p.mime) == f.cell_type
    if p.text_line is None or p.span is None or f.line is None:
        return False
    return f.line == p.text_line and (f.column is None or p.span[0] <= f.column < p.span[1])


def score_nbdefense(planted: list[Planted], findings: Iterable[Finding], kinds: frozenset[str]) -> Score:
    """Each planted value of these kinds is found by at most one finding, each finding finds at most one value."""
    left = [f for f in findings if f.kind in kinds]
    found, missed = 0, []
    for p in (p for p in planted if p.kind in kinds):
        hit = next((f for f in left if _hits(p, f)), None)
        if hit is None:
            missed.append(f"{p.notebook} {p.rule} {p.logical}")
        else:
            left.remove(hit)
            found += 1
    return Score(found, tuple(missed), len(left))


def read_mlsec(sarif: dict[str, Any]) -> list[Place]:
    """(rule, file name, line, logical location) of every result."""
    got: list[Place] = []
    for run in sarif["runs"]:
        for r in run.get("results", []):
            loc = r["locations"][0]
            phys = loc["physicalLocation"]
            logical = (loc.get("logicalLocations") or [{}])[0].get("fullyQualifiedName")
            got.append((str(r["ruleId"]), Path(phys["artifactLocation"]["uri"]).name,
                        phys.get("region", {}).get("startLine"), logical))
    return got


def score_mlsec(planted: list[Planted], results: list[Place], kinds: frozenset[str]) -> Score:
    left = [r for r in results if r[0].split("/")[0] in kinds]
    found, missed = 0, []
    for p in (p for p in planted if p.kind in kinds):
        want = (p.rule, p.notebook, p.line, p.logical)
        if want in left:
            left.remove(want)
            found += 1
        else:
            missed.append(f"{p.notebook} {p.rule} {p.logical}")
    return Score(found, tuple(missed), len(left))


def _row(name: str, s: Score | None, total: int, timing: str) -> str:
    if s is None:
        return f"{name:24} {'-':>9} {'-':>4}  {timing}"
    return f"{name:24} {s.found:>4}/{total:<4} {s.false_positives:>4}  {timing}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--copies", type=int, default=10, help="notebooks in the corpus (one seed each)")
    ap.add_argument("--runs", type=int, default=3, help="counted runs of each tool (alternated)")
    ap.add_argument("--nbdefense", type=Path, default=REPO.parent / "nbdefense-venv",
                    help="NB Defense's venv (scripts/install-nbdefense); default: nbdefense-venv beside the checkout")
    args = ap.parse_args(argv)
    h.start()
    print(h.machine())
    with tempfile.TemporaryDirectory(prefix="mlsec-bench-nb-") as tmp:
        work = Path(tmp)
        planted, other = build(work, args.copies)
        corpus, sarif, report = work / "corpus", work / "nb.sarif", work / "nbdefense.json"
        results: list[list[Place]] = []
        reports: list[tuple[list[Finding], list[str]]] = []

        def check_mlsec(done: Any) -> str | None:
            try:
                results.append(read_mlsec(json.loads(sarif.read_text(encoding="utf-8"))))
            except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
                return f"unreadable SARIF: {e}"
            return None

        def check_nbd(done: Any) -> str | None:
            try:
                reports.append(read_nbdefense(json.loads(report.read_text(encoding="utf-8"))))
            except (OSError, ValueError, KeyError, TypeError) as e:
                return f"unreadable report: {e}"
            return None

        ours = h.Contender("mlsec notebook-scan", [str(BIN / "mlsec"), "notebook-scan", str(corpus), "--sarif",
                                                   str(sarif), "--source-root", str(corpus)],
                           check=check_mlsec, setup=lambda: sarif.unlink(missing_ok=True))
        exe = args.nbdefense / "bin" / "nbdefense"
        nbd_argv = [str(exe), "scan", "-y", "-q", "-o", "json", "-f", str(report), str(corpus)]
        quiet = {"PYTHONWARNINGS": "ignore"}
        if exe.is_file():
            peer = h.Contender("nbdefense scan", nbd_argv, check=check_nbd, env=quiet,
                               setup=lambda: report.unlink(missing_ok=True))
            pair = h.compare(ours, peer, runs=args.runs, warmup=1)
            timing = pair.describe()
            crash = h.run_once(h.Contender("nbdefense (as built)", [*nbd_argv[:-1], "-r", str(work / "as-built")],
                                           env=quiet, setup=lambda: report.unlink(missing_ok=True)))
        else:
            stats = h.measure(ours, runs=args.runs, warmup=1)
            timing, pair, crash = stats.describe(), None, None
        print(f"corpus: {args.copies} notebooks, {len(planted)} planted secrets and personal data, {len(other)} "
              f"other findings mlsec expects; load average {os.getloadavg()[0]:.1f}")
        total_s = sum(p.kind == "secret" for p in planted)
        total_p = len(planted) - total_s
        print(f"{'tool':24} {'found':>9} {'FP':>4}  (secrets: {total_s}, personal data: {total_p})")
        for kinds, label, total in ((frozenset({"secret"}), "secrets", total_s),
                                    (frozenset({"pii"}), "personal data", total_p),
                                    (frozenset({"secret", "pii"}), "both", len(planted))):
            print(_row(f"mlsec, {label}", score_mlsec(planted, results[-1], kinds) if results else None, total, ""))
            if pair is not None:
                print(_row(f"nbdefense, {label}", score_nbdefense(planted, reports[-1][0], kinds) if reports else None,
                           total, ""))
        if results:
            mine = [r for r in results[-1] if not r[0].startswith(("secret/", "pii/"))]
            hit = sum(o in mine for o in other)
            extra = sorted({r[0] for r in mine if r not in other})
            print(f"mlsec's own rules (magics, pickle, paths): {hit}/{len(other)} found; "
                  f"{sum(r not in other for r in mine)} findings the corpus does not label ({', '.join(extra)})")
        if pair is None:
            print(f"nbdefense: not run ({exe} is missing: scripts/install-nbdefense)")
        else:
            if reports and reports[-1][1]:
                print("nbdefense reported errors: " + "; ".join(sorted(set(reports[-1][1])))[:400])
            assert crash is not None
            print(f"nbdefense on the corpus as built (-r): {crash.error or 'exit 0'}")
        print(timing)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
