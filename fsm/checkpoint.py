"""The checkpoint: where the machine is, and which steps are done, for which instance.

A msgpack map at `/var/metadata/state.msgpack` (under the root). Every write goes through
`System.write_file` (temp file, fsync, rename, fsync of the directory: during a run, at the
next step boundary, see System.defer_directory_syncs) and keeps the
previous generation as `state.msgpack.prev`, so a damaged current file falls back to it.
A file that cannot be decoded, does not match its declared shape (fsm/cpschema.py), is of an
older or unknown schema version or cannot be read is moved aside to
`state.msgpack.corrupt-<timestamp>` and never crashes the agent. A newer schema version is
left untouched and refuses one-shot steps (NewerSchemaError).

Step records, after cloudbase-init's per-instance plugin status:
- per-instance steps under `instances[<instance id>]`, so a new VM from the same image
  (a new id) runs them again, while the old records stay for the audit trail;
- once steps under `once`; per-boot steps under `boot_steps`, cleared when a boot starts.
A record is `started` before a one-shot step runs (with its intent) and `done` after it:
a crash in between is neither counted as success nor blindly repeated.
Secrets never enter: no metadata values are stored, only ids, names and step records.
"""

from __future__ import annotations

import logging
import time

import msgpack

# The file's format and its decoder are fsm/cpfile.py's (status reads it without this module).
from fsm.cpfile import (  # noqa: F401 - the constants and errors are re-exported
    CHECKPOINT_PATH,
    DONE,
    FAILED,
    MAX_CHECKPOINT_BYTES,
    PREVIOUS_SUFFIX,
    SCHEMA_VERSION,
    STARTED,
    UNKNOWN_INSTANCE,
    CheckpointError,
    NewerSchemaError,
    completed_steps,
    decode_fields,
)
from fsm.record import field, record
from fsm.steps import Frequency, Step
from fsm.system import System

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any

log = logging.getLogger(__name__)

MAX_WARNINGS = 100
MAX_WARNING_CHARS = 500


@record
class Checkpoint:
    phase: str = "DETECT"
    boot: int = 0
    instance_id: str | None = None
    provider: str | None = None
    instances: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    once: dict[str, dict[str, Any]] = field(default_factory=dict)
    boot_steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_error: dict[str, Any] | None = None
    resume_from: str | None = None   # the change phase an unfinished boot stopped in
    updated: float = 0.0
    # This boot's warnings ({"step", "message"}), oldest first: items the agent skipped.
    # Capped in count and length so metadata can never grow the checkpoint past its cap.
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def add_warning(self, step_key: str, message: str) -> None:
        if len(self.warnings) >= MAX_WARNINGS:
            return
        if len(message) > MAX_WARNING_CHARS:
            message = message[:MAX_WARNING_CHARS] + "... (cut)"
        entry = {"step": step_key, "message": message}
        if entry not in self.warnings:  # DETECT/FETCH run again on a resumed boot
            self.warnings.append(entry)

    # ---- step records ------------------------------------------------------------------
    def _table(self, step: Step, instance_id: str | None) -> dict[str, dict[str, Any]]:
        if step.frequency is Frequency.PER_INSTANCE:
            return self.instances.setdefault(instance_id or UNKNOWN_INSTANCE, {})
        if step.frequency is Frequency.ONCE:
            return self.once
        return self.boot_steps

    def record_of(self, step: Step, instance_id: str | None) -> dict[str, Any] | None:
        if step.frequency is Frequency.PER_INSTANCE:
            return self.instances.get(instance_id or UNKNOWN_INSTANCE, {}).get(step.key)
        return self._table(step, instance_id).get(step.key)

    def mark(self, step: Step, instance_id: str | None, status: str, **extra: Any) -> dict[str, Any]:
        table = self._table(step, instance_id)
        rec = dict(table.get(step.key) or {})
        now = time.time()
        if status == STARTED:
            rec = {"started": now}
        rec.update(status=status, frequency=step.frequency.value, boot=self.boot,
                   instance=instance_id or UNKNOWN_INSTANCE, **extra)
        if status in (DONE, FAILED):
            rec["finished"] = now
        table[step.key] = rec
        return rec

    def completed_steps(self) -> list[tuple[str, dict[str, Any]]]:
        """Every done record that applies now: this boot's, this instance's, and once."""
        return completed_steps(self.boot_steps, self.instances, self.instance_id, self.once)

    # ---- codec -------------------------------------------------------------------------
    def to_map(self) -> dict[str, Any]:
        return {"schema": SCHEMA_VERSION, "phase": self.phase, "boot": self.boot,
                "instance_id": self.instance_id, "provider": self.provider,
                "instances": self.instances, "once": self.once, "boot_steps": self.boot_steps,
                "phases": self.phases, "last_error": self.last_error,
                "resume_from": self.resume_from, "updated": self.updated,
                "warnings": self.warnings}


