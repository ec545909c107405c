"""Default gateway and static routes: `route -p add` (persistent) and `/etc/defaultrouter`.

One default route per address family: the first gateway of that family on the primary NIC,
else on the other NICs in order, else a `default` entry of the metadata's routes. A
persistent default with another gateway is deleted first (it would otherwise win half the
time). Persistent routes are read back with `route -p show`, so a route already recorded
costs no mutating call; an identical route the kernel already has (route prints `entry
exists`) is not an error. `/etc/defaultrouter` (read by svc:/network/routing-setup) gets the
IPv4 default. A NIC configured only by DHCP gets its router from dhcpagent, which installs
it itself; persisting that router would pin one the next lease may change, so nothing is
done for it here.

Off-link gateways. The kernel refuses a route through a gateway no local prefix holds
(route.c `newroute()` prints `Network is unreachable`, ENETUNREACH), and dhcpagent does not
install such a router, so a guest with a /32 lease (Oxide rack VMs: oxidecomputer/propolis
#531) or a static gateway outside its address's prefix has no default route. Whatever the
source, an interface route to the gateway goes in first, `route add -iface GW/32 ADDR` with
ADDR the local address on the gateway's link (the original agent's workaround), then the
route through it. For metadata gateways both are persistent (`-p`, replayed in file order
at boot); for a DHCP router both are added to the kernel only, on every boot, since the
next lease may bring another address or router. Running again changes nothing: persistent
routes already recorded are skipped, and the kernel's `entry exists` is no error.

Link routes and link-local gateways (operations/linkroutes.py). A route without a gateway
is a link route: `route -p add -interface DEST ADDR`, ADDR a local address of the route's
link (route.c takes an address, not a link name, as an interface route's gateway). An IPv6
gateway in fe80::/10 is on every link, so its route names the link: `route -p add -inet6
default fe80::1 -ifp LINK`. IPv6 default routes learnt from router advertisements (EC2:
its IMDS offers no IPv6 gateway, and AWS's routers advertise) are in.ndpd's, not ours.
"""

from __future__ import annotations

import ipaddress
import logging

from fsm.errors import CommandError, MetadataError, shown
from fsm.steps import Outcome
from operations.addresses import NO_LEASE, show_addresses
from operations.dhcp import lease_facts
from operations.linkroutes import (
    LinkRoute,
    add_link_routes,
    is_v6_link_local,
    nic_ips,
    route_link,
)
from operations.netlinks import nic_links, primary_nic
from operations.validate import validate_gateway

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Union

    from fsm.steps import Context
    from providers.model import Metadata, Nic

    IPInterface = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]

log = logging.getLogger(__name__)

ROUTE = "/usr/sbin/route"
DEFAULTROUTER = "/etc/defaultrouter"


def _family(md: Metadata, field: str, value: str) -> int:
    try:
        if "/" in value:
            return ipaddress.ip_network(value, strict=False).version
        return ipaddress.ip_address(value).version
    except ValueError:
        raise MetadataError(md.origin(field), field, f"{shown(value)} is not an IP address") from None


def _gateway(md: Metadata, field: str, value: str) -> str:
    """A gateway checked by operations/validate.py (no scope id but a link name, not
    multicast, broadcast, loopback or unspecified), blamed on the metadata's field."""
    try:
        return validate_gateway(value, "x:x")
    except MetadataError as e:
        raise MetadataError(md.origin(field), field, e.problem) from None


