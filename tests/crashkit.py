"""Kill the agent the way a power cut would, and compare what a resumed boot leaves behind
with an uninterrupted one. Shared by the crash matrix, the repeated-boot tests and the
state machine's own crash tests.

The reference for a platform is a *traced* uninterrupted boot: the agent runs as a real
process (this file as its `__main__`, see `_trace_main`) with its checkpoint saves, commands
and file writes recorded, labelled with the step that made them. The matrix uses the trace
to find the N of "the N-th checkpoint write" for a step and to check that the command chosen
to block in the middle of a step really is first called by that step.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from guest import PROJECT_DIR, Guest, make_guest, without_calls

from fsm.checkpoint import CHECKPOINT_PATH, DONE, decode
from fsm.phases import GATHER_PHASES, PHASES
from fsm.query import QUERY_PATH
from fsm.steps import Frequency
from sim import guest as sim_guest
from sim import state as sim_state
from sim.commands import COMMAND_PATHS
from sim.hostkeys import IMAGE_FINGERPRINTS
from sim.serve import serving

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

# Dispatcher call keys whose effect must happen once per instance: their counts after any
# crash and resume must equal an uninterrupted boot's. The dispatcher counts a call and
# saves its effect in one locked state write, so a count is an effect, not an attempt.
CLOUD_CONFIG_CALLS = ("useradd", "groupadd")   # only where the metadata has cloud-config
ONE_SHOT_CALLS = ("zpool reguid", "zfs create", "zpool create", "svcadm enable",
                  *CLOUD_CONFIG_CALLS)
# Commands whose one-shot form the dispatcher cannot tell from a read (`hostname` prints,
# `hostname NAME` sets; `swap -l` lists, `swap -a` adds): the guest's wrapper for them is
# replaced by one that logs each invocation that exited 0 (see `count_argv`).
ARGV_COUNTED = ("hostname", "swap")
ONE_SHOT_ARGV = (("hostname NAME", re.compile(r"^hostname [^-]")),
                 ("swap -a", re.compile(r"^swap -a ")))
ARGV_LOG = "var/sim/argv-completed.log"

# Our atomic writes' temp names: `.NAME.tmp-PID-HEX` (and `.prev` link temps after it).
OUR_TEMP = re.compile(r"^\..+\.tmp-\d+-[0-9a-f]+(\.prev)?$")
SIM_DIR = "var/sim"   # the simulator's own bookkeeping, not the guest's


def change_steps() -> list[str]:
    return [s.key for phase, steps in PHASES.items() if phase not in GATHER_PHASES
            for s in steps]


def gather_steps() -> list[str]:
    return [s.key for phase in GATHER_PHASES for s in PHASES[phase]]


def one_shot_steps() -> list[str]:
    return [s.key for phase, steps in PHASES.items() if phase not in GATHER_PHASES
            for s in steps if s.frequency is not Frequency.PER_BOOT]


# ---- guests ----------------------------------------------------------------------------
def count_argv(g: Guest) -> None:
    """Replace the wrappers of ARGV_COUNTED commands with ones that log completed calls."""
    log = os.path.join(g.root, ARGV_LOG)
    for command in ARGV_COUNTED:
        wrapper = sim_guest.WRAPPER.format(
            command=command, root=_q(g.root), project=_q(PROJECT_DIR), python=_q(sys.executable))
        body = wrapper.replace(" exec ", " ", 1).rstrip("\n")
        body += (f'\nrc=$?\n[ "$rc" -eq 0 ] && printf "%s\\n" "{command} $*" >> {_q(log)}\n'
                 "exit $rc\n")
        path = g.path(COMMAND_PATHS[command])
        with open(path, "w", encoding="utf-8") as f:
            f.write(body)
        os.chmod(path, 0o755)


def _q(text: str) -> str:
    import shlex
    return shlex.quote(text)


# The richest guest also has a blank data disk and a data pool to make on it (STORAGE/pools).
POOL_PLATFORMS = ("qemu",)
DATA_DISK = "c5t0d0:10G"
POOL_SETTINGS = '[storage]\npools = [{name = "tank", disks = ["c5t0d0"], autoexpand = true}]\n'


def crash_guest(tmp_path, platform: str, name: str = "guest") -> Guest:
    """A fresh guest of `platform` whose one-shot commands are counted."""
    g = make_guest(tmp_path, platform, name=name)
    if platform in POOL_PLATFORMS:
        with sim_state.locked(g.root) as st:
            sim_guest.attach_disk(g.root, st, DATA_DISK)
        with open(g.path("/etc/metadata-agent.toml"), "a", encoding="utf-8") as f:
            f.write(POOL_SETTINGS)
    count_argv(g)
    return g


def one_shot_counts(g: Guest) -> dict[str, int]:
    calls = g.calls()
    counts = {key: calls.get(key, 0) for key in ONE_SHOT_CALLS}
    try:
        with open(os.path.join(g.root, ARGV_LOG), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        lines = []
    for label, pattern in ONE_SHOT_ARGV:
        counts[label] = sum(1 for line in lines if pattern.match(line))
    return counts


def comparable(g: Guest) -> dict[str, Any]:
    """The guest's state, with values that are random by design made comparable."""
    shown = without_calls(g.show())
    ssh = shown.get("ssh") or {}
    if ssh.get("host_keys"):   # new keys are random: the image's, or new ones
        shown["ssh"] = {**ssh, "host_keys": {
            t: "(image's)" if fp == IMAGE_FINGERPRINTS.get(t) else "(new)"
            for t, fp in ssh["host_keys"].items()}}
    for user in (shown.get("users") or {}).values():
        # A plain password (Azure's UserPassword) is hashed with a new random salt by
        # whichever run writes it: the scheme is compared, the salted hash cannot be.
        if isinstance(user.get("password"), str) and user["password"].startswith("$"):
            user["password"] = user["password"].split(" ")[0] + " (salted hash)"
    if shown.get("pool"):
        shown["pool"] = {**shown["pool"], "guid": "(changed)" if shown["pool"]["guid"] !=
                         g.state().get("initial_pool_guid", "14823094716624589123")
                         else "(image's)"}
    return shown


