"""verify (ML stage 9, Dev stage 8): check bundles and the gate attestation against a key or an identity."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlsec_actions import gha, outputs, sanitize
from mlsec_actions.errors import ExitCode, UsageError
from mlsec_actions.signing.interface import Verifier

if TYPE_CHECKING:
    from mlsec_actions.signing.trust import Identity
from mlsec_actions.stages.base import Stage

STAGE_ID = "verify"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
DEFAULT_MAX_TOKEN_AGE = 24 * 3600
"""OpenPubkey: the reference verifier's token age policy, in seconds."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifacts", nargs="*", type=Path, metavar="ARTIFACT",
                        help="files and model folders whose ARTIFACT.sigstore.json bundles to check")
    add_verifier_arguments(parser)
    parser.add_argument("--attestation", type=Path, action="append", default=[],
                        help="a gate attestation bundle; its subjects are checked against the files on disk")
    parser.add_argument("--json", type=_json_out, default=None, metavar="FILE|-",
                        help="also write the report as JSON (one entry per artifact and attestation); - for stdout")
    parser.add_argument("--provenance", type=Path, action="append", default=[], metavar="BUNDLE",
                        help="a training provenance bundle (mlsec sign --provenance); its outputs are checked "
                             "against the files on disk")
    parser.add_argument("--base", type=Path, default=Path(),
                        help="folder attestation subject names are relative to (default: current folder)")


_STDOUT = Path("-")


def add_verifier_arguments(parser: argparse.ArgumentParser) -> None:
    """Whom to trust: keys, identities, a trust policy (`verify` and `verify-image` take the same)."""
    parser.add_argument("--public-key", type=Path, action="append", default=[],
                        help="key backend: a PEM public key to trust (repeatable: any one may have signed)")
    parser.add_argument("--trust-policy", type=Path, default=None, metavar="FILE",
                        help="YAML list of trusted signers (keys and identities; docs/signing.md#trust-policy); "
                             "adds to --public-key and --identity")
    parser.add_argument("--identity", action="append", default=[],
                        help="keyless/OpenPubkey: expected signer, an exact string or anchored glob "
                             "(docs/signing.md#trust-policy-matching), e.g. "
                             "https://github.com/OWNER/REPO/.github/workflows/ci.yml@refs/heads/main; repeatable")
    parser.add_argument("--issuer", action="append", default=[],
                        help=f"expected OIDC issuer, exact (GitHub: {GITHUB_ISSUER}); once for every --identity, "
                             "or once per --identity in the same order")
    parser.add_argument("--repository", default=None, help="also require this GitHub OWNER/REPO (or OWNER/glob)")
    parser.add_argument("--ref", default=None, help="also require this git ref (refs/heads/main, or a glob)")
    parser.add_argument("--event", default=None, help="openpubkey: also require this event_name (push, release)")
    parser.add_argument("--max-token-age", type=_max_age, default=DEFAULT_MAX_TOKEN_AGE, metavar="SECONDS|none",
                        help="openpubkey: accept a PK token until this long after it was issued (default 86400, "
                             "the reference verifier's policy); 'none' for long-term checks with a pinned --jwks")
    parser.add_argument("--jwks", type=Path, default=None,
                        help="openpubkey: pinned issuer JWKS file (offline); default: fetch from the issuer")
    parser.add_argument("--staging", action="store_true", help="sigstore: Sigstore's staging trust root")
    parser.add_argument("--offline", action="store_true",
                        help="sigstore: use the trust root sigstore-python ships, no TUF refresh")
    parser.add_argument("--trust-config", type=Path, default=None, metavar="FILE",
                        help="sigstore: trust the instance this sigstore-python ClientTrustConfig names (its "
                             "trusted root), instead of Sigstore's public one; the file `sigstore --trust-config` "
                             "reads")


def _json_out(text: str) -> Path:
    return _STDOUT if text == "-" else outputs.output_file(text)


def _max_age(text: str) -> int | None:
    if text.strip().lower() == "none":
        return None
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a positive number of seconds, or 'none'")
    return value


def _cli_identities(identity: str | Sequence[str] | None, issuer: str | Sequence[str] | None,
                    repository: str | None, ref: str | None, event: str | None) -> list[Identity]:
    """`--identity` (repeatable) with one `--issuer` for all, or one per identity in order; every pattern checked."""
    from mlsec_actions.signing import trust

    names = [identity] if isinstance(identity, str) else list(identity or ())
    issuers = [issuer] if isinstance(issuer, str) else list(issuer or ())
    if bool(names) != bool(issuers):
        raise UsageError("--identity and --issuer go together")
    if len(issuers) not in (1, len(names)):
        raise UsageError(f"{len(names)} --identity and {len(issuers)} --issuer: give one --issuer for all, "
                         "or one per --identity in the same order")
    out = []
    for i, name in enumerate(names):
        who = trust.Identity(name, issuers[i if len(issuers) > 1 else 0], repository, ref, event,
                             label=f"--identity {name}")
        refused = trust.check_identity(who)
        if refused:
            option, _, why = refused.partition(": ")
            raise UsageError(f"--{option} {getattr(who, option)!r}: {why}")
        out.append(who)
    return out


