"""DigitalOcean: the config drive first, the metadata service as the fallback.

A droplet gets an ISO 9660 config drive holding `digitalocean_meta_data.json`; reading it
needs no network, so it is tried first. Only when no volume holds that file is the HTTP
service asked (`/metadata/v1.json`, bounded retries). Both carry the same document.

Samples in the wild disagree on types (`droplet_id` a number or a string, `public_keys` a
list or `""`, `features` values of any JSON type, `floating_ip` and `reserved_ip` both
seen), so parsing accepts each documented variant; anything else is a warning naming the
field and its value, that field (or that one interface, nameserver or key) is skipped, and
the rest is applied. Only a document that is not a JSON object is refused. `auth_key` and `user_data` are secrets: never logged, whatever happens.
"""

from __future__ import annotations

import ipaddress
import json
import logging

from fsm.errors import MetadataError
from providers import smbios
from providers.base import Provider
from providers.items import Items
from providers.model import Metadata, Nic, normalise_mac
from providers.model import netmask_prefix as dotted_netmask_prefix

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any

    from fsm.steps import Context
    from providers.smbios import SmbiosInfo

log = logging.getLogger(__name__)

SOURCE = "digitalocean"
DRIVE_FILE = "digitalocean_meta_data.json"
DRIVE_FSTYPE = "hsfs"
DOCUMENT_PATH = "/metadata/v1.json"
MAX_DOCUMENT_BYTES = 1 << 20


def is_digitalocean(info: SmbiosInfo | None) -> bool:
    return smbios.platform(info) == "digitalocean"


# ---- reading the document ---------------------------------------------------------------

def read_config_drive(ctx: Context) -> tuple[bytes, str] | None:
    """(document, where) from the first hsfs volume holding the file, or None."""
    from providers import localdisk

    for volume in localdisk.find_volumes(ctx.system):
        if volume.fstype != DRIVE_FSTYPE:
            continue
        found = localdisk.read_files(ctx.system, volume, [DRIVE_FILE], MAX_DOCUMENT_BYTES)
        if DRIVE_FILE in found:
            return found[DRIVE_FILE], f"{volume.device}:{DRIVE_FILE}"
    return None


def read_service(ctx: Context) -> tuple[bytes, str]:
    from fsm.errors import ServiceError
    from providers.http import HttpClient

    url = ctx.settings.get("digitalocean.endpoint").rstrip("/") + DOCUMENT_PATH
    with HttpClient.from_settings(SOURCE, ctx.settings) as client:
        reply = client.request("GET", url)
    if reply.status != 200:
        raise ServiceError(f"{SOURCE}: GET {url}: unexpected HTTP {reply.status}")
    if len(reply.body) > MAX_DOCUMENT_BYTES:  # the same cap as the config drive's
        raise MetadataError(SOURCE, DOCUMENT_PATH, f"larger than {MAX_DOCUMENT_BYTES} bytes")
    return reply.body, url


def decode_document(raw: bytes, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise MetadataError(SOURCE, where, "is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        # The position only: the text may hold auth_key or user_data.
        raise MetadataError(SOURCE, where, f"is not valid JSON (line {e.lineno}, "
                                           f"column {e.colno}: {e.msg})") from None
    except RecursionError:
        raise MetadataError(SOURCE, where, "is nested too deeply to be metadata") from None
    if not isinstance(doc, dict):
        raise MetadataError(SOURCE, where, f"must be a JSON object, not {_kind(doc)}")
    return doc


# ---- parsing ----------------------------------------------------------------------------

def parse(doc: dict[str, Any]) -> Metadata:
    """The v1 metadata document -> the model; lenient about unknown keys. A field of the
    wrong type, or one interface, nameserver or key the agent cannot use, is a warning
    naming it and is skipped; the rest is applied (providers/items.py)."""
    items = Items(SOURCE)
    provenance = {"instance_id": "droplet_id", "hostname": "hostname", "nics": "interfaces",
                  "resolvers": "dns.nameservers", "ssh_keys": "public_keys",
                  "user_script": "user_data"}
    with items.guard():
        _check_features(doc.get("features"))
    for key in ("floating_ip", "reserved_ip"):
        with items.guard():
            _check_reserved_ip(key, doc.get(key))
    found: dict[str, Any] = {}
    for name, parse_one, value in (
            ("instance_id", _droplet_id, doc.get("droplet_id")),
            ("hostname", lambda v: _optional_str({"hostname": v}, "hostname"), doc.get("hostname")),
            ("nics", lambda v: _nics(v, items), doc.get("interfaces")),
            ("resolvers", lambda v: _nameservers(v, items), doc.get("dns")),
            ("ssh_keys", lambda v: _public_keys(v, items), doc.get("public_keys")),
            ("user_script", _user_script, doc.get("user_data"))):
        with items.guard():
            found[name] = parse_one(value)
    return Metadata(source=SOURCE, provenance=provenance, warnings=items.tuple(), **found)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), "?")


