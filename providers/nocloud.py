"""NoCloud: a volume labelled `cidata` (hsfs from cloud-localds/genisoimage, or pcfs) holding
`meta-data`, `user-data` and `network-config`, as cloud-init's NoCloud source defines them.

DETECT: SMBIOS in the local group (QEMU, OmniOS, Tribblix, VMware, unknown/absent) or
Oxide, and a `cidata` volume found by fstyp (providers/localdisk.py: disks and CD-ROMs), or
an SMBIOS serial `ds=nocloud[-net];...` (providers/dsserial.py; `s=URL` fetches the files
over HTTP, providers/nocloudnet.py). It is tried after the CPIO seed
disk, but unlike the original agent a QEMU guest with a NoCloud disk uses it.

Parsing is strict about types and lenient about unknown keys. YAML goes through
`yaml.safe_load` only (no object construction) and each file is capped in size before it is
parsed. An empty file is the same as an absent one. `user-data` is a script (`#!`) or
`#cloud-config`, merged over `vendor-data` (providers/cloudconfig.py); other kinds are
skipped with a warning that never quotes them (user-data can hold secrets).
"""

from __future__ import annotations

import ipaddress
import json
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fsm.errors import MetadataError
from providers import cloudconfig, dsserial, localdisk, smbios
from providers.base import Provider
from providers.model import Metadata, Nic, Route, netmask_prefix, normalise_mac

if TYPE_CHECKING:
    from fsm.steps import Context

log = logging.getLogger(__name__)

LABEL = "cidata"
FILES = ("meta-data", "user-data", "vendor-data", "network-config")
FILE_CAP = 1 << 20
TOO_DEEP = "nested too deeply to be metadata"
SOURCE = "nocloud"


class NoCloudProvider(Provider):
    name = SOURCE

    def __init__(self) -> None:
        self.volume: localdisk.Volume | None = None
        self.serial: dsserial.SerialSeed | None = None

    def detect(self, ctx: Context) -> bool:
        if smbios.platform(ctx.smbios) in ("smartos", "digitalocean", "ec2"):
            return False
        self.serial = dsserial.from_smbios(ctx.smbios)
        volumes = localdisk.find_labelled(ctx.system, LABEL)
        if len(volumes) > 1:
            raise MetadataError(self.name, "volume", f"{len(volumes)} volumes are labelled "
                                f"{LABEL!r} ({', '.join(v.device for v in volumes)}); "
                                "attach only one")
        if volumes:
            self.volume = volumes[0]
            log.info("NoCloud volume %r (%s) on %s", volumes[0].label, volumes[0].fstype,
                     volumes[0].device)
        if self.serial is not None:
            log.info("NoCloud seed in the SMBIOS serial (%s)", self.serial.mode)
        return bool(volumes) or self.serial is not None

    def fetch(self, ctx: Context) -> Metadata:
        if self.volume is None and self.serial is None and not self.detect(ctx):
            raise MetadataError(self.name, "volume", f"no volume labelled {LABEL!r}")
        files = {}
        if self.volume is not None:
            files = localdisk.read_files(ctx.system, self.volume, FILES, FILE_CAP)
        if self.serial is not None and self.serial.seedfrom:
            from providers import nocloudnet

            fetched = nocloudnet.fetch_files(ctx, self.serial.seedfrom, FILES, FILE_CAP)
            files = {**fetched, **files}
        md = parse_seed(files)
        return dsserial.apply(md, self.serial) if self.serial is not None else md


