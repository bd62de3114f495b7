"""Our zip reader sees what every loader sees: hidden entries, two directories, archives zipfile refuses."""

from __future__ import annotations

import io
import struct
import time
import zipfile
import zlib

import pytest

from mlsec_actions.analyzers import archive, zip_reader
from mlsec_actions.analyzers.base import Blob
from mlsec_actions.analyzers.dispatch import Dispatcher
from mlsec_actions.findings import Finding
from tests import model_corpus as corpus
from tests import zip_craft as craft

EVIL = corpus.call("os", "system", "touch /nonexistent/canary")
BENIGN = corpus.torch_state_dict_pickle()
DIFF = "archive/reader-differential"
DANGER = "pickle/dangerous-global"


def scan(data: bytes, limits: archive.Limits | None = None) -> list[Finding]:
    blob = Blob("model.pt", None, len(data), lambda: io.BytesIO(data))
    return Dispatcher(limits=limits or archive.Limits()).scan_file(blob)


def rules(findings: list[Finding]) -> set[str]:
    return {f.rule.id for f in findings}


def dangerous_members(findings: list[Finding]) -> set[str]:
    return {(f.location.logical or "").split("::")[0] for f in findings if f.rule.id == DANGER}


def test_hidden_second_data_pkl_in_local_headers_only() -> None:
    shown = craft.Record(b"archive/data.pkl", BENIGN)
    hidden = craft.Record(b"archive/data.pkl", EVIL)
    body = craft.local(shown)
    extra = craft.local(hidden)
    directory = craft.central(shown, 0)
    data = body + extra + directory + craft.end(1, len(directory), len(body) + len(extra))
    assert [i.filename for i in zipfile.ZipFile(io.BytesIO(data)).infolist()] == ["archive/data.pkl"]
    findings = scan(data)
    assert DIFF in rules(findings)
    assert DANGER in rules(findings)


def test_two_central_directories_miniz_and_zipfile_disagree() -> None:
    # miniz reads the directory at the declared offset (the evil one); zipfile at end - size (the benign one),
    # shifting offsets by the difference. Same entry name lengths, so both directories have the same size.
    evil = craft.Record(b"a/data.pkl", EVIL)
    good = craft.Record(b"b/data.pkl", BENIGN)
    good_local = craft.local(good)
    evil_local = craft.local(evil)
    pad = b"\0" * len(good_local)  # so zipfile's shifted offset for the benign entry stays positive
    declared = len(evil_local) + len(pad)  # where miniz reads the directory: the evil one
    evil_dir = craft.central(evil, 0)
    good_at = declared + len(evil_dir)
    shift = good_at + len(good_local) - declared  # zipfile: (end - size) - declared offset
    good_dir = craft.central(good, good_at - shift)
    assert len(good_dir) == len(evil_dir)
    data = evil_local + pad + evil_dir + good_local + good_dir + craft.end(1, len(good_dir), declared)
    with zipfile.ZipFile(io.BytesIO(data)) as z:  # Python's view: only the benign entry
        assert z.namelist() == ["b/data.pkl"]
        assert z.read("b/data.pkl") == BENIGN
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    assert {e.name for e in view.entries} == {"a/data.pkl", "b/data.pkl"}
    assert any("two different directories" in p for p in view.problems)
    findings = scan(data)
    assert DIFF in rules(findings)
    assert dangerous_members(findings) == {"a/data.pkl"}


@pytest.mark.parametrize("record", [
    craft.Record(b"archive/data.pkl", EVIL, version_needed=64),
    craft.Record(b"archive/data\xff.pkl", EVIL, flags=0x800),
], ids=["version-needed", "utf8-flag-not-utf8"])
def test_archives_zipfile_refuses_are_still_scanned(record: craft.Record) -> None:
    data = craft.archive([record, craft.Record(b"archive/version", b"3\n")])
    with pytest.raises((NotImplementedError, UnicodeDecodeError, zipfile.BadZipFile)):
        zipfile.ZipFile(io.BytesIO(data))
    findings = scan(data)
    assert DIFF in rules(findings)
    assert DANGER in rules(findings)
    [diff] = [f for f in findings if f.rule.id == DIFF]
    assert "zipfile refuses" in diff.message


def test_local_name_differs_from_central_name() -> None:
    record = craft.Record(b"archive/data.pkl", EVIL)
    body = craft.local(record, name=b"archive/other.pk")
    directory = craft.central(record, 0)
    data = body + directory + craft.end(1, len(directory), len(body))
    findings = scan(data)
    assert DIFF in rules(findings) and DANGER in rules(findings)
    assert any("in its local header" in f.message for f in findings if f.rule.id == DIFF)


