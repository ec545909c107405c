"""SMBIOS system information (`smbios -t 1`), the local fact DETECT decides on.

Output format per smbios(8) (usr/src/cmd/smbios/smbios.c): a header line, a record line,
then indented `Name: value` lines; print_common() leaves out an empty Manufacturer,
Product, Version or Serial Number. A guest without an SMBIOS table makes `smbios` fail;
that is `None`, not an error.

The UUID: print_system() prints the table's 16 bytes in order as `UUID:`. SMBIOS 2.6 and
later store the first three fields little-endian, so on x86 that raw form has them
byte-swapped against the UUID the hypervisor or cloud reports; newer illumos builds add
`UUID (Endian-corrected):`, which is that reported form. The fallback instance id prefers
it, and keeps whichever form a guest already recorded (instance_uuid()).
"""

from __future__ import annotations

import logging

from fsm.errors import CommandError
from fsm.record import record, replace
from fsm.system import System

log = logging.getLogger(__name__)

SMBIOS = "/usr/sbin/smbios"


@record(frozen=True)
class SmbiosInfo:
    manufacturer: str = ""
    product: str = ""
    version: str = ""
    serial: str = ""
    uuid: str = ""            # `UUID:`, the table's bytes in order
    uuid_corrected: str = ""  # `UUID (Endian-corrected):`, printed by newer builds only
    chassis_asset_tag: str = ""  # type 3's `Asset Tag:`, read only where it decides (Azure)


_FIELDS = {"Manufacturer": "manufacturer", "Product": "product", "Version": "version",
           "Serial Number": "serial", "UUID": "uuid",
           "UUID (Endian-corrected)": "uuid_corrected"}


# Platforms with a metadata service of their own; a seed disk is not looked for there.
CLOUDS = ("smartos", "digitalocean", "ec2", "oxide", "azure")
# Hyper-V's system record; Azure's VMs alone carry this chassis asset tag (cloud-init's
# ChassisAssetTag.AZURE_CLOUD), which tells them from on-premises Hyper-V.
HYPERV = ("Microsoft Corporation", "Virtual Machine")
AZURE_ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"
OPENSTACK_PRODUCTS = ("OpenStack Nova", "OpenStack Compute")


def platform(info: SmbiosInfo | None) -> str | None:
    """What SMBIOS says this guest is, the one place DETECT reads it: a cloud of CLOUDS,
    one of the local-seed hypervisors ("qemu", "omnios", "tribblix", "vmware"), "openstack"
    (a config drive or its metadata service), or None when there
    is no table or the maker is unknown (then DETECT may probe)."""
    if info is None:
        return None
    maker = info.manufacturer.strip()
    product = info.product.strip()
    if maker == "Joyent" or product == "SmartDC HVM":
        return "smartos"
    if maker == "DigitalOcean" or product == "Droplet":
        return "digitalocean"
    # Older Xen instances: Manufacturer "Xen", Product "HVM domU", Version "4.11.amazon".
    if maker == "Amazon EC2" or ("HVM domU" in product and "amazon" in info.version.lower()):
        return "ec2"
    if (maker, product) == HYPERV and info.chassis_asset_tag.strip() == AZURE_ASSET_TAG:
        return "azure"
    if maker == "Oxide" or product == "OxVM":
        return "oxide"
    # OpenStack Nova's libvirt driver: Manufacturer "OpenStack Foundation", Product
    # "OpenStack Nova" ("OpenStack Compute" in older releases), the products cloud-init's
    # DataSourceOpenStack accepts. Its metadata service is asked only on this word.
    if maker == "OpenStack Foundation" or product in OPENSTACK_PRODUCTS:
        return "openstack"
    if maker == "VMware, Inc." or product.startswith("VMware"):
        return "vmware"
    if maker == "QEMU":
        return "qemu"
    if maker == "OmniOS" or product == "OmniOS HVM":
        return "omnios"
    if maker == "Tribblix" or product == "Tribblix HVM":
        return "tribblix"
    return None


def byte_swapped(uuid: str) -> str:
    """The other byte order of a UUID's first three fields (raw <-> endian-corrected)."""
    parts = uuid.split("-")
    if len(parts) != 5 or [len(p) for p in parts] != [8, 4, 4, 4, 12]:
        return ""
    swapped = ["".join(reversed([p[i:i + 2] for i in range(0, len(p), 2)])) for p in parts[:3]]
    return "-".join(swapped + parts[3:])


def instance_uuid(info: SmbiosInfo | None, recorded: str | None) -> str | None:
    """The SMBIOS UUID to use as the instance id when the metadata has none.

    The endian-corrected form where smbios prints it, since that is the id the hypervisor
    reports; otherwise the raw form. A guest that recorded the other form of this same
    UUID keeps it: booted first on a build printing only `UUID:`, its instance id is the
    raw form, and an OS update that adds the corrected line (or a rollback that drops it)
    must not make it a new instance, which would run every per-instance step again.
    """
    if info is None:
        return None
    raw, corrected = info.uuid.lower(), info.uuid_corrected.lower()
    chosen = corrected or raw
    if not chosen:
        return None
    if recorded and recorded in (raw, corrected, byte_swapped(raw)):
        return recorded
    return chosen


def parse(text: str) -> SmbiosInfo:
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition(":")
        if sep and name in _FIELDS and _FIELDS[name] not in found:
            found[_FIELDS[name]] = value.strip()
    return SmbiosInfo(**found)


def read(system: System) -> SmbiosInfo | None:
    try:
        out = system.run([SMBIOS, "-t", "1"], timeout_s=5).stdout
    except CommandError as e:
        log.info("no SMBIOS system information (%s)", e)
        return None
    info = parse(out)
    if (info.manufacturer, info.product) == HYPERV:
        info = replace(info, chassis_asset_tag=chassis_asset_tag(system))
    return info if any((info.manufacturer, info.product, info.uuid)) else None


def chassis_asset_tag(system: System) -> str:
    """The chassis record's `Asset Tag:` (`smbios -t SMB_TYPE_CHASSIS`; print_common()
    prints it for every record type that has one, usr/src/cmd/smbios/smbios.c). Asked only
    on Hyper-V, where it tells Azure from on-premises: the other platforms pay nothing."""
    try:
        out = system.run([SMBIOS, "-t", "SMB_TYPE_CHASSIS"], timeout_s=5).stdout
    except CommandError as e:
        log.info("no SMBIOS chassis information (%s)", e)
        return ""
    for line in out.splitlines():
        name, sep, value = line.strip().partition(":")
        if sep and name == "Asset Tag":
            return value.strip()
    return ""
