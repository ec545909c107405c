"""IDENTITY phase steps (placeholder until the operations issue lands)."""

from __future__ import annotations

from fsm.steps import Context, Frequency, Outcome, Step


def _pending(ctx: Context) -> Outcome:
    return Outcome(warnings=["not implemented yet"])


STEPS: tuple[Step, ...] = (
    Step("IDENTITY", "hostname", Frequency.PER_INSTANCE, _pending,
         changes="/etc/nodename, /etc/inet/hosts, live hostname", fails_when="invalid hostname",
         on_failure="recorded; keys still installed"),
)
