"""fmthard(8) stand-in: `fmthard -d data | -n volume_name | -s datafile [-i] raw-device`,
EFI-labelled disks only.

`-d part:tag:flag:start:size` changes one slice of the label read from the disk (flag in
hex, as prtvtoc prints it); `-s datafile` (or `-` for standard input) replaces the table
with a fresh one sized to the device, as load64() does; `-i` prints instead of writing.
Checks and messages follow usr/src/cmd/fmthard/fmthard.c (main(), validate64(), vread64(),
vwrite64()): a slice must fit below the last usable LBA ("does not fit", exit 1), slices
may not overlap (on x86 validate64() only warns; libefi then refuses the write: "invalid
entry exists in vtoc", exit 1), exactly one reserved slice, and the device must exist
("Cannot stat device", exit 1) and be raw ("must be a raw device"). Not modelled: SMI
(VTOC) labels, `-e`/`-q`/`-u`, the x86 getopt letters `b` and `p` (refused as obsolete).
"""

from __future__ import annotations

import copy
import os
import re
import sys
from typing import Any

from sim.hardware import first_usable_lba, last_usable_lba, split_device
from sim.standins.base import Invocation, parse_opts

DELTA = re.compile(r"^(\d+):(\d+):([0-9a-fA-F]+):(\d+):(\d+)")


def _validate(inv: Invocation, device: str, label: dict[str, Any]) -> None:
    fullsz = label["last_u_lba"] + 1
    parts = {int(n): p for n, p in label["parts"].items() if p["size"]}
    for n, p in sorted(parts.items()):
        if p["start"] > fullsz or p["start"] + p["size"] > fullsz:
            inv.fail(f"fmthard: Partition {n} specified as {p['size']} sectors starting at "
                     f"{p['start']}\n\tdoes not fit. The full disk contains {fullsz} sectors.")
    for n, p in sorted(parts.items()):
        for m, q in sorted(parts.items()):
            if n != m and q["start"] <= p["start"] <= q["start"] + q["size"] - 1:
                inv.err(f"fmthard: Partition {n} overlaps partition {m}. Overlap is allowed\n"
                        "\tonly on partition on the full disk partition).")
                inv.fail(f"{device}: invalid entry exists in vtoc")
    reserved = sum(1 for p in parts.values() if p["tag"] == 11)
    if reserved != 1:
        inv.fail(f"expected one reserved partition, but found {reserved}")


def _load(inv: Invocation, disk: dict[str, Any], text: str) -> dict[str, Any]:
    total = disk["size_bytes"] // disk["sector_size"]
    parts: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        if not line or line.startswith("*"):
            continue
        fields = line.split()
        try:
            part, tag, flag, start, size = (int(fields[0]), int(fields[1]), int(fields[2], 16),
                                            int(fields[3]), int(fields[4]))
        except (IndexError, ValueError):
            inv.fail(f'Syntax error: "{line}"')
        parts[str(part)] = {"tag": tag, "flag": flag, "start": start, "size": size}
    nparts = max([int(n) for n in parts] + [0]) + 1
    return {"type": "efi", "first_u_lba": first_usable_lba(disk["sector_size"]),
            "last_u_lba": last_usable_lba(total, disk["sector_size"]), "altern_lba": total - 1,
            "nparts": max(nparts, 9), "parts": parts}


def main(inv: Invocation) -> int:
    opts, rest = parse_opts(inv, inv.argv, "ieq", "dnsub")
    if len(rest) != 1:
        inv.usage("exactly one raw device is required")
    device = rest[0]
    parsed = split_device(device)
    if not os.path.exists(os.path.join(inv.root, device.lstrip("/"))):
        inv.fail(f"fmthard:  Cannot stat device {device}")
    if parsed is None or parsed[0] != "rdsk":
        inv.fail(f"fmthard:  {device} must be a raw device.")
    disk = inv.state.get("disks", {}).get(parsed[1])
    if disk is None:
        inv.fail(f"fmthard:  Cannot open device {device} - No such device or address")
    if not disk.get("label"):
        inv.fail(f"{device}: this disk must be labeled first")
    label = copy.deepcopy(disk["label"])
    if "d" in opts:
        m = DELTA.match(opts["d"])
        if not m:
            inv.fail(f'Delta syntax error on "{opts["d"]}"')
        part, tag, flag, start, size = (int(m.group(1)), int(m.group(2)), int(m.group(3), 16),
                                        int(m.group(4)), int(m.group(5)))
        if part >= label["nparts"]:
            inv.fail(f'Error in data "{opts["d"]}": No such partition {part:x}')
        label["parts"][str(part)] = {"tag": tag, "flag": flag, "start": start, "size": size}
        _validate(inv, device, label)
        disk["label"] = label
        return 0
    if "s" not in opts and "n" not in opts:
        inv.usage("one of -d, -n or -s is required")
    if "s" in opts:
        if opts["s"] == "-":
            text = sys.stdin.read()
        else:
            try:
                with open(os.path.join(inv.root, opts["s"].lstrip("/")), encoding="utf-8") as f:
                    text = f.read()
            except OSError:
                inv.fail(f"Cannot open file {opts['s']}")
        label = _load(inv, disk, text)
    if opts.get("i"):
        inv.out(f"* {device} default partition map")
        for n in sorted(label["parts"], key=int):
            p = label["parts"][n]
            if p["size"]:
                inv.out(f"    {n}\t\t{p['tag']}\t0{p['flag']:x}\t\t{p['start']:8d}\t{p['size']:8d}")
        return 0
    _validate(inv, device, label)
    disk["label"] = label
    inv.out("fmthard:  New volume table of contents now in place.")
    return 0
