"""Archives: tolerant reading (flags, CRCs, names), limits (bombs, entries, depth) and nesting."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile

import pytest

from mlsec_actions.analyzers import archive
from mlsec_actions.analyzers.base import Blob
from mlsec_actions.analyzers.dispatch import Dispatcher
from mlsec_actions.findings import Finding, Severity
from tests import model_corpus as corpus

EVIL = corpus.call("os", "system", "touch /nonexistent/canary")


def scan(data: bytes, limits: archive.Limits | None = None) -> list[Finding]:
    blob = Blob("model.bin", None, len(data), lambda: io.BytesIO(data))
    return Dispatcher(limits=limits or archive.Limits()).scan_file(blob)


def rules(findings: list[Finding]) -> set[str]:
    return {f.rule.id for f in findings}


def test_pytorch_zip_with_odd_folder_is_scanned() -> None:
    findings = scan(corpus.torch_zip("Some Odd_name", EVIL))
    [hit] = [f for f in findings if f.rule.id == "pickle/dangerous-global"]
    assert hit.location.logical == "Some Odd_name/data.pkl::offset 2::os.system"


def test_nested_zip_member_names_chain() -> None:
    nested = corpus.zip_bytes({"inner.zip": corpus.zip_bytes({"x/evil.pkl": EVIL}, zipfile.ZIP_DEFLATED)})
    [hit] = scan(nested)
    assert hit.location.logical == "inner.zip!x/evil.pkl::offset 2::os.system"


def test_encrypted_flag_is_ignored_and_reported() -> None:
    findings = scan(corpus.set_encrypted_flag(corpus.torch_zip("archive", EVIL)))
    assert rules(findings) == {"pickle/dangerous-global", "archive/encrypted-flag"}


# ZipCrypto output: a 12-byte header then ciphertext, indistinguishable from random bytes.
CIPHERTEXT = bytes.fromhex("a62423adadd3da9954d84e5b29041920ff872cadc7c6151c53aa99")


def _flagged(members: dict[str, bytes]) -> tuple[list[Finding], Dispatcher]:
    data = corpus.set_encrypted_flag(corpus.zip_bytes(members))
    dispatcher = Dispatcher()
    found = dispatcher.scan_file(Blob("archive.zip", None, len(data), lambda: io.BytesIO(data)))
    return found, dispatcher


def test_encrypted_text_entry_is_a_coverage_gap_not_a_finding() -> None:
    found, dispatcher = _flagged({"notes/test.txt": CIPHERTEXT, "README.md": b"plain words\n"})
    assert found == []
    [gap] = dispatcher.gaps
    assert gap.kind.value == "file-unreadable" and "'notes/test.txt'" in gap.detail and gap.path == "archive.zip"


@pytest.mark.parametrize("name", ["data.pkl", "archive/data/0", "weights.bin", "model.txt.pt"])
def test_encrypted_entry_that_could_be_a_model_stays_a_finding(name: str) -> None:
    found, dispatcher = _flagged({name: CIPHERTEXT})
    assert [(f.rule.id, f.severity) for f in found] == [("archive/encrypted-flag", Severity.MEDIUM)]
    assert dispatcher.gaps == []


def test_text_name_over_pickle_bytes_is_flagged_and_scanned() -> None:
    found, _ = _flagged({"notes.txt": EVIL})
    assert rules(found) == {"archive/encrypted-flag", "pickle/dangerous-global"}


def test_encrypted_flag_on_plain_text_is_scanned_text() -> None:
    found, dispatcher = _flagged({"notes.txt": b"just some notes\n" * 10})
    assert found == [] and dispatcher.gaps == []


def test_encrypted_flag_on_deflated_entries() -> None:
    data = corpus.set_encrypted_flag(corpus.zip_bytes({"a/data.pkl": EVIL}, zipfile.ZIP_DEFLATED))
    assert "pickle/dangerous-global" in rules(scan(data))


def test_bad_crc_does_not_hide_content() -> None:
    data = bytearray(corpus.zip_bytes({"a/data.pkl": EVIL}))
    for sig, offset in ((b"PK\x03\x04", 14), (b"PK\x01\x02", 16)):
        pos = data.find(sig)
        data[pos + offset:pos + offset + 4] = b"\xde\xad\xbe\xef"
    assert "pickle/dangerous-global" in rules(scan(bytes(data)))


def test_traversal_names_are_findings() -> None:
    findings = scan(corpus.zip_bytes({"../evil.pkl": EVIL, "/abs/x.txt": b"x", "C:/win.txt": b"y"}))
    traversal = [f for f in findings if f.rule.id == "archive/path-traversal"]
    assert len(traversal) == 3
    assert "pickle/dangerous-global" in rules(findings)  # the content is still scanned


def test_zip_symlink_out_of_root() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        info = zipfile.ZipInfo("model/link")
        info.external_attr = (0o120777 << 16)
        z.writestr(info, "../../etc/passwd")
        inside = zipfile.ZipInfo("model/ok")
        inside.external_attr = (0o120777 << 16)
        z.writestr(inside, "weights.bin")
    findings = scan(out.getvalue())
    assert [f.location.logical for f in findings if f.rule.id == "archive/symlink-escape"] == ["model/link"]


def test_tar_links_out_of_root() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, target, kind in (("a/sym", "/etc/shadow", tarfile.SYMTYPE), ("a/hard", "../x", tarfile.LNKTYPE),
                                   ("a/fine", "other", tarfile.SYMTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tar.addfile(info)
        payload = tarfile.TarInfo("a/evil.pkl")
        payload.size = len(EVIL)
        tar.addfile(payload, io.BytesIO(EVIL))
    findings = scan(out.getvalue())
    assert sorted(f.location.logical or "" for f in findings if f.rule.id == "archive/symlink-escape") == \
        ["a/hard", "a/sym"]
    assert "pickle/dangerous-global" in rules(findings)


def test_ratio_bomb_is_not_decompressed() -> None:
    bomb = corpus.zip_bytes({"zeros": b"\0" * (8 * 1024 * 1024)}, zipfile.ZIP_DEFLATED)
    assert rules(scan(bomb)) == {"archive/bomb"}


def test_lying_sizes_are_bounded_by_actual_output() -> None:
    # A pickle head (so it must be read in full) followed by megabytes of padding.
    data = corpus.zip_bytes({"m/data.pkl": EVIL + b"\0" * (3 * 1024 * 1024)}, zipfile.ZIP_DEFLATED)
    limits = archive.Limits(max_member_bytes=1024 * 1024, max_ratio=1e9)
    assert rules(scan(data, limits)) == {"archive/bomb"}


def test_raw_tensor_data_is_not_read() -> None:
    # Most of a model zip is raw tensor bytes: detected as unknown from the head, never decompressed.
    data = corpus.zip_bytes({"m/data.pkl": b"\x80\x02}q\x00.", "m/data/0": b"\0" * (3 * 1024 * 1024)},
                            zipfile.ZIP_DEFLATED)
    assert scan(data, archive.Limits(max_member_bytes=1024 * 1024, max_ratio=1e9)) == []


def test_large_stored_member_is_a_window_not_a_copy() -> None:
    big = b"\x80\x02}q\x00." + b"\0" * (2 * 1024 * 1024)
    assert scan(corpus.zip_bytes({"m/data.pkl": big}), archive.Limits(max_member_bytes=1024 * 1024)) == []


def test_gzip_bomb() -> None:
    data = gzip.compress(b"\0" * (3 * 1024 * 1024))
    assert rules(scan(data, archive.Limits(max_member_bytes=1024 * 1024))) == {"archive/bomb"}


def test_gzip_wrapped_pickle() -> None:
    [hit] = scan(gzip.compress(EVIL))
    assert hit.rule.id == "pickle/dangerous-global"
    assert hit.location.logical == "<gzip>::offset 2::os.system"


def test_entry_limit() -> None:
    data = corpus.zip_bytes({f"f{i}": b"x" for i in range(5)} | {"z/evil.pkl": EVIL})
    findings = scan(data, archive.Limits(max_entries=3))
    assert rules(findings) == {"archive/limit"}


def test_depth_limit() -> None:
    data = EVIL
    for i in range(4):
        data = corpus.zip_bytes({f"level{i}.zip" if i else "evil.pkl": data})
    assert "archive/limit" in rules(scan(data, archive.Limits(max_depth=2)))
    assert "pickle/dangerous-global" in rules(scan(data))


@pytest.mark.parametrize("data", [
    corpus.zip_bytes({"a/data.pkl": EVIL})[:40],
    b"PK\x03\x04" + b"\0" * 10,
    gzip.compress(EVIL, mtime=0)[:-12],
])
def test_truncated_archives_are_findings(data: bytes) -> None:
    findings = scan(data)
    assert findings and rules(findings) <= {"archive/malformed", "pickle/dangerous-global", "pickle/malformed"}
    assert "archive/malformed" in rules(findings) or "pickle/malformed" in rules(findings)


@pytest.mark.parametrize(("name", "unsafe"), [("a/b", False), ("../a", True), ("a/../../b", True), ("/a", True),
                                              ("C:\\a", True), ("a/..b", False)])
def test_unsafe_name(name: str, unsafe: bool) -> None:
    assert archive.unsafe_name(name) is unsafe


@pytest.mark.parametrize(("member", "target", "escapes"), [("a/l", "b", False), ("a/l", "../b", False),
                                                           ("a/l", "../../b", True), ("l", "/etc", True)])
def test_escapes(member: str, target: str, escapes: bool) -> None:
    assert archive.escapes(member, target) is escapes


def _tar(members: list[tarfile.TarInfo], payload: bytes = EVIL) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for info in members:
            if info.isfile():
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                tar.addfile(info)
    return out.getvalue()


def test_tar_traversal_names_are_findings() -> None:
    # Issue 8's mutation spot check: removing the tar traversal check survived every test.
    findings = scan(_tar([tarfile.TarInfo("../../evil.pkl"), tarfile.TarInfo("/abs/evil.pkl"),
                          tarfile.TarInfo("fine/evil.pkl")]))
    traversal = sorted(f.location.logical or "" for f in findings if f.rule.id == "archive/path-traversal")
    assert traversal == ["../../evil.pkl", "/abs/evil.pkl"]


def test_windows_separators_in_member_names_are_traversal() -> None:
    findings = scan(corpus.zip_bytes({"..\\..\\evil.pkl": EVIL, "models\\ok.pkl": b"\x80\x04K\x01."}))
    assert [f.location.logical for f in findings if f.rule.id == "archive/path-traversal"] == ["..\\..\\evil.pkl"]


@pytest.mark.parametrize("target", ["C:\\Windows\\system.ini", "c:/x", "..\\..\\etc"])
def test_links_to_a_drive_or_exactly_dotdot_escape(target: str) -> None:
    link = tarfile.TarInfo("a/link")
    link.type, link.linkname = tarfile.SYMTYPE, target
    findings = scan(_tar([link]))
    assert [f.location.logical for f in findings if f.rule.id == "archive/symlink-escape"] == ["a/link"]


def test_escapes_is_exact_about_the_root() -> None:
    assert archive.escapes("a/link", "..") is False  # a/.. is the root itself: inside
    assert archive.escapes("link", "..") is True
    assert archive.escapes("a/b/link", "../../..") is True
    assert archive.escapes("a/link", "D:x") is True
    assert archive.escapes("a/link", "b/c") is False
