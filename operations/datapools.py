"""Data pools: made once per instance on blank disks, or imported (growing them every boot
is operations/growpools.py).

STORAGE/pools (per instance) takes the wanted pools (operations/poolspec.py) and, for each:
- a pool of that name already imported is finished: `autoexpand` is set where asked and
  left alone otherwise; if the settings name its disks and it sits on others, that is
  reported, never changed;
- an exported pool of that name on attached disks (`zpool import` lists it) is imported
  (`zpool import NAME`), then finished as above;
- otherwise its disks are chosen among the blank ones (operations/diskprobe.py: no ZFS
  label, no importable pool, no file system, no partition table; never removable media)
  and `zpool create [-o autoexpand=on] [-m MOUNTPOINT] NAME [mirror|raidz|raidz2] DISK...`
  makes it. Never `-f`: a disk zpool finds in use is refused too. A disk named outright
  that is not blank refuses that pool (no partial mirror), with a warning naming the disk
  and why; the other pools are still made.
Crash safety: the machine records the step's intent (which pool is to be made, imported or
finished, on which disks) before it runs, and a rerun finds a pool made by the killed run
by its name, so `zpool create` is never run twice for one pool; took_effect() asks whether
anything is left to do.
"""

from __future__ import annotations

import logging

from fsm.errors import AgentError, CommandError
from fsm.record import record
from fsm.steps import Context, Outcome
from operations import rootdisk

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:   # the per-boot grow step runs without the settings' pool parser
    from typing import Any

    from operations import diskprobe
    from operations.poolspec import PoolSpec

log = logging.getLogger(__name__)

PLAN_FACT = "datapools.plan"


@record(frozen=True)
class Planned:
    spec: PoolSpec
    action: str                 # create, import, exists, refused
    disks: tuple[str, ...]
    why: str = ""               # for refused: the warning


def _choose_disks(spec: PoolSpec, probe: diskprobe.Probe, claimed: set[str]) -> Planned:
    for disk in spec.devices:
        why = probe.not_blank(disk)
        if why:
            return Planned(spec, "refused", (), f"{spec.origin}: pool {spec.name} not made: "
                                                f"disk {disk} {why}")
        if disk in claimed:
            return Planned(spec, "refused", (), f"{spec.origin}: pool {spec.name} not made: "
                                                f"disk {disk} is wanted by another pool")
    chosen = list(spec.devices)
    if spec.by_selector:
        for name in sorted(probe.disks):
            if name in chosen or name in claimed or probe.not_blank(name):
                continue
            size = probe.disks[name].size_bytes
            if all(rule.matches(size) for rule in spec.rules):
                chosen.append(name)
    if len(chosen) < spec.min_disks:
        return Planned(spec, "refused", (), (
            f"{spec.origin}: pool {spec.name} not made: a {spec.vdev} needs {spec.min_disks} "
            f"blank disk(s), {len(chosen)} found ({', '.join(chosen) or 'none'})"))
    return Planned(spec, "create", tuple(chosen))


def plan(ctx: Context) -> tuple[list[Planned], list[str]]:
    """What each wanted pool needs, and the settings' warnings. Runs no command when no
    pool is wanted."""
    cloud = getattr(ctx.metadata, "cloud_config", None)
    if not ctx.settings.get("storage.pools") and not (cloud is not None and cloud.pools):
        return [], []  # the common case: no pool wanted, nothing to parse or probe
    from operations import diskprobe
    from operations.poolspec import wanted_pools

    specs, warnings = wanted_pools(ctx.settings, ctx.metadata)
    if not specs:
        return [], warnings
    probe = diskprobe.Probe(ctx.system).load()
    planned: list[Planned] = []
    claimed: set[str] = set()
    for spec in specs:
        if spec.name in probe.active:
            item = Planned(spec, "exists", tuple(diskprobe.pool_disks(ctx.system, spec.name)))
        elif spec.name in probe.importable:
            item = Planned(spec, "import", probe.importable[spec.name].disks)
        else:
            item = _choose_disks(spec, probe, claimed)
        claimed.update(item.disks)
        planned.append(item)
    return planned, warnings


def intent(ctx: Context) -> dict[str, Any]:
    planned, warnings = plan(ctx)
    ctx.facts[PLAN_FACT] = (planned, warnings)
    return {"pools": {p.spec.name: {"action": p.action, "disks": list(p.disks)}
                      for p in planned}}


def _autoexpand(ctx: Context, pool: str) -> str:
    return ctx.system.run([rootdisk.ZPOOL, "get", "-Hp", "-o", "value", "autoexpand",
                           pool]).stdout.strip()


def took_effect(ctx: Context, recorded: dict[str, Any]) -> bool:
    """Whether nothing is left: every pool the interrupted run meant to make or import is
    imported, with autoexpand as asked. Otherwise the step runs again (and finds the pools
    it already made by name)."""
    planned, _ = plan(ctx)
    for item in planned:
        if item.action != "exists":   # to make, import, or refused (its warning unrecorded)
            return False
        if item.spec.autoexpand is not None and \
                _autoexpand(ctx, item.spec.name) != ("on" if item.spec.autoexpand else "off"):
            return False
    return True


def _finish(ctx: Context, item: Planned, outcome: Outcome) -> None:
    """An imported pool: report other disks than the settings name; set autoexpand."""
    spec = item.spec
    if spec.devices and not spec.by_selector and set(item.disks) != set(spec.devices):
        outcome.warnings.append(
            f"{spec.origin}: pool {spec.name} exists on {', '.join(item.disks) or 'no disk'}, "
            f"not on {', '.join(spec.devices)} as the settings say: left as it is")
    if spec.autoexpand is None:
        return
    wanted = "on" if spec.autoexpand else "off"
    if _autoexpand(ctx, spec.name) != wanted:
        ctx.system.apply([rootdisk.ZPOOL, "set", f"autoexpand={wanted}", spec.name])
        outcome.changed(f"pool {spec.name}: autoexpand={wanted}")


def _create(ctx: Context, item: Planned, outcome: Outcome) -> None:
    spec = item.spec
    argv = [rootdisk.ZPOOL, "create"]
    if spec.autoexpand:
        argv += ["-o", "autoexpand=on"]
    if spec.mountpoint:
        argv += ["-m", spec.mountpoint]
    argv.append(spec.name)
    if spec.vdev != "stripe":
        argv.append(spec.vdev)
    argv += list(item.disks)
    ctx.system.apply(argv)
    outcome.changed(f"pool {spec.name} made ({spec.vdev} of {', '.join(item.disks)})")


def ensure_pools(ctx: Context) -> Outcome:
    outcome = Outcome()
    planned, warnings = ctx.facts.pop(PLAN_FACT, None) or plan(ctx)
    outcome.warnings.extend(warnings)
    for item in planned:
        try:
            if item.action == "refused":
                outcome.warnings.append(item.why)
                continue
            if item.action == "create":
                _create(ctx, item, outcome)
            elif item.action == "import":
                ctx.system.apply([rootdisk.ZPOOL, "import", item.spec.name])
                outcome.changed(f"pool {item.spec.name} imported from "
                                f"{', '.join(item.disks)}")
            if item.action != "create":
                _finish(ctx, item, outcome)
        except (CommandError, AgentError) as e:
            # One pool's refusal (zpool found a disk in use) leaves the others to be made.
            outcome.warnings.append(f"{item.spec.origin}: pool {item.spec.name}: {e}")
    outcome.record["pools"] = {p.spec.name: p.action for p in planned}
    return outcome