def wanted_routes(md: Metadata, nics: list[Nic], warnings: list[str] | None = None,
                  pairs: list[tuple[Nic, str]] | None = None,
                  link_routes: list[LinkRoute] | None = None,
                  gateway_links: dict[str, str] | None = None,
                  ) -> tuple[dict[int, str], list[tuple[str, str]]]:
    """({family: default gateway}, [(destination, gateway), ...] of static routes).

    A gateway or destination that is not an address, or a route mixing families, is
    skipped with a warning in `warnings` (an error without it); the other routes stay.
    With `pairs` (NIC, link), routes without a gateway go to `link_routes` and the link
    each gateway is reached on (its NIC's, the route's interface's, else the primary
    NIC's) to `gateway_links`; without them a route without a gateway is a warning."""
    primary = primary_nic(md)
    ordered = ([primary] if primary in nics else []) + [n for n in nics if n is not primary]
    link_of = {id(nic): link for nic, link in pairs or []}
    static_ips = {link: nic_ips(nic) for nic, link in pairs or []}
    primary_link = link_of.get(id(primary))
    found_links: dict[str, str] = {}
    defaults: dict[int, str] = {}
    for nic in ordered:
        for gateway in nic.gateways:
            try:
                checked = _gateway(md, "nics", gateway)
            except MetadataError as e:
                _skip(e, warnings)
                continue
            defaults.setdefault(ipaddress.ip_address(checked).version, checked)
            if id(nic) in link_of:
                found_links.setdefault(checked, link_of[id(nic)])
    statics: list[tuple[str, str]] = []
    for route in md.routes:
        try:
            link, local = route_link(md, route, pairs or [])
            if route.gateway is None:
                if link_routes is None or link is None:
                    raise MetadataError(md.origin("routes"), "routes",
                                        f"link route to {shown(route.destination)}: interface "
                                        f"{shown(route.interface)} is no NIC of this guest")
                _family(md, "routes", route.destination)
                link_routes.append(LinkRoute(
                    str(ipaddress.ip_network(route.destination, strict=False)), link, local,
                    static_ips.get(link, ())))
                continue
            gateway = _gateway(md, "routes", route.gateway)
            family = ipaddress.ip_address(gateway).version
            if route.destination != "default" and _family(md, "routes",
                                                          route.destination) != family:
                raise MetadataError(md.origin("routes"), "routes",
                                    f"{shown(route.destination)} via {shown(route.gateway)} "
                                    f"mixes IPv4 and IPv6")
        except MetadataError as e:
            _skip(e, warnings)
            continue
        via_link = link or primary_link
        if via_link is not None:
            found_links.setdefault(gateway, via_link)
        if route.destination == "default":
            defaults.setdefault(family, gateway)
            continue
        statics.append((str(ipaddress.ip_network(route.destination, strict=False)), gateway))
    if gateway_links is not None:
        gateway_links.update(found_links)
    return defaults, statics


def _skip(error: MetadataError, warnings: list[str] | None) -> None:
    if warnings is None:
        raise error
    warnings.append(f"{error}; skipped; the rest is applied")


# route.c args_to_rtcmd(): the keywords that take the next word as their value.
VALUED_KEYWORDS = {"-ifp", "-ifa", "-gateway", "-dst", "-netmask", "-mtu", "-hopcount",
                   "-expire", "-recvpipe", "-sendpipe", "-ssthresh", "-rtt", "-rttvar",
                   "-setsrc", "-secattr"}


def persistent_routes(ctx: Context, ifps: dict[tuple[str, str], str] | None = None
                      ) -> list[tuple[str, str]]:
    """(destination, gateway) of every route in the persistent route file; each one's
    `-ifp` link, where it has one, into `ifps`."""
    out = ctx.system.run([ROUTE, "-p", "show"]).stdout
    routes: list[tuple[str, str]] = []
    for line in out.splitlines():
        words = line.split()
        if words[:3] != ["persistent:", "route", "add"]:
            continue  # "No persistent routes are defined"
        args: list[str] = []
        ifp = None
        rest = iter(words[3:])
        for word in rest:
            if word in VALUED_KEYWORDS:
                value = next(rest, None)
                ifp = value if word == "-ifp" else ifp
            elif not word.startswith("-") and word not in ("net", "host"):
                args.append(word)
        if len(args) >= 2:
            routes.append((args[0], args[1]))
            if ifp is not None and ifps is not None:
                ifps[(args[0], args[1])] = ifp
    return routes


