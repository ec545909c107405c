"""Give the root pool of a new instance its own GUID (`zpool reguid rpool`).

Every VM made from one image starts with the image's pool GUID; two such pools meeting
(a disk attached to another VM, a shared backup target) would be confused. Once per
instance, with an intent record: the GUID before is recorded in the checkpoint before the
command runs, so a run killed after `zpool reguid` but before its done record is recognised
on resume (the GUID differs from the recorded one) instead of reguid-ing a second time.
"""

from __future__ import annotations

import logging
from typing import Any

from fsm.errors import AgentError
from fsm.steps import Context, Outcome
from operations import rootdisk

log = logging.getLogger(__name__)


class ReguidError(AgentError):
    """`zpool reguid` succeeded but the pool's GUID did not change."""


def intent(ctx: Context) -> dict[str, Any]:
    return {"pool": rootdisk.ROOT_POOL, "guid_before": rootdisk.pool_guid(ctx.system)}


def took_effect(ctx: Context, recorded: dict[str, Any]) -> bool:
    """The interrupted run reguid-ed the pool when its GUID is no longer the recorded one."""
    before = recorded.get("guid_before")
    if not before:
        return False
    now = rootdisk.pool_guid(ctx.system, recorded.get("pool", rootdisk.ROOT_POOL))
    return now != before


def reguid(ctx: Context) -> Outcome:
    before = rootdisk.pool_guid(ctx.system)
    ctx.system.apply([rootdisk.ZPOOL, "reguid", rootdisk.ROOT_POOL])
    if ctx.system.dry_run:
        return Outcome(changes=[f"pool {rootdisk.ROOT_POOL} would get a new GUID"])
    after = rootdisk.pool_guid(ctx.system)
    if after == before:
        raise ReguidError(f"zpool reguid {rootdisk.ROOT_POOL} exited 0 but the GUID is still "
                          f"{before}")
    log.info("pool %s GUID %s -> %s", rootdisk.ROOT_POOL, before, after)
    return Outcome(changes=[f"pool {rootdisk.ROOT_POOL} given a new GUID ({after})"],
                   record={"guid_before": before, "guid_after": after})
