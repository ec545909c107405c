"""ipadm(8) stand-in: IP interfaces and addresses, and the DHCP client behind them.

Documented forms accepted (illumos ipadm(8), usr/src/man/man8/ipadm.8):
  ipadm create-if|create-ip [-t] interface        ipadm delete-if|delete-ip interface
  ipadm show-if [[-p] -o field[,...]] [interface]
  ipadm create-addr [-t] -T static [-d] -a [local=]addr[/prefixlen] addrobj
  ipadm create-addr [-t] -T dhcp [-1] [-h hostname] [-w seconds|forever] addrobj
  ipadm create-addr [-t] -T addrconf [-i interface-id] [-p {stateful|stateless}={yes|no}] addrobj
  ipadm delete-addr [-r] addrobj
  ipadm show-addr [[-p] -o field[,...]] [addrobj | interface/]
  ipadm (no arguments: as show-addr)

Messages and exit codes follow ipadm.c and libipadm's status strings: `die()` prints
`ipadm: ...` and exits 1 (e.g. `ipadm: Could not create address: Address object already
exists`); `create-addr` on a missing interface creates it first (libipadm does); a DHCP wait
that runs out is only a warning (`ipadm: warning: Communication with dhcpagent timed out`,
exit 0) and leaves the address object without a lease, which show-addr prints as `?`.

The DHCP server's behaviour is `state["dhcp"]`: `mode` answer (a lease at once), delay (a
lease `delay_s` seconds after the request) or never; `leases[link]` overrides the lease a
link gets, otherwise a QEMU user-net style one is derived from the link's position
(10.0.2.15/24, router 10.0.2.2, DNS 10.0.2.3 for the first link, 10.0.3.x for the second...).
A `-w` wait really waits (this is the simulated kernel, not a test sleep). Bookkeeping of
requests and bound leases lives in `state["dhcp"]["requested"|"bound"]`, so the address
records themselves stay plain `{addrobj, type, state, addr}`. A bound lease installs its
router as the default route, as dhcpagent does. `state["ipv6_ra"][link]` is the prefix a
router advertises on the link (none: no IPv6 router): `-T addrconf` then also gets the SLAAC
address in.ndpd would form from it.
"""

from __future__ import annotations

import ipaddress
import re
import time
from typing import Any

from sim.standins.base import Exit, Invocation, parse_opts

ADDR_WIDTHS = {"addrobj": 18, "type": 9, "state": 13, "current": 8, "persistent": 11, "addr": 46}
IF_WIDTHS = {"ifname": 11, "state": 9, "current": 13, "persistent": 11}
ADDROBJ_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,31}$")
NO_LEASE = "?"


def die(inv: Invocation, message: str) -> None:
    inv.fail(f"ipadm: {message}")


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


# ---- the simulated DHCP server and dhcpagent --------------------------------------------
def dhcp_state(st: dict[str, Any]) -> dict[str, Any]:
    dhcp = st.setdefault("dhcp", {})
    dhcp.setdefault("mode", "answer")
    dhcp.setdefault("delay_s", 0.0)
    dhcp.setdefault("leases", {})
    dhcp.setdefault("requested", {})
    dhcp.setdefault("bound", {})
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


def _bind(st: dict[str, Any], link: str) -> None:
    dhcp = dhcp_state(st)
    lease = dict(dhcp["leases"].get(link) or default_lease(st, link))
    ignored = (dhcp.get("ignore") or {}).get(link) or []
    if 3 in ignored:    # option 3, Router: not applied, not reported by dhcpinfo
        lease["router"] = None
    if 6 in ignored:    # option 6, DNS servers
        lease["dns"] = []
    dhcp["bound"][link] = lease
    dhcp["requested"].pop(link, None)
    for addr in st.get("addresses", []):
        if addr["type"] == "dhcp" and addr["addrobj"].split("/")[0] == link:
            addr.update(state="ok", addr=lease["address"])
    routes = st.setdefault("routes", [])
    for router in as_list(lease.get("router"))[:1]:
        route = {"destination": "default", "gateway": router}
        if route not in routes:
            routes.append(route)


