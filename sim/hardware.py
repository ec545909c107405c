"""The virtual hardware of each simulated platform: SMBIOS identity, links, disks, memory,
and the root disk's EFI label and ZFS pool as the image builder left them.

Names follow what illumos gives each hypervisor's devices (vioif for virtio-net, ena for
EC2's ENA, vmxnet3s for VMware). `rpool_label_disk` is the device name recorded in the root
pool's label when the image was built; where it differs from the disk present (the
DigitalOcean case: built under bhyve as c1t0d0, booted as c3t0d0) the guest reproduces the
renamed-root-disk report in shared/seeds.

The EFI arithmetic below is shared by the guest layout and the disk stand-ins (standard
library only). It follows libefi and `zpool create`: the GPT entry array is 16 KiB (so the
first usable LBA is 34 with 512-byte sectors, 6 with 4096-byte ones), the backup header sits
on the last LBA, ZFS starts its slice at sector 256, rounds the slice down to 2048 sectors
and puts an 8 MiB reserved slice 8 (tag 11) right after it; `zpool create -B` adds a 256 MiB
EFI system partition (tag 12) as slice 0 and moves the pool to slice 1.
"""

from __future__ import annotations

from typing import Any

GIB = 1 << 30
MIB = 1 << 20

_UUIDS = {
    "qemu": "3f1a2b4c-5d6e-4f70-8192-a3b4c5d6e7f8",
    "bhyve": "9b8c7d6e-5f40-4132-a1b2-c3d4e5f60718",
    "vmware": "564d2a1b-3c4d-5e6f-7081-92a3b4c5d6e7",
    "smartos": "d2f3c6a0-4b5e-4e6f-9a1b-2c3d4e5f6a7b",
    "digitalocean": "5b6c7d8e-9fa0-4b1c-8d2e-3f4a5b6c7d8e",
    "ec2": "ec2e5a1b-3c4d-4e5f-8a6b-7c8d9e0f1a2b",
    "nocloud": "6e7f8091-a2b3-4c4d-9e5f-60718293a4b5",
    "oxide": "0d5c3f4e-7b1a-4c2d-9e8f-a1b2c3d4e5f6",
    "omnios-zone": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
    "tribblix-zone": "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e",
    "proxmox": "c3d4e5f6-a7b8-4c9d-8e0f-2a3b4c5d6e7f",
    "smartos-nocloud": "e4f5a6b7-c8d9-4e0f-9a1b-3c4d5e6f7a8b",
    # Hyper-V stores the UUID big-endian in an SMBIOS 2.6+ table: the raw `UUID:` line is
    # Azure's vmId (02aab8a4-..., Microsoft's IMDS example) and the endian-corrected one,
    # the form kept here, has its first three groups byte-swapped.
    "azure": "a4b8aa02-ef74-6e47-8182-f6d2ba4166a6",
    "openstack": "d8e02d56-2648-49a3-bf97-6be8f1204f38",
    "openstack-http": "e9f13e67-3759-4ab4-8fa8-7cf9023150a9",
    "proxmox-configdrive2": "f4a5b6c7-d8e9-4f0a-9b1c-3d4e5f6a7b8c",
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
        "esp": False,  # a BIOS-booted image: the pool on slice 0, no EFI system partition
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
    "oxide": {
        # A propolis VM on an Oxide rack: its NIC has the Oxide OUI, the cidata volume is
        # a small FAT disk (sim/emulators/oxide.py).
        "smbios": {"manufacturer": "Oxide", "product": "OxVM", "version": "1.0"},
        "links": [("vioif0", "a8:40:25:f6:5e:1a")],
        "disks": {"c1t0d0": 20 * GIB, "c2t0d0": 1 << 20},
    },
    # The illumos hypervisors' own seeds and Proxmox VE (sim/emulators/zoneseed.py): the
    # seed is on a CD-ROM drive (`cdroms`: an sd(4D) disk with removable media, listed
    # under /dev/removable-media too), not on a second disk.
    "omnios-zone": {
        "smbios": {"manufacturer": "OmniOS", "product": "OmniOS HVM", "version": "1.0"},
        "links": [("vioif0", "2:8:20:5a:1:2")],
        "disks": {"c1t0d0": 20 * GIB},
        "cdroms": {"c2t0d0": 1 << 20},
    },
    "tribblix-zone": {
        "smbios": {"manufacturer": "Tribblix", "product": "Tribblix HVM", "version": "1.0"},
        "links": [("vioif0", "2:8:20:7b:3:4")],
        "disks": {"c1t0d0": 20 * GIB},
        "cdroms": {},
    },
    "proxmox": {
        "smbios": {"manufacturer": "QEMU", "product": "Standard PC (i440FX + PIIX, 1996)",
                   "version": "pc-i440fx-9.0"},
        "links": [("vioif0", "bc:24:11:4e:5f:60")],
        "disks": {"c3t0d0": 32 * GIB},
        "cdroms": {"c1t0d0": 1 << 20},
    },
    # A SmartOS 20260306 bhyve VM whose image asks for NoCloud: the metadata service on the
    # second serial port as on every SmartOS VM, and a 16 MiB FAT16 `CIDATA` virtio disk
    # beside the root disk (sim/emulators/smartosnocloud.py).
    "smartos-nocloud": {
        "smbios": {"manufacturer": "Joyent", "product": "SmartDC HVM",
                   "version": "7.20260306T000000Z"},
        "links": [("vioif0", "90:b8:d0:1:2:3"), ("vioif1", "90:b8:d0:4:5:6")],
        "disks": {"c1t0d0": 20 * GIB, "c2t0d0": 16 * MIB},
        "esp": False,
    },
    # A Hyper-V generation 1 VM on Azure: the provisioning DVD (UDF, ovf-env.xml) on the
    # IDE CD-ROM, the synthetic NIC (hv_netvsc; IMDS gives its MAC as 000D3AF806EC).
    "azure": {
        "smbios": {"manufacturer": "Microsoft Corporation", "product": "Virtual Machine",
                   "version": "7.0", "chassis_asset_tag": "7783-7084-3265-9085-8269-3286-77"},
        "links": [("hv_netvsc0", "0:d:3a:f8:6:ec")],
        "disks": {"c1t0d0": 30 * GIB},
        "cdroms": {"c2t0d0": 1 << 20},
    },
    # OpenStack Nova (libvirt): the SMBIOS system record Nova writes, a virtio NIC with
    # Nova's fa:16:3e OUI, the config drive (sim/emulators/openstack.py) an ISO 9660 on a
    # CD-ROM, or with `format: vfat` a FAT image on the second disk; `openstack-http` has
    # no drive: its metadata comes from the service.
    "openstack": {
        "smbios": {"manufacturer": "OpenStack Foundation", "product": "OpenStack Nova",
                   "version": "29.0.1", "family": "Virtual Machine"},
        "links": [("vioif0", "fa:16:3e:9c:bf:3d")],
        "disks": {"c1t0d0": 20 * GIB, "c3t0d0": 2 * MIB},
        "cdroms": {"c2t0d0": 1 << 20},
    },
    "openstack-http": {
        "smbios": {"manufacturer": "OpenStack Foundation", "product": "OpenStack Nova",
                   "version": "29.0.1", "family": "Virtual Machine"},
        "links": [("vioif0", "fa:16:3e:60:32:83")],
        "disks": {"c1t0d0": 20 * GIB},
    },
    # Proxmox VE with `citype: configdrive2`: the same VM, its cloud-init drive in the
    # config-2 format (sim/emulators/pveconfigdrive.py).
    "proxmox-configdrive2": {
        "smbios": {"manufacturer": "QEMU", "product": "Standard PC (i440FX + PIIX, 1996)",
                   "version": "pc-i440fx-9.0"},
        "links": [("vioif0", "bc:24:11:2c:69:ec")],
        "disks": {"c3t0d0": 32 * GIB},
        "cdroms": {"c1t0d0": 1 << 20},
    },
    "none": {
        "smbios": None,
        "links": [("e1000g0", "8:0:27:1:2:3")],
        "disks": {"c1t0d0": 20 * GIB},
    },
}

