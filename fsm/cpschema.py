"""The checkpoint's shape, declared as data: every field, its type and its range.

A checkpoint that decodes is not yet a checkpoint to trust: a disk error, an operator's
edit or another program can leave msgpack that parses but lies (`boot = 2**64-1`, a
`last_error` without its keys, a string where a time belongs), and the agent or `metadata
status` would then crash on it, or act on it. `check(obj)` walks the whole map against
FIELDS and raises CheckpointShapeError naming the first path that is wrong; the loader
handles that as a damaged checkpoint.

To add a field: a line in FIELDS (its rule, and the default a checkpoint written before it
existed gets), and the same name in `fsm.checkpoint.Checkpoint`. Rules are small callables
built from the helpers below (`Int`, `Num`, `Str`, `OneOf`, `Opt`, `MapOf`, `Record`,
`ListOf`), so a rule reads like the field's documentation.
"""

from __future__ import annotations

import math

from fsm.names import PHASE_NAMES, Frequency

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (status imports this)
if TYPE_CHECKING:
    from typing import Any, Callable

    Rule = Callable[[Any, str], None]

MAX_BOOT = 2**32                # far beyond any guest's life; 2**64-1 is a lie
MAX_TIME = 1e11                 # seconds since 1970: year 5138
MAX_DURATION = 1e7              # seconds: 115 days
MAX_TEXT = 4096                 # any one string (messages are cut well below this)
MAX_ITEMS = 10_000              # any one map or list
STEP_STATUSES = ("started", "done", "failed")


class CheckpointShapeError(ValueError):
    """The decoded map is not shaped like a checkpoint: names where and why."""


def _fail(where: str, problem: str) -> None:
    raise CheckpointShapeError(f"{where}: {problem}")


