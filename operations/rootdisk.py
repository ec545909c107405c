"""Which disk holds the root pool, found fresh on every boot and verified.

The pool's label caches the `/dev/dsk` name the disk had when the image was built. On a
cloud that names the same disk differently (built under bhyve as `c1t0d0`, booted on
DigitalOcean as `c3t0d0`) `zpool list`/`zpool status` keep printing the stale name, and
early in boot the `/dev` links may not exist yet at all. The original agent trusted the
printed name, so `prtvtoc` failed and the guest got no network (shared/seeds). Here a name
is used only when `/dev/dsk/<name>` exists AND the ZFS label on it carries the pool's GUID;
otherwise we ask `zpool status` to refresh the name, then look for the disk whose label
carries the GUID (`zdb -l`), waiting a bounded time for the links to appear. Nothing here is
checkpointed: a device name from an earlier boot is exactly what must not be trusted.
"""

from __future__ import annotations

import logging
import re
import time

from fsm.errors import AgentError, ParseError
from fsm.record import record
from fsm.system import System

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Callable

log = logging.getLogger(__name__)

ZPOOL = "/usr/sbin/zpool"
ZDB = "/usr/sbin/zdb"
ROOT_POOL = "rpool"
DEV_DSK = "/dev/dsk"
DEFAULT_LINK_WAIT_S = 10.0
LINK_POLL_S = 0.5

# cNtXdN or cNdN, optionally with a slice (sN) or fdisk partition (pN).
_CTD = re.compile(r"^(c\d+(?:t[0-9A-Za-z]+)?d\d+)(s\d+|p\d+)?$")
_LABEL_GUID = re.compile(r"^    pool_guid: (\d+)$")
_LABEL_NAME = re.compile(r"^    name: '(.*)'$")


class RootDiskError(AgentError):
    """The root pool's disk could not be found under /dev/dsk within the wait."""


class UnsupportedPool(Exception):
    """A root pool layout the agent leaves alone (mirror, several vdevs, not a ctd disk)."""


@record(frozen=True)
class VdevRow:
    name: str


@record(frozen=True)
class PoolListing:
    pool: str
    size_bytes: int
    expand_bytes: int     # the pool's EXPANDSZ: what growing its vdevs would add
    vdevs: tuple[VdevRow, ...]


@record(frozen=True)
class RootDisk:
    pool: str
    vdev_name: str        # the name zpool knows the vdev by: what `zpool online` accepts
    disk: str             # the live whole-disk name, e.g. c3t0d0
    slice: str | None     # "s1" when zpool names a slice; None for a whole-disk vdev
    data_slice: str       # the slice whose ZFS label carries the pool
    renamed: bool         # zpool's name is stale: the live disk is called otherwise
    found_by: str
    listing: PoolListing | None = None  # `zpool list` as read to find it (sizes included)


def _number(command: str, line: str, text: str) -> int | None:
    if text == "-":
        return None
    if not text.isdigit():
        raise ParseError(command, line, f"expected a number or '-', not {text!r}")
    return int(text)


# The pool line's columns, named: their positions differ across illumos builds (CKPOINT
# came in 2018, between FREE and EXPANDSZ), so nothing here counts columns.
LIST_COLUMNS = ("name", "size", "expandsize")


def list_pool(system: System, pool: str = ROOT_POOL) -> PoolListing:
    """`zpool list -Hpv -o name,size,expandsize POOL`: the pool line, then a tab-led line
    per vdev. `-o` names the pool line's columns; vdev lines ignore it (print_list_stats()
    prints a fixed set that depends on the build), so only their first field, the vdev's
    name, is read."""
    argv = [ZPOOL, "list", "-Hpv", "-o", ",".join(LIST_COLUMNS), pool]
    command = " ".join(["zpool"] + argv[1:])
    out = system.run(argv).stdout
    lines = [ln for ln in out.splitlines() if ln.strip()]
    if not lines:
        raise ParseError(command, "", "no output")
    head = lines[0].split("\t")
    if len(head) != len(LIST_COLUMNS) or head[0] != pool:
        raise ParseError(command, lines[0], f"expected the line of pool {pool}: "
                                            f"{', '.join(LIST_COLUMNS)}")
    size = _number(command, lines[0], head[1])
    expand = _number(command, lines[0], head[2])
    vdevs: list[VdevRow] = []
    for line in lines[1:]:
        fields = line.split("\t")
        if len(fields) < 3 or fields[0] != "" or not fields[1]:
            raise ParseError(command, line, "expected a tab-led vdev line")
        vdevs.append(VdevRow(fields[1]))
    return PoolListing(pool, size or 0, expand or 0, tuple(vdevs))


def pool_guid(system: System, pool: str = ROOT_POOL) -> str:
    """`zpool get -Hp -o value guid POOL`."""
    out = system.run([ZPOOL, "get", "-Hp", "-o", "value", "guid", pool]).stdout.strip()
    if not out.isdigit():
        raise ParseError(f"zpool get guid {pool}", out, "expected a decimal GUID")
    return out


