"""train's trace parser on strace's own line forms: escaped and non-UTF-8 names back to their bytes, read vs
write flags, calls split by another process, addresses only where strace printed one (never inside data a
process sent), the command's own exit line, and the limits; then the judge's classification of reads."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlsec_actions.training import observe, snapshot, trace


def strace_quote(raw: bytes) -> bytes:
    """What strace prints for a path (its default xlat style): C escapes, octal for every other byte."""
    named = {0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t", 0x0B: b"\\v", 0x0C: b"\\f", 0x22: b'\\"', 0x5C: b"\\\\"}
    out = bytearray()
    for i, b in enumerate(raw):
        if b in named:
            out += named[b]
        elif 0x20 <= b < 0x7F:
            out.append(b)
        else:
            nxt = raw[i + 1:i + 2]
            out += (b"\\%03o" if nxt[:1].isdigit() else b"\\%o") % b
    return bytes(out)


@given(st.binary(min_size=1, max_size=200))
def test_unescape_undoes_strace_quoting(raw: bytes) -> None:
    assert trace.unescape(strace_quote(raw)) == raw


def _parse(tmp_path: Path, *lines: bytes) -> trace.Observation:
    parser = trace.Parser(tmp_path)
    for line in lines:
        parser.feed(line + b"\n")
    return parser.result()


def _open(pid: int, path: bytes, flags: bytes, ret: int = 3, cwd: bytes = b"/w") -> bytes:
    got = b"" if ret < 0 else b"<" + strace_quote(path if path.startswith(b"/") else cwd + b"/" + path) \
        .replace(b"<", b"\\74").replace(b">", b"\\76") + b">"
    tail = b" ENOENT (No such file or directory)" if ret < 0 else b""
    return (b"%d openat(AT_FDCWD<%s>, \"%s\", %s) = %d%s%s"
            % (pid, cwd, strace_quote(path), flags, ret, got, tail))


@pytest.mark.parametrize("name", [b"a\nb.csv", b'q"uote>x<.csv', b"\xff\xfe.csv", "é.csv".encode(),
                                  b"back\\slash.csv", b"sp ace) = 3</etc/passwd>.csv", b"\\x41.csv"])
def test_hostile_names_are_the_files_they_name(tmp_path: Path, name: bytes) -> None:
    seen = _parse(tmp_path, _open(7, name, b"O_RDONLY|O_CLOEXEC"))
    assert seen.reads == {os.fsdecode(b"/w/" + name)}


@pytest.mark.parametrize(("flags", "ret", "read"), [
    (b"O_RDONLY|O_CLOEXEC", 3, True), (b"O_RDWR|O_CREAT|O_APPEND|O_CLOEXEC, 0666", 3, True),
    (b"O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666", 3, False), (b"O_RDWR|O_CREAT|O_TRUNC, 0600", 3, False),
    (b"O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY", 3, False), (b"O_RDONLY|O_PATH", 3, False),
    (b"O_RDONLY", -1, False)])
def test_only_successful_reads_count(tmp_path: Path, flags: bytes, ret: int, read: bool) -> None:
    seen = _parse(tmp_path, _open(7, b"data.csv", flags, ret))
    assert seen.reads == ({"/w/data.csv"} if read else set())


def test_a_call_split_by_another_process_is_joined(tmp_path: Path) -> None:
    seen = _parse(tmp_path, b'8 openat(AT_FDCWD</w>, "x.csv", O_RDONLY <unfinished ...>',
                  b'9 connect(5<socket:[1]>, {sa_family=AF_INET, sin_port=htons(443), '
                  b'sin_addr=inet_addr("192.0.2.7")}, 16 <unfinished ...>',
                  _open(10, b"y.csv", b"O_RDONLY"),
                  b"8 <... openat resumed>) = 4</w/x.csv>",
                  b"9 <... connect resumed>) = -1 EINPROGRESS (Operation now in progress)")
    assert seen.reads == {"/w/x.csv", "/w/y.csv"}
    assert seen.endpoints == (trace.Endpoint("192.0.2.7", 443, "connect"),)


def test_addresses_only_where_strace_printed_one(tmp_path: Path) -> None:
    forged = b'{sa_family=AF_INET, sin_port=htons(1), sin_addr=inet_addr(\\"203.0.113.9\\")}'
    seen = _parse(tmp_path,
                  b'5 sendto(3<socket:[2]>, "' + forged + b'"..., 64, 0, {sa_family=AF_INET6, sin6_port=htons(53), '
                  b'sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "2001:db8::1", &sin6_addr), sin6_scope_id=0}, 28) = 64',
                  b'5 connect(4<socket:[3]>, {sa_family=AF_UNIX, sun_path="' + forged + b'"}, 110) = 0',
                  b'5 sendto(3<socket:[2]>, "abc", 3, MSG_NOSIGNAL, NULL, 0) = 3')
    assert seen.endpoints == (trace.Endpoint("2001:db8::1", 53, "sendto"),)


def test_the_commands_exit_line_and_not_its_childrens(tmp_path: Path) -> None:
    parser = trace.Parser(tmp_path)
    parser.feed(b'20 execve("/usr/bin/python3", ["python3"], 0x7ffd /* 3 vars */) = 0\n')
    parser.feed(b"21 +++ exited with 4 +++\n")
    assert not parser.leader_done.is_set()
    parser.feed(b"20 +++ killed by SIGKILL +++\n")
    assert parser.leader_done.is_set() and parser.result().exit_code == -9
    assert parser.result().executed == {"/usr/bin/python3"}
    other = trace.Parser(tmp_path)
    other.feed(b"30 +++ exited with 3 +++\n")
    assert other.result().exit_code == 3


def test_limits_are_reported_not_exceeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace, "MAX_FILES", 3)
    monkeypatch.setattr(trace, "MAX_ENDPOINTS", 1)
    lines = [_open(1, b"f%d" % i, b"O_RDONLY") for i in range(5)]
    lines += [b'1 connect(3<socket:[1]>, {sa_family=AF_INET, sin_port=htons(%d), sin_addr=inet_addr("192.0.2.1")},'
              b" 16) = 0" % p for p in (1, 2)]
    seen = _parse(tmp_path, *lines)
    assert len(seen.reads) == 3 and len(seen.endpoints) == 1
    assert seen.incomplete is not None and "distinct files" in seen.incomplete
    parser = trace.Parser(tmp_path)
    parser.feed(_open(1, b"late.csv", b"O_RDONLY") + b"\n", light=True)
    parser.feed(b'1 connect(3<socket:[1]>, {sa_family=AF_INET, sin_port=htons(9), sin_addr=inet_addr("192.0.2.1")},'
                b" 16) = 0\n", light=True)
    assert parser.result().reads == frozenset() and len(parser.result().endpoints) == 1


@pytest.mark.parametrize(("address", "loopback"), [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                                   ("0.0.0.0", True),  # noqa: S104 -- an address judged, not bound
                                                   ("::ffff:127.0.0.5", True),
                                                   ("192.0.2.1", False), ("10.0.0.1", False),
                                                   ("::ffff:192.0.2.1", False), ("2001:db8::1", False)])
def test_loopback(address: str, loopback: bool) -> None:
    assert observe.is_loopback(address) is loopback


def test_judge_sorts_reads_into_inputs_pins_code_and_undeclared(tmp_path: Path) -> None:
    files = {"data.csv": b"d", "train.py": b"code", "pinned.bin": b"p", "badpin.bin": b"b", "extra.csv": b"e",
             "model/m.bin": b"m", ".git/HEAD": b"ref", ".venv/pyvenv.cfg": b"", ".venv/lib/x.json": b"{}",
             "lib/site-packages/pkg/data.json": b"{}", "run": b"#!/bin/sh"}
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    sha = {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}
    reads = frozenset(str(tmp_path / n) for n in files if n != "run") | {"/usr/lib/python3/os.py", "/etc/passwd"}
    seen = trace.Observation(reads, frozenset({str(tmp_path / "run")}),
                             (trace.Endpoint("127.0.0.2", 80, "connect"), trace.Endpoint("192.0.2.1", 9, "connect")),
                             None, 0, 10)
    judged = observe.judge(seen, workdir=tmp_path, excluded=("model",), inputs=frozenset({tmp_path / "data.csv"}),
                           pins={"pinned.bin": sha["pinned.bin"], "badpin.bin": "0" * 64}, forbid_network=True,
                           anchor="train.py")
    assert judged.code == {"train.py": sha["train.py"], "run": sha["run"]}
    assert judged.pinned == {"pinned.bin": sha["pinned.bin"]}
    assert judged.undeclared == {"badpin.bin": sha["badpin.bin"], "extra.csv": sha["extra.csv"]}
    assert judged.hosts == ("192.0.2.1:9",)
    by_rule = sorted((f.rule.id, f.location.path, f.severity.name) for f in judged.findings)
    assert by_rule == [("train/network-access", "train.py", "HIGH"), ("train/undeclared-read", "badpin.bin", "MEDIUM"),
                       ("train/undeclared-read", "extra.csv", "MEDIUM")]
    assert "differs from its pin" in next(f.message for f in judged.findings if f.location.path == "badpin.bin")
    allowed = observe.judge(seen, workdir=tmp_path, excluded=("model",), inputs=frozenset(), pins={},
                            forbid_network=False, anchor="train.py")
    assert [f.severity.name for f in allowed.findings if f.rule.id == "train/network-access"] == ["INFO"]


def test_judge_resolves_only_names_inside_the_tree_or_executed(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads are the kernel's real names (strace -y): thousands outside the tree (an interpreter's start-up) are
    passed over by their text, not resolved one by one; a read inside the tree and a program executed through a
    link from outside it are still resolved and judged."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "extra.csv").write_bytes(b"e")
    (tree / "run").write_bytes(b"#!/bin/sh")
    (tmp_path / "via").symlink_to(tree)
    (tmp_path / "tree-sibling.csv").write_bytes(b"s")  # shares the tree's name as a prefix, lies outside
    outside = {f"/usr/lib/python3/m{i}.py" for i in range(3000)} | {str(tmp_path / "tree-sibling.csv")}
    resolved: list[Path] = []
    real = snapshot.relative_inside

    def counting(path: Path, root: Path) -> str | None:
        resolved.append(path)
        return real(path, root)

    monkeypatch.setattr(observe.snapshot, "relative_inside", counting)
    seen = trace.Observation(frozenset(outside | {str(tree.resolve() / "extra.csv")}),
                             frozenset({str(tmp_path / "via" / "run")}), (), None, 0, 10)
    judged = observe.judge(seen, workdir=tree, excluded=(), inputs=frozenset(), pins={}, forbid_network=False,
                           anchor="run")
    assert judged.undeclared == {"extra.csv": hashlib.sha256(b"e").hexdigest()}
    assert judged.code == {"run": hashlib.sha256(b"#!/bin/sh").hexdigest()}
    assert len(resolved) == 2
