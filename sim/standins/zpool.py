"""zpool(8) stand-in: `list`, `status`, `get`, `online`, `reguid` for one-disk pools,
after illumos-gate usr/src/cmd/zpool/zpool_main.c and libzfs (usr/src/lib/libzfs).

- `zpool list [-gHLpPv] [-o property[,...]] [pool]...` (zpool_do_list(),
  getopt `:gHLo:pPT:v`, options before the pools): with -H, fields are tab-separated and a
  vdev line begins with a tab; with -p, exact numbers on the pool line (zpool_get_prop(),
  where an EXPANDSZ or CKPOINT of 0 is `-` even with -p). Default columns (default_props)
  NAME SIZE ALLOC FREE CKPOINT EXPANDSZ FRAG CAP DEDUP HEALTH ALTROOT; `-o` names them
  (property names or lower-case column names: alloc, cap, dedup, expandsz, frag, ckpoint).
  A name zpool does not know: `bad property list: invalid property 'x'` and usage(), exit 2
  (zprop_get_list()). Vdev lines (`-v`, print_list_stats()) ignore `-o`: the vdev name then
  SIZE ALLOC FREE CKPOINT EXPANDSZ FRAG CAP, always zfs_nicenum(). A build from before 2018
  (`state["illumos"]["zpool_checkpoint"]` false) has no checkpoint property or column, so
  every column after FREE sits one place earlier: count columns and you read FRAG for
  EXPANDSZ.
- `zpool status [-gPv] [pool]...`: the `config:` table; -g prints vdev GUIDs, -P full paths.
- `zpool get [-Hp] [-o field[,...]] all|property[,...] pool`.
- `zpool online [-et] pool device...`: the device as zpool names it, its path, or its GUID.
  `-e` grows the vdev to fill its slice; anything else is "no such device in pool".
- `zpool reguid pool`: a new random pool GUID.
- `create`, `import`, `set`: sim/standins/zpoolcreate.py. Data pools (whole disks, data on
  slice 0) list a `mirror-0`/`raidz1-0` group line before their disks with `-v`, and grow
  child by child under `online -e` (a mirror by its smallest child).

The vdev is shown by the name recorded in the pool's label (`label_disk`), which stays stale
after the disk is renamed (the shared/seeds report); only when the pool has
`refresh_on_status` (devid resolves, links present) does `status`/`list`, as root, update
it to the live disk, as libzfs zpool_vdev_name() does. Messages follow libzfs.
"""

from __future__ import annotations

import os
import random
from typing import Any

from sim.hardware import combine_asize, data_disk_asize, slice_bytes, vdev_asize
from sim.standins.base import BadOption, Exit, Invocation, parse_opts, posix_getopt

LIST_COLUMNS = ("name", "size", "allocated", "free", "checkpoint", "expandsize",
                "fragmentation", "capacity", "dedupratio", "health", "altroot")
LIST_HEADERS = {"name": "NAME", "size": "SIZE", "allocated": "ALLOC", "free": "FREE",
                "checkpoint": "CKPOINT", "expandsize": "EXPANDSZ", "fragmentation": "FRAG",
                "capacity": "CAP", "dedupratio": "DEDUP", "health": "HEALTH",
                "altroot": "ALTROOT", "guid": "GUID"}
ALIASES = {"alloc": "allocated", "expandsz": "expandsize", "frag": "fragmentation",
           "cap": "capacity", "dedup": "dedupratio", "ckpoint": "checkpoint"}
GET_PROPERTIES = ("size", "capacity", "altroot", "health", "guid", "autoexpand", "free",
                  "allocated", "expandsize", "fragmentation", "dedupratio", "name")


def nicenum(n: int) -> str:
    """zfs_nicenum(): 1024-based, at most three significant digits."""
    units = "BKMGTPE"
    i, value = 0, float(n)
    while value >= 1024 and i < len(units) - 1:
        value /= 1024
        i += 1
    if i == 0:
        return str(n)
    if value == int(value):
        return f"{int(value)}{units[i]}"
    text = f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"
    return f"{text}{units[i]}"


def _pool(inv: Invocation, name: str) -> dict[str, Any]:
    pool = inv.state.get("pools", {}).get(name)
    if pool is None:
        inv.fail(f"cannot open '{name}': no such pool")
    return pool


def _refresh_name(inv: Invocation, pool: dict[str, Any]) -> None:
    live = pool["disk"]
    if (pool.get("refresh_on_status") and pool["label_disk"] != live
            and os.path.exists(os.path.join(inv.root, "dev/dsk", live + pool["slice"]))):
        pool["label_disk"] = live


def max_asize(inv: Invocation, pool: dict[str, Any]) -> int:
    if pool.get("disks"):   # a data pool: its top-level vdev over whole disks
        disks = inv.state.get("disks", {})
        return combine_asize(pool["vdev"], [data_disk_asize(disks[d]) if d in disks
                                            else pool["vdev_sizes"][d] for d in pool["disks"]])
    disk = inv.state.get("disks", {}).get(pool["disk"], {})
    return vdev_asize(slice_bytes(disk, pool["slice"][1:])) if disk else pool["size_bytes"]


