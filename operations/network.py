"""NETWORK phase: links and IP interfaces, addresses (static, DHCP, IPv6), routes, DNS.

Every step runs on every boot and compares what the metadata wants with what ipadm, route
and the files say is there, so a second run makes no change. The steps share what they
learn through `ctx.facts` (`links`, `nic_links`, `dhcp`), each rediscovering it when a
resumed start skipped the step that found it first.
"""

from __future__ import annotations

import logging

from fsm.errors import AgentError, MetadataError, shown
from fsm.steps import Context, Frequency, Outcome, Step
from operations import addresses, dns, routes
from operations.dhcp import dhcp_addrobj, ensure_dhcp
from operations.dhcpagent import ensure_ignore_list, ignored_options
from operations.netlinks import nic_links, nic_problem_warnings, primary_nic
from operations.validate import validate_hostname

log = logging.getLogger(__name__)


def configure_interfaces(ctx: Context) -> Outcome:
    outcome = Outcome()
    pairs = nic_links(ctx)
    log.info("links: %s", ", ".join(f"{link} {mac}" for link, mac in ctx.facts["links"]) or "none")
    present = set(addresses.show_interfaces(ctx.system)) if pairs else set()
    for _nic, link in pairs:
        addresses.ensure_interface(ctx.system, link, outcome, present)
    outcome.warnings.extend(nic_problem_warnings(ctx))
    return outcome


def configure_addresses(ctx: Context) -> Outcome:
    outcome = Outcome()
    md = ctx.metadata
    pairs = nic_links(ctx)
    if md is None or not pairs:
        return outcome
    wanted = {link: addresses.wanted_addresses(ctx, nic, link, outcome.warnings)
              for nic, link in pairs}
    dhcp_links = {link for nic, link in pairs if nic.dhcp4}
    _report_partial(outcome, addresses.reconcile, ctx, wanted, dhcp_links, outcome)
    primary = primary_nic(md)
    ordered = sorted(pairs, key=lambda pair: pair[0] is not primary)
    failures: list[AgentError] = []
    reqhost = dhcp_hostname(md, outcome)
    for nic, link in ordered:
        if not nic.dhcp4:
            continue
        present = addresses.show_addresses(ctx.system)
        before = {a.addrobj for a in present}
        ensure_ignore_list(ctx.system, link, ignored_options(nic), outcome)
        try:
            ensure_dhcp(ctx, link, primary=nic is primary,
                        reqhost=reqhost if nic is primary else None, present=present)
        except AgentError as e:
            log.error("%s", e)
            failures.append(e)
        if dhcp_addrobj(link) not in before:
            outcome.changed(f"started DHCP on {link} ({dhcp_addrobj(link)})")
    if failures:
        _log_changes(outcome)
        raise failures[0]
    return outcome


def dhcp_hostname(md, outcome: Outcome) -> str | None:
    """The metadata's host name for the primary NIC's DHCP request (`ipadm -h`), when it is
    one ipadm accepts; else None and a warning (IDENTITY reports the name itself)."""
    if not md.hostname:
        return None
    try:
        return validate_hostname(md.hostname, md.origin("hostname"))
    except MetadataError:
        outcome.warnings.append(f"{md.origin('hostname')}: hostname {shown(md.hostname)} is "
                                "not a valid host name; the DHCP request does not carry it")
        return None


def configure_routes(ctx: Context) -> Outcome:
    return routes.apply_routes(ctx)


def configure_dns(ctx: Context) -> Outcome:
    return dns.apply_dns(ctx)


def _report_partial(outcome: Outcome, func, *args) -> None:
    """Run `func`; if it raises, log the changes made so far (the machine only logs the
    changes of a step that succeeded) before the error propagates."""
    try:
        func(*args)
    except Exception:
        _log_changes(outcome)
        raise


def _log_changes(outcome: Outcome) -> None:
    for change in outcome.changes:
        log.info("changed before the failure: %s", change)


_RETRY = "recorded as failed; IDENTITY, STORAGE and USERSCRIPT still run; the next start (or " \
         "`svcadm clear`) runs it again"