def parse_seed(files: dict[str, bytes]) -> Metadata:
    """Metadata from the NoCloud files present (name -> contents); pure."""
    files = {name: data for name, data in files.items() if data.strip()}
    provenance: dict[str, str] = {}
    meta = load_document(files["meta-data"], "meta-data") if "meta-data" in files else {}
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise MetadataError(SOURCE, "meta-data", "must be a mapping")
    instance_id = _optional_str(meta, "instance-id", int)
    hostname_key = "local-hostname" if "local-hostname" in meta else "hostname"
    hostname = _optional_str(meta, hostname_key)
    keys = public_keys(meta.get("public-keys"))
    for model_field, key, present in (("instance_id", "instance-id", instance_id),
                                      ("hostname", hostname_key, hostname),
                                      ("ssh_keys", "public-keys", keys)):
        if present:
            provenance[model_field] = f"meta-data {key}"
    config, script, warnings = cloudconfig.from_documents(
        files.get("user-data"), files.get("vendor-data"), SOURCE)
    if script is not None:
        provenance["user_script"] = "user-data"
    if config is not None and (config.fqdn or config.hostname):
        hostname = config.fqdn or config.hostname
        provenance["hostname"] = f"user-data {'fqdn' if config.fqdn else 'hostname'}"
    network: dict[str, Any] = {"nics": (Nic(mac=None, dhcp4=True, primary=True),)}
    provenance["nics"] = "(no network-config: DHCP on the first link)"
    if "network-config" in files:
        doc = load_document(files["network-config"], "network-config")
        if doc is not None:
            network = parse_network_config(doc)
            provenance["nics"] = "network-config"
    return Metadata(source=SOURCE, instance_id=instance_id, hostname=hostname, ssh_keys=keys,
                    user_script=script, provenance=provenance, cloud_config=config,
                    warnings=tuple(warnings), **network)


def load_document(data: bytes, name: str) -> Any:
    """JSON or YAML (safe_load only) from a capped file; None when it holds nothing."""
    if len(data) > FILE_CAP:
        raise MetadataError(SOURCE, name, f"larger than {FILE_CAP} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MetadataError(SOURCE, name, "is not UTF-8 text") from None
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError as e:
            raise MetadataError(SOURCE, name, f"not valid JSON: {e}") from None
        except RecursionError:
            raise MetadataError(SOURCE, name, TOO_DEEP) from None
    import yaml  # here, not at the top: only NoCloud guests pay for PyYAML

    try:
        return yaml.safe_load(text)
    except RecursionError:
        # Both parsers recurse per level: a hostile `[[[[...` must be our error, not a crash.
        raise MetadataError(SOURCE, name, TOO_DEEP) from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise MetadataError(SOURCE, name, f"not valid YAML{at}: "
                            f"{getattr(e, 'problem', None) or e}") from None


def _optional_str(doc: dict[str, Any], key: str, *also: type) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, *also)):
        raise MetadataError(SOURCE, f"meta-data {key}",
                            f"must be a string, not {type(value).__name__}")
    return str(value).strip() or None


def public_keys(value: Any) -> tuple[str, ...]:
    """`public-keys` as a list of lines, one string (several lines), or a mapping of
    name -> key(s), the three shapes cloud-init accepts."""
    where = "meta-data public-keys"
    if value is None:
        return ()
    if isinstance(value, str):
        items: list[Any] = value.splitlines()
    elif isinstance(value, list):
        items = value
    elif isinstance(value, dict):
        items = []
        for name, keys in value.items():
            items.extend(keys if isinstance(keys, list) else [keys])
            if not all(isinstance(k, str) for k in (keys if isinstance(keys, list) else [keys])):
                raise MetadataError(SOURCE, f"{where}.{name}", "must be a string or a list of strings")
    else:
        raise MetadataError(SOURCE, where, "must be a list, a string or a mapping")
    lines = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise MetadataError(SOURCE, f"{where}[{i}]", f"must be a string, not {type(item).__name__}")
        lines.extend(line.strip() for line in item.splitlines()
                     if line.strip() and not line.lstrip().startswith("#"))
    return tuple(lines)


# ---- network-config ---------------------------------------------------------------------------

