"""gate (ML stages 4 and 8, Dev stages 4, 7 and 11): a policy over every stage's SARIF.

Exit 0 pass, 3 fail (`ExitCode.GATE_FAILED`), 2 bad input (unreadable policy, missing folder).
A malformed SARIF file is a fail verdict, not exit 2: the verdict, summary and SARIF still say why.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mlsec_actions import gha, outputs, sanitize
from mlsec_actions.errors import ExitCode, UsageError
from mlsec_actions.sarif import write_sarif
from mlsec_actions.stages.base import Stage

STAGE_ID = "gate"
_OUT = Path("mlsec-results")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sarif-dir", type=Path, default=_OUT,
                        help="folder whose *.sarif files (recursively) are evaluated (default: %(default)s)")
    parser.add_argument("--policy", default="default",
                        help="policy file, or a builtin: default, strict (default: %(default)s)")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="folder of baseline SARIF (e.g. the default branch's last run): only findings "
                             "whose fingerprints are new count toward thresholds")
    parser.add_argument("--verdict", type=outputs.output_file, default=_OUT / "gate-verdict.json",
                        help="where to write the verdict JSON (default: %(default)s)")
    parser.add_argument("--summary", type=outputs.output_file, default=_OUT / "gate-summary.md",
                        help="where to write the markdown summary (default: %(default)s)")
    parser.add_argument("--sarif", type=outputs.output_file, default=_OUT / "gate.sarif",
                        help="where to write the policy violations as SARIF (default: %(default)s)")
    parser.add_argument("--checkpoint", type=int, choices=range(1, 13), default=None, metavar="N",
                        help="the gate's stage number in its pipeline (e.g. 8, after training): applies the "
                             "policy's checkpoints.N section")
    from mlsec_actions import catalog

    parser.add_argument("--pipeline", choices=catalog.PIPELINES, default=None,
                        help="the pipeline this gate is part of: required stages of the policy that pipeline has no "
                             "stage for are not required here (named in a warning); every other one still is")
    # Checked here, at parse time: a bad value is exit 2 before anything is read (argparse shows the message).
    from mlsec_actions.gate import options

    parser.add_argument("--run-id", type=options.parse_run_id, default=None, metavar="ID",
                        help="this pipeline run's id: every SARIF run must carry it as mlsec-run-id, "
                             "else violation sarif-stale")
    parser.add_argument("--expect-stage", type=options.parse_stage, action="append", default=None,
                        metavar="STAGE", help="a stage that must have a SARIF run of this run, else violation "
                                              "stage-missing (repeatable; env: one per line)")
    parser.add_argument("--sarif-digest", type=options.parse_digest, action="append", default=None,
                        metavar="NAME=SHA256", help="the SHA-256 a stage recorded for NAME (relative to "
                                                    "--sarif-dir): a different or missing file is violation "
                                                    "sarif-tampered (repeatable; env: one per line)")


def execute(args: argparse.Namespace) -> int:
    # Imported here: jsonschema and msgspec cost ~0.3 s that other `mlsec` commands need not pay.
    from mlsec_actions.gate import alerts, policy
    from mlsec_actions.gate import report as gate_report
    from mlsec_actions.gate.engine import run_gate
    from mlsec_actions.gate.options import BadValue, unique_digests
    from mlsec_actions.gate.provenance import Expectations
    from mlsec_actions.gate.scope import for_pipeline

    pol = policy.load(args.policy, checkpoint=args.checkpoint)  # a bad policy raises PolicyError: exit 2
    pol = for_pipeline(pol, args.pipeline)
    for w in pol.warnings:
        print(sanitize.log_line(f"gate: warning: {w}"), file=sys.stderr)
    try:
        expect = Expectations(run_id=args.run_id, stages=tuple(dict.fromkeys(args.expect_stage or ())),
                              digests=unique_digests(args.sarif_digest or ()))
    except BadValue as e:
        raise UsageError(f"--sarif-digest: {e}") from None
    verdict = run_gate(pol, args.sarif_dir, args.baseline, exclude=frozenset({args.sarif.resolve()}), expect=expect)
    doc = gate_report.to_json(verdict)
    # File names that are not UTF-8 reach us as surrogates: shown escaped, never a UnicodeEncodeError.
    summary = gate_report.markdown(verdict).encode("utf-8", "backslashreplace").decode("utf-8")
    for path in (args.verdict, args.summary):
        path.parent.mkdir(parents=True, exist_ok=True)
    args.verdict.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    args.summary.write_text(summary + "\n", encoding="utf-8")
    write_sarif(alerts.violations_result(verdict), args.sarif, run_id=args.run_id)
    for x in verdict.violations:
        print(sanitize.log_line(f"gate: violation: {x.kind}: {x.message}"), file=sys.stderr)
        gha.annotation("error", sanitize.log_line(x.message), title=f"mlsec gate: {x.kind}")
    for w in verdict.warnings[len(pol.warnings):]:
        print(sanitize.log_line(f"gate: warning: {w}"), file=sys.stderr)
    total = sum(sum(c.values()) for c in verdict.counts.values())
    print(f"gate: {doc['verdict'].upper()}: {len(verdict.violations)} violation(s) over {total} finding(s) in "
          f"{len(verdict.inputs)} file(s); verdict: {args.verdict}", file=sys.stderr)
    gha.set_output("verdict", doc["verdict"])
    gha.set_output("violations", str(len(verdict.violations)))
    gha.set_output("verdict-file", str(args.verdict))
    gha.set_output("summary-file", str(args.summary))
    gha.set_output("sarif-file", str(args.sarif))
    gha.append_summary(summary)
    return ExitCode.OK if verdict.passed else ExitCode.GATE_FAILED


STAGE = Stage(id=STAGE_ID, summary="policy over every stage's SARIF: verdict, summary, exit 3 on fail",
              configure=configure, execute=execute, locks=lambda args: (args.verdict.parent,))
