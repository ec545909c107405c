"""STORAGE/grow-pools, every boot: grow the data pools whose disks grew.

Its own module because it runs on every boot and nearly always finds no data pool: one
`zpool list -H -o name`, and the disk probing (operations/diskprobe.py) is imported only
when a pool other than rpool is there to look at. The growing itself is rpool's
(operations/expand.py, which STORAGE/expand-pool has loaded already), disk by disk.
"""

from __future__ import annotations

from fsm.errors import AgentError, CommandError
from fsm.steps import Context, Outcome
from operations import expand, rootdisk


def grow_pools(ctx: Context) -> Outcome:
    outcome = Outcome()
    for pool in sorted(rootdisk.active_pools(ctx.system) - {rootdisk.ROOT_POOL}):
        try:
            _grow_one(ctx, pool, outcome)
        except (CommandError, AgentError) as e:
            outcome.warnings.append(f"pool {pool} not grown: {e}")
    return outcome


def _grow_one(ctx: Context, pool: str, outcome: Outcome) -> None:
    from operations import diskprobe

    system = ctx.system
    listing = rootdisk.list_pool(system, pool)
    guid = rootdisk.pool_guid(system, pool)
    disks = diskprobe.pool_disks(system, pool, listing)
    grown: list[str] = []
    for disk in disks:
        data_slice = rootdisk.pool_slice_on(system, disk, None, pool, guid)
        if data_slice is None:
            outcome.warnings.append(f"pool {pool}: {disk} carries no label of the pool "
                                    f"(guid {guid}); its disk is not grown")
            continue
        if expand.grow_disk_slice(ctx, disk, data_slice, pool, outcome):
            grown.append(disk)
    if grown or listing.expand_bytes > 0:
        listing = expand.online_expand(ctx, listing, grown or disks, outcome)
    outcome.record.setdefault("pool_size_bytes", {})[pool] = listing.size_bytes
