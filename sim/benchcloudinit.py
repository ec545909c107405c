"""`make bench`, side by side: Debian's cloud-init doing the job comparable to our first boot.

cloud-init's own code, unchanged, on its own interpreter (`/usr/bin/python3`, where the
Debian package installs it): its NoCloud datasource reading a seed directory that holds the
files of our NoCloud guest, then its network-config parser on the network-config it read.
That is only the first part of what our first boot does (which also applies the network,
the name, the keys, the storage and the script), so the comparison flatters cloud-init.
Its start-up alone: `cloud-init --version` beside `metadata --version`.

Our side runs on the same interpreter too, from dist/metadata (the shipped form) on
`/usr/bin/python3 -I -S`: the same job (our NoCloud provider reading the same seed directory
and parsing its network-config into the data model), and our whole NoCloud first boot. CPU times are each process's own
(`RUSAGE_SELF`: the commands the agent runs are excluded, as anything cloud-init would run).
Each side is also given as a ratio to that interpreter started bare. When cloud-init or the
system interpreter is missing, the comparison is skipped and the document says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from typing import TYPE_CHECKING, Any

from sim.emulators import nocloud

if TYPE_CHECKING:
    from sim.bench import Bench

SYSTEM_PYTHON = "/usr/bin/python3"
CLOUD_INIT = "/usr/bin/cloud-init"

# Runs on the system interpreter with a clean environment; prints its own figures as JSON.
JOB = r"""
import json, resource, sys, time
from cloudinit import distros, helpers, version
from cloudinit.net import network_state
from cloudinit.sources import DataSourceNoCloud

cloud_dir, run_dir = sys.argv[1], sys.argv[2]
paths = helpers.Paths({"cloud_dir": cloud_dir, "run_dir": run_dir})
# The seed directory only: no cidata volume is looked for (that would run blkid).
sys_cfg = {"datasource": {"NoCloud": {"fs_label": None}}}
distro = distros.fetch("debian")("debian", {}, paths)
source = DataSourceNoCloud.DataSourceNoCloud(sys_cfg, distro, paths)
if not source.get_data():
    sys.exit("cloud-init's NoCloud found no seed in " + cloud_dir)
state = network_state.parse_net_config_data(source.network_config)
usage = resource.getrusage(resource.RUSAGE_SELF)
json.dump({"cpu_s": usage.ru_utime + usage.ru_stime, "version": version.version_string(),
           "instance_id": source.get_instance_id(),
           "interfaces": sum(1 for _ in state.iter_interfaces())}, sys.stdout)
"""


# The same job with our code, from the archive on the same interpreter (`-I -S`).
OUR_JOB = r"""
import json, os, resource, sys
sys.path.insert(0, sys.argv[1])
from providers import nocloud

seed = sys.argv[2]
files = {}
for name in nocloud.FILES:
    path = os.path.join(seed, name)
    if os.path.exists(path):
        with open(path, "rb") as f:
            files[name] = f.read(nocloud.FILE_CAP + 1)
md = nocloud.parse_seed(files)
usage = resource.getrusage(resource.RUSAGE_SELF)
json.dump({"cpu_s": usage.ru_utime + usage.ru_stime, "instance_id": md.instance_id,
           "interfaces": len(md.nics)}, sys.stdout)
"""


def available() -> str | None:
    """Why the comparison cannot run here, or None when it can."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"{SYSTEM_PYTHON} is absent"
    if not os.access(CLOUD_INIT, os.X_OK):
        return f"{CLOUD_INIT} is absent (Debian package cloud-init not installed)"
    done = subprocess.run([SYSTEM_PYTHON, "-c", "import cloudinit"], capture_output=True,
                          env={}, timeout=60)
    if done.returncode != 0:
        return f"{SYSTEM_PYTHON} cannot import cloudinit"
    return None


def _seed(workdir: str) -> tuple[str, str]:
    """(cloud_dir, run_dir): our NoCloud guest's files where cloud-init's NoCloud looks."""
    cloud_dir = os.path.join(workdir, "cloud-init", "cloud")
    run_dir = os.path.join(workdir, "cloud-init", "run")
    seed = os.path.join(cloud_dir, "seed", "nocloud")
    os.makedirs(seed, exist_ok=True)
    os.makedirs(run_dir, exist_ok=True)
    for name, data in nocloud.seed_files(nocloud.default_metadata()).items():
        with open(os.path.join(seed, name), "wb") as f:
            f.write(data)
    return cloud_dir, run_dir


def _job(argv: list[str]) -> dict[str, Any]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env={}, cwd="/", timeout=300)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        return {"exit_code": done.returncode, "error": done.stderr.strip()[-300:]}
    return {**json.loads(done.stdout), "wall_s": wall, "exit_code": 0}


def measure(bench: Bench) -> dict[str, Any]:
    from sim.bench import run_agent, timed_process
    from sim.serve import serving

    why = available()
    if why:
        return {"skipped": why}
    cloud_dir, run_dir = _seed(bench.workdir)
    clean: dict[str, str] = {}
    out: dict[str, Any] = {key: [] for key in ("job", "our_job", "version", "bare",
                                               "bare_isolated", "ours_nocloud", "ours_version")}
    seed = os.path.join(cloud_dir, "seed", "nocloud")
    for _ in range(bench.runs):
        out["bare"].append(timed_process([SYSTEM_PYTHON, "-c", "pass"], env=clean))
        out["bare_isolated"].append(timed_process([SYSTEM_PYTHON, "-I", "-S", "-c", "pass"],
                                                  env=clean))
        out["job"].append(_job([SYSTEM_PYTHON, "-c", JOB, cloud_dir, run_dir]))
        out["our_job"].append(_job([SYSTEM_PYTHON, "-I", "-S", "-c", OUR_JOB, bench.archive,
                                    seed]))
        root = bench.fresh_root("nocloud")
        with serving(root):
            run = run_agent(root, archive=bench.archive, python=SYSTEM_PYTHON,
                            log_path=bench.log)
        out["ours_nocloud"].append({"cpu_s": run.cpu_s, "wall_s": run.wall_s,
                                    "agent_s": run.agent_s, "maxrss_kib": run.maxrss_kib,
                                    "exit_code": run.exit_code})
        shutil.rmtree(root, ignore_errors=True)
        out["version"].append(timed_process([CLOUD_INIT, "--version"], env=clean))
        out["ours_version"].append(timed_process([SYSTEM_PYTHON, "-I", "-S", bench.archive,
                                                  "--version"], env=clean))
    failed = [r for key in ("job", "our_job", "ours_nocloud") for r in out[key]
              if r["exit_code"]]
    bench.failures += [f"cloud-init comparison: {r.get('error') or r}" for r in failed]
    done = subprocess.run([SYSTEM_PYTHON, "--version"], capture_output=True, text=True)
    out["python"] = done.stdout.strip()
    out["cloudinit_version"] = next((r["version"] for r in out["job"] if "version" in r), "?")
    return out
