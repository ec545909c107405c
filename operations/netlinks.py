"""Which datalinks the guest has, their MAC addresses, and which link each metadata NIC is.

Links come from `dladm show-phys -m -p -o link,address` (every physical link with its MAC;
a link with several MAC slots is listed once per slot, primary first) restricted to the
Ethernet links `dladm show-ether -p -o link` reports. dladm prints MACs without leading
zeros (`2:8:20:a:b:c`) while metadata sources print `02:08:20:0a:0b:0c`, so both sides are
normalised with providers.model.normalise_mac before they are compared.
"""

from __future__ import annotations

import logging

from fsm.errors import ParseError, shown
from operations.parseable import parse_records
from providers.model import Nic, normalise_mac

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from fsm.steps import Context
    from fsm.system import System
    from providers.model import Metadata

log = logging.getLogger(__name__)

DLADM = "/usr/sbin/dladm"


def list_links(system: System) -> list[tuple[str, str]]:
    """(link name, normalised MAC) of every physical Ethernet link, in dladm's order."""
    phys_cmd = [DLADM, "show-phys", "-m", "-p", "-o", "link,address"]
    phys = parse_records(system.run(phys_cmd).stdout, ["link", "address"], " ".join(phys_cmd))
    ether_cmd = [DLADM, "show-ether", "-p", "-o", "link"]
    ether = {r["link"] for r in parse_records(system.run(ether_cmd).stdout, ["link"],
                                              " ".join(ether_cmd))}
    links: list[tuple[str, str]] = []
    seen: set[str] = set()
    for rec in phys:
        link, raw_mac = rec["link"], rec["address"]
        if link in seen or link not in ether or not raw_mac:
            continue  # a secondary MAC slot, a non-Ethernet link, or a link without a MAC
        try:
            mac = normalise_mac(raw_mac)
        except ValueError:
            raise ParseError(" ".join(phys_cmd), f"{link}:{raw_mac}", "not a MAC address") from None
        seen.add(link)
        links.append((link, mac))
    return links


def known_links(ctx: Context) -> list[tuple[str, str]]:
    """`list_links`, once a run and shared through ctx.facts: FETCH (DHCP to a metadata
    service), NETWORK/datalinks and NETWORK/interfaces all need it, and nothing changes
    the links but NETWORK/datalinks, which calls `forget_links` when it did."""
    links = ctx.facts.get("links")
    if links is None:
        links = ctx.facts["links"] = list_links(ctx.system)
    return links


def forget_links(ctx: Context, renamed: bool = True) -> None:
    """Links were renamed (the next step lists them again) or created (an aggregation or a
    VLAN: `show-phys` lists neither, so only the NIC-to-link map is made again)."""
    for key in ("links", "nic_links", "nic_problems") if renamed else ("nic_links",
                                                                       "nic_problems"):
        ctx.facts.pop(key, None)


def primary_nic(md: Metadata) -> Nic | None:
    """The NIC marked primary, else the first one: its lease and gateway win."""
    for nic in md.nics:
        if nic.primary:
            return nic
    return md.nics[0] if md.nics else None


def nic_label(nic: Nic, index: int) -> str:
    return nic.name or nic.mac or f"nic {index}"


def map_nics(md: Metadata, links: list[tuple[str, str]]) -> tuple[list[tuple[Nic, str]], list[str]]:
    """Pair each metadata NIC with its link: by MAC, `mac=None` meaning the first link.

    Returns the pairs and one problem line per NIC that has no link (its MAC is not on this
    guest), so the caller can configure the others before reporting them. VLANs and
    aggregations are not physical links: operations/datalinks.py pairs them.
    """
    by_mac = {mac: link for link, mac in links}
    pairs: list[tuple[Nic, str]] = []
    problems: list[str] = []
    used: dict[str, int] = {}
    for index, nic in enumerate(md.nics):
        if nic.vlan is not None or nic.aggr is not None:
            continue
        if nic.mac is None:
            link = links[0][0] if links else None
            if link is None:
                problems.append(f"{nic_label(nic, index)}: the guest has no Ethernet link")
                continue
        else:
            try:
                link = by_mac.get(normalise_mac(nic.mac))
            except ValueError:
                problems.append(f"{nic_label(nic, index)}: {shown(nic.mac)} is not a MAC address")
                continue
            if link is None:
                problems.append(f"{nic_label(nic, index)}: no link has MAC {nic.mac} "
                                f"(links: {', '.join(f'{n} {m}' for n, m in links) or 'none'})")
                continue
        if link in used:
            problems.append(f"{nic_label(nic, index)}: link {link} is already NIC "
                            f"{nic_label(md.nics[used[link]], used[link])}")
            continue
        used[link] = index
        pairs.append((nic, link))
    return pairs, problems


def nic_links(ctx: Context) -> list[tuple[Nic, str]]:
    """The NIC-to-link pairs of this run, discovered once and shared through ctx.facts.

    Every NETWORK step calls this, so a step resumed on its own still knows the links.
    """
    if "nic_links" not in ctx.facts:
        links = known_links(ctx)
        md = ctx.metadata
        if md is None or not md.nics:
            ctx.facts["nic_links"], ctx.facts["nic_problems"] = [], []
        else:
            pairs, problems = map_nics(md, links)
            if any(nic.vlan or nic.aggr for nic in md.nics):
                # The ports of an aggregation that exists carry no IP; it and the VLANs do.
                from operations import datalinks

                virtual = datalinks.virtual_pairs(md, pairs, datalinks.present_links(ctx.system))
                members = {m for nic, _ in virtual if nic.aggr for m in nic.aggr.members}
                pairs = [(nic, link) for nic, link in pairs if nic.name not in members] + virtual
            ctx.facts["nic_links"], ctx.facts["nic_problems"] = pairs, problems
            for nic, link in pairs:
                log.debug("NIC %s is link %s", nic.name or nic.mac or "(first link)", link)
    return ctx.facts["nic_links"]


def nic_problem_warnings(ctx: Context) -> list[str]:
    """One warning per metadata NIC that has no link here (its MAC is on no link of this
    guest, or two NICs name one link): that NIC is skipped, the others are configured."""
    problems = ctx.facts.get("nic_problems") or []
    if not problems or ctx.metadata is None:
        return []
    origin = ctx.metadata.origin("nics")
    return [f"{origin}: {problem}; skipped; the rest is applied" for problem in problems]
