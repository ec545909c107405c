"""docs/performance.md from the figures `sim.bench` measured: each against its target, as a
ratio to a bare interpreter measured in the same run, with the machine and the date, and,
for each target missed, what the figures say about why.

Apart from `sim.bench` so that each module keeps one job: measuring there, reporting here.
"""

from __future__ import annotations

import statistics
from typing import Any, Callable

# Ratios to a bare `python -c pass` of the same run (issue 17): CPU to its CPU, wall to
# its wall.
TARGET_RATIOS = {"second_boot": 4.0, "first_boot": 6.0, "detect": 2.5, "status": 1.5,
                 "version": 1.5}
TARGET_RSS_MIB = 25.0
TARGET_CHECKPOINT_MS = 5.0


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


def _ratio(runs: list[dict[str, Any]], value: Callable[[dict[str, Any]], float | None],
           base: str = "baseline_s") -> float:
    """Median over the runs of value / the bare interpreter runs just before it."""
    ratios = []
    for r in runs:
        v = value(r) if r.get("exit_code", 0) == 0 else None
        if v is not None and r.get(base):
            ratios.append(v / r[base])
    return _median(ratios)


def _x(ratio: float | None) -> str:
    return "-" if ratio is None or ratio != ratio else f"{ratio:.2f}×"


class Figure:
    """One line of the summary: a ratio to the bare interpreter against its target (or an
    absolute figure against an absolute target), with the measured medians beside it."""

    def __init__(self, name: str, measured: str, bare: str, ratio: float | None,
                 target: str, met: bool, why: str = ""):
        self.name, self.measured, self.bare, self.ratio = name, measured, bare, ratio
        self.target, self.met, self.why = target, met, why

    def cells(self) -> list[str]:
        return [self.name, self.target, self.measured, self.bare, _x(self.ratio),
                "met" if self.met else "**missed**"]


def _ratio_figure(name: str, runs: list[dict[str, Any]], target_key: str, measured: str,
                  value: Callable[[dict[str, Any]], float | None], base: str,
                  bare_cells: str) -> Figure:
    ratio = _ratio(runs, value, base)
    target = TARGET_RATIOS[target_key]
    return Figure(name, measured, bare_cells, ratio, f"≤ {target:g}× bare",
                  ratio == ratio and ratio <= target)


def _cpu(r: dict[str, Any]) -> float:
    return r["cpu_s"]


def _wall(r: dict[str, Any]) -> float:
    return r["wall_s"]


def _to_detect(r: dict[str, Any]) -> float | None:
    if r.get("to_detect_end_s") is None:
        return None
    return r["to_detect_end_s"] - r["detect_commands_s"]


def _bare_cpu(runs: list[dict[str, Any]]) -> str:
    return _ms(_median([r["baseline_cpu_s"] for r in runs if r.get("baseline_cpu_s")]))


def _bare_wall(runs: list[dict[str, Any]]) -> str:
    return _ms(_median([r["baseline_s"] for r in runs if r.get("baseline_s")]))


