"""swap(8) stand-in: `swap -a swapname [swaplow] [swaplen]`, `swap -d swapname [swaplow]`,
`swap -l [-h|-k]`, `swap -s [-h]`.

`-l` prints the header `swapfile             dev  swaplo blocks   free` and one row per
area (`%-19s %2lu,%-2lu %6lu %6lu %6lu`, in 512-byte blocks), or `No swap devices
configured` on standard error with exit 1 when there is none (usr/src/cmd/swap/swap.c).
Adding an area already in use fails with `PATH: Overlapping swap files are not allowed`
(exit 2); a missing path as perror() reports it. The first page (8 blocks) is skipped.
"""

from __future__ import annotations

import os

from sim.standins.base import Invocation, parse_opts

PAGE_BLOCKS = 8


def _area_blocks(inv: Invocation, path: str) -> int:
    prefix = "/dev/zvol/dsk/"
    if path.startswith(prefix):
        ds = inv.state.get("datasets", {}).get(path[len(prefix):], {})
        return ds.get("volsize", 0) // 512
    return os.path.getsize(os.path.join(inv.root, path.lstrip("/"))) // 512


def main(inv: Invocation) -> int:
    opts, rest = parse_opts(inv, inv.argv, "lshk", "ad")
    areas = inv.state.setdefault("swap", [])
    if "a" in opts:
        path = opts["a"]
        if not os.path.exists(os.path.join(inv.root, path.lstrip("/"))):
            inv.fail(f"{path}: No such file or directory", 2)
        if any(a["path"] == path for a in areas):
            inv.fail(f"{path}: Overlapping swap files are not allowed", 2)
        low = int(rest[0]) if rest else PAGE_BLOCKS
        blocks = int(rest[1]) if len(rest) > 1 else _area_blocks(inv, path) - low
        areas.append({"path": path, "dev": f"256,{len(areas) + 1}", "swaplo": low,
                      "blocks": blocks, "free": blocks})
        return 0
    if "d" in opts:
        kept = [a for a in areas if a["path"] != opts["d"]]
        if len(kept) == len(areas):
            inv.fail(f"{opts['d']}: No such file or directory", 2)
        inv.state["swap"] = kept
        return 0
    if opts.get("l"):
        if not areas:
            inv.fail("No swap devices configured")
        inv.out("swapfile             dev  swaplo blocks   free")
        for a in areas:
            major, _, minor = a["dev"].partition(",")
            inv.out(f"{a['path']:<19} {int(major):2d},{int(minor):<2d} {a['swaplo']:6d} "
                    f"{a['blocks']:6d} {a['free']:6d}")
        return 0
    if opts.get("s"):
        total_k = sum(a["blocks"] for a in areas) // 2
        inv.out(f"total: 0k bytes allocated + 0k reserved = 0k used, {total_k}k available")
        return 0
    inv.usage("one of -a, -d, -l or -s is required")
