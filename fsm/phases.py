"""The phases and their steps, in order: the single source of truth.

The machine runs exactly this; `metadata states` and docs/states.md print exactly this.
`build()` checks the declarations when the machine is built: every step in the phase it
names, no duplicate names, DONE without steps.
"""

from __future__ import annotations

from fsm import gather
from fsm.steps import PHASE_NAMES, Step
from operations import cloudsteps, identity, network, storage, userscript

_DECLARED: tuple[Step, ...] = (
    *gather.STEPS, *network.STEPS, *cloudsteps.BOOT, *identity.STEPS, *cloudsteps.IDENTITY,
    *storage.STEPS, *cloudsteps.BEFORE_SCRIPT, *userscript.STEPS, *cloudsteps.AFTER_SCRIPT,
)

# Phases that only learn (re-run on every start); the rest change the guest.
GATHER_PHASES = ("DETECT", "FETCH")

PHASE_PURPOSE = {
    "DETECT": "find the platform from SMBIOS and local devices, with no network wait",
    "FETCH": "read the metadata from the chosen source into the one data model",
    "NETWORK": "links, addresses (static, DHCP, IPv6), default route, DNS",
    "IDENTITY": "cloud-config bootcmd, hostname, root's SSH keys, users, passwords, time zone",
    "STORAGE": "grow the root pool, reguid a cloned pool, swap",
    "USERSCRIPT": "packages and files, the first-boot script and runcmd for the userscript "
                  "service",
    "DONE": "every step done for this boot; the next start is a new boot",
}


def build(declared: tuple[Step, ...] = _DECLARED) -> dict[str, tuple[Step, ...]]:
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


PHASES: dict[str, tuple[Step, ...]] = build()
