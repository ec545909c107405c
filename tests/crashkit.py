"""Kill the agent the way a power cut would, and compare what a resumed boot leaves behind
with an uninterrupted one. Shared by the crash tests of the state machine and the matrix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from guest import PROJECT_DIR, Guest, without_calls

from fsm.phases import GATHER_PHASES, PHASES
from sim import state as sim_state
from sim.serve import serving

# Commands whose effect must happen once per instance; their call counts must match an
# uninterrupted run's exactly.
ONE_SHOT_CALLS = ("zpool reguid", "zfs create", "svcadm enable")


def change_steps() -> list[str]:
    return [s.key for phase, steps in PHASES.items() if phase not in GATHER_PHASES
            for s in steps]


def comparable(g: Guest) -> dict[str, Any]:
    """The guest's state, with values that are random by design made comparable."""
    shown = without_calls(g.show())
    if shown.get("pool"):
        shown["pool"] = {**shown["pool"], "guid": "(changed)" if shown["pool"]["guid"] !=
                         g.state().get("initial_pool_guid", "14823094716624589123")
                         else "(image's)"}
    return shown


def run_agent(g: Guest, crash_at: str | None = None, timeout: float = 120) -> int:
    env = {"METADATA_AGENT_CRASH_AT": crash_at} if crash_at else None
    return g.run(env=env, timeout=timeout).returncode


def boot_until_done(g: Guest, crash_at: str | None = None, limit: int = 4) -> list[int]:
    """Run once (crashing where told), then restart until exit 0; returns the exit codes."""
    codes = []
    with serving(g.root):
        codes.append(run_agent(g, crash_at))
        while codes[-1] != 0 and len(codes) < limit:
            codes.append(run_agent(g))
    return codes


def kill_while_blocked(g: Guest, call_key: str, after_effect: bool = True,
                       timeout: float = 60) -> int:
    """Run the agent with `call_key`'s stand-in told to block (after or before its effect),
    wait until it is blocked, SIGKILL the agent's whole process group, return its status."""
    with sim_state.locked(g.root) as st:
        st.setdefault("faults", {})["hang_after" if after_effect else "hang"] = [call_key]
    env = {k: v for k, v in os.environ.items() if k != "METADATA_AGENT_CRASH_AT"}
    env["PYTHONPATH"] = PROJECT_DIR
    proc = subprocess.Popen([sys.executable, "-m", "fsm", "run", "--root", g.root], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while sim_state.load(g.root).get("calls", {}).get(call_key, 0) < 1:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{call_key} was never reached (exit {proc.returncode})")
            time.sleep(0.02)  # polling the stand-in's own record: readiness, not a guess
        if after_effect:
            _wait_effect_saved(g, call_key, deadline)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    with sim_state.locked(g.root) as st:
        st["faults"] = {}
    return proc.returncode


def _wait_effect_saved(g: Guest, call_key: str, deadline: float) -> None:
    # The stand-in saves its state before it blocks: the lock is free once it has.
    while time.monotonic() < deadline:
        try:
            with sim_state.locked(g.root):
                return
        except OSError:
            time.sleep(0.02)
