"""zpool(8) stand-in, the subcommands that make or adopt pools: `create`, `import`, `set`.

After illumos-gate usr/src/cmd/zpool/zpool_main.c:
- `zpool create [-fnd] [-B] [-o property=value]... [-O file-system-property=value]...
  [-m mountpoint] [-R root] [-t tempname] pool vdev...` (zpool_do_create(), getopt
  `:fndBR:m:o:O:t:`): `missing argument for 'X' option` / `invalid option 'X'` /
  `missing pool name argument` / `missing vdev specification` then usage, exit 2;
  `missing '=' for -o option`, a `/` in the name (`cannot create 'a/b': invalid character
  '/' in pool name` + `use 'zfs create' to create a dataset`), a mountpoint that is not
  absolute, `legacy` or `none`, or an existing non-empty mountpoint directory (`mountpoint
  '/x' exists and is not empty` + `use '-m' option to provide a different default`):
  exit 1. The name is checked as libzfs zpool_name_valid() and pool_namecheck()
  (usr/src/common/zfs/zfs_namecheck.c) word it: `invalid character 'c' in pool name`,
  `name must begin with a letter`, `name is reserved` (mirror, raidz, and the spare, log,
  draid prefixes), `pool name is reserved` (a name like a disk: c0...), exit 1.
  The vdev specification (zpool_vdev.c make_root_vdev(), one top-level vdev here: a
  stripe of disks, or `mirror`/`raidz`/`raidz1`/`raidz2`/`raidz3` and its disks): a disk
  that does not exist is `cannot open 'X': no such device in /dev/dsk` + `must be a full
  path or shorthand device name`; a disk in use is refused as check_in_use() does, with
  libdiskmgt's words (usr/src/lib/libdiskmgt/common/entry.c dm_get_usage_string()):
  `invalid vdev specification` then `use '-f' to override the following errors:` (an
  exported pool: `/dev/dsk/c2t1d0s0 is part of exported or potentially active ZFS pool
  old. Please see zpool(1M).`; a file system: `/dev/dsk/c2t1d0s0 contains a ufs
  filesystem.`) or, whatever `-f` says, `the following errors must be manually repaired:`
  (`... is part of active ZFS pool rpool. Please see zpool(1M).`), exit 1. A device under
  SPA_MINDEVSIZE: `cannot create 'tank': one or more devices is less than the minimum size
  (64M)`. A name in use: `cannot create 'tank': pool already exists`. A disk carrying a
  label nobody uses is relabelled without a word: zpool checks use, not labels.
  The effect: each disk gets an EFI label filling it with the pool on slice 0
  (zpool_label_disk()), the pool its root dataset mounted at `-m` (default /POOL).
- `zpool import` (zpool_do_import(), show_import()): with no pool, each exported pool
  whose disks are all attached as `   pool: NAME` / `     id: GUID` / `  state: ONLINE` /
  ` action: The pool can be imported using its name or numeric identifier.` / ` config:`
  and the vdev tree; none: `no pools available to import` on stderr, exit 0. `zpool
  import [-f] [-N] [-o prop=value]... [-R root] NAME|ID [NEWNAME]`: imports it, or
  `cannot import 'NAME': no such pool available`, exit 1; a name an imported pool has:
  `cannot import 'NAME': a pool with that name already exists` + `use the form 'zpool
  import <pool | id> <newpool>' to give it a new name`, exit 1.
- `zpool set property=value pool` (zpool_do_set()): `autoexpand` (on/off) is kept; other
  properties are accepted and ignored; `missing property=value argument`, `missing pool
  name`, `too many pool names` then usage, exit 2; a bad autoexpand value: `cannot set
  property for 'tank': 'autoexpand' must be one of 'on | off'`, exit 1.
Not modelled: several top-level vdevs, log/cache/spare sections, `-n` layouts, hostid
checks on import (`pool was previously in use from another system`), `-d` search dirs.
"""

from __future__ import annotations

import os
from typing import Any