def stray_temp_files(g: Guest) -> list[str]:
    """Leftovers of our atomic writes anywhere under the root (the simulator's dir aside)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(g.root):
        rel = os.path.relpath(dirpath, g.root)
        if rel == SIM_DIR or rel.startswith(SIM_DIR + os.sep):
            dirnames[:] = []
            continue
        found += [os.path.join(rel, n) for n in filenames + dirnames if OUR_TEMP.match(n)]
    return sorted(found)


def damaged_checkpoints(g: Guest) -> list[str]:
    """Checkpoint files the agent had to move aside: a kill must never cause one."""
    return sorted(n for n in os.listdir(g.path("/var/metadata")) if ".corrupt-" in n)


def file_bytes(g: Guest, paths: list[str]) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for path in paths:
        try:
            with open(g.path(path), "rb") as f:
                out[path] = f.read()
        except FileNotFoundError:
            out[path] = None
    return out


def done_steps(g: Guest) -> dict[str, str]:
    """Step key -> status of every record that applies to this boot and instance."""
    return {key: rec.get("status") for key, rec in g.checkpoint().completed_steps()}


# ---- running the agent -----------------------------------------------------------------
def _agent_env(crash_at: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "METADATA_AGENT_CRASH_AT"}
    env["PYTHONPATH"] = os.pathsep.join([PROJECT_DIR, TESTS_DIR])
    if crash_at:
        env["METADATA_AGENT_CRASH_AT"] = crash_at
    return env


def run_agent(g: Guest, crash_at: str | None = None, timeout: float = 120) -> int:
    env = {"METADATA_AGENT_CRASH_AT": crash_at} if crash_at else None
    return g.run(env=env, timeout=timeout).returncode


def resume_until_done(g: Guest, codes: list[int], limit: int = 4) -> list[int]:
    """Restart (with the emulator serving) until exit 0 or `limit` runs in all."""
    if codes and codes[-1] == 0:
        return codes
    with serving(g.root):
        while (not codes or codes[-1] != 0) and len(codes) < limit:
            codes.append(run_agent(g))
    return codes


def boot_until_done(g: Guest, crash_at: str | None = None, limit: int = 4) -> list[int]:
    """Run once (crashing where told), then restart until exit 0; returns the exit codes."""
    codes = []
    with serving(g.root):
        codes.append(run_agent(g, crash_at))
        while codes[-1] != 0 and len(codes) < limit:
            codes.append(run_agent(g))
    return codes


def _start_agent(g: Guest) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fsm", "run", "--root", g.root],
                            env=_agent_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _kill_group(proc: subprocess.Popen) -> int:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return proc.wait()


def kill_while_blocked(g: Guest, call_key: str, after_effect: bool = True,
                       timeout: float = 60) -> int:
    """Run the agent (serving its emulator) with `call_key`'s stand-in told to block, after
    its effect (`hang_after`) or before it (`hang`); once it is blocked, SIGKILL the agent's
    whole process group, as a power cut would stop everything. Returns the agent's status."""
    before = g.calls().get(call_key, 0)
    with sim_state.locked(g.root) as st:
        st.setdefault("faults", {})["hang_after" if after_effect else "hang"] = [call_key]
    try:
        with serving(g.root):
            proc = _start_agent(g)
            deadline = time.monotonic() + timeout
            try:
                while not (_effect_saved(g, call_key, before) if after_effect
                           else _standin_running(proc.pid, call_key)):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(f"{call_key} was never reached "
                                             f"(agent exit {proc.returncode})")
                    time.sleep(0.02)  # polling the stand-in's own record: readiness
            finally:
                code = _kill_group(proc)
    finally:
        with sim_state.locked(g.root) as st:
            st["faults"] = {}
    return code


