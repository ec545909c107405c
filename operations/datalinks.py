"""NETWORK step `datalinks`: link names, aggregations, VLANs and MTUs, before any IP.

Runs before `interfaces` because illumos refuses what it does on a link that carries IP:
`dladm rename-link` fails with `link busy` on a link with an IP interface (the kernel's
dls_devnet_rename()), a plumbed link cannot become an aggregation port, and drivers such as
vioif refuse a new MTU while the device runs. Order inside the step: renames (v2
`set-name`, v1 `name`), the MTU of physical links, aggregations (v1 `bond`, v2 `bonds`) and
their MTU, then VLANs (which may tag an aggregation) and theirs.

Every boot it compares what the metadata wants with what `dladm show-phys`, `show-link`,
`show-vlan` and `show-linkprop -p mtu -c -o value` print, and only changes what differs,
so a second boot runs no mutating dladm command. Blast radius: a name that is not a valid
illumos link name, a link the image already configured with IP (renaming it would break
it: it keeps its name), a port or VLAN link that is not there, a value dladm refuses, is a
warning naming the source, field and value; every other item is still applied. Nothing is
deleted: an aggregation or VLAN a previous boot made and the metadata no longer names is
left alone. SmartOS `vlan_id` is not a guest VLAN (Triton tags on the host's VNIC and the
guest sees untagged frames; a guest VLAN would double-tag them), so SmartOS NICs only bring
their MTU here.
"""

from __future__ import annotations

import logging

from fsm.errors import cut, shown
from fsm.record import field, record
from fsm.steps import Frequency, Outcome, Step
from operations.addresses import show_interfaces
from operations.netlinks import DLADM, forget_links, known_links, map_nics, nic_label
from operations.parseable import parse_records

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from fsm.steps import Context
    from fsm.system import System
    from providers.model import Metadata, Nic

log = logging.getLogger(__name__)



def has_link_config(md: Metadata | None) -> bool:
    return md is not None and any(n.mtu or n.link_name or n.vlan or n.aggr for n in md.nics)


def valid_linkname(name: str) -> bool:
    """libdladm dladm_valid_linkname(): < 32 characters, not starting with a digit, ending
    with one, of alphanumerics, `_` and `.`."""
    return (0 < len(name) < 32 and not name[0].isdigit() and name[-1].isdigit()
            and all(c.isascii() and (c.isalnum() or c in "_.") for c in name))


@record
class Present:
    """The datalinks dladm shows: class and OVER per link, (over, vid) per VLAN."""

    classes: dict[str, str] = field(default_factory=dict)
    over: dict[str, str] = field(default_factory=dict)
    vlans: dict[str, tuple[str, int]] = field(default_factory=dict)

    def vlan_link(self, over: str, vid: int) -> str | None:
        return next((name for name, tag in self.vlans.items() if tag == (over, vid)), None)


def present_links(system: System) -> Present:
    argv = [DLADM, "show-link", "-p", "-o", "link,class,over"]
    present = Present()
    for rec in parse_records(system.run(argv).stdout, ["link", "class", "over"], " ".join(argv)):
        present.classes[rec["link"]] = rec["class"]
        present.over[rec["link"]] = rec["over"]
    if "vlan" in present.classes.values():
        argv = [DLADM, "show-vlan", "-p", "-o", "link,vid,over"]
        for rec in parse_records(system.run(argv).stdout, ["link", "vid", "over"], " ".join(argv)):
            if rec["vid"].isdigit():
                present.vlans[rec["link"]] = (rec["over"], int(rec["vid"]))
    return present


def aggr_name(nic: Nic, md: Metadata) -> str:
    """The source's name when illumos takes it, else `aggrN` (N: its place among bonds)."""
    if nic.link_name and valid_linkname(nic.link_name):
        return nic.link_name
    return f"aggr{[n for n in md.nics if n.aggr].index(nic) + 1}"


def vlan_name(nic: Nic, over_link: str) -> str:
    """The source's name when illumos takes it, else dladm's own VLAN name for it:
    DRIVER(VID * 1000 + PPA) (dladm.c do_create_vlan())."""
    assert nic.vlan is not None
    if nic.link_name and valid_linkname(nic.link_name):
        return nic.link_name
    driver = over_link.rstrip("0123456789")
    ppa = over_link[len(driver):]
    if driver and ppa and int(ppa) < 1000:
        return f"{driver}{nic.vlan.vid * 1000 + int(ppa)}"
    return f"vlan{nic.vlan.vid}"


