"""CycloneDX 1.6 ML-BOM: the model (hashes per file), its model card, datasets, Python dependencies,
the scanners that ran, and the gate verdict, validated against the 1.6 schema before it is written.

Built with cyclonedx-python-lib; the `modelCard` (which the library does not model) is attached to
the serialized JSON, and the result goes through the library's strict JSON validator.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlsec_actions import __version__
from mlsec_actions.digests import DigestCache, walk_files
from mlsec_actions.errors import InputError, MlsecError
from mlsec_actions.sbom import depfiles, discover, licensing, modelcard
from mlsec_actions.signing.attest import Verdict


class SbomInvalid(MlsecError):
    """The generated BOM failed schema validation (a bug, or bad model-card input); nothing was written."""


@dataclass(frozen=True)
class SbomRequest:
    """What `mlsec sbom` was asked to describe."""

    root: Path
    """The project folder: dependency files are read from it; paths are named relative to it."""
    models: Sequence[Path] = ()
    """Model files or folders."""
    datasets: Sequence[Path] = ()
    """Dataset files or folders."""
    model_card: Path | None = None
    """Model-card YAML (see `modelcard`)."""
    metrics: Path | None = None
    """The `evaluate` stage's metrics JSON."""
    verdict: Verdict | None = None
    """The gate verdict, recorded as BOM properties and its tools in `metadata.tools`."""
    extra_tools: Sequence[tuple[str, str]] = field(default_factory=tuple)
    """(name, version) of further tools to list."""
    discover: bool = True
    """Also find models and datasets in `root` by content (`discover.find`), beside the explicit ones."""
    licenses: licensing.Inventory | None = None
    """code-scan's licence inventory (`--licenses-from`): dependencies' licences, and packages of other files."""


def _name(path: Path, root: Path) -> str:
    r = path.resolve()
    return r.relative_to(root.resolve()).as_posix() if r.is_relative_to(root.resolve()) else r.name


def _files_component(path: Path, root: Path, kind: Any, cache: DigestCache, ref: str, **extra: Any) -> Any:
    from cyclonedx.model import HashAlgorithm, HashType
    from cyclonedx.model.component import Component, ComponentType

    def hashes(digest: str) -> list[Any]:
        return [HashType(alg=HashAlgorithm.SHA_256, content=digest)]

    if path.is_file():
        return Component(type=kind, name=_name(path, root), bom_ref=ref, hashes=hashes(cache.digest(path)), **extra)
    if not path.is_dir():
        raise InputError(path, "no such file or folder")
    tree = cache.tree(path, (".git",))
    subs = [Component(type=ComponentType.FILE, name=rel, bom_ref=f"{ref}/{rel}", hashes=hashes(d))
            for rel, d in sorted(tree.items())]
    return Component(type=kind, name=_name(path, root), bom_ref=ref, components=subs, **extra)


def build(req: SbomRequest, cache: DigestCache) -> dict[str, Any]:
    """The BOM as a JSON-ready dict, validated against CycloneDX 1.6."""
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6

    root_name = req.root.resolve().name
    app = Component(type=ComponentType.APPLICATION, name=root_name, bom_ref=f"project:{root_name}")
    bom = Bom()
    bom.metadata.component = app
    found = discover.find(req.root, exclude=[*req.models, *req.datasets]) if req.discover else None
    model_paths = [(m, "--model") for m in req.models] + [(m, "content") for m in (found.models if found else ())]
    data_paths = [(d, "--dataset") for d in req.datasets] + [(d, "content") for d in (found.datasets if found else ())]
    # Hash everything in one parallel batch first; the components below then hit the cache.
    targets = [p for p, _ in [*model_paths, *data_paths]]
    cache.digests([f for t in targets for f in ([t] if t.is_file() else walk_files(t) if t.is_dir() else [])])

    def how(by: str) -> list[Any]:
        return [Property(name="mlsec:found-by", value=by)]

    data = [_files_component(d, req.root, ComponentType.DATA, cache, f"data:{_name(d, req.root)}",
                             properties=how(by)) for d, by in data_paths]
    models = [_files_component(m, req.root, ComponentType.MACHINE_LEARNING_MODEL, cache,
                               f"model:{_name(m, req.root)}", properties=how(by)) for m, by in model_paths]
    for note in found.skipped if found else ():
        bom.metadata.properties.add(Property(name="mlsec:sbom:not-searched", value=note))
    not_read: list[str] = []
    deps = _dependencies(req, depfiles.collect(req.root, not_read), not_read)
    for note in not_read:
        bom.metadata.properties.add(Property(name="mlsec:sbom:not-read", value=note))
    if req.licenses is not None:
        bom.metadata.properties.add(Property(name="mlsec:sbom:licenses-from", value=req.licenses.source))
    for c in [*models, *data, *deps]:
        bom.components.add(c)
    bom.register_dependency(app, [*models, *data, *deps])
    for m in models:
        bom.register_dependency(m, data)
    tools = [("mlsec-actions", __version__), *req.extra_tools]
    if req.verdict is not None:
        tools += [(str(t.get("name")), str(t.get("version") or "unknown"))
                  for t in req.verdict.doc.get("tools") or [] if isinstance(t, dict) and t.get("name")]
        for name, value in _verdict_properties(req.verdict):
            bom.metadata.properties.add(Property(name=name, value=value))
    for name, version in dict(tools).items():
        bom.metadata.tools.components.add(Component(type=ComponentType.APPLICATION, name=name, version=version))
    doc: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    meta = modelcard.load_card(req.model_card) if req.model_card else {}
    card = _card(req, meta, {_name(p, req.root): f"data:{_name(p, req.root)}" for p, _ in data_paths})
    if card:
        for comp in doc.get("components", []):
            if comp.get("type") == "machine-learning-model":
                comp["modelCard"] = card
                comp.update({k: str(meta[k]) for k in ("version", "description") if meta.get(k) not in (None, "")})
    _validate(doc)
    return doc