# What the guest's illumos build prints, where builds differ (state["illumos"]): a build
# from before 2018 has no zpool CKPOINT column; one from before the endian-corrected UUID
# line prints only smbios's raw `UUID:`. Tests set these to boot an older build.
CURRENT_BUILD = {"zpool_checkpoint": True, "smbios_endian_corrected": True}
OLDER_BUILD = {"zpool_checkpoint": False, "smbios_endian_corrected": False}

IMAGE_DISK_BYTES = 8 * GIB   # the disk the image was built on; its label and pool fit it
MEMORY_MB = 2048
POOL_GUID = "14823094716624589123"
VDEV_GUID = "9038117450218412207"

# ---- EFI (GPT) label arithmetic, after libefi and zpool_label_disk() -----------------------
EFI_ENTRY_ARRAY_BYTES = 16384   # 128 entries of 128 bytes
ZFS_START_SECTOR = 256          # NEW_START_BLOCK
ZFS_END_ALIGN_SECTORS = 2048    # PARTITION_END_ALIGNMENT
RESERVED_BYTES = 8 * MIB        # slice 8, "Solaris reserved" (tag 11)
ESP_BYTES = 256 * MIB           # `zpool create -B` default boot partition size
TAG_USR, TAG_RESERVED, TAG_SYSTEM = 4, 11, 12
EFI_NPARTS = 9

