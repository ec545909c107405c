"""A strict, pure reader of the CPIO archives `cpio -o` writes, for seed disks.

The seed is read from a raw disk a user (or an attacker with access to the hypervisor
config) attached, so nothing in it is trusted: we never shell out to `cpio -i` (which would
write wherever the archive says) and we refuse, naming the entry, anything a seed has no
business holding: absolute paths, `..`, symbolic links, device nodes, FIFOs, duplicate names,
hard links to the files we read, entries over the size cap. A short archive is an error,
never a wait for more bytes; everything after `TRAILER!!!` is ignored (illumos pads the
archive to 8192 bytes, and the rest of the disk is whatever was there).

Formats (cpio(1) / GNU cpio `-H`; the magic tells which):
- old binary (`bin`): 26-byte header of 16-bit words in the writer's native byte order
  (magic 0o070707 reads as bytes `c7 71` little-endian, `71 c7` big-endian); mtime and file
  size are two 16-bit words, high word first; name and data each padded to an even offset.
- odc (`070707` ASCII): 76-byte header of octal fields, no padding.
- newc (`070701`) and crc (`070702`): 110-byte header of 8-digit hex fields; header+name and
  data padded to 4 bytes; crc's check field is the byte sum of the data, which we verify.
"""

from __future__ import annotations

import stat
from collections.abc import Collection, Iterator

from fsm.errors import MetadataError
from fsm.record import record

SIZE_CAP = 1 << 20          # bytes per entry: seed files are small text files
NAME_CAP = 1024             # bytes per name (illumos MAXPATHLEN)
TRAILER = "TRAILER!!!"

BIN_MAGIC = 0o070707
ODC_MAGIC = b"070707"
NEWC_MAGIC = b"070701"
CRC_MAGIC = b"070702"


class CpioFormatError(MetadataError):
    """The archive is malformed or holds something a seed may not; names the entry."""


@record(frozen=True)
class Entry:
    name: str               # as stored, without a leading `./`
    mode: int
    ino: int
    nlink: int
    mtime: int
    data: bytes             # empty for anything but a regular file

    @property
    def kind(self) -> str:
        return _KINDS.get(stat.S_IFMT(self.mode), f"type {stat.S_IFMT(self.mode):o}")


_KINDS = {stat.S_IFREG: "regular file", stat.S_IFDIR: "directory", stat.S_IFLNK: "symbolic link",
          stat.S_IFCHR: "character device", stat.S_IFBLK: "block device", stat.S_IFIFO: "FIFO",
          stat.S_IFSOCK: "socket"}


def archive_format(head: bytes) -> str | None:
    """The format of an archive starting at `head`: bin-le, bin-be, odc, newc, crc or None."""
    if head[:2] == b"\xc7\x71":
        return "bin-le"
    if head[:2] == b"\x71\xc7":
        return "bin-be"
    return {ODC_MAGIC: "odc", NEWC_MAGIC: "newc", CRC_MAGIC: "crc"}.get(bytes(head[:6]))


@record(frozen=True)
class _Header:
    ino: int
    mode: int
    nlink: int
    mtime: int
    namesize: int
    filesize: int
    check: int
    header_len: int


class _Reader:
    def __init__(self, data: bytes, source: str):
        self.data, self.source = memoryview(data), source

    def fail(self, entry: str, problem: str) -> CpioFormatError:
        return CpioFormatError(self.source, entry, problem)

    def take(self, offset: int, length: int, entry: str, what: str) -> memoryview:
        if offset + length > len(self.data):
            raise self.fail(entry, f"archive truncated: {what} needs {length} bytes at offset "
                                   f"{offset}, only {max(0, len(self.data) - offset)} left")
        return self.data[offset:offset + length]


def _header(reader: _Reader, fmt: str, offset: int, entry: str) -> _Header:
    if fmt.startswith("bin"):
        raw = reader.take(offset, 26, entry, "header")
        order = "little" if fmt == "bin-le" else "big"
        w = [int.from_bytes(raw[i:i + 2], order) for i in range(0, 26, 2)]
        if w[0] != BIN_MAGIC:
            raise reader.fail(entry, f"bad magic at offset {offset}: not a {fmt} header")
        return _Header(ino=w[2], mode=w[3], nlink=w[6], mtime=(w[8] << 16) | w[9],
                       namesize=w[10], filesize=(w[11] << 16) | w[12], check=0, header_len=26)
    if fmt == "odc":
        raw = bytes(reader.take(offset, 76, entry, "header"))
        if raw[:6] != ODC_MAGIC:
            raise reader.fail(entry, f"bad magic {raw[:6]!r} at offset {offset}: expected odc")
        widths = (("dev", 6), ("ino", 6), ("mode", 6), ("uid", 6), ("gid", 6), ("nlink", 6),
                  ("rdev", 6), ("mtime", 11), ("namesize", 6), ("filesize", 11))
        fields, pos = {}, 6
        for name, width in widths:
            fields[name] = _number(reader, raw[pos:pos + width], 8, entry, name)
            pos += width
        return _Header(ino=fields["ino"], mode=fields["mode"], nlink=fields["nlink"],
                       mtime=fields["mtime"], namesize=fields["namesize"],
                       filesize=fields["filesize"], check=0, header_len=76)
    raw = bytes(reader.take(offset, 110, entry, "header"))
    want = NEWC_MAGIC if fmt == "newc" else CRC_MAGIC
    if raw[:6] != want:
        raise reader.fail(entry, f"bad magic {raw[:6]!r} at offset {offset}: expected {fmt}")
    names = ("ino", "mode", "uid", "gid", "nlink", "mtime", "filesize", "devmajor", "devminor",
             "rdevmajor", "rdevminor", "namesize", "check")
    fields = {name: _number(reader, raw[6 + 8 * i:14 + 8 * i], 16, entry, name)
              for i, name in enumerate(names)}
    return _Header(ino=fields["ino"], mode=fields["mode"], nlink=fields["nlink"],
                   mtime=fields["mtime"], namesize=fields["namesize"],
                   filesize=fields["filesize"], check=fields["check"], header_len=110)