def test_duplicate_names_are_all_scanned() -> None:
    data = craft.archive([craft.Record(b"archive/data.pkl", BENIGN), craft.Record(b"archive/data.pkl", EVIL)])
    findings = scan(data)
    assert DIFF in rules(findings)
    assert DANGER in rules(findings)


@pytest.mark.parametrize("make", [
    lambda: corpus.torch_zip("archive", BENIGN),
    lambda: corpus.zip_bytes({"archive/data.pkl": BENIGN, "archive/data/0": b"\1" * 999}, zipfile.ZIP_DEFLATED),
    lambda: _streamed_zip({"archive/data.pkl": BENIGN, "archive/version": b"3\n"}),
    lambda: _zip64({"archive/data.pkl": BENIGN}),
    lambda: craft.archive([craft.Record("archive/naïve.pkl".encode(), BENIGN, flags=0x800)]),
], ids=["torch", "deflated", "data-descriptors", "zip64", "utf8-name"])
def test_ordinary_archives_have_no_differential(make: object) -> None:
    data = make()  # type: ignore[operator]
    assert scan(data) == []


def _streamed_zip(members: dict[str, bytes]) -> bytes:
    """zipfile writing to an unseekable stream: sizes go in data descriptors after each entry."""
    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.buf = io.BytesIO()

        def writable(self) -> bool:
            return True

        def write(self, b: object) -> int:
            return self.buf.write(b)  # type: ignore[arg-type]

    sink = Unseekable()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as z:  # type: ignore[arg-type]
        for name, data in members.items():
            with z.open(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), "w") as handle:
                handle.write(data)
    data = sink.buf.getvalue()
    assert zipfile.ZipFile(io.BytesIO(data)).infolist()[0].flag_bits & 0x8
    return data


def _zip64(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in members.items():
            with z.open(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), "w", force_zip64=True) as handle:
                handle.write(data)
    return out.getvalue()


def test_many_entries_are_bounded() -> None:
    records = [craft.Record(f"f{i:06d}".encode(), b"") for i in range(200_000)]
    data = craft.archive(records)
    start = time.perf_counter()
    findings = scan(data, archive.Limits(max_entries=10_000))
    assert time.perf_counter() - start < 30  # bounded work, not a hang (a loose bound, not a benchmark)
    assert "archive/limit" in rules(findings)


def test_entry_pointing_nowhere_is_a_disagreement() -> None:
    record = craft.Record(b"archive/data.pkl", BENIGN)
    body = craft.local(record)
    directory = craft.central(record, 0) + craft.central(craft.Record(b"archive/ghost", b"x"), 5000)
    data = body + directory + craft.end(2, len(directory), len(body))
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    assert any("point to no local header" in p for p in view.problems)


def test_overlapping_entries_are_a_disagreement_and_read_once_each() -> None:
    # Entry b's local header sits inside entry a's stored data: the structure of overlapping-entry bombs.
    inner = craft.Record(b"archive/data.pkl", EVIL)
    inner_local = craft.local(inner)
    outer = craft.Record(b"archive/blob", inner_local)
    outer_local = craft.local(outer)
    inner_at = len(outer_local) - len(inner_local)
    directory = craft.central(outer, 0) + craft.central(inner, inner_at)
    data = outer_local + directory + craft.end(2, len(directory), len(outer_local))
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    assert any("overlapping entries" in p for p in view.problems)
    findings = scan(data)
    assert DIFF in rules(findings) and DANGER in rules(findings)


def test_thousands_of_bomb_entries_are_capped() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for i in range(300):
            info = zipfile.ZipInfo(f"b{i}", date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, b"\0" * (4 * 1024 * 1024))
    findings = scan(out.getvalue())
    assert len([f for f in findings if f.rule.id == "archive/bomb"]) == 21
    assert any("280 more" in f.message for f in findings)


def test_zip_appended_to_other_data_is_read_as_zipfile_reads_it() -> None:
    # zipfile (and Keras, which opens .keras files with it) reads a zip after any prefix; torch.load reads the pickle.
    appended = corpus.zip_bytes({"archive/data.pkl": EVIL})
    data = BENIGN + appended
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.namelist() == ["archive/data.pkl"]
    findings = scan(data)
    assert DIFF in rules(findings)
    assert dangerous_members(findings) == {"archive/data.pkl"}
    assert rules(scan(BENIGN + corpus.zip_bytes({"archive/data.pkl": BENIGN}))) == {DIFF}  # the shape, nothing more


def test_offsets_shifted_before_the_file_start_are_no_entry() -> None:
    # Found by the damage property: a central entry whose shifted offset is negative.
    record = craft.Record(b"archive/data.pkl", EVIL)
    body = craft.local(record)
    directory = craft.central(record, 0)
    data = body + directory + craft.end(1, len(directory), len(body) + 256)  # declared offset past the real one
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    assert DANGER in rules(scan(data)) and view.problems


