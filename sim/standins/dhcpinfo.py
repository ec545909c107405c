"""dhcpinfo(1) stand-in: print a value of the DHCP lease bound on an interface.

Follows usr/src/cmd/cmd-inet/sbin/dhcpinfo/dhcpinfo.c `main()`: getopt(3C) `ci:n:v:`, one
operand, a code or an identifier (dhcp_inittab(5)); known here: Subnet (1), Router (3),
DNSserv (6), Hostname (12), DNSdmain (15), Broadcst (28), LeaseTim (51). IP lists print one
address per line (granularity 1); `-n` limits the lines. Exit codes (dhcpagent_ipc.h):
0 success (an option the lease lacks prints nothing and still exits 0), 2 failure, with
dhcp_ipc_strerror()'s words on stderr (libdhcpagent/common/dhcpagent_ipc.c): `interface is
not under DHCP control` (DHCP_IPC_E_UNKIF) for a link with no request, `interface not in
appropriate state for command` (DHCP_IPC_E_OUTSTATE) while the request is unanswered, in
duplicate address detection or declined as a duplicate (dhcpagent has bound nothing);
3 bad arguments (usage, `unknown identifier `X'`, `unknown code `N'`).
Codes beyond those are looked up as dhcpinfo.c does (inittab_getbycode() over the STANDARD
and SITE categories, inittab_getbyname() for an identifier) in the guest's /etc/dhcp/inittab
(dhcp_inittab(5): `name category, code, type, granularity, maximum, consumers`): a SITE
entry of type IP with the `i` consumer makes its code and name known (Azure images add
one for option 245, the wireserver's address), and its value is the lease's
`options[code]`. Not simulated: `-c` (canonical octets), DHCPv6 (`-v 6`): both are bad arguments here; the
messages start with `dhcpinfo:` where the real one prints its argv[0] as invoked.
"""

from __future__ import annotations

import ipaddress

from sim.standins.base import BadOption, Exit, Invocation, posix_getopt
from sim.standins.dhcpagent import as_list, dhcp_state, settle_dhcp

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


def site_entries(inv: Invocation) -> dict[str, int]:
    """name -> code of the guest's /etc/dhcp/inittab SITE entries of type IP for dhcpinfo."""
    import os

    found: dict[str, int] = {}
    try:
        with open(os.path.join(inv.root, "etc", "dhcp", "inittab"), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return found
    for line in lines:
        parts = line.split(None, 1)
        if len(parts) != 2 or parts[0].startswith("#"):
            continue
        name, fields = parts[0], [x.strip() for x in parts[1].split(",")]
        if len(fields) != 6:
            continue
        if fields[0] == "SITE" and fields[1].isdigit() and fields[2] == "IP" and "i" in fields[5]:
            found[name] = int(fields[1])
    return found


def main(inv: Invocation) -> int:
    try:
        pairs, rest = posix_getopt(list(inv.argv), "c", "inv")
    except BadOption:
        bad_args(inv)
        raise
    opts = dict(pairs)
    if "v" in opts and opts["v"] not in ("4", "6"):
        bad_args(inv)
    if "c" in opts or opts.get("v", "4") != "4":
        bad_args(inv, "only DHCPv4 values in their native format are simulated")
    if len(rest) != 1:
        bad_args(inv)
    wanted = rest[0]
    site = site_entries(inv)
    site_codes = {code: name for name, code in site.items()}
    code = 0
    if wanted in site or (wanted.isdigit() and int(wanted) in site_codes):
        name = wanted if wanted in site else site_codes[int(wanted)]
        code = site[name]
    elif wanted[:1].isalpha():
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
        limit = int(opts["n"]) if opts["n"].isdigit() else 0   # strtoul(): junk is 0
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
    lines = as_list((lease.get("options") or {}).get(str(code))) if name in site \
        else values(lease, name)
    if limit:
        lines = lines[:limit]
    if lines:
        inv.out("\n".join(lines))
    return 0
