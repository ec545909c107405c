"""ipadm(8) stand-in: IP interfaces and addresses, the DHCP client behind them in dhcpagent.py.

Follows usr/src/cmd/cmd-inet/usr.sbin/ipadm/ipadm.c and libipadm (usr/src/lib/libipadm/
common/libipadm.c `ipadm_errors[]`, ipadm_addr.c `ipadm_create_addrobj()`,
`ipadm_set_reqhost()`, `i_ipadm_op_dhcp()`):
- subcommands from `cmds[]`; create-if, delete-if, show-if, create-addr, delete-addr and
  show-addr are simulated (others die `not simulated`). No subcommand, or an unknown one
  (`ipadm: unknown subcommand 'x'`), prints `usage()` on stderr and exits 1, not 2;
- options through getopt_long (options may follow operands): create-addr
  `:1T:a:dh:i:p:w:t`, show-addr and show-if `po:`, delete-addr `:r`, create-if `:t`; an
  unknown letter or a missing value is `die_opterr()`: `unrecognized option '-x'` /
  `option '-x' requires a value`, then `usage: <the subcommand's usage>`;
- `die()` writes `ipadm: <message>` to stderr, its newline with putchar() to stdout, and
  exits 1; libipadm statuses are worded as `ipadm_errors[]` (`Address object already
  exists`, `Interface already exists`, `Invalid argument provided`...);
- create-addr: `-T` and one `IF/NAME` operand are required (`Invalid arguments`, `invalid
  address object name`); static takes -a/-d only, dhcp -w/-1/-h, addrconf -i/-p
  (`Invalid arguments for type T`); a name libipadm refuses is `Error in creating address
  object: Invalid argument provided`; `-w` is a number >= 0 or `forever` (else `Invalid
  argument`); `-h NAME` (reqhost) must be a valid host name (`Error in setting reqhost:
  Invalid argument provided`) and is sent to the server as option 12;
- the DHCP wait: create-addr returns once dhcpagent has BOUND the lease (after duplicate
  address detection), or when `-w` runs out with `ipadm: warning: Communication with
  dhcpagent timed out` (exit 0, the object stays). `-w 0` returns at once, silently
  (i_ipadm_op_dhcp: a timeout with a zero wait is success); no `-w` waits 120 s;
- show-addr prints an address in state down, tentative, duplicate or ok (print_sa_cb's
  addr_state table) and a DHCP object without lease as `?`; `-p` needs `-o`.
`state["ipv6_ra"][link]` is the prefix a router advertises on the link (none: no IPv6
router): `-T addrconf` then also gets the SLAAC address in.ndpd would form from it.
`-p stateful=yes|no,stateless=yes|no` (ipadm.c `process_addrconf_stateargs()`: getsubopt;
a value other than yes/no is `invalid argument`, a repeated one `duplicate option`, neither
`invalid arguments for option -p`) sets the object's flags; libipadm's default for both is
yes (`ipadm_create_addrobj()`); they are kept in `state["addrconf"][addrobj]`.
`state["dhcpv6"][link]` is the address a DHCPv6 server
leases on a link whose router advertises the Managed flag: in.ndpd starts DHCPv6 only then,
and only when the object is stateful; stateless=no forms no SLAAC address. Before
a request, dhcpagent reads `PARAM_IGNORE_LIST` from /etc/default/dhcpagent (per interface
first, dhcpagent/defaults.c df_get_string()): options 3 (router) and 6 (DNS) listed there are
not applied.
Not simulated: persistence across reboots (ipmgmtd), IPMP, tunnels, properties.
"""

from __future__ import annotations

import ipaddress
import re
import sys
import time
from typing import Any

from sim.standins import linkstate
from sim.standins.base import Exit, Invocation
from sim.standins.dhcpagent import NO_LEASE, dhcp_state, next_change, release_dhcp, settle_dhcp
from sim.standins.getoptlong import OptError, getopt_long

