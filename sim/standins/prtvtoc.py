"""prtvtoc(8) stand-in: `prtvtoc [-fhs] [-t vfstab] [-m mnttab] device...`.

Prints an EFI label the way illumos `prtvtoc` prints one (usr/src/cmd/prtvtoc/prtvtoc.c,
puttable64): the `* Dimensions:` block with bytes/sector, `sectors` (the device's capacity,
which grows when the virtual disk is grown) and `accessible sectors` (from the label, which
does not), the unallocated-space block, then one row per non-empty slice. `-f` prints the
`FREE_START=... FREE_PART=...` shell assignments. A name that does not exist fails as
illumos does: `prtvtoc: /dev/rdsk/c1t0d0: failed to open device: No such file or directory`
(the name as given, since getfullrawname() cannot resolve a missing node).
Options are getopt(3C)'s `fhm:st:`; a bad one or no device prints usage() on standard
error and exits 1 (`Usage:\tprtvtoc [ -fhs ] [ -t fstab ] [ -m mnttab ] rawdisk ...`).
Not modelled: `-t`/`-m` (the Mount Directory column), SMI (VTOC) labels.
"""

from __future__ import annotations

import os
from typing import Any

from sim.hardware import split_device
from sim.standins.base import BadOption, Exit, Invocation, posix_getopt

USAGE = "Usage:\tprtvtoc [ -fhs ] [ -t fstab ] [ -m mnttab ] rawdisk ..."


def free_map(label: dict[str, Any]) -> list[tuple[int, int]]:
    """(start, size) of each unallocated run between first and last usable LBA."""
    runs: list[tuple[int, int]] = []
    cursor = label["first_u_lba"]
    for part in sorted(label["parts"].values(), key=lambda p: p["start"]):
        if part["size"] == 0 or part["tag"] == 5:
            continue
        if part["start"] == cursor:
            cursor += part["size"]
        else:
            runs.append((cursor, part["start"] - cursor))
            cursor = part["start"] + part["size"]
    if cursor < label["last_u_lba"]:
        runs.append((cursor, label["last_u_lba"] - cursor))
    return runs


def print_table(inv: Invocation, device: str, disk: dict[str, Any], headers: bool,
                column_header: bool) -> None:
    label = disk["label"]
    total = disk["size_bytes"] // disk["sector_size"]
    if headers:
        inv.out(f"* {device} partition map")
        inv.out("*")
        inv.out("* Dimensions:")
        inv.out(f"* {disk['sector_size']:11d} bytes/sector")
        inv.out(f"* {total:11d} sectors")
        inv.out(f"* {label['last_u_lba'] - label['first_u_lba'] + 1:11d} accessible sectors")
        inv.out("*")
        inv.out("* Flags:")
        inv.out("*   1: unmountable")
        inv.out("*  10: read-only")
        inv.out("*")
        runs = free_map(label)
        if runs:
            inv.out("* Unallocated space:")
            inv.out("*         First       Sector      Last")
            inv.out("*         Sector       Count      Sector")
            for start, size in runs:
                inv.out(f"*   {start:11d} {size:11d} {start + size - 1:11d}")
            inv.out("*")
    if column_header:
        inv.out("*                            First       Sector      Last")
        inv.out("* Partition  Tag  Flags      Sector       Count      Sector  Mount Directory")
    for number in sorted(label["parts"], key=int):
        part = label["parts"][number]
        if part["size"] == 0:
            continue
        inv.out(f"  {int(number):6d}   {part['tag']:4d}    {part['flag']:02x}  "
                f"{part['start']:11d} {part['size']:11d} {part['start'] + part['size'] - 1:11d}")


def main(inv: Invocation) -> int:
    try:
        pairs, devices = posix_getopt(inv.argv, "fhs", "tm")
    except BadOption as e:
        inv.err(f"prtvtoc: illegal option -- {e.args[0]}")
        devices, pairs = [], []
    opts = dict(pairs)
    if not devices:                       # usage(): standard error, exit 1
        inv.err(USAGE)
        raise Exit(1)
    status = 0
    for device in devices:
        parsed = split_device(device)
        disk = inv.state.get("disks", {}).get(parsed[1]) if parsed else None
        if not os.path.exists(os.path.join(inv.root, device.lstrip("/"))) or disk is None:
            inv.err(f"prtvtoc: {device}: failed to open device: No such file or directory")
            status = 1
            continue
        if not disk.get("label"):
            inv.err(f"prtvtoc: {device.replace('/dev/dsk/', '/dev/rdsk/')}: "
                    "Unable to read Disk geometry errno = 0x16")
            status = 1
            continue
        if opts.get("f"):
            runs = free_map(disk["label"])
            start, size = runs[0] if runs else (0, 0)
            unused = "".join(f"{i:x}" for i in range(disk["label"]["nparts"])
                             if i != 2 and disk["label"]["parts"].get(str(i), {}).get("size", 0) == 0)
            inv.out(f"FREE_START={start} FREE_SIZE={size} FREE_COUNT={len(runs)} "
                    f"FREE_PART={unused}")
            continue
        print_table(inv, device, disk, headers=not (opts.get("h") or opts.get("s")),
                    column_header=not opts.get("h"))
    return status
