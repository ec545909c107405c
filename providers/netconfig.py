"""cloud-init's network configuration formats (v1, and v2 as netplan writes it), item by item.

Used by NoCloud (`network-config`) and VMware (`guestinfo.metadata` `network`). The semantics
are cloud-init's own (doc/rtd/reference/network-config-format-v1.rst and -v2.rst): an item
the agent cannot honour (a bridge, a bond mode illumos aggregations lack, a top-level v1
route without a gateway, an interface named only by its Linux name among several) is a
warning naming the field and its value and is skipped; every other item is applied
(providers/items.py). Link-layer items (providers/netlinkcfg.py): `mtu`, the link name (v2
`set-name`, v1 `name` of a physical interface with a MAC), VLANs (v1 `vlan`, v2 `vlans`) and
bonds as illumos link aggregations (v1 `bond`, v2 `bonds`). A v1 `manual` subnet plumbs the
interface without an address, as cloud-init renders it. `network: {config: disabled}` means
what it means to cloud-init: leave the network alone (NETWORK is skipped).

IPv6 netmasks (`ffff:ffff:ffff:ffff::`) and bare prefix numbers are accepted wherever
cloud-init accepts them.

Routes: a route under an interface (v1 subnet `routes`, v2 `routes`) without a gateway
(`via`) is a link route on that interface (`Route.interface`: its MAC, else its name); a
gateway may be IPv6 link-local (`fe80::1`), which the route then reaches through that
interface. A top-level v1 `type: route` without a gateway names no interface and is a
warning. DHCPv6 (v1 `dhcp6`, `ipv6_dhcpv6-stateful`, `ipv6_dhcpv6-stateless`; v2 `dhcp6:
true`) sets `Nic.dhcp6` besides `addrconf`; v1 `ipv6_slaac` is addrconf alone.
"""

from __future__ import annotations

import ipaddress

from fsm.errors import MetadataError
from fsm.record import replace
from providers.items import Items
from providers.items import quoted as shown
from providers.model import Nic, Route, netmask_prefix, normalise_mac
from providers.netlinkcfg import aggr_of, mtu_of, primary_index, vlan_of

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any

SOURCE = "nocloud"
FIELD = "network-config"


class _Ctx:
    """Who to blame: the source name and the field prefix (VMware calls it `network`)."""

    def __init__(self, items: Items, field: str):
        self.items = items
        self.source = items.source
        self.field = field

    def error(self, where: str, problem: str) -> MetadataError:
        return MetadataError(self.source, f"{self.field} {where}".strip(), problem)


def parse_network_config(doc: Any, items: Items | None = None,
                         field: str = FIELD) -> dict[str, Any] | None:
    """nics/routes/resolvers/search_domains (or network_skip) from network-config v1 or v2.

    None when the document as a whole cannot be used (an unknown version, not a mapping):
    the caller then falls back to DHCP on the first link, with the warning recorded.
    """
    items = items if items is not None else Items(SOURCE)
    cx = _Ctx(items, field)
    if isinstance(doc, dict) and isinstance(doc.get("network"), dict):
        doc = doc["network"]
    if isinstance(doc, dict) and doc.get("config") == "disabled":
        return {"nics": (), "network_skip": True}
    with items.guard("the network configuration is ignored; DHCP on the first link"):
        return _parse(doc, cx)
    return None


def _parse(doc: Any, cx: _Ctx) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise cx.error("", "must be a mapping")
    version = doc.get("version")
    warned_before = len(cx.items.warnings)
    out: dict[str, Any] = {"nics": [], "routes": [], "resolvers": [], "search_domains": []}
    if version == 1:
        _v1(_typed(doc.get("config", []), list, "config", cx), out, cx)
    elif version == 2:
        _v2(_typed(doc.get("ethernets", {}), dict, "ethernets", cx), out, cx)
        _v2_virtual(doc, out, cx)
        for other in ("bridges", "wifis", "tunnels", "vrfs", "modems"):
            section = doc.get(other)
            for name in (section if isinstance(section, dict) else [section] if section else []):
                cx.items.skip(f"{cx.field} {other}", name,
                              f"{other} are not supported by this agent")
    else:
        raise cx.error("version", f"must be 1 or 2, not {shown(version)}")
    nics = _one_unnamed_nic(out["nics"], cx)
    if not nics and len(cx.items.warnings) > warned_before:
        raise cx.error("", "no interface in it can be configured")
    first = primary_index(nics)
    nics = [replace(nic, primary=i == first) for i, nic in enumerate(nics)]
    return {"nics": tuple(nics), "routes": tuple(out["routes"]),
            "resolvers": tuple(dict.fromkeys(out["resolvers"])),
            "search_domains": tuple(dict.fromkeys(out["search_domains"]))}


