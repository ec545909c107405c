"""Link routes and the link a route goes out of.

A link route (no gateway: cloud-init v1/v2 routes without `gateway`/`via`, SmartOS
`sdc:routes` with `linklocal: true`) says the destination is directly on a link. route(8)
writes it `route -p add -interface DEST ADDR`: route.c `args_to_rtcmd()` turns `-interface`
into a route without RTF_GATEWAY and still requires a "gateway", which `getaddr()` parses as
an address (a link name is `bad value`), so ADDR is a local address on that link of the
destination's family: the one the source named (SmartOS gives the NIC's own IP), else the
NIC's first static one, else the link's first up address of that family (global before
link-local).

An IPv6 gateway in fe80::/10 exists on every link, so its route must say which: route.c's
`-ifp IFNAME` (`newroute()` resolves it with if_nametoindex(), `route: X: no such
interface` when it is not plumbed). The link is the NIC's the gateway came from, the
route's `interface`, else the primary NIC's (routes.py `wanted_routes()`).

Running again changes nothing: a link route whose destination is in the persistent file
with any local address of its link is left alone, and the kernel's `entry exists` is no
error. Nothing recorded by an earlier boot is removed here.
"""

from __future__ import annotations

import ipaddress
import logging

from fsm.errors import shown
from fsm.record import record
from providers.model import normalise_mac

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Callable, Union

    from fsm.steps import Context, Outcome
    from providers.model import Metadata, Nic, Route

    IPInterface = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]

log = logging.getLogger(__name__)


@record(frozen=True)
class LinkRoute:
    destination: str            # a CIDR, normalised
    link: str                   # the datalink it is on
    local: str | None = None    # the local address the source named, if it did
    static: tuple[str, ...] = ()  # the NIC's static addresses: preferred over leased ones


def is_v6_link_local(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.version == 6 and ip.is_link_local


def route_link(md: Metadata, route: Route, pairs: list[tuple[Nic, str]]
               ) -> tuple[str | None, str | None]:
    """(link, local address) of the NIC `route.interface` names, by MAC, by the source's
    NIC name, or by one of the NIC's static addresses (then also that address); (None,
    None) when it names none of this guest's NICs or nothing."""
    want = route.interface
    if not want:
        return None, None
    try:
        mac: str | None = normalise_mac(want)
    except ValueError:
        mac = None
    try:
        ip = ipaddress.ip_address(want)
    except ValueError:
        ip = None
    for nic, link in pairs:
        if mac is not None and nic.mac is not None and _same_mac(nic.mac, mac):
            return link, None
        if nic.name is not None and nic.name == want:
            return link, None
        if ip is not None and str(ip) in nic_ips(nic):
            return link, str(ip)
    log.info("%s: route to %s names interface %s, which is no NIC of this guest",
             md.origin("routes"), route.destination, want)
    return None, None


def _same_mac(a: str, b: str) -> bool:
    try:
        return normalise_mac(a) == b
    except ValueError:
        return False


def nic_ips(nic: Nic) -> tuple[str, ...]:
    """The NIC's static addresses without their prefixes, normalised."""
    found: list[str] = []
    for cidr in nic.addresses:
        try:
            found.append(str(ipaddress.ip_interface(cidr).ip))
        except ValueError:
            continue
    return tuple(found)


def link_route_source(route: LinkRoute, local: list[IPInterface]) -> str | None:
    """The local address `route -interface` goes through: the named one if it is up on the
    link, else the NIC's first static one of the destination's family that is up (a
    leased one may change), else the link's first of that family, global before
    link-local."""
    family = ipaddress.ip_network(route.destination, strict=False).version
    up = {str(i.ip) for i in local}
    if route.local is not None:
        return route.local if route.local in up else None
    for address in route.static:
        if address in up and ipaddress.ip_address(address).version == family:
            return address
    same = sorted((i for i in local if i.version == family), key=lambda i: i.ip.is_link_local)
    return str(same[0].ip) if same else None


def add_link_routes(ctx: Context, outcome: Outcome, routes: list[LinkRoute],
                    present: list[tuple[str, str]], by_link: dict[str, list[IPInterface]],
                    add: Callable[..., bool]) -> None:
    """`route -p add [-inet6] -interface DEST ADDR` for each link route not yet in the
    persistent file; one whose link has no usable address is a warning, the rest go on."""
    origin = ctx.metadata.origin("routes") if ctx.metadata else "metadata:routes"
    for route in routes:
        local = by_link.get(route.link, [])
        source = link_route_source(route, local)
        if source is None:
            named = f"address {shown(route.local)}" if route.local else "address of its family"
            outcome.warnings.append(f"{origin}: link route to {route.destination} on "
                                    f"{route.link}: the link has no {named} up; skipped; the "
                                    "rest is applied")
            continue
        mine = {str(i.ip) for i in local} | {source}
        if any(dest == route.destination and gw in mine for dest, gw in present):
            continue
        # Through a link-local address (an IPv6 link with no global one), name the link too.
        ifp = route.link if is_v6_link_local(source) else None
        if add(ctx, "add", route.destination, source, iface=True, iface_word="-interface",
               ifp=ifp):
            outcome.changed(f"persistent link route to {route.destination} on {route.link} "
                            f"(via its address {source})")
