"""A Proxmox VE VM's NoCloud cloud-init drive (qemu-server Cloudinit.pm), on ide2 as a
CD-ROM: see zoneseed.py for the format."""

from __future__ import annotations

import hashlib
from typing import Any

from sim.emulators.zoneseed import DEPLOY_KEY, PVE_HASH, lay_out
from sim.hardware import hardware

__all__ = ["default_metadata", "lay_out"]


def default_metadata() -> dict[str, Any]:
    mac = ":".join(f"{int(p, 16):02x}" for p in hardware("proxmox")["links"][0][1].split(":"))
    user_data = ("#cloud-config\nhostname: pve-vm\nmanage_etc_hosts: true\n"
                 "fqdn: pve-vm.example.com\nuser: admin\n"
                 f"password: {PVE_HASH}\nssh_authorized_keys:\n  - {DEPLOY_KEY}\n"
                 "chpasswd:\n  expire: False\nusers:\n  - default\npackage_upgrade: true\n")
    network = ("version: 1\nconfig:\n    - type: physical\n      name: eth0\n"
               f"      mac_address: '{mac}'\n      subnets:\n      - type: static\n"
               "        address: '192.168.10.40'\n        netmask: '255.255.255.0'\n"
               "        gateway: '192.168.10.1'\n    - type: nameserver\n      address:\n"
               "      - '192.168.10.1'\n      search:\n      - 'example.com'\n")
    iid = hashlib.sha1((user_data + network).encode()).hexdigest()
    return {"meta-data": f"instance-id: {iid}\n", "user-data": user_data,
            "network-config": network}
