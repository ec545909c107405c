"""Emulator of VMware guestinfo: the values a .vmx (or govc `vm.change -e`) gives a VM,
read in the guest through open-vm-tools' `vmware-rpctool "info-get guestinfo.KEY"`.

`lay_out` installs the vmware-rpctool stand-in and keeps the guestinfo keys in the sim
state (`state["guestinfo"]`), encoded as the metadata asks, in the form cloud-init's VMware
datasource reads: `guestinfo.metadata` (+ `.encoding`: base64 or gzip+base64) holding
instance-id, local-hostname, public-keys and a netplan-style `network`, and
`guestinfo.userdata` (+ `.encoding`).

Metadata (JSON for `sim create --metadata`):
- `guestinfo`: `metadata` (a mapping, dumped as JSON, or a string used as is), `userdata`
  (string), and `metadata.encoding` / `userdata.encoding` (`base64`, `gzip+base64` or "");
- `open-vm-tools`: false for a guest without the tools (VMware Fusion as the original agent
  knew it), which then needs `cpio`: a CPIO seed (sim/emulators/cpio.py metadata) written to
  the seed disk c1t1d0.

Evidence: the key names, the `.encoding` companions and the encodings (`base64`/`b64`,
`gzip+base64`/`gz+b64`) are those cloud-init's `sources/DataSourceVMware.py` reads
(`guestinfo()`, `guestinfo_get_value()`, `decode()`); tests/test_vmware.py runs that code,
unmodified, through the vmware-rpctool stand-in of a simulated guest.
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

from sim import guest, state
from sim.emulators import cpio

SEED_MAC = "00:0c:29:3e:4f:50"
DEFAULT_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr7WwgAI1R6Mm7fYzKFKRSO1GMd8qwCLyoEyT8u4lqn "
               "admin@vmware")


def default_metadata() -> dict[str, Any]:
    return {
        "open-vm-tools": True,
        "guestinfo": {
            "metadata": {
                "instance-id": "vmware-instance-0001",
                "local-hostname": "vmware-guest",
                "public-keys": [DEFAULT_KEY],
                "network": {"version": 2, "ethernets": {"nic0": {
                    "match": {"macaddress": SEED_MAC},
                    "addresses": ["10.10.0.20/24"],
                    "gateway4": "10.10.0.1",
                    "nameservers": {"addresses": ["10.10.0.1"], "search": ["vm.example"]},
                }}},
            },
            "metadata.encoding": "gzip+base64",
            "userdata": "#!/bin/sh\necho 'first boot on vmware' > /var/tmp/firstboot.txt\n",
            "userdata.encoding": "base64",
        },
    }


def encode(value: str, encoding: str) -> str:
    raw = value.encode("utf-8")
    if encoding in ("base64", "b64"):
        return base64.b64encode(raw).decode()
    if encoding in ("gzip+base64", "gz+b64"):
        return base64.b64encode(gzip.compress(raw, mtime=0)).decode()
    if encoding:
        raise ValueError(f"unknown guestinfo encoding {encoding!r}")
    return value


def guestinfo_keys(metadata: dict[str, Any]) -> dict[str, str]:
    info = metadata.get("guestinfo", {})
    keys = {}
    for name in ("metadata", "userdata", "vendordata"):
        value = info.get(name)
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value, indent=1)
        encoding = info.get(f"{name}.encoding", "")
        keys[f"guestinfo.{name}"] = encode(text, encoding)
        if encoding:
            keys[f"guestinfo.{name}.encoding"] = encoding
    return keys


def lay_out(root: str, metadata: dict[str, Any]) -> None:
    if metadata.get("open-vm-tools", True):
        guest.install_standin(root, "vmware-rpctool")
        with state.locked(root) as st:
            st["guestinfo"] = guestinfo_keys(metadata)
    if metadata.get("cpio") is not None:
        cpio.lay_out(root, metadata["cpio"])
