"""The boot machine's semantics, in-process with steps made for the test.

What is checked: phases in order, frequencies (per-boot, per-instance, once), resume of an
unfinished boot, a new instance re-running per-instance steps, failures that hold or stop
the machine with the right SMF exit code, and the intent record of one-shot steps.
"""

from __future__ import annotations

import logging

import pytest

from fsm.checkpoint import CheckpointStore
from fsm.errors import MetadataError, ServiceError
from fsm.machine import BootMachine
from fsm.phases import build
from fsm.settings import Settings
from fsm.steps import Context, Frequency, Outcome, Step
from fsm.system import System
from providers.model import Metadata


class World:
    """A guest root, a log of which steps ran, and knobs the fake steps read."""

    def __init__(self, tmp_path):
        self.root = str(tmp_path / "root")
        (tmp_path / "root").mkdir()
        self.ran: list[str] = []
        self.instance_id: str | None = "i-1"
        self.fail: dict[str, Exception] = {}
        self.effect_done: set[str] = set()

    def step(self, phase: str, name: str, freq: Frequency, **kw) -> Step:
        def run(ctx: Context) -> Outcome:
            self.ran.append(f"{phase}/{name}")
            if f"{phase}/{name}" in self.fail:
                raise self.fail[f"{phase}/{name}"]
            if phase == "FETCH":
                ctx.metadata = Metadata(source="test", instance_id=self.instance_id)
            self.effect_done.add(f"{phase}/{name}")
            return Outcome(changes=[f"did {name}"])
        return Step(phase, name, freq, run, changes="-", fails_when="-", on_failure="-", **kw)

    def phases(self):
        return build((
            self.step("DETECT", "look", Frequency.PER_BOOT),
            self.step("FETCH", "get", Frequency.PER_BOOT, stops_machine=True),
            self.step("NETWORK", "addr", Frequency.PER_BOOT),
            self.step("IDENTITY", "name", Frequency.PER_INSTANCE),
            self.step("STORAGE", "grow", Frequency.PER_BOOT),
            self.step("STORAGE", "reguid", Frequency.PER_INSTANCE,
                      intent=lambda ctx: {"guid": "old"},
                      took_effect=lambda ctx, intent: "STORAGE/reguid" in self.effect_done),
            self.step("STORAGE", "swap", Frequency.ONCE),
            self.step("USERSCRIPT", "install", Frequency.PER_INSTANCE),
        ))

    def boot(self) -> tuple[int, BootMachine]:
        self.ran.clear()
        system = System(self.root)
        store = CheckpointStore(system)
        ctx = Context(system=system, settings=Settings(), checkpoint=store.load())
        machine = BootMachine(ctx, store, phases=self.phases())
        return machine.run(), machine

    def checkpoint(self):
        return CheckpointStore(System(self.root)).load()


@pytest.fixture
def world(tmp_path):
    return World(tmp_path)


def test_first_boot_runs_every_step_in_phase_order(world):
    code, machine = world.boot()
    assert code == 0
    assert machine.state == "DONE"
    assert world.ran == ["DETECT/look", "FETCH/get", "NETWORK/addr", "IDENTITY/name",
                         "STORAGE/grow", "STORAGE/reguid", "STORAGE/swap", "USERSCRIPT/install"]
    cp = world.checkpoint()
    assert (cp.phase, cp.boot, cp.instance_id) == ("DONE", 1, "i-1")
    assert [p for p in cp.phases] == ["DETECT", "FETCH", "NETWORK", "IDENTITY", "STORAGE",
                                      "USERSCRIPT"]
    assert all(rec["result"] == "ok" for rec in cp.phases.values())


def test_second_boot_runs_only_per_boot_steps(world):
    world.boot()
    code, _ = world.boot()
    assert code == 0
    assert world.ran == ["DETECT/look", "FETCH/get", "NETWORK/addr", "STORAGE/grow"]
    assert world.checkpoint().boot == 2


