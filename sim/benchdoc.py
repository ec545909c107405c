"""docs/performance.md from the figures `sim.bench` measured: each against its target and
the bare baseline of the same run, with the machine and the date, and, for each target
missed, what the figures say about why.

Apart from `sim.bench` so that each module keeps one job: measuring there, reporting here.
"""

from __future__ import annotations

import statistics
from typing import Any, Callable

TARGETS_MS = {"first_boot": 300.0, "second_boot": 150.0, "resume": 300.0, "startup": 80.0,
              "detect": 200.0, "checkpoint_write": 5.0}
TARGET_RSS_MIB = 40.0


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _ms(seconds: float) -> str:
    return "-" if seconds != seconds else f"{seconds * 1000:.0f} ms"


def _ms_fine(seconds: float) -> str:
    return "-" if seconds != seconds else f"{seconds * 1000:.2f} ms"


def _col(runs: list[dict[str, Any]], key: str) -> list[float]:
    return [r[key] for r in runs if r.get(key) is not None and r.get("exit_code", 0) == 0]


def _spread(values: list[float], fmt=_ms) -> str:
    if not values:
        return "-"
    return f"{fmt(_median(values))} ({fmt(min(values))}–{fmt(max(values))})"


def _ratio(runs: list[dict[str, Any]], value: Callable[[dict[str, Any]], float | None]) -> float:
    """Median over the runs of value / the baseline run just before it."""
    ratios = []
    for r in runs:
        v = value(r) if r.get("exit_code", 0) == 0 else None
        if v is not None and r.get("baseline_s"):
            ratios.append(v / r["baseline_s"])
    return _median(ratios)


class Figure:
    """One line of the summary: a median against its target, and as a ratio to the
    baseline (the median of each run's ratio to the baseline measured just before it)."""

    def __init__(self, name: str, value: float, target: float, unit: str,
                 ratio: float | None, cpu: float | None = None, baseline: float | None = None):
        self.name, self.value, self.target, self.unit = name, value, target, unit
        self.ratio, self.cpu, self.baseline = ratio, cpu, baseline

    @property
    def met(self) -> bool:
        return self.value <= self.target

    def cells(self) -> list[str]:
        if self.unit == "MiB":
            shown, target = f"{self.value:.1f} MiB", f"≤ {self.target:.0f} MiB"
        else:
            shown = _ms_fine(self.value / 1000) if self.unit == "ms-fine" else _ms(self.value / 1000)
            target = f"≤ {self.target:g} ms"
        ratio = "-" if self.ratio is None or self.ratio != self.ratio else f"{self.ratio:.2f}×"
        cpu = "-" if self.cpu is None else _ms(self.cpu / 1000)
        return [self.name, target, shown, cpu, ratio, "met" if self.met else "**missed**"]


def _agent(r: dict[str, Any]) -> float:
    return r["agent_s"]


def _to_detect(r: dict[str, Any]) -> float | None:
    if r.get("to_detect_end_s") is None:
        return None
    return r["to_detect_end_s"] - r["detect_commands_s"]


def _run_figure(name: str, runs: list[dict[str, Any]], target: str) -> Figure:
    return Figure(name, _median(_col(runs, "agent_s")) * 1000, TARGETS_MS[target], "ms",
                  _ratio(runs, _agent), _median(_col(runs, "cpu_s")) * 1000)


def figures(data: dict[str, Any]) -> list[Figure]:
    boots = data["first_boot"]
    worst = max(boots, key=lambda p: _median(_col(boots[p], "agent_s")))
    out = [_run_figure(f"first boot, agent time (slowest platform: {worst})", boots[worst],
                       "first_boot"),
           _run_figure("first boot, agent time, dist/metadata (qemu)",
                       data["dist_first_boot"], "first_boot"),
           _run_figure("second boot (nothing to do), agent time", data["second_boot"],
                       "second_boot"),
           _run_figure(f"resume after a crash at {data['crash_point']}, agent time",
                       data["resume"], "resume")]
    none = boots["none"]
    detect = [v for v in map(_to_detect, none) if v is not None]
    out.append(Figure("DETECT, no metadata: start to end of DETECT, less commands",
                      _median(detect) * 1000, TARGETS_MS["detect"], "ms",
                      _ratio(none, _to_detect)))
    for key, label in (("startup", "`metadata --version` start-up (source tree)"),
                       ("startup_dist", "`metadata --version` start-up (dist/metadata)")):
        out.append(Figure(label, _median(_col(data[key], "wall_s")) * 1000,
                          TARGETS_MS["startup"], "ms",
                          _ratio(data[key], lambda r: r["wall_s"])))
    base_rss = _median(_col(data["baseline"], "maxrss_kib")) / 1024
    rss = max(_median(_col(runs, "maxrss_kib")) for runs in boots.values()) / 1024
    out.append(Figure("peak RSS of a first boot (largest platform median)", rss,
                      TARGET_RSS_MIB, "MiB", rss / base_rss, baseline=base_rss))
    out.append(Figure("checkpoint write (CheckpointStore.save, fsync)",
                      _median(data["checkpoint"]["write_s"]) * 1000,
                      TARGETS_MS["checkpoint_write"], "ms-fine", None))
    return out


