"""The exhaustive mutation sweep (mutmut) over the security checks, one group of modules at a time.

Each group runs in its own copy of the repository (`mutants/sweep/<group>/`) with a `[tool.mutmut]` of its
own: only its modules are mutated and only its tests run, so the stats pass and every mutant stay cheap.
A surviving mutant (or one no test reaches) is a missing test, unless `equivalent.toml` explains it: an
entry names the mutant, repeats the mutated line (so an entry goes stale, and is reported, when the code
changes; an entry whose mutant is now killed is reported as unused) and says in one line why no behaviour
can tell the mutant from the original.

    python -m tests.mutation.sweep [GROUP ...] [--max-children N]   run groups (default all), print the table
    python -m tests.mutation.sweep --report                         the table of the last runs, no new run

Exit 1 when any mutant survives unexplained (each is listed with its diff), 0 otherwise.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SWEEP = REPO / "mutants" / "sweep"
EQUIVALENT = Path(__file__).with_name("equivalent.toml")
COPIED = ("src", "tests", "policies", "benchmarks", "docs", "actions", "examples", ".github", "scripts",
          "action.yml", "README.md")
"""What a group's copy of the repository holds (tests read docs, workflows and examples)."""
ALIVE = ("survived", "no tests", "suspicious", "not checked")
"""mutmut statuses of a mutant no test killed (or that was never run)."""


@dataclass(frozen=True)
class Group:
    """Modules mutated together, and the tests that must kill their mutants."""

    name: str
    """Short name (`gate`), the folder under mutants/sweep/."""
    paths: tuple[str, ...]
    """Source files (or folders) to mutate, relative to the repository."""
    tests: tuple[str, ...]
    """Test files or folders run against the mutants."""
    timeout_multiplier: float = 15.0
    """mutmut's: a mutant is a timeout (killed) after (its tests' time + 1) x this x 2 CPU-seconds."""


GROUPS: tuple[Group, ...] = (
    Group("gate-rules", ("src/mlsec_actions/gate/rules.py",),
          ("tests/unit/test_gate_rules.py", "tests/unit/test_gate.py", "tests/unit/test_gate_waivers.py",
           "tests/unit/test_policy.py", "tests/unit/test_gate_coverage.py", "tests/unit/test_gate_inputs.py")),
    Group("gate-input", ("src/mlsec_actions/gate/input.py", "src/mlsec_actions/gate/engine.py"),
          ("tests/unit/test_gate.py", "tests/unit/test_gate_inputs.py", "tests/unit/test_gate_coverage.py",
           "tests/unit/test_sarif_read.py", "tests/unit/test_gate_engine_edges.py",
           "tests/unit/test_gate_provenance.py")),
    Group("signing-statements", ("src/mlsec_actions/signing/statements.py",),
          ("tests/unit/signing/test_statements.py", "tests/unit/signing/test_statement_texts.py",
           "tests/unit/signing/test_domain_separation.py",
           "tests/unit/signing/test_key.py", "tests/unit/test_verify.py")),
    Group("signing-verify", ("src/mlsec_actions/signing/verify.py",),
          ("tests/unit/signing/test_verify_in_process.py", "tests/unit/test_verify.py",
           "tests/unit/signing/test_domain_separation.py",
           "tests/unit/signing/test_model_folder.py", "tests/unit/signing/test_key.py")),
    Group("gate-provenance", ("src/mlsec_actions/gate/provenance.py", "src/mlsec_actions/gate/coverage.py"),
          ("tests/unit/test_gate_provenance_edges.py", "tests/unit/test_gate_provenance.py",
           "tests/unit/test_gate_coverage.py", "tests/unit/test_gate.py")),
    Group("signing-bundle", ("src/mlsec_actions/signing/bundle.py", "src/mlsec_actions/signing/model_folder.py"),
          ("tests/unit/signing", "tests/unit/test_verify.py")),
    Group("digests", ("src/mlsec_actions/digests.py",),
          ("tests/unit/test_digests.py", "tests/unit/test_digests_details.py")),
    Group("archive", ("src/mlsec_actions/analyzers/archive.py",),
          ("tests/unit/analyzers/test_archive.py", "tests/unit/analyzers/test_containers.py")),
    Group("pickle-policy", ("src/mlsec_actions/analyzers/pickle_policy.py",),
          ("tests/unit/analyzers/test_pickle_scan.py", "tests/unit/analyzers/test_pickle_adversarial.py")),
    Group("zip-reader", ("src/mlsec_actions/analyzers/zip_reader.py",),
          ("tests/unit/analyzers/test_zip_reader.py", "tests/unit/analyzers/test_archive.py")),
    Group("sarif", ("src/mlsec_actions/sarif.py",),
          ("tests/unit/test_sarif.py", "tests/unit/test_sarif_read.py", "tests/unit/test_sarif_edges.py")),
    Group("outputs-inputs", ("src/mlsec_actions/outputs.py", "src/mlsec_actions/inputs.py"),
          ("tests/unit/test_outputs.py", "tests/unit/test_inputs.py", "tests/unit/test_yaml_lines.py")),
    Group("sanitize", ("src/mlsec_actions/sanitize.py", "src/mlsec_actions/redact.py"),
          ("tests/unit/test_sanitize.py", "tests/unit/test_redact.py")),
    Group("xml-safe", ("src/mlsec_actions/xml_safe.py",), ("tests/unit/test_xml_safe.py",)),
    Group("web-targets", ("src/mlsec_actions/web_targets.py", "src/mlsec_actions/stages/infra_targets.py"),
          ("tests/unit/test_web_targets.py", "tests/unit/test_infra_targets.py")),
    Group("oci-reference", ("src/mlsec_actions/oci/reference.py",), ("tests/unit/oci/test_reference.py",)),
    Group("oci-client", ("src/mlsec_actions/oci/client.py",),
          ("tests/unit/oci/test_client.py", "tests/unit/oci/test_hostile_registry.py")),
    Group("supply-download", ("src/mlsec_actions/supply/download.py",), ("tests/unit/test_download.py",)),
    Group("signing-trust", ("src/mlsec_actions/signing/trust.py",), ("tests/unit/signing/test_trust.py",)),
    Group("opk", ("src/mlsec_actions/signing/opk",),
          ("tests/unit/signing/test_opk_refusals.py", "tests/unit/signing/test_opk_vectors.py",
           "tests/unit/signing/test_openpubkey.py"),
          # GQ mutants that loop spent (estimate + 1) x 30 CPU-seconds each at mutmut's default and kept 64
          # of them from ever running on a 2-core machine; a correct GQ check never takes 3x its estimate.
          timeout_multiplier=3.0),
)
"""Highest value first: the gate's rules, then what decides which SARIF counts, then signatures."""


