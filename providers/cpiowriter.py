"""Write the CPIO archives a seed disk holds, in pure Python, byte for byte reproducibly.

The counterpart of providers/cpioarchive.py (the agent's reader), for `metadata seed cpio`.
We write the archive ourselves rather than run `cpio -o` so that an image builder needs no
particular cpio on the build host, and so that the same inputs always give the same bytes
(no host inode numbers, owners or clock in the headers: every entry is owned by root, has
mode 0644, or 0755 for a script, and the `mtime` the caller passes, 0 by default).

Formats (cpio(1) on illumos, GNU cpio `-H`):
- `bin`, the illumos `cpio -o` default: 26-byte headers of 16-bit words in the writer's
  native byte order. We write little-endian, as illumos on x86 (the only illumos that runs
  these guests) writes it; the agent, GNU cpio and bsdcpio read either order. mtime and
  file size are two words, high word first; name and data are each padded to an even offset.
- `odc` (POSIX.1 portable, magic `070707`): octal ASCII fields, no padding.
- `newc` (SVR4, magic `070701`): hex ASCII fields; header+name and data padded to 4 bytes.

Every archive is padded with zeros to a multiple of 8192 bytes, as illumos `cpio -o` pads
its output; that is also a whole number of 512-byte sectors, which a raw disk image needs.
"""

from __future__ import annotations

import stat
from collections.abc import Mapping

FORMATS = ("bin", "odc", "newc")
PAD_TO = 8192
TRAILER = "TRAILER!!!"

_BIN_MAGIC = 0o070707


class CpioWriteError(ValueError):
    """A name or size the chosen format cannot represent."""


def _bin_header(ino: int, mode: int, nlink: int, mtime: int, namesize: int,
                filesize: int) -> bytes:
    if ino > 0xFFFF or namesize > 0xFFFF or filesize > 0xFFFFFFFF or mtime > 0xFFFFFFFF:
        raise CpioWriteError("entry does not fit the 16/32-bit fields of the bin format")
    words = (_BIN_MAGIC, 0, ino, mode, 0, 0, nlink, 0, mtime >> 16, mtime & 0xFFFF,
             namesize, filesize >> 16, filesize & 0xFFFF)
    return b"".join(w.to_bytes(2, "little") for w in words)


def _odc_header(ino: int, mode: int, nlink: int, mtime: int, namesize: int,
                filesize: int) -> bytes:
    fields = ((0, 6), (ino, 6), (mode, 6), (0, 6), (0, 6), (nlink, 6), (0, 6), (mtime, 11),
              (namesize, 6), (filesize, 11))
    text = "070707"
    for value, width in fields:
        digits = f"{value:0{width}o}"
        if len(digits) > width:
            raise CpioWriteError(f"value {value} does not fit a {width}-digit odc field")
        text += digits
    return text.encode("ascii")


def _newc_header(ino: int, mode: int, nlink: int, mtime: int, namesize: int,
                 filesize: int) -> bytes:
    values = (ino, mode, 0, 0, nlink, mtime, filesize, 0, 0, 0, 0, namesize, 0)
    if any(v > 0xFFFFFFFF for v in values):
        raise CpioWriteError("entry does not fit the 32-bit fields of the newc format")
    return ("070701" + "".join(f"{v:08X}" for v in values)).encode("ascii")


_HEADERS = {"bin": _bin_header, "odc": _odc_header, "newc": _newc_header}


def _align(fmt: str) -> int:
    return {"bin": 2, "odc": 1, "newc": 4}[fmt]


def _entry(fmt: str, name: str, data: bytes, ino: int, mode: int, nlink: int,
           mtime: int) -> bytes:
    raw_name = name.encode("utf-8") + b"\0"
    header = _HEADERS[fmt](ino, mode, nlink, mtime, len(raw_name), len(data))
    align = _align(fmt)
    out = header + raw_name
    out += bytes(-len(out) % align)
    out += data + bytes(-len(data) % align)
    return out


def file_mode(name: str) -> int:
    """Regular-file mode for a seed file: scripts executable, everything else 0644."""
    return stat.S_IFREG | (0o755 if name.endswith(".sh") else 0o644)


def write_archive(files: Mapping[str, bytes], fmt: str = "bin", mtime: int = 0) -> bytes:
    """An archive of `files` (top-level name -> contents, in the order given), padded.

    Names must be relative, without `..`, and unique (a Mapping guarantees the last);
    the reader refuses anything else, so the writer never produces it.
    """
    if fmt not in _HEADERS:
        raise CpioWriteError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if mtime < 0:
        raise CpioWriteError("mtime must not be negative")
    out = bytearray()
    for ino, (name, data) in enumerate(files.items(), start=1):
        if not name or name.startswith("/") or ".." in name.split("/") or "\0" in name:
            raise CpioWriteError(f"{name!r} is not a relative file name")
        out += _entry(fmt, name, bytes(data), ino, file_mode(name), 1, mtime)
    out += _entry(fmt, TRAILER, b"", 0, 0, 1, 0)
    out += bytes(-len(out) % PAD_TO)
    return bytes(out)
