"""Grow the root pool to fill its disk: EFI label, data slice, then the pool.

Every boot, because a virtual disk can be grown at any time. Three independent checks, each
a no-op when already done, so an interrupted run resumes where it stopped:
1. the label: when the disk has more sectors than the EFI label covers, `format -d DISK -f
   CMDFILE` runs `partition / expand / label`, which moves the backup label and the
   reserved slice 8 to the new end of the disk (format(8), p_expand()); with NOINUSE_CHECK
   set, since the root pool's slice is in use and format would otherwise refuse `label`;
2. the slice: when free space lies between the pool's slice and slice 8, `fmthard -d
   part:tag:flag:start:size` grows the slice up to slice 8 (fmthard(8));
3. the pool: after growing the slice, or whenever the pool's EXPANDSZ (`zpool list -o`) is set,
   `zpool online -e rpool VDEV` (the vdev as zpool names it; zpool(8)).
Sector sizes come from prtvtoc (512 or 4096 bytes; the GPT array takes 32 or 4 sectors),
and the pool's slice is found by its ZFS label, so pools with or without an EFI system
partition (slice 0) are handled alike.
"""

from __future__ import annotations

import logging
import re

from fsm.errors import AgentError, ParseError
from fsm.record import field, record
from fsm.steps import Context, Outcome
from fsm.system import System
from operations import rootdisk

log = logging.getLogger(__name__)

PRTVTOC = "/usr/sbin/prtvtoc"
FORMAT = "/usr/sbin/format"
FMTHARD = "/usr/sbin/fmthard"
# On /var/run, a tmpfs: a full or read-only /var must not stop the pool from growing.
FORMAT_CMDFILE = "/var/run/metadata-agent/format-expand.cmd"
FORMAT_EXPAND_COMMANDS = "partition\nexpand\nlabel\nquit\nquit\n"
# format refuses to label a disk whose slices an active pool uses (the root pool, always)
# unless NOINUSE_CHECK is set: checkdevinuse() and libdiskmgt dm_inuse() test
# getenv("NOINUSE_CHECK") (usr/src/cmd/format/checkdev.c, usr/src/lib/libdiskmgt/common/
# entry.c); run from a command file the refusal exits 1. _LIBDISKMGT_INSTALL keeps
# libdiskmgt from starting its sysevent watcher threads (cache.c initialize()), as the
# original agent and the installers run it.
FORMAT_ENV = {"NOINUSE_CHECK": "1", "_LIBDISKMGT_INSTALL": "1"}
EFI_ENTRY_ARRAY_BYTES = 16384
TAG_USR, TAG_RESERVED = 4, 11
RESERVED_SLICE = 8

_DIMENSION = re.compile(r"^\*\s+(\d+) (bytes/sector|sectors|accessible sectors|"
                        r"sectors/track|tracks/cylinder|sectors/cylinder|cylinders|"
                        r"accessible cylinders)$")
_ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+([0-9a-fA-F]{2})\s+(\d+)\s+(\d+)\s+(\d+)(?:\s+(\S.*))?$")


class ExpandError(AgentError):
    """A disk tool ran but the disk did not end up as it should."""


@record(frozen=True)
class Slice:
    number: int
    tag: int
    flag: str      # as prtvtoc prints it (two hex digits), as fmthard -d reads it
    start: int
    size: int

    @property
    def last(self) -> int:
        return self.start + self.size - 1