def settle_dhcp(st: dict[str, Any], now: float | None = None) -> None:
    """Bind every requested lease whose server has answered by `now`."""
    dhcp = dhcp_state(st)
    now = time.time() if now is None else now
    for link, requested_at in list(dhcp["requested"].items()):
        if dhcp["mode"] == "answer" or (
                dhcp["mode"] == "delay" and now >= requested_at + float(dhcp["delay_s"])):
            _bind(st, link)


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


def _wait_for_lease(inv: Invocation, link: str, wait: str) -> bool:
    """Block like `-w` does: until the lease is bound or the wait runs out."""
    dhcp = dhcp_state(inv.state)
    limit = None if wait == "forever" else float(wait)
    started = time.time()
    while True:
        settle_dhcp(inv.state)
        if link in dhcp["bound"]:
            return True
        waited = time.time() - started
        if limit is not None and waited >= limit:
            return False
        if dhcp["mode"] == "delay":
            until_answer = dhcp["requested"][link] + float(dhcp["delay_s"]) - time.time()
        else:
            until_answer = 3600.0
        step = max(0.0, until_answer) if limit is None else min(max(0.0, until_answer),
                                                                limit - waited)
        time.sleep(max(step, 0.01))


# ---- helpers -----------------------------------------------------------------------------
def link_names(st: dict[str, Any]) -> list[str]:
    return [lk["link"] for lk in st.get("links", [])]


def find_addr(st: dict[str, Any], addrobj: str) -> dict[str, Any] | None:
    return next((a for a in st.get("addresses", []) if a["addrobj"] == addrobj), None)


def link_local(st: dict[str, Any], link: str) -> str:
    """The EUI-64 link-local address in.ndpd gives `link` from its MAC."""
    mac = next((lk["mac"] for lk in st.get("links", []) if lk["link"] == link), "0:0:0:0:0:0")
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
    _, rest = parse_opts(inv, args, "t", "")
    if len(rest) != 1:
        inv.usage("create-if takes one interface")
    ifname = rest[0]
    if ifname in inv.state.setdefault("interfaces", []):
        die(inv, f"Could not create {ifname} : Interface already exists")
    if ifname not in link_names(inv.state):
        die(inv, f"Could not create {ifname} : Interface does not exist")
    inv.state["interfaces"].append(ifname)
    return 0


def delete_if(inv: Invocation, args: list[str]) -> int:
    if len(args) != 1 or args[0].startswith("-"):
        inv.usage("delete-if takes one interface")
    ifname = args[0]
    if ifname not in inv.state.get("interfaces", []):
        die(inv, f"Could not delete {ifname}: Interface does not exist")
    inv.state["interfaces"].remove(ifname)
    inv.state["addresses"] = [a for a in inv.state.get("addresses", [])
                              if a["addrobj"].split("/")[0] != ifname]
    release_dhcp(inv.state, ifname)
    return 0


def _show_options(inv: Invocation, args: list[str], sub: str, operand: str,
                  widths: dict, default_fields: list[str]) -> tuple[list[str], list[str], bool]:
    """`[-p] [-o field,...] [operand]`, shared by show-if and show-addr (ipadm(8))."""
    opts, rest = parse_opts(inv, args, "p", "o")
    if len(rest) > 1:
        inv.usage(f"{sub} takes at most one {operand}")
    parseable = bool(opts.get("p"))
    if parseable and "o" not in opts:
        die(inv, "-p requires -o")
    return rest, select_fields(inv, opts.get("o"), widths, default_fields), parseable


def show_if(inv: Invocation, args: list[str]) -> int:
    rest, fields, parseable = _show_options(inv, args, "show-if", "interface", IF_WIDTHS,
                                            list(IF_WIDTHS))
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
    rest, fields, parseable = _show_options(inv, args, "show-addr", "address object",
                                            ADDR_WIDTHS, ["addrobj", "type", "state", "addr"])
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
             "current": "U----" if a["state"] == "ok" else "-----", "persistent": "U--",
             "addr": a["addr"]} for a in addrs]
    emit(inv, rows, fields, ADDR_WIDTHS, parseable)
    return 0


