"""`make bench`: time the agent on the simulated guest and write docs/performance.md.

What is timed is the agent, not the simulation. Every boot runs the real agent as its own
process through a small launcher (`LAUNCHER`) that records, inside that process, its own
CPU time and peak RSS (`RUSAGE_SELF`: the stand-ins it spawns are not counted), the wall
time of every command it runs and the time it sleeps. The stand-ins are part of the simulated guest (a Python
start per `zpool` call, where illumos runs a native binary), so

    agent time = wall time of the run - wall time spent waiting for commands.

The launcher wraps `fsm.spawn.run` (the one call `fsm.system` makes) and `time.sleep` to
time them: it observes and changes nothing. Sleeps stay in the agent's share (they are its
own bounded waits), but are reported apart. The HTTP and pty emulators answer with zero latency in this
process's threads; the little time they take is left in the agent's share (pessimistic).

Each figure sits beside a bare interpreter (`python -c pass`) run just before it, as a
ratio: the absolute figures move with the machine's load, the ratios much less. CPU figures
are compared with the bare interpreter's CPU, wall figures with its wall time. The agent's
sources are byte-compiled first, as an installed package is (a run with
PYTHONDONTWRITEBYTECODE set would otherwise compile every module on every start).

Beside the agent, in the same run: Debian's cloud-init (`sim/benchcloudinit.py`) doing a
comparable job on its own interpreter, skipped when it is not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform as pyplatform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from sim import guest as sim_guest
from sim.platforms import EMULATORS
from sim.serve import serving

PROJECT_DIR = sim_guest.PROJECT_DIR
# Every simulated platform: each with a metadata emulator, and `none` (no metadata).
PLATFORMS = (*EMULATORS, "none")
# First boots per platform other than the headline's and none's, unless --platform-runs
# says otherwise: a dozen platforms at --runs each would make `make bench` a long wait.
# With 3 a single slow bare run moved a platform's median ratio by 15%; with 5, four runs
# of `make bench` in one afternoon gave Azure 5.00x to 6.30x (issue 17). 9 it is.
DEFAULT_PLATFORM_RUNS = 9
BARE_RUNS = 3                    # bare interpreters behind each paired run's yardstick
HEADLINE_PLATFORM = "qemu"       # second boot, resume, dist/metadata and checkpoint use it
CRASH_POINT = "after:STORAGE/reguid"
DEPENDENCY_PACKAGES = "transitions requests serial msgpack yaml tomli"
AGENT_PACKAGES = ("fsm", "providers", "operations")

# Runs inside the agent's process: records what only that process can know, then runs
# `python -m fsm` unchanged (same module, same argv handling, same exit code).
LAUNCHER = r"""
import atexit, os, resource, runpy, sys, time
report_path = os.environ.pop("SIM_BENCH_REPORT")
dependencies = set(os.environ.pop("SIM_BENCH_DEPS", "").split())
archive = os.environ.pop("SIM_BENCH_ARCHIVE", "")
if archive:
    sys.path.insert(0, archive)
from fsm import spawn
commands = []
real_run = spawn.run
def timed_run(*args, **kwargs):
    start = time.time()
    try:
        return real_run(*args, **kwargs)
    finally:
        commands.append((start, time.time()))
spawn.run = timed_run
sleeps = []
real_sleep = time.sleep
def timed_sleep(seconds):
    sleeps.append(seconds)
    real_sleep(seconds)
time.sleep = timed_sleep
def peak_rss_kib(usage):
    # VmHWM: this process image's own peak. ru_maxrss also counts the pages of the process
    # that spawned it, as mapped before the exec (the bench harness, tens of MiB).
    try:
        with open("/proc/self/status") as f:
            return int(next(ln for ln in f if ln.startswith("VmHWM:")).split()[1])
    except (OSError, StopIteration, ValueError):
        return usage.ru_maxrss
def report():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    import json
    with open(report_path, "w") as f:
        json.dump({"commands": commands, "cpu_s": usage.ru_utime + usage.ru_stime,
                   "maxrss_kib": peak_rss_kib(usage), "sleep_s": sum(sleeps),
                   "http_stack": bool({"providers.http", "http.client", "requests"}
                                      & set(sys.modules)),
                   "dependencies": sorted({m.split(".")[0] for m in sys.modules} & dependencies),
                   # Commands went through subprocess (untimed here): fsm/spawn.py unusable.
                   "subprocess": "subprocess" in sys.modules},
                  f)
