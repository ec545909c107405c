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

import os
from typing import Any

import yaml

from providers.iso9660 import iso_image
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