def figures(data: dict[str, Any]) -> list[Figure]:
    boots = data["first_boot"]
    second = data["second_boot"]
    out = [_ratio_figure("second boot (nothing to do), agent CPU", second, "second_boot",
                         _ms(_median(_col(second, "cpu_s"))), _cpu, "baseline_cpu_s",
                         _bare_cpu(second))]
    for platform, runs in boots.items():
        out.append(_ratio_figure(f"first boot, agent CPU: {platform}", runs, "first_boot",
                                 _ms(_median(_col(runs, "cpu_s"))), _cpu, "baseline_cpu_s",
                                 _bare_cpu(runs)))
    none = boots["none"]
    detect = [v for v in map(_to_detect, none) if v is not None]
    out.append(_ratio_figure("DETECT, no metadata: process start to end of DETECT, less "
                             "commands (wall)", none, "detect", _ms(_median(detect)),
                             _to_detect, "baseline_s", _bare_wall(none)))
    out.append(_ratio_figure("`metadata status` (wall, source tree)", data["status"],
                             "status", _ms(_median(_col(data["status"], "wall_s"))), _wall,
                             "baseline_s", _bare_wall(data["status"])))
    for key, label in (("startup", "`metadata --version` (wall, source tree)"),
                       ("startup_dist", "`metadata --version` (wall, dist/metadata; bare: "
                                        "an empty zipapp on `python -I -S`)")):
        out.append(_ratio_figure(label, data[key], "version",
                                 _ms(_median(_col(data[key], "wall_s"))), _wall,
                                 "baseline_s", _bare_wall(data[key])))
    rss = max(_median(_col(runs, "maxrss_kib")) for runs in boots.values()) / 1024
    base_rss = _median(data.get("bare_rss_kib") or _col(data["baseline"], "maxrss_kib")) / 1024
    out.append(Figure("peak RSS of a first boot (largest platform median, VmHWM)",
                      f"{rss:.1f} MiB", f"{base_rss:.1f} MiB", rss / base_rss,
                      f"≤ {TARGET_RSS_MIB:g} MiB", rss <= TARGET_RSS_MIB))
    write_ms = _median(data["checkpoint"]["write_s"]) * 1000
    out.append(Figure("checkpoint write (CheckpointStore.save, fsync)", f"{write_ms:.2f} ms",
                      "-", None, f"≤ {TARGET_CHECKPOINT_MS:g} ms",
                      write_ms <= TARGET_CHECKPOINT_MS))
    return out


def _machine(data: dict[str, Any]) -> list[str]:
    m = data["machine"]
    lines = [
        f"- Date: {m['date']}; the whole run took {m['bench_s']} s.",
        f"- Machine: {m['nproc']} CPU(s), {m['cpu'] or 'unknown CPU'}, {m['os']}.",
        f"- Python {m['python']} (the agent's interpreter, except where the cloud-init "
        "comparison says otherwise).",
        f"- Load average (1, 5, 15 min) before: {', '.join(map(str, m['load']))}; after: "
        f"{', '.join(map(str, m['load_after']))}. A load above the CPU count means the agent "
        "waited for a CPU: wall times grow, CPU times and ratios much less.",
        f"- Runs: {data['runs']} per headline figure (qemu and none first boots, second boot, "
        f"resume, dist/metadata), {data['platform_runs']} per other platform, {2 * data['runs']} "
        f"for start-up and status, {5 * data['runs']} checkpoint writes; medians, with "
        "(min–max).",
        f"- Checkpoint written on a `{data['checkpoint']['filesystem']}` filesystem.",
    ]
    if data.get("note"):
        lines.insert(0, f"- **Note:** {data['note']}")
    return lines