def parse_network_config(doc: Any) -> dict[str, Any]:
    """nics/routes/resolvers/search_domains from network-config v1 or v2."""
    if isinstance(doc, dict) and isinstance(doc.get("network"), dict):
        doc = doc["network"]
    if not isinstance(doc, dict):
        raise MetadataError(SOURCE, "network-config", "must be a mapping")
    version = doc.get("version")
    out: dict[str, Any] = {"nics": [], "routes": [], "resolvers": [], "search_domains": []}
    if version == 1:
        _v1(_typed(doc.get("config", []), list, "config"), out)
    elif version == 2:
        _v2(_typed(doc.get("ethernets", {}), dict, "ethernets"), out)
        for other in ("bonds", "bridges", "vlans", "wifis"):
            if doc.get(other):
                log.warning("nocloud: network-config %s are not supported; ignored", other)
    else:
        raise MetadataError(SOURCE, "network-config version", f"must be 1 or 2, not {version!r}")
    if sum(1 for nic in out["nics"] if nic.mac is None) > 1 or (
            len(out["nics"]) > 1 and any(nic.mac is None for nic in out["nics"])):
        raise MetadataError(SOURCE, "network-config", "with more than one interface, each "
                            "needs a MAC address to say which link it is")
    nics = [replace(nic, primary=i == 0) for i, nic in enumerate(out["nics"])]
    return {"nics": tuple(nics), "routes": tuple(out["routes"]),
            "resolvers": tuple(dict.fromkeys(out["resolvers"])),
            "search_domains": tuple(dict.fromkeys(out["search_domains"]))}


def _typed(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind):
        raise MetadataError(SOURCE, f"network-config {where}",
                            f"must be a {'list' if kind is list else 'mapping'}")
    return value


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise MetadataError(SOURCE, f"network-config {where}", "must be a string or a list of strings")


def _ip(value: Any, where: str) -> str:
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise MetadataError(SOURCE, f"network-config {where}",
                            f"{value!r} is not an IP address") from None


def _cidr(address: Any, where: str, netmask: Any = None, prefix: Any = None) -> str:
    text = str(address)
    if netmask is not None or prefix is not None:
        if "/" in text:
            raise MetadataError(SOURCE, f"network-config {where}",
                                "has both a /prefix and a netmask")
        text += f"/{netmask if netmask is not None else prefix}"
    host, _, suffix = text.partition("/")
    if "." in suffix:
        dotted = netmask_prefix(suffix)
        if dotted is None:
            raise MetadataError(SOURCE, f"network-config {where}",
                                f"{text!r} has no contiguous netmask")
        text = f"{host}/{dotted}"
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        raise MetadataError(SOURCE, f"network-config {where}",
                            f"{text!r} is not an address with a prefix or valid netmask") from None
    if "/" not in text:
        raise MetadataError(SOURCE, f"network-config {where}", f"{text!r} has no prefix length")
    return str(iface)


def _mac(value: Any, where: str) -> str | None:
    if value is None:
        return None
    try:
        return normalise_mac(str(value))
    except ValueError:
        raise MetadataError(SOURCE, f"network-config {where}",
                            f"{value!r} is not a MAC address") from None


def _route(dest: Any, gateway: Any, where: str, netmask: Any = None) -> Route:
    via = _ip(gateway, f"{where}.gateway")
    if dest in (None, "default", "0.0.0.0/0", "::/0", "0.0.0.0", "::"):
        return Route("default", via)
    net = _cidr(dest, f"{where}.destination", netmask=netmask)
    return Route(str(ipaddress.ip_network(net, strict=False)), via)


def _v1(config: list[Any], out: dict[str, Any]) -> None:
    for i, item in enumerate(config):
        where = f"config[{i}]"
        _typed(item, dict, where)
        kind = item.get("type")
        if kind == "physical":
            out["nics"].append(_v1_physical(item, where, out))
        elif kind == "nameserver":
            out["resolvers"] += [_ip(a, f"{where}.address") for a in _strings(item.get("address"), f"{where}.address")]
            out["search_domains"] += _strings(item.get("search"), f"{where}.search")
        elif kind == "route":
            out["routes"].append(_route(item.get("destination", item.get("network")),
                                        item.get("gateway"), where, item.get("netmask")))
        else:
            log.warning("nocloud: network-config %s of type %r is not supported; ignored",
                        where, kind)


