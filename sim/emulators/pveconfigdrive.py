"""A Proxmox VE VM with `citype: configdrive2`: its cloud-init drive in OpenStack's format.

What proxmox/qemu-server src/PVE/QemuServer/Cloudinit.pm `generate_configdrive2` writes for
a non-Windows guest, for a VM with `name: pve-cd2`, `searchdomain: example.com`,
`nameserver: 192.168.20.1`, `ciuser: admin`, `cipassword` (a crypt hash), one `sshkeys`
key, `net0: virtio=BC:24:11:2C:69:EC` and `ipconfig0: ip=192.168.20.40/24,gw=192.168.20.1`:
`openstack/latest/user_data` (`cloudinit_userdata`, the same #cloud-config as its NoCloud
drive), `openstack/content/0000` (`configdrive2_network`: Debian ENI, `eth0` by name only,
DNS as `dns_nameservers`/`dns_search` under `lo`), `openstack/latest/meta_data.json`
(`configdrive2_metadata`: `uuid` the SHA-1 of user-data and network, and
`network_config.content_path` `/content/0000`) and an empty `vendor_data.json`; no
network_data.json. The ISO is `genisoimage -quiet -iso-level 3 -J -R -V config-2` on the
VM's CD-ROM (ide2). SMBIOS is QEMU's (sim/hardware.py), so the agent finds it by label.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sim.emulators.openstack import lay_out
from sim.emulators.zoneseed import PVE_HASH

__all__ = ["default_metadata", "lay_out"]

KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIDeGVnD2mUHl714gSEsd7JhrHOoywC4xc2QunCMhj0u "
       "root@pve-cd2")
PVE_GENISOIMAGE = ("-quiet", "-iso-level", "3", "-J", "-R", "-V", "config-2")


def default_metadata() -> dict[str, Any]:
    user_data = ("#cloud-config\nhostname: pve-cd2\nmanage_etc_hosts: true\n"
                 "fqdn: pve-cd2.example.com\nuser: admin\n"
                 f"password: {PVE_HASH}\nssh_authorized_keys:\n  - {KEY}\n"
                 "chpasswd:\n  expire: False\nusers:\n  - default\npackage_upgrade: true\n")
    network = ("auto lo\niface lo inet loopback\n\n"
               "        dns_nameservers 192.168.20.1\n        dns_search example.com\n"
               "auto eth0\niface eth0 inet static\n        address 192.168.20.40\n"
               "        netmask 255.255.255.0\n        gateway 192.168.20.1\n")
    uuid = hashlib.sha1((user_data + network).encode()).hexdigest()
    meta = ('{\n     "uuid": "' + uuid + '",\n'
            '     "network_config": { "content_path": "/content/0000" }\n}\n')
    return {"meta_data.json": meta, "user_data": user_data, "vendor_data.json": "",
            "content": {"0000": network}, "versions": ["latest"],
            "genisoimage": list(PVE_GENISOIMAGE)}
