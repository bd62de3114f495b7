"""What publish may upload: only artifacts whose bundles and gate attestation verify now, after a passing verdict.

Verification is done here with the project's own verify code (`signing/verify.py`), never taken from a file
that says it passed: the caller names the expected key or identity, and the bundles, the attestation and the
files on disk must all check out. Then every file is hashed once more; those digests are what is published.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from pathlib import Path

from mlsec_actions.digests import hash_files, scan_tree
from mlsec_actions.errors import InputError
from mlsec_actions.supply.registry import Extras, Item, manifest_digest


@dataclass(frozen=True)
class Plan:
    """The verified set."""

    items: tuple[Item, ...]
    """Every file, with its digest."""
    extras: Extras
    """Bundles, attestation, SBOM, model card."""
    digest: str
    """The set's manifest digest."""
    sbom_sha: str | None
    """The SBOM's SHA-256, when given."""


@dataclass(frozen=True)
class Object:
    """One object for an object store (S3, Nexus), relative to the release path."""

    name: str
    """Its name below the release path (POSIX)."""
    path: Path
    """The file on disk."""
    sha256: str
    """Its SHA-256."""


def check_name(name: str, source: object) -> str:
    """`name` if every `/`-separated segment is a plain name (not empty, `.` or `..`; no backslash or control
    character), else InputError naming `source`: such a name could leave the release path on a server that
    normalises it."""
    for segment in name.split("/"):
        if segment in ("", ".", "..") or "\\" in segment or any(ord(c) < 0x20 or ord(c) == 0x7F for c in segment):
            raise InputError(source, f"{name[:100]!r} is not published (an empty, '.' or '..' part, a backslash "
                                     "or a control character)")
    return name


def objects(plan: Plan) -> tuple[Object, ...]:
    """Everything an object store gets: each file at its name, each bundle beside as `NAME.sigstore.json`, the
    gate attestation and the SBOM by their file names. A hostile name, or two objects with one name and other
    bytes, is exit 2."""
    todo = [Object(i.rel, i.path, i.sha256) for i in plan.items]
    extras = [(f"{name}.sigstore.json", bundle) for name, bundle in plan.extras.bundles]
    extras.append((plan.extras.attestation.name, plan.extras.attestation))
    if plan.extras.sbom is not None:
        extras.append((plan.extras.sbom.name, plan.extras.sbom))
    digests = hash_files([p for _, p in extras])
    todo.extend(Object(name, p, digests[p]) for name, p in extras)
    seen: dict[str, str] = {}
    out: list[Object] = []
    for o in todo:
        check_name(o.name, o.path)
        if o.name in seen and seen[o.name] != o.sha256:
            raise InputError(o.path, f"two objects with other bytes would be published as {o.name[:100]!r}")
        if o.name not in seen:  # the same bytes twice (an SBOM that is also an artifact) go up once
            seen[o.name] = o.sha256
            out.append(o)
    return tuple(out)


def _refuse(message: str) -> None:
    from mlsec_actions.stages.publish import PublishError

    raise PublishError(message)


def _files(artifact: Path) -> list[tuple[str, Path]]:
    if artifact.is_file():
        return [(artifact.name, artifact)]
    from mlsec_actions.signing import model_folder

    tree = scan_tree(artifact, model_folder.IGNORED)
    if tree.others:
        raise InputError(artifact / tree.others[0][0], f"{tree.others[0][1]}: not published (regular files only)")
    return [(f"{artifact.name}/{f.relative_to(artifact).as_posix()}", f) for f in tree.files]


def verified(args: argparse.Namespace) -> Plan:
    """Check the verdict, every bundle and the attestation; refuse (exit 1) on any failure."""
    from mlsec_actions.signing import attest
    from mlsec_actions.signing.verify import bundle_path, verify_all
    from mlsec_actions.stages import verify as verify_stage

    keys = [args.public_key] if args.public_key is not None else []
    verifiers = verify_stage.trusted_verifiers(public_keys=keys, identity=args.identity, issuer=args.issuer,
                                               offline=True, trust_policy=args.trust_policy)  # bad input: exit 2
    verdict = attest.load_verdict(args.verdict)
    if not verdict.passed:
        _refuse(f"refusing to publish: the gate verdict in {verdict.path} is 'fail'")
    artifacts = [Path(a) for a in args.artifacts]
    checks = verify_all(artifacts, [Path(args.attestation)], verifiers, Path(args.base))
    failed = [c for c in checks if not c.ok]
    if failed:
        _refuse(f"refusing to publish: verify failed for {failed[0].target}: {failed[0].message}"
                + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""))
    named: list[tuple[str, Path]] = [pair for a in artifacts for pair in _files(a)]
    rels = [r for r, _ in named]
    if len(set(rels)) != len(rels):
        _refuse("refusing to publish: two artifacts have the same name")
    digests = hash_files([p for _, p in named])
    items = tuple(Item(rel, p, digests[p]) for rel, p in named)
    bundles = tuple((a.name, bundle_path(a)) for a in artifacts)
    card = ""
    if args.model_card is not None:
        from mlsec_actions import inputs

        card = inputs.read_regular(Path(args.model_card), "model card", 64 * 1024).decode("utf-8", "replace")
    sbom = Path(args.sbom) if args.sbom is not None else None
    sbom_sha = hashlib.sha256(sbom.read_bytes()).hexdigest() if sbom is not None else None
    extras = Extras(bundles=bundles, attestation=Path(args.attestation), sbom=sbom, model_card=card)
    return Plan(items, extras, manifest_digest(items), sbom_sha)
