"""Emulator of the NoCloud source: a real ISO 9660 volume labelled `cidata` on the seed disk.

The volume is what `cloud-localds` (genisoimage `-volid cidata -joliet -rock`) makes: an ISO
9660 image with Rock Ridge names, written raw at offset 0 of the seed disk's whole-disk
device (`<root>/dev/dsk/c2t0d0p0` and the matching `/dev/rdsk` node), where the fstyp and
mount stand-ins read it like illumos hsfs would. `iso_image()` and `attach_volume()` are also
what the DigitalOcean emulator uses for its config drive.

Metadata (JSON for `sim create --metadata`): `meta-data`, `user-data`, `network-config`, each
a string written verbatim or a mapping written as YAML (an absent key: no such file); `label`
(default `cidata`).
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import yaml

from sim.hardware import hardware

SECTOR = 2048
SEED_MAC = "52:54:00:ab:cd:ef"
DEFAULT_KEYS = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMoGdtovFc12Wy/u7HbSjCuUa/smTUJyBouwKcRA6h0+ admin@nocloud",
)


def default_metadata() -> dict[str, Any]:
    return {
        "meta-data": {"instance-id": "iid-nocloud-0001", "local-hostname": "nocloud-guest",
                      "public-keys": list(DEFAULT_KEYS)},
        "user-data": "#!/bin/sh\necho 'first boot on nocloud' > /var/tmp/firstboot.txt\n",
        "network-config": {
            "version": 2,
            "ethernets": {"net0": {
                "match": {"macaddress": SEED_MAC},
                "addresses": ["192.168.122.50/24"],
                "gateway4": "192.168.122.1",
                "nameservers": {"addresses": ["192.168.122.1", "9.9.9.9"],
                                "search": ["example.internal"]},
            }},
        },
    }


def seed_files(metadata: dict[str, Any]) -> dict[str, bytes]:
    files = {}
    for name in ("meta-data", "user-data", "network-config"):
        value = metadata.get(name)
        if value is None:
            continue
        text = value if isinstance(value, str) else yaml.safe_dump(value, sort_keys=False)
        files[name] = text.encode("utf-8")
    return files


def seed_disk(platform: str) -> str:
    """The second disk of the platform's hardware: where a seed is attached."""
    return list(hardware(platform)["disks"])[1]


def lay_out(root: str, metadata: dict[str, Any]) -> None:
    from sim import state

    platform = state.load(root)["platform"]
    image = iso_image(metadata.get("label", "cidata"), seed_files(metadata))
    attach_volume(root, seed_disk(platform), image)


def attach_volume(root: str, disk: str, image: bytes) -> None:
    """Write `image` raw at offset 0 of the disk's block and raw whole-disk nodes."""
    for kind in ("dsk", "rdsk"):
        path = os.path.join(root, "dev", kind, f"{disk}p0")
        with open(path, "r+b" if os.path.exists(path) else "wb") as f:
            f.write(image)


# ---- ISO 9660 writer: one flat root directory, Rock Ridge names --------------------------

def _both16(n: int) -> bytes:
    return n.to_bytes(2, "little") + n.to_bytes(2, "big")


def _both32(n: int) -> bytes:
    return n.to_bytes(4, "little") + n.to_bytes(4, "big")


def _iso_name(name: str, taken: set[str]) -> str:
    """A level-1 name (8.3, d-characters) unique in the directory; Rock Ridge keeps the real one."""
    stem, _, ext = name.upper().rpartition(".") if "." in name else (name.upper(), "", "")
    clean = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in stem)[:8]
    ext = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in ext)[:3]
    candidate, n = f"{clean}.{ext};1", 0
    while candidate in taken:
        n += 1
        candidate = f"{clean[:8 - len(str(n))]}{n}.{ext};1"
    taken.add(candidate)
    return candidate


def _dir_record(extent: int, size: int, iso_name: bytes, directory: bool, rr: bytes) -> bytes:
    body = (_both32(extent) + _both32(size) + bytes([125, 1, 1, 0, 0, 0, 0])
            + bytes([2 if directory else 0, 0, 0]) + _both16(1) + bytes([len(iso_name)])
            + iso_name + (b"\0" if len(iso_name) % 2 == 0 else b"") + rr)
    record = bytes([0]) + body  # extended attribute record length 0
    length = len(record) + 1
    if length % 2:
        record += b"\0"
        length += 1
    return bytes([length]) + record


