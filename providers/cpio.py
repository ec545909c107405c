"""The original agent's CPIO seed device (QEMU/KVM, bhyve, VMware Fusion): an archive written
by `cpio -o` raw at offset 0 of a disk, holding the seed files of providers/seedfiles.py.

DETECT looks at the first sector of every whole-disk raw device `/dev/rdsk/*p0` when SMBIOS
puts the guest in the local group (QEMU, OmniOS/bhyve, VMware, or anything not a known
cloud, including no SMBIOS table at all): no command runs, no network is touched. Two disks
both starting with an archive is an error, not a guess: which seed the user meant is not
ours to pick. FETCH reads a bounded head of that disk and parses it in Python
(providers/cpioarchive.py); nothing is ever extracted with `cpio -i`.
"""

from __future__ import annotations

import errno
import logging

from fsm.errors import MetadataError
from providers import cpioarchive, localdisk, seedfiles, smbios
from providers.base import Provider

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from fsm.steps import Context
    from providers.model import Metadata
    from providers.smbios import SmbiosInfo

log = logging.getLogger(__name__)

RAW_DISK_DIR = "/dev/rdsk"
SECTOR = 512
# Four seed files of at most 1 MiB each, plus headers, directories and padding.
ARCHIVE_READ_LIMIT = 8 << 20


def in_local_group(info: SmbiosInfo | None) -> bool:
    """QEMU, OmniOS (bhyve), VMware, or unknown/absent SMBIOS: seeds on local disks apply.

    Unknown platforms are included on purpose: a seed disk is the one source that costs
    nothing to look for, and the issue asks for local sources first when SMBIOS is silent.
    """
    return smbios.platform(info) not in smbios.CLOUDS


def seed_devices(ctx: Context) -> list[str]:
    """Whole-disk raw devices whose first sector starts with a CPIO magic."""
    found = []
    for name in ctx.system.listdir(RAW_DISK_DIR):
        if not name.endswith("p0"):
            continue
        device = f"{RAW_DISK_DIR}/{name}"
        try:
            head = localdisk.read_device_head(ctx.system, device, SECTOR)
        except OSError as e:
            if e.errno == errno.ETIMEDOUT:  # a wedged disk: say so, look at the others
                log.warning("%s: %s; not a seed disk this boot", device, e.strerror)
            else:
                log.debug("%s: cannot read: %s", device, e.strerror)
            continue
        if cpioarchive.archive_format(head):
            found.append(device)
    return found


class CpioProvider(Provider):
    name = "cpio"

    def __init__(self) -> None:
        self.device: str | None = None

    def detect(self, ctx: Context) -> bool:
        if not in_local_group(ctx.smbios):
            return False
        devices = seed_devices(ctx)
        if len(devices) > 1:
            raise MetadataError(self.name, RAW_DISK_DIR,
                                f"{len(devices)} disks start with a CPIO archive "
                                f"({', '.join(devices)}); attach only one seed disk")
        if devices:
            self.device = devices[0]
            log.info("CPIO seed archive on %s", self.device)
        return bool(devices)

    def fetch(self, ctx: Context) -> Metadata:
        if self.device is None and not self.detect(ctx):
            raise MetadataError(self.name, RAW_DISK_DIR, "no disk starts with a CPIO archive")
        assert self.device is not None
        try:
            data = localdisk.read_device_head(ctx.system, self.device, ARCHIVE_READ_LIMIT)
        except OSError as e:
            raise MetadataError(self.name, self.device, f"cannot be read: {e.strerror}") from None
        files = cpioarchive.read_archive(data, seedfiles.SEED_FILES,
                                         source=f"{self.name} {self.device}")
        return seedfiles.to_metadata(files, source=self.name)
