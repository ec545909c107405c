"""Local volumes (a NoCloud `cidata` disk, DigitalOcean's config drive): find them, read files.

Finding is `fstyp -a` on each whole-disk device `/dev/dsk/*p0` (fstyp(8): the FS type on the
first line, then `name: value` attributes, `gen_volume_label` among them); a disk holding no
file system makes fstyp exit non-zero, which here just means "not a volume".

Reading mounts the volume read-only (`mount -F hsfs -o ro DEVICE MOUNTPOINT`, mount_hsfs(8) /
mount_pcfs(8)) on a mount point under `/var/run` inside the root, reads the wanted files
through the system layer with a size cap, and always unmounts. The mount is done with
`System.run`, not `apply`: it is transient, read-only and undone before we return, and
`metadata plan` has to read the metadata too. A mount left behind by a killed run is found
in `/etc/mnttab` and unmounted first, so a crash never wedges the next boot.
"""

from __future__ import annotations

import errno
import logging
import stat
from collections.abc import Iterator
from contextlib import contextmanager

from fsm.errors import CommandError, MetadataError, ParseError
from fsm.record import record
from fsm.system import System

log = logging.getLogger(__name__)

FSTYP = "/usr/sbin/fstyp"
MOUNT = "/usr/sbin/mount"
UMOUNT = "/usr/sbin/umount"
MNTTAB = "/etc/mnttab"
DISK_DIR = "/dev/dsk"
REMOVABLE_DIR = "/dev/removable-media/dsk"
MOUNT_POINT = "/var/run/metadata-agent/volume"
# File systems we know how to mount read-only; anything else fstyp names is not a seed.
MOUNTABLE = ("hsfs", "pcfs", "udfs")   # udfs: Azure's provisioning DVD
FSTYP_TIMEOUT_S = 5.0


@record(frozen=True)
class Volume:
    device: str          # block device, e.g. /dev/dsk/c2t0d0p0
    fstype: str          # as fstyp names it: hsfs or pcfs
    label: str           # gen_volume_label, "" when the file system has none


def whole_disks(system: System) -> list[str]:
    """The whole-disk block devices (`p0`), where a seed volume without a partition table is.

    A CD-ROM (bhyve `ahci-cd`, an emu zone's IDE cdrom, QEMU's ide-cd) is an sd(4D) disk
    too, with the same `p0` node on x86; devfsadm also links removable media under
    /dev/removable-media/dsk, where a drive without a `p0` node is read at `s2`, the slice
    sd's default label gives the whole medium (the node `mount -F hsfs` takes for a CD)."""
    disks = [f"{DISK_DIR}/{name}" for name in system.listdir(DISK_DIR) if name.endswith("p0")]
    seen = {d.rsplit("/", 1)[1][:-2] for d in disks}
    disks += [f"{REMOVABLE_DIR}/{name}" for name in system.listdir(REMOVABLE_DIR)
              if name.endswith("s2") and name[:-2] not in seen]
    return disks


def parse_fstyp(text: str, device: str) -> tuple[str, str]:
    """(fstype, label) from `fstyp -a` output; the label's single quotes removed."""
    lines = text.splitlines()
    if not lines or not lines[0].strip() or " " in lines[0].strip():
        raise ParseError(f"fstyp -a {device}", lines[0] if lines else "",
                         "expected the file system type on the first line")
    label = ""
    for line in lines[1:]:
        name, sep, value = line.strip().partition(":")
        if sep and name == "gen_volume_label":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == "'":
                value = value[1:-1]
            label = value.strip()
    return lines[0].strip(), label


def find_volumes(system: System, facts: dict | None = None) -> list[Volume]:
    """Every whole disk holding a mountable file system, in device order. With `facts`
    (the run's `Context.facts`) the scan is done once per run: DETECT asks for a `cidata`
    and then a `config-2` volume, and each fstyp is a process on the boot's critical path."""
    if facts is not None and "volumes" in facts:
        return list(facts["volumes"])
    volumes = []
    for device in whole_disks(system):
        result = system.run([FSTYP, "-a", device], timeout_s=FSTYP_TIMEOUT_S, check=False)
        if result.returncode != 0:
            log.debug("%s: no file system (%s)", device, result.stderr.strip())
            continue
        fstype, label = parse_fstyp(result.stdout, device)
        if fstype in MOUNTABLE:
            volumes.append(Volume(device=device, fstype=fstype, label=label))
        else:
            log.debug("%s: %s file system, not a seed volume", device, fstype)
    if facts is not None:
        facts["volumes"] = list(volumes)
    return volumes


def find_labelled(system: System, label: str, facts: dict | None = None) -> list[Volume]:
    """Volumes whose label is `label`, ignoring case (mkisofs and mkfs.vfat differ in case)."""
    return [v for v in find_volumes(system, facts) if v.label.lower() == label.lower()]


def read_files(system: System, volume: Volume, names: list[str] | tuple[str, ...],
               limit: int) -> dict[str, bytes]:
    """The files of `names` present on the volume (absent ones left out), each <= `limit`.

    A name that is not a regular file (a symbolic link, a directory) or is over the limit is
    a MetadataError naming the device and the file: a seed we cannot trust is not ignored.
    """
    with mounted(system, volume):
        return {name: data for name in names
                if (data := read_one(system, volume, name, limit)) is not None}


@contextmanager
def mounted(system: System, volume: Volume) -> Iterator[str]:
    """The volume mounted read-only at MOUNT_POINT for the `with` block, always unmounted
    after it: for readers that choose what to read from what they find (a config drive's
    version directories)."""
    _release_stale_mount(system)
    system.ensure_dir(MOUNT_POINT, mode=0o700, scratch=True)
    system.run([MOUNT, "-F", volume.fstype, "-o", "ro", volume.device, MOUNT_POINT])
    try:
        yield MOUNT_POINT
    finally:
        system.run([UMOUNT, MOUNT_POINT], check=False)


def read_one(system: System, volume: Volume, name: str, limit: int) -> bytes | None:
    path = f"{MOUNT_POINT}/{name.lstrip('/')}"
    try:
        st = system.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not stat.S_ISREG(st.st_mode):
        raise MetadataError(volume.device, name, "is not a regular file; refusing to read it")
    try:
        return system.read_bytes(path, limit=limit)
    except OSError as e:
        if e.errno == errno.EFBIG:
            raise MetadataError(volume.device, name, f"larger than {limit} bytes") from None
        raise MetadataError(volume.device, name, f"cannot be read: {e.strerror}") from None


def _release_stale_mount(system: System) -> None:
    """Unmount our mount point if a killed earlier run left something mounted there."""
    for line in system.read_text(MNTTAB, default="").splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and fields[1] == MOUNT_POINT:
            log.warning("%s was left mounted on %s by an earlier run; unmounting it",
                        fields[0], MOUNT_POINT)
            try:
                system.run([UMOUNT, MOUNT_POINT])
            except CommandError as e:
                log.warning("could not unmount %s: %s", MOUNT_POINT, e)


def read_device_head(system: System, device: str, size: int) -> bytes:
    """Up to `size` bytes from the start of a device, for seeds written raw to a disk.

    Raw disk devices only accept whole-sector reads, so callers ask for multiples of 512.
    `System.read_bytes` refuses a file larger than its limit, which every disk is; until
    the system layer has a bounded head read, this is its one stand-in, resolved under the
    same root (device nodes are symbolic links into /devices on illumos, so they are
    followed here, as the kernel would).
    """
    read_head = getattr(system, "read_head", None)
    if read_head is not None:
        return read_head(device, size)
    with open(system.path(device), "rb") as f:
        return f.read(size)
