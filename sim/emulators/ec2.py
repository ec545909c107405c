"""Emulator of the Amazon EC2 instance metadata service (IMDS), IMDSv2 by default.

Evidence, from the AWS EC2 User Guide (awsdocs/amazon-ec2-user-guide, doc_source/):
- `configuring-instance-metadata-service.md` ("How IMDSv2 works"): `PUT /latest/api/token`
  with `X-aws-ec2-metadata-token-ttl-seconds` (1..21600) returns a token; with HttpTokens
  required, a GET without a valid or with an expired token gets 401; GET and HEAD are the
  methods of metadata requests; a token PUT carrying `X-Forwarded-For` is rejected (403).
- `instancedata-data-retrieval.md`: the token must be asked at `/latest/api/token`: a PUT
  to a version-specific path (`/2021-03-23/api/token`) is 403, and so (our reading of
  "must use") is any other spelling of it (`/latest/api/token/`); 400 for a bad PUT, 403
  when the service is off; everything is `text/plain`; a directory lists one entry a line,
  subdirectories with a trailing `/`; `/` lists the API versions (the doc's list, below);
  `meta-data/` lists what the instance has, `public-keys/` as `0=name` lines.
- `instancedata-data-categories.md`: the categories and the version each appeared in: a
  dated path serves the tree as of that version (`/2009-04-04/meta-data/` has no
  `events/`); `iam/` exists only when a role is attached.
- JSON documents (identity document, credentials) are pretty-printed as the service does:
  two-space indent, `"key" : value`.
- A GET on the token path is 405 with `Allow` (RFC 9110 requires the header; botocore's
  `IMDSFetcher._fetch_metadata_token` and cloud-init treat 403/404/405 on the token PUT as
  "no token API"); a PUT elsewhere is 405 too.
Clients it is tested with: `ec2-metadata` (PyPI), botocore's `IMDSFetcher` /
`InstanceMetadataFetcher`, cloud-init's `sources/helpers/ec2.py` (tests/test_ec2_emulator.py).

The metadata JSON is flat: each key is a path under the version root and each value its
answer, so `sim create --metadata` can override a single key:

    "meta-data/local-hostname": "web1.example",      a leaf (str or number)
    "meta-data/.../local-ipv4s": ["10.0.1.5", ...],  a list: served one item a line
    "dynamic/instance-identity/document": {...},     a dict: served as JSON
    "meta-data/public-keys": {"name": "ssh-..."},    key name -> OpenSSH key, in index order
    "meta-data/iam/security-credentials/ROLE": {...}, a role (absent by default)
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
TOKEN_PATH = "/latest/api/token"
# instancedata-data-retrieval.md, "Get the available versions of the instance metadata".
VERSIONS = ("1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15",
            "2008-02-01", "2008-09-01", "2009-04-04", "2011-01-01", "2011-05-01",
            "2012-01-12", "2014-02-25", "2014-11-05", "2015-10-20", "2016-04-19",
            "2016-06-30", "2016-09-02", "2018-03-28", "2018-08-17", "2018-09-24",
            "2019-10-01", "2020-10-27", "2021-01-03", "2021-03-23", "latest")
# instancedata-data-categories.md, "Version introduced" of each top-level entry (the
# entries it does not date are in every version). Dates compare as strings; "1.0" sorts
# first and "latest" last.
SINCE = {"meta-data/ancestor-ami-ids": "2007-10-10", "meta-data/block-device-mapping": "2007-12-15",
         "meta-data/events": "2018-08-17", "meta-data/iam": "2012-01-12",
         "meta-data/identity-credentials": "2018-05-23", "meta-data/instance-action": "2008-09-01",
         "meta-data/instance-type": "2007-08-29", "meta-data/kernel-id": "2008-02-01",
         "meta-data/local-hostname": "2007-01-19", "meta-data/mac": "2011-01-01",
         "meta-data/metrics": "2011-05-01", "meta-data/network": "2011-01-01",
         "meta-data/placement": "2008-02-01", "meta-data/product-codes": "2007-03-01",
         "meta-data/public-hostname": "2007-01-19", "meta-data/public-ipv4": "2007-01-19",
         "meta-data/ramdisk-id": "2007-10-10", "meta-data/services": "2014-02-25",
         "meta-data/spot": "2014-11-05", "meta-data/tags": "2021-03-23",
         "dynamic": "2009-04-04"}


def default_metadata() -> dict[str, Any]:
    """An on-demand t3.micro with a public address and no IAM role: every top-level entry
    of the documented `meta-data/` listing but `iam/` (present only with a role)."""
    nic = f"meta-data/network/interfaces/macs/{MAC}/"
    return {
        "meta-data/ami-id": "ami-0f1e2d3c4b5a69788",
        "meta-data/ami-launch-index": "0",
        "meta-data/ami-manifest-path": "(unknown)",        # EBS-backed
        "meta-data/block-device-mapping/ami": "/dev/xvda",
        "meta-data/block-device-mapping/root": "/dev/xvda",
        "meta-data/events/maintenance/history": "[]",
        "meta-data/events/maintenance/scheduled": "[]",
        "meta-data/hostname": "ip-10-0-1-23.ec2.internal",
        "meta-data/identity-credentials/ec2/info": {
            "Code": "Success", "LastUpdated": "2024-01-01T00:00:00Z",
            "AccountId": "123456789012"},
        "meta-data/identity-credentials/ec2/security-credentials/ec2-instance": {
            "Code": "Success", "LastUpdated": "2024-01-01T00:00:00Z", "Type": "AWS-HMAC",
            "AccessKeyId": "ASIAEXAMPLENOTAKEY00", "SecretAccessKey": "example-not-a-secret",
            "Token": "example-not-a-token", "Expiration": "2024-01-01T06:00:00Z"},
        "meta-data/instance-action": "none",
        "meta-data/instance-id": "i-0a1b2c3d4e5f60718",
        "meta-data/instance-life-cycle": "on-demand",
        "meta-data/instance-type": "t3.micro",
        "meta-data/local-hostname": "ip-10-0-1-23.ec2.internal",
        "meta-data/local-ipv4": "10.0.1.23",
        "meta-data/mac": MAC,
        "meta-data/metrics/vhostmd": '<?xml version="1.0" encoding="UTF-8"?>',
        "meta-data/placement/availability-zone": "us-east-1a",
        "meta-data/placement/availability-zone-id": "use1-az6",
        "meta-data/placement/region": "us-east-1",
        "meta-data/profile": "default-hvm",
        "meta-data/public-hostname": "ec2-203-0-113-25.compute-1.amazonaws.com",
        "meta-data/public-ipv4": "203.0.113.25",
        "meta-data/public-keys": {
            "admin": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILJBIgr8H8YauqRE0tOBjllu4po5zStRMFHAeUyHpuFO admin@ec2",
            "deploy": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZaGENoc29pzO58XQnoWf8DqqT6npHKEGG1QT/GQi33 deploy@ec2",
        },
        "meta-data/reservation-id": "r-0a1b2c3d4e5f60718",
        "meta-data/security-groups": "default",
        "meta-data/services/domain": "amazonaws.com",
        "meta-data/services/partition": "aws",
        nic + "device-number": "0",
        nic + "interface-id": "eni-0a1b2c3d4e5f60718",
        nic + "ipv4-associations/203.0.113.25": "10.0.1.23",
        nic + "local-hostname": "ip-10-0-1-23.ec2.internal",
        nic + "local-ipv4s": ["10.0.1.23"],
        nic + "mac": MAC,
        nic + "owner-id": "123456789012",
        nic + "public-hostname": "ec2-203-0-113-25.compute-1.amazonaws.com",
        nic + "public-ipv4s": ["203.0.113.25"],
        nic + "security-group-ids": "sg-0a1b2c3d4e5f60718",
        nic + "security-groups": "default",
        nic + "subnet-id": "subnet-0a1b2c3d",
        nic + "subnet-ipv4-cidr-block": "10.0.1.0/24",
        nic + "vpc-id": "vpc-0a1b2c3d",
        nic + "vpc-ipv4-cidr-block": "10.0.0.0/16",
        nic + "vpc-ipv4-cidr-blocks": ["10.0.0.0/16"],
        "dynamic/fws/instance-monitoring": "disabled",
        "dynamic/instance-identity/document": {
            "accountId": "123456789012", "architecture": "x86_64",
            "availabilityZone": "us-east-1a", "billingProducts": None,
            "devpayProductCodes": None, "marketplaceProductCodes": None,
            "imageId": "ami-0f1e2d3c4b5a69788", "instanceId": "i-0a1b2c3d4e5f60718",
            "instanceType": "t3.micro", "kernelId": None,
            "pendingTime": "2024-01-01T00:00:00Z", "privateIp": "10.0.1.23",
            "ramdiskId": None, "region": "us-east-1", "version": "2017-09-30",
        },
        "user-data": "#!/bin/sh\necho 'hello from ec2 user-data'\n",
    }


def aws_json(value: Any, indent: str = "") -> str:
    """JSON as the service prints it: 2-space indent, `"key" : value`, `[ a, b ]`."""
    if isinstance(value, dict):
        if not value:
            return "{ }"
        inner = indent + "  "
        items = ",\n".join(f"{inner}{json.dumps(str(k))} : {aws_json(v, inner)}"
                           for k, v in value.items())
        return "{\n" + items + "\n" + indent + "}"
    if isinstance(value, list):
        return "[ " + ", ".join(aws_json(v, indent) for v in value) + " ]" if value else "[ ]"
    return json.dumps(value)


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
            node[name] = aws_json(value)
        elif isinstance(value, list):
            node[name] = "\n".join(str(v) for v in value)
        else:
            node[name] = str(value)
    return tree


def available(parts: list[str], version: str) -> bool:
    """Whether `parts` (under the version root) existed in API `version` (see SINCE)."""
    return all(SINCE.get("/".join(parts[:depth]), "1.0") <= version for depth in (1, 2))


def _listing(node: dict[str, Any], parts: list[str], version: str) -> str:
    if isinstance(node, _KeyIndex):
        return "\n".join(f"{i}={entry['_name']}" for i, entry in node.items())
    names = []
    for name, child in sorted(node.items()):
        if name.startswith("_") or not available([*parts, name], version):
            continue
        # The real service lists the version root's entries without a slash.
        names.append(name + "/" if isinstance(child, dict) and parts else name)
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
        if len(parts) == 3 and parts[1:] == ["api", "token"] and parts[0] in VERSIONS:
            return self._token(request, parts[0])
        if request.method not in ("GET", "HEAD"):
            return Answer(405, b"Method Not Allowed\n", headers={"Allow": "GET, HEAD"})
        refused = self._check_token(request)
        if refused:
            return refused
        if not parts:
            return Answer(200, "\n".join(VERSIONS).encode())
        version, path = parts[0], parts[1:]
        if version not in VERSIONS:
            return Answer(404, b"Not Found\n")
        node: Any = self.tree
        for depth, part in enumerate(path, 1):
            if (not isinstance(node, dict) or part.startswith("_") or part not in node
                    or not available(path[:depth], version)):
                return Answer(404, b"Not Found\n")
            node = node[part]
        if isinstance(node, dict):
            return Answer(200, _listing(node, path, version).encode())
        return Answer(200, node.encode())

    def _token(self, request: Request, version: str) -> Answer:
        if self.mode == "v1-only":
            return Answer(404, b"Not Found\n")
        if request.method != "PUT":
            return Answer(405, b"Method Not Allowed\n", headers={"Allow": "PUT"})
        if version != "latest" or request.trailing_slash:
            return Answer(403, b"Forbidden\n")     # only /latest/api/token gives tokens
        if request.headers.get("X-Forwarded-For") is not None:
            return Answer(403, b"Forbidden\n")     # a proxied request: not from the guest
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
