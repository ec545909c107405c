"""DHCPv4 on one link: start it through ipadm, wait for the lease (bounded), read the lease.

`ipadm create-addr -T dhcp -w N` hands the interface to dhcpagent and waits up to N seconds;
when N runs out it only warns (the address object stays, without a lease, and `show-addr`
prints its address as `?`), so the agent then polls `show-addr` with backoff until the lease
is bound or `timeouts.dhcp` (default 60 s) is spent. Never waiting forever matters: an
unanswered DHCP request must not keep the guest from its hostname, keys and user script.

A lease counts only once its address object is `ok`: `show-addr` prints the leased address
while the kernel's duplicate address detection runs (`tentative`) and after it failed
(`duplicate`), and dhcpagent answers dhcpinfo only for a bound lease (ipadm.c
`print_sa_cb()`; the original agent waited for `ok` too). An object left by an earlier
boot is polled the same way, since it may still be coming up.

The first request of a new instance asks for the metadata's host name (`ipadm create-addr
-h NAME`, libipadm `i_ipadm_op_dhcp()` sends it as DHCP option 12) rather than whatever the
image's dhcpagent settings would send, so a server that registers client names in DNS
learns the new name; a name ipadm would refuse (ipadm_is_valid_hostname) is not passed, and
the request goes without it. Where DHCP starts before the metadata is known (EC2's FETCH),
there is no name to ask for.

The lease's hostname, routers, DNS servers and domain come from dhcpinfo(1). They are kept
in `ctx.facts["dhcp"]` (the primary link's) for later steps; `lease_facts(ctx)` re-reads them
when a resumed run skipped the step that got the lease.
"""

from __future__ import annotations

import logging
import math
import time

from fsm.errors import ServiceError
from operations.addresses import IPADM, NO_LEASE, PresentAddr, ensure_interface, show_addresses

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any

    from fsm.steps import Context

log = logging.getLogger(__name__)

DHCPINFO = "/sbin/dhcpinfo"
DEFAULT_DHCP_WAIT_S = 60.0
CREATE_WAIT_S = 10          # `-w` of create-addr: at most this, at most the budget
FIRST_POLL_S = 0.25
MAX_POLL_S = 4.0


def dhcp_addrobj(link: str) -> str:
    return f"{link}/dhcp"


def ensure_dhcp(ctx: Context, link: str, primary: bool = True, reqhost: str | None = None,
                present: list[PresentAddr] | None = None) -> dict[str, Any]:
    """Bring up DHCP on `link` if needed, wait for the lease, and return what it carries.

    `present` is `ipadm show-addr` as the caller just read it, if it did (one command
    fewer; each is a process start on every boot). Returns {"link", "address", "hostname",
    "routers", "dns", "domain"} (absent values None or []); raises ServiceError when no
    lease comes within `timeouts.dhcp` seconds.
    """
    system = ctx.system
    budget_s = _budget(ctx)
    deadline = time.monotonic() + budget_s
    addrobj = dhcp_addrobj(link)
    have = next((a for a in (show_addresses(system) if present is None else present)
                 if a.addrobj == addrobj), None)
    if have is not None and have.type != "dhcp":
        system.apply([IPADM, "delete-addr", addrobj])
        log.info("deleted %s: it was %s %s, not DHCP", addrobj, have.type, have.addr)
        have = None
    if have is None:
        ensure_interface(system, link)  # an address object is on an interface: only now
        wait_s = max(1, min(CREATE_WAIT_S, math.ceil(budget_s)))
        argv = [IPADM, "create-addr", "-T", "dhcp"] + (["-1"] if primary else [])
        argv += (["-h", reqhost] if reqhost else []) + ["-w", str(wait_s), addrobj]
        log.info("starting DHCP on %s (waiting up to %g s for a lease)", link, budget_s)
        system.apply(argv, timeout_s=wait_s + ctx.settings.get("timeouts.command"))
        if system.dry_run:
            # A plan only records the create-addr; no lease will come, so do not wait.
            return {"link": link, "address": None, "hostname": None, "routers": [],
                    "dns": [], "domain": None}
    if have is not None and _bound(have):
        address = have.addr  # bound already (a later boot): no poll
    else:
        address = _wait_for_lease(ctx, link, deadline, budget_s)
    facts = ctx.facts.setdefault("dhcp_leases", {})
    known = facts.get(link)
    # The lease FETCH read to reach a metadata service is still this one: same address.
    lease = known if known and known["address"] == address else read_lease(ctx, link, address)
    facts[link] = lease
    if primary or "dhcp" not in ctx.facts:
        ctx.facts["dhcp"] = lease
    log.info("DHCP lease on %s: %s, router(s) %s, DNS %s, hostname %s", link, address,
             ", ".join(lease["routers"]) or "none", ", ".join(lease["dns"]) or "none",
             "given" if lease["hostname"] else "none")
    return lease


