"""dhcpinfo(1) stand-in: print a value of the DHCP lease bound on an interface.

Documented forms (illumos dhcpinfo(1), usr/src/man/man1/dhcpinfo.1):
  dhcpinfo [-c] [-i interface] [-n limit] [-v 4|6] code|identifier
Identifiers known here (dhcp_inittab(5)): Subnet (1), Router (3), DNSserv (6), Hostname (12),
DNSdmain (15), Broadcst (28), LeaseTim (51). IP lists print one address per line (their
granularity is 1); `-n` limits the lines. Exit status as documented: 0 success (an option
the lease lacks prints nothing and still exits 0), 2 failure (`dhcpinfo: interface is not
under DHCP control`, or the lease not bound yet), 3 bad arguments. `-c` (canonical octets)
and DHCPv6 are not simulated (bad arguments here).
"""

from __future__ import annotations

import ipaddress

from sim.standins.base import Exit, Invocation, parse_opts
from sim.standins.ipadm import as_list, dhcp_state, settle_dhcp

IDENTIFIERS = {"Subnet": 1, "Router": 3, "DNSserv": 6, "Hostname": 12, "DNSdmain": 15,
               "Broadcst": 28, "LeaseTim": 51}
BY_CODE = {code: name for name, code in IDENTIFIERS.items()}
EXIT_FAILURE, EXIT_BADARGS = 2, 3


def bad_args(inv: Invocation, message: str = "") -> None:
    if message:
        inv.err(f"dhcpinfo: {message}")
    inv.err("usage: dhcpinfo [-c] [-i interface] [-n limit] [-v {4|6}] code\n"
            "       dhcpinfo [-c] [-i interface] [-n limit] [-v {4|6}] identifier")
    raise Exit(EXIT_BADARGS)


def values(lease: dict, name: str) -> list[str]:
    network = ipaddress.ip_interface(lease["address"]).network
    if name == "Subnet":
        return [str(network.netmask)]
    if name == "Router":
        return as_list(lease.get("router"))
    if name == "DNSserv":
        return as_list(lease.get("dns"))
    if name == "Hostname":
        return as_list(lease.get("hostname"))
    if name == "DNSdmain":
        return as_list(lease.get("domain"))
    if name == "Broadcst":
        return [str(network.broadcast_address)]
    return [str(lease.get("lease_s", 86400))]


def main(inv: Invocation) -> int:
    opts, rest = parse_opts(inv, inv.argv, "", "invc")
    if "c" in opts or opts.get("v", "4") != "4":
        bad_args(inv, "only DHCPv4 values in their native format are simulated")
    if len(rest) != 1:
        bad_args(inv)
    wanted = rest[0]
    if wanted[:1].isalpha():
        if wanted not in IDENTIFIERS:
            inv.err(f"dhcpinfo: unknown identifier `{wanted}'")
            raise Exit(EXIT_BADARGS)
        name = wanted
    else:
        if not wanted.isdigit() or int(wanted) not in BY_CODE:
            inv.err(f"dhcpinfo: unknown code `{wanted}'")
            raise Exit(EXIT_BADARGS)
        name = BY_CODE[int(wanted)]
    limit = None
    if "n" in opts:
        if not opts["n"].isdigit():
            bad_args(inv)
        limit = int(opts["n"])
    settle_dhcp(inv.state)
    dhcp = dhcp_state(inv.state)
    link = opts.get("i") or dhcp.get("primary") or next(iter(sorted(dhcp["bound"])), "")
    if link in dhcp["requested"]:
        inv.err("dhcpinfo: interface not in appropriate state for command")
        raise Exit(EXIT_FAILURE)
    lease = dhcp["bound"].get(link)
    if lease is None:
        inv.err("dhcpinfo: interface is not under DHCP control")
        raise Exit(EXIT_FAILURE)
    lines = values(lease, name)
    if limit is not None:
        lines = lines[:limit]
    if lines:
        inv.out("\n".join(lines))
    return 0
