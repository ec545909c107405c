"""The checkpoint file: where it is, its limits, and its bytes decoded into checked fields.

fsm/checkpoint.py builds the machine's `Checkpoint` from these fields and writes it back;
`metadata status` reads the fields alone. Kept apart, with nothing heavier than msgpack
and the shape rules (fsm/cpschema.py), so that status, which an operator or an image
pipeline runs again and again, costs about a bare interpreter (issue 17). A checkpoint
status reports as damaged is exactly one the machine would move aside: one decoder.
"""

from __future__ import annotations

import msgpack

from fsm import cpschema

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

SCHEMA_VERSION = 1
CHECKPOINT_PATH = "/var/metadata/state.msgpack"
PREVIOUS_SUFFIX = ".prev"
MAX_CHECKPOINT_BYTES = 1 << 20
UNKNOWN_INSTANCE = "unknown"

STARTED, DONE, FAILED = "started", "done", "failed"


class CheckpointError(ValueError):
    """The bytes are not a checkpoint this version understands."""


class NewerSchemaError(CheckpointError):
    """A checkpoint written by a newer agent (an older one booted after a boot-environment
    rollback): not damaged, but not understood either. Its records cannot be read, so
    nothing may be concluded from them: one-shot steps are refused, not re-run."""


def decode_fields(data: bytes) -> dict[str, Any]:
    """Bytes to the checkpoint's fields (fsm/cpschema.py FIELDS), or CheckpointError saying
    what is wrong with them.

    The whole structure is checked against fsm/cpschema.py (types and ranges): a map that
    decodes but lies is as damaged as one that does not decode."""
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"larger than {MAX_CHECKPOINT_BYTES} bytes")
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as e:  # msgpack raises a family of errors for bad input
        raise CheckpointError(f"not msgpack: {type(e).__name__}: {e}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"top level is {type(obj).__name__}, not a map")
    schema = obj.get("schema")
    if isinstance(schema, int) and not isinstance(schema, bool) and schema > SCHEMA_VERSION:
        raise NewerSchemaError(f"schema version {schema}, newer than this agent's "
                               f"{SCHEMA_VERSION}")
    if schema != SCHEMA_VERSION:
        raise CheckpointError(f"schema version {str(schema)[:20]!r}, expected {SCHEMA_VERSION}")
    try:
        return cpschema.check(obj)
    except cpschema.CheckpointShapeError as e:
        raise CheckpointError(f"not a valid checkpoint: {e}") from None


def completed_steps(boot_steps: dict[str, dict[str, Any]],
                    instances: dict[str, dict[str, dict[str, Any]]], instance_id: str | None,
                    once: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Every record that applies now: this boot's, this instance's, and once; in the order
    the steps started."""
    rows = list(boot_steps.items())
    rows += list(instances.get(instance_id or UNKNOWN_INSTANCE, {}).items())
    rows += list(once.items())
    return sorted(rows, key=lambda kv: kv[1].get("started", 0))
