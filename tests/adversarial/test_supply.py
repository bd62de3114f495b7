"""Hostile input to the supply-chain stages (issue 16), through the real `mlsec` command in a child process: fetch's
lock (escaping, absolute and duplicate names, credentials in URLs), its downloads (redirects off the mirror, a body
larger than pinned), a destination below a planted link, artifacts that are malicious under a digest pinned to
exactly those bytes, a ClamAV database the repository chose; publish with a tampered set or a failing verdict;
precommit's hooks without the opt-in. Each asserts the exit code and the message, and that nothing was placed or
published: the servers record every request, so "nothing published" is "no request reached the registry", not a
missing file.

Every refusal has a control (the same set-up without the hostile part goes through), so a check that refused
everything could not pass here.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.notify_servers import Recorder, recorder
from tests.supply_servers import EICAR, MARKER, HttpServer, clamav_db, http_server

pytestmark = pytest.mark.integration
__all__ = ["clamav_db", "http_server"]  # the session fixtures, used here


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("echo pwned",))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def mlsec(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real command, as a user runs it: no MLSEC_*/GITHUB_* from the test process, outputs to a file."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLSEC_", "GITHUB_", "MLFLOW_", "AWS_"))}
    return subprocess.run([sys.executable, "-m", "mlsec_actions", *args], cwd=cwd, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=300, check=False)


def _outputs(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    return dict(line.split("=", 1) for line in lines if "=" in line and "<<" not in line)


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    (tmp_path / "proj").mkdir()
    (tmp_path / "out").mkdir()
    return tmp_path / "proj"


def _lock(proj: Path, *artifacts: dict[str, Any]) -> None:
    (proj / "mlsec.lock").write_text(json.dumps({"version": 1, "artifacts": list(artifacts)}), encoding="utf-8")


def _left(proj: Path) -> set[str]:
    return {p.relative_to(proj).as_posix() for p in proj.rglob("*")} - {"mlsec.lock"}


def _fetch(proj: Path, db: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any],
                                                 dict[str, str]]:
    out = proj.parent / "out"
    got = mlsec("fetch", str(proj), "--sarif", str(out / "fetch.sarif"), "--timeout", "60", *extra, cwd=out,
                env={"MLSEC_CLAMAV_DB": str(db), "GITHUB_OUTPUT": str(out / "gh-output")})
    sarif = out / "fetch.sarif"
    run = json.loads(sarif.read_text())["runs"][0] if sarif.is_file() else {}
    return got, run, _outputs(out / "gh-output")


def _rules(run: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for r in run.get("results", []):
        uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] if r.get("locations") else ""
        found.setdefault(r["ruleId"], []).append(uri)
    return found


def _serve(http: HttpServer, name: str, data: bytes) -> str:
    (http.root / name).parent.mkdir(parents=True, exist_ok=True)
    (http.root / name).write_bytes(data)
    return f"{http.base}/{name}"


# --- fetch: the lock is refused whole, before any request -----------------------------------------------------

def _bad_locks(url: str, port: int) -> list[tuple[str, list[dict[str, Any]], str]]:
    one = {"sha256": "a" * 64}
    return [
        ("dotdot", [{"name": "../escape.bin", "url": url, **one}], "name"),
        ("nested-dotdot", [{"name": "models/../../escape.bin", "url": url, **one}], "name"),
        ("absolute", [{"name": "/etc/cron.d/mlsec", "url": url, **one}], "name"),
        ("duplicate", [{"name": "m.bin", "url": url, **one}, {"name": "m.bin", "url": url + "2", **one}], "m.bin"),
        ("case-clash", [{"name": "M.bin", "url": url, **one}, {"name": "m.BIN", "url": url + "2", **one}], "m.bin"),
        ("credentials", [{"name": "m.bin", "url": f"http://user:s3cr3t-pw@127.0.0.1:{port}/m.bin", **one}],
         "credentials"),
        ("http-elsewhere", [{"name": "m.bin", "url": "http://models.example.org/m.bin", **one}], "loopback"),
    ]


@pytest.mark.parametrize("case", [c for c, _, _ in _bad_locks("http://127.0.0.1:1/x", 1)])
def test_a_hostile_lock_is_exit_2_naming_the_file_before_any_request(proj: Path, clamav_db: Path, case: str) -> None:
    with recorder() as rec:
        port = int(rec.url.rsplit(":", 1)[1])
        entries, word = next((e, w) for c, e, w in _bad_locks(f"{rec.url}/m.bin", port) if c == case)
        _lock(proj, *entries)
        got, _, outputs = _fetch(proj, clamav_db)
    assert got.returncode == 2, got.stderr
    lines = got.stderr.strip().splitlines()
    assert len(lines) == 1 and "mlsec.lock" in lines[0] and word in lines[0].lower(), got.stderr
    assert "s3cr3t-pw" not in got.stderr + got.stdout
    assert rec.seen == [], [s.path for s in rec.seen]
    assert _left(proj) == set() and not (proj.parent / "escape.bin").exists()
    assert outputs.get("artifacts") is None


def test_control_a_good_lock_to_the_same_server_is_fetched(proj: Path, clamav_db: Path) -> None:
    with recorder() as rec:
        _lock(proj, {"name": "m.bin", "url": f"{rec.url}/m.bin", "sha256": _sha(b"ok")})
        got, run, outputs = _fetch(proj, clamav_db)
    assert got.returncode == 0 and [s.path for s in rec.seen] == ["/m.bin"], got.stderr
    assert _rules(run) == {} and _left(proj) == {"m.bin"} and outputs["artifacts"] == "1"


# --- fetch: downloads that leave the mirror or grow ------------------------------------------------------------

@pytest.mark.parametrize("target", ["http://models.example.org/m.bin", "http://localhost:{port}/m.bin",
                                    "file:///etc/passwd", "ftp://127.0.0.1/m.bin"])
def test_a_redirect_off_the_mirror_is_a_failed_download_and_never_followed(
        proj: Path, clamav_db: Path, http_server: HttpServer, target: str) -> None:
    with recorder() as rec:
        to = target.format(port=rec.url.rsplit(":", 1)[1])
        _lock(proj, {"name": "m.bin", "url": f"{http_server.base}/redirect?to={quote(to, safe='')}",
                     "sha256": _sha(b"ok")})
        got, run, outputs = _fetch(proj, clamav_db)
    assert got.returncode == 1, got.stderr  # a tool failure, never a pass
    fetch = next(i for i in run["invocations"] if i["properties"]["tool"] == "mlsec-fetch")
    assert fetch["executionSuccessful"] is False and "redirect" in json.dumps(fetch).lower()
    assert rec.seen == []  # another host (localhost is not 127.0.0.1's name here) got no request
    assert _left(proj) == set() and outputs["withheld"] == "true" and outputs["artifacts"] == "0"


def test_a_body_larger_than_pinned_is_cut_off_and_nothing_is_placed(proj: Path, clamav_db: Path,
                                                                     http_server: HttpServer) -> None:
    body = b"pinned part" + b"\0" * 100_000
    _lock(proj, {"name": "ok.bin", "url": _serve(http_server, "grow/ok.bin", b"ok"), "sha256": _sha(b"ok")},
          {"name": "m.bin", "url": _serve(http_server, "grow/m.bin", body), "sha256": _sha(body), "size": 11})
    got, run, outputs = _fetch(proj, clamav_db)
    assert got.returncode == 0, got.stderr  # the stage ran; the findings withhold the artifacts
    rules = _rules(run)
    assert rules.get("fetch/digest-mismatch") == ["m.bin"] and "fetch/withheld" in rules, rules
    assert "not the pinned 11 bytes" in json.dumps(run["results"])
    assert _left(proj) == set() and outputs["withheld"] == "true" and outputs["artifacts"] == "0"


# --- fetch: malicious bytes under their own (valid) digest -----------------------------------------------------

def _zip(members: dict[str, bytes]) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


MALICIOUS = {
    "pickle": ("model.pkl", pickle.dumps(_Evil(), protocol=4), "pickle/"),
    "torch-zip": ("model.pt", _zip({"archive/data.pkl": pickle.dumps(_Evil(), protocol=2), "archive/version": b"3\n"}),
                  "pickle/"),
    "eicar-in-zip": ("weights.zip", _zip({"w/readme.txt": b"hello", "w/eicar.com": EICAR}), "clamav/malware"),
    "marker": ("tokenizer.json", b'{"vocab": "' + MARKER + b'"}', "clamav/malware"),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_bytes_under_their_own_digest_are_stopped_by_the_scanners(
        proj: Path, clamav_db: Path, http_server: HttpServer, case: str) -> None:
    name, data, rule = MALICIOUS[case]
    clean = b'{"vocab": ["a"]}'
    _lock(proj, {"name": "clean.json", "url": _serve(http_server, f"{case}/clean.json", clean), "sha256": _sha(clean)},
          {"name": f"models/{name}", "url": _serve(http_server, f"{case}/{name}", data), "sha256": _sha(data)})
    got, run, outputs = _fetch(proj, clamav_db)
    assert got.returncode == 0, got.stderr
    rules = _rules(run)
    assert any(r.startswith(rule) and f"models/{name}" in uris for r, uris in rules.items()), rules
    assert "fetch/withheld" in rules and "fetch/digest-mismatch" not in rules
    assert _left(proj) == set() and outputs["withheld"] == "true" and outputs["artifacts"] == "0"
    assert not [p for p in proj.parent.rglob(".mlsec-quarantine-*")]  # the quarantine is gone too


@pytest.mark.parametrize("planted", ["link", "file"])
def test_a_destination_the_repository_planted_is_refused(proj: Path, clamav_db: Path, http_server: HttpServer,
                                                         tmp_path: Path, planted: str) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    _lock(proj, {"name": "m.bin", "url": _serve(http_server, f"dest-{planted}/m.bin", b"ok"), "sha256": _sha(b"ok")})
    dest = proj / "mlsec-fetched"
    if planted == "link":
        dest.symlink_to(outside)
    else:
        dest.write_text("not a folder")
    got, _, _ = _fetch(proj, clamav_db, "--dest", str(dest))
    assert got.returncode == 2, got.stderr
    assert got.stderr.strip().splitlines() == [f"mlsec: error: {dest}: destination is not a folder (or is a link)"]
    assert list(outside.iterdir()) == [] and not (proj / "m.bin").exists()


@pytest.mark.parametrize("case", ["parent", "grandparent", "parent-relative", "in-tree"])
def test_a_destination_below_a_planted_link_is_refused(proj: Path, clamav_db: Path, http_server: HttpServer,
                                                       tmp_path: Path, case: str) -> None:
    """`a -> elsewhere` and `--dest a/b`: the last component is a real folder, a folder above it is a link. Refused
    whether the link leads out of the tree or to a folder inside it, and whether --dest is absolute or relative."""
    outside = tmp_path / "elsewhere"
    (outside / "b" / "c").mkdir(parents=True)
    (proj / "real" / "b").mkdir(parents=True)
    _lock(proj, {"name": "m.bin", "url": _serve(http_server, f"dest-below-{case}/m.bin", b"ok"), "sha256": _sha(b"ok")})
    link = proj / "a"
    link.symlink_to("real" if case == "in-tree" else outside, target_is_directory=True)
    dest = link / "b" / "c" if case == "grandparent" else link / "b"
    written = os.path.relpath(dest, proj.parent / "out") if case == "parent-relative" else str(dest)
    shown = os.path.relpath(link, proj.parent / "out") if case == "parent-relative" else str(link)
    got, _, outputs = _fetch(proj, clamav_db, "--dest", written)
    assert got.returncode == 2, got.stderr
    target = "real" if case == "in-tree" else str(outside)
    assert got.stderr.strip().splitlines() == [
        f"mlsec: error: {written}: destination goes through a link: {shown} -> {target}"]
    assert [p for p in tmp_path.rglob("*") if p.name == "m.bin" or p.name.startswith(".mlsec-quarantine-")] == []
    assert not (proj.parent / "out" / "fetch.sarif").exists() and outputs == {}  # refused before any work


@pytest.mark.parametrize("relative", [False, True])
def test_control_a_plain_nested_destination_is_used(proj: Path, clamav_db: Path, http_server: HttpServer,
                                                    relative: bool) -> None:
    dest = proj / "models" / "nested" / "deep"
    dest.mkdir(parents=True)
    (proj / "linked-elsewhere").symlink_to(proj / "models")  # a link beside the path, not on it, is no matter
    _lock(proj, {"name": "m.bin", "url": _serve(http_server, f"dest-nested-{relative}/m.bin", b"ok"),
                 "sha256": _sha(b"ok")})
    written = os.path.relpath(dest, proj.parent / "out") if relative else str(dest)
    got, _, outputs = _fetch(proj, clamav_db, "--dest", written)
    assert got.returncode == 0, got.stderr
    assert (dest / "m.bin").read_bytes() == b"ok" and outputs["artifacts"] == "1"


# --- fetch: the repository does not choose the signatures ------------------------------------------------------

@pytest.mark.parametrize("where", ["in-tree", "link-in-tree", "in-dest", "env-in-tree", "no-lock"])
def test_a_clamav_database_inside_the_scanned_tree_is_refused(proj: Path, clamav_db: Path, http_server: HttpServer,
                                                              where: str) -> None:
    _lock(proj, {"name": "m.bin", "url": _serve(http_server, f"db-{where}/m.bin", b"ok"), "sha256": _sha(b"ok")})
    dest = proj.parent / "dest"
    dest.mkdir()
    own = proj / "sigs"
    own.mkdir()
    (own / "empty.ndb").write_text("Nothing.Here:0:*:00ff00ff00ff00ff\n")  # a database that matches nothing
    extra: list[str] = []
    db = own
    if where == "no-lock":  # the antivirus pass over the tree
        (proj / "mlsec.lock").unlink()
    elif where == "link-in-tree":
        (proj / "av").symlink_to(clamav_db)  # a link in the tree to the runner's real database
        db = proj / "av"
    elif where == "in-dest":
        extra = ["--dest", str(dest)]
        db = dest / "sigs"
        db.mkdir()
    if where == "env-in-tree":
        got, _, _ = _fetch(proj, db)  # MLSEC_CLAMAV_DB, as the action passes it
    else:
        got, _, _ = _fetch(proj, clamav_db, "--clamav-db", str(db), *extra)
    assert got.returncode == 2, got.stderr
    line = got.stderr.strip().splitlines()
    assert len(line) == 1 and "ClamAV database is inside the scanned tree" in line[0], got.stderr
    assert not (proj / "m.bin").exists() and not (dest / "m.bin").exists()
    assert not [p for p in proj.parent.rglob(".mlsec-quarantine-*")]


def test_control_the_runners_database_outside_the_tree_is_used(proj: Path, clamav_db: Path,
                                                                http_server: HttpServer) -> None:
    _lock(proj, {"name": "m.bin", "url": _serve(http_server, "db-outside/m.bin", EICAR), "sha256": _sha(EICAR)})
    got, run, _ = _fetch(proj, clamav_db, "--clamav-db", str(clamav_db))
    assert got.returncode == 0 and "clamav/malware" in _rules(run), got.stderr  # our signatures, not the tree's
    _lock(proj, {"name": "m.bin", "url": _serve(http_server, "db-outside/ok.bin", b"ok"), "sha256": _sha(b"ok")})
    got, run, _ = _fetch(proj, clamav_db, "--clamav-db", str(clamav_db))
    assert got.returncode == 0 and _left(proj) == {"m.bin"}, got.stderr


# --- publish: refused before any request to the registry -------------------------------------------------------

@pytest.fixture
def signed(tmp_path: Path) -> Path:
    """A passing verdict, a model signed with a key and the gate attestation: what the sign job leaves."""
    ws = tmp_path / "pub"
    (ws / "mlsec-results").mkdir(parents=True)
    (ws / "model.bin").write_bytes(b"model weights" * 64)
    verdict = {"verdict": "pass", "policy": {"path": "policies/default.yml", "sha256": "cd" * 32}, "inputs": [],
               "violations": [], "counts": {}, "tools": []}
    (ws / "mlsec-results" / "verdict.json").write_text(json.dumps(verdict))
    from mlsec_actions.signing import key

    for name in ("k", "other"):
        key.generate(ws / f"{name}.pem", ws / f"{name}.pub")
    got = mlsec("sign", "--backend", "key", "--key", "k.pem", "--verdict", "mlsec-results/verdict.json", "--attest",
                "model.bin", cwd=ws)
    assert got.returncode == 0, got.stderr
    return ws


def _publish(ws: Path, rec: Recorder, key: str = "k.pub") -> subprocess.CompletedProcess[str]:
    return mlsec("publish", "model.bin", "--name", "clf", "--mlflow-uri", rec.url, "--public-key", key,
                 "--verdict", "mlsec-results/verdict.json", "--attestation", "mlsec-results/gate.intoto.sigstore.json",
                 "--s3", "s3://published/models", "--nexus", f"{rec.url}/repository/raw-releases", cwd=ws,
                 env={"MLSEC_S3_ENDPOINT_URL": rec.url, "NEXUS_USERNAME": "u", "NEXUS_PASSWORD": "p",
                      "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"})


def _tamper_bundle(ws: Path) -> None:
    """One character of the DSSE signature changed: still a well-formed bundle, no longer a valid signature."""
    path = ws / "model.bin.sigstore.json"
    doc = json.loads(path.read_text())
    sig = doc["dsseEnvelope"]["signatures"][0]["sig"]
    doc["dsseEnvelope"]["signatures"][0]["sig"] = ("A" if sig[0] != "A" else "B") + sig[1:]
    path.write_text(json.dumps(doc))


HOSTILE_PUBLISH = {
    "failing-verdict": lambda ws: (ws / "mlsec-results" / "verdict.json").write_text(
        (ws / "mlsec-results" / "verdict.json").read_text().replace('"pass"', '"fail"')),
    "model-changed-after-signing": lambda ws: (ws / "model.bin").write_bytes(b"other weights"),
    "bundle-tampered": _tamper_bundle,
    "bundle-missing": lambda ws: (ws / "model.bin.sigstore.json").unlink(),
    "attestation-missing": lambda ws: (ws / "mlsec-results" / "gate.intoto.sigstore.json").unlink(),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_PUBLISH))
def test_publish_of_a_tampered_set_or_a_failing_verdict_sends_nothing(signed: Path, case: str) -> None:
    HOSTILE_PUBLISH[case](signed)
    with recorder() as rec:
        got = _publish(signed, rec)
    assert got.returncode == 1, (got.returncode, got.stderr)
    assert "refusing to publish" in got.stderr or "verify" in got.stderr.lower(), got.stderr
    assert rec.seen == [], [(s.method, s.path) for s in rec.seen]  # neither MLflow, S3 nor Nexus heard of it


def test_publish_with_someone_elses_key_sends_nothing(signed: Path) -> None:
    with recorder() as rec:
        got = _publish(signed, rec, key="other.pub")
    assert got.returncode == 1 and "refusing to publish" in got.stderr, got.stderr
    assert rec.seen == []


def test_control_the_untouched_set_does_reach_the_registry(signed: Path) -> None:
    with recorder() as rec:  # not an MLflow server: publish gets past its checks, then fails on the answer
        got = _publish(signed, rec)
    assert rec.seen, got.stderr
    assert "refusing" not in got.stderr


# --- precommit: the repository's hooks are code; they run only on the caller's opt-in --------------------------

def _hook_repo(tmp_path: Path) -> tuple[Path, Path]:
    repo, marker = tmp_path / "repo", tmp_path / "hook-ran"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / "app.py").write_text("print('hello')\n")
    config = {"repos": [{"repo": "local", "hooks": [{"id": "plant", "name": "plant", "language": "system",
                                                     "entry": f"touch {marker}", "pass_filenames": False,
                                                     "always_run": True}]}]}
    (repo / ".pre-commit-config.yaml").write_text(json.dumps(config))  # JSON is YAML
    # A repository config asking for its own hooks: only the caller's --run-hooks counts.
    (repo / ".mlsec.yml").write_text("precommit: hooks\nrun-hooks: true\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    return repo, marker


@pytest.mark.parametrize("ci", [False, True])
def test_precommit_does_not_run_the_repositorys_hooks_without_the_opt_in(tmp_path: Path, ci: bool) -> None:
    repo, marker = _hook_repo(tmp_path)
    env = {"PRE_COMMIT_HOME": str(tmp_path / "pc-home"), **({"GITHUB_ACTIONS": "true"} if ci else {})}
    got = mlsec("precommit", str(repo), "--sarif", str(tmp_path / "precommit.sarif"), cwd=tmp_path, env=env)
    assert got.returncode == 0, got.stderr
    assert not marker.exists()
    run = json.loads((tmp_path / "precommit.sarif").read_text())["runs"][0]
    assert not [i for i in run["invocations"] if i["properties"]["tool"] == "pre-commit"], run["invocations"]
    # Control: with the caller's opt-in the same hook does run (so the check above can fail).
    got = mlsec("precommit", str(repo), "--run-hooks", "--sarif", str(tmp_path / "precommit2.sarif"), cwd=tmp_path,
                env=env)
    assert marker.exists(), got.stderr
