"""fetch against real services: a loopback HTTP server, moto's S3 server, real clamscan with a sigtool-made
database, the project's own key signing and verify. Every refusal leaves nothing in the destination."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from mlsec_actions import cli
from tests.faults.conftest import SCANNER_FAULTS, Fault, make_fake, mlsec
from tests.supply_servers import EICAR, MARKER, HttpServer, S3Server

pytestmark = pytest.mark.integration


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        import os

        return (os.system, ("echo pwned",))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clamav_db: Path, s3_server: S3Server) -> Path:
    for var in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS", "MLSEC_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    for k, v in {**s3_server.env(), "MLSEC_CLAMAV_DB": str(clamav_db)}.items():
        monkeypatch.setenv(k, v)
    (tmp_path / "proj").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path / "proj"


def _serve(http: HttpServer, name: str, data: bytes) -> str:
    path = http.root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return f"{http.base}/{name}"


def _lock(proj: Path, *artifacts: dict[str, Any], require: bool = False) -> Path:
    doc: dict[str, Any] = {"version": 1, "artifacts": list(artifacts)}
    if require:
        doc["require_signatures"] = True
    path = proj / "mlsec.lock"
    path.write_text(json.dumps(doc))
    return path


def _run(proj: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    sarif = proj.parent / "out" / "fetch.sarif"
    code = cli.main(["fetch", str(proj), "--sarif", str(sarif), "--timeout", "60", *extra])
    return code, json.loads(sarif.read_text())["runs"][0]


def _rules(run: dict[str, Any]) -> set[str]:
    return {r["ruleId"] for r in run.get("results", [])}


def _left(proj: Path) -> set[str]:
    return {p.relative_to(proj).as_posix() for p in proj.rglob("*")} - {"mlsec.lock"}


def test_fetches_from_http_and_s3_checked_and_places_them(ws: Path, http_server: HttpServer,
                                                          s3_server: S3Server) -> None:
    weights = pickle.dumps({"w": [1.0, 2.0]}, protocol=4)
    blob = b"tokenizer data\n" * 1000
    s3 = s3_server.client()
    s3.create_bucket(Bucket="models-ok")
    s3.put_object(Bucket="models-ok", Key="v1/tok.txt", Body=blob)
    _lock(ws, {"name": "models/weights.pkl", "url": _serve(http_server, "ok/weights.pkl", weights),
               "sha256": _sha(weights), "size": len(weights)},
          {"name": "models/tok.txt", "url": "s3://models-ok/v1/tok.txt", "sha256": _sha(blob)})
    code, run = _run(ws)
    assert code == 0
    assert _rules(run) == set()
    assert (ws / "models" / "weights.pkl").read_bytes() == weights
    assert (ws / "models" / "tok.txt").read_bytes() == blob
    assert _left(ws) == {"models", "models/weights.pkl", "models/tok.txt"}  # no quarantine left behind
    tools = {i["properties"]["tool"]: i for i in run["invocations"]}
    assert tools["clamav"]["executionSuccessful"] and tools["mlsec-fetch"]["executionSuccessful"]


@pytest.mark.parametrize(("case", "rule"), [
    ("tampered", "fetch/digest-mismatch"),
    ("eicar", "clamav/malware"),
    ("marker", "clamav/malware"),
    ("pickle", "pickle/dangerous-global"),
])
def test_a_bad_artifact_withholds_all_of_them(ws: Path, http_server: HttpServer, case: str, rule: str) -> None:
    good = b"fine bytes\n"
    bad = {"tampered": b"changed at the source", "eicar": EICAR, "marker": b"xx" + MARKER + b"yy",
           "pickle": pickle.dumps(_Evil(), protocol=2)}[case]
    pinned = _sha(b"what was reviewed") if case == "tampered" else _sha(bad)
    _lock(ws, {"name": "good.txt", "url": _serve(http_server, f"{case}/good.txt", good), "sha256": _sha(good)},
          {"name": "model.bin", "url": _serve(http_server, f"{case}/model.bin", bad), "sha256": pinned})
    code, run = _run(ws)
    assert code == 0  # findings are the gate's to judge; the stage ran
    rules = _rules(run)
    assert rule in {r.split(":")[0] for r in rules} or any(r.startswith(rule.split("/")[0]) for r in rules), rules
    assert "fetch/withheld" in rules
    assert _left(ws) == set()  # not even the good one


def test_required_signatures_unsigned_and_signed(ws: Path, http_server: HttpServer, tmp_path: Path) -> None:
    from mlsec_actions.signing import key

    key.generate(tmp_path / "k.pem", tmp_path / "k.pub")
    other = tmp_path / "o"
    other.mkdir()
    key.generate(other / "k.pem", other / "k.pub")
    data = b"signed model bytes"
    src = http_server.root / "sig" / "model.bin"
    src.parent.mkdir(parents=True)
    src.write_bytes(data)
    assert cli.main(["sign", "--backend", "key", "--key", str(tmp_path / "k.pem"), str(src),
                     "--digest-cache", str(tmp_path / "dc.json")]) == 0
    url = f"{http_server.base}/sig/model.bin"
    entry = {"name": "model.bin", "url": url, "sha256": _sha(data)}
    _lock(ws, entry, require=True)
    code, run = _run(ws, "--public-key", str(tmp_path / "k.pub"))
    assert "fetch/signature-missing" in _rules(run) and _left(ws) == set()
    _lock(ws, {**entry, "bundle": url + ".sigstore.json"}, require=True)
    code, run = _run(ws, "--public-key", str(other / "k.pub"))  # someone else's key
    assert "fetch/signature-invalid" in _rules(run) and _left(ws) == set()
    code, run = _run(ws, "--public-key", str(tmp_path / "k.pub"))
    assert code == 0 and _rules(run) == set()
    assert _left(ws) == {"model.bin", "model.bin.sigstore.json"}
    assert cli.main(["verify", "--public-key", str(tmp_path / "k.pub"), str(ws / "model.bin")]) == 0


def test_bundles_without_a_verifier_is_a_usage_error(ws: Path, http_server: HttpServer,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    data = b"x"
    url = _serve(http_server, "nokey/m.bin", data)
    _lock(ws, {"name": "m.bin", "url": url, "sha256": _sha(data)}, require=True)
    assert cli.main(["fetch", str(ws), "--sarif", str(ws.parent / "o.sarif")]) == 2
    assert "--public-key" in capsys.readouterr().err
    assert _left(ws) == set()


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/x", "http://example.com/x"])
def test_redirect_to_another_scheme_is_refused(ws: Path, http_server: HttpServer, target: str) -> None:
    from urllib.parse import quote

    url = f"{http_server.base}/redirect?to={quote(target, safe='')}"
    _lock(ws, {"name": "m.bin", "url": url, "sha256": "0" * 64})
    code, run = _run(ws)
    assert code == 1  # a download that cannot happen is a tool failure, never a pass
    fetch = next(i for i in run["invocations"] if i["properties"]["tool"] == "mlsec-fetch")
    assert not fetch["executionSuccessful"]
    assert "redirect" in json.dumps(fetch).lower()
    assert _left(ws) == set()


def test_size_cap_stops_the_download(ws: Path, http_server: HttpServer) -> None:
    data = b"\0" * (2 * 1024 * 1024 + 1)
    _lock(ws, {"name": "big.bin", "url": _serve(http_server, "big/big.bin", data), "sha256": _sha(data)})
    _, run = _run(ws, "--max-mb", "2")
    assert "fetch/size-limit" in _rules(run) and "fetch/withheld" in _rules(run)
    assert _left(ws) == set()


def test_s3_missing_object_and_unreachable_http_fail_closed(ws: Path, s3_server: S3Server) -> None:
    s3_server.client().create_bucket(Bucket="models-empty")
    _lock(ws, {"name": "a.bin", "url": "s3://models-empty/nope", "sha256": "1" * 64},
          {"name": "b.bin", "url": "http://127.0.0.1:9/nothing-listens", "sha256": "2" * 64})
    code, run = _run(ws)
    assert code == 1
    text = json.dumps(run["invocations"])
    assert "NoSuchKey" in text and "and 1 more" in text
    assert _left(ws) == set()


def test_missing_database_or_scanner_fails_closed(ws: Path, http_server: HttpServer, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"clean"
    _lock(ws, {"name": "m.bin", "url": _serve(http_server, "nodb/m.bin", data), "sha256": _sha(data)})
    code, run = _run(ws, "--clamav-db", str(tmp_path / "no-such-db"))
    assert code == 1 and _left(ws) == set()
    assert "no signature database" in json.dumps(run["invocations"])
    monkeypatch.setenv("MLSEC_CLAMAV_BIN", str(tmp_path / "no-clamscan"))
    code, run = _run(ws)
    assert code == 1 and _left(ws) == set()


def test_without_a_lock_it_is_an_antivirus_pass_over_the_tree(ws: Path) -> None:
    (ws / "src").mkdir()
    (ws / "src" / "app.py").write_text("print('hi')\n")
    code, run = _run(ws)
    assert code == 0 and _rules(run) == set()
    (ws / "src" / "line\nbreak ::error::x.com").write_bytes(EICAR)
    code, run = _run(ws)
    assert code == 0
    hits = [r for r in run["results"] if r["ruleId"] == "clamav/malware"]
    assert len(hits) == 1
    assert hits[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith("src/line")


@pytest.mark.parametrize("fault", SCANNER_FAULTS, ids=lambda f: f.name)
def test_clamscan_faults_fail_closed(ws: Path, http_server: HttpServer, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch, fault: Fault) -> None:
    data = b"clean"
    _lock(ws, {"name": "m.bin", "url": _serve(http_server, f"fault-{fault.name}/m.bin", data), "sha256": _sha(data)})
    monkeypatch.setenv("MLSEC_CLAMAV_BIN", str(make_fake(tmp_path, "clamav", fault.body)))
    sarif = ws.parent / "out" / "fetch.sarif"
    proc = mlsec("fetch", str(ws), "--sarif", str(sarif), "--timeout", "1.5", env=dict(os.environ))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "::error::" not in proc.stderr
    run = json.loads(sarif.read_text())["runs"][0]
    clam = next(i for i in run["invocations"] if i["properties"]["tool"] == "clamav")
    assert not clam["executionSuccessful"]
    text = json.dumps(clam)
    assert any(c in text for c in fault.causes), text
    assert _left(ws) == set()


def test_pin_adds_an_entry_that_fetch_then_accepts(ws: Path, http_server: HttpServer,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    data = b"pinned on first use"
    url = _serve(http_server, "pin/m.bin", data)
    assert cli.main(["fetch", str(ws), "--pin", url, "--name", "models/m.bin"]) == 0
    doc = json.loads((ws / "mlsec.lock").read_text())
    assert doc["artifacts"] == [{"name": "models/m.bin", "url": url, "sha256": _sha(data), "size": len(data)}]
    assert cli.main(["fetch", str(ws), "--pin", url, "--name", "models/m.bin"]) == 2  # already pinned
    assert cli.main(["fetch", str(ws), "--pin", url, "--name", "../x"]) == 2
    assert cli.main(["fetch", str(ws), "--pin", "file:///etc/passwd", "--name", "y"]) == 2
    capsys.readouterr()
    code, run = _run(ws)
    assert code == 0 and _rules(run) == set() and (ws / "models" / "m.bin").read_bytes() == data


def test_trust_policy_listed_key_passes_unlisted_refused_malformed_exit_2(
        ws: Path, http_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--trust-policy`: the keys it lists are trusted (relative to the file); any other signer is refused and
    nothing is placed; a malformed policy is exit 2 naming it, before anything is downloaded, signed or not."""
    from mlsec_actions.signing import key

    for who in ("signer", "other"):
        (tmp_path / who).mkdir()
        key.generate(tmp_path / who / "k.pem", tmp_path / who / "k.pub")
    data = b"policy-signed model bytes"
    src = http_server.root / "tp" / "model.bin"
    src.parent.mkdir(parents=True)
    src.write_bytes(data)
    assert cli.main(["sign", "--backend", "key", "--key", str(tmp_path / "signer" / "k.pem"), str(src),
                     "--digest-cache", str(tmp_path / "dc.json")]) == 0
    url = f"{http_server.base}/tp/model.bin"
    _lock(ws, {"name": "model.bin", "url": url, "sha256": _sha(data), "bundle": url + ".sigstore.json"},
          require=True)
    policy = tmp_path / "policy" / "trust.yml"
    policy.parent.mkdir()
    policy.write_text("signers:\n  - public-key: other.pub\n    name: not the signer\n")
    (policy.parent / "other.pub").write_bytes((tmp_path / "other" / "k.pub").read_bytes())
    code, run = _run(ws, "--trust-policy", str(policy))
    assert "fetch/signature-invalid" in _rules(run) and _left(ws) == set()
    policy.write_text("signers:\n  - public-key: other.pub\n  - public-key: signer.pub\n    name: release\n")
    (policy.parent / "signer.pub").write_bytes((tmp_path / "signer" / "k.pub").read_bytes())
    code, run = _run(ws, "--trust-policy", str(policy))
    assert code == 0 and _rules(run) == set()
    assert _left(ws) == {"model.bin", "model.bin.sigstore.json"}
    for placed in ("model.bin", "model.bin.sigstore.json"):
        (ws / placed).unlink()
    capsys.readouterr()
    policy.write_text("signers:\n  - public-key: signer.pub\n    issur: x\n")
    for lock in ({"name": "model.bin", "url": url, "sha256": _sha(data), "bundle": url + ".sigstore.json"},
                 {"name": "model.bin", "url": url, "sha256": _sha(data)}):  # unsigned: still checked
        _lock(ws, lock)
        assert cli.main(["fetch", str(ws), "--sarif", str(ws.parent / "o.sarif"), "--trust-policy",
                         str(policy)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(policy) in err[0] and "line 3" in err[0] and "issur" in err[0], err
        assert _left(ws) == set()  # no quarantine either: refused before it is made
    (ws / "mlsec.lock").unlink()  # no lock: the antivirus pass over the tree checks the given policy too
    assert cli.main(["fetch", str(ws), "--sarif", str(ws.parent / "o.sarif"), "--trust-policy", str(policy)]) == 2
    assert str(policy) in capsys.readouterr().err