from sim.hardware import SPA_MINDEVSIZE, data_pool, label_whole_disk, split_device
from sim.standins.base import BadOption, Exit, Invocation, posix_getopt
from sim.standins.format import pool_uses

CREATE_USAGE = ("usage:\n\tcreate [-fnd] [-B] [-o property=value] ... \n"
                "\t    [-O file-system-property=value] ...\n"
                "\t    [-m mountpoint] [-R root] [-t tempname] <pool> <vdev> ...")
IMPORT_USAGE = ("usage:\n\timport [-d dir] [-D]\n"
                "\timport [-d dir | -c cachefile] [-F [-n]] <pool | id>\n"
                "\timport [-o mntopts] [-o property=value] ... \n"
                "\t    [-d dir | -c cachefile] [-D] [-f] [-m] [-N] [-R root] [-F [-n]] -a\n"
                "\timport [-o mntopts] [-o property=value] ... \n"
                "\t    [-d dir | -c cachefile] [-D] [-f] [-m] [-N] [-R root] [-F [-n]]\n"
                "\t    <pool | id> [newpool]")
SET_USAGE = "usage:\n\tset <property=value> <pool> "
VDEV_TYPES = ("mirror", "raidz", "raidz1", "raidz2", "raidz3")
RESERVED_PREFIXES = ("mirror", "raidz", "draid", "spare", "log")
VALID_PUNCT = "-_.: "


def _usage(inv: Invocation, text: str, message: str) -> Exit:
    inv.err(message)
    inv.err(text)
    return Exit(2)


def name_error(name: str) -> str | None:
    """zpool_name_valid()'s complaint about a pool name, or None."""
    if len(name) >= 256:
        return "name is too long"
    for c in name:
        if not (c.isascii() and (c.isalnum() or c in VALID_PUNCT)):
            return f"invalid character '{c}' in pool name"
    if not (name[:1].isascii() and name[:1].isalpha()):
        return "name must begin with a letter"
    if any(name.startswith(p) for p in RESERVED_PREFIXES):
        return "name is reserved"
    if name[0] == "c" and name[1:2].isdigit():
        return "pool name is reserved"
    return None


def _disk_name(inv: Invocation, arg: str) -> str | None:
    """A shorthand (c2t0d0) or full (/dev/dsk/c2t0d0) whole-disk name -> c2t0d0."""
    path = arg if arg.startswith("/") else f"/dev/dsk/{arg}"
    parsed = split_device(path)
    if parsed is None or parsed[2] or parsed[1] not in inv.state.get("disks", {}):
        return None
    if not os.path.exists(os.path.join(inv.root, "dev/dsk", parsed[1] + "s0")):
        return None
    return parsed[1]


def _in_use(inv: Invocation, disk_name: str) -> tuple[list[str], list[str]]:
    """(errors -f overrides, errors it does not) for a disk, as check_in_use() finds them."""
    disk = inv.state["disks"][disk_name]
    slice0 = f"/dev/dsk/{disk_name}s0"
    hard = pool_uses(inv, disk_name)
    soft: list[str] = []
    zlabel = disk.get("zfs_label")
    if zlabel and not hard:
        soft.append(f"{slice0} is part of exported or potentially active ZFS pool "
                    f"{zlabel['pool']}. Please see zpool(1M).")
    if disk.get("fstype"):
        soft.append(f"{slice0} contains a {disk['fstype']} filesystem.")
    return soft, hard


