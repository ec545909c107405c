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
"""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING

from fsm.errors import CommandError, MetadataError, shown
from fsm.steps import Outcome
from operations.netlinks import nic_links, primary_nic

if TYPE_CHECKING:
    from fsm.steps import Context
    from providers.model import Metadata, Nic

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


def wanted_routes(md: Metadata, nics: list[Nic], warnings: list[str] | None = None
                  ) -> tuple[dict[int, str], list[tuple[str, str]]]:
    """({family: default gateway}, [(destination, gateway), ...] of static routes).

    A gateway or destination that is not an address, or a route mixing families, is
    skipped with a warning in `warnings` (an error without it); the other routes stay."""
    primary = primary_nic(md)
    ordered = ([primary] if primary in nics else []) + [n for n in nics if n is not primary]
    defaults: dict[int, str] = {}
    for nic in ordered:
        for gateway in nic.gateways:
            try:
                family = _family(md, "nics", gateway)
            except MetadataError as e:
                _skip(e, warnings)
                continue
            defaults.setdefault(family, str(ipaddress.ip_address(gateway)))
    statics: list[tuple[str, str]] = []
    for route in md.routes:
        try:
            family = _family(md, "routes", route.gateway)
            if route.destination != "default" and _family(md, "routes",
                                                          route.destination) != family:
                raise MetadataError(md.origin("routes"), "routes",
                                    f"{shown(route.destination)} via {shown(route.gateway)} "
                                    f"mixes IPv4 and IPv6")
        except MetadataError as e:
            _skip(e, warnings)
            continue
        gateway = str(ipaddress.ip_address(route.gateway))
        if route.destination == "default":
            defaults.setdefault(family, gateway)
            continue
        statics.append((str(ipaddress.ip_network(route.destination, strict=False)), gateway))
    return defaults, statics


def _skip(error: MetadataError, warnings: list[str] | None) -> None:
    if warnings is None:
        raise error
    warnings.append(f"{error}; skipped; the rest is applied")


def persistent_routes(ctx: Context) -> list[tuple[str, str]]:
    """(destination, gateway) of every route in the persistent route file."""
    out = ctx.system.run([ROUTE, "-p", "show"]).stdout
    routes: list[tuple[str, str]] = []
    for line in out.splitlines():
        words = line.split()
        if words[:3] != ["persistent:", "route", "add"]:
            continue  # "No persistent routes are defined"
        args = [w for w in words[3:] if not w.startswith("-")]
        if len(args) >= 2:
            routes.append((args[0], args[1]))
    return routes


def _route(ctx: Context, verb: str, destination: str, gateway: str) -> None:
    inet6 = ["-inet6"] if ipaddress.ip_address(gateway).version == 6 else []
    argv = [ROUTE, "-p", verb, *inet6, destination, gateway]
    try:
        ctx.system.apply(argv)
    except CommandError as e:
        if verb == "add" and "entry exists" in e.stderr:
            log.info("route %s via %s already recorded", destination, gateway)
            return
        raise


def _is_v6(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).version == 6
    except ValueError:
        return False


def apply_routes(ctx: Context) -> Outcome:
    outcome = Outcome()
    md = ctx.metadata
    if md is None:
        return outcome
    nics = [nic for nic, _ in nic_links(ctx)]
    defaults, statics = wanted_routes(md, nics, outcome.warnings)
    if not defaults and not statics:
        log.info("no gateway in the metadata; the default route is the DHCP lease's, "
                 "installed by dhcpagent" if any(n.dhcp4 for n in nics) else
                 "no gateway in the metadata; no default route configured")
        return outcome
    present = persistent_routes(ctx)
    for family, gateway in sorted(defaults.items()):
        for dest, old in present:
            if dest == "default" and old != gateway and _is_v6(old) == (family == 6):
                _route(ctx, "delete", "default", old)
                outcome.changed(f"removed persistent default route via {old}")
        if ("default", gateway) not in present:
            _route(ctx, "add", "default", gateway)
            outcome.changed(f"persistent default route via {gateway}")
    for destination, gateway in statics:
        if (destination, gateway) not in present:
            _route(ctx, "add", destination, gateway)
            outcome.changed(f"persistent route to {destination} via {gateway}")
    if 4 in defaults:
        wanted = defaults[4] + "\n"
        if ctx.system.read_text(DEFAULTROUTER, default="") != wanted:
            ctx.system.write_file(DEFAULTROUTER, wanted, mode=0o644)
            outcome.changed(f"{DEFAULTROUTER}: {defaults[4]}")
    ctx.facts["default_gateways"] = dict(defaults)
    return outcome
