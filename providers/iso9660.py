"""Write the ISO 9660 volume of a NoCloud seed, as `cloud-localds` makes it, with the
standard library only.

`cloud-localds` runs `genisoimage -volid cidata -joliet -rock` on a flat directory of at
most four small files; this writes the same shape: an ISO 9660 level-1 tree (8.3 names,
`META_DAT.;1`), Rock Ridge names and modes (what illumos hsfs shows), and a Joliet tree
(what Windows-flavoured readers and `isoinfo -J` show), all pointing at the same file data.
Output is deterministic: one fixed timestamp, sorted names, no host owners or inodes.

Why not pycdlib (the well-kept pure-Python ISO library the issue suggests): the seed tool is
part of the agent installed on every image, and this writer is about 200 lines for the one
shape a seed needs, so a new runtime dependency (LGPL, ~10k lines, covering El Torito, UDF
and hybrid images we never make) would not earn its place. Third-party readers check what
we write instead: the tests list our images with `isoinfo -R`, `-J` and `-d` (genisoimage).

ECMA-119 (ISO 9660) for the volume descriptors, path tables and directory records; IEEE
P1282 (Rock Ridge: SP, ER, PX, NM entries); Joliet: a supplementary volume descriptor with
the UCS-2 level 3 escape `%/E` and names in UCS-2 big-endian.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping

SECTOR = 2048
DEFAULT_TIME = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
JOLIET_ESCAPE = b"%/E"
MAX_FILE_BYTES = 64 << 20


def _both16(n: int) -> bytes:
    return n.to_bytes(2, "little") + n.to_bytes(2, "big")


def _both32(n: int) -> bytes:
    return n.to_bytes(4, "little") + n.to_bytes(4, "big")


def _sectors(size: int) -> int:
    return max(1, -(-size // SECTOR))


def iso_name(name: str, taken: set[str]) -> str:
    """A level-1 name (8.3 d-characters, `;1`) unique in `taken`; Rock Ridge and Joliet
    carry the real one. `meta-data` becomes `META_DAT.;1`, as genisoimage names it."""
    stem, _, ext = name.upper().rpartition(".") if "." in name else (name.upper(), "", "")

    def clean(text: str, size: int) -> str:
        return "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_"
                       for c in text)[:size]

    stem, ext = clean(stem, 8), clean(ext, 3)
    candidate, n = f"{stem}.{ext};1", 0
    while candidate in taken:
        n += 1
        candidate = f"{stem[:8 - len(str(n))]}{n}.{ext};1"
    taken.add(candidate)
    return candidate


def _record_time(when: datetime.datetime) -> bytes:
    """The 7-byte directory record date: years since 1900, month ... second, GMT offset 0."""
    return bytes([when.year - 1900, when.month, when.day, when.hour, when.minute,
                  when.second, 0])


def _dir_record(extent: int, size: int, name: bytes, directory: bool, when: bytes,
                system_use: bytes = b"") -> bytes:
    body = (bytes([0]) + _both32(extent) + _both32(size) + when
            + bytes([2 if directory else 0, 0, 0]) + _both16(1) + bytes([len(name)]) + name
            + (b"\0" if len(name) % 2 == 0 else b"") + system_use)
    body += b"\0" * ((len(body) + 1) % 2)   # a record has an even length
    return bytes([len(body) + 1]) + body


def _rr_px(mode: int, links: int) -> bytes:
    return b"PX" + bytes([36, 1]) + _both32(mode) + _both32(links) + _both32(0) + _both32(0)


def _rr_nm(name: str) -> bytes:
    raw = name.encode("utf-8")
    if len(raw) > 250:
        raise ValueError(f"{name!r}: name too long for one Rock Ridge NM entry")
    return b"NM" + bytes([5 + len(raw), 1, 0]) + raw


def _rr_root() -> bytes:
    """SP (Rock Ridge is in use), the root's PX, and ER naming the RRIP extension."""
    ident, desc, src = b"RRIP_1991A", b"THE ROCK RIDGE INTERCHANGE PROTOCOL", b"IEEE P1282"
    sp = b"SP" + bytes([7, 1, 0xBE, 0xEF, 0])
    er = (b"ER" + bytes([8 + len(ident) + len(desc) + len(src), 1, len(ident), len(desc),
                         len(src), 1]) + ident + desc + src)
    return sp + _rr_px(0o40555, 2) + er


def _pack(records: list[bytes]) -> bytes:
    """Directory records into whole sectors; a record never crosses a sector boundary."""
    sectors, current = [], b""
    for rec in records:
        if len(current) + len(rec) > SECTOR:
            sectors.append(current.ljust(SECTOR, b"\0"))
            current = b""
        current += rec
    return b"".join([*sectors, current.ljust(SECTOR, b"\0")])


