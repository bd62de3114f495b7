"""sbom (ML stage 9, Dev stage 8): CycloneDX 1.6 ML-BOM of the model, datasets, dependencies and verdict."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlsec_actions import gha, outputs, sanitize
from mlsec_actions.digests import DEFAULT_CACHE, DigestCache
from mlsec_actions.errors import ExitCode, UsageError
from mlsec_actions.signing.attest import load_verdict
from mlsec_actions.stages.base import Stage

STAGE_ID = "sbom"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", metavar="PATH",
                        help="project folder with requirements*.txt / uv.lock / poetry.lock / pyproject.toml")
    parser.add_argument("--model", type=Path, action="append", default=[], help="model file or folder (repeatable)")
    parser.add_argument("--dataset", type=Path, action="append", default=[], help="dataset file or folder (repeatable)")
    parser.add_argument("--out", type=outputs.output_file, default=Path("mlsec-results") / "sbom.cdx.json",
                        help="where to write the CycloneDX JSON (default: %(default)s)")
    parser.add_argument("--model-card", type=Path, default=None, help="model-card YAML (docs/sbom.md)")
    parser.add_argument("--metrics", type=Path, default=None, help="metrics JSON from the evaluate stage")
    parser.add_argument("--verdict", type=Path, default=None, help="gate verdict JSON, recorded as properties")
    parser.add_argument("--licenses-from", type=Path, default=None, metavar="SARIF",
                        help="code-scan's SARIF: dependencies' licences from its licence inventory (trivy), and "
                             "the packages of other lockfiles it listed (docs/sbom.md#sbom-licenses)")
    parser.add_argument("--no-discover", action="store_true",
                        help="list only --model/--dataset, not the models and datasets found in PATH by content")
    parser.add_argument("--digest-cache", type=Path, default=DEFAULT_CACHE,
                        help="digest cache shared with sign (default: %(default)s)")


def execute(args: argparse.Namespace) -> int:
    from mlsec_actions.sbom import bom as sbom  # cyclonedx is heavy; every `mlsec` start-up imports this module
    from mlsec_actions.sbom import licensing

    root = Path(args.path)
    if not root.is_dir():
        raise UsageError(f"{root}: not a folder")
    cache = DigestCache(args.digest_cache)
    request = sbom.SbomRequest(root=root, models=list(args.model), datasets=list(args.dataset),
                               model_card=args.model_card,
                               metrics=args.metrics, discover=not args.no_discover,
                               licenses=licensing.read(args.licenses_from) if args.licenses_from else None,
                               verdict=load_verdict(args.verdict) if args.verdict is not None else None)
    doc = sbom.build(request, cache)
    sbom.write(doc, args.out)
    cache.save()
    n = len(doc.get("components", []))
    models = [c["name"] for c in doc.get("components", []) if c.get("type") == "machine-learning-model"]
    print(sanitize.log_line(f"sbom: {n} components ({len(models)} models: {', '.join(models) or 'none'}), "
                            f"CycloneDX 1.6 valid; wrote {args.out}"), file=sys.stderr)
    gha.set_output("sbom-file", str(args.out))
    gha.append_summary(f"### mlsec sbom\n\n{n} components; `{args.out}` (CycloneDX 1.6, schema-valid).")
    return ExitCode.OK


STAGE = Stage(id=STAGE_ID, summary="CycloneDX 1.6 ML-BOM: model hashes, model card, datasets, dependencies",
              configure=configure, execute=execute)
