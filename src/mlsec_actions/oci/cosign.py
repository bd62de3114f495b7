"""cosign's signature layout in a registry, and OCI 1.1 referrers, built and read with `client`.

Facts taken from cosign and the OCI specs (no code copied):
- tags `sha256-<hex>.sig` / `.att` in the image's repository (sigstore/cosign pkg/oci/remote/remote.go,
  `normalize`, commit 27ea6821adadf80aeff4592be969f45cb8096411);
- a signature is one layer of media type `application/vnd.dev.cosign.simplesigning.v1+json` whose blob is the
  simple-signing payload and whose annotation `dev.cosignproject.cosign/signature` is the base64 signature over
  those exact bytes (pkg/types/media.go at 5a8e573634dcbb468a343dfab0a5db17edeaabe2, pkg/oci/static/signature.go
  at 032f003c728f93d078d07bcbc0b503ae32fd89d7); the payload is `{"critical": {"identity": {"docker-reference":
  REPO}, "image": {"docker-manifest-digest": DIGEST}, "type": "cosign container image signature"}, "optional":
  ...}` (sigstore/sigstore pkg/signature/payload/payload.go at 3ac7ff576199c847beccdc73c0e24bbd4c8bb45e);
- an attestation is a layer `application/vnd.dsse.envelope.v1+json` holding the DSSE envelope, with an empty
  signature annotation and a `predicateType` annotation (cosign's attest command);
- several signatures are several layers of the one manifest: signing appends a layer, never replaces one;
- OCI 1.1 referrers: a manifest with `subject` and `artifactType`; a registry without the referrers API (the
  distribution 2.8 registry) gets the fallback tag `sha256-<hex>`, an image index of referrer descriptors
  (opencontainers/distribution-spec spec.md, "Referrers Tag Schema"). Sigstore bundles are referrers of
  artifactType `application/vnd.dev.sigstore.bundle.v0.3+json` with annotations `dev.sigstore.bundle.content` and
  `dev.sigstore.bundle.predicateType`, as cosign's new bundle format writes them.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlsec_actions.oci.client import OCI_INDEX, OCI_MANIFEST, Client, RegistryError, sha256
from mlsec_actions.oci.reference import DIGEST, Reference

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_LAYER = "application/vnd.dsse.envelope.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PREDICATE_ANNOTATION = "predicateType"
BUNDLE_ARTIFACT = "application/vnd.dev.sigstore.bundle.v0.3+json"
BUNDLE_CONTENT = "dev.sigstore.bundle.content"
BUNDLE_PREDICATE = "dev.sigstore.bundle.predicateType"
COSIGN_TYPE = "cosign container image signature"
MAX_LAYER_BYTES = 4 * 1024 * 1024
"""A signature payload or envelope is kilobytes; an SBOM attestation a few MiB at most."""
MAX_LAYERS = 256
"""Signatures kept on one tag; a registry serving more is refused (cosign has no limit; this bounds the reads)."""
MAX_TOTAL_BYTES = 64 * 1024 * 1024
"""All the layers (or referrer bundles) read for one tag together: a registry cannot make a check hold more."""


def _sized(desc: dict[str, Any], where: str, budget: list[int]) -> int:
    """A descriptor's declared size, checked against the per-blob limit and what is left of the budget."""
    size = desc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_LAYER_BYTES:
        raise RegistryError(f"{where}: a layer declares size {size!r} (at most {MAX_LAYER_BYTES} bytes)")
    budget[0] -= size
    if budget[0] < 0:
        raise RegistryError(f"{where}: the layers add up to more than {MAX_TOTAL_BYTES} bytes")
    return size


def _fetch(client: Client, repo: str, digest: str, size: int) -> bytes:
    data = client.get_blob(repo, digest, limit=size)
    if len(data) != size:
        raise RegistryError(f"{repo}@{digest}: the blob is {len(data)} bytes, its descriptor says {size}")
    return data


@dataclass(frozen=True)
class Layer:
    """One signature or attestation layer of a `.sig`/`.att` manifest."""

    media_type: str
    """`SIMPLE_SIGNING` or `DSSE_LAYER`."""
    data: bytes
    """The blob (payload or DSSE envelope), digest-checked."""
    annotations: Mapping[str, str]
    """The layer's annotations (the signature for a `.sig` layer)."""


def tag_for(digest: str, suffix: str) -> str:
    """`sha256:abc` -> `sha256-abc.sig` (suffix `.sig`/`.att`) or `sha256-abc` (suffix "")."""
    if not DIGEST.fullmatch(digest):
        raise RegistryError(f"{digest!r} is not a sha256 digest")
    return digest.replace(":", "-") + suffix


def simple_signing_payload(ref: Reference, digest: str) -> bytes:
    """The bytes a cosign `.sig` signature is over: which repository and which manifest digest."""
    doc = {"critical": {"identity": {"docker-reference": ref.name}, "image": {"docker-manifest-digest": digest},
                        "type": COSIGN_TYPE}, "optional": None}
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


