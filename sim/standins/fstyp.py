"""fstyp(8) stand-in: names the file system on a simulated disk and, with -a, its attributes.

Form accepted (illumos-gate usr/src/man/man8/fstyp.8): `fstyp [-a | -v] special`. The device
is the file under the root (`<root>/dev/dsk/c2t0d0p0`). Recognised: ISO 9660 (`hsfs`, label
from the primary volume descriptor) and FAT (`pcfs`), the latter as the libfstyp pcfs module
does (usr/src/cmd/fs.d/pcfs/fstyp/fstyp.c `is_pcfs()`, `get_label()`, `get_attr()`, see
sim/standins/pcfs.py): the media descriptor and BPB must pass its checks, the label is the
root directory's volume-label entry (else the boot sector's), 11 characters with their
padding, and `-a` lists get_attr()'s attributes in order, numbers in decimal, booleans as
true/false, strings in single quotes (`gen_volume_label: 'cidata     '`). Nothing
recognised (a disk the guest state gives an `fstype`, e.g. a `ufs` disk of `sim create
--disk`, is that type, from its libfstyp module's gen_clean attribute only): `unknown_fstyp
(no matches)`, exit 1, as the man page documents. UDF (`udfs`,
label the logical volume identifier, sim/standins/udfs.py) is recognised by its volume
recognition sequence; a bridge disc (ISO 9660 and UDF, what pycdlib and `genisoimage -udf`
write) is named `udfs` alone here: what the real fstyp answers for one was not checked
against its modules (usr/src/cmd/fs.d/udfs/fstyp/), so the agent accepts either. Standard
library only: this runs under `python -S`.
"""

from __future__ import annotations

import os

from sim.hardware import split_device
from sim.standins import pcfs, udfs
from sim.standins.base import Invocation, parse_opts
from sim.standins.mount import NotIso, volume_label

HEAD_BYTES = 64 * 2048


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
            image = f.read()
    except OSError:
        inv.fail(f"unknown_fstyp (cannot open {special})")
    found: list[tuple[str, list[tuple[str, object]]]] = []
    parsed = split_device(special)
    disk = inv.state.get("disks", {}).get(parsed[1]) if parsed else None
    if disk and disk.get("fstype"):   # a file system the guest state names (ufs, by kind)
        found.append((disk["fstype"], [("gen_clean", True)]))
    if udfs.has_udf(image[:HEAD_BYTES]):
        try:
            found.append(("udfs", [("gen_clean", True),
                                   ("gen_volume_label", udfs.udf_label(image))]))
        except udfs.NotUdf:
            pass
    try:
        if found:
            raise NotIso("a UDF bridge disc is named udfs")
        found.append(("hsfs", [("gen_clean", True),
                               ("gen_volume_label", volume_label(image[:HEAD_BYTES]))]))
    except NotIso:
        pass
    try:
        found.append(("pcfs", pcfs.attributes(image)))
    except pcfs.NotFat:
        pass
    if not found:
        inv.fail("unknown_fstyp (no matches)")
    if len(found) > 1:
        inv.fail("unknown_fstyp (multiple matches)", code=2)
    fstype, attrs = found[0]
    inv.out(fstype)
    if opts.get("a"):
        for name, value in attrs:
            shown = ("true" if value else "false") if isinstance(value, bool) else \
                f"'{value}'" if isinstance(value, str) else str(value)
            inv.out(f"{name}: {shown}")
    return 0