def encode(cp: Checkpoint) -> bytes:
    return msgpack.packb(cp.to_map(), use_bin_type=True)


def decode(data: bytes) -> Checkpoint:
    """Bytes to a Checkpoint, or CheckpointError saying what is wrong with them (the whole
    structure checked against fsm/cpschema.py: see fsm/cpfile.py)."""
    return Checkpoint(**decode_fields(data))


class CheckpointStore:
    """Loads and saves the checkpoint of one guest through its System."""

    def __init__(self, system: System, path: str = CHECKPOINT_PATH):
        self.system = system
        self.path = path
        self.last_save_error: str | None = None
        # Why one-shot steps must not run in this start (no lock, a newer schema), or None.
        self.one_shot_refusal: str | None = None
        # Why the checkpoint must not be written at all (a newer agent's file), or None.
        self.read_only: str | None = None

    def refuse_one_shot(self, why: str) -> None:
        if self.one_shot_refusal is None:
            self.one_shot_refusal = why

    def load(self) -> Checkpoint:
        for candidate in (self.path, self.path + PREVIOUS_SUFFIX):
            if not self.system.lexists(candidate):
                continue
            try:
                cp = decode(self.system.read_bytes(candidate, limit=MAX_CHECKPOINT_BYTES))
            except NewerSchemaError as e:
                # Not damaged: kept as it is, never overwritten, and nothing concluded from
                # its absence of records (that would repeat one-shot work).
                why = f"{candidate} was written by a newer agent ({e})"
                log.error("checkpoint: %s; leaving it untouched: one-shot steps will not run "
                          "and nothing is checkpointed. `metadata reset` accepts the loss",
                          why)
                self.read_only = why
                self.refuse_one_shot(why)
                return Checkpoint()
            except (CheckpointError, OSError) as e:
                self._move_aside(candidate, str(e))
                continue
            if candidate != self.path:
                log.warning("checkpoint: using the previous generation %s", candidate)
            return cp
        return Checkpoint()

    def _move_aside(self, candidate: str, why: str) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = f"{self.path}.corrupt-{stamp}"
        n = 0
        while self.system.exists(target):
            n += 1
            target = f"{self.path}.corrupt-{stamp}.{n}"
        try:
            self.system.move_aside(candidate, target)
            log.error("checkpoint: %s is damaged (%s); moved aside to %s", candidate, why, target)
        except OSError as e:
            log.error("checkpoint: %s is damaged (%s) and could not be moved aside: %s",
                      candidate, why, e.strerror or e)

    def save(self, cp: Checkpoint) -> bool:
        """Write the checkpoint; on failure (full disk, read-only root) say so and go on."""
        if self.read_only:
            msg = f"not written: {self.read_only}"
            if msg != self.last_save_error:
                log.error("checkpoint: %s", msg)
            self.last_save_error = msg
            return False
        cp.updated = time.time()
        try:
            self.system.write_file(self.path, encode(cp), mode=0o600,
                                   keep_previous=PREVIOUS_SUFFIX)
        except OSError as e:
            msg = f"could not write checkpoint {self.path}: {e.strerror or e}"
            if msg != self.last_save_error:
                log.error("checkpoint: %s; configuring the guest anyway", msg)
            self.last_save_error = msg
            return False
        self.last_save_error = None
        return True

    def reset(self) -> str | None:
        """Move the checkpoint aside so the next run starts fresh; returns where it went."""
        if not self.system.exists(self.path):
            return None
        target = f"{self.path}.reset-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        self.system.move_aside(self.path, target)
        if self.system.exists(self.path + PREVIOUS_SUFFIX):
            self.system.remove(self.path + PREVIOUS_SUFFIX)
        return target