def _platform_table(data: dict[str, Any]) -> list[str]:
    rows = ["| platform | runs | wall | commands | agent time | agent CPU | × bare CPU | slept "
            "| peak RSS | dependencies loaded | ≤ 6× |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for platform, runs in data["first_boot"].items():
        ok = [r for r in runs if r["exit_code"] == 0]
        ratio = _ratio(runs, _cpu, "baseline_cpu_s")
        loaded = sorted({d for r in ok for d in r["dependencies"]})
        rows.append("| " + " | ".join([
            platform, f"{len(ok)}/{len(runs)}", _ms(_median(_col(runs, "wall_s"))),
            f"{_median(_col(runs, 'commands')):.0f} in {_ms(_median(_col(runs, 'command_s')))}",
            _spread(_col(runs, "agent_s")), _ms(_median(_col(runs, "cpu_s"))), _x(ratio),
            _ms(_median(_col(runs, "sleep_s"))),
            f"{_median(_col(runs, 'maxrss_kib')) / 1024:.1f} MiB", " ".join(loaded) or "-",
            "met" if ratio <= TARGET_RATIOS["first_boot"] else "**missed**"]) + " |")
    return rows


def _cloudinit(data: dict[str, Any]) -> list[str]:
    ci = data.get("cloudinit") or {"skipped": "not measured"}
    if "skipped" in ci:
        return [f"Skipped: {ci['skipped']}."]
    job_cpu = _median(_col(ci["job"], "cpu_s"))
    our_job_cpu = _median(_col(ci["our_job"], "cpu_s"))
    ours_cpu = _median(_col(ci["ours_nocloud"], "cpu_s"))
    ours_src = _median(_col(data["first_boot"]["nocloud"], "cpu_s"))
    bare = _median(_col(ci["bare"], "cpu_s"))
    bare_iso = _median(_col(ci["bare_isolated"], "cpu_s"))
    version = _median(_col(ci["version"], "wall_s"))
    ours_version = _median(_col(ci["ours_version"], "wall_s"))
    version_cpu = _median(_col(ci["version"], "cpu_s"))
    ours_version_cpu = _median(_col(ci["ours_version"], "cpu_s"))
    return [
        f"cloud-init {ci['cloudinit_version']} (Debian's package) on {ci['python']} "
        f"(`/usr/bin/python3`), and our dist/metadata on the same interpreter; CPU is each "
        "process's own. The same job on both sides: a NoCloud seed directory (our NoCloud "
        "guest's files) read and its network-config parsed. Then our whole first boot, which "
        "also configures the network, the name, the keys, the storage and the script, "
        "against cloud-init's job alone, which favours cloud-init.",
        "",
        "| job | CPU | × its bare interpreter | wall |",
        "|---|---|---|---|",
        f"| cloud-init: NoCloud datasource reading a seed directory + network-config parser "
        f"| {_ms(job_cpu)} | {_x(job_cpu / bare)} of `python3 -c pass` ({_ms(bare)}) "
        f"| {_spread(_col(ci['job'], 'wall_s'))} |",
        f"| ours: the same job (providers/nocloud.py) | {_ms(our_job_cpu)} "
        f"| {_x(our_job_cpu / bare_iso)} of `python3 -I -S -c pass` ({_ms(bare_iso)}) "
        f"| {_spread(_col(ci['our_job'], 'wall_s'))} |",
        f"| ours: dist/metadata, whole NoCloud first boot (agent CPU) | {_ms(ours_cpu)} "
        f"| {_x(ours_cpu / bare_iso)} of `python3 -I -S -c pass` ({_ms(bare_iso)}) "
        f"| agent time {_spread(_col(ci['ours_nocloud'], 'agent_s'))} |",
        f"| `cloud-init --version` | {_ms(version_cpu)} | {_x(version_cpu / bare)} "
        f"| {_spread(_col(ci['version'], 'wall_s'))} |",
        f"| `metadata --version` (dist/metadata) | {_ms(ours_version_cpu)} "
        f"| {_x(ours_version_cpu / bare_iso)} | {_spread(_col(ci['ours_version'], 'wall_s'))} |",
        "",
        f"- The same job: cloud-init takes **{job_cpu / our_job_cpu:.1f}×** our CPU "
        f"({_ms(job_cpu)} against {_ms(our_job_cpu)}).",
        f"- cloud-init's NoCloud job takes **{job_cpu / ours_cpu:.1f}×** the CPU of our whole "
        f"NoCloud first boot on the same interpreter ({_ms(job_cpu)} against {_ms(ours_cpu)}; "
        f"our source-tree first boot on the venv's Python: {_ms(ours_src)}).",
        f"- `cloud-init --version` takes **{version / ours_version:.1f}×** the wall time of "
        f"`metadata --version` ({_ms(version)} against {_ms(ours_version)}).",
    ]


def _why(fig: Figure, data: dict[str, Any]) -> str:
    m = data["machine"]
    load = max(m["load"][0], m["load_after"][0])
    if fig.target.endswith("bare"):
        text = (f"{fig.name}: {fig.measured} against a bare interpreter's {fig.bare}, "
                f"{_x(fig.ratio)} against {fig.target}.")
    else:
        text = f"{fig.name}: {fig.measured} against {fig.target}."
    if load > m["nproc"]:
        text += f" The machine was loaded beyond its {m['nproc']} CPU(s) (load {load})."
    return text


def render(data: dict[str, Any]) -> str:
    figs = figures(data)
    base = data["baseline"]
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
        "changes little. The *bare* interpreter is `python -c pass` on the same interpreter, "
        "run three times just before every measured boot (once before the cheaper "
        "commands): *× bare* is the median of each run's ratio to the median of its own bare "
        "runs (CPU to CPU, wall to wall), which holds far better than absolute figures on a "
        "noisy machine. The agent's sources are byte-compiled first, "
        "as an installed package's are. Peak RSS is the process's own high-water mark "
        "(`VmHWM`).",
        "",
        "## Machine",
        "",
        *_machine(data),
        "",
        "## Summary",
        "",
        "| figure | target | measured (median) | bare | × bare | result |",
        "|---|---|---|---|---|---|",
        *("| " + " | ".join(f.cells()) + " |" for f in figs),
        "",
        f"Bare interpreter (`python -c pass`): wall {_spread(_col(base, 'wall_s'))}, CPU "
        f"{_spread(_col(base, 'cpu_s'))}, peak RSS "
        f"{_median(data.get('bare_rss_kib') or _col(base, 'maxrss_kib')) / 1024:.1f} MiB; "
        f"`python -I -S -c pass` (the "
        f"archive's interpreter): wall {_spread(_col(data['interpreter_isolated'], 'wall_s'))}; "
        f"an empty zipapp on it (`__main__` is `pass`; the archive's yardstick): wall "
        f"{_spread(_col(data['empty_zipapp'], 'wall_s'))}, "
        f"{_x(_ratio(data['empty_zipapp'], _wall, 'baseline_s'))} `python -I -S -c pass`. "
        f"That is the floor of any zipapp: Python runs one through runpy (importlib.util, "
        f"contextlib, collections) after zipimport has read its directory, whatever it holds.",
        "",
        "## Against cloud-init, same run",
        "",
        *_cloudinit(data),
        "",
        "## First boot, per platform",
        "",
        "Each a fresh guest; HTTP platforms and SmartOS with their emulator serving; the "
        "platforms taken in turn, so that the load falls on each alike. *Dependencies "
        "loaded*: the third-party packages the agent imported.",
        "",
        *_platform_table(data),
        "",
        "## Other figures",
        "",
        f"- Second boot on a booted qemu guest (nothing to do): wall "
        f"{_spread(_col(data['second_boot'], 'wall_s'))}, agent time "
        f"{_spread(_col(data['second_boot'], 'agent_s'))}, agent CPU "
        f"{_spread(_col(data['second_boot'], 'cpu_s'))}, "
        f"{_median(_col(data['second_boot'], 'commands')):.0f} commands.",
        f"- Resume after `METADATA_AGENT_CRASH_AT=after:STORAGE/reguid` (the crashed run is "
        f"not timed): wall {_spread(_col(data['resume'], 'wall_s'))}, agent time "
        f"{_spread(_col(data['resume'], 'agent_s'))}, agent CPU "
        f"{_spread(_col(data['resume'], 'cpu_s'))} "
        f"({_x(_ratio(data['resume'], _cpu, 'baseline_cpu_s'))} bare).",
        f"- DETECT with no metadata (platform none): the phase itself (checkpoint) "
        f"{_spread(_col(data['first_boot']['none'], 'detect_s'))}, of which commands "
        f"{_ms(_median(_col(data['first_boot']['none'], 'detect_commands_s')))}; from the "
        f"process's start to the end of DETECT "
        f"{_spread(_col(data['first_boot']['none'], 'to_detect_end_s'))}.",
        f"- dist/metadata first boot (qemu, clean `python -I -S`): wall "
        f"{_spread(_col(data['dist_first_boot'], 'wall_s'))}, agent time "
        f"{_spread(_col(data['dist_first_boot'], 'agent_s'))}, agent CPU "
        f"{_spread(_col(data['dist_first_boot'], 'cpu_s'))}, peak RSS "
        f"{_median(_col(data['dist_first_boot'], 'maxrss_kib')) / 1024:.1f} MiB.",
        f"- `metadata --version`: source tree {_spread(_col(data['startup'], 'wall_s'))}, "
        f"dist/metadata {_spread(_col(data['startup_dist'], 'wall_s'))}; third-party "
        f"modules it imports: {', '.join(data['startup_imports']) or 'none'}. "
        f"`metadata status`: {_spread(_col(data['status'], 'wall_s'))}.",
        f"- Checkpoint: {data['checkpoint']['bytes']} bytes (the checkpoint a qemu first boot "
        f"leaves); write with fsync, rename and directory fsync "
        f"{_spread(data['checkpoint']['write_s'], _ms_fine)}; encoding it with msgpack's "
        f"pure-Python fallback (as in dist/metadata) "
        f"{_spread(data['checkpoint']['fallback_encode_s'], _ms_fine)}.",
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