def _droplet_id(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if isinstance(value, float) and value.is_integer() and value > 0:
        return str(int(value))
    if isinstance(value, str) and value.strip() and not any(c.isspace() for c in value.strip()):
        return value.strip()
    if value is None:
        raise MetadataError(SOURCE, "droplet_id", "missing")
    raise MetadataError(SOURCE, "droplet_id",
                        f"expected a positive number or a non-empty string, got {_kind(value)}")


def _optional_str(doc: dict[str, Any], key: str) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MetadataError(SOURCE, key, f"expected a string, got {_kind(value)}")
    return value.strip() or None


def _public_keys(value: Any, warnings: Items) -> tuple[str, ...]:
    if value is None:
        return ()
    entries = [value] if isinstance(value, str) else value
    if not isinstance(entries, list):
        raise MetadataError(SOURCE, "public_keys",
                            f"expected a list of strings or a string, got {_kind(value)}")
    keys: list[str] = []
    for i, item in enumerate(entries):
        if not isinstance(item, str):
            warnings.skip(f"public_keys[{i}]", item, f"expected a string, got {_kind(item)}")
            continue
        keys.extend(ln.strip() for ln in item.splitlines() if ln.strip())
    return tuple(keys)


def _user_script(value: Any) -> bytes | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MetadataError(SOURCE, "user_data", f"expected a string, got {_kind(value)}")
    if value.startswith("#!"):
        return value.encode("utf-8")
    log.info("%s: user_data (%d bytes) is not a script (does not start with #!): not run",
             SOURCE, len(value.encode("utf-8")))
    return None


def _check_features(value: Any) -> None:
    # Values are booleans today, but nothing promises it: any JSON type is accepted.
    if value is not None and not isinstance(value, dict):
        raise MetadataError(SOURCE, "features", f"expected an object, got {_kind(value)}")


def _check_reserved_ip(key: str, value: Any) -> None:
    """Both shapes: {"ipv4": {"active": ..., "ip_address": ...}} and {"active": ...} flat.

    Nothing to configure either way (DigitalOcean routes a reserved IP to the anchor
    address), but a malformed one is still reported rather than silently ignored.
    """
    if value is None:
        return
    if not isinstance(value, dict):
        raise MetadataError(SOURCE, key, f"expected an object, got {_kind(value)}")
    inner, field = (value["ipv4"], f"{key}.ipv4") if "ipv4" in value else (value, key)
    if not isinstance(inner, dict):
        raise MetadataError(SOURCE, field, f"expected an object, got {_kind(inner)}")
    active = inner.get("active", False)
    if not isinstance(active, bool):
        raise MetadataError(SOURCE, f"{field}.active", f"expected a boolean, got {_kind(active)}")
    if active:
        address = _ip(inner.get("ip_address"), f"{field}.ip_address", 4)
        log.info("%s: %s %s is active (routed to the anchor address)", SOURCE, key, address)


def _ip(value: Any, field: str, version: int | None = None) -> str:
    if not isinstance(value, str):
        raise MetadataError(SOURCE, field, f"expected an IP address string, got {_kind(value)}")
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        raise MetadataError(SOURCE, field, f"not an IP address: {value!r}") from None
    if version is not None and address.version != version:
        raise MetadataError(SOURCE, field, f"expected an IPv{version} address, got {value!r}")
    return str(address)


def netmask_prefix(mask: Any, field: str) -> int:
    """`255.255.240.0` -> 20; a non-contiguous mask (`255.0.255.0`) is a MetadataError."""
    if not isinstance(mask, str) or mask.strip().count(".") != 3:
        raise MetadataError(SOURCE, field, f"expected a dotted netmask such as 255.255.255.0, "
                                           f"got {mask!r}")
    prefix = dotted_netmask_prefix(mask)
    if prefix is None:
        raise MetadataError(SOURCE, field, f"not a contiguous IPv4 netmask: {mask!r}")
    return prefix


def _ipv6_prefix(cidr: Any, field: str) -> int:
    if isinstance(cidr, str) and cidr.strip().isdigit():
        cidr = int(cidr.strip())
    if not isinstance(cidr, int) or isinstance(cidr, bool) or not 0 <= cidr <= 128:
        raise MetadataError(SOURCE, field, f"expected a prefix length 0..128, got {cidr!r}")
    return cidr


def _section(iface: dict[str, Any], key: str, field: str) -> dict[str, Any] | None:
    value = iface.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MetadataError(SOURCE, f"{field}.{key}", f"expected an object, got {_kind(value)}")
    return value


def _nic(iface: Any, kind: str, index: int, warnings: Items) -> Nic:
    field = f"interfaces.{kind}[{index}]"
    if not isinstance(iface, dict):
        raise MetadataError(SOURCE, field, f"expected an object, got {_kind(iface)}")
    raw_mac = iface.get("mac")
    if not isinstance(raw_mac, str):
        raise MetadataError(SOURCE, f"{field}.mac", f"expected a MAC address string, got {_kind(raw_mac)}")
    try:
        mac = normalise_mac(raw_mac)
    except ValueError:
        raise MetadataError(SOURCE, f"{field}.mac", f"not a MAC address: {raw_mac!r}") from None
    public = kind == "public"
    addresses: list[str] = []
    gateways: list[str] = []
    # Each address family on its own: a bad IPv6 section must not cost the IPv4 address.
    for key in ("ipv4", "anchor_ipv4"):
        with warnings.guard():
            v4 = _section(iface, key, field)
            if v4 is None:
                continue
            address = _ip(v4.get("ip_address"), f"{field}.{key}.ip_address", 4)
            addresses.append(f"{address}/"
                             f"{netmask_prefix(v4.get('netmask'), f'{field}.{key}.netmask')}")
            # The anchor address's gateway only reaches DigitalOcean's internal network.
            if public and key == "ipv4" and v4.get("gateway") not in (None, ""):
                gateways.append(_ip(v4["gateway"], f"{field}.ipv4.gateway", 4))
    with warnings.guard():
        v6 = _section(iface, "ipv6", field)
        if v6 is not None:
            address = _ip(v6.get("ip_address"), f"{field}.ipv6.ip_address", 6)
            prefix = _ipv6_prefix(v6.get("cidr"), f"{field}.ipv6.cidr")
            gateway = None
            if public and v6.get("gateway") not in (None, ""):
                gateway = _ip(v6["gateway"], f"{field}.ipv6.gateway", 6)
            addresses.append(f"{address}/{prefix}")
            gateways += [gateway] if gateway else []
    return Nic(mac=mac, addresses=tuple(addresses), gateways=tuple(gateways),
               name=f"{kind}{index}")


def _nics(value: Any, warnings: Items) -> tuple[Nic, ...]:
    if value is None:
        log.warning("%s: the metadata has no interfaces", SOURCE)
        return ()
    if not isinstance(value, dict):
        raise MetadataError(SOURCE, "interfaces", f"expected an object, got {_kind(value)}")
    nics: list[Nic] = []
    for kind in ("public", "private"):
        items = value.get(kind) or []
        if not isinstance(items, list):
            raise MetadataError(SOURCE, f"interfaces.{kind}", f"expected an array, got {_kind(items)}")
        for i, item in enumerate(items):
            with warnings.guard():
                nics.append(_nic(item, kind, i, warnings))
    if nics and nics[0].name == "public0":
        first = nics[0]
        nics[0] = Nic(mac=first.mac, addresses=first.addresses, gateways=first.gateways,
                      primary=True, name=first.name)
    return tuple(nics)


def _nameservers(dns: Any, warnings: Items) -> tuple[str, ...]:
    if dns is None:
        return ()
    if not isinstance(dns, dict):
        raise MetadataError(SOURCE, "dns", f"expected an object, got {_kind(dns)}")
    servers = dns.get("nameservers") or []
    if not isinstance(servers, list):
        raise MetadataError(SOURCE, "dns.nameservers", f"expected an array, got {_kind(servers)}")
    found = []
    for i, server in enumerate(servers):
        with warnings.guard():
            found.append(_ip(server, f"dns.nameservers[{i}]"))
    return tuple(found)


# ---- the provider -----------------------------------------------------------------------

class DigitalOceanProvider(Provider):
    name = SOURCE
    uses_network = True   # only as the fallback, and only once SMBIOS said DigitalOcean

    def detect(self, ctx: Context) -> bool:
        return is_digitalocean(ctx.smbios)

    def fetch(self, ctx: Context) -> Metadata:
        found = read_config_drive(ctx)
        if found is None:
            log.info("%s: no config drive with %s: asking the metadata service", SOURCE,
                     DRIVE_FILE)
            found = read_service(ctx)
        raw, where = found
        log.info("%s: metadata document from %s (%d bytes)", SOURCE, where, len(raw))
        return parse(decode_document(raw, where))
