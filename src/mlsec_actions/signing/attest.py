"""The gate attestation: an in-toto Statement v1 about the verdict, DSSE-signed by a signing backend.

Subjects are every file the verdict is about (model files, SBOM, stage SARIF, the verdict file
itself) by SHA-256; the predicate carries the verdict, the policy digest, per-stage counts, tool
versions, and which subjects form each model folder (so a file added to a folder is noticed).
Compatible with `actions/attest` consumers: it is a plain in-toto statement.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlsec_actions.errors import InputError
from mlsec_actions.inputs import load_json
from mlsec_actions.signing import statements
from mlsec_actions.signing.interface import SigningError, VerificationError

STATEMENT_TYPE = statements.STATEMENT_TYPE
PREDICATE_TYPE = statements.Kind.GATE_VERDICT.value
"""Our predicate: the gate verdict and what it was computed from."""
DEFAULT_OUT = Path("mlsec-results") / "gate.intoto.sigstore.json"
"""Where `mlsec sign --attest` writes the signed attestation by default."""


@dataclass(frozen=True)
class Verdict:
    """A gate verdict file, as the gate wrote it."""

    path: Path
    """The verdict JSON on disk."""
    doc: dict[str, Any]
    """Its parsed content (`verdict`, `policy`, `inputs`, `violations`, `counts`, `tools`)."""

    @property
    def passed(self) -> bool:
        return self.doc.get("verdict") == "pass"


def load_verdict(path: Path) -> Verdict:
    doc = load_json(path, "verdict")
    if not isinstance(doc, dict) or doc.get("verdict") not in ("pass", "fail"):
        raise InputError(path, "not a gate verdict (needs \"verdict\": \"pass\" or \"fail\")")
    return Verdict(path, doc)


def require_pass(verdict: Verdict) -> None:
    """Never sign after a failing gate."""
    if not verdict.passed:
        n = len(verdict.doc.get("violations") or [])
        raise SigningError(f"refusing to sign: the gate verdict in {verdict.path} is 'fail' ({n} violations); "
                           "fix the findings or the policy, re-run the gate, then sign")


def subject_name(path: Path, base: Path) -> str:
    """A subject's name: its path relative to `base`, POSIX separators; refused outside `base`."""
    resolved = path.resolve()
    if not resolved.is_relative_to(base.resolve()):
        raise InputError(path, f"outside the base folder {base}; attestation subjects are named relative to it")
    return resolved.relative_to(base.resolve()).as_posix()


def verdict_inputs(verdict: Verdict, base: Path) -> list[tuple[Path, str]]:
    """The SARIF files the gate read, located on disk (relative to base, else to the verdict's folder)."""
    out = []
    for item in verdict.doc.get("inputs") or []:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            continue
        rel = Path(item["path"])
        candidates = [rel] if rel.is_absolute() else [base / rel, verdict.path.parent / rel]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise InputError(verdict.path, f"input {item['path']} named by the verdict is not on disk")
        subject_name(found, base)  # refuse (before anything is read) what lies outside the base folder
        out.append((found, str(item.get("sha256", ""))))
    return out


def statement(subjects: dict[str, str], verdict: Verdict, verdict_name: str,
              models: dict[str, list[str]]) -> bytes:
    """The statement bytes to DSSE-sign. `models`: model folder name -> its subject names."""
    doc = verdict.doc
    predicate = {
        "verdict": doc.get("verdict"),
        "verdictFile": verdict_name,
        "policy": doc.get("policy"),
        "counts": doc.get("counts"),
        "violations": len(doc.get("violations") or []),
        "tools": doc.get("tools") or [],
        "models": [{"name": name, "files": sorted(files)} for name, files in sorted(models.items())],
        "builder": {k: v for k, v in (("repository", os.environ.get("GITHUB_REPOSITORY")),
                                      ("workflowRef", os.environ.get("GITHUB_WORKFLOW_REF")),
                                      ("runId", os.environ.get("GITHUB_RUN_ID")),
                                      ("sha", os.environ.get("GITHUB_SHA"))) if v},
    }
    body = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": n, "digest": {"sha256": d}} for n, d in sorted(subjects.items())],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }
    return json.dumps(body, indent=2, sort_keys=True).encode("utf-8")


def predicate_path(attestation: Path) -> Path:
    """`gate.intoto.sigstore.json` -> `gate.predicate.json` beside it."""
    stem = attestation.name.removesuffix(".sigstore.json").removesuffix(".intoto").removesuffix(".json")
    return attestation.with_name(stem + ".predicate.json")


def parse_statement(doc: dict[str, Any]) -> dict[str, Any]:
    """A `gate-verdict/v1` statement (already type-checked by `statements.open_statement`) with its shape checked."""
    if not isinstance(doc.get("predicate"), dict):
        raise VerificationError("attestation has no predicate")
    return doc