ADDR_WIDTHS = {"addrobj": 18, "type": 9, "state": 13, "current": 8, "persistent": 11, "addr": 46}
IF_WIDTHS = {"ifname": 11, "state": 9, "current": 13, "persistent": 11}
ADDROBJ_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,31}$")   # i_ipadm_is_user_aobjname_valid
HOST_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
DEFAULT_WAIT_S = 120.0
USES = {
    "create-if": "\tcreate-if\t[-t] <interface>",
    "delete-if": "\tdelete-if\t<interface>",
    "show-if": "\tshow-if\t\t[[-p] -o <field>,...] [<interface>]\n",
    "create-addr": ("\tcreate-addr\t[-t] -T static [-d] -a{local|remote}=addr[/prefixlen]\n"
                    "\t\t\t<addrobj>\n"
                    "\tcreate-addr\t[-t] -T dhcp [-w <seconds> | forever]\n"
                    "\t\t\t[-1] [-h <hostname>] <addrobj>\n"
                    "\tcreate-addr\t[-t] -T addrconf [-i interface-id]\n"
                    "\t\t\t[-p {stateful|stateless}={yes|no}] <addrobj>"),
    "delete-addr": "\tdelete-addr\t[-r] <addrobj>",
    "show-addr": "\tshow-addr\t[[-p] -o <field>,...] [<addrobj>]\n",
}
NOT_SIMULATED = ("disable-if", "enable-if", "set-ifprop", "reset-ifprop", "show-ifprop",
                 "down-addr", "up-addr", "disable-addr", "enable-addr", "refresh-addr",
                 "set-addrprop", "reset-addrprop", "show-addrprop", "set-prop", "reset-prop",
                 "show-prop")


def die(inv: Invocation, message: str) -> None:
    """ipadm.c die(): the message on stderr, its newline via putchar() on stdout, exit 1."""
    sys.stderr.write(f"ipadm: {message}")
    sys.stdout.write("\n")
    raise Exit(1)


def usage(inv: Invocation) -> None:
    inv.err("usage:  ipadm <subcommand> <args> ...")
    for use in USES.values():
        inv.err(use)
    raise Exit(1)


def getopts(inv: Invocation, args: list[str], flags: str, with_value: str,
            sub: str) -> tuple[dict[str, Any], list[str]]:
    try:
        pairs, operands = getopt_long(args, flags, with_value)
    except OptError as e:
        what = "option '-%s' requires a value" if e.missing else "unrecognized option '-%s'"
        die(inv, (what % e.letter) + f"\nusage: {USES[sub]}")
        raise
    return dict(pairs), operands


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def valid_hostname(name: str) -> bool:
    """ipadm_is_valid_hostname(): dot-separated RFC 1123 labels, at most 255 characters."""
    labels = name.split(".")
    return 0 < len(name) <= 255 and all(HOST_LABEL.match(label) for label in labels)


