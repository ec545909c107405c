"""cloud-config `disk_setup` and `fs_setup`, the ZFS-shaped subset the agent can honour.

cloud-init's cc_disk_setup partitions a disk (`table_type: gpt|mbr`, `layout`,
`overwrite`) and then makes a file system per `fs_setup` entry (`label`, `filesystem`,
`device`, `partition`, `overwrite`, `replace_fs`, `extra_opts`, `cmd`). On illumos the one
file system that maps is ZFS on a whole disk, and `zpool create` writes the disk's EFI
label itself, so:
- an `fs_setup` entry with `filesystem: zfs`, a `label` (the pool's name) and an illumos
  `device` (`c2t0d0` or `/dev/dsk/c2t0d0`), no partition or `partition: auto|any|none`,
  becomes a pool on that disk, made only if the disk is blank (operations/datapools.py),
  exactly as a `[storage] pools` entry would be;
- a `disk_setup` entry for such a disk is accepted when it asks for what zpool does anyway
  (`table_type: gpt` or none, `layout: true` or none, `overwrite: false` or none), and
  on its own changes nothing;
- anything else (another file system, a Linux device name or an alias like `ephemeral0`,
  a numbered partition, `overwrite: true`, `replace_fs`, `extra_opts`, `cmd`, an MBR or a
  partition layout) is one warning per entry, and the entry is not applied. Nothing is
  ever overwritten: the agent makes pools on blank disks only.
"""

from __future__ import annotations

import re

from fsm.errors import shown

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any

_DEVICE = re.compile(r"^(?:/dev/dsk/)?(c\d+(?:t[0-9A-Za-z]+)?d\d+)$")
WHOLE_DISK_PARTITIONS = (None, "auto", "any", "none")
FS_KEYS = {"label", "filesystem", "device", "partition", "overwrite", "replace_fs",
           "extra_opts", "cmd"}


def _disk_setup(value: Any, where: str, fields: dict, warnings: list) -> None:
    if not isinstance(value, dict):
        warnings.append(f"{where}: must be a mapping of devices, not "
                        f"{type(value).__name__}; ignored")
        return
    for device, spec in value.items():
        at = f"{where}.{shown(device)}"
        if not isinstance(device, str) or not _DEVICE.match(device):
            warnings.append(f"{at}: not an illumos disk name (c2t0d0); ignored")
            continue
        if not isinstance(spec, dict):
            warnings.append(f"{at}: must be a mapping, not {type(spec).__name__}; ignored")
            continue
        table = spec.get("table_type", "gpt")
        layout = spec.get("layout", True)
        unknown = sorted(set(spec) - {"table_type", "layout", "overwrite"})
        if table != "gpt" or layout is not True or spec.get("overwrite") not in (None, False) \
                or unknown:
            warnings.append(f"{at}: only `table_type: gpt`, `layout: true` without overwrite "
                            f"is supported (zpool labels a whole disk itself), not "
                            f"{shown(spec)}; ignored")
            continue
        # Accepted: it asks only for the EFI label `zpool create` writes anyway.


def _fs_setup(value: Any, where: str, fields: dict, warnings: list) -> None:
    if not isinstance(value, list):
        warnings.append(f"{where}: must be a list, not {type(value).__name__}; ignored")
        return
    pools = list(fields.get("pools", ()))
    for i, entry in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(entry, dict):
            warnings.append(f"{at}: must be a mapping, not {type(entry).__name__}; ignored")
            continue
        fs = entry.get("filesystem")
        device = entry.get("device")
        m = _DEVICE.match(device) if isinstance(device, str) else None
        unsupported = sorted(k for k in entry if k in ("replace_fs", "extra_opts", "cmd")
                             or k not in FS_KEYS)
        if fs != "zfs":
            why = f"filesystem {shown(fs)} is not supported (only zfs, a pool on a whole disk)"
        elif not m:
            why = f"device {shown(device)} is not an illumos disk name (c2t0d0)"
        elif not isinstance(entry.get("label"), str):
            why = f"label {shown(entry.get('label'))} is not a pool name"
        elif entry.get("partition") not in WHOLE_DISK_PARTITIONS:
            why = (f"partition {shown(entry.get('partition'))} is not supported (a pool takes "
                   "the whole disk)")
        elif entry.get("overwrite") not in (None, False):
            why = "overwrite is not supported (pools are made on blank disks only)"
        elif unsupported:
            why = f"{', '.join(map(str, unsupported))} not supported"
        else:
            pools.append({"name": entry["label"], "disks": [m.group(1)]})
            continue
        warnings.append(f"{at}: {why}; ignored")
    fields["pools"] = tuple(pools)
