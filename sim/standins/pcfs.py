"""A FAT (pcfs) volume reader for the fstyp and mount stand-ins (not a command of its own).

Recognition and the label follow the libfstyp pcfs module, usr/src/cmd/fs.d/pcfs/fstyp/
fstyp.c: `valid_media()` (media descriptor 0xF8 fixed, or one of the floppy codes),
`well_formed()` (an extended boot signature 0x29 with a `FAT` type string and a FAT size,
or the plain BPB checks; bytes per sector a multiple of 512, sectors per cluster, reserved
sectors and FAT count non-zero), `determine_fattype()` from the count of clusters (FAT12
below 4085, FAT16 below 65525, FAT32 above, 0 in the ambiguous bands), and `get_label()`:
the boot sector's 11-byte label, replaced by the root directory's volume-label entry when
there is one, kept with its padding spaces. `get_attr()` gives the `fstyp -a` attributes in
that order.

Reading files is what the kernel's pcfs does for `mount -F pcfs`: the root directory
(fixed region on FAT12/16, a cluster chain on FAT32), long (VFAT) names when present, else
the 8.3 name folded to lower case (mount_pcfs(8) `foldcase`, the default), and each file's
cluster chain cut to its size. Standard library only: this runs under `python -S`.
"""

from __future__ import annotations

from typing import Any

MEDIA = (0xF8, 0xFE, 0xFF, 0xFC, 0xFD, 0xF0, 0xF9)   # MD_FIXED and the floppy codes
ATTR_LABEL, ATTR_DIR, ATTR_LFN = 0x08, 0x10, 0x0F
MAX_DEPTH = 8
MAX_FILE = 64 << 20


class NotFat(Exception):
    """The device does not hold a FAT file system libfstyp's pcfs module would accept."""


def _u16(b: bytes, off: int) -> int:
    return int.from_bytes(b[off:off + 2], "little")


def _u32(b: bytes, off: int) -> int:
    return int.from_bytes(b[off:off + 4], "little")


def boot_sector(image: bytes) -> dict[str, Any]:
    """The BPB, checked as is_pcfs() does, with the derived sizes and the FAT type."""
    if len(image) < 512:
        raise NotFat("shorter than a boot sector")
    h = {"bps": _u16(image, 11), "spc": image[13], "rsvd": _u16(image, 14), "nfats": image[16],
         "rootents": _u16(image, 17), "nsec16": _u16(image, 19), "media": image[21],
         "fatsz16": _u16(image, 22), "spt": _u16(image, 24), "heads": _u16(image, 26),
         "hidden": _u32(image, 28), "nsec32": _u32(image, 32), "fatsz32": _u32(image, 36),
         "rootclus": _u32(image, 44)}
    if h["media"] not in MEDIA:
        raise NotFat("media descriptor is not a pcfs one")
    total = h["nsec16"] or h["nsec32"]
    if image[38] == 0x29:        # FAT12/16 extended boot record
        fatmatch = image[54:57] == b"FAT" and h["fatsz16"] > 0 and total > 0
    elif image[66] == 0x29:      # FAT32 extended boot record
        fatmatch = (image[82:85] == b"FAT" and h["fatsz16"] == 0 and h["fatsz32"] > 0
                    and total > 0)
    else:
        fatmatch = h["nsec16"] > 0 and h["fatsz16"] > 0
    if not (fatmatch and h["bps"] > 0 and h["bps"] % 512 == 0 and h["spc"] > 0
            and h["rsvd"] >= 1 and h["nfats"] > 0):
        raise NotFat("boot sector is not well formed")
    h["total"] = total
    h["fatsz"] = h["fatsz16"] or h["fatsz32"]
    h["rootsecs"] = (h["rootents"] * 32 + h["bps"] - 1) // h["bps"]
    h["first_data"] = h["rsvd"] + h["nfats"] * h["fatsz"] + h["rootsecs"]
    clusters = (total - h["first_data"]) // h["spc"]
    h["clusters"] = clusters
    if 4085 <= clusters <= 4095 or 65525 <= clusters <= 65535:
        h["fattype"] = 0
    else:
        h["fattype"] = 12 if clusters < 4085 else 16 if clusters < 65525 else 32
    ext = 64 if h["fattype"] == 32 else 36
    h["drvnum"], h["volid"] = image[ext], _u32(image, ext + 3)
    h["label"] = image[ext + 7:ext + 18].decode("latin-1")
    return h


