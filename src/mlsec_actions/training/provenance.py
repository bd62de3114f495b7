"""The training run's provenance: an in-toto Statement v1 with a SLSA v1 provenance predicate.

Subjects are the regular files the run wrote to its declared output folder, by SHA-256, named relative to the
subject base (the work tree). `buildDefinition.externalParameters` holds what the caller chose (the command,
parameters, output folder, declared inputs); `resolvedDependencies` what the run was made from (the commit,
each input file by digest, the interpreter and its packages); `runDetails` who ran it, when, and how it ended.
The build type `statements.TRAIN_BUILD_TYPE` separates it from every other builder's SLSA provenance.
Reference: docs/train.md#provenance-format.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from mlsec_actions import __version__
from mlsec_actions.signing.statements import STATEMENT_TYPE, TRAIN_BUILD_TYPE, Kind
from mlsec_actions.training.environment import Interpreter

_SHA256 = re.compile(r"[0-9a-f]{64}")
BUILDER_ID = "https://github.com/mlsec-actions/mlsec-actions/train"
"""`runDetails.builder.id` outside GitHub Actions (there, the workflow's ref)."""


@dataclass(frozen=True)
class RunRecord:
    """Everything the statement says about one training run."""

    command: tuple[str, ...]
    """The command as run (argument list, no shell)."""
    parameters: tuple[tuple[str, str], ...]
    """`--param KEY=VALUE` pairs, as given."""
    output_dir: str
    """The declared output folder, relative to the subject base."""
    outputs: Mapping[str, str]
    """Output file name (relative to the subject base) -> hex SHA-256."""
    inputs: Mapping[str, str]
    """Declared input file name (relative to the subject base, else as given) -> hex SHA-256, read before the run."""
    commit: str | None
    """The git commit of the work tree, when known."""
    interpreter: Interpreter | None
    """The training interpreter and its packages, when described."""
    started: dt.datetime
    """When the command started (UTC)."""
    finished: dt.datetime
    """When it ended (UTC)."""
    exit_code: int | None
    """Its exit code; None when it was stopped (time limit)."""
    timeout: float
    """The time limit given, seconds."""
    run_id: str | None
    """This pipeline run's id (`MLSEC_RUN_ID`)."""
    log_sha256: str | None
    """Digest of the captured log (standard output and error), when written."""
    dropped_env: tuple[str, ...]
    """Names of environment variables withheld from the command (never values)."""
    reproducible: bool | None = None
    """`--check-reproducible`: whether a second run gave the same outputs; None when not checked."""
    reads: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)
    """Files of the work tree the traced run read, by role (`code`, `pinned`, `undeclared`): name -> SHA-256."""
    hosts: tuple[str, ...] | None = None
    """Internet endpoints outside loopback the run reached; None when the network was not observed."""


def _time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _env(name: str) -> str | None:
    """An environment variable as escaped text (the environment is bytes; its undecodable ones are surrogates)."""
    value = os.environ.get(name)
    return escaped(value) if value else None


def _server() -> str | None:
    """`GITHUB_SERVER_URL` in a URI's case normal form (scheme and host lowercase); None when unset or odd."""
    parts = urlsplit(_env("GITHUB_SERVER_URL") or "")
    if parts.scheme.lower() not in ("http", "https") or not re.fullmatch(r"[A-Za-z0-9.-]+(:[0-9]+)?", parts.netloc):
        return None
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{quote(parts.path.rstrip('/'), safe='/')}"


def _repository_uri() -> str | None:
    server, repo = _server(), _env("GITHUB_REPOSITORY")
    return f"git+{server}/{quote(repo, safe='/')}" if server and repo else None


def _builder() -> dict[str, Any]:
    ref = _env("GITHUB_WORKFLOW_REF")
    # A branch name may hold characters a URI may not (`"`, `{`, `%`...): percent-encoded.
    workflow = quote(ref, safe="/@:~!$&'()*+,;=") if ref else None
    return {"id": f"{_server() or 'https://github.com'}/{workflow}" if workflow else BUILDER_ID,
            "version": {"mlsec-actions": __version__}}


def _purl(kind: str, name: str, version: str) -> str:
    """A package URL; name and version come from the interpreter's own report, so every reserved character
    (`+` of a local version, a space, `/`, `@`) is percent-encoded."""
    return f"pkg:{kind}/{quote(escaped(name), safe='')}@{quote(escaped(version), safe='')}"