def _dhcpagent_ignores(root: str, link: str) -> list[int]:
    """What dhcpagent reads from /etc/default/dhcpagent when DHCP starts on `link`:
    PARAM_IGNORE_LIST, per interface first (dhcpagent/defaults.c: df_get_string)."""
    try:
        with open(f"{root}/etc/default/dhcpagent", encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return []
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if not sep or name.startswith("#"):
            continue
        iface, dot, param = name.rpartition(".")
        if param.upper() == "PARAM_IGNORE_LIST":
            found[iface if dot else ""] = value
    chosen = found.get(link, found.get("", ""))
    return [int(c) for c in chosen.split(",") if c.strip().isdigit()]


def _wait_for_lease(inv: Invocation, link: str, wait: float | None) -> bool:
    """Block like `-w` does: until dhcpagent binds the lease or the wait runs out."""
    dhcp = dhcp_state(inv.state)
    started = time.time()
    while True:
        settle_dhcp(inv.state)
        if link in dhcp["bound"]:
            return True
        now = time.time()
        if wait is not None and now - started >= wait:
            return False
        change = next_change(inv.state, link, now)
        until = (change - now) if change is not None else 3600.0
        if wait is not None:
            until = min(until, started + wait - now)
        time.sleep(max(until, 0.01))


# ---- helpers -----------------------------------------------------------------------------
def link_names(st: dict[str, Any]) -> list[str]:
    """Every datalink an IP interface can go on: physical, aggregations, VLANs."""
    return linkstate.all_names(st)


def find_addr(st: dict[str, Any], addrobj: str) -> dict[str, Any] | None:
    return next((a for a in st.get("addresses", []) if a["addrobj"] == addrobj), None)


def link_local(st: dict[str, Any], link: str) -> str:
    """The EUI-64 link-local address in.ndpd gives `link` from its MAC."""
    mac = linkstate.mac_of(st, link) or "0:0:0:0:0:0"
    octets = [int(o, 16) for o in mac.split(":")]
    octets[0] ^= 0x02
    eui = octets[:3] + [0xFF, 0xFE] + octets[3:]
    groups = [f"{eui[i] << 8 | eui[i + 1]:x}" for i in range(0, 8, 2)]
    return str(ipaddress.ip_address("fe80::" + ":".join(groups))) + "/10"


def slaac_address(st: dict[str, Any], link: str, prefix: str) -> str:
    """The address SLAAC forms on `link` from an advertised /64 and the EUI-64 of its MAC."""
    interface_id = int(ipaddress.ip_interface(link_local(st, link)).ip) & ((1 << 64) - 1)
    network = ipaddress.ip_network(prefix, strict=False)
    return f"{ipaddress.ip_address(int(network.network_address) | interface_id)}/{network.prefixlen}"


def select_fields(inv: Invocation, spec: str | None, known: dict[str, int],
                  default: list[str]) -> list[str]:
    if spec is None:
        return default
    names = [n.strip().lower() for n in spec.split(",")]
    if names == ["all"]:
        return list(known)
    for name in names:
        if name not in known:
            die(inv, f"ofmt: unknown field '{name}'")
    return names


def emit(inv: Invocation, rows: list[dict[str, str]], fields: list[str],
         widths: dict[str, int], parseable: bool) -> None:
    if parseable:
        for row in rows:
            inv.out(":".join(escape(row[f]) for f in fields))
        return
    inv.out(" ".join(f.upper().ljust(widths[f]) for f in fields).rstrip())
    for row in rows:
        inv.out(" ".join(row[f].ljust(widths[f]) for f in fields).rstrip())


# ---- subcommands -------------------------------------------------------------------------
def create_if(inv: Invocation, args: list[str]) -> int:
    _, rest = getopts(inv, args, "t", "", "create-if")
    if len(rest) != 1:
        die(inv, f"Usage: {USES['create-if']}")
    ifname = rest[0]
    if ifname in inv.state.setdefault("interfaces", []):
        die(inv, f"Could not create {ifname} : Interface already exists")
    if ifname not in link_names(inv.state):
        die(inv, f"Could not create {ifname} : Interface does not exist")
    inv.state["interfaces"].append(ifname)
    return 0


def delete_if(inv: Invocation, args: list[str]) -> int:
    if len(args) != 1:
        die(inv, f"Usage: {USES['delete-if']}")
    ifname = args[0]
    if ifname not in inv.state.get("interfaces", []):
        die(inv, f"Could not delete {ifname}: Interface does not exist")
    inv.state["interfaces"].remove(ifname)
    inv.state["addresses"] = [a for a in inv.state.get("addresses", [])
                              if a["addrobj"].split("/")[0] != ifname]
    release_dhcp(inv.state, ifname)
    return 0


def _show_options(inv: Invocation, args: list[str], sub: str, widths: dict,
                  default_fields: list[str]) -> tuple[list[str], list[str], bool]:
    """`[-p] [-o field,...] [operand]`, shared by show-if and show-addr."""
    opts, rest = getopts(inv, args, "p", "o", sub)
    parseable = bool(opts.get("p"))
    if parseable and "o" not in opts:
        die(inv, "-p requires -o")
    if len(rest) > 1:
        die(inv, f"Usage: {USES[sub]}")
    return rest, select_fields(inv, opts.get("o"), widths, default_fields), parseable


def show_if(inv: Invocation, args: list[str]) -> int:
    rest, fields, parseable = _show_options(inv, args, "show-if", IF_WIDTHS, list(IF_WIDTHS))
    names = inv.state.get("interfaces", [])
    if rest:
        if rest[0] not in names:
            die(inv, "Could not get interface(s): Interface does not exist")
        names = [rest[0]]
    rows = [{"ifname": n, "state": "ok",
             "current": ("-m-v------46" if n.startswith("lo") else "bm--------46"),
             "persistent": "-46"} for n in names]
    emit(inv, rows, fields, IF_WIDTHS, parseable)
    return 0


def show_addr(inv: Invocation, args: list[str]) -> int:
    rest, fields, parseable = _show_options(inv, args, "show-addr", ADDR_WIDTHS,
                                            ["addrobj", "type", "state", "addr"])
    settle_dhcp(inv.state)
    addrs = inv.state.get("addresses", [])
    if rest:
        target = rest[0]
        if "/" not in target:
            die(inv, "Invalid address object name provided")
        ifname, _, name = target.partition("/")
        if name:
            addrs = [a for a in addrs if a["addrobj"] == target]
            if not addrs:
                die(inv, "Address object not found")
        else:
            if ifname not in inv.state.get("interfaces", []):
                die(inv, "Could not get address: Interface does not exist")
            addrs = [a for a in addrs if a["addrobj"].split("/")[0] == ifname]
    rows = [{"addrobj": a["addrobj"], "type": a["type"], "state": a["state"],
             "current": "U----" if a["state"] in ("ok", "tentative", "duplicate") else "-----",
             "persistent": "U--", "addr": a["addr"]} for a in addrs]
    emit(inv, rows, fields, ADDR_WIDTHS, parseable)
    return 0


def _check_create_args(inv: Invocation, opts: dict[str, Any], rest: list[str]) -> str:
    """ipadm.c do_create_addr(): the argument checks, in its order; returns the type."""
    use = USES["create-addr"]
    kind = opts.get("T")
    if kind is None or len(rest) != 1:
        die(inv, f"Invalid arguments\nusage: {use}")
    _, slash, name = rest[0].partition("/")
    if not slash or not name:
        die(inv, f"invalid address object name: {rest[0]}\nusage: {use}")
    static_opts, auto_opts = set(opts) & set("ad"), set(opts) & set("ip")
    if kind == "static":
        if "a" not in opts or auto_opts or "w" in opts or "h" in opts or "1" in opts:
            die(inv, f"Invalid arguments for type {kind}\nusage: {use}")
    elif kind == "dhcp":
        if auto_opts or static_opts:
            die(inv, f"Invalid arguments for type {kind}\nusage: {use}")
    elif kind == "addrconf":
        if "w" in opts or static_opts or "h" in opts or "1" in opts:
            die(inv, f"Invalid arguments for type {kind}\nusage: {use}")
    else:
        die(inv, f"Invalid address type {kind}")
    ifname = rest[0].split("/")[0]
    if not ifname or not ADDROBJ_NAME.match(name):
        die(inv, "Error in creating address object: Invalid argument provided")
    return kind


def _addrconf_states(inv: Invocation, spec: str | None) -> tuple[bool, bool]:
    """(stateless, stateful) from `-p`, as process_addrconf_stateargs() reads it."""
    values = {"stateless": True, "stateful": True}
    if spec is None:
        return True, True
    seen: set[str] = set()
    for item in spec.split(","):
        name, _, value = item.partition("=")
        if name not in values:
            die(inv, f"unrecognized option '-p'\nusage: {USES['create-addr']}")
        if name in seen:
            die(inv, "duplicate option")
        if value not in ("yes", "no"):
            die(inv, "invalid argument")
        seen.add(name)
        values[name] = value == "yes"
    if not seen:
        die(inv, "invalid arguments for option -p")
    return values["stateless"], values["stateful"]


def _parse_wait(inv: Invocation, wait: str | None) -> float | None:
    if wait is None:
        return DEFAULT_WAIT_S
    if wait == "forever":
        return None
    digits = wait[1:] if wait[:1] in "+-" else wait
    if not digits.isdigit() or int(wait) < 0:   # strtol() with the whole string used, >= 0
        die(inv, "Invalid argument")
    return float(int(wait))


def create_addr(inv: Invocation, args: list[str]) -> int:
    opts, rest = getopts(inv, args, "1dt", "Tahipw", "create-addr")
    kind = _check_create_args(inv, opts, rest)
    addrobj = rest[0]
    ifname = addrobj.split("/")[0]
    wait = _parse_wait(inv, opts.get("w")) if kind == "dhcp" else None
    reqhost = opts.get("h")
    if reqhost is not None and not valid_hostname(reqhost):
        die(inv, "Error in setting reqhost: Invalid argument provided")
    st = inv.state
    if kind == "static":
        value = opts["a"][len("local="):] if opts["a"].startswith("local=") else opts["a"]
        try:
            iface = ipaddress.ip_interface(value)
        except ValueError:
            die(inv, "Error in setting local address: Invalid address")
            raise
    if find_addr(st, addrobj) is not None:
        die(inv, "Could not create address: Address object already exists")
    if ifname not in st.setdefault("interfaces", []):
        if ifname not in link_names(st):
            die(inv, "Could not create address: Interface does not exist")
        st["interfaces"].append(ifname)  # libipadm plumbs a missing interface itself
    addresses = st.setdefault("addresses", [])
    if kind == "static":
        shown = iface.with_prefixlen if "/" in value else str(iface.ip)
        addresses.append({"addrobj": addrobj, "type": "static",
                          "state": "down" if opts.get("d") else "ok", "addr": shown})
        return 0
    if kind == "addrconf":
        stateless, stateful = _addrconf_states(inv, opts.get("p"))
        if any(a["type"] == "addrconf" and a["addrobj"].split("/")[0] == ifname for a in addresses):
            die(inv, "Could not create address: Addrconf already in progress")
        addresses.append({"addrobj": addrobj, "type": "addrconf", "state": "ok",
                          "addr": link_local(st, ifname)})
        st.setdefault("addrconf", {})[addrobj] = {"stateless": stateless, "stateful": stateful}
        leased = (st.get("dhcpv6") or {}).get(ifname)
        if leased and stateful:
            # The router's Managed flag: in.ndpd hands the interface to dhcpagent -6.
            addresses.append({"addrobj": addrobj, "type": "addrconf", "state": "ok",
                              "addr": f"{ipaddress.ip_address(leased)}/128"})
        prefix = (st.get("ipv6_ra") or {}).get(ifname)
        if prefix and stateless:
            # A router advertising `prefix` on the link: in.ndpd adds the stateless
            # (SLAAC) address, listed under the same address object as the link-local one.
            addresses.append({"addrobj": addrobj, "type": "addrconf", "state": "ok",
                              "addr": slaac_address(st, ifname, prefix)})
        return 0
    addresses.append({"addrobj": addrobj, "type": "dhcp", "state": "down", "addr": NO_LEASE})
    dhcp = dhcp_state(st)
    dhcp["requested"][ifname] = time.time()
    dhcp["reqhost"][ifname] = reqhost
    dhcp.setdefault("ignore", {})[ifname] = _dhcpagent_ignores(inv.root, ifname)
    if opts.get("1"):
        dhcp["primary"] = ifname
    if wait == 0:
        settle_dhcp(st)
        return 0  # i_ipadm_op_dhcp(): a timed-out request with a zero wait is success
    if not _wait_for_lease(inv, ifname, wait):
        inv.err("ipadm: warning: Communication with dhcpagent timed out")
    return 0


def delete_addr(inv: Invocation, args: list[str]) -> int:
    _, rest = getopts(inv, args, "r", "", "delete-addr")
    if len(rest) != 1:
        die(inv, f"Usage: {USES['delete-addr']}")
    addr = find_addr(inv.state, rest[0])
    if addr is None:
        die(inv, "could not delete address: Object not found")
        raise Exit(1)
    inv.state["addresses"] = [a for a in inv.state["addresses"] if a["addrobj"] != rest[0]]
    inv.state.get("addrconf", {}).pop(rest[0], None)
    if addr["type"] == "dhcp":
        release_dhcp(inv.state, rest[0].split("/")[0])
    return 0


SUBCOMMANDS = {
    "create-if": create_if, "create-ip": create_if, "delete-if": delete_if,
    "delete-ip": delete_if, "show-if": show_if, "show-addr": show_addr,
    "create-addr": create_addr, "delete-addr": delete_addr,
}


def main(inv: Invocation) -> int:
    if not inv.argv:
        usage(inv)
    sub = inv.argv[0]
    if sub in NOT_SIMULATED:
        die(inv, f"{sub}: not simulated by this guest")
    handler = SUBCOMMANDS.get(sub)
    if handler is None:
        inv.err(f"ipadm: unknown subcommand '{sub}'")
        usage(inv)
    return handler(inv, inv.argv[1:])