def _budget(ctx: Context) -> float:
    try:
        value = ctx.settings.get("timeouts.dhcp")
    except KeyError:
        value = None
    return float(value) if value is not None else DEFAULT_DHCP_WAIT_S


def _wait_for_lease(ctx: Context, link: str, deadline: float, budget_s: float) -> str:
    """Poll `ipadm show-addr` with backoff until LINK/dhcp is `ok` with an address or time
    is up; `tentative` (duplicate address detection) and `duplicate` do not count."""
    addrobj = dhcp_addrobj(link)
    pause_s = FIRST_POLL_S
    while True:
        current = next((a for a in show_addresses(ctx.system) if a.addrobj == addrobj), None)
        if current is None:
            raise ServiceError(f"DHCP on {link}: address object {addrobj} vanished while "
                               "waiting for a lease")
        if _bound(current):
            return current.addr
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ServiceError(f"DHCP on {link}: no lease within {budget_s:g} s "
                               f"(timeouts.dhcp); {_waited_for(addrobj, current)}; the next "
                               "start tries again")
        time.sleep(min(pause_s, remaining))
        pause_s = min(pause_s * 2, MAX_POLL_S)


def _bound(addr: PresentAddr) -> bool:
    return bool(addr.addr) and addr.addr != NO_LEASE and addr.state == "ok"


def _waited_for(addrobj: str, current: PresentAddr) -> str:
    if current.state == "duplicate":
        return (f"{addrobj} got {current.addr}, which another host on the network already "
                "uses (duplicate)")
    if current.addr and current.addr != NO_LEASE:
        return f"{addrobj} is still {current.state} with {current.addr}"
    return (f"{addrobj} is {current.state} without an address. The DHCP server did not "
            "answer")


def _dhcpinfo(ctx: Context, link: str, code: str) -> list[str]:
    result = ctx.system.run([DHCPINFO, "-i", link, code])
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def read_lease(ctx: Context, link: str, address: str | None = None) -> dict[str, Any]:
    """What the bound lease on `link` carries, from dhcpinfo (read-only)."""
    hostname = _dhcpinfo(ctx, link, "Hostname")
    domain = _dhcpinfo(ctx, link, "DNSdmain")
    return {
        "link": link,
        "address": address,
        "hostname": hostname[0] if hostname else None,
        "routers": _dhcpinfo(ctx, link, "Router"),
        "dns": _dhcpinfo(ctx, link, "DNSserv"),
        "domain": domain[0] if domain else None,
    }


def lease_facts(ctx: Context, link: str | None = None) -> dict[str, Any] | None:
    """`ctx.facts["dhcp"]`, or, when this run has not been through DHCP (a resumed start),
    the lease already bound on `link` (default: the first link with a DHCP object) read
    again without changing anything. None when no link has a bound DHCP lease."""
    if link is None and ctx.facts.get("dhcp"):
        return ctx.facts["dhcp"]
    if link is not None and link in ctx.facts.get("dhcp_leases", {}):
        return ctx.facts["dhcp_leases"][link]
    bound = [a for a in show_addresses(ctx.system)
             if a.type == "dhcp" and _bound(a) and (link is None or a.link == link)]
    if not bound:
        return None
    lease = read_lease(ctx, bound[0].link, bound[0].addr)
    ctx.facts.setdefault("dhcp_leases", {})[bound[0].link] = lease
    if link is None:
        ctx.facts["dhcp"] = lease
    return lease
