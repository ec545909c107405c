"""The CPIO reader against archives made by the real GNU `cpio -o` in every format, against
hostile archives built by hand, and against random bytes (Hypothesis)."""

from __future__ import annotations

import shutil
import stat
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.cpioarchive import CpioFormatError, archive_format, iter_entries, read_archive
from providers.seedfiles import SEED_FILES
from sim.emulators.cpio import swap_bin

pytestmark = pytest.mark.skipif(shutil.which("cpio") is None, reason="GNU cpio not installed")

SEED = {
    "nodename": b"seeded-host\n",
    "authorized_keys": b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBW76c9qHq4UK/Q6SSmCMzv9+IDZVDLsl0e67D40grsN a@b\n",
    "config.toml": b"[network]\nskip = true\n",
    "firstboot.sh": b"#!/bin/sh\necho odd-length!\n",
}


def gnu_cpio(tmp_path, fmt: str, names: list[str], files: dict[str, bytes]) -> bytes:
    src = tmp_path / f"src-{fmt}"
    src.mkdir()
    for name, data in files.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    proc = subprocess.run(["cpio", "-o", "--quiet", "-H", fmt], cwd=src, check=True,
                          input="".join(n + "\n" for n in names).encode(), capture_output=True)
    return proc.stdout


@pytest.mark.parametrize("fmt,expected", [("bin", "bin-le"), ("odc", "odc"), ("newc", "newc"),
                                          ("crc", "crc")])
@pytest.mark.parametrize("prefix", ["", "./"])
def test_real_cpio_archives_read_in_every_format(tmp_path, fmt, expected, prefix):
    names = ["."] * bool(prefix) + [prefix + n for n in SEED] + [prefix + "extra/notes.txt"]
    archive = gnu_cpio(tmp_path, fmt, names, {**SEED, "extra/notes.txt": b"ignored"})
    assert archive_format(archive) == expected
    # What follows the trailer (illumos padding, the rest of the disk) is never read.
    assert read_archive(archive + b"\xff" * 4096, SEED_FILES) == SEED


def test_bin_archive_in_the_other_byte_order(tmp_path):
    archive = gnu_cpio(tmp_path, "bin", list(SEED), SEED)
    swapped = swap_bin(archive)
    assert swapped != archive and archive_format(swapped) == "bin-be"
    assert read_archive(swapped, SEED_FILES) == SEED
    # mtime and size are two 16-bit words, high word first, in either order.
    mtimes = {e.name: e.mtime for e in iter_entries(archive)}
    assert {e.name: e.mtime for e in iter_entries(swapped)} == mtimes
    assert all(m > 1 << 16 for m in mtimes.values())


def test_file_larger_than_64k_uses_both_size_words(tmp_path):
    big = bytes(range(256)) * 300 + b"!"   # 76801 bytes: the high size word is 1
    archive = gnu_cpio(tmp_path, "bin", ["firstboot.sh"], {"firstboot.sh": b"#!/bin/sh\n" + big})
    assert read_archive(swap_bin(archive), SEED_FILES)["firstboot.sh"] == b"#!/bin/sh\n" + big


def test_gnu_cpio_lists_what_we_read(tmp_path):
    archive = gnu_cpio(tmp_path, "newc", list(SEED), SEED)
    listed = subprocess.run(["cpio", "-it", "--quiet"], input=archive, capture_output=True,
                            check=True).stdout.decode().split()
    assert sorted(listed) == sorted(e.name for e in iter_entries(archive))


# ---- hostile archives built by hand ---------------------------------------------------------

def newc_entry(name: str, data: bytes = b"", mode: int = 0o100644, nlink: int = 1,
               filesize: int | None = None, magic: bytes = b"070701") -> bytes:
    encoded = name.encode() + b"\0"
    size = len(data) if filesize is None else filesize
    fields = [1, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(encoded), 0]
    header = magic + b"".join(f"{f & 0xFFFFFFFF:08x}".encode() for f in fields)
    head = header + encoded
    head += bytes(-len(head) % 4)
    return head + data + bytes(-len(data) % 4)


def newc(*entries: bytes) -> bytes:
    return b"".join(entries) + newc_entry("TRAILER!!!")


def bin_entry(name: str, data: bytes, mode: int = 0o100644) -> bytes:
    encoded = name.encode() + b"\0"
    words = [0o070707, 0, 1, mode, 0, 0, 1, 0, 0, 0, len(encoded), len(data) >> 16,
             len(data) & 0xFFFF]
    out = b"".join(w.to_bytes(2, "little") for w in words) + encoded + bytes(len(encoded) % 2)
    return out + data + bytes(len(data) % 2)


