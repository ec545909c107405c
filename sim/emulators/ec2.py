"""Emulator of the Amazon EC2 instance metadata service (IMDS), IMDSv2 by default.

Faithful enough for unmodified clients (tested with the PyPI `ec2-metadata` package):
`PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds` (1..21600) returns a
token; GETs without a valid `X-aws-ec2-metadata-token` get 401 (HttpTokens=required);
`/latest/` and dated versions (`/2021-03-23/`...) serve the same tree; a trailing or doubled
slash names the same path; directories answer with a listing, one entry a line,
subdirectories with a trailing `/`, and `meta-data/public-keys/` as `0=name` lines.

The metadata JSON is flat: each key is a path under the version root and each value its
answer, so `sim create --metadata` can override a single key:

    "meta-data/local-hostname": "web1.example",      a leaf (str or number)
    "meta-data/.../local-ipv4s": ["10.0.1.5", ...],  a list: served one item a line
    "dynamic/instance-identity/document": {...},     a dict: served as JSON
    "meta-data/public-keys": {"name": "ssh-..."},    key name -> OpenSSH key, in index order
    "user-data": "#!/bin/sh ...",                    absent or null: 404, as for no user data
    "meta-data/hostname": null,                      null removes a default key

Besides the faults of sim/httpserve.py, `"_emulator"` takes:
    "imds": "required" (default) | "optional" (v1 GETs allowed too)
          | "v1-only" (the token PUT answers 404, as on services without IMDSv2)
          | "disabled" (every request, the token PUT included, answers 403)
    "token_uses": N     a token is good for N GETs, then 401 (as if it expired)
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Any

from sim.httpserve import RESERVED_KEY, Answer, Faults, HttpServer, Request

MAC = "02:1a:2b:3c:4d:5e"   # sim/hardware.py: ec2 ena0 (2:1a:2b:3c:4d:5e)
TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
MAX_TTL_S = 21600
VERSIONS = ("1.0", "2007-01-19", "2007-03-01", "2008-02-01", "2009-04-04", "2011-01-01",
            "2012-01-12", "2014-02-25", "2016-09-02", "2018-09-24", "2019-10-01",
            "2020-10-27", "2021-01-03", "2021-03-23", "2021-07-15", "2022-09-24", "latest")


def default_metadata() -> dict[str, Any]:
    nic = f"meta-data/network/interfaces/macs/{MAC}/"
    return {
        "meta-data/ami-id": "ami-0f1e2d3c4b5a69788",
        "meta-data/ami-launch-index": "0",
        "meta-data/instance-id": "i-0a1b2c3d4e5f60718",
        "meta-data/instance-type": "t3.micro",
        "meta-data/hostname": "ip-10-0-1-23.ec2.internal",
        "meta-data/local-hostname": "ip-10-0-1-23.ec2.internal",
        "meta-data/local-ipv4": "10.0.1.23",
        "meta-data/mac": MAC,
        "meta-data/placement/availability-zone": "us-east-1a",
        "meta-data/placement/region": "us-east-1",
        "meta-data/public-keys": {
            "admin": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILJBIgr8H8YauqRE0tOBjllu4po5zStRMFHAeUyHpuFO admin@ec2",
            "deploy": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZaGENoc29pzO58XQnoWf8DqqT6npHKEGG1QT/GQi33 deploy@ec2",
        },
        nic + "device-number": "0",
        nic + "interface-id": "eni-0a1b2c3d4e5f60718",
        nic + "local-hostname": "ip-10-0-1-23.ec2.internal",
        nic + "local-ipv4s": ["10.0.1.23"],
        nic + "mac": MAC,
        nic + "subnet-id": "subnet-0a1b2c3d",
        nic + "subnet-ipv4-cidr-block": "10.0.1.0/24",
        nic + "vpc-id": "vpc-0a1b2c3d",
        nic + "vpc-ipv4-cidr-block": "10.0.0.0/16",
        "dynamic/instance-identity/document": {
            "accountId": "123456789012", "architecture": "x86_64",
            "availabilityZone": "us-east-1a", "imageId": "ami-0f1e2d3c4b5a69788",
            "instanceId": "i-0a1b2c3d4e5f60718", "instanceType": "t3.micro",
            "privateIp": "10.0.1.23", "region": "us-east-1", "version": "2017-09-30",
            "pendingTime": "2024-01-01T00:00:00Z", "billingProducts": None,
            "marketplaceProductCodes": None, "kernelId": None, "ramdiskId": None,
        },
        "user-data": "#!/bin/sh\necho 'hello from ec2 user-data'\n",
    }


class _KeyIndex(dict):
    """The `public-keys` directory, listed as `N=name` lines rather than names."""


def build_tree(metadata: dict[str, Any]) -> dict[str, Any]:
    """Flat path keys -> nested dicts (directories) of str leaves."""
    tree: dict[str, Any] = {}
    for key, value in metadata.items():
        if key == RESERVED_KEY or value is None:
            continue
        parts = [p for p in key.split("/") if p]
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"ec2 emulator: {key!r} lies under a leaf")
        name = parts[-1]
        if name == "public-keys" and isinstance(value, dict):
            node[name] = _KeyIndex({str(i): {"openssh-key": str(k), "_name": str(n)}
                                    for i, (n, k) in enumerate(value.items())})
        elif isinstance(value, dict):
            node[name] = json.dumps(value, indent=2)
        elif isinstance(value, list):
            node[name] = "\n".join(str(v) for v in value)
        else:
            node[name] = str(value)
    return tree


def _listing(node: dict[str, Any], version_root: bool) -> str:
    if isinstance(node, _KeyIndex):
        return "\n".join(f"{i}={entry['_name']}" for i, entry in node.items())
    names = []
    for name, child in sorted(node.items()):
        if name.startswith("_"):
            continue
        # The real service lists the version root's entries without a slash.
        names.append(name + "/" if isinstance(child, dict) and not version_root else name)
    return "\n".join(names)


class Ec2Service:
    """The IMDS answering on 127.0.0.1 and on ::1 (the IPv6 endpoint); `.endpoint` is what
    goes into the agent's settings."""

    def __init__(self, metadata: dict[str, Any]):
        options = metadata.get(RESERVED_KEY) or {}
        self.mode = options.get("imds", "required")
        if self.mode not in ("required", "optional", "v1-only", "disabled"):
            raise ValueError(f"ec2 emulator: unknown imds mode {self.mode!r}")
        self.token_uses: int | None = options.get("token_uses")
        self.tree = build_tree(metadata)
        self._tokens: dict[str, list[float]] = {}   # token -> [expiry, GETs left]
        self._lock = threading.Lock()
        self.tokens_issued = 0
        faults = Faults.from_metadata(metadata, frozenset({"imds", "token_uses"}), "ec2 emulator")
        self.server = HttpServer(self.answer, faults)
        # AWS serves IMDS on [fd00:ec2::254] too (Nitro, HttpProtocolIpv6=enabled): here the
        # same service on ::1, the address the guest's `ec2.endpoint_ipv6` names.
        self.server6 = HttpServer(self.answer, faults, host="::1")
        self.endpoint = {"ec2": {"endpoint": self.server.url,
                                 "endpoint_ipv6": self.server6.url}}

    def close(self) -> None:
        self.server.close()
        self.server6.close()

    def answer(self, request: Request) -> Answer:
        if self.mode == "disabled":
            return Answer(403, b"Forbidden\n")
        parts = [p for p in request.path.split("/") if p]
        if parts[:1] == ["latest"] and parts[1:3] == ["api", "token"] and len(parts) == 3:
            return self._token(request)
        if request.method not in ("GET", "HEAD"):
            return Answer(405, b"Method Not Allowed\n")
        refused = self._check_token(request)
        if refused:
            return refused
        if not parts:
            return Answer(200, "\n".join(VERSIONS).encode())
        if parts[0] not in VERSIONS:
            return Answer(404, b"Not Found\n")
        node: Any = self.tree
        for part in parts[1:]:
            if not isinstance(node, dict) or part.startswith("_") or part not in node:
                return Answer(404, b"Not Found\n")
            node = node[part]
        if isinstance(node, dict):
            return Answer(200, _listing(node, version_root=len(parts) == 1).encode())
        return Answer(200, node.encode())

    def _token(self, request: Request) -> Answer:
        if self.mode == "v1-only":
            return Answer(404, b"Not Found\n")
        if request.method != "PUT":
            return Answer(405, b"Method Not Allowed\n")
        ttl = (request.headers.get(TTL_HEADER) or "").strip()
        if not ttl.isdigit() or not 1 <= int(ttl) <= MAX_TTL_S:
            return Answer(400, b"Bad Request\n")
        token = secrets.token_urlsafe(32)
        uses = float(self.token_uses) if self.token_uses is not None else float("inf")
        with self._lock:
            self._tokens[token] = [time.monotonic() + int(ttl), uses]
            self.tokens_issued += 1
        return Answer(200, token.encode(), headers={TTL_HEADER: ttl})

    def _check_token(self, request: Request) -> Answer | None:
        if self.mode == "v1-only":
            return None
        token = request.headers.get(TOKEN_HEADER)
        if token is None:
            return None if self.mode == "optional" else Answer(401, b"Unauthorized\n")
        with self._lock:
            state = self._tokens.get(token)
            if state is None or state[0] < time.monotonic() or state[1] <= 0:
                return Answer(401, b"Unauthorized\n")
            state[1] -= 1
        return None


def serve(root: str, metadata: dict[str, Any]) -> Ec2Service:
    return Ec2Service(metadata)
