"""One Jupyter notebook read as data, never run: secrets and personal data in cell sources, outputs
(stream text, `text/plain`, `text/html`, `application/json`, tracebacks), attachments' names and
metadata (widget state included); risky shell lines, magics and Python in code cells; hygiene.

Every finding carries the `.ipynb` line (`notebook_json`) and a logical location such as
`cell[3]/outputs[1]`. Binary outputs (images, PDFs: base64) are not decoded: an image's `text/plain`
alternative is read instead. No value found is copied into a message.
"""

from __future__ import annotations

import ast
import bisect
import itertools
import re
import warnings
from dataclasses import dataclass, field, replace

from mlsec_actions.analyzers import dataset_pii, ml_sast, notebook_code, notebook_json, secrets
from mlsec_actions.analyzers import notebook_rules as R
from mlsec_actions.analyzers.notebook_json import Lines
from mlsec_actions.findings import CoverageGap, Finding, GapKind, Location, Rule, Severity

_TEXT_MIME = re.compile(r"^(?:text/|application/(?:json|javascript|xml|x-latex|vnd\.[\w.+-]*json))")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_HOME = re.compile(r"(?:/home/|/Users/|[A-Za-z]:\\\\?Users\\\\?)(?P<u>[A-Za-z0-9._-]{2,40})(?=[/\\])")
_SHARED_USERS = frozenset({"runner", "jovyan", "user", "ubuntu", "root", "admin", "vscode", "codespace", "public",
                           "shared", "default", "all users", "ec2-user", "sagemaker-user", "colab", "nbuser"})
_INDEX = re.compile(r"\[(\d+)\]")
_WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


@dataclass(frozen=True)
class Limits:
    """How much of a notebook is read."""

    max_output_bytes: int = 1024 * 1024
    """Characters of one output's text scanned; the rest is a gap and a too-large finding."""


@dataclass
class Report:
    """What scanning one notebook found."""

    findings: list[Finding] = field(default_factory=list)
    """Findings."""
    gaps: list[CoverageGap] = field(default_factory=list)
    """What was not checked."""


def malformed(rel: str, why: str, report: Report) -> None:
    """The file is not a notebook we read: one finding and one gap."""
    report.findings.append(Finding(R.MALFORMED.rule, f"{rel} is not a notebook mlsec reads: {why}; its cells and "
                                   "outputs were not checked", R.MALFORMED.severity, Location(rel)))
    report.gaps.append(CoverageGap(GapKind.FORMAT_UNKNOWN, f"notebook not read ({why})", path=rel))


def scan(rel: str, data: bytes, limits: Limits = Limits()) -> Report:
    """Findings and gaps of one `.ipynb` file's bytes."""
    report = Report()
    try:
        doc = notebook_json.loads(data)
    except notebook_json.NotJson as e:
        malformed(rel, str(e), report)
        return report
    cells = doc.get("cells") if isinstance(doc, dict) else None
    major = doc.get("nbformat") if isinstance(doc, dict) else None
    if major != 4 or not isinstance(cells, list):
        why = f"nbformat {major!r} (only 4 is read)" if isinstance(major, int) else "no nbformat 4 `cells` list"
        malformed(rel, why, report)
        return report
    _Scanner(rel, limits, report).notebook(doc, cells)
    return report


