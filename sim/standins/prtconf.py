"""prtconf(8) stand-in: `prtconf -m` and plain `prtconf` (its header lines only).

After illumos-gate usr/src/cmd/prtconf/prtconf.c main(): `-m` prints the memory size alone,
`%ld` megabytes rounded up, exit 0; without it, `System Configuration:  %s  %s` (the
hardware provider, `Unknown Hardware Vendor` on x86 where sysinfo(SI_HW_PROVIDER) is
empty, and the machine class), `Memory size: %ld Megabytes`, then `System Peripherals
(Software Nodes):` and the device tree. An option prtconf does not have prints the usage on
standard error and exits 1; a device path that does not exist: `prtconf: invalid path
specified`, exit 1. Not modelled: the device tree itself (its root node only), the other
options (they print device-tree detail), the exact usage text.
"""

from __future__ import annotations

import os

from sim.standins.base import BadOption, Exit, Invocation, posix_getopt

USAGE = "usage: prtconf [-V] | [-F] | [-x] | [-bpPv] [-acdDm] [<device_path>]"


def main(inv: Invocation) -> int:
    try:
        pairs, rest = posix_getopt(inv.argv, "abcdDFmpPvVx", "")
    except BadOption as e:
        inv.err(f"prtconf: illegal option -- {e.args[0]}")
        inv.err(USAGE)
        raise Exit(1) from None
    opts = dict(pairs)
    if rest:
        if not os.path.exists(os.path.join(inv.root, rest[0].lstrip("/"))):
            inv.fail("prtconf: invalid path specified")
        inv.fail("prtconf: device paths are not simulated")
    if set(opts) - {"m"}:
        inv.fail(f"prtconf: -{''.join(sorted(set(opts) - {'m'}))} is not simulated")
    memory_mb = int(inv.state.get("memory_mb", 2048))
    if opts.get("m"):
        inv.out(str(memory_mb))
        return 0
    inv.out("System Configuration:  Unknown Hardware Vendor  i86pc")
    inv.out(f"Memory size: {memory_mb} Megabytes")
    inv.out("System Peripherals (Software Nodes):")
    inv.out("")
    inv.out("i86pc")
    return 0
