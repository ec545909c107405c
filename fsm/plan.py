"""`metadata plan`: DETECT and FETCH for real, then every later step against a dry-run
System, which records instead of performing each write and each command that changes the
guest. Nothing is written, not even the checkpoint."""

from __future__ import annotations

import logging

from fsm.checkpoint import CheckpointStore
from fsm.errors import SMF_EXIT_OK, AgentError
from fsm.phases import GATHER_PHASES, PHASES
from fsm.settings import Settings
from fsm.steps import PHASE_NAMES, Context
from fsm.system import System

log = logging.getLogger(__name__)


def run_plan(system: System, settings: Settings) -> int:
    store = CheckpointStore(System(system.root, dry_run=True))
    ctx = Context(system=system, settings=settings, checkpoint=store.load())
    for phase in GATHER_PHASES:
        for step in PHASES[phase]:
            step.run(ctx)  # AgentError propagates: no plan without metadata
    md = ctx.metadata
    print(f"platform: {ctx.provider.name if ctx.provider else '-'}; "
          f"instance: {md.instance_id if md and md.instance_id else 'unknown'}")
    for phase in PHASE_NAMES:
        if phase in GATHER_PHASES or not PHASES[phase]:
            continue
        print(f"\n{phase}")
        for step in PHASES[phase]:
            system.planned.clear()
            try:
                outcome = step.run(ctx)
            except AgentError as e:
                print(f"  {step.name}: would fail: {e}")
                continue
            actions = [*system.planned, *outcome.changes]
            if not actions:
                print(f"  {step.name}: nothing to change")
            for i, action in enumerate(actions):
                print(f"  {step.name if i == 0 else '':<16} {action}")
    return SMF_EXIT_OK
