"""umount(8) stand-in: undoes what the mount stand-in did.

Form accepted (illumos-gate usr/src/man/man8/umount.8): `umount [-f] [-V] [-o options]
special | mount_point`. The extracted files are removed from the mount point, which is left
as the empty directory it was, and the entry leaves `state["mounts"]` and `/etc/mnttab`.
Not mounted: `umount: <name> not mounted`, exit 1, as illumos says it.
Standard library only: this runs under `python -S`.
"""

from __future__ import annotations

import os

from sim.standins.base import Invocation, parse_opts
from sim.standins.mount import write_mnttab


def main(inv: Invocation) -> int:
    opts, rest = parse_opts(inv, inv.argv, "fV", "o")
    if len(rest) != 1:
        inv.usage("expected one special or mount_point")
    name = rest[0]
    mounts = inv.state.setdefault("mounts", [])
    entry = next((m for m in reversed(mounts)
                  if name in (m["mount_point"], m["special"])), None)
    if entry is None:
        inv.fail(f"umount: warning: {name} not in mnttab\numount: {name} not mounted")
    target = os.path.join(inv.root, *[p for p in entry["mount_point"].split("/") if p])
    for rel in entry.get("files", []):
        path = os.path.join(target, *rel.split("/"))
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        elif os.path.lexists(path):
            os.unlink(path)
    mounts.remove(entry)
    write_mnttab(inv)
    return 0
