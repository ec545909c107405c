"""The phases and their steps, in order: the single source of truth.

The machine runs exactly this; `metadata states` and docs/states.md print exactly this.
`build()` checks the declarations: every step in the phase it names, no duplicate names,
DONE without steps.

`PHASES` imports a phase's declaring modules (`DECLARED_IN`) the first time the phase is
looked up, so a boot imports each phase's code when the machine enters it: DETECT does not
wait for the NETWORK code to load, and `metadata --version` loads none of it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from fsm.steps import PHASE_NAMES, Step

# The declarations of each phase's steps, in order: `module` (its `STEPS`) or
# `module:NAME` (a tuple of steps by another name, for a module that declares steps in
# several places of the order, as cloud-config's do around the agent's own).
DECLARED_IN: dict[str, tuple[str, ...]] = {
    "DETECT": ("fsm.gather",),
    "FETCH": ("fsm.gather",),
    "NETWORK": ("operations.datalinks", "operations.network"),
    "IDENTITY": ("operations.cloudsteps:BOOT", "operations.identity",
                 "operations.cloudsteps:IDENTITY"),
    "STORAGE": ("operations.storage",),
    "USERSCRIPT": ("operations.cloudsteps:BEFORE_SCRIPT", "operations.userscript",
                   "operations.cloudsteps:AFTER_SCRIPT", "operations.azureready"),
    "DONE": (),
}

# Phases that only learn (re-run on every start); the rest change the guest.
GATHER_PHASES = ("DETECT", "FETCH")

PHASE_PURPOSE = {
    "DETECT": "find the platform from SMBIOS and local devices, with no network wait",
    "FETCH": "read the metadata from the chosen source into the one data model",
    "NETWORK": "links, addresses (static, DHCP, IPv6), default route, DNS",
    "IDENTITY": "cloud-config bootcmd, hostname, root's SSH keys, users, passwords, time zone",
    "STORAGE": "grow the root pool, reguid a cloned pool, swap, data pools (made, imported, "
               "grown)",
    "USERSCRIPT": "packages and files, the first-boot script and runcmd for the userscript "
                  "service",
    "DONE": "every step done for this boot; the next start is a new boot",
}


def declared(phases: tuple[str, ...] = PHASE_NAMES) -> tuple[Step, ...]:
    """The steps the modules of `phases` declare, in order; each module's steps must all
    be of phases it is listed for."""
    steps: list[Step] = []
    for module in dict.fromkeys(m for p in phases for m in DECLARED_IN[p]):
        listed = [p for p in PHASE_NAMES if module in DECLARED_IN[p]]
        name, _, attr = module.partition(":")
        for step in getattr(importlib.import_module(name), attr or "STEPS"):
            if step.phase not in listed:
                raise ValueError(f"step {step.key} is declared in {module}, which "
                                 f"fsm/phases.py lists for {', '.join(listed)} only")
            if step.phase in phases:
                steps.append(step)
    return tuple(steps)


def build(declared: tuple[Step, ...]) -> dict[str, tuple[Step, ...]]:
    phases: dict[str, list[Step]] = {name: [] for name in PHASE_NAMES}
    seen: set[str] = set()
    for step in declared:
        if step.phase not in phases or step.phase == "DONE":
            raise ValueError(f"step {step.name!r} names phase {step.phase!r}")
        if step.key in seen:
            raise ValueError(f"step {step.key} is declared twice")
        seen.add(step.key)
        phases[step.phase].append(step)
    return {name: tuple(steps) for name, steps in phases.items()}


class _DeclaredPhases(Mapping):
    """Phase name -> its steps, each phase built (and its modules imported) when first
    looked up."""

    def __init__(self) -> None:
        self._built: dict[str, tuple[Step, ...]] = {}

    def __getitem__(self, phase: str) -> tuple[Step, ...]:
        if phase not in self._built:
            if phase not in DECLARED_IN:
                raise KeyError(phase)
            self._built[phase] = build(declared((phase,)))[phase]
        return self._built[phase]

    def __iter__(self) -> Iterator[str]:
        return iter(PHASE_NAMES)

    def __len__(self) -> int:
        return len(PHASE_NAMES)


PHASES: Mapping[str, tuple[Step, ...]] = _DeclaredPhases()