def _local_header(name: bytes, data: bytes, *, method: int = 0, flags: int = 0, sizes: tuple[int, int] | None = None
                  ) -> bytes:
    """A local header with its method, flags and declared (compressed, uncompressed) sizes set by hand."""
    compress_size, file_size = (len(data), len(data)) if sizes is None else sizes
    return struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, flags, method, 0, 0x5021, zlib.crc32(data), compress_size,
                       file_size, len(name), 0) + name + data


def _one_entry(local_bytes: bytes, record: craft.Record) -> zip_reader.ZipView:
    directory = craft.central(record, 0)
    data = local_bytes + directory + craft.end(1, len(directory), len(local_bytes))
    return zip_reader.read(io.BytesIO(data), len(data), 100)


def test_a_compression_method_that_differs_locally_is_named_with_both_values() -> None:
    record = craft.Record(b"archive/data.pkl", BENIGN)
    view = _one_entry(_local_header(record.name, record.data, method=8), record)
    assert "entry 'archive/data.pkl' declares compression 0 centrally and 8 locally" in view.problems


def test_sizes_of_zero_locally_without_a_data_descriptor_are_a_disagreement() -> None:
    # Zero sizes are excused only when the data-descriptor flag says the sizes come after the data.
    record = craft.Record(b"archive/data.pkl", b"12345")
    view = _one_entry(_local_header(record.name, record.data, sizes=(0, 0)), record)
    assert "entry 'archive/data.pkl' declares sizes 5/5 centrally and 0/0 locally" in view.problems
    described = craft.Record(b"archive/data.pkl", b"12345", flags=0x8)
    view = _one_entry(_local_header(described.name, described.data, flags=0x8, sizes=(0, 0)), described)
    assert not any("declares sizes" in p for p in view.problems)


def test_the_central_directory_is_read_to_its_declared_size_only() -> None:
    # A second central entry after the declared size is in no loader's directory (zipfile and miniz read
    # `size` bytes): it is not listed, so it cannot be reported as pointing nowhere either.
    record = craft.Record(b"archive/data.pkl", BENIGN)
    body = craft.local(record)
    first = craft.central(record, 0)
    data = body + first + craft.central(craft.Record(b"archive/ghost", b"x"), 5000) + craft.end(
        1, len(first), len(body))
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    assert [(e.name, e.source) for e in view.entries] == [("archive/data.pkl", "central")]
    assert not any("point to no local header" in p for p in view.problems)


def test_long_names_up_to_the_entry_limit_are_all_read() -> None:
    # The directory read is bounded by the entry limit (1 KiB an entry, plus 64 KiB), not shorter.
    records = [craft.Record(b"n%03d" % i + b"x" * 500, b"") for i in range(100)]
    data = craft.archive(records)
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    assert len(view.entries) == 100 and view.problems == [] and not view.truncated


def _central_entry(record: craft.Record, offset: int, *, comment: bytes = b"", extra: bytes = b"",
                   sizes: tuple[int, int] | None = None) -> bytes:
    """A central directory entry with an extra field and a comment (craft.central writes neither)."""
    compress_size, file_size = (len(record.data), len(record.data)) if sizes is None else sizes
    return struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 0x0314, record.version_needed, record.flags, 0, 0, 0x5021,
                       zlib.crc32(record.data), compress_size, file_size, len(record.name), len(extra), len(comment),
                       0, 0, 0o100644 << 16, offset) + record.name + extra + comment


def test_a_directory_ending_inside_an_entry_header_is_damaged_at_that_byte() -> None:
    record = craft.Record(b"archive/data.pkl", BENIGN)
    body = craft.local(record)
    directory = craft.central(record, 0) + b"PK\x01\x02" + b"\0" * 20  # a second header cut short
    data = body + directory + craft.end(2, len(directory), len(body))
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    at = len(body) + len(craft.central(record, 0))
    assert f"central directory entry at byte {at} is damaged; reading stopped" in view.problems
    assert [e.name for e in view.entries] == ["archive/data.pkl"]


def test_an_entry_header_that_ends_the_directory_exactly_is_read() -> None:
    # A 46-byte entry (no name, no extra, no comment) as the directory's last bytes.
    first, empty = craft.Record(b"archive/data.pkl", BENIGN), craft.Record(b"", b"")
    body = craft.local(first) + craft.local(empty)
    directory = craft.central(first, 0) + craft.central(empty, len(craft.local(first)))
    data = body + directory + craft.end(2, len(directory), len(body))
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    assert [e.name for e in view.entries] == ["archive/data.pkl", ""]
    assert not any("damaged" in p for p in view.problems)


