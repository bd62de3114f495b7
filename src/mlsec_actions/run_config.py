"""`.mlsec.yml`: the run's config file, with the same keys as the reusable workflows' inputs, so a laptop and CI
agree; stage sections (`code-scan:` ...) sit beside them, as every stage's `--config` reads them (cli.py).

Where it comes from (the hostile-repository contract, DESIGN.md): on a laptop the user runs on their own tree,
so `mlsec run` reads `PATH/.mlsec.yml` when no `--config` is given; in GitHub Actions (`GITHUB_ACTIONS=true`)
it never does: CI passes the base commit's copy with `--config`, as it does the policy. Either way the run
record and the verdict name the config's source and SHA-256. The file is bounded (`inputs.load_yaml_lines`),
checked against a JSON Schema, and a bad one is one line naming the file, the line and the key (exit 2).

`KEYS` is the one table of workflow inputs (a test checks it against every workflow's inputs, both ways). Each
key says what `mlsec run` does with it: a run setting, an option of one stage, or nothing locally (a CI-only
input, or a job `mlsec run` does not run), which the run then says once.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE_NAME = ".mlsec.yml"


@dataclass(frozen=True)
class Key:
    """One workflow input as a config key."""

    name: str
    """The input's name (kebab-case), also the config key."""
    kind: str
    """`text`, `list` (one item per line in the workflow; a YAML list or lines here) or `flag` (boolean)."""
    use: str
    """`run` (a setting of `mlsec run`), `stage` (an option handed to `stage`), `ci` (meaningful in CI only)
    or `job` (a workflow job that `mlsec run` does not run)."""
    stage: str = ""
    """For `stage` and `job`: the stage it belongs to."""
    option: str = ""
    """For `stage`: the stage's command-line option."""


KEYS: tuple[Key, ...] = (
    Key("path", "text", "run"),
    Key("vuln-db", "text", "stage", "code-scan", "--vuln-db"),
    Key("config", "text", "ci"),  # the workflows' way to name this very file
    Key("upload-sarif", "flag", "ci"),
    Key("python", "text", "ci"),
    Key("policy", "text", "run"),
    Key("models", "list", "run"),
    Key("datasets", "list", "run"),
    Key("model-card", "text", "run"),
    Key("signing-backend", "text", "run"),
    Key("precommit", "text", "job", "precommit"),
    Key("lock", "text", "job", "fetch"),
    Key("s3-endpoint-url", "text", "job", "fetch"),
    Key("fetch-clamav-db", "text", "job", "fetch"),
    Key("fetch-hf-endpoint", "text", "job", "fetch"),
    Key("fetch-mlflow-uri", "text", "job", "fetch"),
    Key("publish-mlflow-uri", "text", "job", "publish"),
    Key("publish-name", "text", "job", "publish"),
    Key("publish-alias", "text", "job", "publish"),
    Key("publish-public-key", "text", "job", "publish"),
    Key("publish-identity", "text", "job", "publish"),
    Key("publish-issuer", "text", "job", "publish"),
    # Who may sign what fetch, verify and publish accept, in both pipelines (docs/signing.md#trust-policy); `mlsec run`
    # runs none of those jobs.
    Key("trust-policy", "text", "job", "verify"),
    Key("publish-s3", "text", "job", "publish"),
    Key("publish-nexus", "text", "job", "publish"),
    Key("instance", "text", "ci"),
    Key("pr-policy-from-head", "flag", "ci"),
    Key("train-command", "list", "job", "train"),
    Key("train-output", "text", "job", "train"),
    Key("train-inputs", "list", "job", "train"),
    Key("train-params", "list", "job", "train"),
    Key("train-setup", "text", "job", "train"),
    Key("train-timeout", "text", "job", "train"),
    Key("train-network", "text", "job", "train"),
    Key("eval-metrics", "list", "stage", "evaluate", "--metrics"),
    Key("eval-predictions", "text", "stage", "evaluate", "--predictions"),
    Key("eval-baseline-metrics", "list", "stage", "evaluate", "--baseline-metrics"),
    Key("eval-model", "text", "stage", "evaluate", "--model"),
    Key("eval-data", "text", "stage", "evaluate", "--data"),
    Key("eval-training-log", "text", "stage", "evaluate", "--training-log"),
    # code-scan's history range comes from the push or pull request event: CI only (locally: --since REV).
    Key("scan-history", "flag", "ci"),
    Key("commit-signatures", "flag", "ci"),
    Key("allowed-signers", "text", "ci"),
    Key("build-context", "text", "job", "build"),
    Key("build-file", "text", "job", "build"),
    Key("build-push", "list", "job", "build"),
    Key("builder", "text", "job", "build"),
    Key("sign-image", "text", "job", "sign-image"),
    Key("sign-image-backend", "text", "job", "sign-image"),
    Key("sign-image-sbom", "text", "job", "sign-image"),
    Key("infra-targets", "list", "stage", "infra-scan", "--target"),
    Key("infra-oscap-root", "text", "job", "infra-scan"),
    Key("infra-nessus", "list", "job", "infra-scan"),
    Key("dast-targets", "list", "stage", "dast", "--target"),
    Key("dast-allow-hosts", "list", "stage", "dast", "--allow-host"),
    Key("dast-zap", "flag", "ci"),  # ZAP's official action runs on GitHub only
    Key("dast-wapiti-modules", "text", "stage", "dast", "--wapiti-modules"),
    Key("runtime-probe-targets", "list", "stage", "runtime-probe", "--target"),
    Key("runtime-probe-llm-targets", "list", "stage", "runtime-probe", "--llm-target"),
    Key("runtime-probe-allow-hosts", "list", "stage", "runtime-probe", "--allow-host"),
    # The channels `mlsec run` (and the workflows' notify job) posts to at the end; their settings are the
    # config's `notify:` section, their credentials MLSEC_* environment variables (docs/notify.md).
    Key("notify-channels", "list", "run"),
)

