"""sign-image (Dev stage 8): sign an image digest in its registry, with the SBOM and gate attestations.

`mlsec sign-image HOST/REPO@sha256:... --verdict verdict.json [--sbom sbom.cdx.json | --generate-sbom]`: refuses to
sign after a failing verdict, resolves a tag (when given one) to its digest once, takes the SBOM from the file or
from trivy run on that digest (`oci.sbom_source`; refused unless it is of this image), and stores the signature and
attestations
beside the image (`oci.image_sign`): Sigstore bundles as OCI 1.1 referrers, DSSE envelopes in cosign's `.att`
layout, and, with the key backend, cosign's `.sig` simple-signing signature. Nothing is ever deleted or replaced.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlsec_actions import gha, outputs, sanitize
from mlsec_actions.errors import ExitCode, InputError, UsageError
from mlsec_actions.stages.base import Stage

if TYPE_CHECKING:
    from mlsec_actions.oci.client import Client
    from mlsec_actions.oci.reference import Reference

STAGE_ID = "sign-image"


def _timeout(text: str) -> float:
    value = float(text)
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: seconds, more than 0 and at most 3600")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    from mlsec_actions.signing import BACKENDS

    parser.add_argument("image", nargs="?", default=None, metavar="HOST/REPO@sha256:DIGEST",
                        help="the image to sign (default: $MLSEC_IMAGE); a :TAG is resolved to its digest once and "
                             "the digest is signed")
    parser.add_argument("--verdict", type=Path, default=None,
                        help="gate verdict JSON: signing is refused unless it says pass; attested on the image")
    parser.add_argument("--sbom", type=Path, default=None,
                        help="CycloneDX JSON SBOM of the image to attest (checked against its schema and the image)")
    parser.add_argument("--generate-sbom", action="store_true",
                        help="attest trivy's CycloneDX SBOM of the digest being signed, read from the registry "
                             "(trivy image --image-src remote --format cyclonedx); not with --sbom")
    parser.add_argument("--sbom-timeout", type=_timeout, default=600.0,
                        help="--generate-sbom: seconds trivy may take (default 600)")
    parser.add_argument("--sbom-out", type=outputs.output_file, default=None,
                        help="--generate-sbom: also keep the generated SBOM in this file")
    parser.add_argument("--backend", choices=BACKENDS, default="sigstore",
                        help="sigstore (keyless, GitHub OIDC), openpubkey, key (PEM key; also writes cosign's .sig), "
                             "kms or vault")
    parser.add_argument("--key", type=Path, default=None,
                        help="key backend: PEM private key file (default: $MLSEC_SIGNING_KEY)")
    parser.add_argument("--key-source", default="", help="key backend: a secret store, as for `mlsec sign`")
    parser.add_argument("--kms-key", default="", help="kms backend: the KMS key (default: $MLSEC_KMS_KEY)")
    parser.add_argument("--vault-key", default="", help="vault backend: the transit key (default: $MLSEC_VAULT_KEY)")
    parser.add_argument("--staging", action="store_true", help="sigstore backend: Sigstore's staging instance")
    parser.add_argument("--trust-config", type=Path, default=None, metavar="FILE",
                        help="sigstore backend: the instance a sigstore-python ClientTrustConfig names, as for "
                             "`mlsec sign`")
    parser.add_argument("--timeout", type=_timeout, default=60.0, help="seconds per registry request (default 60)")
    parser.add_argument("--json", type=outputs.output_file, default=None, help="also write what was stored as JSON")


def _generated_sbom(args: argparse.Namespace, client: Client, ref: Reference, tmp: Path) -> tuple[Reference,
                                                                                                  dict[str, Any]]:
    """`ref` pinned to its digest (a tag is read once) and trivy's SBOM of that digest, so the SBOM, the signature
    and the attestations are all of one manifest even if the tag moves meanwhile."""
    from mlsec_actions.oci import sbom_source
    from mlsec_actions.oci.image_sign import resolve

    pinned, _ = resolve(client, ref)
    out = sbom_source.generate(pinned, tmp / "image.cdx.json", args.sbom_timeout)
    doc = sbom_source.load(out, f"trivy's SBOM of {pinned}")
    if args.sbom_out is not None:
        outputs.write_text(args.sbom_out, out.read_text(encoding="utf-8"))
    print(sanitize.log_line(f"sign-image: trivy made the SBOM of {pinned}"), file=sys.stderr)
    return pinned, doc


def _gate_predicate(doc: dict[str, Any]) -> dict[str, Any]:
    return {"verdict": doc.get("verdict"), "policy": doc.get("policy"), "counts": doc.get("counts"),
            "violations": len(doc.get("violations") or []), "runId": doc.get("run_id") or doc.get("runId")}


def execute(args: argparse.Namespace) -> int:
    from mlsec_actions.oci import reference
    from mlsec_actions.signing import attest

    if not args.image or args.verdict is None:
        raise UsageError("sign-image needs the image (HOST/REPO@sha256:...) and --verdict (the gate's verdict JSON)")
    if args.sbom is not None and args.generate_sbom:
        raise UsageError("sign-image: --sbom names the SBOM and --generate-sbom makes one: give one of them")
    if args.sbom_out is not None and not args.generate_sbom:
        raise UsageError("sign-image: --sbom-out keeps a generated SBOM; it needs --generate-sbom")
    if args.trust_config is not None and (args.staging or args.backend != "sigstore"):
        raise UsageError("--trust-config is for the sigstore backend, instead of --staging")
    ref = reference.parse(args.image)
    verdict = attest.load_verdict(args.verdict)
    attest.require_pass(verdict)  # before any key is loaded, token requested or registry contacted
    with tempfile.TemporaryDirectory(prefix="mlsec-sign-image-") as tmp:
        return _sign(args, ref, verdict.doc, Path(tmp))


def _sign(args: argparse.Namespace, ref: Reference, verdict: dict[str, Any], tmp: Path) -> int:
    from mlsec_actions.oci import sbom_source
    from mlsec_actions.oci.client import Client
    from mlsec_actions.oci.image_sign import SbomMismatch, sign_image
    from mlsec_actions.signing import make_signer
    from mlsec_actions.signing.statements import Kind

    client = Client(ref.host, timeout=args.timeout)
    attestations = [(Kind.IMAGE_GATE, _gate_predicate(verdict))]
    sbom_name: object = args.sbom
    if args.sbom is not None:  # read and checked before any key is loaded or token requested
        attestations.append((Kind.IMAGE_SBOM, sbom_source.load(args.sbom)))
    elif args.generate_sbom:  # before the signer: a keyless token is short-lived, trivy may take minutes
        ref, doc = _generated_sbom(args, client, ref, tmp)
        sbom_name = f"trivy's SBOM of {ref}"
        attestations.append((Kind.IMAGE_SBOM, doc))
    signer = make_signer(args.backend, key=args.key, staging=args.staging, kms_key=args.kms_key,
                         vault_key=args.vault_key, key_source=args.key_source, trust_config=args.trust_config)
    cosign_key = None
    if args.backend == "key":  # the same key, loaded again for cosign's simple-signing layout only
        from mlsec_actions.oci.image_sign import CosignKey
        from mlsec_actions.signing.key import load_private_key

        cosign_key = CosignKey(load_private_key(args.key, args.key_source))
    try:
        written = sign_image(client, ref, signer, attestations, cosign_key)
    except SbomMismatch as e:  # the SBOM of another image (the last build's, a base image's): bad input, exit 2
        raise InputError(sbom_name, str(e)) from None
    for line in written.manifests:
        print(sanitize.log_line(f"sign-image: wrote {line}"), file=sys.stderr)
    if args.json is not None:
        outputs.write_text(args.json, json.dumps({"image": str(written.reference), "digest": written.reference.digest,
                                                  "written": list(written.manifests)}, indent=2) + "\n")
    gha.set_output("digest", written.reference.digest)
    gha.set_output("image", str(written.reference))
    gha.append_summary(f"### mlsec sign-image\n\nSigned `{sanitize.md_text(str(written.reference))}` with the "
                       f"`{args.backend}` backend: {len(written.manifests)} objects stored in the registry.")
    return ExitCode.OK


STAGE = Stage(id=STAGE_ID, summary="sign the image digest; signature, SBOM, provenance as referrers",
              configure=configure, execute=execute)