STEPS: tuple[Step, ...] = (
    Step("NETWORK", "interfaces", Frequency.PER_BOOT, configure_interfaces,
         changes="IP interfaces (`ipadm create-if LINK`) on the links the metadata's NICs name "
                 "(matched by MAC from `dladm show-phys -m` / `show-ether`; a NIC without a MAC "
                 "means the first Ethernet link); nothing when they exist",
         fails_when="dladm or ipadm fails or prints unparseable output (exit 95). A NIC "
                    "whose MAC is on no link of this guest is a warning naming it, and is "
                    "skipped; the other NICs are configured",
         on_failure=_RETRY),
    Step("NETWORK", "addresses", Frequency.PER_BOOT, configure_addresses,
         changes="address objects via `ipadm create-addr`: static IPv4 `LINK/v4`, "
                 "`LINK/v4nN`; IPv6 addrconf `LINK/v6` (`-p stateful=yes` where the source "
                 "asks for DHCPv6: in.ndpd runs it when the router's advertisement asks) and "
                 "static `LINK/v6s`, `LINK/v6snN`; "
                 "DHCP `LINK/dhcp` (`-T dhcp -1 [-h HOSTNAME] -w N`: the primary NIC asks for "
                 "the metadata's host name; the lease counts once the object is `ok`, awaited "
                 "for at most `timeouts.dhcp` s with backoff), after `LINK.PARAM_IGNORE_LIST=3,6` in "
                 "/etc/default/dhcpagent for a NIC whose lease must not install its router "
                 "or DNS servers (netplan dhcp4-overrides use-routes/use-dns: false). An object with the wrong address or type, or "
                 "a wanted address on another link, is deleted and created again; our own "
                 "objects no longer wanted are deleted; other objects are never touched",
         fails_when="no DHCP lease within `timeouts.dhcp` (exit 95, the other NICs are still "
                    "configured); ipadm fails (exit 95). An address in the metadata that is "
                    "not ADDRESS/PREFIX is a warning naming it, and is skipped",
         on_failure=_RETRY),
    Step("NETWORK", "routes", Frequency.PER_BOOT, configure_routes,
         changes="persistent default route per address family (`route -p add default GW`: the "
                  "primary NIC's first gateway; `-inet6` for IPv6, and `-ifp LINK` for an "
                  "IPv6 link-local gateway), static routes from the metadata, link routes "
                  "(no gateway: `route -p add -interface DEST ADDR`, ADDR the link's own "
                  "address), `/etc/defaultrouter`; a different persistent default is "
                  "deleted; an IPv6 default from router advertisements (EC2) is in.ndpd's; "
                  "a gateway "
                  "outside every local prefix gets `route -p add -iface GW/32 ADDR` first; "
                  "for DHCP-only NICs dhcpagent installs the lease's router, except an "
                  "off-link one (a /32 lease), which gets `route add -iface ROUTER/32 ADDR` "
                  "and `route add default ROUTER` in the kernel only, every boot",
         fails_when="route fails other than `entry exists` (exit 95). A gateway or "
                    "destination that is not an IP address (or is multicast, broadcast, "
                    "unspecified), or a route mixing IPv4 and IPv6, is a warning naming it, "
                    "and that route is skipped; a gateway no local address of its family can "
                    "reach, a link route whose interface is no NIC here or whose link has no "
                    "address of its family, and a link-local gateway no link is known for "
                    "are warnings and those routes are skipped",
         on_failure=_RETRY),
    Step("NETWORK", "dns", Frequency.PER_BOOT, configure_dns,
         changes="`/etc/resolv.conf` nameserver and search lines (from the metadata, else the "
                 "DHCP lease; other lines kept), `dns` on the `hosts:` and `ipnodes:` lines "
                 "of `/etc/nsswitch.conf` when missing",
         fails_when="a resolver or search domain from the DHCP lease is malformed (exit "
                    "96); a file cannot be written (exit 95). A malformed one from the "
                    "metadata is a warning naming it, and is skipped",
         on_failure=_RETRY),
)
