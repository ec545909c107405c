"""The virtual hardware of each simulated platform: SMBIOS identity, links, disks, memory.

Names follow what illumos gives each hypervisor's devices (vioif for virtio-net, ena for
EC2's ENA, vmxnet3s for VMware). `rpool.label_disk` is the device name recorded in the root
pool's label when the image was built; where it differs from the disk present (the
DigitalOcean case: built under bhyve as c1t0d0, booted as c3t0d0) the guest reproduces the
renamed-root-disk report in shared/seeds.
"""

from __future__ import annotations

from typing import Any

GIB = 1 << 30

_UUIDS = {
    "qemu": "3f1a2b4c-5d6e-4f70-8192-a3b4c5d6e7f8",
    "bhyve": "9b8c7d6e-5f40-4132-a1b2-c3d4e5f60718",
    "vmware": "564d2a1b-3c4d-5e6f-7081-92a3b4c5d6e7",
    "smartos": "d2f3c6a0-4b5e-4e6f-9a1b-2c3d4e5f6a7b",
    "digitalocean": "5b6c7d8e-9fa0-4b1c-8d2e-3f4a5b6c7d8e",
    "ec2": "ec2e5a1b-3c4d-4e5f-8a6b-7c8d9e0f1a2b",
    "nocloud": "6e7f8091-a2b3-4c4d-9e5f-60718293a4b5",
}

PLATFORMS: dict[str, dict[str, Any]] = {
    "qemu": {
        "smbios": {"manufacturer": "QEMU", "product": "Standard PC (i440FX + PIIX, 1996)",
                   "version": "pc-i440fx-8.2"},
        "links": [("vioif0", "52:54:0:12:34:56")],
        "disks": {"c1t0d0": 20 * GIB, "c2t0d0": 1 << 20},
    },
    "bhyve": {
        "smbios": {"manufacturer": "OmniOS", "product": "OmniOS HVM", "version": "1.0"},
        "links": [("vioif0", "2:8:20:a:b:c")],
        "disks": {"c1t0d0": 20 * GIB, "c2t0d0": 1 << 20},
    },
    "vmware": {
        "smbios": {"manufacturer": "VMware, Inc.", "product": "VMware Virtual Platform",
                   "version": "None"},
        "links": [("vmxnet3s0", "0:c:29:3e:4f:50")],
        "disks": {"c1t0d0": 20 * GIB, "c1t1d0": 1 << 20},
    },
    "smartos": {
        "smbios": {"manufacturer": "Joyent", "product": "SmartDC HVM",
                   "version": "7.20230301T000238Z"},
        "links": [("vioif0", "90:b8:d0:1:2:3"), ("vioif1", "90:b8:d0:4:5:6")],
        "disks": {"c1t0d0": 20 * GIB},
    },
    "digitalocean": {
        "smbios": {"manufacturer": "DigitalOcean", "product": "Droplet", "version": "20171212"},
        "links": [("vioif0", "da:1:2:3:4:5"), ("vioif1", "da:1:2:3:4:6")],
        # Built under bhyve as c1t0d0; on DigitalOcean the same disk is c3t0d0.
        "disks": {"c3t0d0": 25 * GIB, "c4t0d0": 1 << 20},
        "rpool_label_disk": "c1t0d0",
    },
    "ec2": {
        "smbios": {"manufacturer": "Amazon EC2", "product": "t3.micro", "version": "1.0"},
        "links": [("ena0", "2:1a:2b:3c:4d:5e")],
        "disks": {"c1t0d0": 20 * GIB},
    },
    "nocloud": {
        "smbios": {"manufacturer": "QEMU", "product": "Standard PC (Q35 + ICH9, 2009)",
                   "version": "pc-q35-8.2"},
        "links": [("vioif0", "52:54:0:ab:cd:ef")],
        "disks": {"c1t0d0": 20 * GIB, "c2t0d0": 1 << 20},
    },
    "none": {
        "smbios": None,
        "links": [("e1000g0", "8:0:27:1:2:3")],
        "disks": {"c1t0d0": 20 * GIB},
    },
}

IMAGE_POOL_BYTES = 8 * GIB  # the pool as the image builder made it, before expansion
MEMORY_MB = 2048


def hardware(platform: str) -> dict[str, Any]:
    if platform not in PLATFORMS:
        raise KeyError(f"unknown platform {platform!r}; known: {', '.join(PLATFORMS)}")
    hw = dict(PLATFORMS[platform])
    if hw["smbios"] is not None:
        hw["smbios"] = {**hw["smbios"], "uuid": _UUIDS[platform].upper(),
                        "serial": f"{platform}-0001"}
    root_disk = next(iter(hw["disks"]))
    hw["root_disk"] = root_disk
    hw["rpool_label_disk"] = hw.get("rpool_label_disk", root_disk)
    hw["memory_mb"] = MEMORY_MB
    return hw
