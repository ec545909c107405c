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
