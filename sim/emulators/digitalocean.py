"""Emulator of DigitalOcean's metadata: the config drive and the HTTP service.

The metadata JSON is the v1 document itself (what `/metadata/v1.json` serves), plus the
reserved `"_emulator"` key. `lay_out` writes it as `digitalocean_meta_data.json` on a real
ISO 9660 config drive (volume id `config-2`) on the droplet's second disk, as DigitalOcean
attaches one; `"_emulator": {"config_drive": false}` leaves the drive out, so the agent has
to fall back to the HTTP service. The fault options of sim/httpserve.py apply to it.

The service follows DigitalOcean's Metadata API reference (docs.digitalocean.com,
reference/api/metadata: "Droplet Properties", "Network Interfaces", "DNS", "Floating IPs",
"Reserved IPs", "Tags", "Features"): `/metadata/v1.json` is the whole document
(`application/json`); the per-key paths answer `text/plain`: an index lists its entries
one a line, nested indexes with a trailing `/` (the top index in the documented order:
id, hostname, user-data, vendor-data, public-keys, region, interfaces/, dns/,
floating_ip/, reserved_ip/, tags/, features/; `auth-key` is served but not listed, as
there); a list of values is one value a line, `tags/` an index of the tag names; the
keys use the service's spellings (`id`, `user-data`, `public-keys`, `address`). An index
asked without its trailing slash is a 301 to it, an unknown path a 404 (`404 page not
found`, the body of the Go server DigitalOcean runs).
"""

from __future__ import annotations

import json
from typing import Any

from sim.httpserve import RESERVED_KEY, Answer, Faults, HttpServer, Request

PUBLIC_MAC = "da:01:02:03:04:05"    # sim/hardware.py: digitalocean vioif0
PRIVATE_MAC = "da:01:02:03:04:06"   # sim/hardware.py: digitalocean vioif1
DRIVE_FILE = "digitalocean_meta_data.json"
DRIVE_LABEL = "config-2"
# Document keys the per-key paths spell differently.
PATH_NAMES = {"droplet_id": "id", "user_data": "user-data", "vendor_data": "vendor-data",
              "public_keys": "public-keys", "auth_key": "auth-key", "ip_address": "address"}
INDEX = ("id", "hostname", "user-data", "vendor-data", "public-keys", "region", "interfaces",
         "dns", "floating_ip", "reserved_ip", "tags", "features")
UNLISTED = frozenset({"auth-key"})
NOT_FOUND = b"404 page not found\n"


def default_metadata() -> dict[str, Any]:
    return {
        "droplet_id": 412345678,
        "hostname": "droplet-sim-01",
        "region": "ams3",
        "auth_key": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "public_keys": [
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID5PsmJg1T8Ua/HbVdurgy8w/wypA71iiWG1qH3Qmm7f admin@do",
        ],
        "interfaces": {
            "public": [{
                "mac": PUBLIC_MAC, "type": "public",
                "ipv4": {"ip_address": "203.0.113.45", "netmask": "255.255.240.0",
                         "gateway": "203.0.112.1"},
                "ipv6": {"ip_address": "2001:db8:100::45", "cidr": 64, "gateway": "2001:db8:100::1"},
                "anchor_ipv4": {"ip_address": "10.19.0.5", "netmask": "255.255.0.0",
                                "gateway": "10.19.0.1"},
            }],
            "private": [{
                "mac": PRIVATE_MAC, "type": "private",
                "ipv4": {"ip_address": "10.110.0.2", "netmask": "255.255.240.0",
                         "gateway": "10.110.0.1"},
            }],
        },
        "floating_ip": {"ipv4": {"active": False}},
        "reserved_ip": {"ipv4": {"active": False}},
        "dns": {"nameservers": ["67.207.67.2", "67.207.67.3", "2001:4860:4860::8888"]},
        "tags": ["web"],
        "features": {"dhcp_enabled": False},
        "vendor_data": "#cloud-config\ndisable_root: false\n",
        "user_data": "#!/bin/sh\necho 'hello from digitalocean user_data'\n",
    }


def document(metadata: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if k != RESERVED_KEY}


def lay_out(root: str, metadata: dict[str, Any]) -> None:
    from sim import state
    from sim.emulators.nocloud import attach_volume, iso_image, seed_disk

    if not (metadata.get(RESERVED_KEY) or {}).get("config_drive", True):
        return
    data = json.dumps(document(metadata), indent=1).encode("utf-8")
    attach_volume(root, seed_disk(state.load(root)["platform"]),
                  iso_image(DRIVE_LABEL, {DRIVE_FILE: data}))


def _leaf(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def path_tree(value: Any) -> Any:
    """The document as the per-key paths see it: dicts and lists of objects are directories."""
    if isinstance(value, dict):
        tree = {PATH_NAMES.get(k, k): path_tree(v) for k, v in value.items()}
        if isinstance(tree.get("tags"), str):     # tags/ is an index of the tag names
            tree["tags"] = {tag: "" for tag in tree["tags"].splitlines()}
        return tree
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return {str(i): path_tree(v) for i, v in enumerate(value)}
    if isinstance(value, list):
        return "\n".join(_leaf(v) for v in value)
    return _leaf(value)


def _index(node: dict[str, Any], top: bool) -> str:
    names = list(node)
    if top:
        names = [n for n in INDEX if n in node] + [n for n in node
                                                  if n not in INDEX and n not in UNLISTED]
    return "\n".join(n + "/" if isinstance(node[n], dict) else n for n in names)


class DigitalOceanService:
    def __init__(self, metadata: dict[str, Any]):
        self.doc = document(metadata)
        self.tree = path_tree(self.doc)
        faults = Faults.from_metadata(metadata, frozenset({"config_drive"}),
                                      "digitalocean emulator")
        self.server = HttpServer(self.answer, faults)
        self.endpoint = {"digitalocean": {"endpoint": self.server.url}}

    def close(self) -> None:
        self.server.close()

    def answer(self, request: Request) -> Answer:
        if request.method not in ("GET", "HEAD"):
            return Answer(405, b"Method Not Allowed\n")
        if request.path == "/metadata/v1.json":
            return Answer(200, json.dumps(self.doc).encode("utf-8"),
                          content_type="application/json")
        parts = [p for p in request.path.split("/") if p]
        if parts[:2] != ["metadata", "v1"]:
            return Answer(404, NOT_FOUND)
        node: Any = self.tree
        for part in parts[2:]:
            if not isinstance(node, dict) or part not in node:
                return Answer(404, NOT_FOUND)
            node = node[part]
        if isinstance(node, dict):
            if not request.trailing_slash:
                return Answer(301, b"", headers={"Location": request.path + "/"})
            return Answer(200, _index(node, top=len(parts) == 2).encode("utf-8"))
        return Answer(200, node.encode("utf-8"))


def serve(root: str, metadata: dict[str, Any]) -> DigitalOceanService:
    return DigitalOceanService(metadata)