RUN_KEYS: frozenset[str] = frozenset(k.name for k in KEYS)
"""Top-level keys that are workflow inputs, not stage sections (cli.py accepts them beside the sections)."""

# Options of a stage that name files: relative values are read from the project root, as CI reads them from
# the repository root.
_PATH_OPTIONS = frozenset({"--predictions", "--model", "--data", "--metrics", "--baseline-metrics", "--training-log"})
SIGNING_BACKENDS = ("key", "sigstore", "openpubkey", "kms", "vault")


@dataclass(frozen=True)
class RunConfig:
    """A read and checked config file (or none)."""

    source: str
    """`--config`, `project` (found as PATH/.mlsec.yml) or `none`."""
    path: Path | None
    """The file, resolved; None when there is none."""
    sha256: str
    """Digest of the file's bytes ('' without a file)."""
    values: dict[str, Any]
    """The workflow-input keys it sets (stage sections are left to the stages)."""

    def record(self) -> dict[str, str]:
        """What the run record and the verdict say about it."""
        return {"source": self.source, "path": str(self.path) if self.path else "", "sha256": self.sha256}

    def items(self, key: str) -> list[str]:
        """A `list` key's items: a YAML list, or one item per line as the workflows take them."""
        value = self.values.get(key)
        if value is None:
            return []
        if isinstance(value, list):
            return [str(v) for v in value]
        return [p.strip() for p in str(value).replace("\r", "").split("\n") if p.strip()]

    def text(self, key: str) -> str | None:
        value = self.values.get(key)
        return None if value is None or value == "" else str(value)

    def stage_args(self, root: Path) -> dict[str, tuple[str, ...]]:
        """Options for stages from `stage` keys, file values resolved against the project root."""
        out: dict[str, list[str]] = {}
        for key in KEYS:
            if key.use != "stage" or key.name not in self.values:
                continue
            items = self.items(key.name) if key.kind == "list" else [v for v in [self.text(key.name)] if v]
            for item in items:
                value = str(root / item) if key.option in _PATH_OPTIONS else item
                out.setdefault(key.stage, []).extend((key.option, value))
        return {stage: tuple(args) for stage, args in out.items()}

    def unused(self) -> list[str]:
        """One line per set key that `mlsec run` does not use, saying why (CI only, or a job it does not run)."""
        lines = []
        for key in KEYS:
            if key.name not in self.values or self.values[key.name] in ("", None, []):
                continue
            if key.use == "ci":
                lines.append(f"config {key.name}: used by the workflows only")
            elif key.use == "job":
                lines.append(f"config {key.name}: the {key.stage} job is not run by mlsec run "
                             f"(run `mlsec {key.stage}` yourself)")
        return lines


NO_CONFIG = RunConfig("none", None, "", {})


