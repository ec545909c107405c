"""swap(8) stand-in, after illumos-gate usr/src/cmd/swap/swap.c.

- main(): getopt(3C) string `khlsd:a:12`; `-a swapname [swaplow [swaplen]]` and `-d swapname
  [swaplow]` take their optional operands right after the option's argument, as main()
  reads `argv[optind++]`. No argument at all, an unknown option, `-s` with anything but
  `-h`, `-l` with anything but `-h`/`-k`, or only `-h`/`-k`: usage() on standard error,
  exit 1 (not 2). A relative `-a` path: `swap: path must be absolute`, exit 1.
- list(): the header `swapfile             dev    swaplo   blocks     free`, then per area
  `%-19s %2lu,%-2lu` (a block or character device: major,minor) or `%-20s  -  ` (a file),
  then ` %8lu %8lu %8lu` (swaplo, blocks, free in 512-byte blocks; `-k`: ` %7luK` three
  times, in KiB). No area: `No swap devices configured` on standard error, exit 1.
- `-a`: dm_inuse(DM_WHO_SWAP) first: a slice an active pool uses is refused with
  libdiskmgt's message (`/dev/dsk/c1t0d0s1 is part of active ZFS pool rpool. Please see
  zpool(1M).`), exit 1; then a missing path as perror() reports it, exit 2 (valid()), and
  an area already added `PATH: Overlapping swap files are not allowed`, exit 2 (add(), EEXIST).
  The first page (8 blocks) is skipped, as the kernel does for swaplo 0.
- `-d`: an area not in the table: perror(), exit 2 (delete()).
- doswap() (`-s`): `total: %luk bytes allocated + %luk reserved = %luk used, %luk available`.

Not modelled: `-h` (nicenum_scale() output), the dump-device warnings add() and delete()
print (`Warning: failed to open /dev/dump ...`), swaplow/swaplen validation, and the
program name in messages (swap.c prints argv[0]; here it is always `swap`).
"""

from __future__ import annotations

import os

from sim.standins.base import Exit, Invocation, usage_exit
from sim.standins.format import pool_uses

PAGE_BLOCKS = 8
USAGE = ("Usage:\tswap -l\n\tsub option :\n\t\t-h : displays size in human readable format\n"
         "\t\t-k : displays size in KB\n\tswap -s\n\tsub option :\n"
         "\t\t-h : displays size in human readable format rather than KB\n"
         "\tswap -d <file name> [low block]\n"
         "\tswap -a <file name> [low block] [nbr of blocks]")


def _usage(inv: Invocation) -> Exit:
    return usage_exit(inv, USAGE)


def _area_blocks(inv: Invocation, path: str) -> int:
    prefix = "/dev/zvol/dsk/"
    if path.startswith(prefix):
        ds = inv.state.get("datasets", {}).get(path[len(prefix):], {})
        return ds.get("volsize", 0) // 512
    return os.path.getsize(os.path.join(inv.root, path.lstrip("/"))) // 512


def _parse(inv: Invocation) -> tuple[set[str], dict[str, str], list[str]]:
    """main()'s getopt loop: flags seen, the -a/-d argument, and their extra operands."""
    args = inv.argv
    if not args:
        raise _usage(inv)
    flags: set[str] = set()
    values: dict[str, str] = {}
    extra: list[str] = []
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "-":
        if args[i] == "--":
            break
        word, i = args[i], i + 1
        j = 1
        while j < len(word):
            letter = word[j]
            if letter in "khls12":
                flags.add(letter)
                j += 1
                continue
            if letter not in "ad":
                inv.err(f"swap: illegal option -- {letter}")
                raise _usage(inv)
            value = word[j + 1:]
            if not value:
                if i >= len(args):
                    inv.err(f"swap: option requires an argument -- {letter}")
                    raise _usage(inv)
                value, i = args[i], i + 1
            limit = 2 if letter == "a" else 1
            if len(args) - i > limit or flags - {"1", "2"}:
                raise _usage(inv)
            if letter == "a" and not value.startswith("/"):
                inv.fail("swap: path must be absolute")
            flags.add(letter)
            values[letter] = value
            while i < len(args) and len(extra) < limit:
                extra.append(args[i])
                i += 1
            break
    if not flags - {"h", "k"}:      # operands left over are ignored, as getopt leaves them
        raise _usage(inv)
    return flags, values, extra


def _list(inv: Invocation, areas: list[dict], kib: bool) -> int:
    if not areas:
        inv.fail("No swap devices configured")
    inv.out("swapfile             dev    swaplo   blocks     free")
    for a in areas:
        if a["path"].startswith("/dev/"):
            major, _, minor = a["dev"].partition(",")
            head = f"{a['path']:<19} {int(major):2d},{int(minor):<2d}"
        else:
            head = f"{a['path']:<20}  -  "
        if kib:
            nums = "".join(f" {n // 2:7d}K" for n in (a["swaplo"], a["blocks"], a["free"]))
        else:
            nums = "".join(f" {n:8d}" for n in (a["swaplo"], a["blocks"], a["free"]))
        inv.out(head + nums)
    return 0


def main(inv: Invocation) -> int:
    flags, values, extra = _parse(inv)
    areas = inv.state.setdefault("swap", [])
    if "s" in flags:
        if flags - {"s", "h"}:
            raise _usage(inv)
        total_k = sum(a["blocks"] for a in areas) // 2
        inv.out(f"total: 0k bytes allocated + 0k reserved = 0k used, {total_k}k available")
        return 0
    if "l" in flags:
        if flags - {"l", "h", "k"}:
            raise _usage(inv)
        return _list(inv, areas, "k" in flags and "h" not in flags)
    if "d" in values:
        kept = [a for a in areas if a["path"] != values["d"]]
        if len(kept) == len(areas):
            inv.fail(f"{values['d']}: No such file or directory", 2)
        inv.state["swap"] = kept
        return 0
    path = values["a"]
    disk = path[len("/dev/dsk/"):].rsplit("s", 1)[0] if path.startswith("/dev/dsk/") else ""
    in_use = [u for u in pool_uses(inv, disk) if u.startswith(path + " ")] if disk else []
    if in_use:
        inv.fail(in_use[0], 1)
    if not os.path.exists(os.path.join(inv.root, path.lstrip("/"))):
        inv.fail(f"{path}: No such file or directory", 2)
    if any(a["path"] == path for a in areas):
        inv.fail(f"{path}: Overlapping swap files are not allowed", 2)
    low = int(extra[0]) if extra else PAGE_BLOCKS
    blocks = int(extra[1]) if len(extra) > 1 else _area_blocks(inv, path) - low
    areas.append({"path": path, "dev": f"256,{len(areas) + 1}", "swaplo": low,
                  "blocks": blocks, "free": blocks})
    return 0