def _one_unnamed_nic(nics: list[Nic], cx: _Ctx) -> list[Nic]:
    """A NIC without a MAC is the first link; only one can be (cloud-init would match
    Linux names such as eth1, which mean nothing on illumos)."""
    if len(nics) < 2:
        return nics
    kept: list[Nic] = []
    any_mac = any(nic.mac is not None for nic in nics)
    unnamed = 0
    for nic in nics:
        if nic.mac is None and nic.vlan is None and nic.aggr is None:
            unnamed += 1
            if unnamed > 1 or any_mac:
                cx.items.skip(f"{cx.field} {nic.name or 'interface'}", nic.name,
                              "no MAC address, only a Linux name: the agent cannot tell "
                              "which link it is (when no interface has a MAC, the first "
                              "one is taken as the first link)")
                continue
        kept.append(nic)
    return kept


def _typed(value: Any, kind: type, where: str, cx: _Ctx) -> Any:
    if not isinstance(value, kind):
        raise cx.error(where, f"must be a {'list' if kind is list else 'mapping'}, "
                              f"not {shown(value)}")
    return value


def _strings(value: Any, where: str, cx: _Ctx) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise cx.error(where, f"must be a string or a list of strings, not {shown(value)}")


def _ip(value: Any, where: str, cx: _Ctx) -> str:
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise cx.error(where, f"{shown(value)} is not an IP address") from None


def _ips(value: Any, where: str, cx: _Ctx) -> list[str]:
    """Each address of a list on its own: a bad one is skipped, the others kept."""
    found = []
    for i, text in enumerate(_strings(value, where, cx)):
        with cx.items.guard():
            found.append(_ip(text, f"{where}[{i}]", cx))
    return found


def _prefix(mask: Any, where: str, text: str, cx: _Ctx) -> int:
    """A prefix length from `24`, `"24"`, `255.255.255.0` or `ffff:ffff:ffff:ffff::`."""
    if isinstance(mask, int) and not isinstance(mask, bool):
        return mask
    value = str(mask).strip().lstrip("/")
    if value.isascii() and value.isdigit():   # not "²", which isdigit() takes
        return int(value)
    if "." in value:
        dotted = netmask_prefix(value)
        if dotted is not None:
            return dotted
    elif ":" in value:
        try:
            bits = int(ipaddress.IPv6Address(value))
        except ValueError:
            bits = -1
        host = ~bits & ((1 << 128) - 1)
        if bits >= 0 and not host & (host + 1):
            return 128 - host.bit_length()
    raise cx.error(where, f"{shown(text)} has no contiguous netmask")


def _cidr(address: Any, where: str, cx: _Ctx, netmask: Any = None, prefix: Any = None) -> str:
    text = str(address).strip()
    if netmask is not None or prefix is not None:
        if "/" in text:
            raise cx.error(where, f"{shown(text)} has both a /prefix and a netmask")
        mask = netmask if netmask is not None else prefix
        text = f"{text}/{_prefix(mask, where, f'{text}/{mask}', cx)}"
    host, slash, suffix = text.partition("/")
    if slash and not (suffix.isascii() and suffix.isdigit()):
        text = f"{host}/{_prefix(suffix, where, text, cx)}"
    if not slash:
        raise cx.error(where, f"{shown(text)} has no prefix length")
    try:
        return str(ipaddress.ip_interface(text))
    except ValueError:
        raise cx.error(where, f"{shown(text)} is not an address with a prefix or valid "
                              f"netmask") from None


def _mac(value: Any, where: str, cx: _Ctx) -> str | None:
    if value is None:
        return None
    try:
        return normalise_mac(str(value))
    except ValueError:
        raise cx.error(where, f"{shown(value)} is not a MAC address") from None


