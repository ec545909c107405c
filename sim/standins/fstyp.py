"""fstyp(8) stand-in: names the file system on a simulated disk and, with -a, its label.

Form accepted (illumos-gate usr/src/man/man8/fstyp.8): `fstyp [-a | -v] special`. The device
is the file under the root (`<root>/dev/dsk/c2t0d0p0`). Recognised: ISO 9660 (`hsfs`, label
from the primary volume descriptor) and FAT (`pcfs`, label from the boot sector). With `-a`
the type is followed by `name: value` attributes, strings in single quotes
(`gen_volume_label: 'cidata'`). Nothing recognised: `unknown_fstyp (no matches)`, exit 1,
as the man page documents. Standard library only: this runs under `python -S`.
"""

from __future__ import annotations

import os

from sim.standins.base import Invocation, parse_opts
from sim.standins.mount import NotIso, volume_label

HEAD_BYTES = 64 * 2048


def fat_label(head: bytes) -> str | None:
    """The volume label of a FAT12/16/32 boot sector, or None when it is not one."""
    if len(head) < 512 or head[510:512] != b"\x55\xaa":
        return None
    if head[54:59] == b"FAT12" or head[54:59] == b"FAT16" or head[54:57] == b"FAT":
        return head[43:54].decode("ascii", "replace").rstrip()
    if head[82:87] == b"FAT32":
        return head[71:82].decode("ascii", "replace").rstrip()
    return None


def main(inv: Invocation) -> int:
    opts, rest = parse_opts(inv, inv.argv, "av", "")
    if len(rest) != 1 or (opts.get("a") and opts.get("v")):
        inv.usage("usage: fstyp [-a | -v] special [:logical-drive]")
    special = rest[0]
    parts = [p for p in special.split("/") if p not in ("", ".")]
    try:
        if ".." in parts:
            raise OSError
        with open(os.path.join(inv.root, *parts), "rb") as f:
            head = f.read(HEAD_BYTES)
    except OSError:
        inv.fail(f"unknown_fstyp (cannot open {special})")
    found: list[tuple[str, str]] = []
    try:
        found.append(("hsfs", volume_label(head)))
    except NotIso:
        pass
    label = fat_label(head)
    if label is not None:
        found.append(("pcfs", "" if label == "NO NAME" else label))
    if not found:
        inv.fail("unknown_fstyp (no matches)")
    if len(found) > 1:
        inv.fail("unknown_fstyp (multiple matches)", code=2)
    fstype, label = found[0]
    inv.out(fstype)
    if opts.get("a"):
        inv.out("gen_clean: true")
        inv.out(f"gen_volume_label: '{label}'")
    return 0