def _machine(data: dict[str, Any]) -> list[str]:
    m = data["machine"]
    return [
        f"- Date: {m['date']}; the whole run took {m['bench_s']} s.",
        f"- Machine: {m['nproc']} CPU(s), {m['cpu'] or 'unknown CPU'}, {m['os']}.",
        f"- Python {m['python']} (the agent's interpreter in every run).",
        f"- Load average (1, 5, 15 min) before: {', '.join(map(str, m['load']))}; after: "
        f"{', '.join(map(str, m['load_after']))}. A load above the CPU count means the agent "
        "waited for a CPU: wall times grow, CPU times and ratios much less.",
        f"- Runs: {data['runs']} per headline figure (qemu and none first boots, second boot, "
        f"resume, dist/metadata), {data['platform_runs']} per other platform, {2 * data['runs']} "
        f"for start-up and baseline, {5 * data['runs']} checkpoint writes; medians, with "
        "(min–max).",
        f"- Checkpoint written on a `{data['checkpoint']['filesystem']}` filesystem.",
    ]


def _platform_table(data: dict[str, Any]) -> list[str]:
    rows = ["| platform | runs | wall | commands | agent time | × baseline | agent CPU | slept "
            "| peak RSS | dependencies loaded | ≤ 300 ms |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for platform, runs in data["first_boot"].items():
        ok = [r for r in runs if r["exit_code"] == 0]
        agent = _median(_col(runs, "agent_s"))
        loaded = sorted({d for r in ok for d in r["dependencies"]})
        rows.append("| " + " | ".join([
            platform, f"{len(ok)}/{len(runs)}", _ms(_median(_col(runs, "wall_s"))),
            f"{_median(_col(runs, 'commands')):.0f} in {_ms(_median(_col(runs, 'command_s')))}",
            _spread(_col(runs, "agent_s")), f"{_ratio(runs, _agent):.2f}×",
            _ms(_median(_col(runs, "cpu_s"))), _ms(_median(_col(runs, "sleep_s"))),
            f"{_median(_col(runs, 'maxrss_kib')) / 1024:.1f} MiB", " ".join(loaded) or "-",
            "met" if agent * 1000 <= TARGETS_MS["first_boot"] else "**missed**"]) + " |")
    return rows


def _why(fig: Figure, data: dict[str, Any]) -> str:
    m = data["machine"]
    load = max(m["load"][0], m["load_after"][0])
    if fig.unit == "MiB":
        return (f"{fig.name}: {fig.value:.1f} MiB against {fig.target:.0f} MiB; the bare "
                f"baseline (the interpreter and the dependencies, no agent) already takes "
                f"{fig.baseline:.1f} MiB here, so the agent's own share is "
                f"{fig.value - fig.baseline:.1f} MiB.")
    parts = [f"{fig.name}: {fig.value:.{2 if fig.unit == 'ms-fine' else 0}f} ms against "
             f"{fig.target:g} ms."]
    if fig.cpu is not None and fig.cpu <= fig.target:
        parts.append(f"The agent's own CPU time is {fig.cpu:.0f} ms, within the target: the "
                     "rest is waiting (for a CPU, for the disk).")
    elif fig.cpu is not None:
        parts.append(f"Its CPU time alone is {fig.cpu:.0f} ms: real work, not only waiting.")
    if fig.ratio is not None and fig.ratio == fig.ratio:
        parts.append(f"It is {fig.ratio:.2f} baselines: the target holds on a machine where "
                     f"the baseline takes {fig.target / fig.ratio:.0f} ms or less (here "
                     f"{_median(_col(data['baseline'], 'wall_s')) * 1000:.0f} ms).")
    if load > m["nproc"]:
        parts.append(f"The machine was loaded beyond its {m['nproc']} CPU(s) (load {load}).")
    return " ".join(parts)


def render(data: dict[str, Any]) -> str:
    figs = figures(data)
    base = data["baseline"]
    interp = data["interpreter"]
    cp = data["checkpoint"]
    lines = [
        "# Performance",
        "",
        "<!-- Generated by `make bench` (`python -m sim.bench`); re-run it to regenerate. -->",
        "",
        "The agent on the simulated guest with zero-latency emulators. *Agent time* is the "
        "wall time of the agent's process less the time it spent waiting for the commands "
        "it ran: those are the guest's stand-ins (a Python start each, where illumos runs a "
        "native binary), part of the emulators' own time. *Agent CPU* is the CPU time of the "
        "agent's process alone (`RUSAGE_SELF`, children excluded), which a loaded machine "
        "changes little. The *baseline* is a bare `python -c "
        "'import transitions, requests, serial, msgpack, yaml, tomli'`, run just before "
        "every measured process: *× baseline* is the median of each run's ratio to its own "
        "baseline, which holds far better than absolute figures on a noisy machine.",
        "",
        "## Machine",
        "",
        *_machine(data),
        "",
        "## Summary",
        "",
        "| figure | target | median | agent CPU | × baseline | result |",
        "|---|---|---|---|---|---|",
        *("| " + " | ".join(f.cells()) + " |" for f in figs),
        "",
        f"Baseline (dependencies imported, nothing run): {_spread(_col(base, 'wall_s'))}, "
        f"peak RSS {_median(_col(base, 'maxrss_kib')) / 1024:.1f} MiB. A bare interpreter "
        f"(`python -c pass`): {_spread(_col(interp, 'wall_s'))}, "
        f"{_median(_col(interp, 'maxrss_kib')) / 1024:.1f} MiB.",
        "",
        "## First boot, per platform",
        "",
        "Each a fresh guest; HTTP platforms and SmartOS with their emulator serving; the "
        "platforms taken in turn, so that the load falls on each alike. *Dependencies "
        "loaded*: the third-party packages the agent imported (the HTTP stack only where a "
        "provider speaks HTTP).",
        "",
        *_platform_table(data),
        "",
        "## Other figures",
        "",
        f"- Second boot on a booted qemu guest (nothing to do): wall "
        f"{_spread(_col(data['second_boot'], 'wall_s'))}, agent time "
        f"{_spread(_col(data['second_boot'], 'agent_s'))}, "
        f"{_median(_col(data['second_boot'], 'commands')):.0f} commands.",
        f"- Resume after `METADATA_AGENT_CRASH_AT=after:STORAGE/reguid` (the crashed run is "
        f"not timed): wall {_spread(_col(data['resume'], 'wall_s'))}, agent time "
        f"{_spread(_col(data['resume'], 'agent_s'))}.",
        f"- DETECT with no metadata (platform none): the phase itself (checkpoint) "
        f"{_spread(_col(data['first_boot']['none'], 'detect_s'))}, of which commands "
        f"{_ms(_median(_col(data['first_boot']['none'], 'detect_commands_s')))}; from the "
        f"process's start to the end of DETECT "
        f"{_spread(_col(data['first_boot']['none'], 'to_detect_end_s'))}.",
        f"- dist/metadata first boot (qemu, clean `python -I -S`): wall "
        f"{_spread(_col(data['dist_first_boot'], 'wall_s'))}, agent time "
        f"{_spread(_col(data['dist_first_boot'], 'agent_s'))}, peak RSS "
        f"{_median(_col(data['dist_first_boot'], 'maxrss_kib')) / 1024:.1f} MiB.",
        f"- `metadata --version`: source tree {_spread(_col(data['startup'], 'wall_s'))}, "
        f"dist/metadata {_spread(_col(data['startup_dist'], 'wall_s'))}; third-party "
        f"modules it imports: {', '.join(data['startup_imports']) or 'none'}.",
        f"- Checkpoint: {cp['bytes']} bytes (the checkpoint a qemu first boot leaves); "
        f"write with fsync, rename and directory fsync {_spread(cp['write_s'], _ms_fine)}; "
        f"encoding it with msgpack's pure-Python fallback (as in dist/metadata) "
        f"{_spread(cp['fallback_encode_s'], _ms_fine)}.",
        "",
        "## Targets missed",
        "",
    ]
    missed = [f for f in figs if not f.met]
    lines += [f"- {_why(f, data)}" for f in missed] or ["None."]
    if data["failures"]:
        lines += ["", "## Failed runs (not counted in the medians)", ""]
        lines += [f"- {failure}" for failure in data["failures"]]
    return "\n".join(lines) + "\n"
