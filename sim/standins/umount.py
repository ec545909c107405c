"""umount(8) stand-in: undoes what the mount stand-in did.

Form accepted (illumos-gate usr/src/man/man8/umount.8): `umount [-f] [-V] [-o options]
special | mount_point`. The extracted files are removed from the mount point, which is left
as the empty directory it was, and the entry leaves `state["mounts"]` and `/etc/mnttab`.
After usr/src/cmd/fs.d/umount.c main(), doexec(), rpterr(), usage(): getopt `ado:Vf?`;
not mounted: `umount: warning: NAME not in mnttab` (or `no entries found in /etc/mnttab`)
then `umount: NAME not mounted` (EINVAL), exit 1; usage() on standard error, exit 1.
Not modelled: `-a`, `-V`, the fstype-specific umount commands, busy mounts.
Standard library only: this runs under `python -S`.
"""

from __future__ import annotations

import os

from sim.standins.base import BadOption, Exit, Invocation, posix_getopt
from sim.standins.mount import write_mnttab

USAGE = ("Usage:\numount [-f] [-V] [-o specific_options] {special | mount-point}\n"
         "umount -a [-f] [-V] [-o specific_options] [mount_point ...]")


def main(inv: Invocation) -> int:
    try:
        _, rest = posix_getopt(inv.argv, "fV", "o")
    except BadOption as e:
        inv.err(f"umount: illegal option -- {e.args[0]}")
        rest = []
    if len(rest) != 1:                      # usage(): standard error, exit 1
        inv.err(USAGE)
        raise Exit(1)
    name = rest[0]
    mounts = inv.state.setdefault("mounts", [])
    entry = next((m for m in reversed(mounts)
                  if name in (m["mount_point"], m["special"])), None)
    if entry is None:
        # main(): the warning, then umount2() fails with EINVAL, which rpterr() words.
        warning = "no entries found in /etc/mnttab" if not mounts else f"{name} not in mnttab"
        inv.fail(f"umount: warning: {warning}\numount: {name} not mounted")
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
