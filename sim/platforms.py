"""Each platform's metadata source: default metadata, how it is laid out in the guest (a
CPIO seed on a disk, a config drive), and how it is served (an HTTP server, a pty).

Platforms whose emulator module is not listed have no metadata source (`none`).
"""

from __future__ import annotations

import importlib
from typing import Any

from sim import guest

# platform -> module under sim/emulators with default_metadata(), lay_out(), serve()
EMULATORS: dict[str, str] = {
    "smartos": "smartos",
    "digitalocean": "digitalocean",
    "ec2": "ec2",
    "qemu": "cpio",
    "bhyve": "cpio",
    "vmware": "vmware",
    "nocloud": "nocloud",
    "oxide": "oxide",
    "omnios-zone": "omnioszone",
    "tribblix-zone": "tribblixzone",
    "proxmox": "proxmox",
    "smartos-nocloud": "smartosnocloud",
    "azure": "azure",
    "openstack": "openstack",
    "openstack-http": "openstackhttp",
    "proxmox-configdrive2": "pveconfigdrive",
}


def emulator(platform: str):
    name = EMULATORS.get(platform)
    return importlib.import_module(f"sim.emulators.{name}") if name else None


def lay_out(root: str, platform: str, override: dict[str, Any] | None) -> None:
    mod = emulator(platform)
    metadata = mod.default_metadata() if mod else {}
    if override:
        metadata.update(override)
    guest.save_metadata(root, metadata)
    if mod and hasattr(mod, "lay_out"):
        mod.lay_out(root, metadata)
