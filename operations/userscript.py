"""USERSCRIPT phase steps (placeholder until the operations issue lands)."""

from __future__ import annotations

from fsm.steps import Context, Frequency, Outcome, Step


def _pending(ctx: Context) -> Outcome:
    return Outcome(warnings=["not implemented yet"])


STEPS: tuple[Step, ...] = (
    Step("USERSCRIPT", "install", Frequency.PER_INSTANCE, _pending,
         changes="/var/metadata/userscript; enables the userscript service",
         fails_when="script lacks #!", on_failure="recorded"),
)
