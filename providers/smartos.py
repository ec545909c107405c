"""SmartOS / Triton HVM: metadata over the second serial port, parsed into `Metadata`.

Two providers share one fetch. `SmartOSProvider` is chosen when SMBIOS says Joyent
(`SmartDC HVM`), as the original agent decided. `SmartOSProbeProvider` comes after the local
sources and asks the serial port only when SMBIOS is absent or names no platform we know:
an HVM guest on an unfamiliar firmware may still have the service, but a guest with nothing
on its serial port must not wait for it, so the probe is one reset exchange bounded by
`timeouts.probe` (0.25 s by default).

The port is `[smartos] device`. When the settings file names one, that host path is used as
is (how `sim serve` points the agent at its pty); the default `/dev/term/b` is a guest path,
resolved under the root and opened only if it exists.

Parsing is strict about the types of the keys we use and lenient about everything else (a
NIC's `nic_tag`, `vlan_id`... are ignored: Triton tags a NIC's VLAN on the host's VNIC, so
the guest sees untagged frames and must not tag them again); a NIC's `mtu` is its link's
MTU (a malformed one is a warning, the NIC is still configured); a key the host does not have (NOTFOUND)
is simply absent. NICs given as `ips: ["dhcp"]` or `["addrconf"]`, which the original
skipped, become DHCPv4 / IPv6 autoconfiguration. An `sdc:routes` entry with `linklocal:
true` (vmadm's `"nics[N]"` gateway; smartos-live src/vm/lib/metadata/agent.js serves the
NIC's IP as its gateway) is a link route on that NIC. One bad NIC, route or resolver is a
warning and is skipped; the others are applied. The hostname is the customer `hostname` key
where set (as cloud-init reads it), else `sdc:hostname`, `sdc:alias`, `sdc:uuid`. A
`user-script` without `#!` runs with bash, as SmartOS and cloud-init run it.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import time

from fsm.errors import MetadataError, ServiceError
from fsm.settings import SCHEMA
from providers import smbios
from providers.base import Provider
from providers.items import Items
from providers.model import Metadata, Nic, Route, netmask_prefix, normalise_mac
from providers.netlinkcfg import MTU_MAX, MTU_MIN
from providers.smartos_protocol import MetadataClient, TransportError, open_port

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any

    from fsm.steps import Context

log = logging.getLogger(__name__)

SOURCE = "smartos"
DEFAULT_DEVICE = SCHEMA["smartos"]["device"][1]
ATTEMPTS = 3
HOSTNAME_KEYS = ("hostname", "sdc:hostname", "sdc:alias", "sdc:uuid")
DEFAULT_SHELL_LINE = b"#!/bin/bash\n"
KEYS = ("sdc:uuid", "hostname", "sdc:hostname", "sdc:alias", "sdc:nics", "sdc:resolvers", "sdc:routes",
        "sdc:dns_domain", "root_authorized_keys", "user-script",
        "cloud-init:user-data", "cloud-init:vendor-data", "root_pw")

def is_smartos(ctx: Context) -> bool:
    return smbios.platform(ctx.smbios) == "smartos"


def smbios_is_unknown(ctx: Context) -> bool:
    return smbios.platform(ctx.smbios) is None


def serial_device(ctx: Context) -> str | None:
    """Host path of the metadata serial port, or None when the default one is absent."""
    configured = ctx.settings.get("smartos.device")
    if ctx.settings.explicit("smartos.device") or configured != DEFAULT_DEVICE:
        return configured
    host_path = ctx.system.path(configured)
    return host_path if os.path.exists(host_path) else None


class SmartOSProvider(Provider):
    name = SOURCE

    def detect(self, ctx: Context) -> bool:
        return is_smartos(ctx)

    def fetch(self, ctx: Context) -> Metadata:
        return fetch(ctx)


class SmartOSProbeProvider(Provider):
    name = SOURCE

    def detect(self, ctx: Context) -> bool:
        if not smbios_is_unknown(ctx):
            return False
        device = serial_device(ctx)
        if device is None:
            log.info("no SmartOS metadata port (%s absent)", DEFAULT_DEVICE)
            return False
        probe_s = ctx.settings.get("timeouts.probe")
        started = time.monotonic()
        try:
            client = MetadataClient(open_port(device, probe_s), device, probe_s, attempts=1)
            try:
                version = client.reset(timeout_s=probe_s)
            finally:
                client.close()
        except TransportError as e:
            log.info("no SmartOS metadata service on %s: %s", device, e)
            return False
        log.info("SmartOS metadata service answers on %s (%s, %.0f ms)", device, version,
                 (time.monotonic() - started) * 1000)
        return True

    def fetch(self, ctx: Context) -> Metadata:
        return fetch(ctx)


# ---- fetch -----------------------------------------------------------------------------

def fetch(ctx: Context) -> Metadata:
    device = serial_device(ctx)
    if device is None:
        raise ServiceError(f"{SOURCE}: the metadata serial port {DEFAULT_DEVICE} does not "
                           "exist (set [smartos] device in /etc/metadata-agent.toml)")
    timeout_s = ctx.settings.get("timeouts.serial")
    fetch_deadline = time.monotonic() + ctx.settings.get("timeouts.fetch")
    started = time.monotonic()
    values: dict[str, bytes | None] = {}
    try:
        client = MetadataClient(open_port(device, timeout_s), device, timeout_s, ATTEMPTS)
        try:
            for key in KEYS:
                if key == "sdc:alias" and (values.get("sdc:hostname") or values.get("hostname")):
                    continue
                if time.monotonic() > fetch_deadline:
                    raise TransportError(f"{device}: gave up after timeouts.fetch "
                                         f"({ctx.settings.get('timeouts.fetch'):g} s)")
                values[key] = client.get(key)
        finally:
            client.close()
    except TransportError as e:
        raise ServiceError(f"{SOURCE}: metadata service unreachable: {e}") from None
    found = sorted(k for k, v in values.items() if v is not None)
    log.info("%s: read %d of %d keys over %s from %s in %.0f ms (%s)", SOURCE, len(found),
             len(values), client.version, device, (time.monotonic() - started) * 1000,
             ", ".join(found) or "none")
    return parse(values)


# ---- parsing (a pure function of the values, so tests need no port) --------------------

def parse(values: dict[str, bytes | None]) -> Metadata:
    """`Metadata` from raw key values (None = NOTFOUND).

    A JSON key that is not JSON at all (or not a list) is refused; within it, each NIC,
    route and resolver is taken on its own, a bad one being a warning naming the key, its
    index and value, and skipped (providers/items.py).
    """
    # Here, not at the top: the serial probe imports this module on every guest whose
    # SMBIOS names no cloud, and only a SmartOS guest parses cloud-config.
    from providers import cloudconfig

    items = Items(SOURCE)
    provenance = {"instance_id": "sdc:uuid", "nics": "sdc:nics", "routes": "sdc:routes",
                  "resolvers": "sdc:resolvers", "search_domains": "sdc:dns_domain",
                  "ssh_keys": "root_authorized_keys", "user_script": "user-script"}
    uuid = _text(values, "sdc:uuid")
    hostname = None
    # cloud-init's DataSourceSmartOS: the customer `hostname` key first, then sdc:hostname,
    # then (ours, as the original agent) sdc:alias, then the instance uuid.
    for key in HOSTNAME_KEYS:
        hostname = _text(values, key)
        if hostname:
            provenance["hostname"] = key
            break
    config, script, warnings = cloudconfig.from_documents(
        values.get("cloud-init:user-data"), values.get("cloud-init:vendor-data"), SOURCE)
    config = cloudconfig.with_root_password(config, _text(values, "root_pw"))
    user_script = _user_script(values.get("user-script"))
    if user_script is None and script is not None:
        user_script = script
        provenance["user_script"] = "cloud-init:user-data"
    keys_text = _text(values, "root_authorized_keys") or ""
    domains = (_text(values, "sdc:dns_domain") or "").replace(",", " ").split()
    return Metadata(
        source=SOURCE,
        instance_id=uuid or None,
        hostname=hostname or None,
        nics=_each(items, lambda i, obj: _nic(i, obj, items), _json_list(values, "sdc:nics")),
        routes=_each(items, _route, _json_list(values, "sdc:routes")),
        resolvers=_each(items, lambda i, r: _ip("sdc:resolvers", f"[{i}]", r),
                        _json_list(values, "sdc:resolvers")),
        search_domains=tuple(domains),
        ssh_keys=tuple(ln.strip() for ln in keys_text.splitlines()
                       if ln.strip() and not ln.lstrip().startswith("#")),
        user_script=user_script,
        provenance=provenance,
        cloud_config=config,
        warnings=items.tuple() + tuple(warnings),
    )


def _each(items: Items, parse_one: Any, docs: list[Any]) -> tuple[Any, ...]:
    found = []
    for i, doc in enumerate(docs):
        with items.guard():
            found.append(parse_one(i, doc))
    return tuple(found)


def _user_script(script: bytes | None) -> bytes | None:
    """A script without `#!` is run by the default shell, as SmartOS runs user-script
    (mdata-execute runs it from bash, which interprets a file without a magic number) and
    as cloud-init's DataSourceSmartOS.write_boot_content makes it (`#!/bin/bash` added to
    a text file). Binary content is left as it is (USERSCRIPT then refuses it)."""
    if not script:
        return None
    if not script.startswith(b"#!") and b"\0" not in script[:4096]:
        return DEFAULT_SHELL_LINE + script
    return script


def _text(values: dict[str, bytes | None], key: str) -> str | None:
    raw = values.get(key)
    if raw is None:
        return None
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise MetadataError(SOURCE, key, "is not UTF-8 text") from None


def _json_list(values: dict[str, bytes | None], key: str) -> list[Any]:
    text = _text(values, key)
    if not text:
        return []
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise MetadataError(SOURCE, key, f"is not valid JSON: {e}") from None
    except RecursionError:  # the decoder recurses per level: `[[[[...` from a hostile host
        raise MetadataError(SOURCE, key, "is nested too deeply to be metadata") from None
    if not isinstance(doc, list):
        raise MetadataError(SOURCE, key, f"must be a JSON list, not {_kind(doc)}")
    return doc


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


def _field(key: str, where: str, obj: dict[str, Any], name: str, want: type,
           default: Any = None) -> Any:
    value = obj.get(name, default)
    if value is not default and (not isinstance(value, want) or isinstance(value, bool)
                                 and want is not bool):
        raise MetadataError(SOURCE, key, f"{where}.{name} must be {_kind(want())}, "
                                         f"not {_kind(value)}")
    return value


def _ip(key: str, where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise MetadataError(SOURCE, key, f"{where} must be a string, not {_kind(value)}")
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise MetadataError(SOURCE, key, f"{where}: {value!r} is not an IP address") from None


def _nic(index: int, obj: Any, items: Items | None = None) -> Nic:
    key, where = "sdc:nics", f"[{index}]"
    if not isinstance(obj, dict):
        raise MetadataError(SOURCE, key, f"{where} must be an object, not {_kind(obj)}")
    mac = _field(key, where, obj, "mac", str)
    if mac is None:
        raise MetadataError(SOURCE, key, f"{where}.mac is missing")
    try:
        mac = normalise_mac(mac)
    except ValueError:
        raise MetadataError(SOURCE, key, f"{where}.mac {mac!r} is not a MAC address") from None
    ips = _field(key, where, obj, "ips", list)
    if ips is None:  # older hosts give one `ip` (or "dhcp") and a `netmask`
        legacy = _field(key, where, obj, "ip", str)
        ips = [] if legacy is None else [_legacy_cidr(where, legacy, obj)]
    addresses: list[str] = []
    dhcp4 = addrconf = False
    for i, ip in enumerate(ips):
        if not isinstance(ip, str):
            raise MetadataError(SOURCE, key, f"{where}.ips[{i}] must be a string, "
                                             f"not {_kind(ip)}")
        if ip == "dhcp":
            dhcp4 = True
        elif ip == "addrconf":
            addrconf = True
        else:
            addresses.append(_cidr(key, f"{where}.ips[{i}]", ip))
    gateways = _field(key, where, obj, "gateways", list)
    if gateways is None:
        legacy_gw = _field(key, where, obj, "gateway", str)
        gateways = [] if legacy_gw is None else [legacy_gw]
    return Nic(mac=mac, addresses=tuple(addresses), dhcp4=dhcp4, addrconf=addrconf,
               gateways=tuple(_ip(key, f"{where}.gateways[{i}]", g)
                              for i, g in enumerate(gateways)),
               primary=_field(key, where, obj, "primary", bool, False),
               name=_field(key, where, obj, "interface", str), mtu=_mtu(where, obj, items))


def _mtu(where: str, obj: dict[str, Any], items: Items | None) -> int | None:
    """`sdc:nics[].mtu` (a number, as vmadm stores it); anything else is a warning."""
    value = obj.get("mtu")
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and MTU_MIN <= value <= MTU_MAX:
        return value
    if items is not None:
        items.skip(f"sdc:nics{where}.mtu", value, f"must be a number from {MTU_MIN} to "
                                                  f"{MTU_MAX}; the link's MTU is left as is")
    return None


def _cidr(key: str, where: str, text: str) -> str:
    if "/" not in text:
        raise MetadataError(SOURCE, key, f"{where}: {text!r} has no prefix length")
    address, _, suffix = text.strip().partition("/")
    if "." in suffix:
        prefix = netmask_prefix(suffix)
        if prefix is None:
            raise MetadataError(SOURCE, key, f"{where}: {text!r} has no contiguous netmask")
        text = f"{address}/{prefix}"
    try:
        return str(ipaddress.ip_interface(text.strip()))
    except ValueError:
        raise MetadataError(SOURCE, key, f"{where}: {text!r} is not an address/prefix") from None


def _legacy_cidr(where: str, ip: str, obj: dict[str, Any]) -> str:
    if ip in ("dhcp", "addrconf"):
        return ip
    netmask = _field("sdc:nics", where, obj, "netmask", str)
    if netmask is None:
        raise MetadataError(SOURCE, "sdc:nics", f"{where}: ip {ip!r} without netmask or ips")
    prefix = netmask_prefix(netmask)
    if prefix is None:
        raise MetadataError(SOURCE, "sdc:nics", f"{where}.netmask {netmask!r} is not a "
                                                "contiguous netmask")
    return f"{ip}/{prefix}"


def _route(index: int, obj: Any) -> Route:
    key, where = "sdc:routes", f"[{index}]"
    if not isinstance(obj, dict):
        raise MetadataError(SOURCE, key, f"{where} must be an object, not {_kind(obj)}")
    dst = _field(key, where, obj, "dst", str)
    if dst is None:
        raise MetadataError(SOURCE, key, f"{where}.dst is missing")
    linklocal = _field(key, where, obj, "linklocal", bool, False)
    try:
        destination = "default" if dst == "default" else str(
            ipaddress.ip_network(dst.strip(), strict=False))
    except ValueError:
        raise MetadataError(SOURCE, key, f"{where}.dst {dst!r} is not a network") from None
    gateway = obj.get("gateway")
    if gateway is None:
        raise MetadataError(SOURCE, key, f"{where}.gateway is missing")
    address = _ip(key, f"{where}.gateway", gateway)
    if linklocal:
        # vmadm `routes: {DST: "nics[N]"}`: agent.js serves the NIC's own IP as the gateway
        # with linklocal true, meaning DST is directly on that NIC's link.
        if destination == "default":
            raise MetadataError(SOURCE, key, f"{where}: a linklocal default route has no "
                                             "gateway to go through")
        if ipaddress.ip_network(destination).version != ipaddress.ip_address(address).version:
            raise MetadataError(SOURCE, key, f"{where}: {destination} on {address} mixes "
                                             "IPv4 and IPv6")
        return Route(destination=destination, gateway=None, interface=address)
    return Route(destination=destination, gateway=address)
