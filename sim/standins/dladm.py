"""dladm(8) stand-in: the link listings the agent uses; the subcommands that configure links
(rename-link, create-vlan, create-aggr, set-linkprop) and their listings (show-vlan,
show-aggr, show-linkprop) are sim/standins/dladm_links.py's.

Documented forms accepted (illumos dladm(8), usr/src/man/man8/dladm.8):
  dladm show-phys [-P] [-m] [[-p] -o field[,...]] [link]
  dladm show-ether [-x] [-P] [[-p] -o field[,...]] [etherlink]
  dladm show-link [-P] [[-p] -o field[,...]] [link]

Fields are those dladm.c defines: show-phys `link,media,state,speed,duplex,device`;
show-phys -m `link,slot,address,inuse,client`; show-ether
`link,ptype,state,auto,speed-duplex,pause`; show-link `link,class,mtu,state,bridge,over`.
`-p` needs `-o` and prints fields joined by `:`, a `:` inside a field as `\\:`, empty fields
kept; without `-p` a header and space-padded columns. MAC addresses are printed the dladm
way, octets without leading zeros (`2:8:20:a:b:c`). Links live in `state["links"]`.

Messages and exit codes follow usr/src/cmd/dladm/dladm.c: options through getopt_long
(show-phys `:pPo:mH`, show-link and show-ether `:pPo:`-style; options may follow the
operand); `usage()` (no subcommand, or after `dladm: unknown subcommand 'x'`) prints
`usage:  dladm <subcommand> <args> ...` on stderr and exits 1 (EXIT_FAILURE, not 2);
`die()` is `dladm: <message>` on stderr, exit 1 (`-p requires -o`, `invalid field(s)
specified`, `-m not compatible with -P`, die_opterr()'s `unrecognized option '-x'`);
`die_dlerr()` appends dladm_status2str(): `dladm: link nosuch0 is not valid: object not
found`. show-link lists every class (sim/standins/linkstate.py): `phys`, `aggr` (OVER its
ports, `a,b`, as print_link_topology() joins them), `vlan` (OVER its link). Real
subcommands not simulated die `not simulated`. Not simulated: the
program name as invoked (dladm prints its argv[0]; here always `dladm`), -P's persistent
view, -H, statistics.
"""

from __future__ import annotations

from sim.standins import linkstate
from sim.standins.base import Exit, Invocation
from sim.standins.getoptlong import OptError, getopt_long

PHYS_FIELDS = {"link": 12, "media": 20, "state": 10, "speed": 6, "duplex": 9, "device": 12}
PHYS_M_FIELDS = {"link": 12, "slot": 8, "address": 18, "inuse": 4, "client": 12}
ETHER_FIELDS = {"link": 11, "ptype": 9, "state": 8, "auto": 5, "speed-duplex": 13, "pause": 6}
LINK_FIELDS = {"link": 11, "class": 8, "mtu": 5, "state": 7, "bridge": 10, "over": 10}

FORMS = {  # subcommand -> (flags, options with a value)
    "show-phys": ("PmpH", "o"),
    "show-ether": ("xPp", "o"),
    "show-link": ("Pp", "o"),
}
USES = {
    "show-phys": "    show-phys        [-pmH] [-o <field>,..] [<link>]",
    "show-ether": "    show-ether       [-px][-o <field>,...] <link>",
    "show-link": "    show-link        [-pP] [-o <field>,..] [-s [-i <interval>]] [<link>]",
}


def die(inv: Invocation, message: str) -> None:
    inv.fail(f"dladm: {message}")


def usage(inv: Invocation) -> None:
    inv.err("usage:  dladm <subcommand> <args> ...")
    for use in USES.values():
        inv.err(use)
    raise Exit(1)


def dladm_mac(mac: str) -> str:
    """`02:08:20:0a:0b:0c` -> `2:8:20:a:b:c`, as dladm prints MAC addresses."""
    return ":".join(format(int(octet, 16), "x") for octet in mac.split(":"))


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def select_fields(inv: Invocation, spec: str | None, known: dict[str, int]) -> list[str]:
    if spec is None:
        return list(known)
    names = [n.strip().lower() for n in spec.split(",")]
    if names == ["all"]:
        return list(known)
    for name in names:
        if name not in known:
            die(inv, "invalid field(s) specified")
    return names