def _route(ctx: Context, verb: str, destination: str, gateway: str, *,
           persistent: bool = True, iface: bool = False, ifp: str | None = None,
           iface_word: str = "-iface") -> bool:
    """`route [-p] VERB [-inet6] [-iface] DEST GW [-ifp LINK]`; False when the route was
    there already (`entry exists`, from the kernel on stdout or from the route file on
    stderr)."""
    inet6 = ["-inet6"] if ipaddress.ip_address(gateway).version == 6 else []
    argv = [ROUTE] + (["-p"] if persistent else []) + [verb, *inet6]
    argv += ([iface_word] if iface else []) + [destination, gateway]
    argv += ["-ifp", ifp] if ifp else []
    result = ctx.system.apply(argv, check=False)
    if result.returncode == 0:
        return True
    said = (result.stderr.strip() or result.stdout.strip()).splitlines()
    if verb == "add" and said and said[-1].endswith(": entry exists"):
        log.info("route %s via %s already there", destination, gateway)
        return False
    raise CommandError(argv, result.returncode, said[-1] if said else "")


def local_addresses(ctx: Context) -> dict[str, list[IPInterface]]:
    """The addresses that are up (`ok`), by link, with their prefixes; loopback left out."""
    by_link: dict[str, list[IPInterface]] = {}
    for addr in show_addresses(ctx.system):
        if addr.state != "ok" or not addr.addr or addr.addr == NO_LEASE or addr.link == "lo0":
            continue
        try:
            by_link.setdefault(addr.link, []).append(ipaddress.ip_interface(addr.addr))
        except ValueError:
            continue
    return by_link


def on_link(gateway: str, local: list[IPInterface]) -> bool:
    ip = ipaddress.ip_address(gateway)
    return any(ip in iface.network for iface in local if iface.version == ip.version)


def source_address(gateway: str, preferred: list[IPInterface],
                   others: list[IPInterface]) -> str | None:
    """The local address an interface route to `gateway` goes through: one of the same
    family on the gateway's own link first, a global one before a link-local one."""
    ip = ipaddress.ip_address(gateway)
    for candidates in (preferred, others):
        same = [i for i in candidates if i.version == ip.version]
        same.sort(key=lambda i: i.ip.is_link_local)
        if same:
            return str(same[0].ip)
    return None


def host_prefix(gateway: str) -> str:
    ip = ipaddress.ip_address(gateway)
    return f"{ip}/{32 if ip.version == 4 else 128}"


def _is_v6(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).version == 6
    except ValueError:
        return False


def _reach_off_link(ctx: Context, outcome: Outcome, gateways: list[str],
                    gateway_links: dict[str, str], present: list[tuple[str, str]]) -> set[str]:
    """Persistent interface routes to the metadata gateways no local prefix holds; returns
    the gateways that cannot be reached (no local address of their family), warned about."""
    by_link = local_addresses(ctx)
    everywhere = [i for ifaces in by_link.values() for i in ifaces]
    unreachable: set[str] = set()
    for gateway in dict.fromkeys(gateways):
        if on_link(gateway, everywhere) or is_v6_link_local(gateway):
            continue  # a link-local gateway is on its link by definition (`-ifp`)
        link = gateway_links.get(gateway, "")
        source = source_address(gateway, by_link.get(link, []), everywhere)
        if source is None:
            unreachable.add(gateway)
            outcome.warnings.append(
                f"{ctx.metadata.origin('nics') if ctx.metadata else 'metadata'}: gateway "
                f"{gateway} is off-link and this guest has no address of its family to reach "
                "it through; routes via it are not configured")
            continue
        destination = host_prefix(gateway)
        if (destination, source) in present:
            continue
        if _route(ctx, "add", destination, source, iface=True):
            outcome.changed(f"persistent interface route to off-link gateway {gateway} via "
                            f"{source}")
    return unreachable


def _dhcp_off_link_router(ctx: Context, outcome: Outcome) -> None:
    """The primary lease's router when it is off-link (a /32 lease): an interface route to
    it and the default through it, in the kernel only (dhcpagent adds on-link ones)."""
    lease = lease_facts(ctx)
    if not lease or not lease.get("routers") or not lease.get("address"):
        return
    router = lease["routers"][0]
    try:
        leased = ipaddress.ip_interface(lease["address"])
        if on_link(router, [leased]):
            return
    except ValueError:
        outcome.warnings.append(f"DHCP lease on {lease['link']}: router {router!r} is not an "
                                "IPv4 address; no default route configured")
        return
    log.info("DHCP router %s is off-link for %s; adding an interface route to it first",
             router, leased)
    if _route(ctx, "add", host_prefix(router), str(leased.ip), persistent=False, iface=True):
        outcome.changed(f"interface route to off-link DHCP router {router} via {leased.ip}")
    if _route(ctx, "add", "default", router, persistent=False):
        outcome.changed(f"default route via off-link DHCP router {router}")
    ctx.facts["default_gateways"] = {4: router}


