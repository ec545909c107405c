"""mount(8) stand-in: mounts an ISO 9660 (hsfs) or FAT (pcfs) volume read-only from a disk.

Forms accepted (illumos-gate usr/src/man/man8/mount.8, mount_hsfs.8, mount_pcfs.8):
`mount -F FSType [-r] [-O] [-o specific_options] special mount_point`, `mount -p` and a bare
`mount` (which list /etc/mnttab). The volume is the bytes of the device file under the root
(`<root>/dev/dsk/c2t0d0p0`); "mounting" extracts its files into the mount point directory and
records the mount in `state["mounts"]` and in `<root>/etc/mnttab` (mnttab(5): special,
mount point, type, options, time, tab-separated), which umount(8) undoes.

hsfs is ISO 9660 read with Rock Ridge names (NM entries) when present, else Joliet names,
else the ISO name mapped as illumos hsfs does (lower case, `;1` version and a trailing `.`
dropped).

udfs follows usr/src/cmd/fs.d/udfs/mount/mount.c (`mount -F udfs [-o ro] special
mount_point`): the volume read as sim/standins/udfs.py reads UDF; a device holding none is
`mount: SPECIAL is not an udfs file system.` as for hsfs.

pcfs follows mount_pcfs, usr/src/cmd/fs.d/pcfs/mount/mount.c `main()`: getopt `Vvmr?o:Oq`;
the volume is read as the kernel's pcfs shows it (sim/standins/pcfs.py: long names, 8.3
names folded to lower case); a device that is no FAT file system is `mount: SPECIAL is not
a DOS filesystem.` (EINVAL), one already mounted or a busy mount point `mount: SPECIAL is
already mounted or MOUNTP is busy` (EBUSY), both on stderr with exit 32, as is its usage.
The simulated guest mounts read-only only (a request without `ro` is refused).
Standard library only: this runs under `python -S`.
"""

from __future__ import annotations

import os
import time

from sim.standins import pcfs, udfs
from sim.standins.base import Invocation, parse_opts

SECTOR = 2048
MAX_DEPTH = 8
MAX_FILE = 64 << 20


class NotIso(Exception):
    """The device does not hold a readable ISO 9660 volume."""


def _both32(buf: bytes, off: int) -> int:
    return int.from_bytes(buf[off:off + 4], "little")


def volume_descriptors(image: bytes) -> list[bytes]:
    """Volume descriptors from sector 16 up to the set terminator (type 255)."""
    found = []
    for sector in range(16, 64):
        vd = image[sector * SECTOR:(sector + 1) * SECTOR]
        if len(vd) < SECTOR or vd[1:6] != b"CD001":
            break
        if vd[0] == 255:
            return found
        found.append(vd)
    if not found:
        raise NotIso("no ISO 9660 volume descriptor at sector 16")
    return found


def volume_label(image: bytes) -> str:
    pvd = next((vd for vd in volume_descriptors(image) if vd[0] == 1), None)
    if pvd is None:
        raise NotIso("no primary volume descriptor")
    return pvd[40:72].decode("ascii", "replace").rstrip(" \0")


