"""Emulator of an Oxide rack VM's metadata: a FAT `cidata` volume and a /32 DHCP lease.

What the rack gives a guest (propolis and omicron, as the original agent's NoCloud provider
met it, and ILLUMOS-NOTES): SMBIOS `Oxide`/`OxVM` (sim/hardware.py), a NIC whose MAC has the
Oxide OUI a8:40:25, a small FAT volume labelled `cidata` holding `meta-data` as JSON
(`instance-id`, `local-hostname`, `public-keys`) and the user's `user-data` (at most 32 KiB),
and no `network-config`: the guest uses DHCP, whose lease is a /32 whose router is off-link
(oxidecomputer/propolis#531), so dhcpagent installs no default route.

The volume is made by Debian's dosfstools and mtools (`mkfs.vfat -n cidata`, `mcopy`), the
way a host-side tool would, and written raw at offset 0 of the seed disk's whole-disk nodes,
where the fstyp and mount stand-ins read it as illumos pcfs would.

Metadata (JSON for `sim create --metadata`): `meta-data` (a mapping written as JSON, or a
string written verbatim), `user-data` (a string; refused above 32 KiB, as the rack refuses
it), `label` (default `cidata`), `lease` (the DHCP lease of the first link: `address`,
`router`, `dns`, `hostname`, `domain`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from typing import Any

from sim.emulators.nocloud import attach_volume, seed_disk

USER_DATA_CAP = 32 * 1024
VOLUME_KIB = 1024
DEFAULT_KEYS = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHxoBpTPJLsEaynVCc+AyTmbrXmb7fyNPjXA5adH7Kj6 admin@oxide",
)


def default_metadata() -> dict[str, Any]:
    return {
        "meta-data": {"instance-id": "0d5c3f4e-7b1a-4c2d-9e8f-a1b2c3d4e5f6",
                      "local-hostname": "oxide-guest", "public-keys": list(DEFAULT_KEYS)},
        "user-data": "#!/bin/sh\necho 'first boot on an Oxide rack' > /var/tmp/firstboot.txt\n",
        "lease": {"address": "172.30.0.5/32", "router": "172.30.0.1",
                  "dns": ["172.30.0.1"], "hostname": None, "domain": None},
    }


def seed_files(metadata: dict[str, Any]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    meta = metadata.get("meta-data")
    if meta is not None:
        text = meta if isinstance(meta, str) else json.dumps(meta)
        files["meta-data"] = text.encode("utf-8")
    user = metadata.get("user-data")
    if user is not None:
        data = user.encode("utf-8") if isinstance(user, str) else bytes(user)
        if len(data) > USER_DATA_CAP:
            raise ValueError(f"user-data is {len(data)} bytes; an Oxide rack takes at most "
                             f"{USER_DATA_CAP}")
        files["user-data"] = data
    return files


def _tool(name: str) -> str:
    found = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.path.exists(p)), None)
    if found is None:
        raise RuntimeError(f"{name} is needed to make an Oxide guest's FAT volume: "
                           "apt-get install dosfstools mtools")
    return found


def fat_image(label: str, files: dict[str, bytes], size_kib: int = VOLUME_KIB) -> bytes:
    """A FAT volume labelled `label` holding `files`, made by mkfs.vfat and mcopy; a name
    with `/` is put in its directories, made first with mmd (an OpenStack config drive's
    `openstack/latest/meta_data.json`)."""
    with tempfile.TemporaryDirectory(prefix="sim-fat-") as tmp:
        image = os.path.join(tmp, "volume.img")
        subprocess.run([_tool("mkfs.vfat"), "-C", "-n", label, image, str(size_kib)],
                       check=True, capture_output=True)
        env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
        dirs = sorted({"/".join(name.split("/")[:i]) for name in files
                       for i in range(1, name.count("/") + 1)}, key=lambda d: (d.count("/"), d))
        for directory in dirs:
            subprocess.run([_tool("mmd"), "-i", image, "::/" + directory], check=True,
                           capture_output=True, env=env)
        for number, (name, data) in enumerate(files.items()):
            path = os.path.join(tmp, f"file{number}")
            with open(path, "wb") as f:
                f.write(data)
            subprocess.run([_tool("mcopy"), "-i", image, path, "::/" + name], check=True,
                           capture_output=True, env=env)
        with open(image, "rb") as f:
            return f.read()


def lay_out(root: str, metadata: dict[str, Any]) -> None:
    from sim import state

    image = fat_image(metadata.get("label", "cidata"), seed_files(metadata))
    with state.locked(root) as st:
        platform = st["platform"]
        first_link = st["links"][0]["link"]
        if metadata.get("lease"):
            st.setdefault("dhcp", {}).setdefault("leases", {})[first_link] = metadata["lease"]
    attach_volume(root, seed_disk(platform), image)
