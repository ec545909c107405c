"""`make bench` in miniature: one run of each scenario, through the same command line, must
produce every figure docs/performance.md reports. No timing is asserted here: performance
targets live in the benchmark, not in timed tests."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from guest import PROJECT_DIR

from sim.hardware import PLATFORMS as SIM_PLATFORMS


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
    # Every simulated platform, the ones added since the benchmark was written included.
    assert set(data["first_boot"]) == set(SIM_PLATFORMS)
    for platform, runs in data["first_boot"].items():
        assert len(runs) == 1, platform
        _ok(runs[0])
    # The HTTP stack is imported only where a provider speaks HTTP (DigitalOcean's guest
    # has its config drive, read first).
    http = {p for p, runs in data["first_boot"].items() if runs[0]["http_stack"]}
    assert "ec2" in http and not {"qemu", "bhyve", "none", "smartos", "nocloud"} & http
    # The agent's HTTP is the standard library's: no requests on any platform.
    assert not [p for p, runs in data["first_boot"].items()
                if "requests" in runs[0]["dependencies"]]
    for platform, runs in data["first_boot"].items():
        assert runs[0]["baseline_cpu_s"] > 0 and runs[0]["cpu_s"] > runs[0]["baseline_cpu_s"]
        # The agent's own peak (VmHWM), not its parent's: well under the harness's RSS.
        assert 8 * 1024 < runs[0]["maxrss_kib"] < 64 * 1024, platform
    none = data["first_boot"]["none"][0]
    assert 0 <= none["detect_commands_s"] <= none["detect_s"] < none["to_detect_end_s"]


def test_second_boot_resume_dist_startup_and_checkpoint(bench):
    data, _ = bench
    for key in ("second_boot", "resume", "dist_first_boot"):
        assert len(data[key]) == 1, key
        _ok(data[key][0])
    # A second boot has less to do than the first on the same platform.
    assert data["second_boot"][0]["commands"] < data["first_boot"]["qemu"][0]["commands"]
    for key in ("baseline", "interpreter_isolated", "empty_zipapp", "startup", "startup_dist",
                "status"):
        assert len(data[key]) >= 2 and all(r["exit_code"] == 0 for r in data[key]), key
    assert all(r["baseline_s"] > 0 for r in data["status"] + data["startup"])
    assert data["startup_imports"] == []  # `--version` loads no third-party package
    cp = data["checkpoint"]
    assert cp["bytes"] > 500 and len(cp["write_s"]) >= 5 and len(cp["fallback_encode_s"]) >= 5


def test_document_shows_every_figure_against_its_target(bench):
    _, doc = bench
    for needle in ("## Machine", "CPU(s)", "Python ", "Load average", "Date:",
                   "second boot (nothing to do), agent CPU", "Resume after",
                   "DETECT, no metadata", "`metadata status`",
                   "`metadata --version` (wall, source tree)",
                   "`metadata --version` (wall, dist/metadata", "an empty zipapp on `python -I -S`",
                   "peak RSS",
                   "checkpoint write", "bytes", "Bare interpreter", "× bare",
                   "## Targets missed", "≤ 4× bare", "≤ 6× bare", "≤ 2.5× bare", "≤ 1.5× bare",
                   "≤ 25 MiB", "≤ 5 ms", "## Against cloud-init, same run"):
        assert needle in doc, needle
    for platform in SIM_PLATFORMS:
        assert f"| {platform} | 1/1 |" in doc
        assert f"| first boot, agent CPU: {platform} |" in doc
    assert "nan" not in doc


def test_cloud_init_side_by_side_or_skipped_gracefully(bench, monkeypatch):
    from sim import benchcloudinit, benchdoc

    data, doc = bench
    if "skipped" in data["cloudinit"]:
        assert "Skipped: " in doc
    else:
        ci = data["cloudinit"]
        assert [r["exit_code"] for r in ci["job"] + ci["our_job"] + ci["ours_nocloud"]] == \
            [0, 0, 0]
        for job in (ci["job"][0], ci["our_job"][0]):  # the same job on both sides:
            assert job["instance_id"] == "iid-nocloud-0001"  # the same seed read
            assert job["interfaces"] == 1                    # and its network parsed
        assert "the CPU of our whole NoCloud first boot" in doc and "cloud-init --version" in doc
    # Without cloud-init the comparison is skipped, and the document says why.
    monkeypatch.setattr(benchcloudinit, "CLOUD_INIT", "/nonexistent/cloud-init")
    assert "cloud-init not installed" in benchcloudinit.measure(None)["skipped"]
    skipped = benchdoc.render({**data, "cloudinit": benchcloudinit.measure(None)})
    assert "Skipped: /nonexistent/cloud-init is absent" in skipped and "nan" not in skipped