def emit(inv: Invocation, rows: list[dict[str, str]], fields: list[str], widths: dict[str, int],
         parseable: bool) -> None:
    if parseable:
        for row in rows:
            inv.out(":".join(escape(row.get(f, "")) for f in fields))
        return
    inv.out(" ".join(f.upper().ljust(widths[f]) for f in fields).rstrip())
    for row in rows:
        inv.out(" ".join((row.get(f, "") or "--").ljust(widths[f]) for f in fields).rstrip())


def main(inv: Invocation) -> int:
    if not inv.argv:
        usage(inv)
    sub = inv.argv[0]
    from sim.standins import dladm_links  # only the configuring subcommands pay for it

    if sub in dladm_links.COMMANDS:
        return dladm_links.COMMANDS[sub](inv)
    if sub not in FORMS:
        if sub.startswith(("show-", "create-", "delete-", "set-", "reset-", "rename-",
                           "modify-", "add-", "remove-", "up-", "init-", "connect-",
                           "disconnect-", "scan-")):
            die(inv, f"{sub}: not simulated by this guest")
        inv.err(f"dladm: unknown subcommand '{sub}'")
        usage(inv)
    flags, with_value = FORMS[sub]
    try:
        pairs, rest = getopt_long(inv.argv[1:], flags, with_value)
    except OptError as e:
        what = "option '-%s' requires a value" if e.missing else "unrecognized option '-%s'"
        die(inv, (what % e.letter) + f"\nusage: {USES[sub]}")
        raise
    opts = dict(pairs)
    if len(rest) > 1:
        usage(inv)
    parseable = bool(opts.get("p"))
    if parseable and "o" not in opts:
        die(inv, "-p requires -o")
    if opts.get("m") and opts.get("P"):
        die(inv, "-m not compatible with -P")
    links = inv.state.get("links", [])
    if sub == "show-link":
        links = [{"link": name} for name in linkstate.all_names(inv.state)]
    if rest:
        links = [lk for lk in links if lk["link"] == rest[0]]
        if not links:
            die(inv, f"link {rest[0]} is not valid: object not found")
    if sub == "show-phys" and opts.get("m"):
        fields = select_fields(inv, opts.get("o"), PHYS_M_FIELDS)
        rows = [{"link": lk["link"], "slot": "primary", "address": dladm_mac(lk["mac"]),
                 "inuse": "yes" if _in_use(inv.state, lk["link"]) else "no",
                 "client": linkstate.port_of(inv.state, lk["link"]) or lk["link"]}
                for lk in links]
        emit(inv, rows, fields, PHYS_M_FIELDS, parseable)
    elif sub == "show-phys":
        fields = select_fields(inv, opts.get("o"), PHYS_FIELDS)
        rows = [{"link": lk["link"], "media": lk.get("media", "Ethernet"),
                 "state": lk.get("state", "up"), "speed": str(lk.get("speed", 0)),
                 "duplex": "full", "device": lk["link"]} for lk in links]
        emit(inv, rows, fields, PHYS_FIELDS, parseable)
    elif sub == "show-ether":
        fields = select_fields(inv, opts.get("o"), ETHER_FIELDS)
        rows = [{"link": lk["link"], "ptype": "current", "state": lk.get("state", "up"),
                 "auto": "yes", "speed-duplex": _speed_duplex(lk.get("speed", 0)),
                 "pause": "bi"}
                for lk in links if lk.get("media", "Ethernet") == "Ethernet"]
        emit(inv, rows, fields, ETHER_FIELDS, parseable)
    else:
        fields = select_fields(inv, opts.get("o"), LINK_FIELDS)
        st = inv.state
        rows = [{"link": lk["link"], "class": linkstate.link_class(st, lk["link"]) or "phys",
                 "mtu": str(linkstate.mtu_of(st, lk["link"])),
                 "state": (linkstate.phys(st, lk["link"]) or {}).get("state", "up"), "bridge": "",
                 "over": linkstate.over(st, lk["link"])} for lk in links]
        emit(inv, rows, fields, LINK_FIELDS, parseable)
    return 0


def _in_use(st: dict, link: str) -> bool:
    return link in st.get("interfaces", []) or linkstate.port_of(st, link) is not None


def _speed_duplex(speed_mbps: int) -> str:
    return f"{speed_mbps // 1000}G-f" if speed_mbps >= 1000 else f"{speed_mbps}M-f"
