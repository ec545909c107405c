"""A UDF volume read the way `mount -F udfs` shows it: enough for Azure's provisioning DVD.

The kernel side is illumos-gate usr/src/uts/common/fs/udfs/ (the mount command,
usr/src/cmd/fs.d/udfs/mount/mount.c, takes `-F udfs [-o ro] special mount_point`); the
structures are ECMA-167 / OSTA UDF's, as that code reads them: the volume recognition
sequence from sector 16 (`BEA01`, then `NSR02` or `NSR03`), the anchor volume descriptor
pointer at sector 256 (tag 2), the main volume descriptor sequence it points at (partition
descriptor, tag 5: the partition's start; logical volume descriptor, tag 6: the block size,
the label and the file set descriptor's place), the file set descriptor (tag 256: the root
directory's ICB), file entries (tag 261) and extended file entries (tag 266) with short,
long or embedded allocation descriptors, and file identifier descriptors (tag 257) with
8- or 16-bit names. Not read: virtual and sparable partitions, named streams, multi-extent
files beyond the first extents' sum. Standard library only: this runs under `python -S`.
"""

from __future__ import annotations

SECTOR = 2048
MAX_DEPTH = 8
MAX_FILE = 64 << 20


class NotUdf(Exception):
    """The device holds no UDF volume this reader understands."""


def _u16(b: bytes, o: int) -> int:
    return int.from_bytes(b[o:o + 2], "little")


def _u32(b: bytes, o: int) -> int:
    return int.from_bytes(b[o:o + 4], "little")


def has_udf(image: bytes) -> bool:
    """A volume recognition sequence naming UDF (NSR02 or NSR03) after BEA01."""
    ids = [image[s * SECTOR + 1:s * SECTOR + 6] for s in range(16, 32)]
    return b"BEA01" in ids and (b"NSR02" in ids or b"NSR03" in ids)


def _dstring(raw: bytes) -> str:
    """An OSTA dstring: compression id, characters, length in the last byte."""
    if not raw or raw[-1] == 0:
        return ""
    return _name(raw[:raw[-1]])


def _name(raw: bytes) -> str:
    if not raw:
        return ""
    if raw[0] == 8:
        return raw[1:].decode("latin-1")
    if raw[0] == 16:
        return raw[1:].decode("utf-16-be", "replace")
    raise NotUdf(f"unknown character set compression id {raw[0]}")


def _tag(image: bytes, sector: int, want: tuple[int, ...]) -> bytes:
    block = image[sector * SECTOR:(sector + 1) * SECTOR]
    if len(block) < 16 or _u16(block, 0) not in want:
        raise NotUdf(f"expected a descriptor tag {want} at sector {sector}")
    return block


class _Volume:
    def __init__(self, image: bytes):
        if not has_udf(image):
            raise NotUdf("no UDF volume recognition sequence")
        self.image = image
        anchor = _tag(image, 256, (2,))
        length, location = _u32(anchor, 16), _u32(anchor, 20)
        self.part_start = None
        self.label = ""
        fsd_lbn = None
        for sector in range(location, location + max(1, length // SECTOR)):
            block = _tag(image, sector, (1, 2, 3, 4, 5, 6, 7, 8, 9))
            kind = _u16(block, 0)
            if kind == 5:
                self.part_start = _u32(block, 188)
            elif kind == 6:
                if _u32(block, 212) != SECTOR:
                    raise NotUdf("logical block size other than 2048")
                self.label = _dstring(block[84:212])
                fsd_lbn = _u32(block, 252)
            elif kind == 8:
                break
        if self.part_start is None or fsd_lbn is None:
            raise NotUdf("no partition or logical volume descriptor")
        fsd = _tag(image, self.part_start + fsd_lbn, (256,))
        self.root_lbn = _u32(fsd, 404)

    def entry(self, lbn: int) -> tuple[bool, bytes]:
        """(is a directory, contents) of the file entry at logical block `lbn`."""
        block = _tag(self.image, self.part_start + lbn, (261, 266))
        extended = _u16(block, 0) == 266
        file_type = block[16 + 11]
        ad_type = _u16(block, 16 + 18) & 7
        size = int.from_bytes(block[56:64], "little")
        if size > MAX_FILE:
            raise NotUdf("file larger than this reader takes")
        l_ea, l_ad = (_u32(block, 208), _u32(block, 212)) if extended else \
            (_u32(block, 168), _u32(block, 172))
        start = (216 if extended else 176) + l_ea
        ads = block[start:start + l_ad]
        if ad_type == 3:
            data = ads[:size]
        else:
            step = 8 if ad_type == 0 else 16
            if ad_type not in (0, 1):
                raise NotUdf(f"allocation descriptor type {ad_type} is not read here")
            data = b""
            for off in range(0, len(ads) - step + 1, step):
                length = _u32(ads, off) & 0x3FFFFFFF
                pos = self.part_start + _u32(ads, off + 4)
                data += self.image[pos * SECTOR:pos * SECTOR + length]
            data = data[:size]
        return file_type == 4, data

    def walk(self, lbn: int, prefix: str, depth: int, out: dict[str, bytes | None]) -> None:
        if depth > MAX_DEPTH:
            raise NotUdf("directories nested too deep")
        _, data = self.entry(lbn)
        pos = 0
        while pos + 38 <= len(data):
            if _u16(data, pos) != 257:
                raise NotUdf("bad file identifier descriptor")
            chars, l_fi, l_iu = data[pos + 18], data[pos + 19], _u16(data, pos + 36)
            child = _u32(data, pos + 24)
            raw = data[pos + 38 + l_iu:pos + 38 + l_iu + l_fi]
            pos += (38 + l_iu + l_fi + 3) & ~3
            if chars & 0x08 or chars & 0x04:      # the parent entry, or a deleted file
                continue
            name = _name(raw)
            if not name or "/" in name or name in (".", ".."):
                raise NotUdf(f"bad file name {name!r}")
            if chars & 0x02:
                out[prefix + name] = None
                self.walk(child, prefix + name + "/", depth + 1, out)
            else:
                out[prefix + name] = self.entry(child)[1]


def udf_label(image: bytes) -> str:
    return _Volume(image).label


def udf_files(image: bytes) -> dict[str, bytes | None]:
    """Path -> contents (None for a directory) of a UDF volume."""
    volume = _Volume(image)
    files: dict[str, bytes | None] = {}
    volume.walk(volume.root_lbn, "", 0, files)
    return files