def _effect_saved(g: Guest, call_key: str, before: int) -> bool:
    # The dispatcher saves the count together with the effect, then blocks.
    try:
        return sim_state.load(g.root).get("calls", {}).get(call_key, 0) > before
    except (OSError, ValueError):
        return False


def _standin_running(session: int, call_key: str) -> bool:
    """A stand-in for `call_key` is a process of the agent's session (blocked, or about to
    block, before anything it does: `hang` is checked before the call is counted)."""
    want = call_key.split()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if int(fields[3]) != session or "sim.standins" not in argv:
            continue
        args = argv[argv.index("sim.standins") + 1:]
        if args[: len(want)] == want:
            return True
    return False


def kill_while_fetching(g: Guest, timeout: float = 60) -> int:
    """SmartOS: the emulator holds its answer to the first GET until the agent is killed."""
    with serving(g.root) as server:
        server.faults.delay_s = 3600.0
        proc = _start_agent(g)
        deadline = time.monotonic() + timeout
        try:
            while not server.requests:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"no metadata request (agent exit {proc.returncode})")
                time.sleep(0.02)  # the emulator's own record of the request: readiness
        finally:
            code = _kill_group(proc)
    return code


# ---- the traced reference boot ----------------------------------------------------------
@dataclass
class Baseline:
    """An uninterrupted boot of a fresh guest of one platform, and what it did, by step."""

    platform: str
    shown: dict[str, Any]
    calls: dict[str, int]
    one_shot: dict[str, int]
    done: dict[str, str]
    saves: list[dict[str, Any]]             # each checkpoint save: step, phase, status
    events: list[tuple[str, str, str]]      # (step, "call"|"write", call key or path)
    files: dict[str, bytes | None] = field(default_factory=dict)

    def save_index(self, step: str, status: str = DONE) -> int:
        """1-based N of the checkpoint save recording `step` with `status`."""
        for n, save in enumerate(self.saves, 1):
            if save["step"] == step and save["status"] == status:
                return n
        raise AssertionError(f"no checkpoint save of {step} {status} in the {self.platform} boot")

    def transition_saves(self) -> dict[str, int]:
        """Boundary name -> N of the checkpoint saves between phases."""
        out: dict[str, int] = {}
        for n, save in enumerate(self.saves, 1):
            if save["step"] == "-":
                name = "begin" if n == 1 else f"to-{save['phase']}"
                out[name if name not in out else "final"] = n
        return out

    def first_step_of(self, kind: str, target: str) -> str | None:
        for step, k, t in self.events:
            if k == kind and t == target:
                return step
        return None

    def written_paths(self) -> list[str]:
        return sorted({t for _, k, t in self.events if k == "write"} - {CHECKPOINT_PATH})


_BASELINES: dict[str, Baseline] = {}


def baseline(platform: str) -> Baseline:
    """The traced uninterrupted boot of `platform`, made once per test process."""
    if platform not in _BASELINES:
        tmp = tempfile.mkdtemp(prefix=f"baseline-{platform}-")
        g = crash_guest(pathlib.Path(tmp), platform)
        out = os.path.join(tmp, "trace.json")
        with serving(g.root):
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), g.root, out],
                                  env=_agent_env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{platform} baseline boot failed:\n{proc.stdout[-3000:]}"
        with open(out, encoding="utf-8") as f:
            trace = json.load(f)
        base = Baseline(platform=platform, shown=comparable(g), calls=g.calls(),
                        one_shot=one_shot_counts(g), done=done_steps(g), saves=trace["saves"],
                        events=[tuple(e) for e in trace["events"]])
        base.files = file_bytes(g, base.written_paths())
        _BASELINES[platform] = base
    return _BASELINES[platform]