def virtual_pairs(md: Metadata, physical: list[tuple[Nic, str]],
                  present: Present) -> list[tuple[Nic, str]]:
    """(NIC, link) of each aggregation and VLAN of the metadata that exists now."""
    by_name = {nic.name: link for nic, link in physical if nic.name}
    pairs: list[tuple[Nic, str]] = []
    for nic in md.nics:
        if nic.aggr is not None:
            name = aggr_name(nic, md)
            if present.classes.get(name) == "aggr":
                pairs.append((nic, name))
                if nic.name:
                    by_name[nic.name] = name
    for nic in md.nics:
        if nic.vlan is not None and nic.vlan.over in by_name:
            link = present.vlan_link(by_name[nic.vlan.over], nic.vlan.vid)
            if link:
                pairs.append((nic, link))
    return pairs


class _Run:
    """One pass of the step: the context, what it found, and its outcome."""

    def __init__(self, ctx: Context, outcome: Outcome):
        self.ctx, self.system, self.outcome = ctx, ctx.system, outcome
        self.md: Metadata = ctx.metadata  # type: ignore[assignment]
        self.origin = self.md.origin("nics")
        self._plumbed: set[str] | None = None

    def warn(self, nic: Nic, what: str, value: object, problem: str) -> None:
        label = nic_label(nic, self.md.nics.index(nic))
        self.outcome.warnings.append(f"{self.origin}: {label} {what} {shown(value)}: {problem}; "
                                     f"skipped; the rest is applied")

    def plumbed(self) -> set[str]:
        if self._plumbed is None:
            self._plumbed = set(show_interfaces(self.system))
        return self._plumbed

    def dladm(self, nic: Nic, what: str, value: object, argv: list[str], change: str) -> bool:
        """Run a mutating dladm command; a refusal is a warning quoting dladm's message."""
        result = self.system.apply([DLADM, *argv], check=False)
        if result.returncode != 0:
            message = cut((result.stderr.strip().splitlines()
                           or [f"exit {result.returncode}"])[-1], 200)
            self.warn(nic, what, value, f"`dladm {argv[0]}` refused it: {message}")
            return False
        self.outcome.changed(change)
        return True

    def physical(self) -> list[tuple[Nic, str]]:
        pairs, _problems = map_nics(self.md, known_links(self.ctx))  # reported by `interfaces`
        return pairs

    def rename(self, pairs: list[tuple[Nic, str]], present: Present) -> bool:
        renamed = False
        for nic, link in pairs:
            want = nic.link_name
            if not want or want == link:
                continue
            if not valid_linkname(want):
                self.warn(nic, "link name", want, f"not a valid illumos link name (letters, "
                          f"digits, `_` and `.`, ending in a digit, under 32); {link} keeps its name")
            elif link in self.plumbed():
                self.warn(nic, "link name", want, f"{link} already has an IP interface (the image "
                          "configured it, or FETCH did to reach a seed URL); renaming would "
                          "break it, so it keeps its name")
            elif want in present.classes:
                self.warn(nic, "link name", want, f"another link already has that name; {link} "
                          "keeps its name")
            elif self.dladm(nic, "link name", want, ["rename-link", link, want],
                            f"renamed link {link} to {want}"):
                renamed = True
        return renamed

    def mtu(self, nic: Nic, link: str) -> None:
        if nic.mtu is None:
            return
        argv = [DLADM, "show-linkprop", "-p", "mtu", "-c", "-o", "value", link]
        current = self.system.run(argv).stdout.strip()
        if current == str(nic.mtu):
            return
        self.dladm(nic, f"mtu (on {link})", nic.mtu, ["set-linkprop", "-p", f"mtu={nic.mtu}", link],
                   f"set the MTU of {link} to {nic.mtu} (was {current or 'unknown'})")

    def aggregate(self, nic: Nic, by_name: dict[str, str], present: Present) -> str | None:
        assert nic.aggr is not None
        name = aggr_name(nic, self.md)
        if present.classes.get(name) == "aggr":
            return name
        if name in present.classes:
            self.warn(nic, "aggregation", name, f"a {present.classes[name]} link has that name")
            return None
        ports = []
        for member in nic.aggr.members:
            port = by_name.get(member)
            if port is None:
                self.warn(nic, "aggregation port", member, "no interface of that name is on "
                          "this guest; the aggregation is not created")
                return None
            if port in self.plumbed():
                self.warn(nic, "aggregation port", member, f"{port} already has an IP "
                          f"interface; the aggregation is not created")
                return None
            ports += ["-l", port]
        argv = ["create-aggr", "-L", nic.aggr.lacp_mode]
        argv += ["-T", nic.aggr.lacp_timer] if nic.aggr.lacp_timer else []
        argv += ["-P", nic.aggr.policy] if nic.aggr.policy else []
        if not self.dladm(nic, "aggregation", name, [*argv, *ports, name],
                          f"created aggregation {name} over {', '.join(ports[1::2])} "
                          f"(LACP {nic.aggr.lacp_mode})"):
            return None
        present.classes[name] = "aggr"
        return name

    def tag(self, nic: Nic, over_link: str, present: Present) -> str | None:
        assert nic.vlan is not None
        existing = present.vlan_link(over_link, nic.vlan.vid)
        if existing:
            return existing
        name = vlan_name(nic, over_link)
        if nic.link_name and name != nic.link_name:
            log.info("VLAN %s is not a valid illumos link name; created as %s", nic.link_name, name)
        if name in present.classes:
            self.warn(nic, "vlan", name, f"a {present.classes[name]} link has that name")
            return None
        if not self.dladm(nic, "vlan", nic.vlan.vid,
                          ["create-vlan", "-l", over_link, "-v", str(nic.vlan.vid), name],
                          f"created VLAN {name} (VID {nic.vlan.vid} over {over_link})"):
            return None
        present.classes[name] = "vlan"
        present.vlans[name] = (over_link, nic.vlan.vid)
        return name