def _next_cluster(image: bytes, h: dict[str, Any], n: int) -> int | None:
    fat = h["rsvd"] * h["bps"]
    if h["fattype"] == 12:
        v = _u16(image, fat + n + n // 2)
        v = v >> 4 if n & 1 else v & 0xFFF
        return None if v >= 0xFF8 else v
    if h["fattype"] == 16:
        v = _u16(image, fat + 2 * n)
        return None if v >= 0xFFF8 else v
    v = _u32(image, fat + 4 * n) & 0x0FFFFFFF
    return None if v >= 0x0FFFFFF8 else v


def _chain(image: bytes, h: dict[str, Any], first: int, limit: int) -> bytes:
    size = h["spc"] * h["bps"]
    out = bytearray()
    n: int | None = first
    seen: set[int] = set()
    while n is not None and len(out) < limit:
        if n < 2 or n >= h["clusters"] + 2 or n in seen:
            raise NotFat(f"bad cluster chain at {n}")
        seen.add(n)
        start = ((n - 2) * h["spc"] + h["first_data"]) * h["bps"]
        out += image[start:start + size]
        n = _next_cluster(image, h, n)
    return bytes(out)


def _entries(data: bytes):
    """(name, attr, first cluster, size, raw 11-byte name) of each live entry; long names
    joined."""
    lfn: dict[int, str] = {}
    for pos in range(0, len(data) - 31, 32):
        e = data[pos:pos + 32]
        if e[0] == 0:
            return
        if e[0] == 0xE5:
            lfn = {}
            continue
        if e[11] == ATTR_LFN:
            raw = e[1:11] + e[14:26] + e[28:32]
            lfn[e[0] & 0x1F] = raw.decode("utf-16-le", "replace").split("\0")[0]
            continue
        long_name = "".join(lfn[k] for k in sorted(lfn)) if lfn else None
        lfn = {}
        base = e[0:8].decode("latin-1").rstrip()
        ext = e[8:11].decode("latin-1").rstrip()
        name = long_name or (base + ("." + ext if ext else "")).lower()
        yield name, e[11], (_u16(e, 20) << 16) | _u16(e, 26), _u32(e, 28), e[0:11]


def _root(image: bytes, h: dict[str, Any]) -> bytes:
    if h["fattype"] == 32:
        return _chain(image, h, h["rootclus"], 65536 * 32)
    start = (h["rsvd"] + h["nfats"] * h["fatsz"]) * h["bps"]
    return image[start:start + h["rootents"] * 32]


def volume_label(image: bytes) -> str:
    """get_label(): the root directory's label entry, else the boot sector's; padded."""
    h = boot_sector(image)
    if h["fattype"] != 0:
        for _, attr, cluster, _, raw in _entries(_root(image, h)):
            if attr & (ATTR_LABEL | ATTR_DIR) == ATTR_LABEL and cluster == 0:
                return raw.decode("latin-1")
    return h["label"]


def attributes(image: bytes) -> list[tuple[str, Any]]:
    """get_attr(): `fstyp -a`'s attributes for a pcfs volume, in its order."""
    h = boot_sector(image)
    attrs: list[tuple[str, Any]] = [
        ("bytes_per_sector", h["bps"]), ("sectors_per_cluster", h["spc"]),
        ("reserved_sectors", h["rsvd"]), ("fats", h["nfats"]),
        ("root_entry_count", h["rootents"]), ("total_sectors_16", h["nsec16"]),
        ("media", h["media"]), ("fat_size_16", h["fatsz16"]),
        ("sectors_per_track", h["spt"]), ("heads", h["heads"]),
        ("hidden_sectors", h["hidden"]), ("total_sectors_32", h["nsec32"]),
        ("drive_number", h["drvnum"]), ("volume_id", h["volid"]),
        ("volume_label", volume_label(image))]
    if h["fattype"] == 32:
        attrs.append(("fat_size_32", h["fatsz32"]))
    attrs += [("total_sectors", h["total"]), ("fat_size", h["fatsz"]),
              ("count_of_clusters", h["clusters"]), ("fat_entry_size", h["fattype"]),
              ("gen_clean", True)]
    if h["volid"]:
        attrs.append(("gen_guid", f"{h['volid']:08x}"))
    attrs += [("gen_version", str(h["fattype"])), ("gen_volume_label", volume_label(image))]
    return attrs


def fat_files(image: bytes) -> dict[str, bytes | None]:
    """Path -> contents (None for a directory) of a FAT volume, as pcfs shows them."""
    h = boot_sector(image)
    if h["fattype"] == 0:
        raise NotFat("ambiguous FAT type")
    files: dict[str, bytes | None] = {}
    _walk(image, h, _root(image, h), "", 0, files)
    return files


def _walk(image: bytes, h: dict[str, Any], data: bytes, prefix: str, depth: int,
          out: dict[str, bytes | None]) -> None:
    if depth > MAX_DEPTH:
        raise NotFat("directories nested too deep")
    for name, attr, cluster, size, _ in _entries(data):
        if attr & ATTR_LABEL or name in (".", ".."):
            continue
        if not name or "/" in name:
            raise NotFat(f"bad file name {name!r}")
        if attr & ATTR_DIR:
            out[prefix + name] = None
            _walk(image, h, _chain(image, h, cluster, 65536 * 32), prefix + name + "/",
                  depth + 1, out)
        elif size > MAX_FILE:
            raise NotFat(f"{prefix + name}: larger than the stand-in reads")
        else:
            out[prefix + name] = _chain(image, h, cluster, size)[:size] if size else b""
