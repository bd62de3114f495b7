"""The stage catalog: one row per stage of DESIGN.md's stage map, as data.

The CLI, `mlsec stages`, `mlsec run`'s plan, the policy's known stage names, the docs' stage tables and
the workflows are all checked against this table (tests fail when one disagrees). Adding a stage means
one row here plus the stage's own files (docs/development.md).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.Enum):
    """What a stage does in a pipeline."""

    SCAN = "scan"
    """Reads the tree (or an artifact) and writes SARIF; the gate judges it."""
    GATE = "gate"
    """Evaluates the policy over the SARIF so far."""
    ACTION = "action"
    """Acts: builds, trains, signs, publishes, notifies. Writes SARIF when it has findings to report."""


@dataclass(frozen=True)
class StageInfo:
    """One stage of the stage map."""

    id: str
    """Stage id: CLI sub-command, action folder, SARIF category `mlsec/<id>`."""
    ml: tuple[int, ...]
    """Its stage numbers in the MLSecOps pipeline (empty: not part of it)."""
    dev: tuple[int, ...]
    """Its stage numbers in the DevSecOps pipeline (empty: not part of it)."""
    kind: Kind
    """Scan, gate or action."""
    summary: str
    """One line for `mlsec stages`, `--help` and the docs' tables."""
    tools: tuple[str, ...]
    """The real tools behind it (in-house analyzers are `in-house`)."""
    needs: tuple[str, ...] = ()
    """Stage ids whose output it reads (for `mlsec run`'s DAG and the workflows' `needs:`)."""
    produces: tuple[str, ...] = ("sarif",)
    """What it writes: sarif, verdict, sbom, bundle, attestation, provenance, image, report."""
    implemented: bool = False
    """Built in this version; the rest give a clear 'not implemented' error (exit 2), never a stub pass."""

    @property
    def category(self) -> str:
        """Its SARIF / code-scanning category."""
        return f"mlsec/{self.id}"

    def numbers(self, pipeline_name: str) -> tuple[int, ...]:
        """Its stage numbers in one pipeline (the gate's are its checkpoints); empty: not part of it."""
        if pipeline_name not in PIPELINES:
            raise ValueError(f"unknown pipeline {pipeline_name!r}")
        return self.ml if pipeline_name == "mlsecops" else self.dev


