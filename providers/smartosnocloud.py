"""SmartOS with a NoCloud disk: a `cidata` volume on a Joyent `SmartDC HVM` guest wins over the
metadata service on its serial port.

Since SmartOS 20260306, vmadm gives a bhyve VM whose image asks for the NoCloud datasource
(image tag `cloudinit_datasource=nocloud`) a 16 MiB FAT16 disk labelled `CIDATA`, rebuilt
from the VM's record at every boot (smartos-live src/vm/node_modules/cloudinit/). Such a VM
has two sources: the disk and, as every SmartOS VM, the metadata service on the second serial
port. Both are the same record (instance-id is the VM uuid, the hostname the same), but the
disk is the one the image was made for: cloud-init, whose default datasource_list puts
NoCloud before SmartOS, reads the disk on that guest, and the disk carries what the host
built for it (network-config, vendor-data, the cloud-config user-data). So this provider comes
before `SmartOSProvider` and says yes on a Joyent SMBIOS only when a `cidata` volume is there;
the choice is made on local facts only (SMBIOS and fstyp over the disks), never by waiting on
the serial port. Without the disk, SmartOS is read over the serial port as before.

What follows from the choice, as on cloud-init: the service-only keys (`root_authorized_keys`,
`user-script`, `root_pw`, `sdc:routes`, `sdc:dns_domain`) are not read; keys and passwords
come from the cloud-config user-data, which is where an image asking for NoCloud gets them.
The uuid being the instance id of both, a VM that gains or loses the disk is the same
instance: nothing per-instance runs again.

Detection imports only the disk finder; the NoCloud parser is loaded when the disk is
there (a plain SmartOS boot pays one fstyp per disk, no more).
"""

from __future__ import annotations

import logging

from fsm.errors import MetadataError
from providers import localdisk, smbios
from providers.base import Provider

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from fsm.steps import Context
    from providers.model import Metadata

log = logging.getLogger(__name__)

LABEL = "cidata"          # providers/nocloud.py LABEL (a test checks they agree)
SOURCE = "nocloud"


class SmartOSNoCloudProvider(Provider):
    name = SOURCE

    def __init__(self) -> None:
        self.volume: localdisk.Volume | None = None

    def detect(self, ctx: Context) -> bool:
        if smbios.platform(ctx.smbios) != "smartos":
            return False
        volumes = localdisk.find_labelled(ctx.system, LABEL)
        if len(volumes) > 1:
            raise MetadataError(SOURCE, "volume", f"{len(volumes)} volumes are labelled "
                                f"{LABEL!r} ({', '.join(v.device for v in volumes)}); "
                                "attach only one")
        if not volumes:
            return False
        self.volume = volumes[0]
        log.info("NoCloud volume %r (%s) on %s: SmartOS gave this VM a cidata disk; read "
                 "it, not the metadata service", self.volume.label, self.volume.fstype,
                 self.volume.device)
        return True

    def fetch(self, ctx: Context) -> Metadata:
        from providers import nocloud

        if self.volume is None and not self.detect(ctx):
            raise MetadataError(SOURCE, "volume", f"no volume labelled {LABEL!r}")
        reader = nocloud.NoCloudProvider()
        reader.volume = self.volume
        return reader.fetch(ctx)