def _route_extras(route: dict[str, Any], where: str, cx: _Ctx, top_level: bool = False) -> None:
    """Route fields illumos has no use for are warnings. Not `on-link` (a gateway no local
    prefix holds gets an interface route on the route's link first, whatever the flag says:
    operations/routes.py) nor `scope: link`/`global` (a route without `via` is a link route)."""
    for key in ("metric", "from", "mtu") + (() if top_level else ("type",)):
        if key in route:   # a v1 `type: route` item's own `type` is no route type
            cx.items.skip(f"{cx.field} {where}.{key}", route[key],
                          "not supported by this agent; the route is added without it")
    if route.get("scope") not in (None, "link", "global"):
        cx.items.skip(f"{cx.field} {where}.scope", route["scope"],
                      "not supported by this agent (link and global are); the route is "
                      "added without it")


DEFAULTS = (None, "default", "0.0.0.0/0", "::/0", "0.0.0.0", "::")


def _route(dest: Any, gateway: Any, where: str, cx: _Ctx, netmask: Any = None,
           interface: str | None = None, gateway_key: str = "gateway") -> Route:
    """A route; one without a gateway is a link route on `interface` (its NIC's MAC or
    name), which a route outside any interface (v1 `type: route`) cannot be."""
    if gateway in (None, ""):
        if interface is None:
            raise cx.error(f"{where}.{gateway_key}", f"route to {shown(dest or 'default')} "
                                                     "has no gateway and names no interface "
                                                     "it is on")
        if dest in DEFAULTS:
            raise cx.error(f"{where}.{gateway_key}", "a default route needs a gateway")
        net = _cidr(dest, f"{where}.destination", cx, netmask=netmask)
        return Route(str(ipaddress.ip_network(net, strict=False)), None, interface)
    via = _ip(gateway, f"{where}.{gateway_key}", cx)
    if dest in DEFAULTS:
        return Route("default", via, interface)
    net = _cidr(dest, f"{where}.destination", cx, netmask=netmask)
    network = ipaddress.ip_network(net, strict=False)
    if network.version != ipaddress.ip_address(via).version:
        raise cx.error(where, f"{shown(str(network))} via {shown(via)} mixes IPv4 and IPv6")
    return Route(str(network), via, interface)


# ---- version 1 --------------------------------------------------------------------------

V1_DHCP4 = ("dhcp", "dhcp4")
V1_ADDRCONF = ("dhcp6", "ipv6_dhcpv6-stateless", "ipv6_dhcpv6-stateful", "ipv6_slaac")
# Subnet types that ask for DHCPv6 (stateful addresses, or stateless: other information).
V1_DHCP6 = ("dhcp6", "ipv6_dhcpv6-stateless", "ipv6_dhcpv6-stateful")
V1_STATIC = ("static", "static6")


def _v1(config: list[Any], out: dict[str, Any], cx: _Ctx) -> None:
    for i, item in enumerate(config):
        where = f"config[{i}]"
        with cx.items.guard():
            _typed(item, dict, where, cx)
            kind = item.get("type")
            if kind == "physical":
                out["nics"].append(_v1_physical(item, where, out, cx))
            elif kind == "nameserver":
                out["resolvers"] += _ips(item.get("address"), f"{where}.address", cx)
                out["search_domains"] += _strings(item.get("search"), f"{where}.search", cx)
            elif kind in ("vlan", "bond"):
                nic = _v1_physical(item, where, out, cx, virtual=True)
                make = vlan_of if kind == "vlan" else aggr_of
                link = make(item, where, cx, v1=True)
                out["nics"].append(replace(nic, **link))
            elif kind == "route":
                out["routes"].append(_route(item.get("destination", item.get("network")),
                                            item.get("gateway"), where, cx, item.get("netmask")))
                _route_extras(item, where, cx, top_level=True)
            else:
                cx.items.skip(f"{cx.field} {where}.type", kind,
                              f"interfaces of this type are not supported by this agent"
                              f"{' (' + shown(item.get('name')) + ')' if item.get('name') else ''}")


# Documented fields the agent does not apply: each present one is a warning naming it.
V1_UNHONOURED = ("accept-ra",)
V2_UNHONOURED = ("wakeonlan", "macaddress", "accept-ra", "routing-policy")


