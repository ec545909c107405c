"""dladm(8) stand-in, the link-configuring half: rename-link, create-vlan, create-aggr,
set-linkprop, and the listings show-vlan, show-aggr, show-linkprop.

Derived from usr/src/cmd/dladm/dladm.c (getopt strings, usage lines in `cmds[]`, field
tables, messages) and usr/src/lib/libdladm/common/libdladm.c (`dladm_status2str()`,
`dladm_errno2status()`, `dladm_valid_linkname()`):
- `rename-link [-R root] OLD NEW` (do_rename_link(), `:R:`): `die_dlerr(status, "rename
  operation failed")`: `object not found` (no OLD), `invalid link` (NEW not a valid link
  name), `object already exists` (NEW taken), `link busy` (EBUSY from the kernel's
  dls_devnet_rename(): an IP interface is plumbed on OLD, or it is an aggregation port).
- `create-vlan [-ft] [-R root] -l LINK -v VID [-p prop=val] [NAME]` (do_create_vlan(),
  `:tfR:l:v:p:`): `invalid VLAN identifier 'X'` (not 1..4094), `the option -v cannot be
  specified more than once` (die_optdup()), usage without -l or -v; without NAME the
  name is DRIVER(VID*1000+PPA) (`invalid link name 'X'` when LINK has a PPA >= 1000); no LINK
  `invalid link name 'X'`; `create operation failed: object already exists` (the name is
  taken, or LINK already has a VLAN with that VID), `invalid link` (NAME not valid), `link
  busy` (LINK is an aggregation port), `invalid argument` (LINK is itself a VLAN).
- `create-aggr [-ft] [-R root] [-P policy] [-L mode] [-T time] [-u address] -l LINK
  [-l LINK...] NAME|KEY` (do_create_aggr(), `:d:l:L:P:R:tfu:T:p:`): an `-l` value not ending
  in a digit is taken as `-L` (dladm.c's old syntax); `invalid policy 'X'` (L2, L3, L4 and
  comma lists), `invalid LACP mode 'X'` (off, active, passive), `invalid LACP timer value
  'X'` (short, long), `the option -L cannot be specified more than once`; a numeric operand
  is a key (`aggrKEY`), else `invalid link name 'X'` unless valid; a port that is no link
  `invalid link name 'X': object not found`; `create operation failed: object already
  exists` (name taken), `link busy` (a port has an IP interface, a VLAN, or is in another
  aggregation), `invalid argument` (a port that is not a physical link).
- `set-linkprop [-t] [-R root] -p prop=value[,...] LINK` (set_linkprop(), `:p:R:t`): only
  `mtu` is simulated; `link property must be specified`, `link X is not valid: object not
  found`, `dladm: warning: invalid link property 'X'` (exit 1), `dladm: warning: cannot set
  link property 'mtu' on 'LINK': ...` (exit 1) with `invalid argument` (EINVAL: outside the
  driver's range, `state.links[].mtu_min/mtu_max`, default 576..9000 as vioif takes it), `link
  busy` (EBUSY: the driver refuses while an IP interface is plumbed, as vioif_m_setprop()
  does while the device runs; an aggregation port), `operation not supported` (a VLAN: its
  MTU is its link's).
- `show-linkprop [-cP] [-o field,...] [-p prop,...] [LINK]` (do_show_linkprop(),
  `:p:cPo:`): fields `link,property,perm,value,default,possible`; `-c` is parseable.
- `show-vlan [-pP] [-o field,...] [LINK]`: `link,vid,over,flags`; `show-aggr [-pPLx] [-o
  field,...] [LINK]`: `link,policy,addrpolicy,lacpactivity,lacptimer,flags` (-L, -x, -s are
  not simulated).
Every option is parsed; `-R` (alternate root) and `-P` (persistent view) are accepted and
change nothing here (the simulated configuration is one, live and persistent alike).
"""

from __future__ import annotations

from typing import Any