atexit.register(report)
sys.argv = ["metadata"] + sys.argv[1:]
runpy.run_module("fsm", run_name="__main__", alter_sys=True)
"""


@dataclass
class Run:
    """One agent process, as the harness and the launcher saw it."""
    exit_code: int
    wall_s: float
    command_s: float = 0.0
    commands: int = 0
    cpu_s: float = 0.0
    maxrss_kib: int = 0
    sleep_s: float = 0.0                   # in time.sleep (bounded waits, backoff)
    http_stack: bool = False
    dependencies: list[str] = field(default_factory=list)  # third-party packages loaded
    baseline_s: float | None = None        # the bare interpreter run just before: wall
    baseline_cpu_s: float | None = None    # ... and CPU
    detect_s: float | None = None          # the DETECT phase, from the checkpoint
    detect_commands_s: float | None = None
    to_detect_end_s: float | None = None   # from the spawn to the end of DETECT
    untimed_commands: bool = False         # commands ran through subprocess, not timed

    @property
    def agent_s(self) -> float:
        return self.wall_s - self.command_s


@dataclass
class Bench:
    runs: int
    platform_runs: int
    workdir: str
    archive: str = ""                      # dist/metadata, built for this run
    first_boot: dict[str, list[Run]] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=lambda: {"baseline": []})
    failures: list[str] = field(default_factory=list)
    _serial: int = 0

    @property
    def log(self) -> str:
        return os.path.join(self.workdir, "agent.log")

    def fresh_root(self, platform: str) -> str:
        self._serial += 1
        root = os.path.join(self.workdir, f"{platform}-{self._serial}")
        sim_guest.create(root, platform)
        return root

    def baseline(self, python: tuple[str, ...] = ()) -> dict[str, float]:
        """One bare interpreter (`python -c pass`); every sample is kept for its own figure."""
        sample = timed_process([*(python or (sys.executable,)), "-c", "pass"])
        if not python:
            self.results["baseline"].append(sample)
        return sample

    def paired(self, measure: Callable[[], Run]) -> Run:
        """Run bare interpreters just before `measure`, so each run has its own yardstick
        taken under the same load: the ratio of the two is the figure that travels.

        The yardstick is the median of BARE_RUNS of them: one bare start's CPU time ranged
        from 20 to 45 ms within one run on this 2-core machine, and a single slow or fast
        one moved a platform's ratio by a fifth (issue 17)."""
        samples = [self.baseline() for _ in range(BARE_RUNS)]
        run = measure()
        run.baseline_s = statistics.median(b["wall_s"] for b in samples)
        run.baseline_cpu_s = statistics.median(b["cpu_s"] for b in samples)
        return run


def run_agent(root: str, *args: str, crash_at: str | None = None,
              archive: str | None = None, log_path: str | None = None,
              python: str = sys.executable) -> Run:
    """`metadata run --root ROOT` through the launcher; the archive on a clean Python."""
    report_path = os.path.join(root, "var", "sim", "bench-report.json")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METADATA_AGENT_", "SIM_"))}
    env.update(SIM_BENCH_REPORT=report_path, SIM_BENCH_DEPS=DEPENDENCY_PACKAGES,
               PYTHONPATH=PROJECT_DIR)
    interpreter = [python]
    if archive:
        # Nothing but the standard library: -I (no PYTHON* variables, no script
        # directory), -S (no site-packages, so not the venv's), an empty environment.
        env = {"SIM_BENCH_REPORT": report_path, "SIM_BENCH_ARCHIVE": archive,
               "SIM_BENCH_DEPS": DEPENDENCY_PACKAGES}
        interpreter = [python, "-I", "-S"]
    if crash_at:
        env["METADATA_AGENT_CRASH_AT"] = crash_at
    argv = [*interpreter, "-c", LAUNCHER, "run", "--root", root, *args]
    with open(log_path or os.devnull, "ab") as log:
        spawned = time.time()
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                env=env, cwd=PROJECT_DIR if not archive else "/")
        code = proc.wait()
        wall = time.perf_counter() - start
    run = Run(exit_code=code, wall_s=wall)
    with contextlib.suppress(OSError, ValueError):
        with open(report_path, encoding="utf-8") as f:
            report = json.load(f)
        os.unlink(report_path)
        spans = report["commands"]
        run.command_s = sum(end - begin for begin, end in spans)
        run.commands = len(spans)
        run.cpu_s, run.maxrss_kib = report["cpu_s"], report["maxrss_kib"]
        run.http_stack, run.sleep_s = report["http_stack"], report["sleep_s"]
        run.dependencies = report["dependencies"]
        run.untimed_commands = report["subprocess"]
        _read_detect(root, run, spans, spawned)
    return run


