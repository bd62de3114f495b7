"""inputs: only regular files, bounded bytes, bounded JSON depth without recursion, bounded YAML; every
problem one InputError naming the file (exit 2)."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsec_actions import inputs
from mlsec_actions.errors import ExitCode, InputError
from mlsec_actions.inputs import json_depth_over, load_json, load_yaml, load_yaml_lines, read_regular
from tests.trees import nesting_depth
from tests.unit.test_yaml_lines import billion_laughs


def _write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


@pytest.mark.parametrize("loader", [read_regular, load_json, load_yaml])
def test_a_fifo_is_refused_at_once(tmp_path: Path, loader: Any) -> None:
    fifo = tmp_path / "policy.yml"
    os.mkfifo(fifo)
    got: list[BaseException | None] = []

    def call() -> None:
        try:
            loader(fifo, "policy")
            got.append(None)
        except BaseException as e:
            got.append(e)

    reader = threading.Thread(target=call, daemon=True)
    reader.start()
    reader.join(60)  # a bound on a hang, not a timing assert: the refusal takes milliseconds
    if reader.is_alive():  # a blocking open waits for a writer for ever: be one, so the thread ends
        os.close(os.open(fifo, os.O_WRONLY))
        reader.join()
        pytest.fail("reading a FIFO with no writer blocked instead of being refused")
    [error] = got
    assert isinstance(error, InputError) and "not a regular file" in str(error)
    assert error.exit_code == ExitCode.USAGE and str(fifo) in str(error)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
@pytest.mark.parametrize("loader", [read_regular, load_json, load_yaml])
def test_a_device_is_refused(device: str, loader: Any) -> None:
    with pytest.raises(InputError, match="not a regular file"):
        loader(Path(device), "SARIF")


def test_a_directory_and_a_missing_file_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"regular file|cannot read"):
        read_regular(tmp_path, "config")
    with pytest.raises(InputError, match="cannot read config"):
        read_regular(tmp_path / "missing.yml", "config")


def test_byte_limit_is_exact(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.json", b"1" * 100)
    assert read_regular(path, "x", max_bytes=100) == b"1" * 100
    with pytest.raises(InputError, match="limit is 99"):
        read_regular(path, "x", max_bytes=99)


def test_yaml_byte_limit_is_smaller_than_documents(tmp_path: Path) -> None:
    path = _write(tmp_path / "big.yml", "a: " + "x" * inputs.MAX_YAML_BYTES + "\n")
    with pytest.raises(InputError, match="limit"):
        load_yaml(path, "policy")


def test_json_depth_limit_is_exact(tmp_path: Path) -> None:
    path = _write(tmp_path / "deep.json", "[" * 10 + "]" * 10)
    assert load_json(path, "SARIF", max_depth=10) == json.loads("[" * 10 + "]" * 10)
    with pytest.raises(InputError, match="nested deeper than 9 levels"):
        load_json(path, "SARIF", max_depth=9)


def test_json_depth_100k_is_an_input_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "deep.json", '{"a": ' * 100_000 + "1" + "}" * 100_000)
    with pytest.raises(InputError, match="nested deeper than 128"):
        load_json(path, "verdict")


def test_json_errors_name_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "v.json", b'{"a": ')
    with pytest.raises(InputError, match="not valid JSON") as e:
        load_json(path, "verdict")
    assert str(path) in str(e.value)
    with pytest.raises(InputError, match="not valid JSON"):
        load_json(_write(tmp_path / "b.json", b"\xff\xfe"), "verdict")


@pytest.mark.parametrize(("text", "match"), [
    (billion_laughs(), "line 3: more than 16 aliases"),
    ("[" * 100_000 + "]" * 100_000, "nest"),  # libyaml may see it first: "exceeded maximum nesting depth"
    ("a:\n" + "".join(" " * i + "- \n" for i in range(1, 100)), "deeper than 64 levels"),
    ("a: 1\na: 2\n", "line 2: a: duplicate key"),
    ("a: [1\n", "not valid YAML"),
    ("a: !!python/object/apply:os.system [id]\n", "not valid YAML"),
    ("a: \x07\n", "not valid YAML"),
])
def test_yaml_problems_are_one_line_input_errors(tmp_path: Path, text: str, match: str) -> None:
    path = _write(tmp_path / "policy.yml", text)
    with pytest.raises(InputError, match=match) as e:
        load_yaml(path, "policy")
    assert "\n" not in str(e.value) and str(e.value).startswith(f"{path}: policy")


def test_yaml_must_be_utf8(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not UTF-8 text"):
        load_yaml(_write(tmp_path / "p.yml", b"a: \xff\n"), "policy")


def test_yaml_lines_gives_data_and_lines(tmp_path: Path) -> None:
    doc, lines = load_yaml_lines(_write(tmp_path / "c.yml", "code-scan:\n  timeout: 3\n"), "config")
    assert doc == {"code-scan": {"timeout": 3}} and lines[("code-scan", "timeout")] == 2


# --- property-based

JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                              st.text(alphabet=st.sampled_from('[]{}"\\ab,:'), max_size=8)),
                    lambda inner: st.one_of(st.lists(inner, max_size=3),
                                            st.dictionaries(st.text(alphabet=st.sampled_from('[]{}"\\k'), max_size=4),
                                                            inner, max_size=3)),
                    max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(data=JSON, limit=st.integers(min_value=0, max_value=12), indent=st.sampled_from([None, 1]))
def test_json_depth_check_matches_the_true_depth(data: Any, limit: int, indent: int | None) -> None:
    # Strings full of brackets, quotes and backslashes must not fool it, either way.
    raw = json.dumps(data, indent=indent).encode()
    assert json_depth_over(raw, limit) == (nesting_depth(data) > limit)


@settings(max_examples=100, deadline=None)
@given(depth=st.integers(min_value=1, max_value=3000), kind=st.sampled_from("[{"))
def test_random_json_nesting_loads_or_fails_cleanly(tmp_path_factory: pytest.TempPathFactory, depth: int,
                                                    kind: str) -> None:
    body = ('{"k": ' * depth + "0" + "}" * depth) if kind == "{" else ("[" * depth + "]" * depth)
    path = _write(tmp_path_factory.mktemp("j") / "d.json", body)
    if depth <= inputs.MAX_JSON_DEPTH:
        load_json(path, "SARIF")
    else:
        with pytest.raises(InputError, match="nested deeper"):
            load_json(path, "SARIF")


@settings(max_examples=50, deadline=None)
@given(size=st.integers(min_value=0, max_value=4096), limit=st.integers(min_value=1, max_value=4096))
def test_random_sizes_load_or_fail_by_the_limit(tmp_path_factory: pytest.TempPathFactory, size: int,
                                                limit: int) -> None:
    path = _write(tmp_path_factory.mktemp("s") / "p.yml", "#" * size)
    if size <= limit:
        assert load_yaml(path, "policy", max_bytes=limit) is None
    else:
        with pytest.raises(InputError, match="limit"):
            load_yaml(path, "policy", max_bytes=limit)


def test_each_input_problem_is_worded_exactly(tmp_path: Path) -> None:
    def refusal(call: Any) -> str:
        with pytest.raises(InputError) as e:
            call()
        return str(e.value).replace(str(tmp_path), "T")

    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "fifo")
    assert refusal(lambda: read_regular(tmp_path / "missing", "config")) == (
        "T/missing: cannot read config: No such file or directory")
    assert refusal(lambda: read_regular(tmp_path / "d", "config")) == "T/d: config is not a regular file"
    assert refusal(lambda: read_regular(tmp_path / "fifo", "config")) == "T/fifo: config is not a regular file"
    assert refusal(lambda: read_regular(_write(tmp_path / "f", b"1" * 100), "config", 99)) == (
        "T/f: config is 100 bytes; the limit is 99")
    assert refusal(lambda: load_json(_write(tmp_path / "j", b'{"a": '), "verdict")) == (
        "T/j: verdict is not valid JSON (Expecting value: line 1 column 7 (char 6)); truncated or corrupt?")
    assert refusal(lambda: load_json(_write(tmp_path / "n", b"[[[]]]"), "verdict", max_depth=2)) == (
        "T/n: verdict is nested deeper than 2 levels")
    assert refusal(lambda: load_yaml(_write(tmp_path / "u", b"a: \xff\n"), "policy")) == (
        "T/u: policy is not UTF-8 text (byte 3)")
    assert refusal(lambda: load_yaml(_write(tmp_path / "y", "a: [1\n"), "policy")) == (
        "T/y: policy is not valid YAML (line 2: did not find expected ',' or ']')")
    assert refusal(lambda: load_yaml(_write(tmp_path / "k", "a: 1\na: 2\n"), "policy")) == (
        "T/k: policy line 2: a: duplicate key")
    assert refusal(lambda: load_yaml(_write(tmp_path / "b", "x" * 2000), "policy", 1000)) == (
        "T/b: policy is 2000 bytes; the limit is 1000")
    assert load_yaml(_write(tmp_path / "ok", "x" * 1000), "policy", 1000) == "x" * 1000


def test_a_file_that_grows_past_its_checked_size_or_fails_while_read_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "g", b"1" * 100)
    real_fstat = os.fstat

    class Small:
        def __init__(self, info: os.stat_result) -> None:
            self.st_mode, self.st_size = info.st_mode, 10

    monkeypatch.setattr(inputs.os, "fstat", lambda fd: Small(real_fstat(fd)))
    with pytest.raises(InputError, match=r"^.*/g: config is over the 99-byte limit$"):
        read_regular(path, "config", 99)
    assert read_regular(path, "config", 100) == b"1" * 100
    monkeypatch.undo()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(inputs.os, "fdopen", broken)
    with pytest.raises(InputError, match=r"^.*/g: cannot read config: Input/output error$"):
        read_regular(path, "config")


@pytest.mark.parametrize(("data", "limit", "over"), [
    (b'"[[[["', 2, False),  # brackets in a string
    (b'["\\"[[["]', 2, False),  # an escaped quote does not end the string
    (b'["\\\\", [[]]]', 2, True),  # an escaped backslash does not escape the quote after it
    (b'{"a":{"b":{}}}', 2, True),
    (b"[][][]", 1, False),  # siblings are not depth
    (b"[[", 5, False), (b"", 5, False),  # unbalanced or empty: json.loads's to report
    (b"[[[]]]", 3, False), (b"[[[]]]", 2, True),
])
def test_json_depth_exact(data: bytes, limit: int, over: bool) -> None:
    assert json_depth_over(data, limit) is over


def test_json_depth_without_a_run_of_brackets_and_the_classic_bomb() -> None:
    assert json_depth_over(b"[[][[]]]", 2) is True  # depth 3 with no three '[' in a row: found by the passes
    assert json_depth_over(b"[[][[]]]", 3) is False
    assert json_depth_over(b"[" * 11, 10) is True  # unclosed: the bomb is over at once, not "unbalanced"
    assert json_depth_over(b"[" * 10, 10) is False


def test_json_nested_past_the_recursion_limit_is_named(tmp_path: Path) -> None:
    # json.loads's C scanner stops at Python's recursion limit (1000 by default); 20,000 levels are far past it
    # and cheap for the depth check's passes (100,000 took 40 s of the mutation sweep for every mutant it ran).
    depth = 20_000
    assert depth > 10 * sys.getrecursionlimit()
    path = _write(tmp_path / "deep.json", b"[" * depth + b"]" * depth)
    with pytest.raises(InputError) as e:
        load_json(path, "SARIF", max_bytes=1 << 20, max_depth=10 ** 6)  # a caller's bound past Python's own
    assert str(e.value) == f"{path}: SARIF is nested too deeply"


def test_load_json_passes_its_name_and_limit_to_the_read(tmp_path: Path) -> None:
    path = _write(tmp_path / "v.json", b"[" + b"1," * 49 + b"1]")  # 101 bytes
    with pytest.raises(InputError) as e:
        load_json(path, "verdict", max_bytes=100)
    assert str(e.value) == f"{path}: verdict is 101 bytes; the limit is 100"
    assert load_json(path, "verdict", max_bytes=101) == [1] * 50
    with pytest.raises(InputError) as e:
        load_json(tmp_path, "verdict")
    assert str(e.value) == f"{tmp_path}: verdict is not a regular file"


def test_yaml_limits_given_by_the_caller_are_the_ones_applied(tmp_path: Path) -> None:
    from mlsec_actions.yaml_lines import Limits

    path = _write(tmp_path / "card.yml", "a:\n  b: 1\n")
    tight = Limits(max_depth=1)
    for call in (lambda: load_yaml_lines(path, "model card", limits=tight),
                 lambda: load_yaml(path, "model card", limits=tight)):
        with pytest.raises(InputError) as e:
            call()
        assert str(e.value) == f"{path}: model card is not valid YAML (line 2: nested deeper than 1 levels)"
    assert load_yaml(path, "model card") == {"a": {"b": 1}}  # the default limits allow it
    assert load_yaml(path, "model card", limits=Limits(max_depth=2)) == {"a": {"b": 1}}


def test_a_yaml_error_without_a_mark_is_still_one_line_naming_the_file(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # yaml_lines gives every error a mark today; a YAML error without one (another PyYAML, another path) must
    # still be one line, not a traceback and not a multi-line message.
    import yaml

    from mlsec_actions import yaml_lines

    path = _write(tmp_path / "p.yml", "a: 1\n")
    for error, text in ((yaml.MarkedYAMLError(problem="no mark here"), "no mark here"),
                        (yaml.YAMLError("first line\nsecond line"), "first line")):
        def raising(*args: Any, error: Exception = error) -> Any:
            raise error

        monkeypatch.setattr(yaml_lines, "compose", raising)
        with pytest.raises(InputError) as e:
            load_yaml(path, "policy")
        assert str(e.value) == f"{path}: policy is not valid YAML ({text})"


def test_a_file_without_end_is_read_only_one_byte_past_the_limit(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # A file that grows while it is read (a log, a FUSE file) has no end to read to: the read asks for the limit
    # and one byte, never for everything.
    path = _write(tmp_path / "g", b"{}")
    asked: list[object] = []

    class Endless:
        def __enter__(self) -> Endless:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def read(self, size: int | None = -1) -> bytes:
            asked.append(size)
            if size is None or size < 0:
                raise AssertionError("an unbounded read of a file that never ends")
            return b" " * size

    monkeypatch.setattr(inputs.os, "fdopen", lambda *args, **kwargs: Endless())
    with pytest.raises(InputError) as e:
        read_regular(path, "config", 99)
    assert str(e.value) == f"{path}: config is over the 99-byte limit" and asked == [100]
