"""vmware-rpctool stand-in (open-vm-tools): sends one RPC to the VMX and prints its reply.

Form accepted (open-vm-tools rpctool/rpctool.c, `vmware-rpctool <command>`): exactly one
argument, the RPC string. Served: `info-get guestinfo.KEY` (prints the value and a newline,
exit 0; a key the VM does not have replies `No value found` on stderr, exit 1) and
`info-set guestinfo.KEY VALUE`. Any other RPC is refused the way the VMX refuses it
(`Unknown command`, exit 1). The guestinfo values live in `state["guestinfo"]`, keyed by
their full name (`guestinfo.metadata`), as the VM's .vmx file holds them.
The dispatcher imports this module as `vmware_rpctool` (a module name cannot hold `-`).
Standard library only: this runs under `python -S`.
"""

from __future__ import annotations

from sim.standins.base import Invocation


def main(inv: Invocation) -> int:
    if len(inv.argv) != 1:
        inv.err("Usage: vmware-rpctool <command>")
        return 1
    verb, _, rest = inv.argv[0].partition(" ")
    guestinfo = inv.state.setdefault("guestinfo", {})
    if verb == "info-get":
        key = rest.strip()
        if not key.startswith("guestinfo.") or key not in guestinfo:
            inv.fail("No value found")
        inv.out(guestinfo[key])
        return 0
    if verb == "info-set":
        key, _, value = rest.strip().partition(" ")
        if not key.startswith("guestinfo."):
            inv.fail("Unknown command")
        guestinfo[key] = value
        return 0
    inv.fail("Unknown command")
