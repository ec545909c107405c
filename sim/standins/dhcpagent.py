"""The simulated DHCP server, dhcpagent(8) and the kernel's view of which gateways are on-link:
shared by the ipadm, dhcpinfo and route stand-ins (not a command of its own).

The server's behaviour is `state["dhcp"]`: `mode` answer (a lease at once), delay (a lease
`delay_s` seconds after the request) or never; `leases[link]` overrides the lease a link
gets, otherwise a QEMU user-net style one is derived from the link's position (10.0.2.15/24,
router 10.0.2.2, DNS 10.0.2.3 for the first link, 10.0.3.x for the second...). A lease is
`{address, router, dns, hostname, domain}`, plus `duplicate: true` when another host on the
wire already has the address.

What follows the answer is dhcpagent's, as ipadm(8) shows it: the address is set on the
interface and the kernel runs duplicate address detection, so `ipadm show-addr` prints the
object `tentative` with its address for `dad_s` seconds (default 0), then `ok`, or
`duplicate` for a lease whose address is taken (dhcpagent then does not bind it; the
stand-in leaves it so). Only an `ok` address is BOUND: dhcpinfo answers for it and the
router is installed as the default route, and only when the router is on-link for the
leased prefix (dhcpagent does not install an off-link router, so a /32 lease gets no default
route; oxidecomputer/propolis#531). Until the answer the object has no address (`?`,
ipadm.c `print_sa_cb()`: a DHCP address of 0.0.0.0 prints STR_UNKNOWN_VAL) and is `down`.

Bookkeeping: `requested[link]` (request time), `bound[link]` (the bound lease), `reqhost[link]`
(the host name the client asked for with `ipadm create-addr -h`, as the server saw it in
option 12; None without -h), `primary`. Standard library only: runs under `python -S`.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any

NO_LEASE = "?"


def dhcp_state(st: dict[str, Any]) -> dict[str, Any]:
    dhcp = st.setdefault("dhcp", {})
    dhcp.setdefault("mode", "answer")
    dhcp.setdefault("delay_s", 0.0)
    dhcp.setdefault("dad_s", 0.0)
    dhcp.setdefault("leases", {})
    dhcp.setdefault("requested", {})
    dhcp.setdefault("bound", {})
    dhcp.setdefault("reqhost", {})
    return dhcp


def default_lease(st: dict[str, Any], link: str) -> dict[str, Any]:
    names = [lk["link"] for lk in st.get("links", [])]
    net = 2 + (names.index(link) if link in names else 0)
    return {"address": f"10.0.{net}.15/24", "router": f"10.0.{net}.2", "dns": [f"10.0.{net}.3"],
            "hostname": None, "domain": None}


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def lease_for(st: dict[str, Any], link: str) -> dict[str, Any]:
    return dict(dhcp_state(st)["leases"].get(link) or default_lease(st, link))


def answered_at(dhcp: dict[str, Any], link: str) -> float | None:
    """When the server answers (or answered) the request on `link`; None: never."""
    requested = dhcp["requested"].get(link)
    if requested is None or dhcp["mode"] == "never":
        return None
    return requested + (float(dhcp["delay_s"]) if dhcp["mode"] == "delay" else 0.0)


def _dhcp_addresses(st: dict[str, Any], link: str) -> list[dict[str, Any]]:
    return [a for a in st.get("addresses", [])
            if a["type"] == "dhcp" and a["addrobj"].split("/")[0] == link]


def _bind(st: dict[str, Any], link: str, lease: dict[str, Any]) -> None:
    dhcp = dhcp_state(st)
    ignored = (dhcp.get("ignore") or {}).get(link) or []
    if 3 in ignored:    # option 3, Router: not applied, not reported by dhcpinfo
        lease["router"] = None
    if 6 in ignored:    # option 6, DNS servers
        lease["dns"] = []
    dhcp["bound"][link] = lease
    dhcp["requested"].pop(link, None)
    for addr in _dhcp_addresses(st, link):
        addr.update(state="ok", addr=lease["address"])
    routes = st.setdefault("routes", [])
    for router in as_list(lease.get("router"))[:1]:
        route = {"destination": "default", "gateway": router}
        if route not in routes and on_link(st, router):
            routes.append(route)


def settle_dhcp(st: dict[str, Any], now: float | None = None) -> None:
    """Advance every outstanding request to where it is at `now`: no answer yet (down, `?`),
    answered and in duplicate address detection (tentative), duplicate, or bound (ok)."""
    dhcp = dhcp_state(st)
    now = time.time() if now is None else now
    for link in list(dhcp["requested"]):
        at = answered_at(dhcp, link)
        if at is None or now < at:
            continue
        lease = lease_for(st, link)
        if now < at + float(dhcp["dad_s"]):
            for addr in _dhcp_addresses(st, link):
                addr.update(state="tentative", addr=lease["address"])
        elif lease.get("duplicate"):
            for addr in _dhcp_addresses(st, link):
                addr.update(state="duplicate", addr=lease["address"])
        else:
            _bind(st, link, lease)


def next_change(st: dict[str, Any], link: str, now: float) -> float | None:
    """When the request on `link` next changes state (answer, end of DAD); None: never."""
    dhcp = dhcp_state(st)
    at = answered_at(dhcp, link)
    if at is None:
        return None
    for moment in (at, at + float(dhcp["dad_s"])):
        if moment > now:
            return moment
    return None


def release_dhcp(st: dict[str, Any], link: str) -> None:
    dhcp = dhcp_state(st)
    dhcp["requested"].pop(link, None)
    lease = dhcp["bound"].pop(link, None)
    if lease:
        for router in as_list(lease.get("router"))[:1]:
            route = {"destination": "default", "gateway": router}
            if route in st.get("routes", []):
                st["routes"].remove(route)
    if dhcp.get("primary") == link:
        dhcp.pop("primary")


# ---- the kernel: which addresses are up, which gateways are reachable ----------------------
def up_interfaces(st: dict[str, Any]) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
    """The local addresses the kernel has up (state ok), with their prefixes; an address
    given without a prefix is a host address."""
    found = []
    for addr in st.get("addresses", []):
        if addr.get("state") != "ok" or addr.get("addr") in (None, "", NO_LEASE):
            continue
        try:
            found.append(ipaddress.ip_interface(addr["addr"]))
        except ValueError:
            continue
    return found


def is_local(st: dict[str, Any], address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(iface.ip == ip for iface in up_interfaces(st))


def on_link(st: dict[str, Any], gateway: str) -> bool:
    """A gateway is reachable when an up address's prefix holds it or an interface route
    (`route add -iface`) covers it."""
    try:
        ip = ipaddress.ip_address(gateway)
    except ValueError:
        return False
    if any(ip in iface.network for iface in up_interfaces(st) if iface.version == ip.version):
        return True
    for route in st.get("routes", []):
        if not route.get("iface"):
            continue
        try:
            net = ipaddress.ip_network(route["destination"], strict=False)
        except ValueError:
            continue
        if net.version == ip.version and ip in net:
            return True
    return False
