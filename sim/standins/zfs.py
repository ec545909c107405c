"""zfs(8) stand-in: `create`, `list`, and `set`/`get` of user properties, after illumos-gate
usr/src/cmd/zfs/zfs_main.c (zfs_do_create(), zfs_do_list(), zfs_do_set(), zfs_do_get()) and
libzfs's error strings (usr/src/lib/libzfs).

- `zfs create [-p] [-o property=value]... filesystem`
- `zfs create [-ps] [-b blocksize] [-o property=value]... -V size volume`: a volume gets its
  `/dev/zvol/dsk` and `/dev/zvol/rdsk` nodes; a non-sparse volume reserves its size.
- `zfs list [-r|-d depth] [-Hp] [-o property[,...]] [-t type[,...]] [name]...`
- `zfs set property=value ... dataset...`: user properties only (a name with a colon, of
  lowercase letters, digits and `:-._`, as zfs_prop_user() in
  usr/src/common/zfs/zfs_prop.c accepts; shorter than ZAP_MAXNAMELEN 256; the value shorter
  than ZFS_MAXPROPLEN 8192, libzfs zfs_valid_proplist()). A native property is refused
  here as "invalid property", which real zfs would set.
- `zfs get [-Hp] [-o field[,...]] property[,...] dataset...`: the fields name, property,
  value, source (zfs_main.c zfs_do_get); an unset user property is `-` with source `-`.
  User properties and the `list` properties above.

Space: the pool's usable space is its size less the 1/32 slop; used is what the image wrote
plus every non-sparse volume. Messages as libzfs prints them: `cannot create 'rpool/swap':
dataset already exists`, `... parent does not exist`, `... out of space`, `cannot open
'rpool/swap': dataset does not exist`.
"""

from __future__ import annotations

import os
import re
from typing import Any

from sim.standins.base import Invocation, parse_opts
from sim.standins.zpool import nicenum

SIZE = re.compile(r"^(\d+(?:\.\d+)?)([KMGTPE]?)B?$", re.IGNORECASE)
DEFAULT_VOLBLOCKSIZE = 8192
LIST_DEFAULT = ("name", "used", "available", "referenced", "mountpoint")
ALIASES = {"avail": "available", "refer": "referenced", "refreserv": "refreservation"}
PROPERTIES = ("name", "used", "available", "referenced", "mountpoint", "type", "volsize",
              "refreservation", "volblocksize")


def parse_size(text: str) -> int | None:
    m = SIZE.match(text)
    if not m:
        return None
    return int(float(m.group(1)) * (1 << (10 * " KMGTPE".index(m.group(2).upper() or " "))))


def _datasets(inv: Invocation) -> dict[str, dict[str, Any]]:
    return inv.state.setdefault("datasets", {})