def test_the_central_read_stops_at_1_kib_an_entry_plus_64_kib() -> None:
    # max_entries=2: at most 2 * 1024 + 65536 = 67,584 directory bytes are read. The first entry carries a long
    # comment so that the second (46-byte, nameless) entry ends one byte before, at, or one byte after that bound.
    records = [craft.Record(b"a", b"x"), craft.Record(b"", b"y")]
    locals_ = [craft.local(r) for r in records]
    for second_end, damaged in ((67_583, False), (67_584, False), (67_585, True)):
        second = craft.central(records[1], len(locals_[0]))
        first_length = second_end - len(second)
        padding = first_length - 46 - 1 - 60_000  # a comment of 60,000 bytes and an unknown extra field
        first = _central_entry(records[0], 0, comment=b"c" * 60_000,
                               extra=struct.pack("<HH", 0x6666, padding - 4) + b"e" * (padding - 4))
        assert len(first) == first_length
        body = b"".join(locals_)
        data = body + first + second + craft.end(2, len(first) + len(second), len(body))
        view = zip_reader.read(io.BytesIO(data), len(data), 2)
        message = f"central directory entry at byte {len(body) + first_length} is damaged; reading stopped"
        assert (message in view.problems) is damaged, (second_end, view.problems)


def test_no_more_than_one_entry_past_the_limit_is_read_from_a_directory() -> None:
    # The third entry (pointing nowhere) is past limit + 1: it is never read, so it is not reported either.
    records = [craft.Record(b"a", b"x"), craft.Record(b"b", b"y")]
    body = craft.local(records[0]) + craft.local(records[1])
    directory = (craft.central(records[0], 0) + craft.central(records[1], len(craft.local(records[0])))
                 + craft.central(craft.Record(b"ghost", b""), 9000))
    data = body + directory + craft.end(3, len(directory), len(body))
    view = zip_reader.read(io.BytesIO(data), len(data), 1)
    assert view.truncated and not any("point to no local header" in p for p in view.problems)


def test_zip64_extra_fields_in_the_central_directory_give_the_offset_and_sizes() -> None:
    record = craft.Record(b"archive/data.pkl", BENIGN)
    body = craft.local(record)
    other = struct.pack("<HH", 0x5455, 5) + b"\1" + b"\0" * 4  # an extended-timestamp field first
    zip64 = struct.pack("<HHQQQ", 0x0001, 24, len(BENIGN), len(BENIGN), 0)
    entry = _central_entry(record, 0xFFFFFFFF, extra=other + zip64, sizes=(0xFFFFFFFF, 0xFFFFFFFF),
                           comment=b"a comment")
    data = body + entry + craft.end(1, len(entry), len(body))
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    [got] = view.entries
    assert (got.header_offset, got.compress_size, got.file_size, got.source) == (0, len(BENIGN), len(BENIGN),
                                                                                 "central")
    assert not any("point to no local header" in p or "declares sizes" in p for p in view.problems)


def test_each_entry_names_the_directory_that_listed_it() -> None:
    evil, good = craft.Record(b"a/data.pkl", EVIL), craft.Record(b"b/data.pkl", BENIGN)
    good_local, evil_local = craft.local(good), craft.local(evil)
    pad = b"\0" * len(good_local)
    declared = len(evil_local) + len(pad)
    evil_dir = craft.central(evil, 0)
    good_at = declared + len(evil_dir)
    shift = good_at + len(good_local) - declared
    good_dir = craft.central(good, good_at - shift)
    data = evil_local + pad + evil_dir + good_local + good_dir + craft.end(1, len(good_dir), declared)
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    assert {(e.name, e.source) for e in view.entries} == {("a/data.pkl", "central"), ("b/data.pkl", "shifted")}


def test_each_disagreement_is_worded_exactly() -> None:
    record = craft.Record(b"archive/data.pkl", BENIGN)
    body = craft.local(record)
    directory = craft.central(record, 0) + craft.central(craft.Record(b"archive/ghost", b"x"), 5000)
    data = body + directory + craft.end(2, len(directory), len(body))
    assert zip_reader.read(io.BytesIO(data), len(data), 100).problems == [
        f"1 entries of the central directory at byte {len(body)} point to no local header"]

    shown, hidden = craft.Record(b"archive/data.pkl", BENIGN), craft.Record(b"archive/data.pkl", EVIL)
    extra = craft.local(hidden)
    directory = craft.central(shown, 0)
    data = craft.local(shown) + extra + directory + craft.end(1, len(directory), len(craft.local(shown)) + len(extra))
    assert (f"local header at byte {len(craft.local(shown))} ('archive/data.pkl') is in no central directory "
            "(a streaming reader sees it; zipfile and miniz do not)") in zip_reader.read(
                io.BytesIO(data), len(data), 100).problems

    data = craft.archive([craft.Record(b"archive/data.pkl", BENIGN), craft.Record(b"archive/data.pkl", EVIL)])
    assert ("entry name 'archive/data.pkl' is listed 2 times with different data (loaders pick different ones)"
            in zip_reader.read(io.BytesIO(data), len(data), 100).problems)