CATALOG: tuple[StageInfo, ...] = (
    # An action: with --run-hooks it runs the repository's own code, so `mlsec run` never starts it by itself.
    StageInfo("precommit", (1,), (1,), Kind.ACTION, "run the repository's pre-commit hooks and a fast secret pass",
              ("pre-commit", "in-house"), implemented=True),
    # An action, not a scan: it places files (or none), and `mlsec run` does not fetch on a laptop.
    StageInfo("fetch", (2,), (2,), Kind.ACTION, "fetch artifacts pinned by SHA-256, verify signatures, antivirus",
              ("clamav", "boto3", "in-house"), produces=("sarif", "artifacts"), implemented=True),
    StageInfo("code-scan", (3,), (3,), Kind.SCAN,
              "secrets, SAST, dependency vulnerabilities, IaC misconfiguration, commit signatures",
              ("trivy", "gitleaks", "bandit", "checkov", "semgrep", "in-house"), implemented=True),
    StageInfo("notebook-scan", (3,), (), Kind.SCAN, "secrets and PII in notebook cells and outputs, risky magics",
              ("in-house",), implemented=True),
    StageInfo("data-scan", (3,), (), Kind.SCAN, "PII, licence, schema, poisoning and leakage signals in datasets",
              ("in-house",), implemented=True),
    StageInfo("gate", (4, 8), (4, 7, 11), Kind.GATE,
              "policy over every stage's SARIF: verdict, summary, exit 3 on fail", ("in-house", "jsonschema"),
              produces=("sarif", "verdict"), implemented=True),
    StageInfo("train", (5,), (), Kind.ACTION, "run the training command and capture its provenance",
              ("in-house",), needs=("gate",), produces=("sarif", "provenance"), implemented=True),
    StageInfo("evaluate", (6,), (), Kind.SCAN, "metric thresholds, regression, fairness and robustness checks",
              ("in-house",), needs=("train",), implemented=True),
    StageInfo("model-scan", (7,), (), Kind.SCAN,
              "model files by content, never loaded: unsafe serialization, archives, formats, prompts",
              ("in-house", "modelscan"), implemented=True),
    StageInfo("sbom", (9,), (8,), Kind.ACTION, "CycloneDX 1.6 ML-BOM: models, datasets, dependencies, verdict",
              ("cyclonedx-python-lib",), needs=("gate",), produces=("sbom",), implemented=True),
    StageInfo("sign", (9,), (8,), Kind.ACTION, "sign artifacts and an in-toto attestation of the gate verdict",
              ("sigstore", "model-signing", "openpubkey"), needs=("gate", "sbom"),
              produces=("bundle", "attestation"), implemented=True),
    StageInfo("verify", (9,), (8,), Kind.ACTION, "check bundles and the attestation against a key or identity",
              ("sigstore", "cryptography"), needs=("sign",), produces=(), implemented=True),
    StageInfo("publish", (10,), (9,), Kind.ACTION, "publish to a model registry, S3 or a package registry",
              ("mlflow", "boto3"), needs=("verify",), produces=(), implemented=True),
    StageInfo("build", (), (5,), Kind.ACTION,
              "Dockerfile lint, then a daemonless image build: OCI layout, digest, SBOM, push",
              ("in-house", "buildah", "trivy"), needs=("gate",), produces=("sarif", "image"), implemented=True),
    StageInfo("image-scan", (), (6,), Kind.SCAN, "image vulnerabilities, secrets and misconfigurations",
              ("trivy",), needs=("build",), implemented=True),
    # After the first gate, not after build: it scans a URL the caller deployed, not the image (docs/dast.md).
    StageInfo("dast", (), (6,), Kind.SCAN, "web application scan of the deployed service", ("wapiti", "in-house"),
              needs=("gate",), implemented=True),
    StageInfo("sign-image", (), (8,), Kind.ACTION, "sign the image digest; signature, SBOM, provenance as referrers",
              ("sigstore", "cryptography", "trivy"), needs=("gate",), produces=("bundle",), implemented=True),
    StageInfo("infra-scan", (), (10,), Kind.SCAN, "exposed ports, TLS, OS compliance, deployed signatures",
              ("nmap", "openscap", "in-house"), needs=("publish",), implemented=True),
    StageInfo("runtime-probe", (), (12,), Kind.SCAN, "attack probes proving runtime protection works",
              ("in-house",), needs=("publish",), implemented=True),
    # An action after the gate (both pipelines' workflows, `mlsec run` with `notify-channels`); in neither
    # pipeline's stage numbers: it never changes a verdict.
    StageInfo("notify", (), (), Kind.ACTION,
              "post the run's summary: Slack, Telegram, webhook, DefectDojo, Pushgateway, PagerDuty",
              ("in-house",), needs=("gate",), produces=(), implemented=True),
)

PIPELINES: tuple[str, ...] = ("mlsecops", "devsecops")


def by_id(stage_id: str) -> StageInfo | None:
    return next((s for s in CATALOG if s.id == stage_id), None)


def implemented() -> tuple[StageInfo, ...]:
    """The stages this version builds, in catalog order (what the CLI registry must hold)."""
    return tuple(s for s in CATALOG if s.implemented)


def planned() -> tuple[StageInfo, ...]:
    """The stages of the map not built yet: asking for one is a clear error, never a stub pass."""
    return tuple(s for s in CATALOG if not s.implemented)


def stage_ids() -> frozenset[str]:
    """Every stage id of the stage map, implemented or not (what a policy may name)."""
    return frozenset(s.id for s in CATALOG)


def pipeline(name: str) -> tuple[StageInfo, ...]:
    """The stages of one pipeline in stage order (a stage in two positions, like the gate, is listed once,
    at its first)."""
    if name not in PIPELINES:
        raise ValueError(f"unknown pipeline {name!r}")

    rows = [s for s in CATALOG if s.numbers(name)]
    return tuple(sorted(rows, key=lambda s: (min(s.numbers(name)), CATALOG.index(s))))