def _read_detect(root: str, run: Run, spans: list[list[float]], spawned: float) -> None:
    from fsm.checkpoint import CHECKPOINT_PATH, decode

    with open(os.path.join(root, CHECKPOINT_PATH.lstrip("/")), "rb") as f:
        rec = decode(f.read()).phases.get("DETECT") or {}
    if rec.get("duration") is None:
        return
    begin, end = rec["start"], rec["start"] + rec["duration"]
    run.detect_s = rec["duration"]
    run.detect_commands_s = sum(max(0.0, min(e, end) - max(b, begin)) for b, e in spans)
    run.to_detect_end_s = end - spawned


def _boot(bench: Bench, platform: str, what: str, **kwargs: Any) -> tuple[str, Run]:
    """A first boot of a fresh guest, its emulator serving, paired with a baseline."""
    root = bench.fresh_root(platform)
    with serving(root):
        run = bench.paired(lambda: run_agent(root, log_path=bench.log, **kwargs))
    if run.exit_code != 0:
        bench.failures.append(f"{what}: exit {run.exit_code} (see {bench.log})")
    if run.untimed_commands:
        bench.failures.append(f"{what}: commands ran through subprocess, which the launcher "
                              "does not time (fsm/spawn.py found it could not be used)")
    return root, run


def bench_first_boots(bench: Bench) -> None:
    """Round-robin over the platforms, so a change in the machine's load during the run
    falls on every platform alike rather than on whichever came last."""
    wanted = {p: bench.runs if p in (HEADLINE_PLATFORM, "none") else bench.platform_runs
              for p in PLATFORMS}
    bench.first_boot = {p: [] for p in PLATFORMS}
    for i in range(max(wanted.values())):
        for platform in (p for p in PLATFORMS if i < wanted[p]):
            root, run = _boot(bench, platform, f"{platform} first boot")
            bench.first_boot[platform].append(run)
            if platform == HEADLINE_PLATFORM and "checkpoint_bytes" not in bench.results:
                bench.results["checkpoint_bytes"] = _checkpoint_bytes(root)
            shutil.rmtree(root, ignore_errors=True)


def _checkpoint_bytes(root: str) -> bytes:
    from fsm.checkpoint import CHECKPOINT_PATH

    with open(os.path.join(root, CHECKPOINT_PATH.lstrip("/")), "rb") as f:
        return f.read()


def bench_second_boot(bench: Bench) -> None:
    root, _ = _boot(bench, HEADLINE_PLATFORM, "first boot before the second boots")
    runs = [bench.paired(lambda: run_agent(root, log_path=bench.log))
            for _ in range(bench.runs)]
    bench.results["second_boot"] = runs
    bench.failures += [f"second boot: exit {r.exit_code}" for r in runs if r.exit_code]
    bench_status(bench, root)
    shutil.rmtree(root, ignore_errors=True)


def bench_status(bench: Bench, root: str) -> None:
    """`metadata status` of the booted guest, each paired with a bare interpreter."""
    runs = []
    for _ in range(2 * bench.runs):
        baseline = bench.baseline()
        sample = timed_process([sys.executable, "-m", "fsm", "status", "--root", root])
        runs.append({**sample, "baseline_s": baseline["wall_s"]})
    bench.failures += [f"status: exit {r['exit_code']}" for r in runs if r["exit_code"]]
    bench.results["status"] = runs


def bench_resume(bench: Bench) -> None:
    runs = []
    for _ in range(bench.runs):
        root = bench.fresh_root(HEADLINE_PLATFORM)
        crashed = run_agent(root, crash_at=CRASH_POINT, log_path=bench.log)
        if crashed.exit_code != -9:
            bench.failures.append(f"resume: the crash at {CRASH_POINT} did not happen "
                                  f"(exit {crashed.exit_code})")
        runs.append(bench.paired(functools.partial(run_agent, root, log_path=bench.log)))
        shutil.rmtree(root, ignore_errors=True)
    bench.failures += [f"resume: exit {r.exit_code}" for r in runs if r.exit_code]
    bench.results["resume"] = runs


def bench_dist(bench: Bench) -> None:
    """The shipped form: dist/metadata on a Python without site-packages."""
    runs = []
    for _ in range(bench.runs):
        root, run = _boot(bench, HEADLINE_PLATFORM, "dist/metadata first boot",
                          archive=bench.archive)
        runs.append(run)
        shutil.rmtree(root, ignore_errors=True)
    bench.results["dist_first_boot"] = runs


