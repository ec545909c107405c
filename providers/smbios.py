"""SMBIOS system information (`smbios -t 1`), the local fact DETECT decides on.

Output format per smbios(8): a header line, a record line, then indented `Name: value`
lines. A guest without an SMBIOS table makes `smbios` fail; that is `None`, not an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fsm.errors import CommandError
from fsm.system import System

log = logging.getLogger(__name__)

SMBIOS = "/usr/sbin/smbios"


@dataclass(frozen=True)
class SmbiosInfo:
    manufacturer: str = ""
    product: str = ""
    version: str = ""
    serial: str = ""
    uuid: str = ""


_FIELDS = {"Manufacturer": "manufacturer", "Product": "product", "Version": "version",
           "Serial Number": "serial", "UUID": "uuid"}


# Platforms with a metadata service of their own; a seed disk is not looked for there.
CLOUDS = ("smartos", "digitalocean", "ec2", "oxide")


def platform(info: SmbiosInfo | None) -> str | None:
    """What SMBIOS says this guest is, the one place DETECT reads it: a cloud of CLOUDS,
    one of the local-seed hypervisors ("qemu", "omnios", "tribblix", "vmware"), or None when there
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
    if maker == "Oxide" or product == "OxVM":
        return "oxide"
    if maker == "VMware, Inc." or product.startswith("VMware"):
        return "vmware"
    if maker == "QEMU":
        return "qemu"
    if maker == "OmniOS" or product == "OmniOS HVM":
        return "omnios"
    if maker == "Tribblix" or product == "Tribblix HVM":
        return "tribblix"
    return None


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
    return info if any((info.manufacturer, info.product, info.uuid)) else None