def _v1_physical(item: dict[str, Any], where: str, out: dict[str, Any]) -> Nic:
    addresses, gateways = [], []
    dhcp4 = addrconf = False
    for j, subnet in enumerate(_typed(item.get("subnets", []), list, f"{where}.subnets")):
        sub = f"{where}.subnets[{j}]"
        _typed(subnet, dict, sub)
        kind = subnet.get("type")
        if kind in ("dhcp", "dhcp4"):
            dhcp4 = True
        elif kind in ("dhcp6", "ipv6_dhcpv6-stateless", "ipv6_dhcpv6-stateful", "ipv6_slaac"):
            addrconf = True
        elif kind in ("static", "static6"):
            if "address" not in subnet:
                raise MetadataError(SOURCE, f"network-config {sub}.address", "is required")
            addresses.append(_cidr(subnet["address"], f"{sub}.address", subnet.get("netmask"),
                                   subnet.get("prefix")))
            if subnet.get("gateway"):
                gateways.append(_ip(subnet["gateway"], f"{sub}.gateway"))
        else:
            raise MetadataError(SOURCE, f"network-config {sub}.type", f"unknown subnet type {kind!r}")
        out["resolvers"] += [_ip(a, f"{sub}.dns_nameservers")
                             for a in _strings(subnet.get("dns_nameservers"), f"{sub}.dns_nameservers")]
        out["search_domains"] += _strings(subnet.get("dns_search"), f"{sub}.dns_search")
        for k, route in enumerate(_typed(subnet.get("routes", []), list, f"{sub}.routes")):
            _typed(route, dict, f"{sub}.routes[{k}]")
            out["routes"].append(_route(route.get("network", route.get("destination")),
                                        route.get("gateway"), f"{sub}.routes[{k}]",
                                        route.get("netmask")))
    return Nic(mac=_mac(item.get("mac_address"), f"{where}.mac_address"),
               addresses=tuple(addresses), dhcp4=dhcp4, addrconf=addrconf,
               gateways=tuple(gateways), name=str(item.get("name")) if item.get("name") else None)


def _v2(ethernets: dict[str, Any], out: dict[str, Any]) -> None:
    for name, eth in ethernets.items():
        where = f"ethernets.{name}"
        _typed(eth, dict, where)
        match = _typed(eth.get("match", {}), dict, f"{where}.match")
        addresses = [_cidr(a, f"{where}.addresses[{i}]")
                     for i, a in enumerate(_typed(eth.get("addresses", []), list, f"{where}.addresses"))]
        gateways = [_ip(eth[key], f"{where}.{key}") for key in ("gateway4", "gateway6") if eth.get(key)]
        for i, route in enumerate(_typed(eth.get("routes", []), list, f"{where}.routes")):
            _typed(route, dict, f"{where}.routes[{i}]")
            parsed = _route(route.get("to"), route.get("via"), f"{where}.routes[{i}]")
            if parsed.destination == "default":
                gateways.append(parsed.gateway)
            else:
                out["routes"].append(parsed)
        nameservers = _typed(eth.get("nameservers", {}), dict, f"{where}.nameservers")
        out["resolvers"] += [_ip(a, f"{where}.nameservers.addresses")
                             for a in _strings(nameservers.get("addresses"), f"{where}.nameservers.addresses")]
        out["search_domains"] += _strings(nameservers.get("search"), f"{where}.nameservers.search")
        for key in ("dhcp4", "dhcp6"):
            if key in eth and not isinstance(eth[key], bool):
                raise MetadataError(SOURCE, f"network-config {where}.{key}", "must be true or false")
        out["nics"].append(Nic(mac=_mac(match.get("macaddress"), f"{where}.match.macaddress"),
                               addresses=tuple(addresses), dhcp4=bool(eth.get("dhcp4")),
                               addrconf=bool(eth.get("dhcp6")),
                               gateways=tuple(dict.fromkeys(gateways)), name=str(name)))
