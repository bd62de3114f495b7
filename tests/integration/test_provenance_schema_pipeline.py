"""The statements a real run writes and signs validate against the in-toto Statement v1 and SLSA Provenance v1
schemas (tests/schemas), read back out of the signed DSSE envelopes: `mlsec train` of a scikit-learn script,
then `mlsec sign --backend key` of its provenance, the model folder, the verdict and the gate attestation, then
`mlsec verify` of all of them with the public key; a model changed after training fails its provenance."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlsec_actions.signing import key
from tests.integration.test_train import TRAIN_SCRIPT, _write_dataset
from tests.provenance_schemas import PROVENANCE, STATEMENT, errors

pytestmark = pytest.mark.integration
MLSEC = str(Path(sys.executable).parent / "mlsec")


def _mlsec(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLSEC_", "GITHUB_"))}
    return subprocess.run([MLSEC, *args], cwd=cwd, env={**base, **(env or {})}, capture_output=True, text=True,
                          timeout=300, check=False)


def _payload(bundle: Path) -> dict[str, object]:
    envelope = json.loads(bundle.read_text())["dsseEnvelope"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    doc: dict[str, object] = json.loads(base64.b64decode(envelope["payload"]))
    return doc


@pytest.fixture
def trained(tmp_path: Path) -> Path:
    """A project whose model was trained by `mlsec train` (in GitHub's environment variables)."""
    proj = tmp_path / "proj"
    proj.mkdir()
    _write_dataset(proj / "data.csv")
    (proj / "train.py").write_text(TRAIN_SCRIPT)
    env = {"MLSEC_RUN_ID": "run-7", "GITHUB_SHA": "ab" * 20, "GITHUB_SERVER_URL": "https://github.com",
           "GITHUB_REPOSITORY": "example-org/ml-project", "RUNNER_OS": "Linux", "RUNNER_ARCH": "X64",
           "GITHUB_WORKFLOW_REF": "example-org/ml-project/.github/workflows/ml.yml@refs/heads/main"}
    done = _mlsec(proj, "train", "--output", "model", "--input", "data.csv", "--input", "train.py",
                  "--param", "seed=0", "--provenance", "mlsec-results/train.provenance.json",
                  "--check-reproducible", "--", sys.executable, "train.py", "model", env=env)
    assert done.returncode == 0, done.stderr
    return proj


def test_train_provenance_of_a_real_run_validates(trained: Path) -> None:
    doc = json.loads((trained / "mlsec-results" / "train.provenance.json").read_bytes())
    assert errors(doc, STATEMENT) == []
    assert errors(doc, PROVENANCE) == []
    deps = doc["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert {"uri": "git+https://github.com/example-org/ml-project", "digest": {"gitCommit": "ab" * 20}} in deps
    assert any(d.get("uri", "").startswith("pkg:pypi/scikit-learn@") for d in deps)
    assert doc["predicate"]["buildDefinition"]["internalParameters"]["runner"] == {"RUNNER_OS": "Linux",
                                                                                   "RUNNER_ARCH": "X64"}


def test_signed_statements_validate_and_verify_with_the_key_backend(trained: Path) -> None:
    key.generate(trained.parent / "k.pem", trained.parent / "k.pub")
    (trained / "gate-verdict.json").write_text(json.dumps({"verdict": "pass", "inputs": [], "violations": [],
                                                           "counts": {}, "tools": []}))
    signed = _mlsec(trained, "sign", "--backend", "key", "--key", str(trained.parent / "k.pem"), "model",
                    "--verdict", "gate-verdict.json", "--attest", "--provenance", "mlsec-results/train.provenance.json")
    assert signed.returncode == 0, signed.stderr
    results = trained / "mlsec-results"
    provenance_bundle = results / "train.provenance.json.sigstore.json"
    # Signed as written, and every signed statement is an in-toto Statement v1; the provenance SLSA v1 too.
    assert _payload(provenance_bundle) == json.loads((results / "train.provenance.json").read_bytes())
    assert errors(_payload(provenance_bundle), PROVENANCE) == []
    for bundle in (trained / "model.sigstore.json", trained / "gate-verdict.json.sigstore.json",
                   results / "gate.intoto.sigstore.json", provenance_bundle):
        assert errors(_payload(bundle), STATEMENT) == [], bundle.name
    verify = ("verify", "--public-key", str(trained.parent / "k.pub"), "model", "gate-verdict.json",
              "--attestation", "mlsec-results/gate.intoto.sigstore.json",
              "--provenance", "mlsec-results/train.provenance.json.sigstore.json")
    ok = _mlsec(trained, *verify)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "training provenance, 2 outputs match" in ok.stderr
    (trained / "model" / "metrics.json").write_text('{"accuracy": 1.0}')
    changed = _mlsec(trained, "verify", "--public-key", str(trained.parent / "k.pub"),
                     "--provenance", "mlsec-results/train.provenance.json.sigstore.json")
    assert changed.returncode == 1
    assert "metrics.json" in changed.stderr and "FAIL" in changed.stderr


def test_a_non_utf8_output_name_is_recorded_escaped_and_never_signed(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "w.py").write_text("import os\nos.makedirs('model', exist_ok=True)\n"
                               "open(os.path.join(b'model', b'w\\xff.bin'), 'wb').write(b'w')\n")
    done = _mlsec(proj, "train", "--output", "model", "--provenance", "p.json", "--sarif", "t.sarif",
                  "--log", "t.log", "--", sys.executable, "w.py")
    assert done.returncode == 0, done.stderr
    doc = json.loads((proj / "p.json").read_bytes())
    assert doc["subject"] == [{"name": "model/w\\xff.bin", "digest": {"sha256": hashlib.sha256(b"w").hexdigest()}}]
    assert errors(doc, PROVENANCE) == []
    key.generate(tmp_path / "k.pem", tmp_path / "k.pub")
    signed = _mlsec(proj, "sign", "--backend", "key", "--key", str(tmp_path / "k.pem"), "--provenance", "p.json")
    assert signed.returncode == 1  # the escaped name names no file: refused, never signed over something else
    assert "not a regular file" in signed.stderr and not (proj / "p.json.sigstore.json").exists()
