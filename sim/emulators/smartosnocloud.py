"""Emulator of a SmartOS 20260306 bhyve VM given NoCloud: a FAT16 `CIDATA` virtio disk beside
the root disk, and the metadata service on the second serial port as on every SmartOS VM.

What vmadm does (smartos-live src/vm/node_modules/cloudinit/nocloud.js and lofs-fat16.js,
2026): for a bhyve VM whose image asks for the NoCloud datasource, `updatePayloadDisks()`
adds a 16 MiB disk (model virtio, media disk, block_size 512, boot false,
`cloudinit_datasource: nocloud`), and `createPCFS()` formats it with `mkfs -F pcfs -o
b=CIDATA,nofdisk,fat=16,size=32768` (FAT16, no partition table, label CIDATA) and writes,
through a lofi mount, the files of the VM's current record (rebuilt at every boot, so a
changed NIC or hostname reaches the disk):

- `meta-data`: `# cloud-init meta-data`, `instance-id: <vm uuid>`, `local-hostname:
  <hostname, else alias, else uuid>`;
- `network-config`: customer metadata `cloud-init:network-config` verbatim when set, else
  version 2 built from the NICs: `ethernets.<interface>` with `match.macaddress` (quoted,
  lower case) and `set-name`, `dhcp4: true` for an `ips` entry `dhcp`, `dhcp6: true` for
  `addrconf`, the other `ips` (or legacy `ip`/`netmask`) as `addresses`, `gateway4` /
  `gateway6` and `nameservers.addresses` (the resolvers) on the primary NIC only; routes and
  the DNS domain are not carried; no NICs: no file;
- `user-data`: customer metadata `cloud-init:user-data`, else `#cloud-config\\n{}\\n`;
- `vendor-data`: internal metadata `cloud-init:vendor-data`, when set.

The SMBIOS is the bhyve brand's (`Joyent` / `SmartDC HVM`, uuid = the VM's), so the guest
also sees the SmartOS metadata service, which keeps serving the same record. The volume is
made here by Debian's mkfs.fat (`-F 16`, 16 MiB, 512-byte sectors) and mcopy
(fsm/seed/fatimage.py), the image written raw at offset 0 of the second disk's whole-disk
nodes.

Metadata (JSON for `sim create --metadata`): the SmartOS VM record as the smartos emulator
takes it (`sdc:*` keys, customer metadata; served over the pty as there), where
`cloud-init:user-data` and `cloud-init:network-config` also feed the disk; `_internal` (not
served): internal metadata, `cloud-init:vendor-data` among it.
"""

from __future__ import annotations

import json
from typing import Any

from fsm.seed import fatimage
from sim.emulators import smartos
from sim.emulators.nocloud import attach_volume
from sim.hardware import hardware

PLATFORM = "smartos-nocloud"
DISK = "c2t0d0"
DISK_SIZE_MIB = 16
LABEL = "CIDATA"
INTERNAL_KEY = "_internal"
ADMIN_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGYo7iC1u51zFMleQJzU3WWXuJRu910+gG21Ohm5"
             "5JV+ admin@smartos-nocloud")
DEPLOY_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0oSpdeDDdoKy/+/GFBq9mbr3p5E5HJQC5ngcZB"
              "OhLS deploy@smartos-nocloud")
# crypt(3C) SHA-512 hash of "smartos-nocloud" (root's and the named user's password).
PASSWORD_HASH = ("$6$Jn2kLq8xV4pZ$u1Eh0N9q9QdvROG6rA6Iee/Aa1wmYckid5qzw/BmoEO4z9UO35o2XJoDYWF"
                 "d1Af3bi/X61Hj2iiTNlUbL1Ell1")


