"""Property-based (Hypothesis): hostile file names and option values through code-scan, model-scan and
`mlsec run`. Never a traceback, never a raw workflow command in the log, never exit 0 on garbage, and
every SARIF strict UTF-8 with the file's real bytes in its URI."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import urllib.parse
import uuid
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlsec_actions import cli
from tests.faults.conftest import clean_env

pytestmark = pytest.mark.integration

# Name parts an attacker would choose: undecodable bytes, line breaks, workflow commands, Markdown, long runs.
_PIECES = st.sampled_from([b"\xff", b"\xe9", b"\n", b"\r", b"::error title=pwned::X", b"%0A", b"::", b"[x](y)",
                           b"<img>", b" ", b"..", b"\t", b"a" * 120, "é".encode(), b"\x1b[31m"])
FILE_NAMES = st.lists(st.one_of(_PIECES, st.binary(min_size=1, max_size=8)), min_size=1, max_size=6).map(
    lambda parts: b"".join(parts).replace(b"/", b"_").replace(b"\0", b"_")[:250] or b"x").filter(
    lambda n: n not in (b".", b".."))
SLOW = settings(deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# A pickle that calls os.system on load: built as bytes, never loaded.
EVIL_PICKLE = (b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94"
               b"\x8c\x02id\x94\x85\x94R\x94.")


def _make(folder: Path, name: bytes, data: bytes) -> Path:
    folder.mkdir(parents=True)
    path = os.fsencode(folder) + b"/" + name
    with open(path, "wb") as f:  # noqa: PTH123 -- a bytes path: the name is not valid UTF-8 on purpose
        f.write(data)
    return Path(os.fsdecode(path))


def _assert_clean_log(err: str) -> None:
    assert "Traceback" not in err
    for line in err.splitlines():
        assert not line.lstrip().startswith("::"), line
        assert "::error" not in line, line


def _uris(sarif: Path) -> set[str]:
    doc = json.loads(sarif.read_bytes().decode("utf-8"))  # strict: raises on any non-UTF-8 byte
    return {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in doc["runs"][0]["results"]}


@settings(SLOW, max_examples=40)
@given(name=FILE_NAMES)
def test_model_scan_takes_any_file_name(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: bytes) -> None:
    base = tmp_path / uuid.uuid4().hex
    _make(base / "proj", name, EVIL_PICKLE)
    out = base / "model-scan.sarif"
    code = cli.main(["model-scan", str(base / "proj"), "--sarif", str(out), "--no-modelscan"])
    _assert_clean_log(capsys.readouterr().err)
    assert code == 0
    # The finding is there (not silently dropped for its name), at the file's real bytes, percent-encoded.
    assert urllib.parse.quote(name, safe="/!$&'()*+,;=@~") in _uris(out) or any(
        urllib.parse.unquote_to_bytes(u) == name for u in _uris(out))


@settings(SLOW, max_examples=6)
@given(name=FILE_NAMES)
def test_code_scan_takes_any_file_name(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: bytes) -> None:
    base = tmp_path / uuid.uuid4().hex
    _make(base / "proj", name + b".py", b'aws_access_key_id = "AKIA2E0A8F3B244C9986"\n')
    out = base / "code-scan.sarif"
    code = cli.main(["code-scan", str(base / "proj"), "--sarif", str(out), "--vuln-db", "skip"])
    _assert_clean_log(capsys.readouterr().err)
    assert code in (0, 1)
    _uris(out)  # valid strict UTF-8 whatever trivy made of the name


_VALUES = st.one_of(st.text(max_size=30), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.booleans(), st.none(), st.lists(st.integers(), max_size=3))
_OPTIONS = ("max-depth", "max-entries")


def _valid_int(option: str, value: object) -> bool:
    if isinstance(value, bool | list) or value is None or isinstance(value, float):
        return False
    try:
        number = int(str(value).strip())
    except ValueError:
        return False
    return number >= (0 if option == "max-depth" else 1)


@settings(SLOW, max_examples=60)
@given(option=st.sampled_from(sorted(_OPTIONS)), value=_VALUES, via=st.sampled_from(["env", "config", "argv"]))
def test_option_values_from_anywhere_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str], option: str, value: object,
                                                 via: str) -> None:
    base = tmp_path / uuid.uuid4().hex
    (base / "proj").mkdir(parents=True)
    argv = ["model-scan", str(base / "proj"), "--sarif", str(base / "o.sarif"), "--no-modelscan"]
    for name in _OPTIONS:  # the fixture spans every example: start each from a clean environment
        monkeypatch.delenv("MLSEC_" + name.upper().replace("-", "_"), raising=False)
    if via == "env":
        if value is None or isinstance(value, list) or str(value) == "":
            return  # an empty variable is 'unset' by design; lists are not one env value
        monkeypatch.setenv("MLSEC_" + option.upper().replace("-", "_"), str(value))
    elif via == "config":
        (base / "c.yml").write_text(yaml.safe_dump({"model-scan": {option: value}}))
        argv += ["--config", str(base / "c.yml")]
    else:
        if value is None or isinstance(value, list) or (str(value).startswith("-") and not str(value)[1:].isdigit()):
            return  # argparse reads '-x' as an option name: not a value
        argv += [f"--{option}", str(value)]
    code = cli.main(argv)
    err = capsys.readouterr().err
    _assert_clean_log(err)
    if _valid_int(option, value):
        assert code == 0, err
    else:
        assert code == 2, (value, err)
        assert err.count("\n") == 1 and not (base / "o.sarif").exists()


@settings(SLOW, max_examples=4)
@given(name=FILE_NAMES)
def test_mlsec_run_with_a_hostile_file_name_goes_red(tmp_path: Path, name: bytes) -> None:
    base = tmp_path / uuid.uuid4().hex
    _make(base / "proj", name, EVIL_PICKLE)
    (base / "mlsec.yml").write_text("code-scan:\n  vuln-db: skip\n")
    exe = str(Path(sys.executable).parent / "mlsec")
    proc = subprocess.run([exe, "run", str(base / "proj"), "--out", str(base / "out"), "--config",
                           str(base / "mlsec.yml")], env=clean_env(), capture_output=True, text=True,
                          errors="replace", timeout=600, check=False)
    _assert_clean_log(proc.stderr)
    assert proc.returncode == 3, proc.stderr  # a pickle calling os.system is never a green run
    verdict = json.loads((base / "out" / "verdict.json").read_text())
    assert any(v.get("stage") == "model-scan" for v in verdict["violations"])


def test_evil_pickle_fixture_is_what_it_claims() -> None:
    import pickletools

    ops = [op.name for op, _, _ in pickletools.genops(EVIL_PICKLE)]
    assert "STACK_GLOBAL" in ops and "REDUCE" in ops
    assert pickle.dumps is not None  # the module is imported for genops' sibling only; nothing is loaded


_BAD_CONFIG = st.fixed_dictionaries({}, optional={
    "timeout": st.one_of(st.integers(max_value=0), st.text(max_size=5).filter(lambda t: not t.strip()),
                         st.just(".inf"), st.just("soon")),
    "max-depth": st.one_of(st.integers(max_value=-1), st.floats(allow_nan=True), st.just("deep")),
    "vuln-db": st.text(max_size=12).filter(lambda t: t not in ("auto", "download", "skip")),
}).filter(bool)


@settings(SLOW, max_examples=25)
@given(values=_BAD_CONFIG)
def test_mlsec_run_refuses_a_bad_config_before_any_stage(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         values: dict[str, object]) -> None:
    base = tmp_path / uuid.uuid4().hex
    (base / "proj").mkdir(parents=True)
    sections: dict[str, dict[str, object]] = {"code-scan": {}, "model-scan": {}}
    for key, value in values.items():
        sections["model-scan" if key == "max-depth" else "code-scan"][key] = value
    (base / "c.yml").write_text(yaml.safe_dump({k: v for k, v in sections.items() if v}))
    code = cli.main(["run", str(base / "proj"), "--out", str(base / "out"), "--config", str(base / "c.yml")])
    err = capsys.readouterr().err
    _assert_clean_log(err)
    assert code == 2, err
    assert err.count("\n") == 1 and str(base / "c.yml") in err
    assert not (base / "out").exists()  # nothing started