from sim.standins import linkstate
from sim.standins.base import Exit, Invocation
from sim.standins.dladm import die, emit, select_fields, usage
from sim.standins.getoptlong import OptError, getopt_long

VLAN_FIELDS = {"link": 15, "vid": 8, "over": 12, "flags": 6}
AGGR_FIELDS = {"link": 15, "policy": 8, "addrpolicy": 20, "lacpactivity": 13,
               "lacptimer": 11, "flags": 7}
LINKPROP_FIELDS = {"link": 12, "property": 15, "perm": 4, "value": 14, "default": 14,
                   "possible": 19}

FORMS = {  # subcommand -> (flags, options with a value)
    "rename-link": ("", "R"),
    "create-vlan": ("tf", "Rlvp"),
    "create-aggr": ("tf", "dlLPRuTp"),
    "set-linkprop": ("t", "pR"),
    "show-linkprop": ("cP", "po"),
    "show-vlan": ("pP", "o"),
    "show-aggr": ("pPLxs", "oi"),
}
USES = {
    "rename-link": "    rename-link      <oldlink> <newlink>",
    "create-vlan": "    create-vlan      [-ft] -l <link> -v <vid> [link]",
    "create-aggr": "    create-aggr      [-t] [-P <policy>] [-L <mode>] [-T <time>] "
                   "[-u <address>]\n\t\t     -l <link> [-l <link>...] <link>",
    "set-linkprop": "    set-linkprop     [-t] -p <prop>=<value>[,...] <name>",
    "show-linkprop": "    show-linkprop    [-cP] [-o <field>,...] [-p <prop>,...] <name>",
    "show-vlan": "    show-vlan        [-pP] [-o <field>,..] [<link>]",
    "show-aggr": "    show-aggr        [-pPLx] [-o <field>,..] [-s [-i <interval>]] [<link>]",
}
POLICIES = ("L2", "L3", "L4")
LACP_MODES = ("off", "active", "passive")
LACP_TIMERS = ("short", "long")


def warn(inv: Invocation, message: str) -> None:
    """dladm.c warn(): `dladm: warning: <message>` on stderr."""
    inv.err(f"dladm: warning: {message}")


def _options(inv: Invocation, sub: str) -> tuple[list[tuple[str, Any]], list[str]]:
    flags, with_value = FORMS[sub]
    try:
        return getopt_long(inv.argv[1:], flags, with_value)
    except OptError as e:
        what = "option '-%s' requires a value" if e.missing else "unrecognized option '-%s'"
        die(inv, (what % e.letter) + f"\nusage: {USES[sub]}")
        raise


def _once(inv: Invocation, pairs: list[tuple[str, Any]], letter: str) -> Any:
    """dladm.c die_optdup(): an option that may be given once."""
    values = [v for k, v in pairs if k == letter]
    if len(values) > 1:
        die(inv, f"the option -{letter} cannot be specified more than once")
    return values[0] if values else None


def _busy(st: dict[str, Any], name: str) -> bool:
    """The kernel holds the link: an IP interface on it, or it is an aggregation port."""
    return name in st.get("interfaces", []) or linkstate.port_of(st, name) is not None


def rename_link(inv: Invocation) -> int:
    _, rest = _options(inv, "rename-link")
    if len(rest) != 2:
        usage(inv)
    st, (old, new) = inv.state, rest
    cls = linkstate.link_class(st, old)
    if cls is None:
        die(inv, "rename operation failed: object not found")
    if not linkstate.valid_linkname(new):
        die(inv, "rename operation failed: invalid link")
    if linkstate.link_class(st, new) is not None:
        die(inv, "rename operation failed: object already exists")
    if _busy(st, old):
        die(inv, "rename operation failed: link busy")
    record = linkstate.phys(st, old) or linkstate.aggr(st, old) or linkstate.vlan(st, old)
    record["link"] = new
    for tagged in st.get("vlans", []):
        if tagged["over"] == old:
            tagged["over"] = new
    return 0