def default_metadata() -> dict[str, Any]:
    """A Triton VM record whose image takes NoCloud, with cloud-config user-data."""
    md = smartos.default_metadata()
    md["sdc:uuid"] = hardware(PLATFORM)["smbios"]["uuid"].lower()
    md["sdc:hostname"] = "nc-web01"
    md["sdc:alias"] = "nc-web01-production"
    md["cloud-init:user-data"] = (
        "#cloud-config\n"
        "disable_root: false\n"
        f"password: {PASSWORD_HASH}\n"
        "chpasswd:\n  expire: false\n"
        f"ssh_authorized_keys:\n  - {ADMIN_KEY}\n"
        "users:\n"
        "  - name: deploy\n"
        "    gecos: Deploy user\n"
        "    shell: /bin/bash\n"
        "    lock_passwd: false\n"
        f"    passwd: {PASSWORD_HASH}\n"
        f"    ssh_authorized_keys:\n      - {DEPLOY_KEY}\n"
        "write_files:\n"
        "  - path: /etc/motd\n"
        "    content: |\n      Provisioned from the SmartOS CIDATA disk.\n"
        "    permissions: '0644'\n"
        "runcmd:\n"
        "  - echo runcmd >> /var/tmp/runcmd.log\n")
    md[INTERNAL_KEY] = {"cloud-init:vendor-data": "#cloud-config\ntimezone: Europe/Berlin\n"}
    return md


# ---- what vmadm writes on the disk (nocloud.js) ----------------------------------------

def _json_list(md: dict[str, Any], key: str) -> list[Any]:
    value = md.get(key)
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, list) else []


def _prefix(netmask: str) -> int:
    return sum(bin(int(octet)).count("1") for octet in netmask.split("."))


def network_config(md: dict[str, Any]) -> str | None:
    """nocloud.js `networkConfig()`: the customer's file verbatim, else v2 from the NICs."""
    if md.get("cloud-init:network-config") is not None:
        return md["cloud-init:network-config"]
    nics = _json_list(md, "sdc:nics")
    if not nics:
        return None
    resolvers = _json_list(md, "sdc:resolvers")
    lines = ["version: 2", "ethernets:"]
    for nic in nics:
        lines.append(f"  {nic.get('interface') or 'eth0'}:")
        if nic.get("mac"):
            lines += ["    match:", f'      macaddress: "{nic["mac"].lower()}"',
                      f"    set-name: {nic.get('interface') or 'eth0'}"]
        ips = nic.get("ips") or []
        addresses = [ip for ip in ips if ip not in ("dhcp", "addrconf")]
        if "dhcp" in ips:
            lines.append("    dhcp4: true")
        if "addrconf" in ips:
            lines.append("    dhcp6: true")
        if not ips and nic.get("ip") and nic.get("netmask"):
            addresses = [f"{nic['ip']}/{_prefix(nic['netmask'])}"]
        if addresses:
            lines += ["    addresses:"] + [f"      - {a}" for a in addresses]
        if nic.get("primary"):
            gateways = nic.get("gateways") or ([nic["gateway"]] if nic.get("gateway") else [])
            for gw in gateways:
                lines.append(f"    gateway{6 if ':' in gw else 4}: {gw}")
            if resolvers:
                lines += ["    nameservers:", "      addresses:"]
                lines += [f"        - {r}" for r in resolvers]
    return "\n".join(lines) + "\n"


def cidata_files(md: dict[str, Any]) -> dict[str, bytes]:
    """The files `createPCFS()` writes for this VM record."""
    hostname = md.get("sdc:hostname") or md.get("sdc:alias") or md.get("sdc:uuid")
    files = {"meta-data": (f"# cloud-init meta-data\ninstance-id: {md.get('sdc:uuid')}\n"
                           f"local-hostname: {hostname}\n")}
    network = network_config(md)
    if network is not None:
        files["network-config"] = network
    files["user-data"] = md.get("cloud-init:user-data") or "#cloud-config\n{}\n"
    vendor = (md.get(INTERNAL_KEY) or {}).get("cloud-init:vendor-data")
    if vendor is not None:
        files["vendor-data"] = vendor
    return {name: text.encode("utf-8") for name, text in files.items()}


def lay_out(root: str, metadata: dict[str, Any]) -> None:
    image = fatimage.fat_image(LABEL, cidata_files(metadata), DISK_SIZE_MIB * 1024, fat_bits=16)
    attach_volume(root, DISK, image)


def serve(root: str, metadata: dict[str, Any]) -> smartos.SmartOSServer:
    """The metadata service on the second serial port, serving the same record."""
    return smartos.serve(root, {k: v for k, v in metadata.items() if k != INTERNAL_KEY})