def _space(inv: Invocation, pool_name: str) -> tuple[int, int]:
    """(used, available) of the pool's root dataset."""
    pool = inv.state.get("pools", {}).get(pool_name, {})
    size = pool.get("size_bytes", 0)
    used = pool.get("alloc_bytes", 0) + sum(
        d.get("refreservation", 0) for n, d in _datasets(inv).items()
        if n.split("/")[0] == pool_name)
    return used, max(0, size - size // 32 - used)


def _props(inv: Invocation, name: str, exact: bool) -> dict[str, str]:
    ds = _datasets(inv)[name]
    pool = name.split("/")[0]
    used_pool, avail = _space(inv, pool)
    num = str if exact else nicenum
    is_vol = ds["type"] == "volume"
    used = used_pool if name == pool else ds.get("refreservation", 0) + (
        sum(d.get("refreservation", 0) for n, d in _datasets(inv).items() if n.startswith(name + "/")))
    return {"name": name, "used": num(used), "available": num(avail),
            "referenced": num(ds.get("referenced", 8192 if is_vol else 23552)),
            "mountpoint": "-" if is_vol else ds.get("mountpoint", "/" + name),
            "type": ds["type"], "volsize": num(ds["volsize"]) if is_vol else "-",
            "refreservation": num(ds.get("refreservation", 0)) if is_vol else "none",
            "volblocksize": num(ds.get("volblocksize", DEFAULT_VOLBLOCKSIZE)) if is_vol else "-"}


def _touch(inv: Invocation, rel: str) -> None:
    path = os.path.join(inv.root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "ab"):
        pass


def cmd_create(inv: Invocation, args: list[str]) -> int:
    # -o may repeat: collect its values before the getopt-style parse.
    settings: list[str] = []
    rest_args: list[str] = []
    i = 0
    while i < len(args):
        if args[i] == "-o" and i + 1 < len(args):
            settings.append(args[i + 1])
            i += 2
            continue
        rest_args.append(args[i])
        i += 1
    opts, rest = parse_opts(inv, rest_args, "ps", "bV")
    if len(rest) != 1:
        inv.usage("exactly one dataset name is required")
    name = rest[0]
    for s in settings:
        if "=" not in s:
            inv.usage(f"missing '=' for property=value argument: {s}")
    datasets = _datasets(inv)
    if name in datasets:
        inv.fail(f"cannot create '{name}': dataset already exists")
    parent = name.rpartition("/")[0]
    if not parent or parent.split("/")[0] not in inv.state.get("pools", {}):
        inv.fail(f"cannot create '{name}': no such pool '{name.split('/')[0]}'")
    if parent not in datasets and not opts.get("p"):
        inv.fail(f"cannot create '{name}': parent does not exist")
    if "V" not in opts:
        datasets[name] = {"type": "filesystem"}
        return 0
    volsize = parse_size(opts["V"])
    if volsize is None or volsize == 0:
        inv.fail(f"bad volume size '{opts['V']}': invalid numeric value")
    block = parse_size(opts.get("b", str(DEFAULT_VOLBLOCKSIZE))) or DEFAULT_VOLBLOCKSIZE
    if volsize % block:
        inv.fail(f"cannot create '{name}': volume size must be a multiple of volume block size")
    reserve = 0 if opts.get("s") else volsize
    if reserve > _space(inv, name.split("/")[0])[1]:
        inv.fail(f"cannot create '{name}': out of space")
    datasets[name] = {"type": "volume", "volsize": volsize, "refreservation": reserve,
                      "volblocksize": block}
    for kind in ("dsk", "rdsk"):
        _touch(inv, f"dev/zvol/{kind}/{name}")
    return 0


def cmd_list(inv: Invocation, args: list[str]) -> int:
    opts, names = parse_opts(inv, args, "rHp", "dotsS")
    columns = [ALIASES.get(c, c) for c in opts.get("o", ",".join(LIST_DEFAULT)).split(",")]
    for c in columns:
        if c not in PROPERTIES:
            inv.usage(f"invalid property '{c}'")
    types = opts.get("t", "filesystem,volume").split(",")
    datasets = _datasets(inv)
    selected: list[str] = []
    for name in names or [n for n in datasets if "/" not in n]:
        if name not in datasets:
            inv.fail(f"cannot open '{name}': dataset does not exist")
        selected.append(name)
        if opts.get("r") or "d" in opts or not names:
            depth = int(opts["d"]) if "d" in opts else None
            for child in sorted(datasets):
                extra = child.count("/") - name.count("/")
                if child.startswith(name + "/") and (depth is None or extra <= depth):
                    selected.append(child)
    selected = [n for n in selected if datasets[n]["type"] in types or "all" in types]
    rows = [] if opts.get("H") else [[c.upper().replace("AVAILABLE", "AVAIL")
                                      .replace("REFERENCED", "REFER") for c in columns]]
    for name in selected:
        props = _props(inv, name, bool(opts.get("p")))
        rows.append([props[c] for c in columns])
    if opts.get("H"):
        for row in rows:
            inv.out("\t".join(row))
    elif rows[1:]:
        widths = [max(len(r[i]) for r in rows) for i in range(len(columns))]
        for row in rows:
            inv.out("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


USER_PROP = re.compile(r"^[a-z0-9:._-]+$")
ZAP_MAXNAMELEN = 256
ZFS_MAXPROPLEN = 8192


def _is_user_prop(name: str) -> bool:
    return ":" in name and bool(USER_PROP.match(name))


def cmd_set(inv: Invocation, args: list[str]) -> int:
    pairs = [a for a in args if "=" in a]
    names = args[len(pairs):]
    if args[:len(pairs)] != pairs or not pairs:
        inv.usage("missing property=value argument(s)")
    if not names:
        inv.usage("missing dataset name(s)")
    datasets = _datasets(inv)
    for name in names:
        if name not in datasets:
            inv.fail(f"cannot open '{name}': dataset does not exist")
    for pair in pairs:
        prop, _, value = pair.partition("=")
        for name in names:
            if not _is_user_prop(prop):
                inv.fail(f"cannot set property for '{name}': invalid property '{prop}'")
            if len(prop) >= ZAP_MAXNAMELEN:
                inv.fail(f"cannot set property for '{name}': property name '{prop}' is too long")
            if len(value.encode()) >= ZFS_MAXPROPLEN:
                inv.fail(f"cannot set property for '{name}': property value '{value}' is "
                         "too long")
    for pair in pairs:
        prop, _, value = pair.partition("=")
        for name in names:
            datasets[name].setdefault("user_props", {})[prop] = value
    return 0


def cmd_get(inv: Invocation, args: list[str]) -> int:
    opts, rest = parse_opts(inv, args, "Hp", "o")
    if len(rest) < 2:
        inv.usage("missing property argument" if not rest else "missing dataset name(s)")
    fields = opts.get("o", "name,property,value,source").split(",")
    for f in fields:
        if f not in ("name", "property", "value", "source"):
            inv.usage(f"invalid field '{f}'")
    props = rest[0].split(",")
    for prop in props:
        if not _is_user_prop(prop) and ALIASES.get(prop, prop) not in PROPERTIES:
            inv.fail(f"bad property list: invalid property '{prop}'")
    datasets = _datasets(inv)
    rows = [] if opts.get("H") else [[f.upper() for f in fields]]
    for name in rest[1:]:
        if name not in datasets:
            inv.fail(f"cannot open '{name}': dataset does not exist")
        for prop in props:
            user = datasets[name].get("user_props", {})
            if _is_user_prop(prop):
                value, source = (user[prop], "local") if prop in user else ("-", "-")
            else:
                value, source = _props(inv, name, bool(opts.get("p")))[ALIASES.get(prop, prop)], "-"
            row = {"name": name, "property": prop, "value": value, "source": source}
            rows.append([row[f] for f in fields])
    if opts.get("H"):
        for row in rows:
            inv.out("\t".join(row))
    else:
        widths = [max(len(r[i]) for r in rows) for i in range(len(fields))]
        for row in rows:
            inv.out("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


def main(inv: Invocation) -> int:
    commands = {"create": cmd_create, "list": cmd_list, "set": cmd_set, "get": cmd_get}
    if not inv.argv or inv.argv[0] not in commands:
        inv.usage("unrecognized command" if inv.argv else "missing command")
    return commands[inv.argv[0]](inv, inv.argv[1:])