def _number(reader: _Reader, raw: bytes, base: int, entry: str, field: str) -> int:
    digits = "01234567" if base == 8 else "0123456789abcdefABCDEF"
    text = raw.decode("ascii", "replace")
    if not text or any(c not in digits for c in text):
        raise reader.fail(entry, f"header field {field} is {text!r}, not an unsigned "
                                 f"{'octal' if base == 8 else 'hex'} number")
    return int(text, base)


def _pad(offset: int, fmt: str) -> int:
    align = 4 if fmt in ("newc", "crc") else 2 if fmt.startswith("bin") else 1
    return -offset % align


def _name(reader: _Reader, raw: memoryview, entry: str) -> str:
    if raw[-1] != 0 or 0 in raw[:-1]:
        raise reader.fail(entry, "name is not a NUL-terminated string")
    try:
        return bytes(raw[:-1]).decode("utf-8")
    except UnicodeDecodeError:
        raise reader.fail(entry, f"name {bytes(raw[:-1])!r} is not UTF-8") from None


def _check_name(reader: _Reader, name: str) -> str:
    """The name without a leading `./`; absolute paths and `..` are refused."""
    if name.startswith("/"):
        raise reader.fail(name, "absolute path refused")
    parts = name.split("/")
    if ".." in parts:
        raise reader.fail(name, "path with '..' refused")
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/") or "."


def iter_entries(data: bytes, source: str = "cpio", size_cap: int = SIZE_CAP) -> Iterator[Entry]:
    """Every entry up to the trailer, validated; raises CpioFormatError naming the entry."""
    reader = _Reader(data, source)
    fmt = archive_format(bytes(reader.data[:6]))
    if fmt is None:
        raise reader.fail("(archive)", "not a cpio archive (no bin, odc, newc or crc magic)")
    offset, previous = 0, "(start)"
    while True:
        where = f"(entry after {previous!r})"
        h = _header(reader, fmt, offset, where)
        if not 2 <= h.namesize <= NAME_CAP:
            raise reader.fail(where, f"name size {h.namesize} is outside 2..{NAME_CAP}")
        offset += h.header_len
        name = _name(reader, reader.take(offset, h.namesize, where, "name"), where)
        offset += h.namesize
        offset += _pad(offset, fmt)
        if name == TRAILER:
            return
        if h.filesize > size_cap:
            raise reader.fail(name, f"size {h.filesize} is over the {size_cap}-byte cap")
        clean = _check_name(reader, name)
        body = bytes(reader.take(offset, h.filesize, name, "data"))
        offset += h.filesize + _pad(offset + h.filesize, fmt)
        kind = stat.S_IFMT(h.mode)
        if kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise reader.fail(name, f"{_KINDS.get(kind, 'unknown file type')} refused: "
                                    "a seed holds only regular files and directories")
        if fmt == "crc" and kind == stat.S_IFREG and (sum(body) & 0xFFFFFFFF) != h.check:
            raise reader.fail(name, f"crc checksum {h.check:#x} does not match the data")
        yield Entry(name=clean, mode=h.mode, ino=h.ino, nlink=h.nlink, mtime=h.mtime,
                    data=body if kind == stat.S_IFREG else b"")
        previous = name


def read_archive(data: bytes, wanted: Collection[str], source: str = "cpio",
                 size_cap: int = SIZE_CAP) -> dict[str, bytes]:
    """The contents of the `wanted` top-level files present in the archive.

    The whole archive is validated, not just the wanted entries: a seed with one hostile
    entry is refused outright rather than half-used.
    """
    seen: set[str] = set()
    found: dict[str, bytes] = {}
    for entry in iter_entries(data, source, size_cap):
        if entry.name in seen:
            raise CpioFormatError(source, entry.name, "appears more than once in the archive")
        seen.add(entry.name)
        if entry.name not in wanted:
            continue
        if not stat.S_ISREG(entry.mode):
            raise CpioFormatError(source, entry.name, f"is a {entry.kind}, not a regular file")
        if entry.nlink > 1:
            raise CpioFormatError(source, entry.name,
                                  f"is a hard link ({entry.nlink} links) refused for a seed file")
        found[entry.name] = entry.data
    return found