# ---- ZFS vdev sizing: labels and boot block, metaslabs of 512 MiB ---------------------------
VDEV_LABEL_OVERHEAD = 4 * MIB + 512 * 1024
METASLAB_BYTES = 512 * MIB
POOL_ALLOC_BYTES = 1536 * MIB   # what a fresh OmniOS image has written to its pool


def first_usable_lba(sector_size: int) -> int:
    """Protective MBR, primary GPT header, then the entry array."""
    return 2 + -(-EFI_ENTRY_ARRAY_BYTES // sector_size)


def last_usable_lba(total_sectors: int, sector_size: int) -> int:
    """The backup entry array and header take the end of the disk."""
    return total_sectors - first_usable_lba(sector_size)


def efi_label(label_disk_bytes: int, sector_size: int, esp: bool) -> dict[str, Any]:
    """The label `zpool create [-B]` writes on a disk of `label_disk_bytes`.

    Slices are keyed by number as strings (JSON); `altern_lba` is where the backup header
    was written, which stays put when the virtual disk is grown later.
    """
    total = label_disk_bytes // sector_size
    first, last = first_usable_lba(sector_size), last_usable_lba(total, sector_size)
    resv = RESERVED_BYTES // sector_size
    start = ZFS_START_SECTOR
    parts: dict[str, dict[str, int]] = {}
    data_slice = "0"
    if esp:
        esp_sectors = ESP_BYTES // sector_size
        parts["0"] = {"tag": TAG_SYSTEM, "flag": 0, "start": start, "size": esp_sectors}
        start += esp_sectors
        data_slice = "1"
    size = (last + 1 - resv - start) // ZFS_END_ALIGN_SECTORS * ZFS_END_ALIGN_SECTORS
    parts[data_slice] = {"tag": TAG_USR, "flag": 0, "start": start, "size": size}
    parts["8"] = {"tag": TAG_RESERVED, "flag": 0, "start": start + size, "size": resv}
    return {"type": "efi", "first_u_lba": first, "last_u_lba": last, "altern_lba": total - 1,
            "nparts": EFI_NPARTS, "parts": parts}


def vdev_asize(slice_bytes: int) -> int:
    """The pool size `zpool list` shows for a one-disk pool on a slice of this size."""
    usable = max(0, slice_bytes - VDEV_LABEL_OVERHEAD)
    return usable // METASLAB_BYTES * METASLAB_BYTES


def slice_bytes(disk: dict[str, Any], slice_no: str) -> int:
    part = (disk.get("label") or {}).get("parts", {}).get(slice_no)
    return part["size"] * disk["sector_size"] if part else 0


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
    hw.setdefault("esp", True)
    hw.setdefault("sector_size", 512)
    hw.setdefault("image_disk_bytes", IMAGE_DISK_BYTES)
    hw.setdefault("cdroms", {})
    return hw


_CTD_SUFFIXES = tuple(f"s{i}" for i in range(16)) + tuple(f"p{i}" for i in range(5))


def split_device(path: str) -> tuple[str, str, str] | None:
    """`/dev/rdsk/c1t0d0s1` -> ("rdsk", "c1t0d0", "s1"); None for anything else."""
    parts = path.split("/")
    if len(parts) != 4 or parts[:2] != ["", "dev"] or parts[2] not in ("dsk", "rdsk"):
        return None
    name = parts[3]
    for suffix in sorted(_CTD_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix) and _is_ctd(name[: -len(suffix)]):
            return parts[2], name[: -len(suffix)], suffix
    return (parts[2], name, "") if _is_ctd(name) else None


def _is_ctd(name: str) -> bool:
    """cNtXdN or cNdN, as the disk driver names disks."""
    if not name.startswith("c") or "d" not in name:
        return False
    ctl, _, unit = name[1:].rpartition("d")
    ctl_no, _, target = ctl.partition("t")
    return ctl_no.isdigit() and unit.isdigit() and (target == "" or target.isalnum())


# ---- data disks and pools (`sim create --disk`, tests) --------------------------------------
SPA_MINDEVSIZE = 64 * MIB       # zpool create refuses a smaller device (spa.h)
DISK_KINDS = ("blank", "label", "ufs")   # and "pool=NAME": a disk with an exported pool
_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": MIB, "G": GIB, "T": 1 << 40}


def parse_size(text: str) -> int:
    """`10G`, `512M`, `1.5T`, `1073741824`: 1024-based units, as zfs_nicestrtonum() reads
    them (a trailing `B` or `iB` allowed)."""
    body = text.strip().upper()
    for suffix in ("IB", "B"):
        if body.endswith(suffix) and body[: -len(suffix)][-1:] in "KMGT":
            body = body[: -len(suffix)]
            break
    unit = body[-1:] if body[-1:] in "KMGT" else ""
    try:
        value = float(body[: len(body) - len(unit)])
    except ValueError:
        raise ValueError(f"not a size: {text!r} (expected e.g. 10G, 512M)") from None
    if not 0 < value < float("inf"):
        raise ValueError(f"not a positive size: {text!r}")
    return int(value * _SIZE_UNITS[unit])


def parse_disk_spec(spec: str) -> tuple[str, int, str]:
    """`c2t0d0:10G[:blank|label|ufs|pool=NAME]` -> (name, bytes, kind)."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not _is_ctd(parts[0]):
        raise ValueError(f"disk {spec!r}: expected cXtYdZ:SIZE[:blank|label|ufs|pool=NAME]")
    kind = parts[2] if len(parts) == 3 else "blank"
    if kind not in DISK_KINDS and not (kind.startswith("pool=") and len(kind) > 5):
        raise ValueError(f"disk {spec!r}: kind {kind!r} is not blank, label, ufs or pool=NAME")
    return parts[0], parse_size(parts[1]), kind


def combine_asize(vdev: str, sizes: list[int]) -> int:
    """A top-level vdev's usable size from its children's: a stripe adds them, a mirror is
    its smallest child, raidzN loses N children's worth of its smallest."""
    if not sizes:
        return 0
    parity = {"raidz": 1, "raidz1": 1, "raidz2": 2, "raidz3": 3}.get(vdev, 0)
    if vdev == "stripe":
        return sum(sizes)
    if vdev == "mirror":
        return min(sizes)
    return min(sizes) * max(0, len(sizes) - parity)


def data_disk_asize(disk: dict[str, Any]) -> int:
    """What a whole-disk vdev on slice 0 of this disk's label can hold."""
    return vdev_asize(slice_bytes(disk, "0"))


def data_pool(name: str, disks: dict[str, dict[str, Any]], members: list[str], vdev: str,
              guid: str, mountpoint: str | None = None) -> dict[str, Any]:
    """The state of a pool `zpool create` made (whole disks, data on slice 0, no ESP)."""
    sizes = {d: data_disk_asize(disks[d]) for d in members}
    first = disks[members[0]]
    return {"guid": guid, "vdev_guid": str(int(guid) // 7 + 1), "disk": members[0],
            "disks": list(members), "vdev": vdev, "label_disk": members[0], "slice": "s0",
            "vdev_sizes": sizes, "size_bytes": combine_asize(vdev, list(sizes.values())),
            "alloc_bytes": 0, "physpath": f"{first.get('physpath', '')}:a",
            "refresh_on_status": False, "health": "ONLINE", "autoexpand": "off",
            "mountpoint": mountpoint if mountpoint is not None else f"/{name}"}


def label_whole_disk(disk: dict[str, Any], pool: str, guid: str, vdev_guid: str) -> None:
    """What zpool_label_disk() leaves on a whole disk: an EFI label filling it, the pool on
    slice 0, and the ZFS label naming the pool."""
    disk["label"] = efi_label(disk["size_bytes"], disk["sector_size"], False)
    disk["zfs_label"] = {"pool": pool, "slice": "0", "pool_guid": guid, "vdev_guid": vdev_guid}


def extra_disk(name: str, size: int, kind: str, index: int) -> tuple[dict[str, Any],
                                                                      dict[str, Any] | None]:
    """An attached data disk of `kind`, and the exported pool on it when there is one."""
    disk: dict[str, Any] = {"size_bytes": size, "sector_size": 512, "label": None,
                            "physpath": f"/devices/pci@0,0/pci1af4,2@{index + 10}/blkdev@0,0"}
    if kind == "label":
        # A label another system wrote: one usr slice, no ZFS label, no file system we know.
        label = efi_label(size, 512, False)
        label["parts"].pop("8", None)
        disk["label"] = label
    elif kind == "ufs":
        disk["label"] = efi_label(size, 512, False)
        disk["fstype"] = "ufs"
    elif kind.startswith("pool="):
        pool = kind[5:]
        guid = str(10_000_000_000_000_000_000 + index * 7919)
        exported = data_pool(pool, {name: {**disk, "label": efi_label(size, 512, False)}},
                             [name], "stripe", guid)
        exported["alloc_bytes"] = 64 * MIB
        label_whole_disk(disk, pool, guid, exported["vdev_guid"])
        return disk, exported
    return disk, None