def _pypi(name: str) -> str:
    """PyPI's normalised project name (PEP 503), as purl's `pypi` type spells it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _dependencies(record: RunRecord) -> list[dict[str, Any]]:
    deps: list[dict[str, Any]] = []
    if record.commit:
        uri = _repository_uri()
        deps.append({**({"uri": uri} if uri else {"name": "source"}), "digest": {"gitCommit": record.commit}})
    deps.extend({"name": escaped(name), "digest": {"sha256": digest}, "annotations": {"role": "input"}}
                for name, digest in sorted(record.inputs.items()))
    for role in ("code", "pinned", "undeclared"):
        deps.extend({"name": escaped(name), "digest": {"sha256": digest}, "annotations": {"role": role}}
                    for name, digest in sorted(record.reads.get(role, {}).items()))
    if record.interpreter is not None:
        py = record.interpreter
        deps.append({"uri": _purl("generic", py.implementation.lower(), py.python), "name": "python",
                     "annotations": {"executable": escaped(py.executable)}})
        deps.extend({"uri": _purl("pypi", _pypi(name), version), "name": escaped(name)}
                    for name, version in py.packages)
    return deps


def _runner() -> dict[str, str]:
    """The runner as its environment names it. GitHub publishes no digest of a runner image, so it is an
    internal parameter (set by the platform), not a resolved dependency (which needs a uri or digest)."""
    return {k: v for k in ("ImageOS", "ImageVersion", "RUNNER_OS", "RUNNER_ARCH") if (v := _env(k))}


def _fact(name: str, facts: dict[str, Any]) -> dict[str, Any]:
    """A byproduct that is a fact of the run rather than a file. A resource descriptor needs one of uri, digest
    or content: the facts' JSON is its content; the same facts are its annotations, for policies to read."""
    data = json.dumps(facts, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return {"name": name, "content": base64.b64encode(data).decode("ascii"), "mediaType": "application/json",
            "annotations": facts}


def statement(record: RunRecord) -> dict[str, Any]:
    """The statement as data (`encode` gives the bytes that are signed). Every name is escaped text (a file
    name that is not UTF-8 shows its bytes as `\\xNN`), so the statement always encodes."""
    byproducts: list[dict[str, Any]] = [_fact("exit-code", {
        "exitCode": record.exit_code, "stopped": record.exit_code is None,
        "seconds": round((record.finished - record.started).total_seconds(), 3)})]
    if record.log_sha256:
        byproducts.append({"name": "train.log", "digest": {"sha256": record.log_sha256}})
    byproducts.append(_fact("network", {"observed": False} if record.hosts is None
                            else {"observed": True, "hosts": names(record.hosts)}))
    if record.reproducible is not None:
        byproducts.append(_fact("reproducibility", {"sameOutputs": record.reproducible}))
    internal: dict[str, Any] = {"timeoutSeconds": record.timeout, "withheldEnvironment": names(record.dropped_env)}
    if runner := _runner():
        internal["runner"] = runner
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": escaped(n), "digest": {"sha256": d}} for n, d in sorted(record.outputs.items())],
        "predicateType": Kind.TRAIN_PROVENANCE.value,
        "predicate": {
            "buildDefinition": {
                "buildType": TRAIN_BUILD_TYPE,
                "externalParameters": {
                    "command": names(record.command),
                    "parameters": {escaped(k): escaped(v) for k, v in record.parameters},
                    "outputDir": escaped(record.output_dir),
                    "inputs": names(sorted(record.inputs)),
                },
                "internalParameters": internal,
                "resolvedDependencies": _dependencies(record),
            },
            "runDetails": {
                "builder": _builder(),
                "metadata": {**({"invocationId": escaped(record.run_id)} if record.run_id else {}),
                             "startedOn": _time(record.started), "finishedOn": _time(record.finished)},
                "byproducts": byproducts,
            },
        },
    }


def encode(doc: Mapping[str, Any]) -> bytes:
    """Canonical bytes: sorted keys, no insignificant space; non-UTF-8 names were escaped by `statement`."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def subjects(doc: Mapping[str, Any]) -> dict[str, str]:
    """name -> sha256 of a provenance statement's subjects (shape already checked by `check`)."""
    return {s["name"]: s["digest"]["sha256"] for s in doc["subject"]}


def check(doc: Any) -> list[str]:
    """Why `doc` is not a training provenance statement of ours (empty: it is)."""
    if not isinstance(doc, dict):
        return ["not a JSON object"]
    problems = []
    if doc.get("_type") != STATEMENT_TYPE:
        problems.append(f"_type is not {STATEMENT_TYPE}")
    if doc.get("predicateType") != Kind.TRAIN_PROVENANCE.value:
        problems.append(f"predicateType is not {Kind.TRAIN_PROVENANCE.value}")
    predicate = doc.get("predicate")
    definition = predicate.get("buildDefinition") if isinstance(predicate, dict) else None
    if not isinstance(definition, dict) or definition.get("buildType") != TRAIN_BUILD_TYPE:
        problems.append(f"buildDefinition.buildType is not {TRAIN_BUILD_TYPE}")
    subs = doc.get("subject")
    if not isinstance(subs, list) or not subs:
        problems.append("no subjects (the run recorded no output)")
    else:
        for s in subs:
            digest = s.get("digest") if isinstance(s, dict) else None
            ok = (isinstance(s, dict) and isinstance(s.get("name"), str) and isinstance(digest, dict)
                  and set(digest) == {"sha256"} and isinstance(digest["sha256"], str)
                  and _SHA256.fullmatch(digest["sha256"]) is not None)
            if not ok:
                problems.append("a subject is not {name, digest: {sha256: 64 lowercase hex digits}}")
                break
        else:
            # in-toto: names SHOULD be unique. Escaping can make two files one name (a non-UTF-8 byte and the
            # text `\xNN`): which one a signature covered would be ambiguous, so such a statement is not ours.
            seen = [s["name"] for s in subs]
            if len(set(seen)) != len(seen):
                problems.append("two subjects have the same name")
    return problems


def escaped(name: str) -> str:
    """A file name as JSON-safe text: a non-UTF-8 byte (a surrogate) shown as `\\xNN`; any other lone
    surrogate (from JSON a program printed) as `\\uDXXX`."""
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return name.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def names(values: Sequence[str]) -> list[str]:
    return [escaped(v) for v in values]