@dataclass(frozen=True)
class Mutant:
    """One mutmut mutant and what became of it."""

    name: str
    """mutmut's name (`mlsec_actions.gate.rules.x_normal_path__mutmut_3`)."""
    status: str
    """killed, survived, no tests, timeout, ..."""
    mutated: str = ""
    """For a live mutant: its changed line(s), as they read in the mutant."""
    diff: str = ""
    """For a live mutant: the unified diff of its function."""


def _pyproject(group: Group) -> str:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?ms)^\[tool\.mutmut\].*?(?=^\[|\Z)", "", text)
    return text + "\n[tool.mutmut]\n" + "\n".join((
        f"source_paths = {json.dumps(list(group.paths))}",
        f"also_copy = {json.dumps([c for c in COPIED if c != 'tests'])}",
        'pytest_add_cli_args = ["-p", "no:xdist", "-p", "no:cacheprovider"]',
        f"timeout_multiplier = {group.timeout_multiplier}",
        f"pytest_add_cli_args_test_selection = {json.dumps(list(group.tests))}")) + "\n"


def _prepare(group: Group) -> Path:
    work = SWEEP / group.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".pytest_cache")
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=skip, symlinks=True)
        elif source.is_file():
            shutil.copy2(source, work / name)
    if (REPO / ".cache").is_dir():
        (work / ".cache").symlink_to(REPO / ".cache")  # the SARIF Multitool the session hook validates with
    (work / "pyproject.toml").write_text(_pyproject(group), encoding="utf-8")
    # The folder must exist before Python starts: an absent sys.path entry is cached as absent.
    (work / "mutants" / "src").mkdir(parents=True)
    return work


