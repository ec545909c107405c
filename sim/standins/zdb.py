"""zdb(8) stand-in: `zdb -l [-Aqu] device` only: read the ZFS labels on a device.

Exit codes as the man page gives them: 0 when a valid label was found, 1 on error (the
device cannot be opened: `cannot open '/dev/dsk/c9t0d0s0': No such file or directory`, on
standard output as zdb prints it), 2 when no valid label is on the device. Each unique
configuration is printed once, followed by the labels it was found in (`labels = 0 1 2 3`).
The label carries the pool's current GUID (rewritten by `zpool reguid`) and the device path
recorded when the pool was created or last refreshed, stale after the disk was renamed.
"""

from __future__ import annotations

import os

from sim.hardware import split_device
from sim.standins.base import Invocation, parse_opts

RULE = "-" * 36


def main(inv: Invocation) -> int:
    opts, rest = parse_opts(inv, inv.argv, "lAqu", "")
    if not opts.get("l") or len(rest) != 1:
        inv.usage("only `zdb -l [-Aqu] device` is simulated")
    device = rest[0]
    if not os.path.exists(os.path.join(inv.root, device.lstrip("/"))):
        inv.out(f"cannot open '{device}': No such file or directory")
        return 1
    parsed = split_device(device)
    disk = inv.state.get("disks", {}).get(parsed[1]) if parsed else None
    zlabel = (disk or {}).get("zfs_label")
    pool = inv.state.get("pools", {}).get(zlabel["pool"]) if zlabel else None
    if not zlabel or pool is None or parsed is None or parsed[2] != "s" + zlabel["slice"]:
        if not opts.get("q"):
            for n in range(4):
                inv.out(RULE)
                inv.out(f"LABEL {n}")
                inv.out(RULE)
                inv.out(f"failed to unpack label {n}")
        return 2
    if opts.get("q"):
        return 0
    path = f"/dev/dsk/{pool['label_disk']}{pool['slice']}"
    lines = [
        "    version: 5000",
        f"    name: '{zlabel['pool']}'",
        "    state: 0",
        "    txg: 4021",
        f"    pool_guid: {pool['guid']}",
        "    errata: 0",
        "    hostid: 0",
        "    hostname: 'unknown'",
        f"    top_guid: {pool['vdev_guid']}",
        f"    guid: {pool['vdev_guid']}",
        "    vdev_children: 1",
        "    vdev_tree:",
        "        type: 'disk'",
        "        id: 0",
        f"        guid: {pool['vdev_guid']}",
        f"        path: '{path}'",
        f"        phys_path: '{pool.get('physpath', '').replace('/devices', '', 1)}'",
        "        whole_disk: 1",
        "        metaslab_array: 65",
        "        metaslab_shift: 29",
        f"        ashift: {12 if disk.get('sector_size') == 4096 else 9}",
        f"        asize: {pool['size_bytes']}",
        "        is_log: 0",
        "        create_txg: 4",
        "    features_for_read:",
        "        com.delphix:hole_birth",
        "        com.delphix:embedded_data",
    ]
    inv.out(RULE)
    inv.out("LABEL 0")
    inv.out(RULE)
    for line in lines:
        inv.out(line)
    inv.out("    labels = 0 1 2 3 ")
    return 0
