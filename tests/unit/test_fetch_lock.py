"""mlsec.lock as hostile input: every bad name, URL or shape is one line naming the file and the entry, exit 2,
before anything is downloaded; the quarantine-to-destination move never follows a planted link."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from mlsec_actions import cli
from mlsec_actions.errors import InputError
from mlsec_actions.supply import lock, place

SHA = "a" * 64


def _write(tmp_path: Path, *artifacts: dict[str, Any], **top: Any) -> Path:
    path = tmp_path / "mlsec.lock"
    path.write_text(json.dumps({"version": 1, "artifacts": list(artifacts), **top}))
    return path


def _entry(**over: Any) -> dict[str, Any]:
    return {"name": "models/m.bin", "url": "https://models.example.org/m.bin", "sha256": SHA, **over}


def test_a_good_lock_parses(tmp_path: Path) -> None:
    got = lock.load(_write(tmp_path, _entry(size=3, bundle="https://h.example/m.bin.sigstore.json"),
                           _entry(name="tok.json", url="s3://my-models/v1/tok.json"), require_signatures=True))
    assert got.require_signatures
    first, second = got.artifacts
    assert (first.name, first.size, first.source.host, first.bundle is not None) == ("models/m.bin", 3,
                                                                                       "models.example.org", True)
    assert (second.source.scheme, second.source.host, second.source.path) == ("s3", "my-models", "v1/tok.json")
    assert lock.load(_write(tmp_path, _entry(url="http://127.0.0.1:8080/m"))).artifacts[0].source.scheme == "http"


@pytest.mark.parametrize("name", [
    "../escape", "a/../../b", "/etc/passwd", "a//b", "./a", "a/.", "", "a\\b", "line\nbreak", "nul\x00x",
    "-rf", "a/-x", "x" * 256, "m.bin.sigstore.json", "bidi\u202eexe.bin", "a/" * 600,
])
def test_hostile_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match=r"artifacts\[0\]"):
        lock.load(_write(tmp_path, _entry(name=name)))


@pytest.mark.parametrize(("url", "why"), [
    ("file:///etc/passwd", "scheme"), ("ftp://h/x", "scheme"), ("javascript:alert(1)", "scheme"),
    ("http://example.com/m", "loopback"), ("http://10.0.0.1/m", "loopback"), ("https://user:pw@h/x", "credentials"),
    ("https:///nohost", "no host"), ("s3://Bad_Bucket/k", "s3://"), ("s3://bucket", "s3://"),
    ("https://h/a b", "space"), ("https://h/x\r\nInjected: 1", "control"), ("https://h:99999/x", "port"),
    ("https://h/x#frag", "fragment"), ("https://h/" + "x" * 3000, "maxLength"),
])
def test_hostile_urls_are_refused(tmp_path: Path, url: str, why: str) -> None:
    with pytest.raises(InputError, match=why):
        lock.load(_write(tmp_path, _entry(url=url)))


@pytest.mark.parametrize("doc", [
    {"version": 2, "artifacts": []}, {"artifacts": []}, {"version": 1, "artifacts": [{"name": "a"}]},
    {"version": 1, "artifacts": [], "extra": 1}, {"version": 1, "artifacts": [_entry(sha256="A" * 64)]},
    {"version": 1, "artifacts": [_entry(size=-1)]}, {"version": 1, "artifacts": [_entry(command="rm -rf /")]},
    [], "lock",
])
def test_schema_violations_are_refused(tmp_path: Path, doc: Any) -> None:
    path = tmp_path / "mlsec.lock"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"mlsec\.lock"):
        lock.load(path)


@pytest.mark.parametrize(("a", "b"), [("m.bin", "m.bin"), ("M.bin", "m.BIN"), ("models", "models/x.bin"),
                                      ("models/x.bin", "models")])
def test_clashing_names_are_refused(tmp_path: Path, a: str, b: str) -> None:
    with pytest.raises(InputError, match="clashes"):
        lock.load(_write(tmp_path, _entry(name=a), _entry(name=b)))


def test_not_json_deep_or_huge_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mlsec.lock"
    path.write_text("[" * 100 + "]" * 100)
    with pytest.raises(InputError, match="nested"):
        lock.load(path)
    path.write_bytes(b" " * (lock.MAX_LOCK_BYTES + 1))
    with pytest.raises(InputError, match="limit"):
        lock.load(path)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(InputError, match="not a regular file"):
        lock.load(tmp_path / "fifo")


def test_cli_bad_lock_is_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "proj").mkdir()
    _write(tmp_path / "proj", _entry(name="../../x"))
    code = cli.main(["fetch", str(tmp_path / "proj"), "--sarif", str(tmp_path / "f.sarif")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "mlsec.lock" in err and "artifacts[0]" in err
    assert not list((tmp_path / "proj").glob(".mlsec-quarantine-*"))


def test_place_refuses_a_planted_symlink_folder(tmp_path: Path) -> None:
    quarantine, dest, outside = tmp_path / "q", tmp_path / "dest", tmp_path / "outside"
    for d in (quarantine / "models", dest, outside):
        d.mkdir(parents=True)
    (quarantine / "models" / "m.bin").write_bytes(b"x")
    (quarantine / "ok.bin").write_bytes(b"y")
    (dest / "models").symlink_to(outside)
    with pytest.raises(InputError, match="not a plain folder"):
        place.place(quarantine, dest, ["ok.bin", "models/m.bin"])
    assert list(outside.iterdir()) == [] and not (dest / "ok.bin").exists()  # all or nothing


def test_place_refuses_a_folder_or_link_where_the_file_goes(tmp_path: Path) -> None:
    quarantine, dest = tmp_path / "q", tmp_path / "dest"
    quarantine.mkdir()
    dest.mkdir()
    (quarantine / "m.bin").write_bytes(b"x")
    (dest / "m.bin").symlink_to("/etc/passwd")
    with pytest.raises(InputError, match="in the way"):
        place.place(quarantine, dest, ["m.bin"])
    (dest / "m.bin").unlink()
    (dest / "m.bin").mkdir()
    with pytest.raises(InputError, match="in the way"):
        place.place(quarantine, dest, ["m.bin"])
    (dest / "m.bin").rmdir()
    (dest / "m.bin").write_bytes(b"old")
    assert place.place(quarantine, dest, ["m.bin"]) == ["m.bin"]
    assert (dest / "m.bin").read_bytes() == b"x"
