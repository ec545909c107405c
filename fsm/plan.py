"""`metadata plan`: DETECT and FETCH for real, then every later step against a dry-run
System, which records instead of performing each write and each command that changes the
guest. Nothing is written, not even the checkpoint.

`metadata plan --seed FILE` is the image builder's dry run: it lays out a throwaway
simulated QEMU guest (sim/) in a temporary directory, writes the seed at offset 0 of its
seed disk as a hypervisor would present it, and plans that guest, so the host running the
command is never touched. sim/ is imported only here and only then: it is a developer tool
that the zipapp installed on guests does not ship.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from fsm.checkpoint import DONE, UNKNOWN_INSTANCE, CheckpointStore
from fsm.errors import SMF_EXIT_OK, AgentError, ConfigError
from fsm.phases import GATHER_PHASES, PHASES
from fsm.settings import Settings
from fsm.steps import PHASE_NAMES, Context, Frequency, Step
from fsm.system import System
from providers.localdisk import MOUNT_POINT

log = logging.getLogger(__name__)


SEED_PLATFORM = "qemu"


@contextmanager
def seeded_guest(seed: str) -> Iterator[str]:
    """The root of a fresh simulated QEMU guest whose seed disk holds `seed`; removed after."""
    from fsm.seed.inspect import attachable_image

    try:
        from sim import guest as sim_guest
        from sim.emulators import cpio as cpio_emulator
    except ImportError:
        raise ConfigError("plan --seed", "sim", "needs the simulated guest (the sim/ "
                          "package), which this build of the agent does not ship; run "
                          "`metadata plan --seed` from a source checkout, or check the seed "
                          "with `metadata seed inspect`") from None
    what, image = attachable_image(seed)
    with tempfile.TemporaryDirectory(prefix="metadata-plan-seed-") as tmp:
        root = os.path.join(tmp, "guest")
        sim_guest.create(root, SEED_PLATFORM)
        disk = cpio_emulator.seed_disk(SEED_PLATFORM)
        for kind in ("dsk", "rdsk"):   # drop the emulator's default seed, keep the node
            os.truncate(os.path.join(root, "dev", kind, f"{disk}p0"), 0)
        cpio_emulator.write_seed(root, disk, image)
        # A dry run records the agent's mkdir of the volume mount point instead of doing it,
        # so the NoCloud mount would fail on this fresh guest; an earlier boot would have
        # left the directory, and this guest is ours to prepare.
        os.makedirs(os.path.join(root, MOUNT_POINT.lstrip("/")), mode=0o700, exist_ok=True)
        print(f"seed: {seed} ({what}, {len(image)} bytes) attached as the seed disk {disk} "
              f"of a simulated {SEED_PLATFORM} guest")
        yield root


def _summary(ctx: Context) -> None:
    from fsm.seed.render import describe

    if ctx.metadata is not None:
        print("\nthe configuration the agent would apply")
        for line in describe(ctx.metadata):
            print(f"  {line}")


def _done_before(ctx: Context, step: Step) -> str | None:
    """Why the next boot would not run `step`: the machine's own rule (fsm/machine.py
    `_is_done`) applied to the checkpoint's done records. Per-boot steps run every boot."""
    if step.frequency is Frequency.PER_BOOT:
        return None
    rec = ctx.checkpoint.record_of(step, ctx.checkpoint.instance_id)
    if not rec or rec.get("status") != DONE:
        return None
    if step.frequency is Frequency.ONCE:
        return "already done (once for this image)"
    return f"already done for instance {ctx.checkpoint.instance_id or UNKNOWN_INSTANCE}"


def run_plan(system: System, settings: Settings, summary: bool = False) -> int:
    store = CheckpointStore(System(system.root, dry_run=True))
    ctx = Context(system=system, settings=settings, checkpoint=store.load())
    for phase in GATHER_PHASES:
        for step in PHASES[phase]:
            step.run(ctx)  # AgentError propagates: no plan without metadata
    md = ctx.metadata
    # As the machine adopts it after FETCH (in memory only: a plan saves nothing).
    if md is not None and md.instance_id is not None:
        ctx.checkpoint.instance_id = md.instance_id
    print(f"platform: {ctx.provider.name if ctx.provider else '-'}; "
          f"instance: {md.instance_id if md and md.instance_id else 'unknown'}")
    if summary:
        _summary(ctx)
    commands_planned: set[str] = set()
    for phase in PHASE_NAMES:
        if phase in GATHER_PHASES or not PHASES[phase]:
            continue
        print(f"\n{phase}")
        for step in PHASES[phase]:
            skipped = _done_before(ctx, step)
            if skipped:
                print(f"  {step.name}: nothing to do: {skipped}")
                continue
            system.planned.clear()
            try:
                outcome = step.run(ctx)
            except AgentError as e:
                print(f"  {step.name}: would fail: {e}")
                continue
            actions = []
            for action in [*system.planned, *outcome.changes]:
                # A dry run cannot show a step the effect of an earlier one (the interface
                # `addresses` finds missing was planned by `interfaces`): list a command
                # once, and nothing twice within a step.
                if action in actions or (action.startswith("run: ")
                                         and action in commands_planned):
                    continue
                actions.append(action)
                if action.startswith("run: "):
                    commands_planned.add(action)
            if not actions:
                print(f"  {step.name}: nothing to change")
            for i, action in enumerate(actions):
                print(f"  {step.name if i == 0 else '':<16} {action}")
    return SMF_EXIT_OK