def label_pool(system: System, device: str) -> tuple[str, str] | None:
    """(pool name, pool guid) from the ZFS label on `device`, or None when it has none.

    `zdb -l` exits 0 with a label, 2 when there is none, 1 when it cannot open the device.
    """
    result = system.run([ZDB, "-l", device], check=False)
    if result.returncode != 0:
        log.debug("no ZFS label on %s (zdb exit %d)", device, result.returncode)
        return None
    name = guid = None
    for line in result.stdout.splitlines():
        m = _LABEL_NAME.match(line)
        if m and name is None:
            name = m.group(1)
        m = _LABEL_GUID.match(line)
        if m and guid is None:
            guid = m.group(1)
    if name is None or guid is None:
        raise ParseError(f"zdb -l {device}", result.stdout[:200], "no name or pool_guid in label")
    return name, guid


def split_vdev_name(name: str) -> tuple[str, str | None]:
    """`c1t0d0` -> ("c1t0d0", None); `c1t0d0s1` -> ("c1t0d0", "s1")."""
    m = _CTD.match(name)
    if not m or (m.group(2) or "").startswith("p"):
        raise UnsupportedPool(f"root pool vdev {name!r} is not a disk or slice name (cXtYdZ[sN])")
    return m.group(1), m.group(2)


def disks_present(system: System) -> list[str]:
    """Whole-disk names with any node under /dev/dsk, sorted."""
    names = {m.group(1) for m in map(_CTD.match, system.listdir(DEV_DSK)) if m}
    return sorted(names)


def pool_slice_on(system: System, disk: str, slice_hint: str | None, pool: str,
                  guid: str) -> str | None:
    """The slice of `disk` whose ZFS label is `pool` with this GUID, if any.

    A whole-disk vdev sits on s0, or on s1 behind an EFI system partition (`zpool create -B`).
    """
    for sl in [slice_hint] if slice_hint else ["s0", "s1"]:
        device = f"{DEV_DSK}/{disk}{sl}"
        if not system.exists(device):
            continue
        found = label_pool(system, device)
        if found == (pool, guid):
            return sl
        if found:
            log.info("%s carries pool %s (guid %s), not %s", device, found[0], found[1], pool)
    return None


def find_root_disk(system: System, wait_s: float = DEFAULT_LINK_WAIT_S, pool: str = ROOT_POOL,
                   clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> RootDisk:
    """Find and verify the live disk of the one-disk root pool (see the module docstring)."""
    listing = list_pool(system, pool)
    if len(listing.vdevs) != 1:
        raise UnsupportedPool(f"root pool {pool} has {len(listing.vdevs)} vdev lines; only a "
                              "one-disk pool is grown")
    name = listing.vdevs[0].name
    disk, slice_hint = split_vdev_name(name)
    guid = pool_guid(system, pool)
    found = pool_slice_on(system, disk, slice_hint, pool, guid)
    if found:
        log.info("root pool %s is on %s (as zpool reports it, label verified)", pool, disk)
        return RootDisk(pool, name, disk, slice_hint, found, False, "zpool list", listing)

    named = f"{DEV_DSK}/{disk}{slice_hint or ''}"
    log.warning("zpool reports root pool %s on %s, but %s %s; looking for the live disk",
                pool, name, named, "carries no label of this pool" if system.exists(named)
                else "does not exist")
    # libzfs refreshes a stale path from the devid when zpool runs as root.
    system.run([ZPOOL, "status", pool])
    refreshed = list_pool(system, pool)
    if len(refreshed.vdevs) == 1 and refreshed.vdevs[0].name != name:
        name = refreshed.vdevs[0].name
        disk, slice_hint = split_vdev_name(name)
        found = pool_slice_on(system, disk, slice_hint, pool, guid)
        if found:
            log.info("after `zpool status` the root pool is on %s (label verified)", disk)
            return RootDisk(pool, name, disk, slice_hint, found, False, "zpool status refresh",
                            refreshed)

    deadline = clock() + wait_s
    tried: list[str] = []
    while True:
        tried = disks_present(system)
        for candidate in tried:
            found = pool_slice_on(system, candidate, slice_hint, pool, guid)
            if found:
                renamed = candidate != disk
                log.warning("root pool %s (guid %s) found on %s%s by its ZFS label; zpool "
                            "still calls it %s", pool, guid, candidate, found, name)
                return RootDisk(pool, name, candidate, slice_hint, found, renamed,
                                "ZFS label carries the pool guid", refreshed)
        if clock() >= deadline:
            break
        sleep(LINK_POLL_S)
    raise RootDiskError(
        f"root pool {pool} (guid {guid}): zpool reports {name}, but no disk under {DEV_DSK} "
        f"carries its ZFS label after waiting {wait_s:g} s for /dev links "
        f"(disks present: {', '.join(tried) or 'none'})")


def active_pools(system: System) -> set[str]:
    """`zpool list -H -o name`: the imported pools."""
    return {ln.strip() for ln in system.run([ZPOOL, "list", "-H", "-o", "name"]
                                            ).stdout.splitlines() if ln.strip()}
