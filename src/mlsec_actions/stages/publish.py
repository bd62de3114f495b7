"""publish (ML stage 10, Dev stage 9): a signed model into an MLflow Model Registry, S3 and/or a Nexus raw
repository, after verify.

It refuses before any upload unless the gate verdict passes (`--verdict`) and, checked here with the
project's own verify code, every artifact's bundle and the gate attestation verify against the expected key
or identity and the files on disk (a verify "output" cannot be forged, because publish verifies itself).
Then the files are hashed once more and published (`supply/registry.py`, `supply/s3_publish.py`,
`supply/nexus_publish.py`):
idempotent by digest, a release label never re-used for other bytes. `--rollback VERSION` re-points
`--alias` to an earlier version that mlsec published. Credentials only from the environment; no output
carries them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mlsec_actions import gha, outputs, sanitize
from mlsec_actions.errors import ExitCode, MlsecError, UsageError
from mlsec_actions.stages.base import Stage, positive_float

STAGE_ID = "publish"


class PublishError(MlsecError):
    """A refusal or a registry failure after the inputs were checked: exit 1, one line."""

    exit_code = ExitCode.ERROR


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifacts", nargs="*", type=Path, metavar="ARTIFACT",
                        help="signed files or model folders to publish (each with its ARTIFACT.sigstore.json)")
    parser.add_argument("--name", default=None, help="registered model name in MLflow")
    parser.add_argument("--verdict", type=Path, default=None, help="the gate verdict JSON; must be 'pass'")
    parser.add_argument("--attestation", type=Path, default=None,
                        help="the gate attestation bundle (mlsec sign --attest)")
    parser.add_argument("--base", type=Path, default=Path(), help="folder attestation subjects are relative to")
    parser.add_argument("--public-key", type=Path, default=None, help="verify against this PEM public key")
    parser.add_argument("--identity", default=None, help="verify keyless/OpenPubkey bundles: expected signer")
    parser.add_argument("--issuer", default=None, help="expected OIDC issuer (with --identity)")
    parser.add_argument("--trust-policy", type=Path, default=None, metavar="FILE",
                        help="YAML list of trusted signers (docs/signing.md#trust-policy); adds to --public-key "
                             "and --identity")
    parser.add_argument("--mlflow-uri", default=None, help="MLflow tracking server (https://, http:// to loopback)")
    parser.add_argument("--s3", default=None, metavar="s3://BUCKET/PREFIX", help="also upload to S3")
    parser.add_argument("--nexus", default=None, metavar="URL",
                        help="also upload to this Nexus raw repository (https://HOST/repository/REPO; "
                             "credentials from NEXUS_USERNAME / NEXUS_PASSWORD)")
    parser.add_argument("--release", default=None, help="release label: never re-used for other bytes")
    parser.add_argument("--alias", default=None, help="MLflow alias to point at the version (e.g. champion)")
    parser.add_argument("--model-card", type=Path, default=None, help="model card (Markdown/YAML) for the description")
    parser.add_argument("--sbom", type=Path, default=None, help="the CycloneDX SBOM to publish beside it")
    parser.add_argument("--rollback", default=None, metavar="VERSION",
                        help="point --alias at this earlier, mlsec-published version (no upload)")
    parser.add_argument("--out", type=outputs.output_file, default=Path("mlsec-results/publish.json"),
                        help="where the publish record is written (default: %(default)s)")
    parser.add_argument("--timeout", type=positive_float, default=600.0, help="seconds per registry request")


def _server(args: argparse.Namespace) -> Any:
    from mlsec_actions.tools import mlflow_rest

    if not args.mlflow_uri:
        return None
    try:
        uri = mlflow_rest.check_uri(str(args.mlflow_uri))
    except ValueError as e:
        raise UsageError(f"--mlflow-uri: {e}") from None
    return mlflow_rest.Server(uri, min(args.timeout, 300.0))


def _check_args(args: argparse.Namespace) -> None:
    from mlsec_actions.supply import registry

    if args.name is not None and not registry.NAME.fullmatch(str(args.name)):
        raise UsageError("--name: letters, digits, '.', '_', '-' (at most 100, starting with a letter or digit)")
    if args.alias is not None and not registry.ALIAS.fullmatch(str(args.alias)):
        raise UsageError("--alias: lower-case letters, digits, '_', '-' (at most 63, starting with a letter)")
    if args.release is not None and not registry.NAME.fullmatch(str(args.release)):
        raise UsageError("--release: letters, digits, '.', '_', '-' (at most 100)")
    if args.s3 is not None:
        from mlsec_actions.supply import s3_publish

        s3_publish.target(str(args.s3))
    if args.nexus is not None:
        from mlsec_actions.supply import nexus_publish

        nexus_publish.check_url(str(args.nexus))


def execute(args: argparse.Namespace) -> int:
    _check_args(args)
    server = _server(args)
    if args.rollback is not None:
        return _rollback(args, server)
    if server is None and args.s3 is None and args.nexus is None:
        raise UsageError("say where to publish: --mlflow-uri URI, --s3 s3://BUCKET/PREFIX and/or --nexus URL")
    if server is not None and args.name is None:
        raise UsageError("--mlflow-uri needs --name")
    if not args.artifacts:
        raise UsageError("nothing to publish: name at least one signed ARTIFACT")
    if args.verdict is None or args.attestation is None:
        raise UsageError("publish needs the gate's --verdict and its --attestation: nothing unverified is published")
    from mlsec_actions.supply import publish_plan

    plan = publish_plan.verified(args)  # refuses (exit 1) before any upload
    objects = publish_plan.objects(plan) if args.s3 is not None or args.nexus is not None else ()  # names: exit 2
    record: dict[str, Any] = {"digest": plan.digest, "files": {i.rel: i.sha256 for i in plan.items}}
    try:
        if server is not None:
            from mlsec_actions.supply import registry

            version, created = registry.publish_mlflow(server, args.name, plan.items, plan.extras, args.release,
                                                       args.alias, plan.sbom_sha)
            record["mlflow"] = {"name": args.name, "version": version, "created": created, "alias": args.alias}
        if args.s3 is not None:
            from mlsec_actions.supply import s3_publish

            record["s3"] = s3_publish.publish(str(args.s3), plan, objects, args.timeout)
        if args.nexus is not None:
            from mlsec_actions.supply import nexus_publish

            path = nexus_publish.release_path(plan, args.name, args.release)
            record["nexus"] = nexus_publish.publish(str(args.nexus), plan, objects, path, args.timeout)
    except MlsecError:
        raise
    except Exception as e:  # a registry or S3 failure: one safe line (no credential), exit 1
        from mlsec_actions.supply import nexus_publish
        from mlsec_actions.tools import mlflow_rest

        raise PublishError(nexus_publish.scrub(mlflow_rest.scrub(f"publish failed: {type(e).__name__}: {e}"))) \
            from None
    return _report(args, record)


def _rollback(args: argparse.Namespace, server: Any) -> int:
    from mlsec_actions.supply import registry
    from mlsec_actions.tools.mlflow_rest import RegistryError

    if server is None or args.name is None or args.alias is None:
        raise UsageError("--rollback needs --mlflow-uri, --name and --alias")
    try:
        digest = registry.rollback(server, args.name, args.alias, str(args.rollback))
    except RegistryError as e:
        raise PublishError(f"rollback refused: {e}") from None
    return _report(args, {"digest": digest, "mlflow": {"name": args.name, "version": str(args.rollback),
                                                         "alias": args.alias, "rollback": True}})


def _report(args: argparse.Namespace, record: dict[str, Any]) -> int:
    outputs.write_text(args.out, json.dumps(record, indent=1, sort_keys=True) + "\n")
    mlflow = record.get("mlflow") or {}
    line = f"publish: digest {record['digest'][:16]}..."
    if mlflow:
        state = "rolled back to" if mlflow.get("rollback") else ("created" if mlflow.get("created") else "already at")
        line += f"; MLflow {mlflow['name']} {state} version {mlflow['version']}"
    if record.get("s3"):
        line += f"; S3 {len(record['s3']['uploaded'])} uploaded, {len(record['s3']['unchanged'])} unchanged"
    if record.get("nexus"):
        line += (f"; Nexus {len(record['nexus']['uploaded'])} uploaded, "
                 f"{len(record['nexus']['unchanged'])} unchanged")
    print(sanitize.log_line(line), file=sys.stderr)
    gha.set_output("digest", record["digest"])
    gha.set_output("version", str(mlflow.get("version", "")))
    gha.set_output("record", str(args.out))
    gha.append_summary(f"### mlsec publish\n\n{sanitize.md_text(line)}\n")
    return ExitCode.OK


STAGE = Stage(id=STAGE_ID, summary="publish a verified model to MLflow, S3 and/or Nexus (idempotent; --rollback)",
              configure=configure, execute=execute)