def vdev_names(pool: dict[str, Any]) -> list[str]:
    """The leaf vdevs as `zpool list -v` names them (a root pool: the name in its label)."""
    return list(pool["disks"]) if pool.get("disks") else [pool["label_disk"]]


def _values(inv: Invocation, name: str, pool: dict[str, Any], exact: bool) -> dict[str, str]:
    size, alloc = pool["size_bytes"], pool.get("alloc_bytes", 0)
    esize = max(0, max_asize(inv, pool) - size)
    num = str if exact else nicenum
    return {"name": name, "size": num(size), "allocated": num(alloc), "free": num(size - alloc),
            "checkpoint": "-", "expandsize": num(esize) if esize else "-",
            "fragmentation": "0" if exact else "0%",
            "capacity": str(alloc * 100 // size) if exact else f"{alloc * 100 // size}%",
            "dedupratio": "1.00" if exact else "1.00x", "health": pool.get("health", "ONLINE"),
            "altroot": "-", "guid": pool["guid"], "autoexpand": pool.get("autoexpand", "off")}


def _emit(inv: Invocation, rows: list[list[str]], scripted: bool) -> None:
    if scripted:
        for row in rows:
            inv.out("\t".join(row))
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        inv.out("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


LIST_USAGE = "\tlist [-gHLpPv] [-o property[,...]] [-T d|u] [pool] ...\n\t    [interval [count]]"


def has_checkpoint(inv: Invocation) -> bool:
    """Builds since 2018 know the `checkpoint` property (CKPOINT column); the guest's
    `state["illumos"]["zpool_checkpoint"]` says whether this build is one (default yes)."""
    return bool(inv.state.get("illumos", {}).get("zpool_checkpoint", True))


def list_usage(inv: Invocation, columns: tuple[str, ...]) -> Exit:
    """usage(B_FALSE) for `list`: the command's usage and the pool properties, exit 2."""
    inv.err("usage:\n" + LIST_USAGE + "\n\nthe following properties are supported:\n\n"
            "\tPROPERTY         EDIT   VALUES\n")
    for name in columns:
        inv.err(f"\t{name:<16} {'NO':>4}   <{name}>")
    return Exit(2)


def _vdev_cells(inv: Invocation, pool: dict[str, Any], checkpoint: bool) -> list[str]:
    """print_list_stats(): a fixed set whatever `-o` says, numbers always zfs_nicenum()."""
    size, alloc = pool["size_bytes"], pool.get("alloc_bytes", 0)
    esize = max(0, max_asize(inv, pool) - size)
    cells = [nicenum(size), nicenum(alloc), nicenum(size - alloc)]
    if checkpoint:
        cells.append("-")
    return cells + [nicenum(esize) if esize else "-", "0%", f"{alloc * 100 // size}%"]


def cmd_list(inv: Invocation, args: list[str]) -> int:
    checkpoint = has_checkpoint(inv)
    known = tuple(c for c in LIST_COLUMNS if checkpoint or c != "checkpoint")
    try:
        pairs, names = posix_getopt(args, "gHLpPv", "oT")
    except BadOption as e:
        letter = e.args[0]
        missing = letter in "oT"
        inv.err(f"missing argument for '{letter}' option" if missing else f"invalid option '{letter}'")
        raise list_usage(inv, known) from None
    opts = dict(pairs)
    columns = list(known)
    if "o" in opts:
        columns = [ALIASES.get(c, c) for c in str(opts["o"]).split(",")]
        for c in columns:
            if c not in LIST_HEADERS or (c == "checkpoint" and not checkpoint):
                inv.err(f"bad property list: invalid property '{c}'")
                raise list_usage(inv, known)
    names = names or sorted(inv.state.get("pools", {}))
    rows: list[tuple[bool, list[str]]] = []
    if not opts.get("H"):
        rows.append((False, [LIST_HEADERS[c] for c in columns]))
    for name in names:
        pool = _pool(inv, name)
        _refresh_name(inv, pool)
        values = _values(inv, name, pool, bool(opts.get("p")))
        rows.append((False, [values[c] for c in columns]))
        if opts.get("v"):
            if pool.get("vdev") not in (None, "stripe"):   # the group line: mirror-0, raidz1-0
                group = "raidz1" if pool["vdev"] == "raidz" else pool["vdev"]
                rows.append((True, [f"{group}-0"] + _vdev_cells(inv, pool, checkpoint)))
            for leaf in vdev_names(pool):
                vdev = f"/dev/dsk/{leaf}{pool['slice']}" if opts.get("P") else leaf
                rows.append((True, [vdev] + _vdev_cells(inv, pool, checkpoint)))
    if opts.get("H"):
        for is_vdev, row in rows:
            inv.out(("\t" if is_vdev else "") + "\t".join(row))
        return 0
    width = max(len(r) for _, r in rows)
    _emit(inv, [(["  " + row[0]] + row[1:] if is_vdev else row) + [""] * (width - len(row))
                for is_vdev, row in rows], False)
    return 0


def cmd_status(inv: Invocation, args: list[str]) -> int:
    opts, names = parse_opts(inv, args, "DgLpPstvx", "T")
    for name in names or sorted(inv.state.get("pools", {})):
        pool = _pool(inv, name)
        _refresh_name(inv, pool)
        if opts.get("g"):
            vdev = pool["vdev_guid"]
        elif opts.get("P"):
            vdev = f"/dev/dsk/{pool['label_disk']}{pool['slice']}"
        else:
            vdev = pool["label_disk"]
        health = pool.get("health", "ONLINE")
        width = max(10, len(vdev) + 2, len(name))
        inv.out(f"  pool: {name}")
        inv.out(f" state: {health}")
        inv.out("  scan: none requested")
        inv.out("config:")
        inv.out("")
        inv.out(f"\t{'NAME':<{width}}  STATE     READ WRITE CKSUM")
        inv.out(f"\t{name:<{width}}  {health:<8}     0     0     0")
        inv.out(f"\t  {vdev:<{width - 2}}  {health:<8}     0     0     0")
        inv.out("")
        inv.out("errors: No known data errors")
    return 0


def cmd_get(inv: Invocation, args: list[str]) -> int:
    opts, rest = parse_opts(inv, args, "Hp", "o")
    if len(rest) < 2:
        inv.usage("missing property or pool name")
    wanted = list(GET_PROPERTIES) if rest[0] == "all" else [ALIASES.get(p, p) for p in rest[0].split(",")]
    for prop in wanted:
        if prop not in GET_PROPERTIES:
            inv.usage(f"bad property list: invalid property '{prop}'")
    fields = opts.get("o", "name,property,value,source").split(",")
    for f in fields:
        if f not in ("name", "property", "value", "source"):
            inv.usage(f"invalid field '{f}'")
    rows = [] if opts.get("H") else [[f.upper() for f in fields]]
    for name in rest[1:]:
        values = _values(inv, name, _pool(inv, name), bool(opts.get("p")))
        for prop in wanted:
            source = "-"
            if prop == "autoexpand":
                source = "local" if "autoexpand_set" in inv.state["pools"][name] else "default"
            cell = {"name": name, "property": prop, "value": values[prop], "source": source}
            rows.append([cell[f] for f in fields])
    _emit(inv, rows, bool(opts.get("H")))
    return 0


def cmd_online(inv: Invocation, args: list[str]) -> int:
    opts, rest = parse_opts(inv, args, "et", "")
    if len(rest) < 2:
        inv.usage("missing pool name or device")
    pool = _pool(inv, rest[0])
    verb = "expand" if opts.get("e") else "online"
    known = {pool["vdev_guid"]: pool["disk"]}
    for leaf in vdev_names(pool):
        known.update({leaf: leaf, leaf + pool["slice"]: leaf,
                      f"/dev/dsk/{leaf}{pool['slice']}": leaf})
    for device in rest[1:]:
        if device not in known:
            inv.fail(f"cannot {verb} {device}: no such device in pool")
        if opts.get("e") and pool.get("disks"):
            # This child grows to its disk; the pool by what its vdev now adds up to.
            disk = inv.state.get("disks", {}).get(known[device])
            if disk:
                pool["vdev_sizes"][known[device]] = data_disk_asize(disk)
            pool["size_bytes"] = max(pool["size_bytes"], combine_asize(
                pool["vdev"], list(pool["vdev_sizes"].values())))
        elif opts.get("e"):
            pool["size_bytes"] = max(pool["size_bytes"], max_asize(inv, pool))
    return 0


def cmd_reguid(inv: Invocation, args: list[str]) -> int:
    opts, rest = parse_opts(inv, args, "", "")
    if len(rest) != 1:
        inv.usage("missing pool name" if not rest else "too many arguments")
    pool = _pool(inv, rest[0])
    old = pool["guid"]
    while pool["guid"] == old:
        pool["guid"] = str(random.SystemRandom().getrandbits(64))
    return 0


SUBCOMMANDS = {"list": cmd_list, "status": cmd_status, "get": cmd_get, "online": cmd_online,
               "reguid": cmd_reguid}
# create, import and set: sim/standins/zpoolcreate.py (imported only when called).
MORE_SUBCOMMANDS = ("create", "import", "set")


def main(inv: Invocation) -> int:
    if inv.argv and inv.argv[0] in MORE_SUBCOMMANDS:
        from sim.standins import zpoolcreate

        return zpoolcreate.SUBCOMMANDS[inv.argv[0]](inv, inv.argv[1:])
    if not inv.argv or inv.argv[0] not in SUBCOMMANDS:
        inv.usage("unrecognized command" if inv.argv else "missing command")
    return SUBCOMMANDS[inv.argv[0]](inv, inv.argv[1:])