def test_two_directories_are_worded_exactly() -> None:
    evil, good = craft.Record(b"a/data.pkl", EVIL), craft.Record(b"b/data.pkl", BENIGN)
    good_local, evil_local = craft.local(good), craft.local(evil)
    declared = len(evil_local) + len(good_local)
    evil_dir = craft.central(evil, 0)
    good_dir = craft.central(good, len(evil_local))  # zipfile adds the shift: it lands on good_local
    data = evil_local + b"\0" * len(good_local) + evil_dir + good_local + good_dir + craft.end(1, len(good_dir),
                                                                                              declared)
    assert ("the central directory at the declared offset (miniz, torch.load) and the one where the end record "
            "implies (Python's zipfile) are two different directories") in zip_reader.read(
                io.BytesIO(data), len(data), 100).problems


def test_an_empty_archive_has_a_directory_and_one_pointing_nowhere_has_none() -> None:
    out = io.BytesIO()
    zipfile.ZipFile(out, "w").close()
    empty = out.getvalue()
    view = zip_reader.read(io.BytesIO(empty), len(empty), 100)
    assert (view.found_directory, view.entries, view.problems) == (True, [], [])
    ghost = craft.central(craft.Record(b"ghost", b"x"), 0)
    data = b"\0" * 64 + ghost + craft.end(1, len(ghost), 64)
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    assert not view.found_directory and view.entries == []


def test_a_directory_longer_than_the_read_bound_is_cut_there_not_called_damaged() -> None:
    # Entries end exactly at the 67,584-byte bound (max_entries=2) and a third follows: reading stops at the
    # bound without calling the directory damaged (what is past the bound is the local walk's to find).
    records = [craft.Record(b"a", b"x"), craft.Record(b"", b"y"), craft.Record(b"c", b"z")]
    locals_ = [craft.local(r) for r in records]
    second = craft.central(records[1], len(locals_[0]))
    third = craft.central(records[2], len(locals_[0]) + len(locals_[1]))
    padding = 67_584 - len(second) - 46 - 1 - 60_000
    first = _central_entry(records[0], 0, comment=b"c" * 60_000,
                           extra=struct.pack("<HH", 0x6666, padding - 4) + b"e" * (padding - 4))
    body = b"".join(locals_)
    data = body + first + second + third + craft.end(3, len(first) + len(second) + len(third), len(body))
    view = zip_reader.read(io.BytesIO(data), len(data), 2)
    assert not any("damaged" in p for p in view.problems), view.problems


def test_a_zip64_value_cut_short_by_its_extra_field_is_not_read() -> None:
    # The zip64 field declares 8 bytes but the extra field ends after 7: the eighth byte (the comment's) is
    # not part of it, so the offset stays 0xFFFFFFFF and points nowhere.
    record = craft.Record(b"archive/data.pkl", BENIGN)
    body = craft.local(record)
    entry = _central_entry(record, 0xFFFFFFFF, extra=struct.pack("<HH", 0x0001, 8) + b"\0" * 7, comment=b"\0c")
    data = body + entry + craft.end(1, len(entry), len(body))
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    assert f"1 entries of the central directory at byte {len(body)} point to no local header" in view.problems


def _zip64_tail(cd_size: int, cd_offset: int, eocd64_at: int, count: int = 1) -> bytes:
    """A zip64 end record at `eocd64_at`, its locator, and an end record whose fields say "see zip64"."""
    record = struct.pack("<4sQ2H2L2Q2Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, cd_size, cd_offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, eocd64_at, 1)
    return record + locator + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                                          0xFFFFFFFF, 0)


def test_a_zip64_end_record_gives_the_directory() -> None:
    record = craft.Record(b"archive/data.pkl", BENIGN)
    body = craft.local(record)
    directory = craft.central(record, 0)
    data = body + directory + _zip64_tail(len(directory), len(body), len(body) + len(directory))
    with zipfile.ZipFile(io.BytesIO(data)) as z:  # Python's reading of the same bytes
        assert z.namelist() == ["archive/data.pkl"]
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    assert ([(e.name, e.header_offset, e.source) for e in view.entries], view.problems) == (
        [("archive/data.pkl", 0, "central")], [])


def test_a_zip64_locator_pointing_elsewhere_is_named_and_the_archive_still_scanned() -> None:
    # Found by the mutation sweep: a locator offset past 2**63 made seek raise OverflowError, so the whole
    # archive went unscanned (the stage crashed) instead of being read through its other views.
    record = craft.Record(b"archive/data.pkl", EVIL)
    body = craft.local(record)
    directory = craft.central(record, 0)
    for where in (0, 2 ** 64 - 1, 2 ** 63, 10 ** 6):  # a local header, past what seek takes, past the end
        data = body + directory + _zip64_tail(len(directory), len(body), where)
        view = zip_reader.read(io.BytesIO(data), len(data), 100)
        assert "zip64 locator points to no zip64 end record" in view.problems
        assert DANGER in rules(scan(data))