def cmd_create(inv: Invocation, args: list[str]) -> int:
    try:
        pairs, rest = posix_getopt(args, "fndB", "RmoOt")
    except BadOption as e:
        letter = e.args[0]
        missing = letter in "RmoOt"
        raise _usage(inv, CREATE_USAGE, f"missing argument for '{letter}' option" if missing
                     else f"invalid option '{letter}'") from None
    force = any(k == "f" for k, _ in pairs)
    mountpoint: str | None = None
    props: dict[str, str] = {}
    for letter, value in pairs:
        if letter in "oO":
            if "=" not in value:
                inv.fail(f"missing '=' for -{letter} option")
            key, _, val = value.partition("=")
            if letter == "O" and key == "mountpoint":
                mountpoint = val
            elif letter == "o":
                props[key] = val
        elif letter == "m":
            mountpoint = value
    if not rest:
        raise _usage(inv, CREATE_USAGE, "missing pool name argument")
    if len(rest) < 2:
        raise _usage(inv, CREATE_USAGE, "missing vdev specification")
    name, spec = rest[0], rest[1:]
    if "/" in name:
        inv.err(f"cannot create '{name}': invalid character '/' in pool name")
        inv.fail("use 'zfs create' to create a dataset")
    vdev = "stripe"
    if spec[0] in VDEV_TYPES:
        vdev, spec = spec[0], spec[1:]
    if any(s in VDEV_TYPES for s in spec):
        inv.fail("not simulated: more than one top-level vdev")
    members: list[str] = []
    for arg in spec:
        disk = _disk_name(inv, arg)
        if disk is None:
            inv.err(f"cannot open '{arg}': no such device in /dev/dsk")
            inv.fail("must be a full path or shorthand device name")
        members.append(disk)
    needed = {"mirror": 2, "raidz": 2, "raidz1": 2, "raidz2": 3, "raidz3": 4}.get(vdev, 1)
    if not members or len(members) < needed:
        inv.fail(f"invalid vdev specification: {vdev} requires at least {needed} devices")
    soft: list[str] = []
    hard: list[str] = []
    for disk in members:
        s, h = _in_use(inv, disk)
        soft += s
        hard += h
    if hard or (soft and not force):
        inv.err("invalid vdev specification")
        if hard:
            inv.err("the following errors must be manually repaired:")
            inv.fail("\n".join(hard))
        inv.err("use '-f' to override the following errors:")
        inv.fail("\n".join(soft))
    # zpool_do_create()'s mountpoint checks, then libzfs zpool_create()'s.
    if mountpoint is not None and mountpoint not in ("legacy", "none") \
            and not mountpoint.startswith("/"):
        inv.fail(f"invalid mountpoint '{mountpoint}': must be an absolute path, 'legacy', "
                 "or 'none'")
    target = mountpoint if mountpoint is not None else f"/{name}"
    if target.startswith("/"):   # zpool_do_create(): no -f bypass for this check
        host_dir = os.path.join(inv.root, target.lstrip("/"))
        if os.path.isdir(host_dir) and os.listdir(host_dir):
            inv.err(f"mountpoint '{target}' exists and is not empty")
            inv.fail("use '-m' option to provide a different default")
    problem = name_error(name)
    if problem:
        inv.fail(f"cannot create '{name}': {problem}")
    if name in inv.state.get("pools", {}):
        inv.fail(f"cannot create '{name}': pool already exists")
    if any(inv.state["disks"][d]["size_bytes"] < SPA_MINDEVSIZE for d in members):
        inv.fail(f"cannot create '{name}': one or more devices is less than the minimum "
                 "size (64M)")
    if any(k == "n" for k, _ in pairs):
        inv.out(f"would create '{name}' with the following layout:\n")
        return 0
    import random

    guid = str(random.SystemRandom().getrandbits(63) | 1 << 62)
    disks = inv.state["disks"]
    for disk in members:
        disks[disk].pop("fstype", None)
        label_whole_disk(disks[disk], name, guid, str(int(guid) // 7 + members.index(disk)))
        for kind in ("dsk", "rdsk"):   # the whole-disk node an EFI label brings
            open(os.path.join(inv.root, "dev", kind, disk), "ab").close()
    pool = data_pool(name, disks, members, vdev, guid, target)
    if props.get("autoexpand") in ("on", "off"):
        pool["autoexpand"] = props["autoexpand"]
        pool["autoexpand_set"] = True
    inv.state.setdefault("pools", {})[name] = pool
    _mount_root_dataset(inv, name, target)
    return 0


def _mount_root_dataset(inv: Invocation, name: str, mountpoint: str) -> None:
    inv.state.setdefault("datasets", {})[name] = {"type": "filesystem",
                                                  "mountpoint": mountpoint}
    if mountpoint.startswith("/"):
        os.makedirs(os.path.join(inv.root, mountpoint.lstrip("/")), exist_ok=True)


def importable(inv: Invocation) -> dict[str, dict[str, Any]]:
    """Exported pools every disk of which is attached and still carries the pool's label."""
    disks = inv.state.get("disks", {})
    found = {}
    for name, pool in sorted(inv.state.get("exported_pools", {}).items()):
        labels = [(disks.get(d) or {}).get("zfs_label") or {} for d in pool["disks"]]
        if all(lb.get("pool_guid") == pool["guid"] for lb in labels):
            found[name] = pool
    return found


def cmd_import(inv: Invocation, args: list[str]) -> int:
    try:
        pairs, rest = posix_getopt(args, "aCDEfFmnNtVX", "cdoRT")
    except BadOption as e:
        letter = e.args[0]
        raise _usage(inv, IMPORT_USAGE, f"missing argument for '{letter}' option"
                     if letter in "cdoRT" else f"invalid option '{letter}'") from None
    if len(rest) > 2:
        raise _usage(inv, IMPORT_USAGE, "too many arguments")
    pools = importable(inv)
    if not rest:
        for name, pool in pools.items():
            width = max(10, max(len(d) for d in pool["disks"]) + 2, len(name))
            inv.out(f"   pool: {name}")
            inv.out(f"     id: {pool['guid']}")
            inv.out("  state: ONLINE")
            inv.out(" action: The pool can be imported using its name or numeric identifier.")
            inv.out(" config:")
            inv.out("")
            inv.out(f"\t{name:<{width}}  ONLINE")
            for d in pool["disks"]:
                inv.out(f"\t  {d:<{width - 2}}  ONLINE")
        if not pools:
            inv.err("no pools available to import")
        return 0
    wanted = rest[0]
    found = next((n for n, p in pools.items() if wanted in (n, p["guid"])), None)
    if found is None:
        inv.fail(f"cannot import '{wanted}': no such pool available")
    new_name = rest[1] if len(rest) == 2 else found
    if new_name in inv.state.get("pools", {}):
        inv.err(f"cannot import '{found}': a pool with that name already exists")
        inv.fail("use the form 'zpool import <pool | id> <newpool>' to give it a new name")
    pool = inv.state["exported_pools"].pop(found)
    pool.update({"health": "ONLINE", "refresh_on_status": False})
    for d in pool["disks"]:
        inv.state["disks"][d]["zfs_label"]["pool"] = new_name
    inv.state.setdefault("pools", {})[new_name] = pool
    if not any(k == "N" for k, _ in pairs):
        _mount_root_dataset(inv, new_name, pool.get("mountpoint") or f"/{new_name}")
    return 0


def cmd_set(inv: Invocation, args: list[str]) -> int:
    if args[:1] and args[0].startswith("-") and len(args[0]) > 1:
        raise _usage(inv, SET_USAGE, f"invalid option '{args[0][1]}'")
    if not args:
        raise _usage(inv, SET_USAGE, "missing property=value argument")
    if len(args) < 2:
        raise _usage(inv, SET_USAGE, "missing pool name")
    if len(args) > 2:
        raise _usage(inv, SET_USAGE, "too many pool names")
    prop, _, value = args[0].partition("=")
    pool = inv.state.get("pools", {}).get(args[1])
    if pool is None:
        inv.fail(f"cannot open '{args[1]}': no such pool")
    if prop == "autoexpand":
        if value not in ("on", "off"):
            inv.fail(f"cannot set property for '{args[1]}': 'autoexpand' must be one of "
                     "'on | off'")
        pool["autoexpand"] = value
        pool["autoexpand_set"] = True
    return 0


SUBCOMMANDS = {"create": cmd_create, "import": cmd_import, "set": cmd_set}