def _unhonoured(obj: dict[str, Any], keys: tuple[str, ...], where: str, cx: _Ctx) -> None:
    for key in keys:
        if key in obj:
            cx.items.skip(f"{cx.field} {where}.{key}", obj[key], "not supported by this agent")


def _v1_physical(item: dict[str, Any], where: str, out: dict[str, Any], cx: _Ctx,
                 virtual: bool = False) -> Nic:
    """A v1 physical interface, or the addresses part of a vlan or bond (`virtual`: its
    link comes from netlinkcfg, and a bond's own `mac_address` is not applied)."""
    if virtual:
        _unhonoured(item, ("mac_address",), where, cx)
        mac = None
    else:
        mac = _mac(item.get("mac_address"), f"{where}.mac_address", cx)
    _unhonoured(item, V1_UNHONOURED, where, cx)
    addresses: list[str] = []
    gateways: list[str] = []
    dhcp4 = addrconf = dhcp6 = False
    on_nic = mac or (str(item["name"]) if item.get("name") else None)
    for j, subnet in enumerate(_typed(item.get("subnets", []), list, f"{where}.subnets", cx)):
        sub = f"{where}.subnets[{j}]"
        with cx.items.guard():
            _typed(subnet, dict, sub, cx)
            kind = subnet.get("type")
            if kind in V1_DHCP4:
                dhcp4 = True
            elif kind in V1_ADDRCONF:
                addrconf = True
                dhcp6 = dhcp6 or kind in V1_DHCP6
            elif kind in V1_STATIC:
                if "address" not in subnet:
                    raise cx.error(f"{sub}.address", "is required for a static subnet")
                addresses.append(_cidr(subnet["address"], f"{sub}.address", cx,
                                       subnet.get("netmask"), subnet.get("prefix")))
                if subnet.get("gateway"):
                    with cx.items.guard():
                        gateways.append(_ip(subnet["gateway"], f"{sub}.gateway", cx))
            elif kind == "manual":
                pass    # cloud-init: the interface is brought up, without an address
            else:
                raise cx.error(f"{sub}.type", f"unknown subnet type {shown(kind)}")
            out["resolvers"] += _ips(subnet.get("dns_nameservers"), f"{sub}.dns_nameservers", cx)
            out["search_domains"] += _strings(subnet.get("dns_search"), f"{sub}.dns_search", cx)
            for k, route in enumerate(_typed(subnet.get("routes", []), list, f"{sub}.routes", cx)):
                with cx.items.guard():
                    _typed(route, dict, f"{sub}.routes[{k}]", cx)
                    out["routes"].append(_route(route.get("network", route.get("destination")),
                                                route.get("gateway"), f"{sub}.routes[{k}]", cx,
                                                route.get("netmask"), interface=on_nic))
                    _route_extras(route, f"{sub}.routes[{k}]", cx)
    name = str(item.get("name")) if item.get("name") else None
    # cloud-init renames a physical interface with a MAC to its `name`.
    return Nic(mac=mac, addresses=tuple(addresses), dhcp4=dhcp4, addrconf=addrconf,
               dhcp6=dhcp6, gateways=tuple(gateways), name=name, mtu=mtu_of(item, where, cx),
               link_name=name if mac is not None else None)


# ---- version 2 --------------------------------------------------------------------------

def _flag(eth: dict[str, Any], key: str, where: str, cx: _Ctx) -> bool:
    value = eth.get(key, False)
    if not isinstance(value, bool):
        cx.items.skip(f"{cx.field} {where}.{key}", value, "must be true or false")
        return False
    return value


def _v2_virtual(doc: dict[str, Any], out: dict[str, Any], cx: _Ctx) -> None:
    """v2 `bonds` (link aggregations) then `vlans` (which may tag a bond): each one's
    addresses, routes and DNS are read as an ethernet's, its link from netlinkcfg."""
    for section, make in (("bonds", aggr_of), ("vlans", vlan_of)):
        for name, conf in _typed(doc.get(section) or {}, dict, section, cx).items():
            where = f"{section}.{name}"
            with cx.items.guard():
                conf = _typed(conf, dict, where, cx)
                link = make(conf, where, cx)
                nic = _v2_ethernet(str(name), {k: v for k, v in conf.items() if k != "match"},
                                   where, out, cx)
                out["nics"].append(replace(nic, **link))