def _refresh_tests(group: Group) -> None:
    """The group's copy of tests/ (and its test list) replaced by the current ones (new tests kill the live
    mutants)."""
    work = SWEEP / group.name
    (work / "pyproject.toml").write_text(_pyproject(group), encoding="utf-8")
    for copy in (work / "tests", work / "mutants" / "tests"):
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(REPO / "tests", copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _mutmut(work: Path, *args: str, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSEC_", "GITHUB_", "PYTEST_"))}
    env["PYTHONPATH"] = str(work / "mutants" / "src")
    binary = Path(sys.executable).with_name("mutmut")
    return subprocess.run([str(binary), *args], cwd=work, env=env, text=True, check=False,
                          stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT if quiet else None)


def _functions(path: Path) -> dict[str, str]:
    """Every function (methods included) of a mutmut-generated file, by name, as source text."""
    out: dict[str, str] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and "__mutmut_" in node.name:
            name = node.name
            node.name = "f"
            out[name] = ast.unparse(node)
    return out


def _describe(work: Path, name: str, cache: dict[Path, dict[str, str]]) -> tuple[str, str]:
    """(changed lines, diff) of a mutant, from the generated file that holds it."""
    module, _, function = name.rpartition(".")
    # A method's module part ends at the class name: `x<sep>Class<sep>method` carries the class.
    path = work / "mutants" / "src" / Path(*module.split("."))
    path = path.with_suffix(".py")
    if path not in cache:
        cache[path] = _functions(path) if path.is_file() else {}
    functions = cache[path]
    base = function.rsplit("__mutmut_", 1)[0]
    original, mutated = functions.get(base + "__mutmut_orig", ""), functions.get(function, "")
    diff = list(difflib.unified_diff(original.splitlines(), mutated.splitlines(), lineterm="", n=1))
    changed = [line[1:].strip() for line in diff[2:] if line.startswith("+")]
    return " / ".join(changed), "\n".join(diff[2:])


def collect(group: Group) -> list[Mutant]:
    work = SWEEP / group.name
    got = _mutmut(work, "results", "--all", "true", quiet=True)
    out: list[Mutant] = []
    cache: dict[Path, dict[str, str]] = {}
    for line in got.stdout.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if not sep or "__mutmut_" not in name:
            continue
        if status in ALIVE:
            mutated, diff = _describe(work, name, cache)
            out.append(Mutant(name, status, mutated, diff))
        else:
            out.append(Mutant(name, status))
    return out


def load_equivalent(path: Path | None = None) -> dict[str, tuple[str, str]]:
    """mutant name -> (mutated line, why), from `path` (default `EQUIVALENT`)."""
    path = path or EQUIVALENT
    doc = tomllib.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    out: dict[str, tuple[str, str]] = {}
    for entry in doc.get("equivalent", []):
        if entry["mutant"] in out:
            raise ValueError(f"{path}: {entry['mutant']} listed twice")
        out[entry["mutant"]] = (entry["mutated"], entry["why"])
    return out


def _save(group: Group, mutants: list[Mutant]) -> None:
    (SWEEP / f"{group.name}.json").write_text(json.dumps([m.__dict__ for m in mutants], indent=1), encoding="utf-8")


def _load(group: Group) -> list[Mutant] | None:
    path = SWEEP / f"{group.name}.json"
    return [Mutant(**m) for m in json.loads(path.read_text(encoding="utf-8"))] if path.is_file() else None


def report(groups: tuple[Group, ...]) -> int:
    """Print the table and every unexplained survivor; the number of unexplained survivors."""
    equivalent = load_equivalent()
    rows, unexplained, stale, unused = [], [], [], []
    for group in groups:
        mutants = _load(group)
        if mutants is None:
            rows.append((group.name, "not run", "", "", "", ""))
            continue
        alive = [m for m in mutants if m.status in ALIVE]
        explained = [m for m in alive if m.name in equivalent and equivalent[m.name][0] == m.mutated]
        stale += [m for m in alive if m.name in equivalent and equivalent[m.name][0] != m.mutated]
        unused += [m for m in mutants if m.status not in ALIVE and m.name in equivalent]
        killed = sum(m.status in ("killed", "timeout", "caught by type check") for m in mutants)
        lost = [m for m in alive if m not in explained]
        unexplained += lost
        rows.append((group.name, str(len(mutants)), str(killed), str(len(alive)), str(len(explained)),
                     str(len(lost))))
    header = ("module group", "mutants", "killed", "survived", "equivalent", "unexplained")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    for m in stale:
        print(f"\nSTALE equivalent.toml entry {m.name}: the mutant now changes {m.mutated!r}")
    for m in unused:  # mutants renumbered by a code change, or one a test now kills: the entry explains nothing
        print(f"\nUNUSED equivalent.toml entry {m.name}: the mutant is {m.status} ({equivalent[m.name][0]!r})")
    for m in unexplained:
        print(f"\nSURVIVED ({m.status}) {m.name}\n{m.diff}")
    print(f"\nmutation: {len(unexplained)} unexplained surviving mutant(s)")
    return len(unexplained)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sweep", description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help=f"groups to run (default: all): {', '.join(g.name for g in GROUPS)}")
    parser.add_argument("--max-children", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    parser.add_argument("--report", action="store_true", help="print the table of the last runs only")
    parser.add_argument("--collect", action="store_true", help="re-read the results of the last runs")
    parser.add_argument("--again", action="store_true",
                        help="re-run only the live mutants of the last runs, against the current tests")
    args = parser.parse_args(argv)
    unknown = set(args.groups) - {g.name for g in GROUPS}
    if unknown:
        parser.error(f"unknown group(s): {', '.join(sorted(unknown))}")
    chosen = tuple(g for g in GROUPS if not args.groups or g.name in args.groups)
    if not args.report:
        for group in chosen:
            names: list[str] = []
            if args.again:
                names = [m.name for m in _load(group) or () if m.status in ALIVE]
                _refresh_tests(group)
            if args.again and not names:
                continue
            if not args.collect:
                work = SWEEP / group.name if args.again else _prepare(group)
                print(f"== mutation group {group.name}: {', '.join(group.paths)}", flush=True)
                _mutmut(work, "run", "--max-children", str(args.max_children), *names, quiet=True)
            mutants = collect(group)
            if args.again:  # only the live ones ran again: the others keep their verdict
                before = {m.name: m for m in _load(group) or ()}
                mutants = [m if m.name in names or m.name not in before else before[m.name] for m in mutants]
            _save(group, mutants)
    return 1 if report(chosen) else 0


if __name__ == "__main__":
    sys.exit(main())