def create_addr(inv: Invocation, args: list[str]) -> int:
    opts, rest = parse_opts(inv, args, "t1d", "Tawhip")
    if len(rest) != 1:
        inv.usage("create-addr takes one address object")
    kind = opts.get("T")
    allowed = {"static": set("tTda"), "dhcp": set("tT1hw"), "addrconf": set("tTip")}
    if kind not in allowed:
        die(inv, f"Invalid address type {kind}" if kind else "-T is required")
    extra = set(opts) - allowed[kind]
    if extra:
        die(inv, f"invalid arguments for type {kind}")
    addrobj = rest[0]
    ifname, _, name = addrobj.partition("/")
    if not ifname or not ADDROBJ_NAME.match(name):
        die(inv, "Could not create address: Invalid argument provided")
    st = inv.state
    if find_addr(st, addrobj) is not None:
        die(inv, "Could not create address: Address object already exists")
    if ifname not in st.setdefault("interfaces", []):
        if ifname not in link_names(st):
            die(inv, "Could not create address: Interface does not exist")
        st["interfaces"].append(ifname)  # libipadm plumbs a missing interface itself
    addresses = st.setdefault("addresses", [])
    if kind == "static":
        if "a" not in opts:
            die(inv, "Could not create address: Invalid argument provided")
        value = opts["a"][len("local="):] if opts["a"].startswith("local=") else opts["a"]
        try:
            iface = ipaddress.ip_interface(value)
        except ValueError:
            die(inv, "Could not create address: Invalid address")
            raise
        shown = iface.with_prefixlen if "/" in value else str(iface.ip)
        addresses.append({"addrobj": addrobj, "type": "static",
                          "state": "down" if opts.get("d") else "ok", "addr": shown})
        return 0
    if kind == "addrconf":
        if any(a["type"] == "addrconf" and a["addrobj"].split("/")[0] == ifname for a in addresses):
            die(inv, "Could not create address: Addrconf already in progress")
        addresses.append({"addrobj": addrobj, "type": "addrconf", "state": "ok",
                          "addr": link_local(st, ifname)})
        prefix = (st.get("ipv6_ra") or {}).get(ifname)
        if prefix:
            # A router advertising `prefix` on the link: in.ndpd adds the stateless
            # (SLAAC) address, listed under the same address object as the link-local one.
            addresses.append({"addrobj": addrobj, "type": "addrconf", "state": "ok",
                              "addr": slaac_address(st, ifname, prefix)})
        return 0
    wait = opts.get("w", "120")
    if wait != "forever" and not (wait.isdigit() and int(wait) > 0):
        die(inv, f"Invalid argument for -w: {wait}")
    addresses.append({"addrobj": addrobj, "type": "dhcp", "state": "down", "addr": NO_LEASE})
    dhcp = dhcp_state(st)
    dhcp["requested"][ifname] = time.time()
    dhcp.setdefault("ignore", {})[ifname] = _dhcpagent_ignores(inv.root, ifname)
    if opts.get("1"):
        dhcp["primary"] = ifname
    if not _wait_for_lease(inv, ifname, wait):
        inv.err("ipadm: warning: Communication with dhcpagent timed out")
    return 0


def delete_addr(inv: Invocation, args: list[str]) -> int:
    _, rest = parse_opts(inv, args, "r", "")
    if len(rest) != 1:
        inv.usage("delete-addr takes one address object")
    addr = find_addr(inv.state, rest[0])
    if addr is None:
        die(inv, "could not delete address: Object not found")
        raise Exit(1)
    inv.state["addresses"].remove(addr)
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
        return show_addr(inv, [])
    handler = SUBCOMMANDS.get(inv.argv[0])
    if handler is None:
        inv.usage(f"unknown subcommand '{inv.argv[0]}'")
    return handler(inv, inv.argv[1:])