def timed_process(argv: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Wall time, CPU time and peak RSS of a process with no children."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=PROJECT_DIR,
                            env={**os.environ, "PYTHONPATH": PROJECT_DIR} if env is None else env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_s": time.perf_counter() - start, "maxrss_kib": usage.ru_maxrss,
            "cpu_s": usage.ru_utime + usage.ru_stime, "exit_code": proc.returncode}


def bench_startup(bench: Bench) -> None:
    """`metadata --version` from the source tree and from the archive, beside the bare
    interpreter and the baseline, interleaved so that they share the machine's load."""
    commands = {"interpreter_isolated": [sys.executable, "-I", "-S", "-c", "pass"],
                "empty_zipapp": [sys.executable, "-I", "-S", _empty_zipapp(bench.workdir)],
                "startup": [sys.executable, "-m", "fsm", "--version"],
                "startup_dist": [sys.executable, "-I", "-S", bench.archive, "--version"]}
    for key in commands:
        bench.results[key] = []
    for _ in range(2 * bench.runs):  # cheap: twice the runs of the headline figures
        baseline_s = bench.baseline()["wall_s"]
        for key, argv in commands.items():
            bench.results[key].append({**timed_process(argv), "baseline_s": baseline_s})
    # The archive's yardstick is the least any zipapp costs on the same `python -I -S`: one
    # whose __main__ does nothing. Python runs every zipapp through runpy, which imports
    # importlib.util, contextlib and the collections behind them, and zipimport reads the
    # archive's directory: about twice `python -I -S -c pass`, whatever the archive holds.
    # The document gives both, so the floor itself is in plain view.
    for run, bare in zip(bench.results["startup_dist"], bench.results["empty_zipapp"]):
        run["baseline_s"] = bare["wall_s"]
    for run, bare in zip(bench.results["empty_zipapp"], bench.results["interpreter_isolated"]):
        run["baseline_s"] = bare["wall_s"]
    # The bare interpreter's own peak RSS (VmHWM, as the launcher reports the agent's; a
    # child's ru_maxrss also counts its parent's pages, mapped before the exec).
    probe = ("import sys\nwith open('/proc/self/status') as f:\n"
             "    sys.stdout.write(next(ln for ln in f if ln.startswith('VmHWM:')).split()[1])")
    bench.results["bare_rss_kib"] = []
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip().isdigit():
            bench.results["bare_rss_kib"].append(int(done.stdout))
    # Which third-party packages `--version` loads (lazy imports: it should be none).
    probe = ("import sys, runpy\nsys.argv = ['metadata', '--version']\ntry:\n"
             "    runpy.run_module('fsm', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "sys.stderr.write(' '.join(sorted({m.split('.')[0] for m in sys.modules} & "
             "{'requests', 'urllib3', 'yaml', 'msgpack', 'serial', 'transitions', 'six'})))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=PROJECT_DIR, env={**os.environ, "PYTHONPATH": PROJECT_DIR})
    bench.results["startup_imports"] = done.stderr.split()


def _empty_zipapp(workdir: str) -> str:
    """A zipapp whose `__main__` does nothing, built as dist/metadata is (shebang + zip)."""
    import zipapp

    source = os.path.join(workdir, "empty-zipapp")
    os.makedirs(source, exist_ok=True)
    with open(os.path.join(source, "__main__.py"), "w", encoding="utf-8") as f:
        f.write("pass\n")
    target = os.path.join(workdir, "empty.pyz")
    zipapp.create_archive(source, target, interpreter="/usr/bin/python3")
    return target


def bench_checkpoint(bench: Bench) -> None:
    """CheckpointStore.save of the checkpoint a real first boot left, on the bench's disk."""
    import msgpack.fallback

    from fsm.checkpoint import CheckpointStore, decode, encode
    from fsm.system import System

    cp = decode(bench.results.pop("checkpoint_bytes"))
    root = os.path.join(bench.workdir, "checkpoint")
    os.makedirs(os.path.join(root, "var", "metadata"), exist_ok=True)
    store = CheckpointStore(System(root))
    writes, encodes = [], []
    for _ in range(5 * bench.runs):
        start = time.perf_counter()
        assert store.save(cp), store.last_save_error
        writes.append(time.perf_counter() - start)
        start = time.perf_counter()
        msgpack.fallback.Packer(use_bin_type=True).pack(cp.to_map())
        encodes.append(time.perf_counter() - start)
    bench.results["checkpoint"] = {"write_s": writes, "fallback_encode_s": encodes,
                                   "bytes": len(encode(cp)), "filesystem": _filesystem(root)}
    shutil.rmtree(root, ignore_errors=True)


def _filesystem(path: str) -> str:
    """The type of the filesystem holding `path` (fsync costs nothing on tmpfs)."""
    best, fstype = "", "unknown"
    with contextlib.suppress(OSError), open("/proc/mounts", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 2 and os.path.realpath(path).startswith(fields[1]) and \
                    len(fields[1]) > len(best):
                best, fstype = fields[1], fields[2]
    return fstype


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "nproc": os.cpu_count(), "cpu": model, "python": pyplatform.python_version(),
            "os": f"{pyplatform.system()} {pyplatform.release()}",
            "load": [round(x, 2) for x in os.getloadavg()]}


def bench_cloudinit(bench: Bench) -> None:
    """cloud-init's comparable jobs beside ours (sim/benchcloudinit.py); skipped without it."""
    from sim import benchcloudinit

    bench.results["cloudinit"] = benchcloudinit.measure(bench)


SCENARIOS: tuple[Callable[[Bench], None], ...] = (
    bench_startup, bench_first_boots, bench_checkpoint, bench_second_boot, bench_resume,
    bench_dist, bench_cloudinit)


def compile_agent() -> None:
    """Byte-compile the agent's packages, as installing a package does: the figures are
    the agent's start-up, not the compiler's."""
    import compileall

    for package in AGENT_PACKAGES:
        compileall.compile_dir(os.path.join(PROJECT_DIR, package), quiet=1)


def run_all(runs: int, platform_runs: int, workdir: str,
            progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    bench = Bench(runs=runs, platform_runs=platform_runs, workdir=workdir,
                  archive=os.path.join(workdir, "metadata"))
    subprocess.run([sys.executable, os.path.join(PROJECT_DIR, "tools", "build_dist.py"),
                    "--output", bench.archive], check=True, capture_output=True)
    compile_agent()
    host = machine()
    started = time.perf_counter()
    for scenario in SCENARIOS:
        progress(scenario.__name__)
        scenario(bench)
    host["load_after"] = [round(x, 2) for x in os.getloadavg()]
    host["bench_s"] = round(time.perf_counter() - started, 1)
    results = {k: ([asdict(r) | {"agent_s": r.agent_s} for r in v]
                   if isinstance(v, list) and v and isinstance(v[0], Run) else v)
               for k, v in bench.results.items()}
    results["first_boot"] = {p: [asdict(r) | {"agent_s": r.agent_s} for r in rs]
                             for p, rs in bench.first_boot.items()}
    return {"machine": host, "runs": runs, "platform_runs": platform_runs,
            "crash_point": CRASH_POINT, "failures": bench.failures, **results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10,
                        help="runs per headline figure (the median is reported; default 10)")
    parser.add_argument("--platform-runs", type=int, default=None,
                        help="first boots per platform other than qemu and none (default: "
                        f"{DEFAULT_PLATFORM_RUNS}, or --runs if fewer)")
    parser.add_argument("--output", default=os.path.join(PROJECT_DIR, "docs", "performance.md"))
    parser.add_argument("--json", metavar="PATH", help="also write the raw figures as JSON")
    parser.add_argument("--workdir", help="where the guests go (default: a temporary directory)")
    parser.add_argument("--note", default=os.environ.get("BENCH_NOTE", ""),
                        help="a sentence for the document's header (e.g. the machine was "
                        "busy); default: $BENCH_NOTE")
    args = parser.parse_args(argv)
    from sim import benchdoc

    with contextlib.ExitStack() as stack:
        workdir = args.workdir or stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-"))
        os.makedirs(workdir, exist_ok=True)
        platform_runs = args.platform_runs or min(args.runs, DEFAULT_PLATFORM_RUNS)
        data = run_all(args.runs, platform_runs, workdir,
                       progress=lambda s: print(f"bench: {s}", file=sys.stderr, flush=True))
    data["note"] = args.note
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(benchdoc.render(data))
    print(f"bench: wrote {args.output} in {data['machine']['bench_s']} s", file=sys.stderr)
    for failure in data["failures"]:
        print(f"bench: FAILED: {failure}", file=sys.stderr)
    return 1 if data["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
