"""sign (ML stage 9, Dev stage 8): sign files and model folders, and attest the gate verdict.

Files get `FILE.sigstore.json` (a DSSE-signed `signed-file/v1` statement of the SHA-256); a model
folder gets `FOLDER.sigstore.json` beside it (model_signing's manifest, DSSE-signed); `--attest` adds the in-toto
gate attestation. Refuses to sign anything after a failing verdict. Digests come from the run's
digest cache, so files hashed by `sbom` are not read again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from mlsec_actions import gha, outputs
from mlsec_actions.digests import DEFAULT_CACHE, DigestCache, scan_tree
from mlsec_actions.errors import ExitCode, InputError, UsageError
from mlsec_actions.signing import BACKENDS, attest, make_signer
from mlsec_actions.signing.interface import BUNDLE_SUFFIX, Signer, SigningError
from mlsec_actions.signing.statements import file_statement
from mlsec_actions.stages.base import Stage

STAGE_ID = "sign"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifacts", nargs="*", type=Path, metavar="ARTIFACT", help="files and model folders to sign")
    parser.add_argument("--backend", choices=BACKENDS, default="sigstore",
                        help="sigstore (keyless, GitHub OIDC), openpubkey (GitHub OIDC, no CA), key (PEM key), "
                             "kms (AWS KMS key) or vault (Vault transit key)")
    parser.add_argument("--key-source", default="", metavar="aws-secretsmanager:ID|vault-kv:MOUNT/PATH#FIELD",
                        help="key backend: fetch the PEM key from a secret store (default: "
                             "$MLSEC_KEY_SOURCE)")
    parser.add_argument("--kms-key", default="", metavar="ID|ARN|alias/NAME",
                        help="kms backend: the KMS key (default: $MLSEC_KMS_KEY)")
    parser.add_argument("--vault-key", default="", metavar="NAME",
                        help="vault backend: the transit key name (default: $MLSEC_VAULT_KEY)")
    parser.add_argument("--public-key-out", type=outputs.output_file, default=None,
                        help="kms/vault backends: write the signing key's PEM public key here (for verify)")
    parser.add_argument("--key", type=Path, default=None,
                        help="key backend: PEM private key file (default: $MLSEC_SIGNING_KEY)")
    parser.add_argument("--staging", action="store_true", help="sigstore backend: use Sigstore's staging instance")
    parser.add_argument("--trust-config", type=Path, default=None, metavar="FILE",
                        help="sigstore backend: sign with the instance this sigstore-python ClientTrustConfig "
                             "names (its Fulcio and Rekor), instead of Sigstore's public one")
    parser.add_argument("--verdict", type=Path, default=None,
                        help="gate verdict JSON; signing is refused when it says fail. It is signed too")
    parser.add_argument("--attest", action="store_true",
                        help="also write a signed in-toto attestation of the verdict (needs --verdict)")
    parser.add_argument("--attestation-out", type=outputs.output_file, default=attest.DEFAULT_OUT,
                        help="where --attest writes its bundle (default: %(default)s)")
    parser.add_argument("--sarif-dir", type=Path, default=None,
                        help="--attest: also make every *.sarif in this folder a subject")
    parser.add_argument("--base", type=Path, default=Path(),
                        help="folder attestation subject names are relative to (default: current folder)")
    parser.add_argument("--provenance", action="append", type=Path, default=[], metavar="FILE",
                        help="a training provenance statement (mlsec train) to sign as it is, once every output it "
                             "names matches the files under --base; writes FILE.sigstore.json (repeatable)")
    parser.add_argument("--digest-cache", type=Path, default=DEFAULT_CACHE,
                        help="digest cache shared with sbom (default: %(default)s)")


def _plan(args: argparse.Namespace, verdict: attest.Verdict | None) -> tuple[list[Path], list[Path]]:
    files: list[Path] = []
    folders: list[Path] = []
    for raw in args.artifacts:
        p = Path(raw)
        if p.name.endswith(BUNDLE_SUFFIX):
            raise UsageError(f"{p}: this is a bundle; sign the artifact it belongs to")
        if p.is_dir():
            folders.append(p)
        elif p.is_file():
            files.append(p)
        elif p.exists():
            raise InputError(p, "not a regular file or folder (FIFO, socket or device); refusing to sign it")
        else:
            raise InputError(p, "no such file or folder")
    if verdict is not None and verdict.path.resolve() not in {f.resolve() for f in files}:
        files.append(verdict.path)
    if not files and not folders and not args.provenance:
        raise UsageError("nothing to sign: name at least one ARTIFACT (or --verdict, --provenance)")
    return files, folders


def execute(args: argparse.Namespace) -> int:
    # Heavy imports (cryptography, model_signing) wait until signing really happens: every `mlsec` start-up
    # imports this module.
    from mlsec_actions.signing import bundle as bl
    from mlsec_actions.signing import model_folder
    from mlsec_actions.signing.verify import bundle_path

    verdict = attest.load_verdict(args.verdict) if args.verdict is not None else None
    if verdict is not None:
        attest.require_pass(verdict)  # before any key is loaded or token requested
    if args.attest and verdict is None:
        raise UsageError("--attest needs --verdict: the attestation is about the gate's verdict")
    files, folders = _plan(args, verdict)
    trees = {f: _folder_files(f) for f in folders}
    sarifs = sorted(args.sarif_dir.glob("*.sarif")) if args.attest and args.sarif_dir else []
    inputs = attest.verdict_inputs(verdict, args.base) if args.attest and verdict is not None else []
    if args.attest:  # every subject inside --base before a byte of any is read
        for p in [*files, *folders, *sarifs]:
            attest.subject_name(p, args.base)
    if args.trust_config is not None and (args.staging or args.backend != "sigstore"):
        raise UsageError("--trust-config is for the sigstore backend, instead of --staging")
    signer = make_signer(args.backend, key=args.key, staging=args.staging, kms_key=args.kms_key,
                         vault_key=args.vault_key, key_source=args.key_source,
                         trust_config=args.trust_config)  # a missing credential fails fast
    if args.public_key_out is not None:
        public = getattr(signer, "public_key", None)
        if public is None:
            raise UsageError(f"--public-key-out: the {args.backend} backend has no one public key to export")
        outputs.write_bytes(args.public_key_out, bl.public_pem(public))
    cache = DigestCache(args.digest_cache)
    # One parallel batch over everything this run needs; cached files are not read again.
    digests = cache.digests([*files, *(p for ps in trees.values() for p in ps), *sarifs, *(p for p, _ in inputs)])
    for path, recorded in inputs:
        if recorded and recorded != digests[path]:
            raise SigningError(f"{path} changed since the gate read it (verdict says sha256:{recorded[:16]}..., "
                               f"now sha256:{digests[path][:16]}...); re-run the gate")
    written: list[Path] = []
    for f in files:
        out = bundle_path(f)
        bl.write_bundle(out, signer.sign_statement(file_statement(f.resolve().name, digests[f])))
        written.append(out)
    for folder, paths in trees.items():
        rel = {p.relative_to(folder).as_posix(): digests[p] for p in paths}
        out = bundle_path(folder)
        bl.write_bundle(out, signer.sign_statement(model_folder.manifest_payload(folder, rel)))
        written.append(out)
    for statement_file in args.provenance or ():
        from mlsec_actions.training.signing import checked_statement

        out = bundle_path(Path(statement_file))
        bl.write_bundle(out, signer.sign_statement(checked_statement(Path(statement_file), args.base)))
        written.append(out)
    if args.attest and verdict is not None:
        written.append(_attest(args, signer, verdict, files, trees, [*sarifs, *(p for p, _ in inputs)], digests))
    cache.save()
    for w in written:
        print(f"sign: wrote {w}", file=sys.stderr)
    gha.set_output("bundles", "\n".join(str(w) for w in written))
    if args.attest:
        gha.set_output("attestation", str(args.attestation_out))
    gha.append_summary(f"### mlsec sign\n\n{len(written)} bundles written with the `{args.backend}` backend.")
    return ExitCode.OK


def _attest(args: argparse.Namespace, signer: Signer, verdict: attest.Verdict, files: list[Path],
            trees: dict[Path, list[Path]], extra: list[Path], digests: dict[Path, str]) -> Path:
    from mlsec_actions.signing import bundle as bl  # see execute()

    base: Path = args.base
    subjects = {attest.subject_name(p, base): digests[p] for p in [*files, *extra]}
    models: dict[str, list[str]] = {}
    for folder, paths in trees.items():
        names = [attest.subject_name(p, base) for p in paths]
        subjects.update(zip(names, (digests[p] for p in paths), strict=True))
        models[attest.subject_name(folder, base)] = names
    payload = attest.statement(subjects, verdict, attest.subject_name(verdict.path, base), models)
    out: Path = args.attestation_out
    out.parent.mkdir(parents=True, exist_ok=True)
    bl.write_bundle(out, signer.sign_statement(payload))
    # The bare predicate too, for `actions/attest` (predicate-path) to sign into GitHub's attestation store.
    predicate = attest.predicate_path(out)
    predicate.write_text(json.dumps(json.loads(payload)["predicate"], indent=2) + "\n", encoding="utf-8")
    gha.set_output("predicate", str(predicate))
    return out


def _folder_files(folder: Path) -> list[Path]:
    """A model folder's regular files; a symlink, FIFO or device in it is refused (model_signing's default)."""
    from mlsec_actions.signing import model_folder  # see execute()

    tree = scan_tree(folder, model_folder.IGNORED)
    if tree.others:
        name, what = tree.others[0]
        more = f" (and {len(tree.others) - 1} more)" if len(tree.others) > 1 else ""
        raise InputError(folder / name, f"{what}{more}: a model folder to sign may hold only regular files and "
                                        "folders; replace links by the files they point to")
    for f in tree.files:
        try:
            f.relative_to(folder).as_posix().encode("utf-8")
        except UnicodeEncodeError:
            shown = os.fsencode(f).decode("utf-8", "backslashreplace")
            raise InputError(shown, "file name is not valid UTF-8; a model_signing manifest names files in UTF-8, "
                                    "rename it") from None
    return list(tree.files)


STAGE = Stage(id=STAGE_ID, summary="sign files, model folders and the gate attestation (sigstore, openpubkey, key)",
              configure=configure, execute=execute,
              locks=lambda args: (Path(args.attestation_out).parent,) if args.attest else ())