class _Scanner:
    def __init__(self, rel: str, limits: Limits, report: Report) -> None:
        self.rel, self.limits, self.report = rel, limits, report
        self.home_reported = False

    def notebook(self, doc: dict[str, object], cells: list[object]) -> None:
        outputs = 0
        code: list[tuple[int, Lines, str]] = []
        counts: list[tuple[int, int, int]] = []
        for index, cell in enumerate(cells):
            if not isinstance(cell, dict):
                continue
            where = f"cell[{index}]"
            source = notebook_json.joined(cell.get("source"))
            self.text(source, where)
            if cell.get("cell_type") == "code":
                read = notebook_code.read_cell(source.text)
                for hit in read.hits:
                    self.add(hit.rule.rule, hit.rule.severity, f"{hit.message} ({where}, line {hit.line})",
                             source.json_line(hit.line), where)
                code.append((index, source, read.python))
                count = cell.get("execution_count")
                if isinstance(count, int) and not isinstance(count, bool):
                    counts.append((count, index, source.json_line(1)))
                cell_outputs = cell.get("outputs")
                if isinstance(cell_outputs, list):
                    for number, output in enumerate(cell_outputs):
                        if isinstance(output, dict):
                            outputs += 1
                            self.output(output, f"{where}/outputs[{number}]")
            for key in ("metadata", "attachments"):
                if cell.get(key):
                    self.json_value(cell[key], f"{where}/{key}")
        self.python(code)
        self.hygiene(doc, cells, outputs, counts)

    def add(self, rule: Rule, severity: Severity, message: str, line: int, where: str) -> None:
        self.report.findings.append(Finding(rule, f"{_spoken(message)} in {self.rel}", severity,
                                            Location(self.rel, line, line, logical=where, logical_kind="object")))

    def text(self, lines: Lines, where: str, limit: int | None = None) -> None:
        """Secrets, personal data and home paths in one joined text."""
        text = lines.text
        if limit is not None and len(text) > limit:
            self.add(R.TOO_LARGE.rule, R.TOO_LARGE.severity, f"output text of {len(text)} characters cut at {limit} "
                     f"({where}); the rest was not checked", lines.json_line(1), where)
            self.report.gaps.append(CoverageGap(GapKind.LIMIT_REACHED, f"{where}: only the first {limit} characters "
                                                "of the output were scanned", path=self.rel))
            text = text[:limit]
        if not text.strip():
            return
        gaps: list[CoverageGap] = []
        for found in secrets.scan_text(self.rel, text, gaps):
            line = found.location.start_line or 1
            title = found.rule.short_description.removeprefix("Secret: ").removesuffix(" committed")
            self.add(found.rule, found.severity, f"{title} ({where}, line {line}; value withheld)",
                     lines.json_line(line), where)
        self.report.gaps.extend(CoverageGap(g.kind, f"{where}: {g.detail}", g.path) for g in gaps)
        starts = [0, *(m.end() for m in re.finditer("\n", text))]
        for match in dataset_pii.find(text, dataset_pii.NOTEBOOK_KINDS):
            kind = dataset_pii.KINDS[match.kind]
            line = _line(starts, match.start)
            self.add(kind.rule, kind.severity, f"{kind.title} ({where}, line {line}; "
                     f"{dataset_pii.redact(text[match.start:match.end])})", lines.json_line(line), where)
        self.home(text, lines, where)

    def home(self, text: str, lines: Lines, where: str) -> None:
        if self.home_reported:
            return
        for m in _HOME.finditer(text):
            if m.group("u").lower() not in _SHARED_USERS:
                self.home_reported = True
                line = text.count("\n", 0, m.start()) + 1
                self.add(R.HOME_PATH.rule, R.HOME_PATH.severity, f"a home folder path names a user ({where}, line "
                         f"{line})", lines.json_line(line), where)
                return

    def output(self, output: dict[str, object], where: str) -> None:
        limit = self.limits.max_output_bytes
        kind = output.get("output_type")
        if kind == "stream":
            self.text(notebook_json.joined(output.get("text")), where, limit)
        elif kind == "error":
            frames = output.get("traceback")
            parts = [output.get("ename"), output.get("evalue"), *(frames if isinstance(frames, list) else [])]
            joined = notebook_json.joined([_strip_ansi(p) for p in parts if isinstance(p, str)], one_per_line=True)
            self.text(joined, where, limit)
        data = output.get("data")
        if isinstance(data, dict):
            for mime, value in data.items():
                if not _TEXT_MIME.match(str(mime)):
                    continue  # base64 images and other binaries: their text/plain alternative is read instead
                lines = notebook_json.every_string(value) if isinstance(value, dict) else notebook_json.joined(value)
                self.text(lines, f"{where}/{mime}", limit)
        if output.get("metadata"):
            self.json_value(output["metadata"], f"{where}/metadata")

    def json_value(self, value: object, where: str) -> None:
        self.text(notebook_json.every_string(value), where, self.limits.max_output_bytes)

    def python(self, code: list[tuple[int, Lines, str]]) -> None:
        """ML SAST over all code cells as one program (imports in one cell, calls in another)."""
        program: list[str] = []
        origin: list[tuple[int, Lines, int]] = []
        for index, source, python in code:
            if not python.strip():
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ast.parse(python)
            except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
                self.report.gaps.append(CoverageGap(GapKind.FORMAT_UNKNOWN, f"cell[{index}]: not parsed as Python "
                                                    f"({type(e).__name__}); ML rules not checked", path=self.rel))
                continue
            for number, line in enumerate(python.split("\n"), start=1):
                program.append(line)
                origin.append((index, source, number))
        if not program:
            return
        gaps: list[CoverageGap] = []
        for found in ml_sast.scan_source(self.rel, "\n".join(program), gaps):
            at = (found.location.start_line or 1) - 1
            index, source, number = origin[min(at, len(origin) - 1)]
            where = f"cell[{index}]"
            what = found.message.rsplit(" (", 1)[0]
            at_line = source.json_line(number)
            message = f"{what} ({_spoken(where)}, line {number}) in {self.rel}"
            self.report.findings.append(replace(found, message=message,
                                                location=Location(self.rel, at_line, at_line, logical=where,
                                                                  logical_kind="object")))
        self.report.gaps.extend(gaps)

    def hygiene(self, doc: dict[str, object], cells: list[object], outputs: int,
                counts: list[tuple[int, int, int]]) -> None:
        if outputs:
            first = next(i for i, c in enumerate(cells) if isinstance(c, dict) and c.get("outputs"))
            self.add(R.OUTPUTS.rule, R.OUTPUTS.severity, f"{outputs} output(s) committed, first in cell[{first}]",
                     _outputs_line(cells[first]), f"cell[{first}]/outputs")
        ordered = [c for c, _, _ in counts]
        if any(b <= a for a, b in itertools.pairwise(ordered)):
            at = next(i for i in range(1, len(ordered)) if ordered[i] <= ordered[i - 1])
            _, index, line = counts[at]
            self.add(R.EXEC_ORDER.rule, R.EXEC_ORDER.severity, f"cell[{index}] ran before the cell above it "
                     f"(execution count {ordered[at]} after {ordered[at - 1]})", line, f"cell[{index}]")
        metadata = doc.get("metadata")
        if isinstance(metadata, dict):
            widgets = metadata.get("widgets")
            if isinstance(widgets, dict) and _WIDGET_STATE in widgets:
                saved = next(iter(notebook_json.strings(widgets[_WIDGET_STATE], 1)), None)
                self.add(R.WIDGET_STATE.rule, R.WIDGET_STATE.severity, "ipywidgets state is saved in the notebook "
                         "metadata", notebook_json.line_of(saved, 1), "metadata/widgets")
            self.json_value(metadata, "metadata")


def _spoken(text: str) -> str:
    """`cell[3]/outputs[1]` as `cell 3 output 1` (brackets would be escaped in SARIF's Markdown)."""
    return _INDEX.sub(r" \1", text).replace("/outputs ", " output ")


def _strip_ansi(text: str) -> str:
    cleaned = _ANSI.sub("", text)
    return notebook_json.Text(cleaned, notebook_json.line_of(text)) if isinstance(text, notebook_json.Text) \
        else cleaned


def _outputs_line(cell: object) -> int:
    first = next(iter(notebook_json.strings(cell.get("outputs") if isinstance(cell, dict) else None, 1)), None)
    return notebook_json.line_of(first, 1)


def _line(starts: list[int], offset: int) -> int:
    return bisect.bisect_right(starts, offset)