def apply_routes(ctx: Context) -> Outcome:
    outcome = Outcome()
    md = ctx.metadata
    if md is None:
        return outcome
    pairs = nic_links(ctx)
    nics = [nic for nic, _ in pairs]
    link_routes: list[LinkRoute] = []
    gateway_links: dict[str, str] = {}
    defaults, statics = wanted_routes(md, nics, outcome.warnings, pairs, link_routes,
                                      gateway_links)
    if 4 not in defaults and any(n.dhcp4 for n in nics):
        _dhcp_off_link_router(ctx, outcome)
    if not defaults and not statics and not link_routes:
        if not outcome.changes and "default_gateways" not in ctx.facts:
            log.info("no gateway in the metadata; the default route is the DHCP lease's, "
                     "installed by dhcpagent" if any(n.dhcp4 for n in nics) else
                     "no gateway in the metadata; no default route configured")
        return outcome
    ifps: dict[tuple[str, str], str] = {}
    present = persistent_routes(ctx, ifps)
    if link_routes:
        add_link_routes(ctx, outcome, link_routes, present, local_addresses(ctx), _route)
    if not defaults and not statics:
        return outcome
    unreachable = _reach_off_link(ctx, outcome, list(defaults.values()) + [g for _, g in statics],
                                  gateway_links, present)
    unreachable |= _link_local_without_link(ctx, outcome, defaults, statics, gateway_links)
    for family, gateway in sorted(defaults.items()):
        if gateway in unreachable:
            continue
        for dest, old in present:
            if dest == "default" and old != gateway and _is_v6(old) == (family == 6):
                _route(ctx, "delete", "default", old, ifp=ifps.get((dest, old)))
                outcome.changed(f"removed persistent default route via {old}")
        if ("default", gateway) not in present:
            ifp = gateway_links.get(gateway) if is_v6_link_local(gateway) else None
            if _route(ctx, "add", "default", gateway, ifp=ifp):
                outcome.changed(f"persistent default route via {gateway}"
                                + (f" on {ifp}" if ifp else ""))
    for destination, gateway in statics:
        if gateway not in unreachable and (destination, gateway) not in present:
            ifp = gateway_links.get(gateway) if is_v6_link_local(gateway) else None
            if _route(ctx, "add", destination, gateway, ifp=ifp):
                outcome.changed(f"persistent route to {destination} via {gateway}"
                                + (f" on {ifp}" if ifp else ""))
    if 4 in defaults and defaults[4] not in unreachable:
        wanted = defaults[4] + "\n"
        if ctx.system.read_text(DEFAULTROUTER, default="") != wanted:
            ctx.system.write_file(DEFAULTROUTER, wanted, mode=0o644)
            outcome.changed(f"{DEFAULTROUTER}: {defaults[4]}")
    ctx.facts["default_gateways"] = {f: g for f, g in defaults.items() if g not in unreachable}
    return outcome


def _link_local_without_link(ctx: Context, outcome: Outcome, defaults: dict[int, str],
                             statics: list[tuple[str, str]],
                             gateway_links: dict[str, str]) -> set[str]:
    """IPv6 link-local gateways no link is known for (no NIC of this guest carries them):
    a warning each, and their routes are skipped (fe80::/10 is on every link)."""
    missing: set[str] = set()
    for gateway in dict.fromkeys(list(defaults.values()) + [g for _, g in statics]):
        if is_v6_link_local(gateway) and gateway not in gateway_links:
            missing.add(gateway)
            outcome.warnings.append(
                f"{ctx.metadata.origin('routes') if ctx.metadata else 'metadata'}: gateway "
                f"{gateway} is IPv6 link-local and no interface of this guest is named for "
                "it; routes via it are not configured")
    return missing
