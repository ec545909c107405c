"""IP interfaces and addresses through ipadm(8): what is there, and making it what is wanted.

Address objects the agent creates are named `LINK/v4`, `LINK/v4n1`... (static IPv4),
`LINK/v6` (addrconf; `-p stateful=yes` where the source asks for DHCPv6: in.ndpd then runs
DHCPv6 when the router's advertisement sets the Managed or Other flag, as illumos never
starts it without a router), `LINK/v6s`, `LINK/v6sn1`... (static IPv6) and `LINK/dhcp`. An object
with the right name and the right type and address is left alone; one with the wrong type
or address is deleted and created again; a wanted address that sits on another link is
removed there first; our own objects that the metadata no longer asks for on a managed
link are deleted. Objects with other names (an operator's) are never touched.
"""

from __future__ import annotations

import ipaddress
import logging

from fsm.errors import MetadataError, shown
from fsm.record import record
from operations.parseable import parse_records
from operations.validate import validate_interface

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from fsm.steps import Context, Outcome
    from fsm.system import System
    from providers.model import Nic

log = logging.getLogger(__name__)

IPADM = "/usr/sbin/ipadm"
ADDR_FIELDS = ["addrobj", "type", "state", "addr"]
NO_LEASE = "?"  # what ipadm show-addr prints as ADDR for a DHCP object without a lease


@record(frozen=True)
class PresentAddr:
    addrobj: str
    type: str
    state: str
    addr: str

    @property
    def link(self) -> str:
        return self.addrobj.split("/", 1)[0]


@record(frozen=True)
class WantedAddr:
    addrobj: str
    type: str               # static, dhcp or addrconf
    cidr: str | None = None  # for static: the interface address, normalised
    # addrconf: the source asks for DHCPv6 (`-p stateful=yes`). libipadm's default is yes
    # too (ipadm_create_addrobj()), so an object made without it already matches.
    stateful: bool = False


def show_interfaces(system: System) -> list[str]:
    argv = [IPADM, "show-if", "-p", "-o", "ifname"]
    return [r["ifname"] for r in parse_records(system.run(argv).stdout, ["ifname"], " ".join(argv))]


def show_addresses(system: System) -> list[PresentAddr]:
    argv = [IPADM, "show-addr", "-p", "-o", ",".join(ADDR_FIELDS)]
    return [PresentAddr(**r) for r in parse_records(system.run(argv).stdout, ADDR_FIELDS,
                                                     " ".join(argv))]


def ensure_interface(system: System, link: str, outcome: Outcome | None = None,
                     present: set[str] | None = None) -> bool:
    """`ipadm create-if LINK` unless the IP interface exists; True when it was created.

    `present`: the interfaces as the caller listed them, kept up to date here, so that
    one `ipadm show-if` serves every link."""
    if link in (present if present is not None else show_interfaces(system)):
        return False
    system.apply([IPADM, "create-if", link])
    if present is not None:
        present.add(link)
    if outcome is not None:
        outcome.changed(f"created IP interface {link}")
    return True


def delete_addr(system: System, addrobj: str, outcome: Outcome, why: str) -> None:
    system.apply([IPADM, "delete-addr", addrobj])
    outcome.changed(f"deleted address {addrobj} ({why})")


def same_address(present: str, wanted_cidr: str) -> bool:
    """`10.0.0.5/24` as ipadm prints it equals the wanted CIDR (IPv6 forms compared as values)."""
    try:
        return ipaddress.ip_interface(present) == ipaddress.ip_interface(wanted_cidr)
    except ValueError:
        return False