def schema(stage_ids: frozenset[str]) -> dict[str, Any]:
    """The file's JSON Schema: every workflow input by its type, and a mapping per stage id (whose options the
    stage's own parser checks, with the same messages as `mlsec <stage> --config`)."""
    text = {"type": "string"}
    kinds: dict[str, Any] = {
        "text": {"anyOf": [text, {"type": "number"}]},
        "list": {"anyOf": [text, {"type": "array", "items": {"anyOf": [text, {"type": "number"}]}}]},
        "flag": {"type": "boolean"},
    }
    props: dict[str, Any] = {k.name: kinds[k.kind] for k in KEYS}
    props["signing-backend"] = {"enum": list(SIGNING_BACKENDS)}
    props["vuln-db"] = {"enum": ["auto", "download", "skip"]}
    # A workflow input named like a command (`policy`) is the input: the inputs are what CI and laptops share.
    props.update({s: {"type": ["object", "null"]} for s in sorted(stage_ids - RUN_KEYS)})
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": ["object", "null"],
            "properties": props, "additionalProperties": False}


def _problem(error: Any, doc: Any) -> tuple[tuple[str | int, ...], str]:
    """The key an error is about and a short problem text."""
    at = tuple(error.absolute_path)
    deeper = max(error.context or (), key=lambda e: len(e.absolute_path), default=None)
    if deeper is not None and len(deeper.absolute_path) > len(at):  # a list item, not the list, is wrong
        return _problem(deeper, doc)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(str(k) for k in error.instance if k not in allowed)
        if extra:
            return (*at, extra[0]), "not a workflow input or a stage id"
    if error.validator == "enum":
        return at, f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    if error.validator in ("type", "anyOf"):
        return at, f"expected {_expected(error.schema)}, got {type(error.instance).__name__}"
    return at, str(error.message).splitlines()[0][:200]


def _expected(sub: dict[str, Any]) -> str:
    if sub.get("type") == "boolean":
        return "true or false"
    if any(s.get("type") == "array" for s in sub.get("anyOf", ())):
        return "text or a list"
    if "object" in (sub.get("type") or ()):
        return "a mapping of option names to values"
    return "text"


def _parse(path: Path, data: bytes) -> tuple[Any, dict[tuple[str | int, ...], int]]:
    """The YAML of bytes read once (so the digest recorded is of what was parsed), bounded by `yaml_lines`."""
    import yaml

    from mlsec_actions.errors import InputError
    from mlsec_actions.yaml_lines import DEFAULT_LIMITS, DuplicateKey, compose

    try:
        return compose(data.decode("utf-8"), DEFAULT_LIMITS)
    except UnicodeDecodeError as e:
        raise InputError(path, f"config is not UTF-8 text (byte {e.start})") from None
    except DuplicateKey as e:
        raise InputError(f"{path}:{e.line}", f"{e.key}: duplicate key") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise InputError(where, f"config is not valid YAML ({e.problem or e.context})") from None
    except yaml.YAMLError as e:
        raise InputError(path, f"config is not valid YAML ({str(e).splitlines()[0]})") from None


def load(path: Path, source: str, stage_ids: frozenset[str]) -> RunConfig:
    """Read and check `path`; InputError `FILE:LINE: KEY: problem` (exit 2) for anything wrong."""
    import jsonschema  # only when a config is read

    from mlsec_actions import inputs
    from mlsec_actions.errors import InputError
    from mlsec_actions.yaml_lines import key_name, line_of

    data = inputs.read_regular(path, "config", inputs.MAX_YAML_BYTES)
    doc, lines = _parse(path, data)
    validator = jsonschema.Draft202012Validator(schema(stage_ids))
    errors = sorted(validator.iter_errors(doc), key=lambda e: line_of(lines, tuple(e.absolute_path)))
    if errors:
        at, problem = _problem(errors[0], doc)
        raise InputError(f"{path}:{line_of(lines, at)}", f"{key_name(at)}: {problem}")
    values = {k: v for k, v in (doc or {}).items() if k in RUN_KEYS}
    if "path" in values and len(RunConfig("", None, "", values).items("path")) > 1:
        raise InputError(f"{path}:{line_of(lines, ('path',))}", "path: mlsec run scans one folder (give one line)")
    return RunConfig(source, path.resolve(), hashlib.sha256(data).hexdigest(), values)


def find(root: Path, given: Path | None, stage_ids: frozenset[str], discover: bool = True) -> RunConfig:
    """The run's config: `--config FILE`, else `ROOT/.mlsec.yml` on a laptop (never in GitHub Actions, where
    the workflow passes the base commit's copy), else none."""
    if given is not None:
        return load(given, "--config", stage_ids)
    candidate = root / FILE_NAME
    in_ci = os.environ.get("GITHUB_ACTIONS") == "true"
    if discover and not in_ci and (candidate.exists() or candidate.is_symlink()):
        return load(candidate, "project", stage_ids)
    return NO_CONFIG