def configure_datalinks(ctx: Context) -> Outcome:
    outcome = Outcome()
    md = ctx.metadata
    if not has_link_config(md):
        return outcome
    run = _Run(ctx, outcome)
    present = present_links(ctx.system)
    pairs = run.physical()
    if run.rename(pairs, present):
        forget_links(ctx)
        present, pairs = present_links(ctx.system), run.physical()
    for nic, link in pairs:
        run.mtu(nic, link)
    by_name = {nic.name: link for nic, link in pairs if nic.name}
    ports = {nic.name: nic for nic, _ in pairs if nic.name}
    for nic in run.md.nics:
        if nic.aggr is not None:
            name = run.aggregate(nic, by_name, present)
            if name:
                run.mtu(nic, name)
                if nic.name:
                    by_name[nic.name] = name
                for port in (ports[m] for m in nic.aggr.members if m in ports):
                    if port.addresses or port.dhcp4 or port.addrconf:
                        run.warn(port, "addresses of aggregation port", port.name,
                                 f"a port of {name} carries no IP of its own; they are not "
                                 "configured")
    for nic in run.md.nics:
        if nic.vlan is None:
            continue
        over_link = by_name.get(nic.vlan.over)
        if over_link is None:
            run.warn(nic, "vlan link", nic.vlan.over, "no interface of that name is "
                     "configured on this guest; the VLAN is not created")
            continue
        name = run.tag(nic, over_link, present)
        if name:
            run.mtu(nic, name)
    if outcome.changes:  # a refused dladm command changed nothing
        # The next steps map the NICs again, over the new aggregations and VLANs; the
        # physical links were listed again right after any rename.
        forget_links(ctx, renamed=False)
    return outcome


RETRY = ("recorded as failed; IDENTITY, STORAGE and USERSCRIPT still run; the next start (or "
         "`svcadm clear`) runs it again")

STEPS: tuple[Step, ...] = (
    Step("NETWORK", "datalinks", Frequency.PER_BOOT, configure_datalinks,
         changes="datalinks, before any IP is on them: `dladm rename-link` to the metadata's "
                 "link name (v2 `set-name`, v1 `name`), `dladm set-linkprop -p mtu=N` where "
                 "`show-linkprop -p mtu -c -o value` differs, `dladm create-aggr -L MODE [-T "
                 "TIMER] [-P POLICY] -l PORT... NAME` for bonds (802.3ad: LACP active, "
                 "balance-xor: LACP off), `dladm create-vlan -l LINK -v VID NAME` for VLANs "
                 "(addresses then go on the VLAN or aggregation link); nothing when they "
                 "match. Not SmartOS `vlan_id`: Triton tags on the host's VNIC and the guest "
                 "sees untagged frames, so a guest VLAN would double-tag",
         fails_when="dladm or ipadm prints unparseable output or times out (exit 95). A link "
                    "name illumos does not take, a link the image already plumbed (it keeps "
                    "its name), a bond mode aggregations lack, a missing port or VLAN link, a "
                    "value dladm refuses (an MTU out of the driver's range, a busy link) is a "
                    "warning naming it, and is skipped; the rest is applied; nothing is deleted",
         on_failure=RETRY),
)