@record(frozen=True)
class Vtoc:
    device: str
    sector_size: int
    sectors: int
    accessible: int
    efi: bool
    slices: dict[int, Slice] = field(default_factory=dict)

    @property
    def first_usable(self) -> int:
        return 2 + -(-EFI_ENTRY_ARRAY_BYTES // self.sector_size)

    @property
    def last_usable(self) -> int:
        return self.first_usable + self.accessible - 1

    @property
    def full_last_usable(self) -> int:
        """Where the last usable LBA is once the label covers the whole disk."""
        return self.sectors - self.first_usable


def parse_prtvtoc(text: str, device: str) -> Vtoc:
    """prtvtoc(8) output: the `* Dimensions:` block, then one row per slice."""
    command = f"prtvtoc {device}"
    dims: dict[str, int] = {}
    slices: dict[int, Slice] = {}
    for line in text.splitlines():
        if line.startswith("*"):
            m = _DIMENSION.match(line)
            if m:
                dims[m.group(2)] = int(m.group(1))
            continue
        if not line.strip():
            continue
        m = _ROW.match(line)
        if not m:
            raise ParseError(command, line, "expected a slice row: part tag flags first count last")
        sl = Slice(int(m.group(1)), int(m.group(2)), m.group(3), int(m.group(4)), int(m.group(5)))
        if sl.last != int(m.group(6)):
            raise ParseError(command, line, "last sector is not first + count - 1")
        slices[sl.number] = sl
    for key in ("bytes/sector", "sectors"):
        if key not in dims:
            raise ParseError(command, text[:200], f"no '{key}' in the Dimensions block")
    if dims["bytes/sector"] not in (512, 4096):
        raise ParseError(command, str(dims["bytes/sector"]), "sector size is not 512 or 4096")
    efi = "accessible sectors" in dims and "sectors/track" not in dims
    return Vtoc(device, dims["bytes/sector"], dims["sectors"], dims.get("accessible sectors", 0),
                efi, slices)


def read_vtoc(system: System, disk: str) -> Vtoc:
    device = f"/dev/rdsk/{disk}"
    return parse_prtvtoc(system.run([PRTVTOC, device]).stdout, device)


def expand_label(ctx: Context, disk: str, vtoc: Vtoc) -> Vtoc:
    """`format -d DISK -f CMDFILE` with partition/expand/label; returns the new label."""
    system = ctx.system
    system.write_file(FORMAT_CMDFILE, FORMAT_EXPAND_COMMANDS, mode=0o600)
    try:
        system.apply([FORMAT, "-d", disk, "-f", FORMAT_CMDFILE], env=FORMAT_ENV)
    finally:
        system.remove(FORMAT_CMDFILE)
    if system.dry_run:
        # What p_expand() will do: move slice 8 and the last usable LBA up by the growth.
        delta = vtoc.full_last_usable - vtoc.last_usable
        moved = dict(vtoc.slices)
        old = moved[RESERVED_SLICE]
        moved[RESERVED_SLICE] = Slice(old.number, old.tag, old.flag, old.start + delta, old.size)
        return Vtoc(vtoc.device, vtoc.sector_size, vtoc.sectors, vtoc.accessible + delta,
                    vtoc.efi, moved)
    after = read_vtoc(system, disk)
    if after.last_usable < after.full_last_usable:
        raise ExpandError(f"format expanded nothing on {disk}: the label still ends at sector "
                          f"{after.last_usable} of {after.sectors}")
    return after


def pool_slice(vtoc: Vtoc, data_slice: str) -> Slice:
    number = int(data_slice[1:])
    if number not in vtoc.slices:
        raise ExpandError(f"{vtoc.device}: the pool's slice {number} is not in the label")
    return vtoc.slices[number]


def grow_disk_slice(ctx: Context, disk: str, data_slice: str, pool: str,
                    outcome: Outcome) -> bool | None:
    """Steps 1 and 2 for one disk of `pool` whose data is on `data_slice` ("s1"): expand
    the EFI label to the disk, then grow the slice up to slice 8. True when the slice grew,
    False when it already reached slice 8, None when the disk is left alone (a warning
    says why). Shared by the root pool and the data pools (operations/datapools.py)."""
    system = ctx.system
    vtoc = read_vtoc(system, disk)
    reserved = vtoc.slices.get(RESERVED_SLICE)
    if not vtoc.efi or reserved is None or reserved.tag != TAG_RESERVED:
        outcome.warnings.append(f"pool {pool} not grown: {vtoc.device} has no EFI label with "
                                f"a reserved slice {RESERVED_SLICE}")
        return None
    if vtoc.last_usable > vtoc.full_last_usable:
        raise ExpandError(f"{vtoc.device}: the label ends at sector {vtoc.last_usable}, past the "
                          f"disk's last usable sector {vtoc.full_last_usable}")
    if vtoc.last_usable < vtoc.full_last_usable:
        log.info("%s: %d sectors, label covers %d: expanding the label", disk,
                 vtoc.sectors, vtoc.accessible)
        vtoc = expand_label(ctx, disk, vtoc)
        outcome.changed(f"EFI label of {disk} expanded to the disk's {vtoc.sectors} "
                        f"sectors of {vtoc.sector_size} bytes")
        reserved = vtoc.slices[RESERVED_SLICE]
    data = pool_slice(vtoc, data_slice)
    in_between = [s for s in vtoc.slices.values() if data.start < s.start < reserved.start]
    if data.tag != TAG_USR or in_between:
        why = (f"its tag {data.tag} is not usr ({TAG_USR})" if data.tag != TAG_USR
               else f"slice {in_between[0].number} lies between it and slice {RESERVED_SLICE}")
        outcome.warnings.append(f"slice {data.number} of {disk} not grown: {why}")
        return False
    if data.last < reserved.start - 1:
        new_size = reserved.start - data.start
        system.apply([FMTHARD, "-d",
                      f"{data.number}:{data.tag}:{data.flag}:{data.start}:{new_size}",
                      f"/dev/rdsk/{disk}s{data.number}"])
        outcome.changed(f"slice {data.number} of {disk} grown from {data.size} to "
                        f"{new_size} sectors")
        return True
    return False


def online_expand(ctx: Context, listing: rootdisk.PoolListing, vdevs: list[str],
                  outcome: Outcome) -> rootdisk.PoolListing:
    """Step 3: `zpool online -e POOL VDEV...`; the pool's listing after it."""
    system = ctx.system
    system.apply([rootdisk.ZPOOL, "online", "-e", listing.pool, *vdevs])
    after = rootdisk.list_pool(system, listing.pool)
    if after.size_bytes > listing.size_bytes:
        outcome.changed(f"pool {listing.pool} grown from {listing.size_bytes} to "
                        f"{after.size_bytes} bytes")
    return after


def expand_pool(ctx: Context) -> Outcome:
    system = ctx.system
    outcome = Outcome()
    try:
        root = rootdisk.find_root_disk(system, _link_wait_s(ctx))
    except rootdisk.UnsupportedPool as e:
        outcome.warnings.append(f"pool not grown: {e}")
        return outcome
    outcome.record["found_by"] = root.found_by
    if root.renamed:
        outcome.warnings.append(f"zpool names the root disk {root.vdev_name} (stale); the live "
                                f"disk is {root.disk}, found by its ZFS label")
    grew_slice = grow_disk_slice(ctx, root.disk, root.data_slice, root.pool, outcome)
    if grew_slice is None:
        return outcome
    # The listing find_root_disk read is still true unless the slice just grew.
    listing = (root.listing if root.listing is not None and not grew_slice
               else rootdisk.list_pool(system, root.pool))
    if grew_slice or listing.expand_bytes > 0:
        listing = online_expand(ctx, listing, [root.vdev_name], outcome)
    outcome.record["pool_size_bytes"] = listing.size_bytes
    if not outcome.changes:
        log.info("pool %s already fills %s (%d bytes)", root.pool, root.disk, listing.size_bytes)
    return outcome


def _link_wait_s(ctx: Context) -> float:
    """`timeouts.devlinks` when the settings have it, else the default."""
    value = ctx.settings.values.get("timeouts", {}).get("devlinks")
    return float(value) if value is not None else rootdisk.DEFAULT_LINK_WAIT_S
