"""NETWORK phase steps (placeholder until the operations issue lands)."""

from __future__ import annotations

from fsm.steps import Context, Frequency, Outcome, Step


def _pending(ctx: Context) -> Outcome:
    return Outcome(warnings=["not implemented yet"])


STEPS: tuple[Step, ...] = (
    Step("NETWORK", "interfaces", Frequency.PER_BOOT, _pending,
         changes="IP interfaces (`ipadm create-if`)", fails_when="ipadm fails",
         on_failure="recorded; later phases run; retried next start"),
)