def test_zip64_sizes_and_offsets_past_the_signed_range_are_read_unsigned() -> None:
    record = craft.Record(b"archive/data.pkl", BENIGN)
    body = craft.local(record)
    directory = craft.central(record, 0)
    data = body + directory + _zip64_tail(2 ** 64 - 1, 2 ** 63, len(body) + len(directory))
    view = zip_reader.read(io.BytesIO(data), len(data), 100)  # no exception: a directory past the end
    assert view.entries[0].source == "local"
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(directory), 0xFFFFFFF0, 0)
    data = body + directory + eocd
    view = zip_reader.read(io.BytesIO(data), len(data), 100)  # zipfile's shift puts the offset before byte 0
    assert [(e.name, e.source) for e in view.entries] == [("archive/data.pkl", "local")]
    assert f"1 entries of the central directory at byte {len(body)} point to no local header" in view.problems


def test_end_records_missing_cut_short_or_followed_by_a_comment() -> None:
    for data in (b"", b"no zip here", b"x" * 40 + b"PK\x05\x06" + b"\0" * 17):
        view = zip_reader.read(io.BytesIO(data), len(data), 100)
        assert view.problems == ["no end of central directory record"] and not view.found_directory
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("archive/data.pkl", BENIGN)
        z.comment = b"an archive comment"
    data = out.getvalue()
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    assert [e.name for e in view.entries] == ["archive/data.pkl"] and view.problems == []


def test_a_declared_directory_running_past_the_end_is_named() -> None:
    data = b"\0" * 50 + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, 1000, 0, 0)
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    assert view.problems == ["central directory at byte 0 runs past the end of the file"]


def test_a_shifted_directory_may_start_at_byte_zero() -> None:
    ghost = craft.central(craft.Record(b"ghost", b"x"), 5000)
    data = ghost + craft.end(1, len(ghost), 7)  # declared at 7 (garbage), zipfile's reading at 0
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    assert "1 entries of the central directory at byte 0 point to no local header" in view.problems


def test_zip64_central_extras_are_walked_field_by_field() -> None:
    record = craft.Record(b"archive/data.pkl", BENIGN)
    body = craft.local(record)
    unknown = [struct.pack("<HH", 0x5455, 5) + b"\1" * 5, struct.pack("<HH", 0x7075, 0x8000) + b"u" * 0x8000]
    zip64 = struct.pack("<HHQQQ", 0x0001, 24, 1000, len(BENIGN), 0)  # uncompressed 1000, compressed as stored
    entry = _central_entry(record, 0xFFFFFFFF, extra=b"".join(unknown) + zip64, sizes=(0xFFFFFFFF, 0xFFFFFFFF))
    data = body + entry + craft.end(1, len(entry), len(body))
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    [got] = [e for e in view.entries if e.source == "central"]
    assert (got.header_offset, got.compress_size, got.file_size) == (0, len(BENIGN), 1000)
    # Only the fields that are 0xFFFFFFFF come from the zip64 field, in order (uncompressed, compressed, offset).
    only_offset = _central_entry(record, 0xFFFFFFFF, extra=struct.pack("<HHQ", 0x0001, 8, 0))
    data = body + only_offset + craft.end(1, len(only_offset), len(body))
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    assert [(e.header_offset, e.file_size, e.source) for e in view.entries] == [(0, len(BENIGN), "central")]
    assert view.problems == []
    short = _central_entry(record, 0, extra=struct.pack("<HHQ", 0x0001, 8, 2 ** 63 + 5),
                           sizes=(len(BENIGN), 0xFFFFFFFF))  # one value: the uncompressed size, unsigned
    data = body + short + craft.end(1, len(short), len(body))
    assert zip_reader.read(io.BytesIO(data), len(data), 100).entries[0].file_size == 2 ** 63 + 5
    seven = _central_entry(record, 0xFFFFFFFF, extra=struct.pack("<HH", 0x0001, 7) + b"\0" * 7
                           + struct.pack("<HH", 0x7800, 0))  # 7 value bytes (then a 0 byte): no value is read
    data = body + seven + craft.end(1, len(seven), len(body))
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    assert f"1 entries of the central directory at byte {len(body)} point to no local header" in view.problems


def test_names_without_the_utf8_flag_are_cp437_as_zipfile_reads_them() -> None:
    data = craft.archive([craft.Record("café".encode(), b"x")])
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    assert [e.name for e in view.entries] == [zipfile.ZipFile(io.BytesIO(data)).namelist()[0]] == ["caf├⌐"]