def _records(image: bytes, extent: int, size: int):
    """Directory records of one directory extent; records never cross a sector boundary."""
    data = image[extent * SECTOR:extent * SECTOR + size]
    pos = 0
    while pos < len(data):
        length = data[pos]
        if length == 0:
            pos = (pos // SECTOR + 1) * SECTOR
            continue
        if length < 34 or pos + length > len(data):
            raise NotIso(f"bad directory record at extent {extent}")
        yield data[pos:pos + length]
        pos += length


def _rock_ridge_name(record: bytes) -> str | None:
    name_len = record[32]
    pos = 33 + name_len + (1 - name_len % 2)
    name = None
    while pos + 4 <= len(record):
        sig, length = record[pos:pos + 2], record[pos + 2]
        if length < 4:
            break
        if sig == b"NM":
            name = (name or "") + record[pos + 5:pos + length].decode("utf-8", "replace")
        pos += length
    return name


def _plain_name(raw: bytes, joliet: bool) -> str:
    name = raw.decode("utf-16-be", "replace") if joliet else raw.decode("ascii", "replace")
    name = name.split(";")[0]
    if name.endswith("."):
        name = name[:-1]
    return name if joliet else name.lower()


def _walk(image: bytes, extent: int, size: int, joliet: bool, depth: int, prefix: str,
          out: dict[str, bytes | None]) -> None:
    if depth > MAX_DEPTH:
        raise NotIso("directories nested too deep")
    for record in _records(image, extent, size):
        raw = record[33:33 + record[32]]
        if raw in (b"\0", b"\1"):
            continue
        name = (None if joliet else _rock_ridge_name(record)) or _plain_name(raw, joliet)
        if not name or "/" in name or name in (".", ".."):
            raise NotIso(f"bad file name {name!r}")
        child_extent, child_size = _both32(record, 2), _both32(record, 10)
        if record[25] & 0x02:
            out[prefix + name] = None
            _walk(image, child_extent, child_size, joliet, depth + 1, prefix + name + "/", out)
        elif record[25] & 0x80 or child_size > MAX_FILE:
            raise NotIso(f"{prefix + name}: multi-extent or oversized files are not emulated")
        else:
            out[prefix + name] = image[child_extent * SECTOR:child_extent * SECTOR + child_size]


def iso_files(image: bytes) -> dict[str, bytes | None]:
    """Path -> contents (None for a directory) of an ISO 9660 image."""
    descriptors = volume_descriptors(image)
    pvd = next((vd for vd in descriptors if vd[0] == 1), None)
    if pvd is None:
        raise NotIso("no primary volume descriptor")
    root = pvd[156:190]
    files: dict[str, bytes | None] = {}
    _walk(image, _both32(root, 2), _both32(root, 10), False, 0, "", files)
    has_rock_ridge = any(_rock_ridge_name(r) for r in _records(
        image, _both32(root, 2), _both32(root, 10)))
    joliet = next((vd for vd in descriptors
                   if vd[0] == 2 and vd[88:91] in (b"%/@", b"%/C", b"%/E")), None)
    if joliet is not None and not has_rock_ridge:
        files = {}
        jroot = joliet[156:190]
        _walk(image, _both32(jroot, 2), _both32(jroot, 10), True, 0, "", files)
    return files


def _host(inv: Invocation, guest_path: str) -> str:
    parts = [p for p in guest_path.split("/") if p not in ("", ".")]
    if ".." in parts:
        inv.fail(f"mount: {guest_path}: Invalid argument")
    return os.path.join(inv.root, *parts)


def write_mnttab(inv: Invocation) -> None:
    path = os.path.join(inv.root, "etc", "mnttab")
    lines = [f"{m['special']}\t{m['mount_point']}\t{m['fstype']}\t{m['options']}\t{m['time']}"
             for m in inv.state.get("mounts", [])]
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    os.replace(tmp, path)


def main(inv: Invocation) -> int:
    opts, rest = parse_opts(inv, inv.argv, "rOpvmg", "Fo")
    mounts = inv.state.setdefault("mounts", [])
    if not rest and not opts.get("F"):
        for m in mounts:
            inv.out(f"{m['mount_point']} on {m['special']} read only on {m['time']}")
        return 0
    if len(rest) != 2 or not opts.get("F"):
        inv.usage("this stand-in mounts `-F FSType [-o options] special mount_point` only")
    fstype, (special, mount_point) = opts["F"], rest
    options = [o for o in opts.get("o", "").split(",") if o]
    if "rw" in options or not ("ro" in options or opts.get("r")):
        inv.fail(f"mount: {special}: read-only file system (mount with -o ro)")
    if fstype not in ("hsfs", "pcfs", "udfs"):
        inv.fail(f"mount: {fstype}: file system type not supported by this guest")
    busy = any(m["mount_point"] == mount_point for m in mounts) and not opts.get("O")
    if fstype == "pcfs" and (busy or any(m["special"] == special for m in mounts)):
        inv.fail(f"mount: {special} is already mounted or {mount_point} is busy", code=32)
    if busy:
        inv.fail(f"mount: {mount_point} is busy")
    if any(m["special"] == special for m in mounts):
        inv.fail(f"mount: {special} is already mounted")
    target = _host(inv, mount_point)
    if not os.path.isdir(target) or os.path.islink(target):
        inv.fail(f"mount: Mount point {mount_point} does not exist.")
    try:
        with open(_host(inv, special), "rb") as f:
            image = f.read()
    except OSError:
        inv.fail(f"mount: {special}: No such file or directory")
    if fstype == "pcfs":
        try:
            files = pcfs.fat_files(image)
        except pcfs.NotFat:
            inv.fail(f"mount: {special} is not a DOS filesystem.", code=32)
    elif fstype == "udfs":
        try:
            files = udfs.udf_files(image)
        except udfs.NotUdf:
            inv.fail(f"mount: {special} is not an {fstype} file system.")
    else:
        try:
            files = iso_files(image)
        except NotIso:
            inv.fail(f"mount: {special} is not an {fstype} file system.")
    for name, data in sorted(files.items()):
        path = os.path.join(target, *name.split("/"))
        if data is None:
            os.makedirs(path, mode=0o555, exist_ok=True)
            continue
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o444)
    mounts.append({"special": special, "mount_point": mount_point, "fstype": fstype,
                   "options": "ro", "time": str(int(time.time())),
                   "files": sorted(files, key=lambda n: -n.count("/"))})
    write_mnttab(inv)
    return 0
