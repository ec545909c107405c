"""OpenStack `network_data.json` (Nova, from Liberty on), item by item, into the model.

The document has three lists (Nova's network_data.json schema): `links` (L2: a physical
link `{id, type, ethernet_mac_address, mtu}`, a `bond`, a `vlan`), `networks` (L3 on a
link named by its `link` id: `ipv4`/`ipv6` static with `ip_address`, `netmask` and
`routes` of `{network, netmask, gateway}`; `ipv4_dhcp`, `ipv6_dhcp`, `ipv6_slaac`,
`ipv6_dhcpv6-stateless`, `ipv6_dhcpv6-stateful`; optionally their own `services` and
`dns_nameservers`) and `services` (`{type: dns, address}`). The semantics are those of
cloud-init's `convert_net_json`: a link of an unknown type is a physical link; a network's
route to `0.0.0.0`/`::` is its default route.

Each link, network, route and service is its own item: one the agent cannot honour (a
bond or VLAN link and the networks on it, an address that is not one, a network on a link
the document does not list) is a warning naming it, and the rest is applied. The first
physical link listed is the primary NIC; a link no network uses is plumbed without an
address, as cloud-init brings it up.
"""

from __future__ import annotations

from fsm.record import replace
from providers import netconfig
from providers.items import Items
from providers.items import quoted as shown
from providers.model import Nic, Route
from providers.netlinkcfg import mtu_of

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any

FIELD = "network_data.json"
UNSUPPORTED_LINKS = ("bond", "vlan")
STATIC = ("ipv4", "ipv6", "static", "static6")
DHCP4 = ("ipv4_dhcp",)
ADDRCONF = ("ipv6_dhcp", "ipv6_slaac", "ipv6_dhcpv6-stateless", "ipv6_dhcpv6-stateful")


def parse_network_data(doc: Any, items: Items) -> dict[str, Any] | None:
    """nics/routes/resolvers from the document; None when nothing in it can be used (the
    caller then uses DHCP on the first link, with the warnings recorded)."""
    cx = netconfig._Ctx(items, FIELD)
    if not isinstance(doc, dict):
        items.skip(FIELD, doc, "must be a JSON object; DHCP on the first link instead")
        return None
    links: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for i, link in enumerate(_list(doc, "links", cx)):
        with items.guard():
            link_id = _link(link, f"links[{i}]", cx)
            links[link_id] = {"nic": _physical(link, f"links[{i}]", cx), "addresses": [],
                              "dhcp4": False, "addrconf": False}
            order.append(link_id)
    routes: list[Route] = []
    resolvers: list[str] = []
    for i, network in enumerate(_list(doc, "networks", cx)):
        with items.guard():
            _network(network, f"networks[{i}]", links, routes, resolvers, cx)
    for i, service in enumerate(_list(doc, "services", cx)):
        with items.guard():
            resolvers += _service(service, f"services[{i}]", cx)
    nics = [replace(links[link_id]["nic"], addresses=tuple(links[link_id]["addresses"]),
                    dhcp4=links[link_id]["dhcp4"], addrconf=links[link_id]["addrconf"])
            for link_id in order]
    if not nics:
        items.note(FIELD, "no link the agent can configure; DHCP on the first link instead")
        return None
    return {"nics": tuple(replace(nic, primary=i == 0) for i, nic in enumerate(nics)),
            "routes": tuple(dict.fromkeys(routes)),
            "resolvers": tuple(dict.fromkeys(resolvers))}


def _list(doc: dict[str, Any], key: str, cx: netconfig._Ctx) -> list[Any]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        cx.items.skip(f"{FIELD} {key}", value, "must be a list")
        return []
    return value


def _link(link: Any, where: str, cx: netconfig._Ctx) -> str:
    if not isinstance(link, dict):
        raise cx.error(where, f"must be an object, not {shown(link)}")
    link_id = link.get("id")
    if not isinstance(link_id, str) or not link_id:
        raise cx.error(f"{where}.id", f"must be a non-empty string, not {shown(link_id)}")
    kind = link.get("type")
    if kind in UNSUPPORTED_LINKS:
        raise cx.error(f"{where}.type", f"{shown(kind)} links ({shown(link_id)}) are not "
                                        "supported by this agent yet; the networks on it "
                                        "are skipped too")
    return link_id


def _physical(link: dict[str, Any], where: str, cx: netconfig._Ctx) -> Nic:
    mac = netconfig._mac(link.get("ethernet_mac_address"), f"{where}.ethernet_mac_address", cx)
    return Nic(mac=mac, name=link["id"], mtu=mtu_of(link, where, cx))


def _network(network: Any, where: str, links: dict[str, dict[str, Any]],
             routes: list[Route], resolvers: list[str], cx: netconfig._Ctx) -> None:
    if not isinstance(network, dict):
        raise cx.error(where, f"must be an object, not {shown(network)}")
    link = links.get(network.get("link"))  # type: ignore[arg-type]
    if link is None:
        raise cx.error(f"{where}.link", f"{shown(network.get('link'))} is no link the agent "
                                        "configures (absent, a bond or a VLAN)")
    kind = network.get("type")
    if kind in DHCP4:
        link["dhcp4"] = True
    elif kind in ADDRCONF:
        link["addrconf"] = True
    elif kind in STATIC:
        if network.get("ip_address") is None:
            raise cx.error(f"{where}.ip_address", "is required for a static network")
        netmask = network.get("netmask")
        address = str(network["ip_address"])
        link["addresses"].append(netconfig._cidr(
            address, f"{where}.ip_address", cx,
            netmask=netmask if netmask is not None and "/" not in address else None))
    else:
        raise cx.error(f"{where}.type", f"unknown network type {shown(kind)}")
    for k, route in enumerate(network.get("routes") or []):
        with cx.items.guard():
            if not isinstance(route, dict):
                raise cx.error(f"{where}.routes[{k}]", f"must be an object, not {shown(route)}")
            routes.append(netconfig._route(route.get("network"), route.get("gateway"),
                                           f"{where}.routes[{k}]", cx, route.get("netmask")))
    resolvers += netconfig._ips(network.get("dns_nameservers"), f"{where}.dns_nameservers", cx)
    for k, service in enumerate(network.get("services") or []):
        with cx.items.guard():
            resolvers += _service(service, f"{where}.services[{k}]", cx)


def _service(service: Any, where: str, cx: netconfig._Ctx) -> list[str]:
    if not isinstance(service, dict):
        raise cx.error(where, f"must be an object, not {shown(service)}")
    if service.get("type") != "dns":
        raise cx.error(f"{where}.type", f"{shown(service.get('type'))} services are not "
                                        "used by this agent (only dns)")
    return [netconfig._ip(service.get("address"), f"{where}.address", cx)]