def test_entries_only_a_streaming_reader_sees_come_after_the_listed_ones() -> None:
    hidden, shown = craft.Record(b"hidden", b"x"), craft.Record(b"shown", b"y")
    first = craft.local(hidden)
    directory = craft.central(shown, len(first))
    data = first + craft.local(shown) + directory + craft.end(1, len(directory), len(first) + len(craft.local(shown)))
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    assert [(e.name, e.source) for e in view.entries] == [("shown", "central"), ("hidden", "local")]


def test_the_local_walk_reads_one_header_past_the_limit_and_one_ending_the_file() -> None:
    records = [craft.Record(b"a", b"1"), craft.Record(b"b", b"2"), craft.Record(b"c", b"3")]
    data = b"".join(craft.local(r) for r in records)  # no directory at all
    view = zip_reader.read(io.BytesIO(data), len(data), 1)
    assert sum("is in no central directory" in p for p in view.problems) == 2
    bare = craft.local(craft.Record(b"", b""))  # exactly 30 bytes, the file's last
    data = craft.local(records[0]) + bare
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    assert f"local header at byte {len(craft.local(records[0]))} ('') is in no central directory " \
           "(a streaming reader sees it; zipfile and miniz do not)" in view.problems


def _hidden_after(first: bytes) -> tuple[bytes, int]:
    """`first` (local bytes, in no directory), then a listed entry, then a local-only one: (zip, hidden offset)."""
    shown, hidden = craft.Record(b"shown", b"y"), craft.Record(b"hidden", b"z")
    body = first + craft.local(shown)
    hidden_at = len(body)
    body += craft.local(hidden)
    directory = craft.central(shown, len(first))
    return body + directory + craft.end(1, len(directory), len(body)), hidden_at


def _hidden_found(data: bytes, at: int) -> bool:
    return any(p.startswith(f"local header at byte {at} ('hidden')")
               for p in zip_reader.read(io.BytesIO(data), len(data), 100).problems)


def test_the_local_walk_goes_on_past_empty_entries_and_descriptors_with_sizes() -> None:
    empty = craft.local(craft.Record(b"empty", b""))  # size 0 without the descriptor flag: nothing to skip
    assert _hidden_found(*_hidden_after(empty))
    data = b"12345"
    with_sizes = _local_header(b"d", data, flags=0x8)  # descriptor flag, and the sizes too (some writers do)
    descriptor = struct.pack("<4s3L", b"PK\x07\x08", zlib.crc32(data), len(data), len(data))
    assert _hidden_found(*_hidden_after(with_sizes + descriptor))
    assert _hidden_found(*_hidden_after(with_sizes))  # no descriptor after the data: the next header is there


def test_the_local_walk_stops_at_a_descriptor_entry_without_sizes() -> None:
    # Its size is after the data: the walk cannot know where the next header is, and must not guess by reading
    # the entry's data as headers (here the data is itself a local header).
    inner = craft.local(craft.Record(b"inner", b"q"))
    streamed = _local_header(b"s", inner, flags=0x8, sizes=(0, 0))
    data, hidden_at = _hidden_after(streamed)
    problems = zip_reader.read(io.BytesIO(data), len(data), 100).problems
    assert not any("('inner')" in p for p in problems) and not _hidden_found(data, hidden_at)


def test_an_entry_starting_in_the_last_byte_of_another_overlaps_and_is_counted_once() -> None:
    # The outer entry's data starts after its 200-byte name; the inner header starts at its data's last byte.
    inner = craft.Record(b"inner", b"q")
    inner_local = craft.local(inner)
    name = b"o" * 200
    outer_head = _local_header(name, b"", sizes=(50, 50))
    data_start = len(outer_head)
    body = outer_head + b"f" * 49 + inner_local
    outer = craft.Record(name, b"f" * 49 + inner_local[:1])
    directory = craft.central(outer, 0) + craft.central(inner, data_start + 49)
    data = body + directory + craft.end(2, len(directory), len(body))
    problems = zip_reader.read(io.BytesIO(data), len(data), 100).problems
    assert ("1 entries start inside another entry's data (overlapping entries: one compressed kernel read many "
            "times, a non-recursive zip bomb)") in problems


