"""Issue 2's promise: SIGKILL the agent at every step boundary, in the middle of a step and
in the middle of a checkpoint write; restarting completes the boot, the guest ends exactly
as after an uninterrupted boot, and no one-shot step ran twice by the stand-ins' counts."""

from __future__ import annotations

import pytest
from crashkit import (
    ONE_SHOT_CALLS,
    boot_until_done,
    change_steps,
    comparable,
    kill_while_blocked,
)
from guest import make_guest

PLATFORM = "qemu"


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    g = make_guest(tmp_path_factory.mktemp("baseline"), PLATFORM)
    assert boot_until_done(g) == [0]
    return comparable(g), g.calls()


def _assert_like_baseline(g, baseline) -> None:
    shown, calls = baseline
    assert comparable(g) == shown
    got = g.calls()
    for key in ONE_SHOT_CALLS:
        assert got.get(key, 0) == calls.get(key, 0), f"{key} ran {got.get(key, 0)} times"
    cp = g.checkpoint()
    assert cp.phase == "DONE" and cp.boot == 1


@pytest.mark.parametrize("point", ["before", "after"])
@pytest.mark.parametrize("step", change_steps())
def test_killed_at_a_step_boundary_resumes_to_the_same_guest(tmp_path, baseline, step, point):
    g = make_guest(tmp_path, PLATFORM)
    codes = boot_until_done(g, crash_at=f"{point}:{step}")
    assert codes[0] == -9 and codes[-1] == 0, codes
    _assert_like_baseline(g, baseline)


@pytest.mark.parametrize("nth", [1, 3, 7])
def test_killed_in_the_middle_of_a_checkpoint_write(tmp_path, baseline, nth):
    g = make_guest(tmp_path, PLATFORM)
    codes = boot_until_done(g, crash_at=f"write-mid:/var/metadata/state.msgpack#{nth}")
    assert codes[0] == -9 and codes[-1] == 0, codes
    _assert_like_baseline(g, baseline)


@pytest.mark.parametrize("call_key", ["zpool reguid", "zfs create", "svcadm enable"])
def test_killed_in_the_middle_of_a_one_shot_step_after_its_effect(tmp_path, baseline, call_key):
    g = make_guest(tmp_path, PLATFORM)
    kill_while_blocked(g, call_key, after_effect=True)
    assert boot_until_done(g)[-1] == 0
    _assert_like_baseline(g, baseline)
