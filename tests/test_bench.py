"""`make bench` in miniature: one run of each scenario, through the same command line, must
produce every figure docs/performance.md reports. No timing is asserted here: performance
targets live in the benchmark, not in timed tests."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from guest import PROJECT_DIR

PLATFORMS = ("smartos", "digitalocean", "ec2", "qemu", "bhyve", "vmware", "nocloud", "none")


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "sim.bench", "--runs", "1", "--output", str(out / "perf.md"),
         "--json", str(out / "perf.json"), "--workdir", str(out / "guests")],
        capture_output=True, text=True, cwd=PROJECT_DIR, timeout=600)
    assert done.returncode == 0, done.stderr
    with open(out / "perf.json", encoding="utf-8") as f:
        data = json.load(f)
    return data, (out / "perf.md").read_text(encoding="utf-8")


def _ok(run: dict) -> None:
    assert run["exit_code"] == 0
    assert run["baseline_s"] > 0  # paired with a baseline run just before it
    assert run["wall_s"] > 0 and run["cpu_s"] > 0 and run["maxrss_kib"] > 0
    assert 0 < run["command_s"] < run["wall_s"] and run["commands"] > 0


def test_every_platform_boots_and_is_measured(bench):
    data, _ = bench
    assert data["failures"] == []
    assert tuple(data["first_boot"]) == PLATFORMS
    for platform, runs in data["first_boot"].items():
        assert len(runs) == 1, platform
        _ok(runs[0])
    # The HTTP stack is imported only where a provider speaks HTTP (DigitalOcean's guest
    # has its config drive, read first).
    http = {p for p, runs in data["first_boot"].items() if runs[0]["http_stack"]}
    assert "ec2" in http and not {"qemu", "bhyve", "none", "smartos", "nocloud"} & http
    assert "requests" in data["first_boot"]["ec2"][0]["dependencies"]
    assert "requests" not in data["first_boot"]["qemu"][0]["dependencies"]
    none = data["first_boot"]["none"][0]
    assert 0 <= none["detect_commands_s"] <= none["detect_s"] < none["to_detect_end_s"]


def test_second_boot_resume_dist_startup_and_checkpoint(bench):
    data, _ = bench
    for key in ("second_boot", "resume", "dist_first_boot"):
        assert len(data[key]) == 1, key
        _ok(data[key][0])
    # A second boot has less to do than the first on the same platform.
    assert data["second_boot"][0]["commands"] < data["first_boot"]["qemu"][0]["commands"]
    for key in ("baseline", "interpreter", "startup", "startup_dist"):
        assert len(data[key]) >= 2 and all(r["exit_code"] == 0 for r in data[key]), key
    assert data["startup_imports"] == []  # `--version` loads no third-party package
    cp = data["checkpoint"]
    assert cp["bytes"] > 500 and len(cp["write_s"]) >= 5 and len(cp["fallback_encode_s"]) >= 5


def test_document_shows_every_figure_against_its_target(bench):
    _, doc = bench
    for needle in ("## Machine", "CPU(s)", "Python ", "Load average", "Date:",
                   "first boot, agent time", "second boot", "resume after a crash",
                   "DETECT, no metadata", "`metadata --version` start-up (source tree)",
                   "`metadata --version` start-up (dist/metadata)", "peak RSS",
                   "checkpoint write", "bytes", "Baseline", "× baseline", "## Targets missed",
                   "≤ 300 ms", "≤ 150 ms", "≤ 80 ms", "≤ 40 MiB", "≤ 5 ms", "≤ 200 ms"):
        assert needle in doc, needle
    for platform in PLATFORMS:
        assert f"| {platform} | 1/1 |" in doc
    assert "nan" not in doc