def _rr_px(mode: int) -> bytes:
    return b"PX" + bytes([36, 1]) + _both32(mode) + _both32(1) + _both32(0) + _both32(0)


def _rr_nm(name: str) -> bytes:
    raw = name.encode("utf-8")
    return b"NM" + bytes([5 + len(raw), 1, 0]) + raw


def _rr_root_self() -> bytes:
    ident, desc, src = b"RRIP_1991A", b"ROCK RIDGE", b"SIM"
    sp = b"SP" + bytes([7, 1, 0xBE, 0xEF, 0])
    er = (b"ER" + bytes([8 + len(ident) + len(desc) + len(src), 1, len(ident), len(desc),
                         len(src), 1]) + ident + desc + src)
    return sp + _rr_px(0o40555) + er


def _root_records(entries: list[tuple[str, str, bytes]], placed: list[int], root_extent: int,
                  root_size: int) -> list[bytes]:
    records = [_dir_record(root_extent, root_size, b"\0", True, _rr_root_self()),
               _dir_record(root_extent, root_size, b"\1", True, b"")]
    return records + [_dir_record(placed[i], len(data), iso.encode(), False,
                                  _rr_nm(name) + _rr_px(0o100444))
                      for i, (iso, name, data) in enumerate(entries)]


def _pack_sectors(records: list[bytes]) -> list[bytes]:
    """Directory records into sectors; a record never crosses a sector boundary."""
    sectors, current = [], b""
    for rec in records:
        if len(current) + len(rec) > SECTOR:
            sectors.append(current.ljust(SECTOR, b"\0"))
            current = b""
        current += rec
    return [*sectors, current.ljust(SECTOR, b"\0")]


def _text(value: str, size: int) -> bytes:
    return value.encode("ascii")[:size].ljust(size, b" ")


def iso_image(label: str, files: dict[str, bytes]) -> bytes:
    """An ISO 9660 image (volume id `label`) holding `files` in its root directory."""
    if any("/" in name or not name for name in files):
        raise ValueError("this writer makes a flat root directory only")
    taken: set[str] = set()
    entries = sorted(((_iso_name(name, taken), name, data) for name, data in files.items()))
    root_extent, path_l, path_m = 20, 18, 19
    # Records have the same length whatever their extents, so size the directory first.
    root_dir_sectors = len(_pack_sectors(_root_records(entries, [0] * len(entries), 0, 0)))
    placed, extent = [], root_extent + root_dir_sectors
    for _iso, _name, data in entries:
        placed.append(extent)
        extent += max(1, -(-len(data) // SECTOR))
    total_sectors = extent
    root_size = root_dir_sectors * SECTOR
    root_dir = b"".join(_pack_sectors(_root_records(entries, placed, root_extent, root_size)))
    root_rec = _dir_record(root_extent, root_size, b"\0", True, b"")

    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    stamp = now.strftime("%Y%m%d%H%M%S00").encode() + b"\0"
    path_table_le = bytes([1, 0]) + root_extent.to_bytes(4, "little") + (1).to_bytes(2, "little") + b"\0\0"
    path_table_be = bytes([1, 0]) + root_extent.to_bytes(4, "big") + (1).to_bytes(2, "big") + b"\0\0"
    pvd = (bytes([1]) + b"CD001" + bytes([1, 0]) + _text("ILLUMOS", 32) + _text(label, 32)
           + bytes(8) + _both32(total_sectors) + bytes(32) + _both16(1) + _both16(1)
           + _both16(SECTOR) + _both32(10) + path_l.to_bytes(4, "little") + bytes(4)
           + path_m.to_bytes(4, "big") + bytes(4) + root_rec + _text("", 128)
           + _text("", 128) + _text("", 128) + _text("SIM", 128) + _text("", 37 * 3)
           + stamp + stamp + b"0" * 16 + b"\0" + b"0" * 16 + b"\0" + bytes([1, 0]))
    pvd = pvd.ljust(SECTOR, b"\0")
    terminator = (bytes([255]) + b"CD001" + bytes([1])).ljust(SECTOR, b"\0")
    image = bytearray(16 * SECTOR)
    image += pvd + terminator
    image += path_table_le.ljust(SECTOR, b"\0") + path_table_be.ljust(SECTOR, b"\0")
    image += root_dir
    for data in (d for _, _, d in entries):
        image += data.ljust(max(1, -(-len(data) // SECTOR)) * SECTOR, b"\0")
    assert len(image) == total_sectors * SECTOR
    return bytes(image)
