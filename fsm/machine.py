"""The boot state machine: sequences the phases, runs their steps, checkpoints each move.

States are exactly the phases. A start always walks DETECT and FETCH (they only learn, and
what they learn is never trusted from a checkpoint), then either advances to NETWORK or,
when the checkpoint shows an unfinished boot, resumes at the phase it stopped in. A step
whose failure is marked `stops_machine` halts the machine at its phase; any other failed
step is recorded and the later steps still run (storage trouble must never cost the guest
its network or keys), after which the machine holds at the first failed phase so that
`svcadm clear` resumes there.
"""

from __future__ import annotations

import logging
import time
import traceback

from fsm import crashpoints, lazymodule
from fsm.checkpoint import DONE, FAILED, STARTED, UNKNOWN_INSTANCE, Checkpoint, CheckpointStore
from fsm.errors import SMF_EXIT_ERR_CONFIG, SMF_EXIT_ERR_FATAL, SMF_EXIT_OK, AgentError
from fsm.logsetup import where
from fsm.phases import GATHER_PHASES, PHASES
from fsm.steps import PHASE_NAMES, Context, Frequency, Step

lazymodule.defer("inspect")  # transitions imports it for a call our model never needs
from transitions import Machine  # noqa: E402 - after the deferral

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any

log = logging.getLogger(__name__)

CHANGE_PHASES = tuple(p for p in PHASE_NAMES if p not in GATHER_PHASES and p != "DONE")


def transition_table() -> list[dict[str, Any]]:
    """The machine's transitions as data: what the machine is built from and docs print."""
    rows: list[dict[str, Any]] = []
    for src, dst in zip(PHASE_NAMES, PHASE_NAMES[1:]):
        rows.append({"trigger": "advance", "source": src, "dest": dst,
                     "when": "every step of the phase done or recorded as failed"})
    for dst in CHANGE_PHASES[1:]:
        rows.append({"trigger": "resume", "source": "FETCH", "dest": dst,
                     "when": f"the checkpoint shows this boot stopped in {dst}",
                     "conditions": f"_resume_to_{dst}"})
    for dst in CHANGE_PHASES:
        rows.append({"trigger": "hold", "source": "USERSCRIPT", "dest": dst,
                     "when": f"a step of {dst} failed: stop there for `svcadm clear`",
                     "conditions": f"_hold_at_{dst}"})
    return rows


class CheckpointUnwritable(AgentError):
    """A one-shot step that must not repeat was not run, since its run could not be
    recorded."""


class OneShotRefused(AgentError):
    """A one-shot step was not run: this start cannot tell whether it already ran (no
    lock, or a checkpoint this agent cannot read)."""


# Longest error message stored in the checkpoint (twice: the step and last_error) and
# logged: messages quote metadata values, which must never grow the checkpoint past its cap.
MAX_ERROR_CHARS = 1000