@pytest.mark.parametrize("archive,entry,problem", [
    (newc(newc_entry("../nodename", b"x")), "../nodename", "'..'"),
    (newc(newc_entry("sub/../../etc/passwd", b"x")), "sub/../../etc/passwd", "'..'"),
    (newc(newc_entry("/etc/shadow", b"x")), "/etc/shadow", "absolute"),
    (newc(newc_entry("nodename", b"/etc/passwd", mode=0o120777)), "nodename", "symbolic link"),
    (newc(newc_entry("evil", b"/etc", mode=0o120777)), "evil", "symbolic link"),
    (newc(newc_entry("disk", mode=0o060600)), "disk", "block device"),
    (newc(newc_entry("tty", mode=0o020600)), "tty", "character device"),
    (newc(newc_entry("pipe", mode=0o010600)), "pipe", "FIFO"),
    (newc(newc_entry("nodename", b"a"), newc_entry("./nodename", b"b")), "nodename", "more than once"),
    (newc(newc_entry("authorized_keys", b"k", nlink=2)), "authorized_keys", "hard link"),
    (newc(newc_entry("nodename", filesize=(1 << 20) + 1)), "nodename", "cap"),
    (newc(newc_entry("big", filesize=0xFFFFFFFF)), "big", "cap"),
    (newc(newc_entry("nodename", b"x")).replace(b"070701", b"070709", 1), "(archive)", "not a cpio"),
    (newc_entry("nodename", b"x") + newc_entry("x", magic=b"070702"), "(entry after 'nodename')", "bad magic"),
    (newc_entry("nodename", b"abc")[:90], "(entry after '(start)')", "truncated"),
    (newc_entry("nodename", b"abc" * 10)[:120], "nodename", "truncated"),
    (newc_entry("nodename", b"x"), "(entry after 'nodename')", "truncated"),
    (bin_entry("firstboot.sh", b"#!/bin/sh\n")[:20], "(entry after '(start)')", "truncated"),
    (bin_entry("nodename", b"x") + b"\x71\xc7" + bytes(24), "(entry after 'nodename')", "bad magic"),
])
def test_hostile_archives_refused_naming_the_entry(archive, entry, problem):
    with pytest.raises(CpioFormatError) as info:
        read_archive(archive, SEED_FILES, source="cpio test")
    assert info.value.field == entry
    assert problem in info.value.problem
    assert str(info.value).startswith(f"cpio test: {entry}: ")


def test_negative_size_fields_refused():
    entry = newc_entry("nodename", b"x")
    # The size field is the 7th 8-digit hex field; a minus sign is not a hex digit.
    hostile = entry[:6 + 6 * 8] + b"-0000001" + entry[6 + 7 * 8:]
    with pytest.raises(CpioFormatError, match="filesize is '-0000001'"):
        read_archive(hostile + newc_entry("TRAILER!!!"), SEED_FILES)
    odc = b"070707" + b"0" * 57 + b"000011" + b"-0000000001"
    with pytest.raises(CpioFormatError, match="filesize"):
        read_archive(odc + b"nodename\0", SEED_FILES)


def test_crc_checksum_verified():
    data = b"hostname\n"
    entry = newc_entry("nodename", data, magic=b"070702")
    good = entry[:6 + 12 * 8] + f"{sum(data):08x}".encode() + entry[6 + 13 * 8:]
    assert read_archive(good + newc_entry("TRAILER!!!", magic=b"070702"), SEED_FILES) == {
        "nodename": data}
    with pytest.raises(CpioFormatError, match="checksum"):
        read_archive(entry + newc_entry("TRAILER!!!", magic=b"070702"), SEED_FILES)


def test_only_top_level_known_names_are_read():
    archive = newc(newc_entry("sub", mode=0o040755), newc_entry("sub/nodename", b"deep"),
                   newc_entry("./firstboot.sh", b"#!/bin/sh\n"), newc_entry("README", b"hi"))
    assert read_archive(archive, SEED_FILES) == {"firstboot.sh": b"#!/bin/sh\n"}


def test_wanted_name_that_is_a_directory_refused():
    with pytest.raises(CpioFormatError, match="directory, not a regular file"):
        read_archive(newc(newc_entry("nodename", mode=0o040755)), SEED_FILES)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_raise_only_our_error(data):
    for candidate in (data, b"070701" + data, b"070707" + data, b"\xc7\x71" + data,
                      b"\x71\xc7" + data, b"070702" + data):
        try:
            read_archive(candidate, SEED_FILES)
        except CpioFormatError:
            pass


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(SEED_FILES)), st.binary(max_size=300), max_size=4),
       st.integers(min_value=0, max_value=2000))
def test_truncating_a_valid_archive_is_an_error_never_a_hang(files, cut):
    archive = b"".join(bin_entry(n, d) for n, d in files.items()) + bin_entry("TRAILER!!!", b"")
    assert read_archive(archive, SEED_FILES) == files
    if cut < len(archive) - 1:   # the trailer name's last pad byte is never needed
        with pytest.raises(CpioFormatError):
            read_archive(archive[:cut], SEED_FILES)


def test_entry_kind_reported():
    entries = list(iter_entries(newc(newc_entry("d", mode=0o040755), newc_entry("f", b"x"))))
    assert [e.kind for e in entries] == ["directory", "regular file"]
    assert stat.S_ISREG(entries[1].mode) and not stat.S_ISREG(entries[0].mode)