# ---- the checks every crash case makes ---------------------------------------------------
VOLATILE_FILES = (
    "/var/run/metadata-agent/format-expand.cmd",  # rewritten by every boot's expand step
    # Each start's record (times; a killed start shows as interrupted: by design).
    "/var/metadata/history.json",
    # Holds the host keys' fingerprints, new random keys in every boot (compared below).
    "/var/metadata/query.json",
)


def assert_like_baseline(g: Guest, base: Baseline, codes: list[int],
                         boots: tuple[int, ...] = (1,)) -> None:
    assert codes[-1] == 0, f"never reached DONE: exit codes {codes}"
    cp = g.checkpoint()  # decodes, or raises
    assert cp.phase == "DONE" and cp.boot in boots, (cp.phase, cp.boot)
    assert done_steps(g) == base.done, "step records differ from an uninterrupted boot"
    assert comparable(g) == base.shown
    got = one_shot_counts(g)
    assert got == base.one_shot, f"one-shot commands ran {got}, uninterrupted {base.one_shot}"
    stray = stray_temp_files(g)
    assert stray == [], f"half-written temp files left under the root: {stray}"
    damaged = damaged_checkpoints(g)
    assert damaged == [], f"checkpoints moved aside as damaged: {damaged}"
    if os.path.exists(g.path(CHECKPOINT_PATH + ".prev")):
        with open(g.path(CHECKPOINT_PATH + ".prev"), "rb") as f:
            decode(f.read())
    files = file_bytes(g, base.written_paths())
    for path, data in base.files.items():
        if path == SHADOW:
            assert _sans_hashes(files[path]) == _sans_hashes(data), f"{path} differs"
        elif path not in VOLATILE_FILES:
            assert files[path] == data, f"{path} differs from an uninterrupted boot's"
    if base.files.get(QUERY_PATH) is not None:
        assert _query_sans_keys(files[QUERY_PATH]) == _query_sans_keys(base.files[QUERY_PATH])


SHADOW = "/etc/shadow"


def _sans_hashes(data: bytes | None) -> list[list[bytes]] | None:
    """/etc/shadow with each crypt hash's salt and digest left out (see comparable())."""
    if data is None:
        return None
    rows = [line.split(b":") for line in data.splitlines()]
    return [[f.split(b"$")[1] if i == 1 and f.startswith(b"$") else f
             for i, f in enumerate(row)] for row in rows]


def _query_sans_keys(data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    doc = json.loads(data)
    doc["host_key_fingerprints"] = sorted(doc.get("host_key_fingerprints", {}))
    return doc


# ---- the tracer: this file run as the agent ---------------------------------------------
def _trace_main(root: str, out: str) -> int:
    """Run `metadata run --root ROOT` in this process, recording saves, calls and writes."""
    from fsm import checkpoint, cli, logsetup
    from fsm import system as sysmod
    from sim.standins.__main__ import call_key

    trace: dict[str, list[Any]] = {"saves": [], "events": []}
    real_save, real_exec = checkpoint.CheckpointStore.save, sysmod.System._execute
    real_write = sysmod.System.write_file

    def save(self, cp):
        step = logsetup._where.get()
        rec = next((t[step] for t in (cp.boot_steps, cp.once, *cp.instances.values())
                    if step in t), {})
        trace["saves"].append({"step": step, "phase": cp.phase, "status": rec.get("status")})
        return real_save(self, cp)

    def execute(self, argv, *args, **kwargs):
        key = call_key(os.path.basename(argv[0]), list(argv[1:]))
        trace["events"].append((logsetup._where.get(), "call", key))
        return real_exec(self, argv, *args, **kwargs)

    def write_file(self, guest_path, *args, **kwargs):
        trace["events"].append((logsetup._where.get(), "write", guest_path))
        return real_write(self, guest_path, *args, **kwargs)

    checkpoint.CheckpointStore.save = save
    sysmod.System._execute = execute
    sysmod.System.write_file = write_file
    try:
        return cli.main(["run", "--root", root])
    finally:
        with open(out, "w", encoding="utf-8") as f:
            json.dump(trace, f)


if __name__ == "__main__":
    sys.exit(_trace_main(sys.argv[1], sys.argv[2]))
