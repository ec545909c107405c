"""prtconf(8) stand-in: `prtconf -m` (the amount of memory in megabytes, alone on a line)
and plain `prtconf` (its header lines only). Other documented options print device-tree
detail the simulation does not model, and are refused."""

from __future__ import annotations

from sim.standins.base import Invocation, parse_opts


def main(inv: Invocation) -> int:
    opts, rest = parse_opts(inv, inv.argv, "m", "")
    if rest:
        inv.usage("device paths are not simulated")
    memory_mb = int(inv.state.get("memory_mb", 2048))
    if opts.get("m"):
        inv.out(str(memory_mb))
        return 0
    inv.out("System Configuration:  illumos  i86pc")
    inv.out(f"Memory size: {memory_mb} Megabytes")
    inv.out("System Peripherals (Software Nodes):")
    inv.out("")
    inv.out("i86pc")
    return 0
