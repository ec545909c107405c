"""STORAGE phase steps (placeholder until the operations issue lands)."""

from __future__ import annotations

from fsm.steps import Context, Frequency, Outcome, Step


def _pending(ctx: Context) -> Outcome:
    return Outcome(warnings=["not implemented yet"])


STEPS: tuple[Step, ...] = (
    Step("STORAGE", "expand-pool", Frequency.PER_BOOT, _pending,
         changes="root pool size", fails_when="disk commands fail",
         on_failure="recorded; never stops other phases"),
)