def test_zipfile_s_refusals_are_judged_on_listed_entries_only_and_worded_exactly() -> None:
    def problems(records: list[craft.Record], hidden: craft.Record | None = None) -> list[str]:
        data = craft.archive(records)
        if hidden is not None:  # a local-only entry before the archive: zipfile never reads it
            first = craft.local(hidden)
            body = b"".join(craft.local(r) for r in records)
            directory = craft.central(records[0], len(first))
            data = first + body + directory + craft.end(1, len(directory), len(first) + len(body))
        return zip_reader.read(io.BytesIO(data), len(data), 100).problems

    plain = craft.Record(b"archive/version", b"3\n")
    assert ("entry 'archive/data.pkl' needs version 6.4: Python's zipfile refuses the whole archive, torch.load "
            "(miniz) reads it") in problems([craft.Record(b"archive/data.pkl", EVIL, version_needed=64), plain])
    assert not any("needs version" in p for p in problems([craft.Record(b"a", b"x", version_needed=63)]))
    assert not any("needs version" in p for p in problems([plain], craft.Record(b"h", b"x", version_needed=64)))
    bad = craft.Record(b"archive/data\xff.pkl", EVIL, flags=0x800)
    shown = repr(b"archive/data\xff.pkl".decode("cp437"))  # zipfile's cp437 reading of the name
    assert (f"entry {shown} is flagged UTF-8 but is not: Python's zipfile refuses the whole archive, "
            "torch.load (miniz) reads it") in problems([bad, plain])
    assert not any("flagged UTF-8" in p for p in problems([craft.Record(b"archive/data\xff.pkl", b"x")]))
    assert not any("flagged UTF-8" in p for p in problems([plain], bad))


def test_zipfile_s_own_refusal_is_named_with_its_error() -> None:
    record = craft.Record(b"archive/data.pkl", BENIGN)
    body = craft.local(record)
    directory = craft.central(record, 0) + b"PK\x01\x02" + b"\0" * 20
    data = body + directory + craft.end(2, len(directory), len(body))
    problems = zip_reader.read(io.BytesIO(data), len(data), 100).problems
    assert any(p.startswith("Python's zipfile refuses the archive (BadZipFile: ") for p in problems), problems


def test_the_local_walk_skips_a_local_extra_field() -> None:
    extra = struct.pack("<HH", 0x5455, 5) + b"\1" * 5
    head = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0x5021, zlib.crc32(b"abc"), 3, 3, 1, len(extra))
    assert _hidden_found(*_hidden_after(head + b"e" + extra + b"abc"))


def test_a_declared_directory_ending_exactly_at_the_end_of_the_file_is_read() -> None:
    # Declared 22 bytes too long, the directory takes in its own end record: read, and damaged there.
    record = craft.Record(b"archive/data.pkl", BENIGN)
    body = craft.local(record)
    directory = craft.central(record, 0)
    data = body + directory + craft.end(1, len(directory) + 22, len(body))
    problems = zip_reader.read(io.BytesIO(data), len(data), 100).problems
    assert f"central directory entry at byte {len(body) + len(directory)} is damaged; reading stopped" in problems


def test_a_zip64_locator_at_the_first_byte_of_the_searched_tail_is_read() -> None:
    # The end record is searched for in the last 64 KiB + 22 bytes; a locator 20 bytes before it may be the
    # first thing in that window (an archive comment of 65,515 bytes fills the rest).
    record = craft.Record(b"archive/data.pkl", BENIGN)
    body = craft.local(record)
    directory = craft.central(record, 0)
    tail = _zip64_tail(len(directory), len(body), len(body) + len(directory))
    comment = b"c" * (65535 + 22 - 20 - 22)
    data = body + directory + tail + comment
    assert len(data) - (65535 + 22) == len(body) + len(directory) + 56  # the window starts at the locator
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    assert [(e.name, e.header_offset, e.source) for e in view.entries] == [("archive/data.pkl", 0, "central")]
    assert "zip64 locator points to no zip64 end record" not in view.problems
    assert view.found_directory


def test_a_zip64_end_record_ending_the_file_exactly_is_read() -> None:
    # A crafted 56-byte tail that is at once the zip64 end record, its locator (bytes 14-34) and the end record
    # (bytes 34-56): the zip64 record's sizes are read from the end record's bytes, so the record ends at the
    # last byte of the file and is still whole.
    record = craft.Record(b"archive/data.pkl", BENIGN)
    body = craft.local(record)
    directory = craft.central(record, 0)
    start = len(body) + len(directory)
    block = bytearray(56)
    block[0:4] = b"PK\x06\x06"
    block[14:34] = struct.pack("<4sLQL", b"PK\x06\x07", 0, start, 1)
    block[34:38] = b"PK\x05\x06"
    block[40:48] = struct.pack("<Q", len(directory))  # the zip64 directory size ...
    block[48:56] = struct.pack("<Q", len(body))  # ... and offset, inside the end record's fields
    data = body + directory + bytes(block)
    view = zip_reader.read(io.BytesIO(data), len(data), 100)
    assert [(e.name, e.header_offset, e.source) for e in view.entries] == [("archive/data.pkl", 0, "central")]
    assert "zip64 locator points to no zip64 end record" not in view.problems
    assert view.found_directory
