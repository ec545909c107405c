"""Lays out a simulated illumos guest root: /etc files, device nodes, stand-in commands,
and the initial kernel-side state for a platform's virtual hardware."""

from __future__ import annotations

import json
import os
import shlex
import sys
from typing import Any

from sim import etcfiles, hostkeys, smffiles, state
from sim import hardware as hwmod
from sim.commands import COMMAND_PATHS, OPTIONAL_COMMAND_PATHS
from sim.hardware import hardware

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METADATA_FILE = "var/sim/metadata.json"

METADATA_FMRI = "svc:/system/illumos/metadata:default"
USERSCRIPT_FMRI = "svc:/system/illumos/userscript:default"
SSH_FMRI = "svc:/network/ssh:default"

WRAPPER = """#!/bin/sh
# Stand-in for illumos {command}: see sim/standins/{command}.py
SIM_ROOT={root} PYTHONPATH={project} exec {python} -S -c \
  'import sys; from sim.standins.__main__ import main; sys.exit(main())' sim.standins {command} "$@"
"""


def _write(root: str, rel: str, text: str | bytes, mode: int = 0o644) -> None:
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(text.encode() if isinstance(text, str) else text)
    os.chmod(path, mode)


def install_standin(root: str, command: str) -> None:
    path = COMMAND_PATHS.get(command) or OPTIONAL_COMMAND_PATHS[command]
    _write(root, path.lstrip("/"), WRAPPER.format(
        command=command, root=shlex.quote(os.path.abspath(root)),
        project=shlex.quote(PROJECT_DIR), python=shlex.quote(sys.executable)), 0o755)


def install_standins(root: str) -> None:
    for command in COMMAND_PATHS:
        install_standin(root, command)


def _disk_nodes(root: str, name: str, size: int, labelled_efi: bool) -> None:
    """Whole-disk and slice nodes as illumos names them; p0 is the whole disk, and an
    EFI-labelled disk also has the bare `cXtYdZ` whole-disk ("wd") node."""
    suffixes = [f"s{i}" for i in range(9)] + [f"p{i}" for i in range(5)]
    if labelled_efi:
        suffixes.append("")
    for kind in ("dsk", "rdsk"):
        for suffix in suffixes:
            path = os.path.join(root, "dev", kind, name + suffix)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                if suffix == "p0":
                    f.truncate(min(size, 1 << 20))  # sparse: enough to hold a seed archive


def _removable_links(root: str, name: str) -> None:
    """devfsadm's /dev/removable-media/{dsk,rdsk} links for a drive with removable media."""
    for kind in ("dsk", "rdsk"):
        links = os.path.join(root, "dev", "removable-media", kind)
        os.makedirs(links, exist_ok=True)
        for node in os.listdir(os.path.join(root, "dev", kind)):
            if node.startswith(name) and node[len(name):][:1] in ("s", "p"):
                os.symlink(f"../../{kind}/{node}", os.path.join(links, node))


def storage_state(platform: str, *, sector_size: int | None = None, esp: bool | None = None,
                  image_disk_bytes: int | None = None, disk_bytes: int | None = None,
                  label_disk: str | None = None, expanded: bool = False) -> dict[str, Any]:
    """The "disks", "pools", "datasets" and "swap" keys of a fresh guest of `platform`.

    The root disk carries the EFI label and pool the image builder made on a disk of
    `image_disk_bytes`; the virtual disk is `disk_bytes` (larger: the pool can grow).
    `expanded=True` gives a guest whose label, slice and pool already fill the disk.
    `label_disk` is the name the pool's label records (stale when it differs from the
    root disk's name). Tests pass the result to `Guest.set_state`.
    """
    hw = hardware(platform)
    root_name = hw["root_disk"]
    ss = sector_size or hw["sector_size"]
    with_esp = hw["esp"] if esp is None else esp
    disks: dict[str, dict[str, Any]] = {}
    for i, (name, size) in enumerate(hw["disks"].items()):
        disks[name] = {"size_bytes": size, "sector_size": 512, "label": None,
                       "physpath": f"/devices/pci@0,0/pci1af4,2@{i + 4}/blkdev@0,0"}
    for j, (name, size) in enumerate(hw["cdroms"].items()):
        disks[name] = {"size_bytes": size, "sector_size": 2048, "label": None, "cdrom": True,
                       "physpath": f"/devices/pci@0,0/pci8086,2922@{j + 8}/cdrom@0,0"}
    root = disks[root_name]
    if disk_bytes is not None:
        root["size_bytes"] = disk_bytes
    root["sector_size"] = ss
    built_on = root["size_bytes"] if expanded else (image_disk_bytes or hw["image_disk_bytes"])
    root["label"] = hwmod.efi_label(min(built_on, root["size_bytes"]), ss, with_esp)
    data_slice = "1" if with_esp else "0"
    root["zfs_label"] = {"pool": "rpool", "slice": data_slice}
    minor = "b" if with_esp else "a"
    pool = {"guid": hwmod.POOL_GUID, "vdev_guid": hwmod.VDEV_GUID, "disk": root_name,
            "label_disk": label_disk or hw["rpool_label_disk"], "slice": f"s{data_slice}",
            "size_bytes": hwmod.vdev_asize(hwmod.slice_bytes(root, data_slice)),
            "alloc_bytes": hwmod.POOL_ALLOC_BYTES, "physpath": f"{root['physpath']}:{minor}",
            "refresh_on_status": False, "health": "ONLINE"}
    datasets = {name: {"type": "filesystem"} for name in
                ("rpool", "rpool/ROOT", "rpool/ROOT/omnios", "rpool/export",
                 "rpool/export/home")}
    return {"disks": disks, "pools": {"rpool": pool}, "datasets": datasets, "swap": []}