def read_simple_signing(payload: bytes) -> tuple[str, str]:
    """(docker-reference, docker-manifest-digest) of a simple-signing payload; ValueError when it is not one."""
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError):
        raise ValueError("the signed payload is not JSON") from None
    critical = doc.get("critical") if isinstance(doc, dict) else None
    identity = critical.get("identity") if isinstance(critical, dict) else None
    image = critical.get("image") if isinstance(critical, dict) else None
    if not isinstance(critical, dict) or critical.get("type") != COSIGN_TYPE:
        raise ValueError(f"the signed payload is not a {COSIGN_TYPE!r}")
    name = identity.get("docker-reference") if isinstance(identity, dict) else None
    digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    if not isinstance(name, str) or not isinstance(digest, str):
        raise ValueError("the signed payload names no docker-reference and docker-manifest-digest")
    return name, digest


def require_simple_signing(payload: bytes) -> None:
    """What a backend's image signature may be over: a simple-signing payload, nothing else (SigningError)."""
    from mlsec_actions.signing.interface import SigningError

    try:
        read_simple_signing(payload)
    except ValueError as e:
        raise SigningError(f"refusing to sign: {e}") from None


# -- .sig / .att manifests ----------------------------------------------------------------------------------------
def read_layers(client: Client, repo: str, tag: str, media_type: str) -> list[Layer]:
    """The layers of media type `media_type` on a signature tag (empty when the tag does not exist)."""
    manifest = client.get_manifest(repo, tag, missing_ok=True)
    if manifest is None:
        return []
    layers = manifest.json().get("layers")
    if not isinstance(layers, list) or len(layers) > MAX_LAYERS:
        raise RegistryError(f"{repo}:{tag}: not a signature manifest (layers missing or more than {MAX_LAYERS})")
    out: list[Layer] = []
    budget = [MAX_TOTAL_BYTES]
    for desc in layers:
        if not isinstance(desc, dict) or desc.get("mediaType") != media_type:
            continue
        annotations = desc.get("annotations") or {}
        if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
            raise RegistryError(f"{repo}:{tag}: a layer's annotations are not strings")
        digest = desc.get("digest")
        if not isinstance(digest, str):
            raise RegistryError(f"{repo}:{tag}: a layer has no digest")
        size = _sized(desc, f"{repo}:{tag}", budget)
        out.append(Layer(media_type, _fetch(client, repo, digest, size), annotations))
    return out


def _existing_layers(client: Client, repo: str, tag: str) -> list[dict[str, Any]]:
    manifest = client.get_manifest(repo, tag, missing_ok=True)
    if manifest is None:
        return []
    layers = manifest.json().get("layers")
    if not isinstance(layers, list) or not all(isinstance(d, dict) and isinstance(d.get("digest"), str)
                                               and isinstance(d.get("size"), int) for d in layers):
        raise RegistryError(f"{repo}:{tag}: exists but is not a signature manifest; refusing to overwrite it")
    return layers


def append_layers(client: Client, repo: str, tag: str, new: list[Layer],
                  same_signer: Callable[[Layer], bool] | None = None) -> str:
    """Add layers to the manifest at `tag` (made when absent), keeping every layer it had, in one manifest update;
    the new manifest digest. A layer of the same payload that `same_signer` accepts (already signed by this key)
    is not added twice."""
    layers = _existing_layers(client, repo, tag)
    before = len(layers)
    for layer in new:
        digest = client.put_blob(repo, layer.data)
        desc = {"mediaType": layer.media_type, "size": len(layer.data), "digest": digest,
                "annotations": dict(layer.annotations)}
        twins = [d for d in layers if d.get("digest") == digest and isinstance(d.get("annotations"), dict)]
        if same_signer is not None and any(same_signer(Layer(layer.media_type, layer.data, d["annotations"]))
                                           for d in twins):
            continue
        if desc not in layers:
            layers.append(desc)
    if before and len(layers) == before:  # nothing new: the tag stays as it is
        return sha256(client.get_manifest(repo, tag).data)  # type: ignore[union-attr]
    # The config cosign writes: an empty image whose rootfs lists the layers (uncompressed = stored bytes).
    config = json.dumps({"architecture": "", "created": "0001-01-01T00:00:00Z",
                         "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
                         "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in layers]}, "config": {}},
                        separators=(",", ":")).encode("utf-8")
    config_digest = client.put_blob(repo, config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": config_digest},
                           "layers": layers}, separators=(",", ":")).encode("utf-8")
    client.put_manifest(repo, tag, manifest, OCI_MANIFEST)
    return sha256(manifest)


def signature_layer(payload: bytes, signature: bytes) -> Layer:
    return Layer(SIMPLE_SIGNING, payload, {SIGNATURE_ANNOTATION: base64.b64encode(signature).decode("ascii")})


def attestation_layer(envelope: Mapping[str, Any], predicate_type: str) -> Layer:
    data = json.dumps(envelope, separators=(",", ":")).encode("utf-8")
    return Layer(DSSE_LAYER, data, {SIGNATURE_ANNOTATION: "", PREDICATE_ANNOTATION: predicate_type})