def create_vlan(inv: Invocation) -> int:
    pairs, rest = _options(inv, "create-vlan")
    vid_text = _once(inv, pairs, "v")
    if vid_text is not None and (not vid_text.isdigit() or not 1 <= int(vid_text) <= 4094):
        die(inv, f"invalid VLAN identifier '{vid_text}'")
    over = _once(inv, pairs, "l")
    if vid_text is None or over is None or len(rest) > 1:
        usage(inv)
    vid, st = int(vid_text), inv.state
    if rest:
        name = rest[0]
        if len(name) >= 32:
            die(inv, f"vlan name too long '{name}'")
    else:
        driver = over.rstrip("0123456789")
        ppa = over[len(driver):]
        if not driver or not ppa or int(ppa) >= 1000:
            die(inv, f"invalid link name '{over}'")
        name = f"{driver}{vid * 1000 + int(ppa)}"
    cls = linkstate.link_class(st, over)
    if cls is None:
        die(inv, f"invalid link name '{over}'")
    if not linkstate.valid_linkname(name):
        die(inv, "create operation failed: invalid link")
    if linkstate.link_class(st, name) is not None or any(
            v["over"] == over and v["vid"] == vid for v in st.get("vlans", [])):
        die(inv, "create operation failed: object already exists")
    if cls == "vlan":
        die(inv, "create operation failed: invalid argument")
    if linkstate.port_of(st, over):
        die(inv, "create operation failed: link busy")
    st.setdefault("vlans", []).append({"link": name, "vid": vid, "over": over})
    return 0


def create_aggr(inv: Invocation) -> int:
    pairs, rest = _options(inv, "create-aggr")
    ports: list[str] = []
    modes: list[tuple[str, Any]] = []
    for letter, value in pairs:
        if letter in ("l", "d") and value[-1:].isdigit():
            ports.append(value)
        elif letter in ("l", "L"):
            modes.append(("L", value))
    policy = _once(inv, pairs, "P")
    if policy is not None and not all(p.upper() in POLICIES for p in policy.split(",")):
        die(inv, f"invalid policy '{policy}'")
    mode = _once(inv, modes, "L")
    if mode is not None and mode not in LACP_MODES:
        die(inv, f"invalid LACP mode '{mode}'")
    timer = _once(inv, pairs, "T")
    if timer is not None and timer not in LACP_TIMERS:
        die(inv, f"invalid LACP timer value '{timer}'")
    if not ports or len(rest) != 1:
        usage(inv)
    name, st = rest[0], inv.state
    if name.isdigit():
        name = f"aggr{int(name)}"
    elif len(name) >= 32:
        die(inv, f"link name too long '{name}'")
    elif not linkstate.valid_linkname(name):
        die(inv, f"invalid link name '{name}'")
    for port in ports:
        if linkstate.link_class(st, port) is None:
            die(inv, f"invalid link name '{port}': object not found")
    if linkstate.link_class(st, name) is not None:
        die(inv, "create operation failed: object already exists")
    for port in ports:
        if linkstate.link_class(st, port) != "phys":
            die(inv, "create operation failed: invalid argument")
        if _busy(st, port) or any(v["over"] == port for v in st.get("vlans", [])):
            die(inv, "create operation failed: link busy")
    st.setdefault("aggrs", []).append({
        "link": name, "ports": ports, "policy": ",".join(p.upper() for p in
                                                         (policy or "L4").split(",")),
        "lacp_mode": mode or "off", "lacp_timer": timer or "short",
        "mtu": min(linkstate.mtu_of(st, port) for port in ports)})
    return 0


