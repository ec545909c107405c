"""zdb(8) stand-in: `zdb -l [-Aqu] device` only: read the ZFS labels on a device.

After illumos-gate usr/src/cmd/zdb/zdb.c dump_label() and usage():
- a device under `/dev/dsk/` is read through its raw node (`/dev/rdsk/...`); a bare name
  that does not exist is looked up as `/dev/rdsk/NAME`, with `s0` added when it names no
  slice or partition;
- a device that cannot be opened: `cannot open '/dev/rdsk/c9t0d0s0': No such file or
  directory` on standard error, exit 1 (the raw path, as dump_label() opened it);
- each of the four labels is printed (unless `-q`) between two rules of 36 dashes as
  `LABEL n` followed by its nvlist, or `failed to unpack label n` on standard output;
  exit 0 when any label unpacked, 2 when none did;
- usage errors (an option zdb does not have, no device, `-l` with more than one device):
  usage() on standard error, exit 1. Other zdb modes are refused as usage errors here.
A label of an exported pool (`state: 1`, POOL_STATE_EXPORTED) is dumped alike; a data
pool's disk shows its own vdev (path, guid, asize). The label carries the pool's current GUID (rewritten by `zpool reguid`) and the device path
recorded when the pool was created or last refreshed, stale after the disk was renamed.
Not modelled: the full usage text (abbreviated), `-u` uberblocks, block-device refusal
(`cannot use ...: character device required`: every simulated node is a plain file).
"""

from __future__ import annotations

import os

from sim.hardware import split_device
from sim.standins.base import BadOption, Exit, Invocation, posix_getopt, usage_exit

USAGE = ("Usage:\tzdb [-AbcdDFGhikLMPsvXy] [-e [-V] [-p <path> ...]] [-I <inflight I/Os>]\n"
         "\t\t[-o <var>=<value>]... [-t <txg>] [-U <cache>] [-x <dumpdir>]\n"
         "\t\t[<poolname> [<object> ...]]\n"
         "\tzdb -l [-Aqu] <device>")


def _usage(inv: Invocation) -> Exit:
    return usage_exit(inv, USAGE)


def raw_path(inv: Invocation, device: str) -> str:
    """dump_label()'s choice of the node to open."""
    if device.startswith("/dev/dsk/"):
        return "/dev/rdsk/" + device[len("/dev/dsk/"):]
    if device.startswith("/") or os.path.exists(os.path.join(inv.root, device)):
        return device
    path = "/dev/rdsk/" + device
    cut = device.rfind("s") if "s" in device else device.find("p")
    if cut < 0 or not device[cut + 1:cut + 2].isdigit():
        path += "s0"
    return path


RULE = "-" * 36


def _pool_of(inv: Invocation, zlabel: dict) -> tuple[dict | None, bool]:
    """(the pool a ZFS label belongs to, whether it is exported). A data pool's label names
    its GUID; the root pool's is found by name (its GUID changes under reguid)."""
    guid = zlabel.get("pool_guid")
    for exported, key in ((False, "pools"), (True, "exported_pools")):
        for name, pool in inv.state.get(key, {}).items():
            if name == zlabel["pool"] and (guid is None or pool["guid"] == guid):
                return pool, exported
    return None, False


def main(inv: Invocation) -> int:
    try:
        pairs, rest = posix_getopt(inv.argv, "lAqu", "")
    except BadOption as e:
        inv.err(f"zdb: illegal option -- {e.args[0]}")
        raise _usage(inv) from None
    opts = {letter: True for letter, _ in pairs}
    if not opts.get("l") or len(rest) != 1:
        raise _usage(inv)
    device = raw_path(inv, rest[0])
    if not os.path.exists(os.path.join(inv.root, device.lstrip("/"))):
        inv.fail(f"cannot open '{device}': No such file or directory")
    parsed = split_device(device)
    disk = inv.state.get("disks", {}).get(parsed[1]) if parsed else None
    zlabel = (disk or {}).get("zfs_label")
    pool, exported = _pool_of(inv, zlabel) if zlabel else (None, False)
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
    vdev_guid, asize = pool["vdev_guid"], pool["size_bytes"]
    if pool.get("disks"):   # a data pool: this disk's own vdev (slice 0 of a whole disk)
        path, vdev_guid = f"/dev/dsk/{parsed[1]}s0", zlabel["vdev_guid"]
        asize = pool["vdev_sizes"].get(parsed[1], 0)
    lines = [
        "    version: 5000",
        f"    name: '{zlabel['pool']}'",
        f"    state: {1 if exported else 0}",
        "    txg: 4021",
        f"    pool_guid: {pool['guid']}",
        "    errata: 0",
        "    hostid: 0",
        "    hostname: 'unknown'",
        f"    top_guid: {vdev_guid}",
        f"    guid: {vdev_guid}",
        "    vdev_children: 1",
        "    vdev_tree:",
        "        type: 'disk'",
        "        id: 0",
        f"        guid: {vdev_guid}",
        f"        path: '{path}'",
        f"        phys_path: '{pool.get('physpath', '').replace('/devices', '', 1)}'",
        "        whole_disk: 1",
        "        metaslab_array: 65",
        "        metaslab_shift: 29",
        f"        ashift: {12 if disk.get('sector_size') == 4096 else 9}",
        f"        asize: {asize}",
        "        is_log: 0",
        "        create_txg: 4",
        "    features_for_read:",
        "        com.delphix:hole_birth",
        "        com.delphix:embedded_data",
    ]
    for n in range(4):
        inv.out(RULE)
        inv.out(f"LABEL {n}")
        inv.out(RULE)
        for line in lines:
            inv.out(line)
    return 0