def layer_signature(layer: Layer) -> bytes:
    """The decoded signature annotation of a `.sig` layer (ValueError when missing or not base64)."""
    text = layer.annotations.get(SIGNATURE_ANNOTATION, "")
    try:
        sig = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the signature annotation is not base64") from None
    if not sig:
        raise ValueError("the layer has no signature annotation")
    return sig


# -- OCI 1.1 referrers --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Subject:
    """The manifest a referrer is about."""

    digest: str
    """Its `sha256:` digest."""
    media_type: str
    """Its media type."""
    size: int
    """Its size in bytes."""


@dataclass(frozen=True)
class Referrer:
    """A Sigstore bundle to store as a referrer."""

    bundle: bytes
    """The bundle JSON."""
    content: str
    """`dsse-envelope` or `message-signature` (the `dev.sigstore.bundle.content` annotation)."""
    predicate_type: str
    """The statement's predicate type (the `dev.sigstore.bundle.predicateType` annotation)."""


def push_referrers(client: Client, repo: str, subject: Subject, items: list[Referrer]) -> list[str]:
    """Push Sigstore bundles as referrers of `subject`; when the registry has no referrers API, extend the fallback
    tag's index once for all of them. Returns the referrer manifests' digests."""
    empty = b"{}"
    empty_digest = client.put_blob(repo, empty)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    digests: list[str] = []
    unindexed: list[dict[str, Any]] = []
    for item in items:
        annotations = {BUNDLE_CONTENT: item.content, BUNDLE_PREDICATE: item.predicate_type,
                       "org.opencontainers.image.created": created}
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": BUNDLE_ARTIFACT,
            "config": {"mediaType": OCI_EMPTY, "size": len(empty), "digest": empty_digest},
            "layers": [{"mediaType": BUNDLE_ARTIFACT, "size": len(item.bundle),
                        "digest": client.put_blob(repo, item.bundle)}],
            "subject": {"mediaType": subject.media_type, "size": subject.size, "digest": subject.digest},
            "annotations": annotations}, separators=(",", ":")).encode("utf-8")
        digest = sha256(manifest)
        headers = client.put_manifest(repo, digest, manifest, OCI_MANIFEST)
        digests.append(digest)
        if headers.get("OCI-Subject") != subject.digest:  # no referrers API: the fallback tag lists it
            unindexed.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest),
                              "artifactType": BUNDLE_ARTIFACT, "annotations": annotations})
    if unindexed:
        tag = tag_for(subject.digest, "")
        index = client.get_manifest(repo, tag, missing_ok=True)
        entries = index.json().get("manifests", []) if index is not None else []
        if not isinstance(entries, list):
            raise RegistryError(f"{repo}:{tag}: the referrers fallback tag is not an image index")
        added = {e["digest"] for e in unindexed}
        entries = [e for e in entries if isinstance(e, dict) and e.get("digest") not in added] + unindexed
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries},
                          separators=(",", ":")).encode("utf-8")
        client.put_manifest(repo, tag, body, OCI_INDEX)
    return digests


def push_referrer(client: Client, repo: str, subject: Subject, bundle: bytes, content: str,
                  predicate_type: str) -> str:
    """One bundle as a referrer (`push_referrers` of one)."""
    return push_referrers(client, repo, subject, [Referrer(bundle, content, predicate_type)])[0]


def read_referrers(client: Client, repo: str, digest: str) -> tuple[list[bytes], list[str]]:
    """Every Sigstore bundle that refers to `digest` (referrers API, else the fallback tag), each manifest checked to
    name `digest` as its subject, each blob digest-checked; and a problem line per listed referrer that is about
    another manifest."""
    index = client.referrers(repo, digest)
    if index is None:
        fallback = client.get_manifest(repo, tag_for(digest, ""), missing_ok=True)
        index = fallback.json() if fallback is not None else {"manifests": []}
    entries = index.get("manifests")
    if not isinstance(entries, list) or len(entries) > MAX_LAYERS:
        raise RegistryError(f"{repo}: the referrers of {digest} are not an index of at most {MAX_LAYERS} entries")
    out: list[bytes] = []
    problems: list[str] = []
    budget = [MAX_TOTAL_BYTES]
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("artifactType") != BUNDLE_ARTIFACT:
            continue
        ref_digest = entry.get("digest")
        if not isinstance(ref_digest, str):
            raise RegistryError(f"{repo}: a referrer of {digest} has no digest")
        manifest = client.get_manifest(repo, ref_digest)
        assert manifest is not None
        doc = manifest.json()
        subject = doc.get("subject")
        if not isinstance(subject, dict) or subject.get("digest") != digest:
            named = subject.get("digest") if isinstance(subject, dict) else None
            problems.append(f"referrer {ref_digest} is about {named!r}, not {digest}")
            continue
        layers = doc.get("layers")
        if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict) \
                or not isinstance(layers[0].get("digest"), str):
            raise RegistryError(f"{repo}@{ref_digest}: a bundle referrer must have exactly one layer")
        size = _sized(layers[0], f"{repo}@{ref_digest}", budget)
        out.append(_fetch(client, repo, layers[0]["digest"], size))
    return out, problems