def wanted_addresses(ctx: Context, nic: Nic, link: str,
                     warnings: list[str] | None = None) -> list[WantedAddr]:
    """The static and addrconf objects this NIC needs on `link` (DHCP is dhcp.py's).

    A malformed address is skipped with a warning in `warnings` (an error without it)."""
    md = ctx.metadata
    origin = md.origin("nics") if md else "metadata:nics"
    v4: list[str] = []
    v6: list[str] = []
    for cidr in nic.addresses:
        problem = None
        try:
            iface = validate_interface(cidr, "x:x")
        except MetadataError as e:
            problem = f"on {link}: {e.problem}"
        if problem is None and "/" not in cidr:
            problem = f"{shown(cidr)} on {link} has no prefix length"
        if problem is not None:
            error = MetadataError(origin, "addresses", problem)
            if warnings is None:
                raise error
            warnings.append(f"{error}; skipped; the rest is applied")
            continue
        (v4 if iface.version == 4 else v6).append(iface.with_prefixlen)
    wanted: list[WantedAddr] = []
    if nic.addrconf or v6:
        # ipadm(8): a static IPv6 address needs the interface's addrconf address first.
        wanted.append(WantedAddr(f"{link}/v6", "addrconf", stateful=nic.dhcp6))
    for i, cidr in enumerate(v4):
        wanted.append(WantedAddr(f"{link}/v4" + (f"n{i}" if i else ""), "static", cidr))
    for i, cidr in enumerate(v6):
        wanted.append(WantedAddr(f"{link}/v6s" + (f"n{i}" if i else ""), "static", cidr))
    return wanted


def is_ours(addrobj: str) -> bool:
    """Address object names this agent creates (see the module docstring)."""
    name = addrobj.split("/", 1)[-1]
    if name in ("v4", "v6", "v6s", "dhcp"):
        return True
    for prefix in ("v4n", "v6sn"):
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            return True
    return False


def reconcile(ctx: Context, wanted_by_link: dict[str, list[WantedAddr]],
              dhcp_links: set[str], outcome: Outcome) -> None:
    """Make the static and addrconf addresses of the managed links what is wanted.

    `dhcp_links` are managed links whose `LINK/dhcp` object is wanted (left to dhcp.py here,
    but not deleted as stale).
    """
    system = ctx.system
    present = {a.addrobj: a for a in show_addresses(system)}
    managed = set(wanted_by_link) | dhcp_links
    wanted_objs = {w.addrobj for ws in wanted_by_link.values() for w in ws}
    wanted_objs |= {f"{link}/dhcp" for link in dhcp_links}

    # Stale objects of ours on managed links go first, so their addresses are free.
    for addrobj, addr in sorted(present.items()):
        if addr.link in managed and is_ours(addrobj) and addrobj not in wanted_objs:
            delete_addr(system, addrobj, outcome, "no longer in the metadata")
            del present[addrobj]

    for link, wanted in wanted_by_link.items():
        for want in wanted:
            have = present.get(want.addrobj)
            if have is not None and _matches(have, want):
                continue
            if want.type == "static" and want.cidr:
                elsewhere = [a for a in present.values() if a.addrobj != want.addrobj
                             and a.type == "static" and same_address(a.addr, want.cidr)]
                same_link = [a for a in elsewhere if a.link == link]
                if same_link and have is None:
                    log.info("%s already on %s as %s; left alone", want.cidr, link,
                             same_link[0].addrobj)
                    continue
                for other in elsewhere:
                    if other.link != link:
                        delete_addr(system, other.addrobj, outcome,
                                    f"{want.cidr} belongs on {link}")
                        present.pop(other.addrobj, None)
            if have is not None:
                delete_addr(system, want.addrobj, outcome,
                            f"was {have.type} {have.addr}, wanted {want.type} {want.cidr or ''}".rstrip())
                present.pop(want.addrobj, None)
            _create(system, want, outcome)


def _matches(have: PresentAddr, want: WantedAddr) -> bool:
    if have.type != want.type:
        return False
    if want.type == "static":
        return want.cidr is not None and same_address(have.addr, want.cidr)
    return True


def _create(system: System, want: WantedAddr, outcome: Outcome) -> None:
    if want.type == "static":
        system.apply([IPADM, "create-addr", "-T", "static", "-a", str(want.cidr), want.addrobj])
        outcome.changed(f"created static address {want.addrobj} {want.cidr}")
    else:
        stateful = ["-p", "stateful=yes"] if want.stateful else []
        system.apply([IPADM, "create-addr", "-T", "addrconf", *stateful, want.addrobj])
        outcome.changed(f"created IPv6 autoconfigured address {want.addrobj}"
                        + (" (DHCPv6 when the router asks for it)" if want.stateful else ""))
