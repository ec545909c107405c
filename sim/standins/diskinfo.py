"""diskinfo(8) stand-in: `diskinfo [-Hp]`, the default (type, disk, vid, pid, size, rmv, ssd)
view of every disk, after illumos-gate usr/src/cmd/diskinfo/diskinfo.c main() and
enumerate_disks():
- getopt `:cHPp`; an unknown option: usage() and `unknown option -X` on stderr, exit 1;
- without -H the header `TYPE    DISK                    VID      PID              SIZE
           RMV SSD`; each disk `%-7s %-22s  %-8s %-16s %-13s %-3s %-3s` with the size as
  `%7.2f GiB`, or with -H tab-separated; -p prints the size in bytes (`%llu`);
- the DISK column is the cXtYdZ name, the slice stripped; RMV and SSD `yes`/`no`
  (display_tristate()); TYPE the controller type upper-cased, `-` when libdiskmgt has none.
Fixed media only (the DM_DT_FIXED filter of enumerate_disks()): no CD-ROM drive is listed. Not modelled: `-c`
(condensed) and `-P` (physical: chassis, slot, fault LEDs), serial numbers.
"""

from __future__ import annotations

from sim.standins.base import BadOption, Exit, Invocation, posix_getopt

HEADER = "TYPE    DISK                    VID      PID              SIZE          RMV SSD"
# usage(execname) prints argv[0] as invoked: the agent runs /usr/bin/diskinfo by its path.
USAGE = "Usage: /usr/bin/diskinfo [-Hp] [{-c|-P}]"


def main(inv: Invocation) -> int:
    try:
        pairs, _rest = posix_getopt(inv.argv, "cHPp", "")
    except BadOption as e:
        inv.err(USAGE)
        inv.err(f"diskinfo: unknown option -{e.args[0]}")
        raise Exit(1) from None
    opts = {k for k, _ in pairs}
    if opts & {"c", "P"}:
        inv.fail("diskinfo: not simulated: -c and -P")
    if "H" not in opts:
        inv.out(HEADER)
    for name, disk in sorted(inv.state.get("disks", {}).items()):
        if disk.get("cdrom"):   # enumerate_disks() asks libdiskmgt for DM_DT_FIXED media only
            continue
        ctype, vid, pid, rmv = "-", "Virtio", "Block Device", "no"
        total = disk["size_bytes"]
        size = str(total) if "p" in opts else f"{total / (1 << 30):7.2f} GiB"
        if "H" in opts:
            inv.out("\t".join([ctype, name, vid, pid, size, rmv, "no"]))
        else:
            inv.out(f"{ctype:<7} {name:<22}  {vid:<8} {pid:<16} {size:<13} {rmv:<3} {'no':<3}")
    return 0