def test_new_instance_runs_per_instance_steps_again_but_not_once_steps(world, caplog):
    world.boot()
    world.instance_id = "i-2"
    with caplog.at_level(logging.INFO):
        world.boot()
    assert "IDENTITY/name" in world.ran and "STORAGE/reguid" in world.ran
    assert "STORAGE/swap" not in world.ran
    assert "new instance i-2 (checkpoint was for i-1)" in caplog.text
    cp = world.checkpoint()
    assert set(cp.instances) == {"i-1", "i-2"}  # the old instance's records stay


def test_unknown_instance_twice_is_the_same_instance_with_a_warning(world, caplog):
    world.instance_id = None
    world.boot()
    with caplog.at_level(logging.WARNING):
        world.boot()
    assert "IDENTITY/name" not in world.ran
    assert "treating this guest as the same unknown instance" in caplog.text


def test_failed_step_does_not_stop_later_phases_and_holds_for_svcadm_clear(world):
    world.fail["STORAGE/grow"] = ServiceError("disk gone")
    code, machine = world.boot()
    assert code == 95
    assert "USERSCRIPT/install" in world.ran and "STORAGE/swap" in world.ran
    cp = world.checkpoint()
    assert cp.phase == "STORAGE" and cp.resume_from == "STORAGE"
    assert cp.last_error["step"] == "grow" and "disk gone" in cp.last_error["message"]
    assert cp.phases["STORAGE"]["result"] == "failed"
    # `svcadm clear`: the next start resumes in STORAGE, runs only what is not done.
    del world.fail["STORAGE/grow"]
    code, machine = world.boot()
    assert code == 0 and machine.state == "DONE"
    assert world.ran == ["DETECT/look", "FETCH/get", "STORAGE/grow"]
    cp = world.checkpoint()
    assert cp.boot == 1 and cp.last_error is None and cp.resume_from is None


def test_bad_metadata_alone_exits_96(world):
    world.fail["IDENTITY/name"] = MetadataError("test", "hostname", "has a space")
    code, _ = world.boot()
    assert code == 96
    assert world.checkpoint().phase == "IDENTITY"


def test_a_stopping_failure_in_fetch_stays_in_fetch_and_is_retried(world):
    world.fail["FETCH/get"] = ServiceError("service down")
    code, machine = world.boot()
    assert code == 95 and machine.state == "FETCH"
    assert world.ran == ["DETECT/look", "FETCH/get"]
    cp = world.checkpoint()
    assert cp.phase == "FETCH" and cp.phases["FETCH"]["result"] == "failed"
    del world.fail["FETCH/get"]
    code, _ = world.boot()
    assert code == 0
    assert world.checkpoint().boot == 1  # the same boot, finished


def test_an_internal_error_is_a_failed_step_not_a_crash(world):
    world.fail["NETWORK/addr"] = KeyError("bug")
    code, _ = world.boot()
    assert code == 95
    assert "IDENTITY/name" in world.ran


def test_interrupted_one_shot_step_that_took_effect_is_not_run_again(world):
    world.boot()
    # Make the checkpoint look as if the agent died inside reguid on a new instance.
    world.instance_id = "i-2"
    store = CheckpointStore(System(world.root))
    cp = store.load()
    steps = world.phases()
    reguid = next(s for s in steps["STORAGE"] if s.name == "reguid")
    cp.instance_id = "i-2"
    cp.phase = "STORAGE"
    cp.mark(reguid, "i-2", "started", intent={"guid": "old"})
    store.save(cp)
    world.effect_done = {"STORAGE/reguid"}  # the effect is visible
    code, _ = world.boot()
    assert code == 0
    assert "STORAGE/reguid" not in world.ran
    rec = world.checkpoint().instances["i-2"]["STORAGE/reguid"]
    assert rec["status"] == "done" and rec["recovered"] is True


def test_interrupted_one_shot_step_without_effect_runs_again(world):
    world.boot()
    store = CheckpointStore(System(world.root))
    cp = store.load()
    reguid = next(s for s in world.phases()["STORAGE"] if s.name == "reguid")
    cp.phase = "STORAGE"
    cp.mark(reguid, "i-1", "started", intent={"guid": "old"})
    store.save(cp)
    world.effect_done = set()
    world.boot()
    assert "STORAGE/reguid" in world.ran


