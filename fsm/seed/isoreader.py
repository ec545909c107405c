"""Read the root directory of an ISO 9660 seed volume the way illumos hsfs shows it.

On a guest the agent never parses ISO 9660 itself: it mounts the volume (`mount -F hsfs -o
ro`) and reads files (providers/localdisk.py). `metadata seed inspect` runs on the image
builder's machine, where mounting is neither possible nor wanted, so this reads an image
file in Python and presents the names hsfs would: Rock Ridge names when the root carries
the SUSP `SP` entry, else Joliet names when a `%/@`, `%/C` or `%/E` supplementary
descriptor exists, else the ISO 9660 name lower-cased without its `;1` version and trailing
dot (hsfs's default mapping). Only the root directory is read: a NoCloud seed's files live
there, and a subdirectory is reported as such. Every offset is bounds-checked: the image is
untrusted input, and a malformed one is an IsoReadError, never an IndexError.
"""

from __future__ import annotations

import stat

from fsm.record import record

SECTOR = 2048
MAX_DESCRIPTORS = 32
MAX_DIR_BYTES = 1 << 20
JOLIET_ESCAPES = (b"%/@", b"%/C", b"%/E")


class IsoReadError(ValueError):
    """The bytes are not a readable ISO 9660 volume."""


@record(frozen=True)
class IsoEntry:
    kind: str            # "regular file", "directory", "symbolic link", "multi-extent file"
    extent: int
    size: int


@record(frozen=True)
class IsoVolume:
    label: str
    naming: str                      # "Rock Ridge", "Joliet" or "ISO 9660"
    entries: dict[str, IsoEntry]
    image: bytes

    def read(self, name: str) -> bytes:
        entry = self.entries[name]
        start = entry.extent * SECTOR
        if start + entry.size > len(self.image):
            raise IsoReadError(f"{name}: data runs past the end of the image")
        return self.image[start:start + entry.size]


def is_iso(head: bytes) -> bool:
    """Whether `head` (at least 32774 bytes) starts like an ISO 9660 volume."""
    return head[16 * SECTOR + 1:16 * SECTOR + 6] == b"CD001"


def _u32(buf: bytes, off: int) -> int:
    if off + 4 > len(buf):
        raise IsoReadError("record truncated")
    return int.from_bytes(buf[off:off + 4], "little")


def _descriptors(image: bytes) -> tuple[bytes, bytes | None]:
    """(primary, Joliet supplementary or None) volume descriptors."""
    primary = joliet = None
    for sector in range(16, 16 + MAX_DESCRIPTORS):
        vd = image[sector * SECTOR:(sector + 1) * SECTOR]
        if len(vd) < SECTOR or vd[1:6] != b"CD001":
            raise IsoReadError(f"no volume descriptor set terminator (sector {sector})")
        if vd[0] == 255:
            break
        if vd[0] == 1 and primary is None:
            primary = vd
        elif vd[0] == 2 and vd[88:91] in JOLIET_ESCAPES and joliet is None:
            joliet = vd
    else:
        raise IsoReadError("too many volume descriptors")
    if primary is None:
        raise IsoReadError("no primary volume descriptor")
    return primary, joliet


def _records(image: bytes, extent: int, size: int) -> list[bytes]:
    if size > MAX_DIR_BYTES:
        raise IsoReadError(f"root directory of {size} bytes is implausibly large")
    data = image[extent * SECTOR:extent * SECTOR + size]
    if len(data) < size:
        raise IsoReadError("root directory runs past the end of the image")
    out, pos = [], 0
    while pos < len(data):
        length = data[pos]
        if length == 0:
            pos = (pos // SECTOR + 1) * SECTOR
            continue
        if length < 34 or pos + length > len(data) or 33 + data[pos + 32] > length:
            raise IsoReadError(f"malformed directory record at byte {pos} of the root")
        out.append(data[pos:pos + length])
        pos += length
    return out


def _susp(record: bytes, skip: int = 0):
    """(signature, entry) pairs of a record's system use area."""
    name_len = record[32]
    pos = 33 + name_len + (1 - name_len % 2) + skip
    while pos + 4 <= len(record):
        length = record[pos + 2]
        if length < 4 or pos + length > len(record):
            break
        yield record[pos:pos + 2], record[pos:pos + length]
        pos += length


def _rock_ridge(record: bytes) -> tuple[str | None, int | None, bool]:
    """(NM name, PX mode, has an SL symbolic link entry) of a record."""
    name, mode, link = None, None, False
    for sig, entry in _susp(record):
        if sig == b"NM" and len(entry) >= 5 and not entry[4] & 0x06:
            name = (name or "") + entry[5:].decode("utf-8", "replace")
        elif sig == b"PX" and len(entry) >= 12:
            mode = int.from_bytes(entry[4:8], "little")
        elif sig == b"SL":
            link = True
    return name, mode, link


def _plain(raw: bytes, joliet: bool) -> str:
    name = raw.decode("utf-16-be", "replace") if joliet else raw.decode("ascii", "replace")
    name = name.split(";")[0]
    name = name[:-1] if name.endswith(".") else name
    return name if joliet else name.lower()


def read_volume(image: bytes) -> IsoVolume:
    """The label and root directory entries of an ISO 9660 image, as hsfs names them."""
    primary, joliet = _descriptors(image)
    label = primary[40:72].decode("ascii", "replace").rstrip(" \0")
    root = primary[156:190]
    records = _records(image, _u32(root, 2), _u32(root, 10))
    rock_ridge = bool(records) and any(sig == b"SP" for sig, _ in _susp(records[0]))
    naming = "Rock Ridge" if rock_ridge else "Joliet" if joliet else "ISO 9660"
    if naming == "Joliet":
        assert joliet is not None
        jroot = joliet[156:190]
        records = _records(image, _u32(jroot, 2), _u32(jroot, 10))
    entries: dict[str, IsoEntry] = {}
    for entry in records:
        raw = entry[33:33 + entry[32]]
        if raw in (b"\0", b"\1"):
            continue
        name, mode, link = _rock_ridge(entry) if rock_ridge else (None, None, False)
        name = name or _plain(raw, naming == "Joliet")
        flags = entry[25]
        if link or (mode is not None and stat.S_ISLNK(mode)):
            kind = "symbolic link"
        elif flags & 0x02:
            kind = "directory"
        elif flags & 0x80:
            kind = "multi-extent file"
        else:
            kind = "regular file"
        entries.setdefault(name, IsoEntry(kind, _u32(entry, 2), _u32(entry, 10)))
    return IsoVolume(label=label, naming=naming, entries=entries, image=image)
