"""Give the root pool of a new instance its own GUID (`zpool reguid rpool`).

Every VM made from one image starts with the image's pool GUID; two such pools meeting
(a disk attached to another VM, a shared backup target) would be confused. Once per
instance, with an intent record: the GUID before is recorded in the checkpoint before the
command runs, so a run killed after `zpool reguid` but before its done record is recognised
on resume (the GUID differs from the recorded one) instead of reguid-ing a second time.

The checkpoint can be lost (both generations damaged, `metadata reset`); so the pool keeps
its own witness, the user property WITNESS_PROPERTY on its root dataset, set to the tag of
the instance it was reguid-ed for (operations/witness.py). Found equal to this instance's
tag, the step is done without a second reguid; another tag (the image builder's, copied with
the disk) means a new instance. An unknown instance id sets and trusts no witness: every VM
from the image would share it.
"""

from __future__ import annotations

import logging

from fsm.errors import AgentError, CommandError
from fsm.steps import Context, Outcome
from operations import rootdisk
from operations.witness import UNKNOWN_TAG, instance_tag

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any

log = logging.getLogger(__name__)

ZFS = "/usr/sbin/zfs"
WITNESS_PROPERTY = "org.illumos.metadata:reguid-instance"


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


def witness(ctx: Context) -> str | None:
    """The instance tag the pool says it was reguid-ed for, or None (unset, unreadable)."""
    result = ctx.system.run([ZFS, "get", "-H", "-o", "value", WITNESS_PROPERTY,
                             rootdisk.ROOT_POOL], check=False)
    value = result.stdout.strip()
    return value if result.returncode == 0 and value not in ("", "-") else None


def reguid(ctx: Context) -> Outcome:
    tag = instance_tag(ctx.checkpoint.instance_id)
    if tag != UNKNOWN_TAG and witness(ctx) == tag:
        log.info("pool %s was already given its own GUID for this instance (%s=%s): not "
                 "running zpool reguid again", rootdisk.ROOT_POOL, WITNESS_PROPERTY, tag)
        return Outcome(record={"witness": WITNESS_PROPERTY})
    before = rootdisk.pool_guid(ctx.system)
    ctx.system.apply([rootdisk.ZPOOL, "reguid", rootdisk.ROOT_POOL])
    if ctx.system.dry_run:
        return Outcome(changes=[f"pool {rootdisk.ROOT_POOL} would get a new GUID"])
    after = rootdisk.pool_guid(ctx.system)
    if after == before:
        raise ReguidError(f"zpool reguid {rootdisk.ROOT_POOL} exited 0 but the GUID is still "
                          f"{before}")
    log.info("pool %s GUID %s -> %s", rootdisk.ROOT_POOL, before, after)
    outcome = Outcome(changes=[f"pool {rootdisk.ROOT_POOL} given a new GUID ({after})"],
                      record={"guid_before": before, "guid_after": after})
    if tag != UNKNOWN_TAG:
        try:
            ctx.system.apply([ZFS, "set", f"{WITNESS_PROPERTY}={tag}", rootdisk.ROOT_POOL])
            outcome.changed(f"{WITNESS_PROPERTY}={tag} set on {rootdisk.ROOT_POOL}")
        except CommandError as e:
            outcome.warnings.append(f"the pool's witness of this reguid could not be set "
                                    f"({e}): a lost checkpoint would reguid it again")
    return outcome