def test_network_skip_from_metadata_skips_the_phase(world, tmp_path):
    phases = world.phases()

    def fetch(ctx):
        ctx.metadata = Metadata(source="cpio", instance_id="i-1", network_skip=True,
                                provenance={"network_skip": "config.toml [network] skip"})
        return Outcome()
    phases["FETCH"] = (Step("FETCH", "get", Frequency.PER_BOOT, fetch, "-", "-", "-"),)
    system = System(world.root)
    store = CheckpointStore(system)
    ctx = Context(system=system, settings=Settings(), checkpoint=store.load())
    assert BootMachine(ctx, store, phases=phases).run() == 0
    assert "NETWORK/addr" not in world.ran
    assert world.checkpoint().phases["NETWORK"]["result"] == "skipped"


def test_checkpoint_that_cannot_be_written_does_not_stop_configuration(world, caplog):
    import os
    os.makedirs(os.path.join(world.root, "var"), exist_ok=True)
    # A file where the checkpoint directory should be: every save fails with ENOTDIR.
    with open(os.path.join(world.root, "var", "metadata"), "w") as f:
        f.write("not a directory")
    with caplog.at_level(logging.ERROR):
        code, machine = world.boot()
    assert "USERSCRIPT/install" in world.ran and "STORAGE/swap" in world.ran
    assert "could not write checkpoint" in caplog.text
    assert code == 95  # only for reguid, whose intent could not be recorded (next test)


def test_a_step_whose_intent_cannot_be_checkpointed_is_not_run(world, caplog):
    """reguid must not repeat on every boot while /var is unwritable; hostname still runs."""
    import os
    os.makedirs(os.path.join(world.root, "var"), exist_ok=True)
    with open(os.path.join(world.root, "var", "metadata"), "w") as f:
        f.write("not a directory")
    _boot_with_reguid_refused(world, caplog, "its intent could not be checkpointed")


def _boot_with_reguid_refused(world, caplog, why: str) -> None:
    """A boot where reguid (a one-shot step with an intent) is refused for `why` and the
    rest of the steps still run: exit 95."""
    with caplog.at_level(logging.ERROR):
        code, _machine = world.boot()
    assert code == 95
    assert "STORAGE/reguid" not in world.ran
    assert "IDENTITY/name" in world.ran and "USERSCRIPT/install" in world.ran
    assert why in caplog.text


def test_a_failing_directory_sync_stops_a_step_whose_intent_it_was_to_make_durable(
        world, caplog, monkeypatch):
    """The machine syncs the directories written so far before every step; when that
    fails, a one-shot step with an intent (reguid) is not run, as when its intent could not
    be written, and the others still run. Every step waited for a sync."""
    import errno

    synced: list[bool] = []

    def failing(self, stop_deferring=False):
        synced.append(stop_deferring)
        self._unsynced_dirs = None if stop_deferring else {}
        raise OSError(errno.EIO, "cannot make /var/metadata durable: I/O error")

    monkeypatch.setattr(System, "sync_directories", failing)
    _boot_with_reguid_refused(world, caplog, "its intent could not be made durable")
    assert synced.count(False) == len(world.ran) + 1 and synced[-1] is True


def test_steps_run_only_after_what_was_written_before_them_is_durable(world, monkeypatch):
    """No step starts with a directory fsync still owed; writes after the run sync at once."""
    owed_at_step: list[int] = []
    real_step = world.step

    def step(phase, name, freq, **kw):
        made = real_step(phase, name, freq, **kw)
        inner = made.run

        def run(ctx):
            owed_at_step.append(len(ctx.system._unsynced_dirs or {}))
            return inner(ctx)
        return Step(made.phase, made.name, made.frequency, run, changes="-", fails_when="-",
                    on_failure="-", intent=made.intent, took_effect=made.took_effect,
                    stops_machine=made.stops_machine)

    monkeypatch.setattr(world, "step", step)
    code, machine = world.boot()
    assert code == 0 and len(owed_at_step) == 8 and set(owed_at_step) == {0}
    assert machine.store.system._unsynced_dirs is None
