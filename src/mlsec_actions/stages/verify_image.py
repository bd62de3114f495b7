"""verify-image: check images in their registry against a key or identity before they are deployed.

A helper command beside `verify` (which checks files on disk): its inputs are registry references and it talks
to the registry, so it has its own arguments and failure modes. Exit 0 when every image has a valid signature
(and every `--require-attestation`), 1 otherwise, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys

from mlsec_actions import gha, outputs, sanitize
from mlsec_actions.errors import ExitCode
from mlsec_actions.stages.base import Stage
from mlsec_actions.stages.sign_image import _timeout
from mlsec_actions.stages.verify import add_verifier_arguments

STAGE_ID = "verify-image"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="HOST/REPO@sha256:DIGEST",
                        help="images to check; a :TAG is resolved to its digest once and the result names it")
    add_verifier_arguments(parser)
    parser.add_argument("--require-attestation", action="append", choices=("sbom", "gate"), default=[],
                        help="also require a valid attestation of this kind (repeatable)")
    parser.add_argument("--signed-repository", action="append", default=[], metavar="HOST/REPO",
                        help="also accept signatures naming this repository (an image copied with its signatures)")
    parser.add_argument("--timeout", type=_timeout, default=60.0, help="seconds per registry request (default 60)")
    parser.add_argument("--json", type=outputs.output_file, default=None, help="also write the report as JSON")


def execute(args: argparse.Namespace) -> int:
    from mlsec_actions.errors import MlsecError, UsageError
    from mlsec_actions.oci import reference
    from mlsec_actions.oci.client import Client
    from mlsec_actions.oci.image_verify import ATTESTATION_NAMES, ImageCheck, as_error, verify_image
    from mlsec_actions.signing import bundle as bl
    from mlsec_actions.stages.verify import _verifiers

    refs = [reference.parse(i) for i in args.images]  # every reference checked before any is fetched
    for name in args.signed_repository:
        if "@" in name or ":" in name.rpartition("/")[2]:
            raise UsageError(f"--signed-repository {name!r}: HOST/REPO without a tag or digest")
    verifiers = _verifiers(args)
    if not verifiers:
        raise UsageError("name the trusted signers: --public-key, --identity and --issuer, or --trust-policy")
    key_files = list(args.public_key)
    if args.trust_policy is not None:
        from mlsec_actions.signing import trust

        key_files += trust.load_trust_policy(args.trust_policy).keys
    public_keys = [bl.load_public_key(k) for k in key_files]
    require = [ATTESTATION_NAMES[n] for n in args.require_attestation]
    checks: list[ImageCheck] = []
    for text, ref in zip(args.images, refs, strict=True):
        try:
            checks.append(verify_image(Client(ref.host, timeout=args.timeout), ref, verifiers, public_keys=public_keys,
                                       require=require, also_names=args.signed_repository))
        except UsageError:
            raise
        except MlsecError as e:  # the registry failed or lied: this image is not verified
            checks.append(as_error(e, text))
    for c in checks:
        detail = f"signed by {', '.join(c.signers)}" if c.ok else "; ".join(c.problems)
        line = f"verify-image: {'OK  ' if c.ok else 'FAIL'} {c.reference} ({c.digest or 'unresolved'}): {detail}"
        print(sanitize.log_line(line, 8000), file=sys.stderr)
        if not c.ok:
            gha.annotation("error", sanitize.log_line(f"{c.reference}: {detail}"), title="mlsec verify-image")
    if args.json is not None:
        outputs.write_text(args.json, json.dumps({"ok": all(c.ok for c in checks),
                                                  "images": [c.as_json() for c in checks]}, indent=2) + "\n")
    gha.set_output("verified", str(sum(c.ok for c in checks)))
    gha.set_output("failed", str(sum(not c.ok for c in checks)))
    gha.set_output("digests", "\n".join(c.digest for c in checks))
    return ExitCode.OK if all(c.ok for c in checks) else ExitCode.ERROR


STAGE = Stage(id=STAGE_ID, summary="verify image signatures and attestations in the registry before deploy",
              configure=configure, execute=execute, listed=False)