def initial_state(platform: str) -> dict[str, Any]:
    hw = hardware(platform)
    storage = storage_state(platform)
    return {
        "platform": platform,
        "smbios": hw["smbios"],
        "illumos": dict(hwmod.CURRENT_BUILD),
        "hostname": "unknown",
        "memory_mb": hw["memory_mb"],
        "links": [{"link": link, "mac": mac, "media": "Ethernet", "state": "up",
                   "speed": 1000, "mtu": 1500} for link, mac in hw["links"]],
        "interfaces": ["lo0"],
        "addresses": [
            {"addrobj": "lo0/v4", "type": "static", "state": "ok", "addr": "127.0.0.1/8"},
            {"addrobj": "lo0/v6", "type": "static", "state": "ok", "addr": "::1/128"},
        ],
        "routes": [],
        "dhcp": {"mode": "answer", "delay_s": 0.0, "leases": {}},
        **storage,
        "services": {
            METADATA_FMRI: {"enabled": True, "state": "online", "properties": {}},
            USERSCRIPT_FMRI: {"enabled": False, "state": "disabled", "properties": {}},
            SSH_FMRI: {"enabled": True, "state": "online", "properties": {}},
        },
        "calls": {},
        "faults": {},
    }


def attach_disk(root: str, st: dict[str, Any], spec: str) -> str:
    """Attach a data disk to the guest (`sim create --disk c2t0d0:10G[:KIND]`, tests):
    blank, with a foreign `label`, with a `ufs` file system, or with an exported pool
    (`pool=NAME`). Returns its name."""
    name, size, kind = hwmod.parse_disk_spec(spec)
    if name in st["disks"]:
        raise ValueError(f"disk {name} is already attached")
    disk, exported = hwmod.extra_disk(name, size, kind, len(st["disks"]))
    st["disks"][name] = disk
    if exported is not None:
        st.setdefault("exported_pools", {})[disk["zfs_label"]["pool"]] = exported
    _disk_nodes(root, name, size, bool(disk.get("label")))
    return name


def create(root: str, platform: str, metadata: dict[str, Any] | None = None,
           disks: list[str] | tuple[str, ...] = ()) -> None:
    """Lay out a fresh guest of `platform` in `root` (which must be empty or absent), with
    `disks` (specs as attach_disk() takes them) attached besides the platform's."""
    if os.path.exists(root) and os.listdir(root):
        raise FileExistsError(f"{root} is not empty")
    os.makedirs(root, exist_ok=True)
    for rel, text in etcfiles.FILES.items():
        _write(root, rel, text, etcfiles.MODES.get(rel, 0o644))
    os.symlink("./inet/hosts", os.path.join(root, "etc/hosts"))
    hostkeys.lay_out(root)
    os.makedirs(os.path.join(root, "root"), mode=0o700, exist_ok=True)
    os.makedirs(os.path.join(root, "var/metadata"), exist_ok=True)
    st = initial_state(platform)
    for name, disk in st["disks"].items():
        _disk_nodes(root, name, disk["size_bytes"], bool(disk.get("label")))
        if disk.get("cdrom"):
            _removable_links(root, name)
    for spec in disks:
        attach_disk(root, st, spec)
    install_standins(root)
    smffiles.lay_out(root)
    os.makedirs(os.path.join(root, state.STATE_DIR), exist_ok=True)
    state.save(root, st)
    from sim import platforms

    platforms.lay_out(root, platform, metadata)


def load_metadata(root: str) -> dict[str, Any]:
    try:
        with open(os.path.join(root, METADATA_FILE), encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def save_metadata(root: str, metadata: dict[str, Any]) -> None:
    _write(root, METADATA_FILE, json.dumps(metadata, indent=1, sort_keys=True))