def _v2(ethernets: dict[str, Any], out: dict[str, Any], cx: _Ctx) -> None:
    for name, eth in ethernets.items():
        where = f"ethernets.{name}"
        with cx.items.guard():
            out["nics"].append(_v2_ethernet(str(name), _typed(eth, dict, where, cx), where,
                                            out, cx))


def _v2_ethernet(name: str, eth: dict[str, Any], where: str, out: dict[str, Any],
                 cx: _Ctx) -> Nic:
    match = _typed(eth.get("match", {}), dict, f"{where}.match", cx)
    mac = _mac(match.get("macaddress"), f"{where}.match.macaddress", cx)
    _unhonoured(eth, V2_UNHONOURED, where, cx)
    addresses: list[str] = []
    for i, a in enumerate(_typed(eth.get("addresses", []), list, f"{where}.addresses", cx)):
        with cx.items.guard():
            addresses.append(_cidr(a, f"{where}.addresses[{i}]", cx))
    gateways: list[str] = []
    for key in ("gateway4", "gateway6"):
        if eth.get(key):
            with cx.items.guard():
                gateways.append(_ip(eth[key], f"{where}.{key}", cx))
    for i, route in enumerate(_typed(eth.get("routes", []), list, f"{where}.routes", cx)):
        with cx.items.guard():
            _typed(route, dict, f"{where}.routes[{i}]", cx)
            if route.get("table") is not None:
                raise cx.error(f"{where}.routes[{i}].table", f"policy routing table "
                                                             f"{shown(route['table'])} is not supported")
            parsed = _route(route.get("to"), route.get("via"), f"{where}.routes[{i}]", cx,
                            interface=mac or name, gateway_key="via")
            _route_extras(route, f"{where}.routes[{i}]", cx)
            if parsed.destination == "default" and parsed.gateway:
                gateways.append(parsed.gateway)
            else:
                out["routes"].append(parsed)
    with cx.items.guard():
        nameservers = _typed(eth.get("nameservers", {}), dict, f"{where}.nameservers", cx)
        out["resolvers"] += _ips(nameservers.get("addresses"), f"{where}.nameservers.addresses", cx)
        out["search_domains"] += _strings(nameservers.get("search"),
                                          f"{where}.nameservers.search", cx)
    overrides = _dhcp4_overrides(eth, where, cx)
    for key in ("dhcp6-overrides",):
        if eth.get(key):
            cx.items.skip(f"{cx.field} {where}.{key}", eth[key], "not supported by this agent")
    dhcp6 = _flag(eth, "dhcp6", where, cx)
    set_name = eth.get("set-name")
    if set_name is not None and (not isinstance(set_name, str) or not set_name.strip()):
        cx.items.skip(f"{cx.field} {where}.set-name", set_name, "must be a link name")
        set_name = None
    return Nic(mac=mac, addresses=tuple(addresses), dhcp4=_flag(eth, "dhcp4", where, cx),
               addrconf=dhcp6, dhcp6=dhcp6,
               gateways=tuple(dict.fromkeys(gateways)), name=name, mtu=mtu_of(eth, where, cx),
               link_name=set_name.strip() if set_name else None, **overrides)


def _dhcp4_overrides(eth: dict[str, Any], where: str, cx: _Ctx) -> dict[str, bool]:
    """netplan `dhcp4-overrides`: `use-routes` and `use-dns` are honoured (dhcpagent's
    per-interface PARAM_IGNORE_LIST); any other override is a warning."""
    out: dict[str, bool] = {}
    overrides = eth.get("dhcp4-overrides")
    if overrides is None:
        return out
    if not isinstance(overrides, dict):
        cx.items.skip(f"{cx.field} {where}.dhcp4-overrides", overrides, "must be a mapping")
        return out
    for key, value in overrides.items():
        field = f"{cx.field} {where}.dhcp4-overrides.{key}"
        if key in ("use-routes", "use-dns"):
            if isinstance(value, bool):
                out["dhcp_routes" if key == "use-routes" else "dhcp_dns"] = value
            else:
                cx.items.skip(field, value, "must be true or false")
        else:
            cx.items.skip(field, value, "not supported by this agent (use-routes and "
                                        "use-dns are)")
    return out
