"""Seeds of the illumos-on-illumos hypervisors and Proxmox VE, as they build them.

OmniOS and Tribblix bhyve zones with the zone's `cloud-init` attribute on: SMBIOS type 1
manufacturer/product `OmniOS`/`OmniOS HVM` (`Tribblix`/`Tribblix HVM`), serial
`ds=nocloud;i=<zone uuid>` (or `ds=nocloud-net;s=<URL>;i=<uuid>` when the attribute is a
URL), and an ISO 9660 volume labelled `CIDATA` (mkisofs `-rock -full-iso9660-filenames
-untranslated-filenames`: Rock Ridge names here) on an AHCI CD-ROM, holding meta-data
(instance-id, local-hostname), network-config v2 (match.macaddress, set-name, addresses,
a route to 0.0.0.0/0 via the router, nameservers on the first NIC) and #cloud-config
user-data (hostname, disable_root: false, password + chpasswd expire false + ssh_pwauth,
ssh_authorized_keys, users: [default, root with the keys]). The brand's source
(usr/src/lib/brand/bhyve/zone/ in omniosorg/illumos-omnios) was not in the reference
store: the files follow the issue's description of them field by field.

Proxmox VE (qemu-server PVE/QemuServer/Cloudinit.pm, NoCloud): the cloud-init drive on a
CD-ROM (ide2), meta-data `instance-id: <sha1>`, network-config v1 (physical with
mac_address and static subnets, then a nameserver entry), and user-data with hostname,
manage_etc_hosts, fqdn, `user: <ciuser>`, `password: <crypt hash>`, ssh_authorized_keys,
chpasswd expire False, `users: [default]`, package_upgrade.

Metadata JSON (for `sim create --metadata`): the same keys as the NoCloud emulator
(`meta-data`, `user-data`, `vendor-data`, `network-config`), plus `serial` (the SMBIOS
serial; `{url}` in it is replaced by the seed server's URL) and `served` (true: the files
are served over HTTP for `ds=nocloud-net`, not put on the CD).
"""

from __future__ import annotations

import os
from typing import Any

from providers.iso9660 import iso_image
from sim.emulators.nocloud import seed_files
from sim.hardware import hardware
from sim.httpserve import Answer, Faults, HttpServer, Request

OPERATOR_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAmeFkgadcLsKOqZJk5aqI2qmUsYtEDji4ATBoC9"
                "Gyzk operator@omnios-host")
DEPLOY_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDupwlf23WaiaILkKysovd4TyyDthpgCTjassDiH"
              "WFd4 deploy@pve")
# crypt(3C) hashes of the zone's and the VM's passwords ("zone-secret", "pve-secret").
ZONE_HASH = ("$6$Qz1xYw2vUt3s$tH9kN4qq4iw3vGYJAHplmkU2lYpnC4Pddqb3IO.uWnu4pa5FYoqs8un0y8tdH6Qm"
             "A78b0aQrH3rBPJPYty5jT.")
PVE_HASH = "$5$Xy7pQ2rS$1BMZco.FwxXCNc.YbM/xMmhYZucid5HIj./h60H/L54"


def zone_metadata(platform: str, zonename: str, key: str, password: str | None,
                  address: str, router: str) -> dict[str, Any]:
    hw = hardware(platform)
    uuid = hw["smbios"]["uuid"].lower()
    mac = ":".join(f"{int(p, 16):02x}" for p in hw["links"][0][1].split(":"))
    user_data = f"#cloud-config\nhostname: {zonename}\ndisable_root: false\n"
    if password:
        user_data += f"password: {password}\nchpasswd:\n  expire: false\nssh_pwauth: true\n"
    user_data += (f"ssh_authorized_keys:\n  - {key}\nusers:\n  - default\n  - name: root\n"
                  f"    ssh_authorized_keys:\n      - {key}\n")
    network = (f"version: 2\nethernets:\n  net0:\n    match:\n      macaddress: '{mac}'\n"
               f"    set-name: net0\n    addresses:\n      - {address}\n    routes:\n"
               f"      - to: 0.0.0.0/0\n        via: {router}\n    nameservers:\n"
               f"      addresses:\n        - {router}\n      search:\n        - example.internal\n")
    return {"meta-data": f"instance-id: {uuid}\nlocal-hostname: {zonename}\n",
            "user-data": user_data, "network-config": network,
            "serial": f"ds=nocloud;i={uuid}"}


def cdrom(platform: str) -> str:
    return next(iter(hardware(platform)["cdroms"]))


def lay_out(root: str, metadata: dict[str, Any]) -> None:
    from sim import state

    with state.locked(root) as st:
        platform = st["platform"]
        if metadata.get("serial") and st.get("smbios"):
            st["smbios"]["serial"] = metadata["serial"]
    if metadata.get("served"):
        return
    image = iso_image(metadata.get("label", "CIDATA"), seed_files(metadata))
    insert_cd(root, cdrom(platform), image)


def insert_cd(root: str, drive: str, image: bytes) -> None:
    """The medium in the drive: readable at its whole-disk (p0) and whole-medium (s2)
    nodes, which /dev/removable-media links to."""
    for kind in ("dsk", "rdsk"):
        for suffix in ("p0", "s2"):
            with open(os.path.join(root, "dev", kind, drive + suffix), "wb") as f:
                f.write(image)


class SeedServer:
    """`ds=nocloud-net;s=URL`: the seed files served over HTTP below `/`."""

    def __init__(self, root: str, metadata: dict[str, Any]):
        self.files = seed_files(metadata)
        self.server = HttpServer(self.answer, Faults.from_metadata(metadata, emulator="seed"))
        self.endpoint: dict[str, Any] = {}
        self.where = self.server.url + "/"   # what `sim serve` says: the URL is in SMBIOS
        from sim import state

        with state.locked(root) as st:
            st["smbios"]["serial"] = metadata["serial"].replace("{url}", self.server.url + "/")

    def answer(self, request: Request) -> Answer:
        name = request.path.strip("/")
        if request.method != "GET" or name not in self.files:
            return Answer(404, b"Not Found\n")
        return Answer(200, self.files[name])

    def close(self) -> None:
        self.server.close()


def serve(root: str, metadata: dict[str, Any]) -> SeedServer | None:
    return SeedServer(root, metadata) if metadata.get("served") else None