def trusted_verifiers(*, public_keys: Sequence[Path] = (), identity: str | Sequence[str] | None = None,
                      issuer: str | Sequence[str] | None = None,
                      repository: str | None = None, ref: str | None = None, event: str | None = None,
                      max_token_age: int | None = DEFAULT_MAX_TOKEN_AGE, jwks: Path | None = None,
                      staging: bool = False, offline: bool = False,
                      trust_policy: Path | None = None, trust_config: Path | None = None) -> list[Verifier]:
    """The verifiers of everyone the caller trusts (keys, identities, a trust policy file); used by verify,
    fetch and publish. More than one signer of a kind is one `AnyOf`: any of them may have signed. Each
    verifier's `label` names the entry it came from (`--public-key FILE`, `--identity ID`, `FILE signers[N]`)."""
    from mlsec_actions.signing import trust

    identities = _cli_identities(identity, issuer, repository, ref, event)
    if trust_config is not None:
        if staging:
            raise UsageError("--trust-config and --staging: give one Sigstore instance")
        from mlsec_actions.signing import sigstore as sg

        sg.load_trust_config(trust_config, signing=False)  # a bad file stops before any artifact is read
    policy = trust.load_trust_policy(trust_policy) if trust_policy is not None else None
    keys = [*((k, f"--public-key {k}") for k in public_keys),
            *(zip(policy.keys, policy.key_labels, strict=True) if policy else ())]
    identities += policy.identities if policy else ()
    out: list[Verifier] = []
    if keys:
        from mlsec_actions.signing.bundle import load_public_key
        from mlsec_actions.signing.key import KeyVerifier

        for k, label in keys:
            out.append(KeyVerifier(load_public_key(k)))
            out[-1].label = label
    if identities:
        from mlsec_actions.signing import openpubkey, sigstore

        for who in identities:
            out.append(sigstore.SigstoreVerifier(sigstore.Expected(who.identity, who.issuer, who.repository, who.ref),
                                                 staging=staging, offline=offline, trust_config=trust_config))
            out.append(openpubkey.OpenPubkeyVerifier(
                openpubkey.Expected(who.identity, who.issuer, who.repository, who.ref, who.event, max_token_age),
                jwks))
            out[-2].label = out[-1].label = who.label
    if not out:
        raise UsageError("say whom to trust: --public-key FILE, --identity ID --issuer URL, or --trust-policy FILE")
    return [trust.AnyOf(out)] if len(keys) > 1 or len(identities) > 1 else out


def _verifiers(args: argparse.Namespace) -> list[Verifier]:
    return trusted_verifiers(public_keys=args.public_key, identity=args.identity, issuer=args.issuer,
                             repository=args.repository, ref=args.ref, event=args.event,
                             max_token_age=args.max_token_age, jwks=args.jwks, staging=args.staging,
                             offline=args.offline, trust_policy=args.trust_policy,
                             trust_config=args.trust_config)


def execute(args: argparse.Namespace) -> int:
    # cryptography is heavy; keep start-up fast
    from mlsec_actions.signing.verify import Check, verify_all
    from mlsec_actions.training import signing as train_signing

    verifiers = _verifiers(args)
    checks = verify_all(list(args.artifacts), list(args.attestation), verifiers, Path(args.base)) \
        if args.artifacts or args.attestation or not args.provenance else []
    checks += [Check(str(b), *train_signing.verify(Path(b), verifiers, Path(args.base))) for b in args.provenance]
    failed = [c for c in checks if not c.ok]
    if args.json is not None:
        report = json.dumps({"ok": not failed, "checks": [c.as_json() for c in checks]}, indent=2) + "\n"
        if args.json == _STDOUT:
            sys.stdout.write(report)
        else:
            outputs.write_text(args.json, report)
    for c in checks:  # names and link targets come from the verified tree: hostile text
        print(sanitize.log_line(f"verify: {'OK  ' if c.ok else 'FAIL'} {c.target}: {c.message}", 8000),
              file=sys.stderr)
        if not c.ok:
            gha.annotation("error", sanitize.log_line(f"{c.target}: {c.message}"), title="mlsec verify")
    gha.set_output("verified", str(len(checks) - len(failed)))
    gha.set_output("failed", str(len(failed)))
    rows = "".join(f"| {'ok' if c.ok else 'FAILED'} | {sanitize.md_text(c.target)} | {sanitize.md_text(c.message)} |\n"
                   for c in checks)
    gha.append_summary(f"### mlsec verify\n\n| result | artifact | detail |\n|---|---|---|\n{rows}")
    return ExitCode.ERROR if failed else ExitCode.OK


STAGE = Stage(id=STAGE_ID, summary="verify bundles and the gate attestation against a key or identity",
              configure=configure, execute=execute)