def set_linkprop(inv: Invocation) -> int:
    pairs, rest = _options(inv, "set-linkprop")
    if len(rest) != 1:
        usage(inv)
    props = [item for k, v in pairs if k == "p" for item in v.split(",") if item]
    if not props:
        die(inv, "link property must be specified")
    st, link = inv.state, rest[0]
    if linkstate.link_class(st, link) is None:
        die(inv, f"link {link} is not valid: object not found")
    failed = False
    for prop in props:
        name, eq, value = prop.partition("=")
        if not eq or not value:
            warn(inv, f"no value specified for '{name}'")
            failed = True
        elif name != "mtu":
            warn(inv, f"invalid link property '{name}'")
            failed = True
        else:
            problem = _mtu_problem(st, link, value)
            if problem:
                warn(inv, f"cannot set link property 'mtu' on '{link}': {problem}")
                failed = True
            else:
                record = linkstate.phys(st, link) or linkstate.aggr(st, link)
                record["mtu"] = int(value)
    if failed:
        raise Exit(1)
    return 0


def _mtu_problem(st: dict[str, Any], link: str, value: str) -> str | None:
    if linkstate.link_class(st, link) == "vlan":
        return "operation not supported"
    low, high = linkstate.mtu_range(st, link)
    if not value.isdigit() or not low <= int(value) <= high:
        return "invalid argument"
    if int(value) != linkstate.mtu_of(st, link) and _busy(st, link):
        return "link busy"
    return None


def show_linkprop(inv: Invocation) -> int:
    pairs, rest = _options(inv, "show-linkprop")
    opts = dict(pairs)
    if len(rest) > 1:
        usage(inv)
    st = inv.state
    if rest and linkstate.link_class(st, rest[0]) is None:
        die(inv, f"link {rest[0]} is not valid: object not found")
    parseable = bool(opts.get("c"))
    if parseable and "o" not in opts:
        die(inv, "-p requires -o")
    props = [p for k, v in pairs if k == "p" for p in v.split(",") if p] or ["mtu"]
    for prop in props:
        if prop != "mtu":
            die(inv, f"show-linkprop -p {prop}: not simulated by this guest")
    fields = select_fields(inv, opts.get("o"), LINKPROP_FIELDS)
    rows = []
    for link in rest or linkstate.all_names(st):
        low, high = linkstate.mtu_range(st, link)
        vlan = linkstate.link_class(st, link) == "vlan"
        rows.append({"link": link, "property": "mtu", "perm": "r-" if vlan else "rw",
                     "value": str(linkstate.mtu_of(st, link)), "default": "1500",
                     "possible": "" if vlan else f"{low}-{high}"})
    emit(inv, rows, fields, LINKPROP_FIELDS, parseable)
    return 0


def show_vlan(inv: Invocation) -> int:
    return _show(inv, "show-vlan", VLAN_FIELDS, [
        {"link": v["link"], "vid": str(v["vid"]), "over": v["over"], "flags": "-----"}
        for v in inv.state.get("vlans", [])])


def show_aggr(inv: Invocation) -> int:
    pairs, _ = _options(inv, "show-aggr")
    for letter in ("L", "x", "s"):
        if dict(pairs).get(letter):
            die(inv, f"show-aggr -{letter}: not simulated by this guest")
    return _show(inv, "show-aggr", AGGR_FIELDS, [
        {"link": a["link"], "policy": a["policy"], "addrpolicy": "auto",
         "lacpactivity": a["lacp_mode"], "lacptimer": a["lacp_timer"], "flags": "-----"}
        for a in inv.state.get("aggrs", [])])


def _show(inv: Invocation, sub: str, widths: dict[str, int], rows: list[dict[str, str]]) -> int:
    pairs, rest = _options(inv, sub)
    opts = dict(pairs)
    if len(rest) > 1:
        usage(inv)
    parseable = bool(opts.get("p"))
    if parseable and "o" not in opts:
        die(inv, "-p requires -o")
    if rest:
        rows = [r for r in rows if r["link"] == rest[0]]
        if not rows:
            die(inv, f"link {rest[0]} is not valid: object not found")
    emit(inv, rows, select_fields(inv, opts.get("o"), widths), widths, parseable)
    return 0


COMMANDS = {"rename-link": rename_link, "create-vlan": create_vlan, "create-aggr": create_aggr,
            "set-linkprop": set_linkprop, "show-linkprop": show_linkprop,
            "show-vlan": show_vlan, "show-aggr": show_aggr}
