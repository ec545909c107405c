"""What data pools are wanted: `[storage] pools` of the settings, checked entry by entry.

One entry: `{name = "tank", disks = ["c2t0d0", "size>=10G", "all-blank"], vdev = "mirror",
mountpoint = "/tank", autoexpand = true}`. Only `name` is required; `disks` may be left out
only for a pool that is imported (an exported pool of that name on an attached disk).
A bad entry is a warning naming its index, field and value, and only that pool is left
out (blast radius); the settings file as a whole is not refused for it, since a typo in a
pool must not keep the guest off the network.

Pool names are checked as illumos checks them, the strictest build's rules, so a name
never passes here and fails in `zpool create`: pool_namecheck() in
usr/src/common/zfs/zfs_namecheck.c (letters, digits, `-_.:`, a letter first, not `mirror`
or `raidz`, not disk-like `c0...`, shorter than 256) and libzfs zpool_name_valid() (no
`mirror`, `raidz`, `draid`, `spare` or `log` prefix). Newer builds also allow a space;
older ones do not, so neither does this.
"""

from __future__ import annotations

import re

from fsm.errors import shown
from fsm.record import record

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any

VDEV_TYPES = {"stripe": 1, "mirror": 2, "raidz": 2, "raidz2": 3}   # type -> fewest disks
ALL_BLANK = "all-blank"
RESERVED_PREFIXES = ("mirror", "raidz", "draid", "spare", "log")
FIELDS = ("name", "disks", "vdev", "mountpoint", "autoexpand")
# Bounds on what one source may ask for: the pools' names and disks go into the step's
# intent and done records, and metadata (cloud-config) must not grow the checkpoint.
MAX_POOLS = 32
MAX_DISKS = 64
_NAME_CHARS = re.compile(r"[A-Za-z0-9_.:-]*\Z")
_DEVICE = re.compile(r"^(?:/dev/dsk/)?(c\d+(?:t[0-9A-Za-z]+)?d\d+)$")
_SIZE_SELECTOR = re.compile(r"^size\s*(>=|<=|>|<|=)\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)i?B?$",
                            re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@record(frozen=True)
class SizeRule:
    op: str
    size_bytes: int

    def matches(self, size: int) -> bool:
        return {">=": size >= self.size_bytes, "<=": size <= self.size_bytes,
                ">": size > self.size_bytes, "<": size < self.size_bytes,
                "=": size == self.size_bytes}[self.op]


@record(frozen=True)
class PoolSpec:
    name: str
    devices: tuple[str, ...]          # whole-disk names given outright (c2t0d0)
    rules: tuple[SizeRule, ...]       # disks chosen by size, among the blank ones
    all_blank: bool
    vdev: str
    mountpoint: str | None
    autoexpand: bool | None
    origin: str                       # e.g. "settings storage.pools[0]"

    @property
    def by_selector(self) -> bool:
        return bool(self.rules) or self.all_blank

    @property
    def min_disks(self) -> int:
        return VDEV_TYPES[self.vdev]


def pool_name_error(name: str) -> str | None:
    """Why illumos would refuse `name` as a pool name, or None."""
    if not name:
        return "is empty"
    if len(name) >= 256:
        return "is 256 characters or longer"
    if not _NAME_CHARS.match(name):
        bad = next(c for c in name if not _NAME_CHARS.match(c))
        return f"has the character {bad!r} (allowed: letters, digits, - _ . :)"
    if not name[0].isalpha():
        return "does not begin with a letter"
    if any(name.startswith(p) for p in RESERVED_PREFIXES):
        return f"begins with a reserved word ({', '.join(RESERVED_PREFIXES)})"
    if name[0] == "c" and name[1:2].isdigit():
        return "looks like a disk name (c0...), which zpool reserves"
    return None


def _disks(origin: str, value: Any) -> tuple[tuple[str, ...], tuple[SizeRule, ...], bool] | str:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return f"field disks: {shown(value)} is not a list of strings"
    if len(value) > MAX_DISKS:
        return f"field disks: {len(value)} entries, more than {MAX_DISKS}"
    devices: list[str] = []
    rules: list[SizeRule] = []
    all_blank = False
    for item in value:
        m = _DEVICE.match(item.strip())
        s = _SIZE_SELECTOR.match(item.strip())
        if item.strip() == ALL_BLANK:
            all_blank = True
        elif m:
            if m.group(1) in devices:
                return f"field disks: {shown(item)} is named twice"
            devices.append(m.group(1))
        elif s:
            rules.append(SizeRule(s.group(1), int(float(s.group(2)) * _UNITS[s.group(3).upper()])))
        else:
            return (f"field disks: {shown(item)} is not a disk name (c2t0d0), a size rule "
                    f"(size>=10G) or {ALL_BLANK}")
    return tuple(devices), tuple(rules), all_blank


def parse_entry(origin: str, entry: Any) -> PoolSpec | str:
    """One pool, or the warning that says why it is left out."""
    if not isinstance(entry, dict):
        return f"{origin}: {shown(entry)} is not a table; pool not made"
    for key in entry:
        if key not in FIELDS:
            return f"{origin}: unknown field {shown(key)} (known: {', '.join(FIELDS)}); pool not made"
    name = entry.get("name")
    if not isinstance(name, str):
        return f"{origin}: field name: {shown(name)} is not a pool name; pool not made"
    why = pool_name_error(name)
    if why:
        return f"{origin}: field name: {shown(name)} {why}; pool not made"
    disks = _disks(origin, entry.get("disks", []))
    if isinstance(disks, str):
        return f"{origin} ({name}): {disks}; pool not made"
    devices, rules, all_blank = disks
    vdev = entry.get("vdev", "stripe")
    if vdev not in VDEV_TYPES:
        return (f"{origin} ({name}): field vdev: {shown(vdev)} is not one of "
                f"{', '.join(VDEV_TYPES)}; pool not made")
    mountpoint = entry.get("mountpoint")
    if mountpoint is not None and (not isinstance(mountpoint, str) or not (
            mountpoint in ("legacy", "none") or (mountpoint.startswith("/") and
                                                 "\n" not in mountpoint))):
        return (f"{origin} ({name}): field mountpoint: {shown(mountpoint)} is not an absolute "
                "path, legacy or none; pool not made")
    autoexpand = entry.get("autoexpand")
    if autoexpand is not None and not isinstance(autoexpand, bool):
        return f"{origin} ({name}): field autoexpand: {shown(autoexpand)} is not true or false; " \
               "pool not made"
    if devices and not (rules or all_blank) and len(devices) < VDEV_TYPES[vdev]:
        return (f"{origin} ({name}): field disks: a {vdev} needs at least {VDEV_TYPES[vdev]} "
                f"disks, {len(devices)} named; pool not made")
    return PoolSpec(name, devices, rules, all_blank, vdev, mountpoint, autoexpand, origin)


def parse_specs(entries: Any, origin: str) -> tuple[list[PoolSpec], list[str]]:
    """The valid pools of a list of entries, and a warning for each entry left out."""
    specs: list[PoolSpec] = []
    warnings: list[str] = []
    if not isinstance(entries, list):
        return [], [f"{origin}: {shown(entries)} is not a list of pools"]
    if len(entries) > MAX_POOLS:
        warnings.append(f"{origin}: {len(entries)} pools, more than {MAX_POOLS}; those after "
                        f"the first {MAX_POOLS} are ignored")
        entries = entries[:MAX_POOLS]
    for i, entry in enumerate(entries):
        spec = parse_entry(f"{origin}[{i}]", entry)
        if isinstance(spec, str):
            warnings.append(spec)
        elif any(s.name == spec.name for s in specs):
            warnings.append(f"{origin}[{i}]: pool {shown(spec.name)} is already wanted by an "
                            "earlier entry; this one is ignored")
        else:
            specs.append(spec)
    return specs, warnings


def wanted_pools(settings: Any, metadata: Any = None) -> tuple[list[PoolSpec], list[str]]:
    """The pools the settings ask for (the TOML file or config/storage_pools), then those
    of the metadata's cloud-config `fs_setup`; a name both give is the settings'."""
    specs, warnings = parse_specs(settings.get("storage.pools"), "settings storage.pools")
    cloud = getattr(metadata, "cloud_config", None) if metadata is not None else None
    if cloud is not None and cloud.pools:
        origin = f"{getattr(metadata, 'source', 'metadata')}: cloud-config fs_setup pools"
        more, more_warnings = parse_specs(list(cloud.pools), origin)
        warnings += more_warnings
        for spec in more:
            if any(s.name == spec.name for s in specs):
                warnings.append(f"{spec.origin}: pool {shown(spec.name)} is also in the "
                                "settings, which win; ignored")
            else:
                specs.append(spec)
    return specs, warnings
