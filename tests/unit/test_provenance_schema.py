"""Every in-toto statement we write validates against the in-toto Statement v1 schema (train's provenance also
against SLSA Provenance v1), and the schemas themselves refuse what the specifications forbid: a schema that
accepted anything would make the first half worthless. Schemas: tests/schemas (docs/train.md#provenance-format)."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlsec_actions.oci import reference
from mlsec_actions.oci.image_sign import image_statement
from mlsec_actions.signing import attest, model_folder, statements
from mlsec_actions.training import provenance
from mlsec_actions.training.environment import Interpreter
from tests.provenance_schemas import PROVENANCE, STATEMENT, errors

NOW = dt.datetime(2026, 12, 2, 9, 30, tzinfo=dt.UTC)
HOSTILE_PACKAGES = (("scikit_learn", "1.5.0+cpu"), ("a b/../c@d", "1 2?#"), ("Zope.Interface", "6.0"),
                    ("\udcff-bytes", "\ud800"))


def _record(**changes: Any) -> provenance.RunRecord:
    fields: dict[str, Any] = dict(
        command=("python", "train.py", "--out", "model"), parameters=(("seed", "0"), ("lr", "0.1")),
        output_dir="model", outputs={"model/m.joblib": "a" * 64, "model/metrics.json": "b" * 64},
        inputs={"data/train.csv": "c" * 64, "train.py": "d" * 64}, commit="e" * 40,
        interpreter=Interpreter("3.12.3", "CPython", "/usr/bin/python3", (("scikit-learn", "1.5.0"),)),
        started=NOW, finished=NOW + dt.timedelta(seconds=4.2), exit_code=0, timeout=3600.0, run_id="1234-1",
        log_sha256="f" * 64, dropped_env=("GITHUB_TOKEN",))
    fields.update(changes)
    return provenance.RunRecord(**fields)


GITHUB = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "Octo-Org/ml-project",
          "GITHUB_WORKFLOW_REF": "Octo-Org/ml-project/.github/workflows/ml.yml@refs/heads/main",
          "ImageOS": "ubuntu24", "ImageVersion": "20261130.1.0", "RUNNER_OS": "Linux", "RUNNER_ARCH": "X64"}


def _clear_github(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in GITHUB:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(("changes", "env"), [
    ({}, {}),
    ({}, GITHUB),
    ({"exit_code": None, "reproducible": False, "run_id": None, "log_sha256": None, "commit": None,
      "interpreter": None, "inputs": {}}, {}),
    ({"reproducible": True, "interpreter": Interpreter("3.11.7", "PyPy", "/x/\udcffpy", HOSTILE_PACKAGES)}, GITHUB),
    # Names as the file system and argv hand them over: undecodable bytes are surrogates.
    ({"outputs": {"model/\udcff\udcfe.bin": "a" * 64}, "inputs": {"data/caf\udce9.csv": "c" * 64},
      "parameters": (("k\udcff", "v\udcff"),), "command": ("python", "t\udcff.py"), "output_dir": "mo\udcffdel"}, {}),
    # A branch name with characters a URI may not hold; a server URL in upper case with a trailing slash.
    ({}, {**GITHUB, "GITHUB_SERVER_URL": "HTTPS://GitHub.Example.COM/",
          "GITHUB_WORKFLOW_REF": 'o/r/.github/workflows/t.yml@refs/heads/feat/"x"{%}<y> #1'}),
    ({}, {**GITHUB, "GITHUB_SERVER_URL": "javascript:alert(1)"}),
], ids=["local", "github", "minimal", "hostile-interpreter", "non-utf8-names", "odd-branch", "odd-server"])
def test_train_provenance_validates_as_statement_and_slsa_provenance(
        changes: dict[str, Any], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_github(monkeypatch)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    doc = provenance.statement(_record(**changes))
    raw = provenance.encode(doc)  # always encodes: no surrogate reaches the bytes
    parsed = json.loads(raw)
    assert errors(parsed, STATEMENT) == []
    assert errors(parsed, PROVENANCE) == []
    assert provenance.check(parsed) == []
    statements.require_typed(raw)


def test_the_fields_we_fill(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_github(monkeypatch)
    for name, value in GITHUB.items():
        monkeypatch.setenv(name, value)
    doc = provenance.statement(_record(reproducible=True, interpreter=Interpreter(
        "3.12.3", "CPython", "/usr/bin/python3", HOSTILE_PACKAGES[:3])))
    definition, run = doc["predicate"]["buildDefinition"], doc["predicate"]["runDetails"]
    assert definition["internalParameters"]["runner"] == {"ImageOS": "ubuntu24", "ImageVersion": "20261130.1.0",
                                                          "RUNNER_OS": "Linux", "RUNNER_ARCH": "X64"}
    uris = [d.get("uri") for d in definition["resolvedDependencies"]]
    assert uris[0] == "git+https://github.com/Octo-Org/ml-project"
    assert "pkg:generic/cpython@3.12.3" in uris
    # purl's pypi type: the PEP 503 name; reserved characters of name and version percent-encoded.
    assert {"pkg:pypi/scikit-learn@1.5.0%2Bcpu", "pkg:pypi/a%20b%2F-%2Fc%40d@1%202%3F%23",
            "pkg:pypi/zope-interface@6.0"} <= set(uris)
    assert run["builder"]["id"] == "https://github.com/Octo-Org/ml-project/.github/workflows/ml.yml@refs/heads/main"
    assert run["metadata"] == {"invocationId": "1234-1", "startedOn": "2026-12-02T09:30:00.000000Z",
                               "finishedOn": "2026-12-02T09:30:04.200000Z"}
    facts = {b["name"]: b for b in run["byproducts"] if "content" in b}
    for name, want in (("exit-code", {"exitCode": 0, "stopped": False, "seconds": 4.2}),
                       ("reproducibility", {"sameOutputs": True})):
        assert facts[name]["annotations"] == want
        assert json.loads(base64.b64decode(facts[name]["content"])) == want
        assert facts[name]["mediaType"] == "application/json"


def test_builder_id_of_an_odd_branch_is_percent_encoded(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_github(monkeypatch)
    monkeypatch.setenv("GITHUB_SERVER_URL", "HTTPS://GitHub.Example.COM/")
    monkeypatch.setenv("GITHUB_WORKFLOW_REF", 'o/r/.github/workflows/t.yml@refs/heads/"x"%')
    builder = provenance.statement(_record())["predicate"]["runDetails"]["builder"]
    assert builder["id"] == "https://github.example.com/o/r/.github/workflows/t.yml@refs/heads/%22x%22%25"


def _verdict(tmp_path: Path) -> attest.Verdict:
    path = tmp_path / "gate-verdict.json"
    doc = {"verdict": "pass", "policy": {"name": "default", "sha256": "1" * 64}, "counts": {"code-scan": 0},
           "violations": [], "tools": [{"name": "semgrep", "version": "1.90.0"}], "inputs": []}
    path.write_text(json.dumps(doc))
    return attest.load_verdict(path)


def _ours(tmp_path: Path) -> dict[str, bytes]:
    ref = reference.parse("127.0.0.1:5000/team/app@sha256:" + "9" * 64)
    return {
        "file": statements.file_statement("w\udcff.bin", "2" * 64),
        "gate": attest.statement({"model/m.bin": "3" * 64, "gate-verdict.json": "4" * 64}, _verdict(tmp_path),
                                 "gate-verdict.json", {"model": ["model/m.bin"]}),
        "model-folder": model_folder.manifest_payload(tmp_path, {"a.bin": "5" * 64, "sub/b.json": "6" * 64}),
        "image": image_statement(statements.Kind.IMAGE, ref, {}),
        "image-gate": image_statement(statements.Kind.IMAGE_GATE, ref, {"verdict": "pass", "violations": 0}),
        "image-sbom": image_statement(statements.Kind.IMAGE_SBOM, ref,
                                      {"bomFormat": "CycloneDX", "specVersion": "1.6"}),
    }


@pytest.mark.parametrize("kind", ["file", "gate", "model-folder", "image", "image-gate", "image-sbom"])
def test_every_other_statement_we_sign_validates(kind: str, tmp_path: Path) -> None:
    raw = _ours(tmp_path)[kind]
    statements.require_typed(raw)  # it is one of ours, so a backend would sign it
    assert errors(json.loads(raw), STATEMENT) == []


Edit = Callable[[dict[str, Any]], object]


def _at(*path: str | int) -> Callable[[dict[str, Any]], Any]:
    def get(doc: dict[str, Any]) -> Any:
        for key in path:
            doc = doc[key]  # type: ignore[index]
        return doc
    return get


SUBJECT, PRED = _at("subject", 0), _at("predicate")
BUILD, RUN = _at("predicate", "buildDefinition"), _at("predicate", "runDetails")
DEPS, BYPRODUCTS = _at("predicate", "buildDefinition", "resolvedDependencies"), _at("predicate", "runDetails",
                                                                                        "byproducts")
META = _at("predicate", "runDetails", "metadata")

# (what the spec forbids, the edit, the schema that must refuse it: STATEMENT rules hold for both)
FORBIDDEN: list[tuple[str, Edit, str]] = [
    ("another _type", lambda d: d.update(_type="https://in-toto.io/Statement/v0.1"), STATEMENT),
    ("no _type", lambda d: d.pop("_type"), STATEMENT),
    ("no subject", lambda d: d.pop("subject"), STATEMENT),
    ("empty subject", lambda d: d.update(subject=[]), STATEMENT),
    ("subject without digest", lambda d: SUBJECT(d).pop("digest"), STATEMENT),
    ("subject with empty digest", lambda d: SUBJECT(d).update(digest={}), STATEMENT),
    ("uppercase hex", lambda d: SUBJECT(d).update(digest={"sha256": "A" * 64}), STATEMENT),
    ("short sha256", lambda d: SUBJECT(d).update(digest={"sha256": "a" * 63}), STATEMENT),
    ("non-hex sha256", lambda d: SUBJECT(d).update(digest={"sha256": "g" * 64}), STATEMENT),
    ("sha512 of sha256 size", lambda d: SUBJECT(d).update(digest={"sha512": "a" * 64}), STATEMENT),
    ("misspelt algorithm", lambda d: SUBJECT(d).update(digest={"SHA256": "a" * 64}), STATEMENT),
    ("digest not a string", lambda d: SUBJECT(d).update(digest={"sha256": 1}), STATEMENT),
    ("subject gitCommit of 39 digits", lambda d: SUBJECT(d).update(digest={"gitCommit": "e" * 39}), STATEMENT),
    ("dependency gitCommit in upper case", lambda d: DEPS(d)[0].update(digest={"gitCommit": "E" * 40}), PROVENANCE),
    ("no predicateType", lambda d: d.pop("predicateType"), STATEMENT),
    ("predicateType not a URI", lambda d: d.update(predicateType="slsa provenance v1"), STATEMENT),
    ("predicateType scheme in upper case", lambda d: d.update(predicateType="HTTPS://slsa.dev/provenance/v1"),
     STATEMENT),
    ("predicateType host in upper case", lambda d: d.update(predicateType="https://SLSA.dev/provenance/v1"),
     STATEMENT),
    ("predicate not an object", lambda d: d.update(predicate=[]), STATEMENT),
    ("another predicateType", lambda d: d.update(predicateType="https://slsa.dev/provenance/v0.2"), PROVENANCE),
    ("no predicate", lambda d: d.pop("predicate"), PROVENANCE),
    ("no buildDefinition", lambda d: PRED(d).pop("buildDefinition"), PROVENANCE),
    ("no runDetails", lambda d: PRED(d).pop("runDetails"), PROVENANCE),
    ("no buildType", lambda d: BUILD(d).pop("buildType"), PROVENANCE),
    ("buildType not a URI", lambda d: BUILD(d).update(buildType="train v1"), PROVENANCE),
    ("no externalParameters", lambda d: BUILD(d).pop("externalParameters"), PROVENANCE),
    ("externalParameters null", lambda d: BUILD(d).update(externalParameters=None), PROVENANCE),
    ("externalParameters a list", lambda d: BUILD(d).update(externalParameters=["python"]), PROVENANCE),
    ("internalParameters a string", lambda d: BUILD(d).update(internalParameters="x"), PROVENANCE),
    ("resolvedDependencies an object", lambda d: BUILD(d).update(resolvedDependencies={}), PROVENANCE),
    ("a dependency with only a name", lambda d: DEPS(d).append({"name": "runner"}), PROVENANCE),
    ("a dependency uri with a space", lambda d: DEPS(d).append({"uri": "pkg:pypi/a b@1"}), PROVENANCE),
    ("a dependency uri without scheme", lambda d: DEPS(d).append({"uri": "github.com/o/r"}), PROVENANCE),
    ("a downloadLocation not a URI", lambda d: DEPS(d)[0].update(downloadLocation="/tmp/x y"), PROVENANCE),
    ("annotations a list", lambda d: DEPS(d)[0].update(annotations=["role"]), PROVENANCE),
    ("name not a string", lambda d: DEPS(d)[0].update(name=7), PROVENANCE),
    ("content not base64", lambda d: BYPRODUCTS(d)[0].update(content="not base64!"), PROVENANCE),
    ("mediaType not a MIME type", lambda d: BYPRODUCTS(d)[0].update(mediaType="json"), PROVENANCE),
    ("a byproduct with only annotations", lambda d: BYPRODUCTS(d).append({"annotations": {"a": 1}}), PROVENANCE),
    ("no builder", lambda d: RUN(d).pop("builder"), PROVENANCE),
    ("no builder id", lambda d: RUN(d)["builder"].pop("id"), PROVENANCE),
    ("builder id not a URI", lambda d: RUN(d)["builder"].update(id="mlsec train"), PROVENANCE),
    ("builder version not string to string", lambda d: RUN(d)["builder"].update(version={"mlsec": 1}), PROVENANCE),
    ("builderDependencies without uri/digest/content",
     lambda d: RUN(d)["builder"].update(builderDependencies=[{"name": "x"}]), PROVENANCE),
    ("invocationId a number", lambda d: META(d).update(invocationId=7), PROVENANCE),
    ("startedOn without a zone", lambda d: META(d).update(startedOn="2026-12-02T09:30:00"), PROVENANCE),
    ("startedOn with an offset", lambda d: META(d).update(startedOn="2026-12-02T09:30:00+01:00"), PROVENANCE),
    ("startedOn without T", lambda d: META(d).update(startedOn="2026-12-02 09:30:00Z"), PROVENANCE),
    ("finishedOn as epoch seconds", lambda d: META(d).update(finishedOn=1796203800), PROVENANCE),
    ("finishedOn on 30 February", lambda d: META(d).update(finishedOn="2026-02-30T00:00:00Z"), PROVENANCE),
    ("finishedOn at hour 24", lambda d: META(d).update(finishedOn="2026-12-02T24:00:00Z"), PROVENANCE),
    ("byproducts a string", lambda d: RUN(d).update(byproducts="train.log"), PROVENANCE),
]


@pytest.mark.parametrize(("why", "edit", "schema"), FORBIDDEN, ids=[f[0] for f in FORBIDDEN])
def test_schemas_refuse_what_the_specs_forbid(why: str, edit: Edit, schema: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_github(monkeypatch)
    good = json.loads(provenance.encode(provenance.statement(_record(reproducible=True))))
    assert errors(good, PROVENANCE) == []
    bad = copy.deepcopy(good)
    edit(bad)
    assert errors(bad, schema), f"{why}: accepted by {schema}"
    assert errors(bad, PROVENANCE), f"{why}: accepted as SLSA provenance"


ALLOWED: list[tuple[str, Edit]] = [
    ("extension fields anywhere", lambda d: (d.update(mlsec_x=1), RUN(d).update(mlsec_note="n"))),
    ("optional fields null (SLSA: unset, null and empty are equivalent)",
     lambda d: (BUILD(d).update(internalParameters=None, resolvedDependencies=None),
                RUN(d).update(metadata=None, byproducts=None))),
    ("optional fields absent", lambda d: (BUILD(d).pop("internalParameters"), RUN(d).pop("metadata"))),
    ("a subject without a name", lambda d: SUBJECT(d).pop("name")),
    ("several algorithms, one unknown", lambda d: SUBJECT(d)["digest"].update(sha512="0" * 128, myhash="x=")),
    ("a SHA-256 git commit", lambda d: DEPS(d)[0].update(digest={"gitCommit": "e" * 64})),
    ("a descriptor with only content", lambda d: BYPRODUCTS(d).append({"content": "e30="})),
    ("a descriptor with only a uri", lambda d: DEPS(d).append({"uri": "https://cloudbuild.example/worker@v1"})),
    ("fractional seconds", lambda d: META(d).update(startedOn="1985-04-12T23:20:50.52Z",
                                                    finishedOn="1985-04-12T23:20:51Z")),
    ("no predicate on a plain statement", lambda d: d.pop("predicate")),
]


@pytest.mark.parametrize(("why", "edit"), ALLOWED, ids=[a[0] for a in ALLOWED])
def test_schemas_accept_what_the_specs_allow(why: str, edit: Edit, monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_github(monkeypatch)
    doc = json.loads(provenance.encode(provenance.statement(_record(reproducible=True))))
    edit(doc)
    assert errors(doc, STATEMENT) == [], why
    if "predicate" in doc:
        assert errors(doc, PROVENANCE) == [], why


def test_names_made_equal_by_escaping_are_refused_before_signing() -> None:
    # A non-UTF-8 byte and the literal text `\xff` escape to one name: which file was signed would be ambiguous.
    doc = provenance.statement(_record(outputs={"model/\udcff": "a" * 64, "model/\\xff": "b" * 64}))
    assert [s["name"] for s in doc["subject"]] == ["model/\\xff", "model/\\xff"]
    assert provenance.check(doc) == ["two subjects have the same name"]


@pytest.mark.parametrize("digest", ["A" * 64, "g" * 64, "a" * 63])
def test_check_wants_what_the_schema_wants_of_a_subject_digest(digest: str) -> None:
    doc = provenance.statement(_record(outputs={"model/m.bin": digest}))
    assert errors(doc, STATEMENT)
    assert provenance.check(doc) == ["a subject is not {name, digest: {sha256: 64 lowercase hex digits}}"]