def Int(lo: int, hi: int) -> Rule:  # noqa: N802 - rules read as type names
    def rule(value: Any, where: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            _fail(where, f"expected an integer, not {type(value).__name__}")
        if not lo <= value <= hi:
            _fail(where, f"{value} is outside {lo}..{hi}")
    return rule


def Num(lo: float, hi: float) -> Rule:  # noqa: N802
    def rule(value: Any, where: str) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            _fail(where, f"expected a number, not {type(value).__name__}")
        if not math.isfinite(value) or not lo <= value <= hi:
            _fail(where, f"{value!r} is outside {lo:g}..{hi:g}")
    return rule


def Str(max_len: int = MAX_TEXT) -> Rule:  # noqa: N802
    def rule(value: Any, where: str) -> None:
        if not isinstance(value, str):
            _fail(where, f"expected text, not {type(value).__name__}")
        if len(value) > max_len:
            _fail(where, f"text of {len(value)} characters, at most {max_len}")
    return rule


def Bool() -> Rule:  # noqa: N802
    def rule(value: Any, where: str) -> None:
        if not isinstance(value, bool):
            _fail(where, f"expected true or false, not {type(value).__name__}")
    return rule


def OneOf(*choices: Any) -> Rule:  # noqa: N802
    def rule(value: Any, where: str) -> None:
        if not isinstance(value, str) or value not in choices:
            _fail(where, f"{str(value)[:40]!r} is not one of {', '.join(map(str, choices))}")
    return rule


def Opt(inner: Rule) -> Rule:  # noqa: N802
    """None, or what `inner` accepts."""
    def rule(value: Any, where: str) -> None:
        if value is not None:
            inner(value, where)
    return rule


def Any_() -> Rule:  # noqa: N802
    """Anything msgpack decodes (facts a step recorded for the audit trail only)."""
    def rule(value: Any, where: str) -> None:
        return None
    return rule


def MapOf(value_rule: Rule, key_rule: Rule | None = None, max_items: int = MAX_ITEMS) -> Rule:  # noqa: N802
    key_rule = key_rule or Str(1024)

    def rule(value: Any, where: str) -> None:
        if not isinstance(value, dict):
            _fail(where, f"expected a map, not {type(value).__name__}")
        if len(value) > max_items:
            _fail(where, f"{len(value)} entries, at most {max_items}")
        for k, v in value.items():
            key_rule(k, f"{where} key")
            value_rule(v, f"{where}[{str(k)[:40]!r}]")
    return rule


def ListOf(item_rule: Rule, max_items: int = MAX_ITEMS) -> Rule:  # noqa: N802
    def rule(value: Any, where: str) -> None:
        if not isinstance(value, list):
            _fail(where, f"expected a list, not {type(value).__name__}")
        if len(value) > max_items:
            _fail(where, f"{len(value)} items, at most {max_items}")
        for i, item in enumerate(value):
            item_rule(item, f"{where}[{i}]")
    return rule


def Record(required: dict[str, Rule], optional: dict[str, Rule] | None = None) -> Rule:  # noqa: N802
    """A map with these keys; other keys are allowed (and unchecked) so that a newer agent
    of the same schema version may add facts an older one ignores."""
    optional = optional or {}

    def rule(value: Any, where: str) -> None:
        if not isinstance(value, dict):
            _fail(where, f"expected a map, not {type(value).__name__}")
        for key, key_rule in required.items():
            if key not in value:
                _fail(where, f"no {key!r}")
            key_rule(value[key], f"{where}.{key}")
        for key, key_rule in optional.items():
            if key in value:
                key_rule(value[key], f"{where}.{key}")
    return rule


TIME = Num(0, MAX_TIME)
BOOT = Int(0, MAX_BOOT)
PHASE = OneOf(*PHASE_NAMES)

STEP_RECORD = Record(
    required={"status": OneOf(*STEP_STATUSES)},
    optional={"frequency": OneOf(*(f.value for f in Frequency)), "boot": BOOT,
              "instance": Str(1024), "started": TIME, "finished": TIME,
              "duration": Num(0, MAX_DURATION), "changes": Int(0, MAX_ITEMS),
              "error": Str(), "recovered": Bool(), "intent": MapOf(Any_()),
              "record": MapOf(Any_())})
STEP_TABLE = MapOf(STEP_RECORD)

PHASE_RECORD = Record(
    required={"start": TIME, "boot": BOOT, "result": Str(40)},
    optional={"end": TIME, "duration": Num(0, MAX_DURATION), "pending_result": Str(40)})

LAST_ERROR = Record(required={"phase": PHASE, "step": Str(200), "message": Str(),
                              "exit_code": Int(0, 255), "time": TIME})

WARNING = Record(required={"step": Str(200), "message": Str()})

_REQUIRED = object()

# field -> (rule, default for a checkpoint written before the field existed, or _REQUIRED)
FIELDS: dict[str, tuple[Rule, Any]] = {
    "phase": (PHASE, _REQUIRED),
    "boot": (BOOT, _REQUIRED),
    "instance_id": (Opt(Str(1024)), _REQUIRED),
    "provider": (Opt(Str(200)), _REQUIRED),
    "instances": (MapOf(STEP_TABLE, max_items=1000), _REQUIRED),
    "once": (STEP_TABLE, _REQUIRED),
    "boot_steps": (STEP_TABLE, _REQUIRED),
    "phases": (MapOf(PHASE_RECORD, key_rule=PHASE), _REQUIRED),
    "last_error": (Opt(LAST_ERROR), _REQUIRED),
    "resume_from": (Opt(PHASE), _REQUIRED),
    "updated": (TIME, _REQUIRED),
    "warnings": (ListOf(WARNING, max_items=100), list),
}


def check(obj: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's fields from a decoded map, each checked; raises
    CheckpointShapeError for a missing required field or any value out of its rule."""
    out: dict[str, Any] = {}
    for name, (rule, default) in FIELDS.items():
        if name not in obj:
            if default is _REQUIRED:
                _fail(name, "missing")
            out[name] = default()
            continue
        rule(obj[name], name)
        out[name] = obj[name]
    return out
