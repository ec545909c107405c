"""Emulator of OpenStack Nova's metadata: the `config-2` drive and the metadata service.

The drive is what nova/virt/configdrive.py `ConfigDriveBuilder` makes: the files of every
metadata version in a directory tree, then `genisoimage -o PATH -ldots -allow-lowercase
-allow-multidot -l -publisher "OpenStack Compute VERSION" -quiet -J -r -V config-2 DIR`
(`config_drive_format = iso9660`, the default), or with `vfat` a FAT file system labelled
`config-2` the tree is copied into (here mkfs.vfat, mmd and mcopy, on a 2 MiB image
rather than Nova's 64 MiB). The ISO goes into the guest's CD-ROM drive, the FAT image on
its second disk. The versions are those of Nova's user guide (doc/source/user/metadata.rst,
`curl http://169.254.169.254/openstack`); as in nova/api/metadata/base.py, a version
older than 2015-10-15 (Liberty) has no network_data.json and one older than 2013-10-17
(Havana) no vendor_data.json. The `ec2/` tree Nova also writes is not emulated.

The metadata service (`openstack-http`, or `"drive": false`) serves the same tree over HTTP
on loopback, as Nova's metadata API lays it out: `GET /openstack` lists the versions one a
line, `GET /openstack/VERSION` the files of one, `GET /openstack/VERSION/FILE` a file,
`/openstack/content/NAME` the `content` files; anything else is 404. The faults of
sim/httpserve.py apply (`"_emulator"`).

Metadata (JSON for `sim create --metadata`): `meta_data.json`, `network_data.json`,
`vendor_data.json` (a mapping written as JSON, a string written verbatim, null for no
file), `user_data` (a string; null for none), `content` (name -> text, the files of
`openstack/content/`), `versions` (the version directories, default all and `latest`),
`format` (`iso9660` or `vfat`), `label` (default `config-2`), `drive` (false: no drive,
the service only), `genisoimage` (the argument list before the directory: Proxmox VE's
differs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from typing import Any

from sim.hardware import hardware
from sim.httpserve import Answer, Faults, HttpServer, Request

VERSIONS = ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30",
            "2016-10-06", "2017-02-22", "2018-08-27", "latest")
SINCE = {"network_data.json": "2015-10-15", "vendor_data.json": "2013-10-17"}
DOCUMENTS = ("meta_data.json", "network_data.json", "user_data", "vendor_data.json")
NOVA_GENISOIMAGE = ("-ldots", "-allow-lowercase", "-allow-multidot", "-l", "-publisher",
                    "OpenStack Compute 29.0.1", "-quiet", "-J", "-r", "-V", "config-2")
FAT_KIB = 2048
KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIApAc8MJzm6l5mHo36BeYV34OP4cl1jOG3i66hz6rYnJ "
       "mykey@nova")
# crypt(3C) SHA-512 hash of "nova-secret", for cloud-config `passwd`.
PASSWORD_HASH = ("$6$yTcZkVmRq2$tk5vgzROab07zwg3TMjo2H2xw3/d1JYuBcsNTMwMowLBs0ApLJCJQgrOtz/"
                 "jZsAdL44zfUby5sz1LiI83hNaM/")


def _mac(platform: str) -> str:
    return ":".join(f"{int(p, 16):02x}" for p in hardware(platform)["links"][0][1].split(":"))


def default_metadata(platform: str = "openstack") -> dict[str, Any]:
    """An instance `web-1` as Nova describes one (the user guide's documents' shape): a
    static IPv4 address and default route from network_data.json, a key pair, cloud-config
    user-data with a user, and vendor data in its `cloud-init` member."""
    hw = hardware(platform)
    uuid = hw["smbios"]["uuid"].lower()
    mac = _mac(platform)
    return {
        "meta_data.json": {
            "uuid": uuid, "name": "web-1", "hostname": "web-1.novalocal",
            "availability_zone": "nova", "launch_index": 0,
            "project_id": "f7ac731cc11f40efbc03a9f9e1d1d21f",
            "keys": [{"name": "mykey", "type": "ssh", "data": KEY + "\n"}],
            "public_keys": {"mykey": KEY + "\n"},
            "meta": {"role": "webserver"}, "devices": [],
        },
        "network_data.json": {
            "links": [{"ethernet_mac_address": mac, "id": "tapcd9f6d46-4a", "mtu": 1450,
                       "type": "ovs", "vif_id": "cd9f6d46-4a3a-43ab-a466-994af9db96fc"}],
            "networks": [{"id": "network0", "link": "tapcd9f6d46-4a", "type": "ipv4",
                          "ip_address": "10.0.0.15", "netmask": "255.255.255.0",
                          "network_id": "99e88329-f20d-4741-9593-25bf07847b16",
                          "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0",
                                      "gateway": "10.0.0.1"}]}],
            "services": [{"type": "dns", "address": "10.0.0.2"}],
        },
        "user_data": ("#cloud-config\nusers:\n  - name: deploy\n    shell: /bin/bash\n"
                      f"    passwd: {PASSWORD_HASH}\n    lock_passwd: false\n"
                      f"    ssh_authorized_keys:\n      - {KEY}\n"),
        "vendor_data.json": {"cloud-init": "#cloud-config\ntimezone: Europe/Berlin\n"},
    }


def files_of(metadata: dict[str, Any]) -> dict[str, bytes]:
    """Path below the drive's root -> contents, every version's documents included."""
    files: dict[str, bytes] = {}
    for version in metadata.get("versions") or VERSIONS:
        for name in DOCUMENTS:
            value = metadata.get(name)
            if value is None or (version != "latest" and version < SINCE.get(name, "")):
                continue
            text = value if isinstance(value, str) else json.dumps(value)
            files[f"openstack/{version}/{name}"] = text.encode("utf-8")
    for name, text in (metadata.get("content") or {}).items():
        files[f"openstack/content/{name}"] = text.encode("utf-8")
    return files


def _genisoimage() -> str:
    found = shutil.which("genisoimage")
    if found is None:
        raise RuntimeError("genisoimage is needed to make a config drive: "
                           "apt-get install genisoimage")
    return found


def iso_image(files: dict[str, bytes], options: tuple[str, ...] | list[str]) -> bytes:
    """The ISO genisoimage makes of the tree, with the builder's options."""
    with tempfile.TemporaryDirectory(prefix="sim-config-drive-") as tmp:
        tree = os.path.join(tmp, "tree")
        for name, data in files.items():
            path = os.path.join(tree, *name.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        os.makedirs(tree, exist_ok=True)
        image = os.path.join(tmp, "drive.iso")
        subprocess.run([_genisoimage(), "-o", image, *options, tree], check=True,
                       capture_output=True)
        with open(image, "rb") as f:
            return f.read()


def drive_image(metadata: dict[str, Any]) -> tuple[str, bytes]:
    """(format, image) of the config drive the metadata describes."""
    files = files_of(metadata)
    label = metadata.get("label", "config-2")
    if metadata.get("format", "iso9660") == "vfat":
        from fsm.seed.fatimage import fat_image

        return "vfat", fat_image(label, files, FAT_KIB)
    options = list(metadata.get("genisoimage") or NOVA_GENISOIMAGE)
    if label != "config-2":
        options[options.index("-V") + 1] = label
    return "iso9660", iso_image(files, options)


def lay_out(root: str, metadata: dict[str, Any]) -> None:
    from sim import state
    from sim.emulators.nocloud import attach_volume
    from sim.emulators.zoneseed import insert_cd

    if metadata.get("drive") is False:
        return
    hw = hardware(state.load(root)["platform"])
    kind, image = drive_image(metadata)
    if kind == "vfat":
        attach_volume(root, list(hw["disks"])[1], image)
    else:
        insert_cd(root, next(iter(hw["cdroms"])), image)


class MetadataService:
    """Nova's OpenStack metadata API on loopback; `.endpoint` goes into the settings."""

    def __init__(self, metadata: dict[str, Any]):
        self.files = files_of(metadata)
        self.versions = list(metadata.get("versions") or VERSIONS)
        self.server = HttpServer(self.answer, Faults.from_metadata(
            metadata, emulator="openstack emulator"))
        self.endpoint = {"openstack": {"endpoint": self.server.url}}

    def answer(self, request: Request) -> Answer:
        if request.method not in ("GET", "HEAD"):
            return Answer(405, b"Method Not Allowed\n", headers={"Allow": "GET, HEAD"})
        parts = [p for p in request.path.split("/") if p]
        if parts == ["openstack"]:
            return Answer(200, "\n".join(self.versions).encode())
        if len(parts) == 2 and parts[0] == "openstack" and parts[1] in self.versions:
            prefix = f"openstack/{parts[1]}/"
            names = [n[len(prefix):] for n in self.files if n.startswith(prefix)]
            return Answer(200, "\n".join(names).encode())
        data = self.files.get("/".join(parts))
        if data is None:
            return Answer(404, b"Not Found\n")
        json_file = parts[-1].endswith(".json")
        return Answer(200, data, content_type="application/json" if json_file else "text/plain")

    def close(self) -> None:
        self.server.close()


def serve(root: str, metadata: dict[str, Any]) -> MetadataService | None:
    """The service runs for a guest without a drive (`openstack-http`, `drive: false`)."""
    return MetadataService(metadata) if metadata.get("drive") is False else None
