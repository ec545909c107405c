"""Lays out a simulated illumos guest root: /etc files, device nodes, stand-in commands,
and the initial kernel-side state for a platform's virtual hardware."""

from __future__ import annotations

import json
import os
import shlex
import sys
from typing import Any

from sim import etcfiles, state
from sim.commands import COMMAND_PATHS, OPTIONAL_COMMAND_PATHS
from sim.hardware import IMAGE_POOL_BYTES, hardware

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METADATA_FILE = "var/sim/metadata.json"

METADATA_FMRI = "svc:/system/illumos/metadata:default"
USERSCRIPT_FMRI = "svc:/system/illumos/userscript:default"

WRAPPER = """#!/bin/sh
# Stand-in for illumos {command}: see sim/standins/{command}.py
SIM_ROOT={root} PYTHONPATH={project} exec {python} -S -m sim.standins {command} "$@"
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


def _disk_nodes(root: str, name: str, size: int) -> None:
    """Whole-disk and slice nodes as illumos names them; p0 is the whole disk."""
    for kind in ("dsk", "rdsk"):
        for suffix in [f"s{i}" for i in range(9)] + [f"p{i}" for i in range(5)]:
            path = os.path.join(root, "dev", kind, name + suffix)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                if suffix == "p0":
                    f.truncate(min(size, 1 << 20))  # sparse: enough to hold a seed archive


def initial_state(platform: str) -> dict[str, Any]:
    hw = hardware(platform)
    disks = {name: {"size_bytes": size, "sector_size": 512,
                    "physpath": f"/devices/pci@0,0/pci1af4,2@{i + 4}/blkdev@0,0"}
             for i, (name, size) in enumerate(hw["disks"].items())}
    return {
        "platform": platform,
        "smbios": hw["smbios"],
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
        "disks": disks,
        "pools": {"rpool": {"guid": "14823094716624589123", "disk": hw["root_disk"],
                            "label_disk": hw["rpool_label_disk"], "size_bytes": IMAGE_POOL_BYTES,
                            "physpath": disks[hw["root_disk"]]["physpath"]}},
        "datasets": {},
        "swap": [],
        "services": {
            METADATA_FMRI: {"enabled": True, "state": "online", "properties": {}},
            USERSCRIPT_FMRI: {"enabled": False, "state": "disabled", "properties": {}},
        },
        "calls": {},
        "faults": {},
        "userscript_runs": [],
    }


def create(root: str, platform: str, metadata: dict[str, Any] | None = None) -> None:
    """Lay out a fresh guest of `platform` in `root` (which must be empty or absent)."""
    if os.path.exists(root) and os.listdir(root):
        raise FileExistsError(f"{root} is not empty")
    os.makedirs(root, exist_ok=True)
    for rel, text in etcfiles.FILES.items():
        _write(root, rel, text)
    os.symlink("./inet/hosts", os.path.join(root, "etc/hosts"))
    os.makedirs(os.path.join(root, "root"), mode=0o700, exist_ok=True)
    os.makedirs(os.path.join(root, "var/metadata"), exist_ok=True)
    st = initial_state(platform)
    for name, disk in st["disks"].items():
        _disk_nodes(root, name, disk["size_bytes"])
    install_standins(root)
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