def _dependencies(req: SbomRequest, declared: list[depfiles.Dependency], notes: list[str]) -> list[Any]:
    """A component per declared Python dependency, with its licences from the inventory when one was given,
    then one per package of the inventory that no dependency file of the root declares."""
    from cyclonedx.model import Property
    from cyclonedx.model.component import Component, ComponentType
    from packageurl import PackageURL

    inv = req.licenses
    by_name: dict[str, list[Any]] = {}
    for pkg in inv.packages if inv else ():
        key = licensing.python_key(pkg)
        if key is not None:
            by_name.setdefault(key, []).append(pkg)
    used: set[Any] = set()
    out: list[Any] = []
    for d in declared:
        same = [p for p in by_name.get(d.name, []) if not d.version or not p.version or p.version == d.version]
        used.update(same)
        lics = [lic for p in same[:1] for lic in licensing.component_licenses(p)]
        out.append(Component(type=ComponentType.LIBRARY, name=d.name, version=d.version, bom_ref=f"pypi:{d.name}",
                             purl=PackageURL("pypi", name=d.name, version=d.version), licenses=lics,
                             properties=[Property(name="mlsec:declared-in", value=d.source)]))
    refs = {c.bom_ref.value for c in out}
    for pkg in inv.packages if inv else ():
        kind = licensing.purl_type(pkg)
        name = _purl_name(pkg, kind)
        ref = f"{kind}:{name}@{pkg.version}" if pkg.version else f"{kind}:{name}"
        if pkg in used or ref in refs:
            continue
        refs.add(ref)
        out.append(Component(type=ComponentType.LIBRARY, name=name, version=pkg.version or None, bom_ref=ref,
                             purl=PackageURL(kind, name=name, version=pkg.version or None),
                             licenses=licensing.component_licenses(pkg),
                             properties=[Property(name="mlsec:declared-in", value=pkg.path),
                                         Property(name="mlsec:found-by", value="code-scan (trivy)")]))
    if inv is not None and not inv.complete:
        notes.append(f"{inv.source}: the licence inventory is incomplete (code-scan's trivy did not finish)")
    return out


def _purl_name(pkg: Any, kind: str) -> str:
    return depfiles.normalize(pkg.name) if kind == "pypi" else str(pkg.name)


def _verdict_properties(verdict: Verdict) -> list[tuple[str, str]]:
    doc = verdict.doc
    out = [("mlsec:gate:verdict", str(doc.get("verdict"))),
           ("mlsec:gate:violations", str(len(doc.get("violations") or [])))]
    policy = doc.get("policy")
    if isinstance(policy, dict):
        out += [(f"mlsec:gate:policy:{k}", str(policy[k])) for k in ("path", "sha256") if policy.get(k)]
    counts = doc.get("counts")
    if isinstance(counts, dict):
        out += [(f"mlsec:gate:count:{k}", json.dumps(v) if not isinstance(v, str) else v)
                for k, v in sorted(counts.items())]
    return out


def _card(req: SbomRequest, card: dict[str, Any], dataset_refs: dict[str, str]) -> dict[str, Any]:
    metrics = modelcard.load_metrics(req.metrics) if req.metrics else []
    if not card and not metrics:
        return {}
    return modelcard.build(card, metrics, dataset_refs, req.model_card or req.metrics)


def _validate(doc: dict[str, Any]) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc))
    if error is not None:
        raise SbomInvalid(f"generated SBOM is not valid CycloneDX 1.6, not written: {error}")


def write(doc: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
