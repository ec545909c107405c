"""What a step is: a named unit of work in a phase, with a frequency declared as data.

Steps are declared by the modules that implement them (`operations/`, `fsm/gather.py`) and
collected in `fsm/phases.py`, which the machine, the CLI and `docs/states.md` all read.

A step's functions may be given as "module:function" references, imported on the first
call: a declaration then costs nothing to import, so `metadata states`, `status` and a boot
whose steps are already done do not import the code behind them (start-up is on every
boot's critical path).
"""

from __future__ import annotations

import importlib

from fsm.names import PHASE_NAMES, Frequency  # noqa: F401 - declared there, re-exported
from fsm.record import field, record

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any, Callable

    from fsm.checkpoint import Checkpoint
    from fsm.settings import Settings
    from fsm.system import System
    from providers.base import Provider
    from providers.model import Metadata
    from providers.smbios import SmbiosInfo


class Ref:
    """A "module:function" reference, called like the function it names; the module is
    imported on the first call."""

    __slots__ = ("ref", "_func")

    def __init__(self, ref: str):
        module, sep, name = ref.partition(":")
        if not (module and sep and name):
            raise ValueError(f"not a module:function reference: {ref!r}")
        self.ref = ref
        self._func: Callable[..., Any] | None = None

    def resolve(self) -> Callable[..., Any]:
        if self._func is None:
            module, _, name = self.ref.partition(":")
            self._func = getattr(importlib.import_module(module), name)
        return self._func

    def __call__(self, *args: Any) -> Any:
        return self.resolve()(*args)

    def __repr__(self) -> str:
        return f"Ref({self.ref!r})"


def _lazy(func: Callable[..., Any] | str | None) -> Callable[..., Any] | None:
    return Ref(func) if isinstance(func, str) else func


@record
class Outcome:
    """What a step did: human-readable changes (empty when the guest already matched)."""

    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Facts for the checkpoint that are neither secret nor hardware names (e.g. pool guid).
    record: dict[str, Any] = field(default_factory=dict)

    def changed(self, what: str) -> Outcome:
        self.changes.append(what)
        return self


@record
class Context:
    """Everything a step may use; hardware facts are re-discovered, never checkpointed."""

    system: System
    settings: Settings
    checkpoint: Checkpoint
    smbios: SmbiosInfo | None = None
    provider: Provider | None = None
    metadata: Metadata | None = None
    # Facts gathered this run (links, DHCP lease values...), shared between steps.
    facts: dict[str, Any] = field(default_factory=dict)


@record(frozen=True)
class Step:
    """One named step; the text fields are what docs/states.md prints for auditors."""

    phase: str
    name: str
    frequency: Frequency
    run: Callable[[Context], Outcome]   # or "module:function", imported on the first call
    changes: str
    fails_when: str
    on_failure: str
    checkpointed: str = "done record (frequency, time, instance, boot)"
    # One-shot steps that can tell whether an interrupted run took effect: `intent(ctx)`
    # is recorded before the step, `took_effect(ctx, intent)` is asked on resume.
    intent: Callable[[Context], dict[str, Any]] | None = None
    took_effect: Callable[[Context, dict[str, Any]], bool] | None = None
    # A failure of this step stops the machine at its phase (otherwise later steps run).
    stops_machine: bool = False

    def __post_init__(self) -> None:
        for name in ("run", "intent", "took_effect"):
            object.__setattr__(self, name, _lazy(getattr(self, name)))

    @property
    def key(self) -> str:
        return f"{self.phase}/{self.name}"