def _root_dirs(entries: list[tuple[str, str, bytes]], extents: list[int], iso_root: int,
               joliet_root: int, sizes: tuple[int, int], when: bytes) -> tuple[bytes, bytes]:
    """(ISO root directory with Rock Ridge, Joliet root directory), packed in sectors."""
    iso_size, joliet_size = sizes
    iso = [_dir_record(iso_root, iso_size, b"\0", True, when, _rr_root()),
           _dir_record(iso_root, iso_size, b"\1", True, when, _rr_px(0o40555, 2))]
    joliet = [_dir_record(joliet_root, joliet_size, b"\0", True, when),
              _dir_record(joliet_root, joliet_size, b"\1", True, when)]
    for (short, name, data), extent in zip(entries, extents):
        iso.append(_dir_record(extent, len(data), short.encode("ascii"), False, when,
                               _rr_px(0o100444, 1) + _rr_nm(name)))
        joliet.append(_dir_record(extent, len(data), name.encode("utf-16-be"), False, when))
    return _pack(iso), _pack(joliet)


def _text(value: str, size: int, joliet: bool = False) -> bytes:
    """A fixed-size descriptor text field, space padded (in UCS-2 for Joliet)."""
    if joliet:
        return (value.encode("utf-16-be") + b"\0 " * size)[:size]
    return value.encode("ascii")[:size].ljust(size, b" ")


def _path_table(extent: int, order: str) -> bytes:
    """A path table holding the root directory alone (10 bytes)."""
    return bytes([1, 0]) + extent.to_bytes(4, order) + (1).to_bytes(2, order) + b"\0\0"


def _volume_descriptor(kind: int, label: str, total: int, path_tables: tuple[int, int],
                       root_record: bytes, when: datetime.datetime) -> bytes:
    joliet = kind == 2
    stamp = when.strftime("%Y%m%d%H%M%S00").encode("ascii") + b"\0"
    unset = b"0" * 16 + b"\0"
    escape = JOLIET_ESCAPE.ljust(32, b"\0") if joliet else bytes(32)
    vd = (bytes([kind]) + b"CD001" + bytes([1, 0]) + _text("ILLUMOS", 32, joliet)
          + _text(label, 32, joliet) + bytes(8) + _both32(total) + escape + _both16(1)
          + _both16(1) + _both16(SECTOR) + _both32(10)
          + path_tables[0].to_bytes(4, "little") + bytes(4)
          + path_tables[1].to_bytes(4, "big") + bytes(4) + root_record
          + _text("", 128, joliet) * 3 + _text("METADATA SEED", 128, joliet)
          + _text("", 37, joliet) * 3 + stamp + stamp + unset + unset + bytes([1, 0]))
    return vd.ljust(SECTOR, b"\0")


def iso_image(label: str, files: Mapping[str, bytes],
              when: datetime.datetime = DEFAULT_TIME) -> bytes:
    """An ISO 9660 image (volume id `label`) with `files` in its root directory."""
    if any("/" in name or not name or name in (".", "..") for name in files):
        raise ValueError("a seed volume has a flat root directory: plain file names only")
    if any(len(data) > MAX_FILE_BYTES for data in files.values()):
        raise ValueError(f"a seed file is over {MAX_FILE_BYTES} bytes")
    if not label.isascii() or len(label) > 32:
        raise ValueError("the volume label must be at most 32 ASCII characters")
    taken: set[str] = set()
    entries = sorted((iso_name(name, taken), name, bytes(data)) for name, data in files.items())
    when_rec = _record_time(when)
    # Sectors 16-18: primary, Joliet, terminator; 19-22: path tables; then directories.
    path_l, path_m, jpath_l, jpath_m = 19, 20, 21, 22
    iso_root = 23
    # Record lengths do not depend on extents, so size the directories with dummies first.
    iso_dir, joliet_dir = _root_dirs(entries, [0] * len(entries), 0, 0, (0, 0), when_rec)
    joliet_root = iso_root + len(iso_dir) // SECTOR
    extent = joliet_root + len(joliet_dir) // SECTOR
    extents = []
    for _short, _name, data in entries:
        extents.append(extent)
        extent += _sectors(len(data))
    sizes = (len(iso_dir), len(joliet_dir))
    iso_dir, joliet_dir = _root_dirs(entries, extents, iso_root, joliet_root, sizes, when_rec)
    total = extent
    pvd = _volume_descriptor(1, label, total, (path_l, path_m),
                             _dir_record(iso_root, sizes[0], b"\0", True, when_rec), when)
    svd = _volume_descriptor(2, label, total, (jpath_l, jpath_m),
                             _dir_record(joliet_root, sizes[1], b"\0", True, when_rec), when)
    terminator = (bytes([255]) + b"CD001" + bytes([1])).ljust(SECTOR, b"\0")
    image = bytearray(16 * SECTOR)
    image += pvd + svd + terminator
    for extent_of_root, order in ((iso_root, "little"), (iso_root, "big"),
                                  (joliet_root, "little"), (joliet_root, "big")):
        image += _path_table(extent_of_root, order).ljust(SECTOR, b"\0")
    image += iso_dir + joliet_dir
    for _short, _name, data in entries:
        image += data.ljust(_sectors(len(data)) * SECTOR, b"\0")
    assert len(image) == total * SECTOR
    return bytes(image)
