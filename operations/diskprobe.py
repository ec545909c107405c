"""Which attached disks are blank, and which exported pools could be imported.

A pool is made only on a disk nothing claims, because `zpool create` checks use, not
labels: it relabels a disk whose partitions nobody has mounted without a word, and with
`-f` even one with an exported pool. So before a disk is chosen, each of these must find
nothing (any one finding something refuses the disk, with the finding as the reason):
- `zdb -l /dev/dsk/DISKs0` and `s1`: a ZFS label (an imported or exported pool, or a
  stale one; s1 is where a pool made with `zpool create -B`, the root pool, sits);
- `zpool import` (the listing): the disk belongs to a pool that could be imported;
- `fstyp /dev/rdsk/DISKp0`: a file system (a seed volume, a UFS disk);
- `prtvtoc /dev/rdsk/DISKp0`: a partition table (an EFI label another system wrote).
Disks come from `diskinfo -Hp` (illumos-gate usr/src/cmd/diskinfo/diskinfo.c: tab-separated
TYPE, DISK, VID, PID, SIZE in bytes, RMV, SSD); removable media (CD-ROM drives, the seed
of a zone) are never candidates, nor disks below zpool's 64 MiB minimum (SPA_MINDEVSIZE).
"""

from __future__ import annotations

import logging
import re

from fsm.errors import ParseError
from fsm.record import field, record
from fsm.system import System
from operations import rootdisk

log = logging.getLogger(__name__)

DISKINFO = "/usr/bin/diskinfo"
FSTYP = "/usr/sbin/fstyp"
PRTVTOC = "/usr/sbin/prtvtoc"
MIN_DEVICE_BYTES = 64 << 20
_CTD = re.compile(r"^c\d+(?:t[0-9A-Za-z]+)?d\d+$")
_IMPORT_POOL = re.compile(r"^\s*pool: (.+)$")
_IMPORT_ID = re.compile(r"^\s*id: (\d+)$")
_IMPORT_VDEV = re.compile(r"^\t\s+(\S+)\s+\S+")


@record(frozen=True)
class Disk:
    name: str
    size_bytes: int
    removable: bool


@record(frozen=True)
class Importable:
    name: str
    guid: str
    disks: tuple[str, ...]


@record
class Probe:
    """What one STORAGE run learned about the disks, each fact asked once."""

    system: System
    disks: dict[str, Disk] = field(default_factory=dict)
    importable: dict[str, Importable] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)
    _why: dict[str, str | None] = field(default_factory=dict)

    def load(self) -> Probe:
        self.disks = list_disks(self.system)
        self.importable = list_importable(self.system)
        self.active = rootdisk.active_pools(self.system)
        return self

    def not_blank(self, disk: str) -> str | None:
        """Why `disk` may not hold a new pool, or None when it is blank."""
        if disk not in self._why:
            self._why[disk] = self._check(disk)
        return self._why[disk]

    def _check(self, name: str) -> str | None:
        disk = self.disks.get(name)
        if disk is None:
            return "is not attached (diskinfo does not list it)"
        if disk.removable:
            return "is removable media"
        if disk.size_bytes < MIN_DEVICE_BYTES:
            return f"has {disk.size_bytes} bytes, below zpool's minimum of 64 MiB"
        for sl in ("s0", "s1"):   # a whole-disk pool, or one behind an EFI system partition
            label = rootdisk.label_pool(self.system, f"{rootdisk.DEV_DSK}/{name}{sl}")
            if label:
                return f"carries a ZFS label of pool {label[0]}"
        owner = next((p.name for p in self.importable.values() if name in p.disks), None)
        if owner:
            return f"belongs to exported pool {owner}"
        fs = self.system.run([FSTYP, f"/dev/rdsk/{name}p0"], check=False)
        if fs.returncode == 0:
            return f"contains a {fs.stdout.split()[0] if fs.stdout.split() else '?'} file system"
        vtoc = self.system.run([PRTVTOC, f"/dev/rdsk/{name}p0"], check=False)
        if vtoc.returncode == 0:
            return "carries a partition table (a label another system wrote)"
        return None


def list_disks(system: System) -> dict[str, Disk]:
    """`diskinfo -Hp`: every disk, its size in bytes and whether it is removable."""
    out = system.run([DISKINFO, "-Hp"]).stdout
    disks: dict[str, Disk] = {}
    for line in out.splitlines():
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 7 or not _CTD.match(fields[1]) or not fields[4].isdigit():
            raise ParseError("diskinfo -Hp", line, "expected TYPE DISK VID PID SIZE RMV SSD, "
                                                   "tab-separated, SIZE in bytes")
        disks[fields[1]] = Disk(fields[1], int(fields[4]), fields[5] == "yes")
    return disks


def list_importable(system: System) -> dict[str, Importable]:
    """`zpool import` with no pool: the pools an import would find, with their disks.

    "no pools available to import" (stderr, exit 0) is none."""
    out = system.run([rootdisk.ZPOOL, "import"]).stdout
    found: dict[str, Importable] = {}
    name = guid = None
    disks: list[str] = []
    in_config = False

    def close() -> None:
        if name is not None and guid is not None:
            found[name] = Importable(name, guid, tuple(disks))

    for line in out.splitlines():
        m = _IMPORT_POOL.match(line)
        if m:
            close()
            name, guid, disks, in_config = m.group(1).strip(), None, [], False
            continue
        m = _IMPORT_ID.match(line)
        if m:
            guid = m.group(1)
        elif line.strip() == "config:":
            in_config = True
        elif in_config:
            v = _IMPORT_VDEV.match(line)
            if v and _CTD.match(re.sub(r"s\d+$", "", v.group(1))):
                disks.append(re.sub(r"s\d+$", "", v.group(1)))
    close()
    return found


def pool_disks(system: System, pool: str,
               listing: rootdisk.PoolListing | None = None) -> list[str]:
    """The whole disks a pool's leaf vdevs are on (group lines like mirror-0 skipped)."""
    listing = listing or rootdisk.list_pool(system, pool)
    disks = []
    for vdev in listing.vdevs:
        name = vdev.name.rsplit("/", 1)[-1]
        name = re.sub(r"s\d+$", "", name)
        if _CTD.match(name):
            disks.append(name)
    return disks