def _cut(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... (cut, {len(text)} characters)"


class _StopMachine(Exception):
    def __init__(self, error: BaseException):
        self.error = error


class BootMachine:
    """One start of the agent against one guest."""

    def __init__(self, ctx: Context, store: CheckpointStore, phases: dict[str, tuple[Step, ...]] = PHASES):
        self.ctx = ctx
        self.store = store
        self.phases = phases
        self.cp: Checkpoint = ctx.checkpoint
        self.resume_phase: str | None = None
        self._holding = False
        self.failures: list[tuple[str, BaseException]] = []
        # One-shot steps this start ran (not skipped as done): what changed the instance's
        # configuration, so the CLI knows whether `metadata query`'s document is stale.
        self.ran_one_shot: list[str] = []
        self._phase_started = 0.0
        self.machine = Machine(model=self, states=list(PHASE_NAMES), initial="DETECT",
                               auto_transitions=False, send_event=False,
                               after_state_change="_checkpoint_transition")
        for row in transition_table():
            self.machine.add_transition(row["trigger"], row["source"], row["dest"],
                                        conditions=row.get("conditions"))
        for dst in CHANGE_PHASES:
            setattr(self, f"_resume_to_{dst}", lambda d=dst: self.resume_phase == d)
            setattr(self, f"_hold_at_{dst}", lambda d=dst: self._first_failed_phase() == d)

    # ---- the run -----------------------------------------------------------------------
    def run(self) -> int:
        # Checkpoint and guest writes sync their directory before the next step runs,
        # not each on its own (System.defer_directory_syncs); all of them before this ends.
        self.store.system.defer_directory_syncs()
        try:
            return self._run()
        finally:
            self._make_durable(stop_deferring=True)

    def _run(self) -> int:
        self._begin()
        try:
            for phase in GATHER_PHASES:
                self._run_phase(phase)
                if phase == "FETCH":
                    self._adopt_instance()
                self._leave(phase)
            while self.state != "DONE" and not self._holding:
                phase = self.state
                self._run_phase(phase)
                self._leave(phase)
        except _StopMachine as stop:
            return self._stopped(stop.error)
        if self.state != "DONE":
            return self._held()
        self.cp.last_error = None
        self.cp.resume_from = None
        self.store.save(self.cp)
        log.info("boot %d done", self.cp.boot)
        return SMF_EXIT_OK

    def _begin(self) -> None:
        cp = self.cp
        if cp.phase in CHANGE_PHASES or (cp.phase in GATHER_PHASES and cp.boot > 0):
            # An unfinished boot: a crash, a power cut, or a failure `svcadm clear` retries.
            if cp.phase in CHANGE_PHASES:
                cp.resume_from = cp.phase
            self.resume_phase = cp.resume_from
            log.info("resuming boot %d, stopped in %s", cp.boot, cp.resume_from or cp.phase)
        else:
            cp.boot += 1
            cp.boot_steps = {}
            cp.phases = {}
            cp.last_error = None
            cp.resume_from = None
            cp.warnings = []
            log.info("boot %d starts%s", cp.boot, "" if cp.boot > 1 else " (no checkpoint)")
        cp.phase = "DETECT"
        self._enter("DETECT")
        self.store.save(cp)

    def _adopt_instance(self) -> None:
        md = self.ctx.metadata
        new_id = checkpoint_instance_id(md.instance_id if md else None)
        old_id = self.cp.instance_id
        if self.ctx.provider:
            self.cp.provider = self.ctx.provider.name
        if new_id is None and (old_id is None and self.cp.instances):
            log.warning("no instance id on this boot nor the recorded one: treating this guest "
                        "as the same unknown instance; per-instance steps will not run again")
        elif new_id is None:
            log.warning("no instance id from %s nor SMBIOS: instance recorded as %r",
                        md.source if md else "?", UNKNOWN_INSTANCE)
        elif old_id and new_id != old_id:
            log.info("new instance %s (checkpoint was for %s): per-instance steps run again",
                     new_id, old_id)
            if self.resume_phase:
                log.info("not resuming the other instance's boot in %s", self.resume_phase)
                self.resume_phase = self.cp.resume_from = None
        self.cp.instance_id = new_id

    def _leave(self, phase: str) -> None:
        """Take the transition out of `phase`."""
        if phase == "FETCH" and self.resume_phase in CHANGE_PHASES[1:]:
            self.resume()
        elif phase == "USERSCRIPT" and self._first_failed_phase():
            self._holding = True
            self.hold()
        else:
            self.advance()

    # ---- transitions -------------------------------------------------------------------
    def _checkpoint_transition(self) -> None:
        prev = self.cp.phase
        self._close_phase(prev)
        self.cp.phase = self.state
        if self._holding:
            self.cp.resume_from = self.state
        else:
            self._enter(self.state)
        log.info("%s -> %s", prev, self.state)
        self.store.save(self.cp)

    def _enter(self, phase: str) -> None:
        self._phase_started = time.time()
        if phase != "DONE":
            self.cp.phases[phase] = {"start": self._phase_started, "boot": self.cp.boot,
                                     "result": "running"}

    def _close_phase(self, phase: str, result: str | None = None) -> None:
        rec = self.cp.phases.get(phase)
        if not rec or rec.get("result") != "running":
            return
        end = time.time()
        failed = [p for p, _ in self.failures if p == phase]
        rec.update(end=end, duration=round(end - rec["start"], 6),
                   result=result or rec.get("pending_result") or ("failed" if failed else "ok"))
        rec.pop("pending_result", None)

    # ---- phases and steps --------------------------------------------------------------
    def _run_phase(self, phase: str) -> None:
        steps = self.phases[phase]
        if phase == "NETWORK" and self._network_skipped():
            self.cp.phases[phase]["pending_result"] = "skipped"
            return
        for step in steps:
            with where(step.key):
                self._run_step(step)

    def _network_skipped(self) -> bool:
        md = self.ctx.metadata
        if md is not None and md.network_skip:
            why = md.provenance.get("network_skip", "")
            log.info("NETWORK skipped: %s", why.strip("()") if why.startswith("(")
                     else f"{md.origin('network_skip')} says network.skip = true")
            return True
        if self.ctx.settings.get("network.skip"):
            log.info("NETWORK skipped: network.skip = true in the agent settings")
            return True
        return False

    def _is_done(self, step: Step) -> bool:
        if step.phase in GATHER_PHASES:
            return False
        rec = self.cp.record_of(step, self.cp.instance_id)
        if not rec:
            return False
        if rec.get("status") == DONE:
            return step.frequency is not Frequency.PER_BOOT or rec.get("boot") == self.cp.boot
        if rec.get("status") == STARTED and step.frequency is not Frequency.PER_BOOT:
            return self._interrupted_took_effect(step, rec)
        return False

    def _interrupted_took_effect(self, step: Step, rec: dict[str, Any]) -> bool:
        if step.took_effect is None:
            log.info("was interrupted in a previous start; running it again")
            return False
        try:
            took = step.took_effect(self.ctx, rec.get("intent") or {})
        except Exception as e:  # the check itself failing must not lose the step
            log.warning("cannot tell whether the interrupted run took effect (%s); running again", e)
            return False
        if took:
            log.info("the interrupted run had taken effect; recorded as done without running again")
            self.cp.mark(step, self.cp.instance_id, DONE, recovered=True,
                         intent=rec.get("intent") or {})
            self.store.save(self.cp)
        else:
            log.info("the interrupted run had not taken effect; running it again")
        return took

    def _run_step(self, step: Step) -> None:
        iid = self.cp.instance_id
        if self._is_done(step):
            log.debug("already done (%s)", step.frequency.value)
            return
        one_shot = step.frequency is not Frequency.PER_BOOT and step.phase not in GATHER_PHASES
        if one_shot:
            refusal = self.store.one_shot_refusal
            if refusal:
                self._step_failed(step, OneShotRefused(
                    f"not run: {refusal}, so this start cannot tell whether it already ran"),
                    0.0)
                return
            try:
                intent = step.intent(self.ctx) if step.intent else {}
            except Exception as e:  # reading the intent is part of the step: its failure
                self._step_failed(step, e, 0.0)
                return
            self.cp.mark(step, iid, STARTED, intent=intent)
            if not self.store.save(self.cp) and step.intent is not None:
                # Its intent is what keeps a step like reguid from repeating: unrecorded,
                # it would run again on every boot until the disk is fixed. Idempotent
                # one-shot steps (hostname, keys) run anyway: they matter most.
                self._step_failed(step, CheckpointUnwritable(
                    f"not run: its intent could not be checkpointed "
                    f"({self.store.last_save_error}), so it would repeat on every boot"), 0.0)
                return
        # What was written before this step (its intent, the last step's record) is durable
        # before the step changes anything.
        if not self._make_durable() and one_shot and step.intent is not None:
            self._step_failed(step, CheckpointUnwritable(
                f"not run: its intent could not be made durable "
                f"({self.store.last_save_error}), so it could repeat"), 0.0)
            return
        crashpoints.reached(f"before:{step.key}")
        if one_shot:
            self.ran_one_shot.append(step.key)
        started = time.monotonic()
        try:
            outcome = step.run(self.ctx)
        except Exception as e:
            self._step_failed(step, e, time.monotonic() - started)
            return
        crashpoints.reached(f"after:{step.key}")
        for change in outcome.changes:
            log.info("changed: %s", change)
        for warning in outcome.warnings:
            log.warning("%s", _cut(warning))
            self.cp.add_warning(step.key, warning)
        extra: dict[str, Any] = {"changes": len(outcome.changes),
                                 "duration": round(time.monotonic() - started, 6)}
        extra["changed"] = capped_changes(outcome.changes)  # what `status` lists
        if outcome.record:
            extra["record"] = outcome.record
        if step.phase in GATHER_PHASES:
            return  # gathered facts are never checkpointed
        prior = self.cp.record_of(step, iid) or {}
        if one_shot:
            extra["intent"] = prior.get("intent") or {}
        self.cp.mark(step, iid, DONE, **extra)
        self.store.save(self.cp)

    def _make_durable(self, stop_deferring: bool = False) -> bool:
        """Sync the directories written since the last step (checkpoint and guest files);
        False, with the error logged as a checkpoint write's is, when that failed."""
        try:
            self.store.system.sync_directories(stop_deferring=stop_deferring)
        except OSError as e:
            self.store.last_save_error = str(e)
            log.error("checkpoint: %s; configuring the guest anyway", e)
            return False
        return True

    def _step_failed(self, step: Step, error: Exception, took_s: float) -> None:
        message = _cut(str(error))
        if isinstance(error, (AgentError, OSError)):
            # OSError: the guest refused a write (full, read-only): a fact, not a bug.
            log.error("failed: %s", message)
        else:
            log.error("failed with an internal error: %s: %s\n%s", type(error).__name__,
                      message, _cut(traceback.format_exc().rstrip(), 4 * MAX_ERROR_CHARS))
        self.cp.last_error = {"phase": step.phase, "step": step.name, "message": message,
                              "exit_code": _exit_code(error), "time": time.time()}
        if step.phase not in GATHER_PHASES:
            self.cp.mark(step, self.cp.instance_id, FAILED, error=message,
                         duration=round(took_s, 6))
        _describe_failure(self.cp, step, error)
        self.failures.append((step.phase, error))
        self.store.save(self.cp)
        if step.stops_machine:
            raise _StopMachine(error)

    def _first_failed_phase(self) -> str | None:
        failed = {p for p, _ in self.failures}
        return next((p for p in CHANGE_PHASES if p in failed), None)

    # ---- endings -----------------------------------------------------------------------
    def _stopped(self, error: BaseException) -> int:
        self._close_phase(self.state, "failed")
        self.store.save(self.cp)
        code = _exit_code(error)
        log.error("stopped in %s (exit %d); the next start resumes there", self.state, code)
        return code

    def _held(self) -> int:
        self.store.save(self.cp)
        codes = {_exit_code(e) for _, e in self.failures}
        code = SMF_EXIT_ERR_CONFIG if codes == {SMF_EXIT_ERR_CONFIG} else SMF_EXIT_ERR_FATAL
        log.error("%d step(s) failed; everything else was done. Holding at %s (exit %d): "
                  "`svcadm clear` retries from there", len(self.failures), self.state, code)
        return code


MAX_INSTANCE_ID_CHARS = 256


def checkpoint_instance_id(instance_id: str | None) -> str | None:
    """The instance id as the checkpoint keys it: as given when it is short printable
    text, else `sha256:<hex>` of it (still one id per instance), so that metadata can
    neither grow the checkpoint past its cap nor put control characters in a log line."""
    if instance_id is None:
        return None
    if len(instance_id) <= MAX_INSTANCE_ID_CHARS and instance_id.isprintable():
        return instance_id
    from fsm.digests import sha256

    return "sha256:" + sha256(instance_id.encode("utf-8", "surrogatepass")).hexdigest()


MAX_CHANGES_KEPT, MAX_CHANGE_CHARS = 20, 200


def capped_changes(changes: list[str]) -> list[str]:
    """A step's change strings as its record keeps them: metadata can put values in them,
    so their number and length are capped like the warnings."""
    kept = [c if len(c) <= MAX_CHANGE_CHARS else c[:MAX_CHANGE_CHARS] + "... (cut)"
            for c in changes[:MAX_CHANGES_KEPT]]
    if len(changes) > MAX_CHANGES_KEPT:
        kept.append(f"... and {len(changes) - MAX_CHANGES_KEPT} more")
    return kept


def _describe_failure(cp: Checkpoint, step: Step, error: BaseException) -> None:
    """The exit code and kind of error on the failed record, for `status` to say what to
    do next (a ConfigError is a setting to fix, a MetadataError a metadata field)."""
    detail = {"exit_code": _exit_code(error), "kind": type(error).__name__}
    rec = cp.record_of(step, cp.instance_id) if step.phase not in GATHER_PHASES else None
    if rec is not None and rec.get("status") == FAILED:
        rec.update(detail)


def _exit_code(error: BaseException) -> int:
    return error.exit_code if isinstance(error, AgentError) else SMF_EXIT_ERR_FATAL
