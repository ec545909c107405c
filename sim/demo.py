"""`make demo`: boot a simulated guest of every platform with the real agent, and say what
it did in a few lines each (80 columns); then crash one boot halfway and resume it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from typing import Any

from fsm.status import status_data
from sim import guest
from sim.hardware import PLATFORMS
from sim.serve import serving
from sim.show import show

ORDER = ("smartos", "digitalocean", "ec2", "qemu", "bhyve", "vmware", "nocloud", "oxide",
         "omnios-zone", "tribblix-zone", "proxmox", "smartos-nocloud", "azure", "openstack",
         "openstack-http", "proxmox-configdrive2", "none")
WIDTH = 80


def run_agent(root: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": guest.PROJECT_DIR}
    env.pop("METADATA_AGENT_CRASH_AT", None)
    if crash_at:
        env["METADATA_AGENT_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-m", "fsm", "run", "--root", root],
                          capture_output=True, text=True, env=env, timeout=600)


def _gib(n: int | None) -> str:
    return "-" if n is None else f"{n / (1 << 30):.1f}G"


def _field(label: str, text: str) -> list[str]:
    lines = textwrap.wrap(text, WIDTH - 11) or ["-"]
    return [f"  {label:<8} {lines[0]}"] + [f"  {'':<8} {ln}" for ln in lines[1:]]


def report(platform: str, root: str, code: int) -> list[str]:
    st = status_data(root)
    shown: dict[str, Any] = show(root)
    out = [f"== {platform} ".ljust(WIDTH, "=")]
    out += _field("source", f"{st['provider'] or '-'}  (instance {st['instance_id'] or 'unknown'})")
    out += _field("phases", "  ".join(
        f"{p['phase']} {(p['duration_s'] or 0) * 1000:.0f}ms" for p in st["phases"]))
    host = shown["hostname"]
    out += _field("hostname", f"{host['nodename']} (live: {host['live']})")
    addrs = ", ".join(f"{a['addrobj']} {a['addr'] or '(' + a['state'] + ')'}"
                      for a in shown["addresses"]) or "none"
    out += _field("address", addrs)
    routes = ", ".join(f"{r.get('destination', '?')} via {r.get('gateway', '?')}"
                       for r in shown["routes"]) or "none"
    out += _field("routes", routes)
    dns = shown["dns"]
    out += _field("dns", (", ".join(dns["nameservers"]) or "none") +
                  (f"  search {' '.join(dns['search'])}" if dns["search"] else ""))
    ssh = shown["ssh"]
    mode = ssh["file"]["mode"] if ssh["file"] else "-"
    out += _field("ssh keys", f"{len(ssh['authorized_keys'])} in /root/.ssh/authorized_keys "
                  f"(mode {mode})")
    pool = shown["pool"] or {}
    out += _field("storage", f"rpool {_gib(pool.get('size_bytes'))} on {pool.get('disk')}"
                  f" (image label said {pool.get('label_disk')}); swap: "
                  f"{', '.join(s.get('path', str(s)) for s in shown['swap']) or 'none'}")
    made = {name: u for name, u in shown.get("users", {}).items() if name != "root"}
    if made:
        out += _field("users", ", ".join(
            f"{name} ({len(u['ssh']['authorized_keys'])} key(s), password "
            f"{(u['password'] or '-').split(' ')[0]})" for name, u in made.items()))
    if platform == "azure":
        from sim.emulators.azure import reports

        out += _field("reported", "to the wireserver: " + (", ".join(
            r["state"] for r in reports(root)) or "nothing"))
    script = shown["userscript"]
    out += _field("script", "installed, service " + str(script["service"])
                  if script["file"] else "none")
    result = "DONE" if st["done"] else f"held in {st['phase']}: {(st['last_error'] or {}).get('message')}"
    out += _field("result", f"{result} (exit {code})")
    return out


def demo_crash(workdir: str) -> list[str]:
    root = os.path.join(workdir, "crash")
    guest.create(root, "qemu")
    out = ["== crash and resume ".ljust(WIDTH, "="),
           "  A qemu guest; the agent is killed (SIGKILL) right after `zpool reguid`,",
           "  before it could record that step. The next start resumes:"]
    with serving(root):
        first = run_agent(root, crash_at="after:STORAGE/reguid")
        out.append(f"  first start:  killed by signal {-first.returncode}")
        second = run_agent(root)
    keep = ("resuming", "interrupted", "STORAGE/reguid", "boot 1 done", "->")
    for line in second.stdout.splitlines():
        if any(k in line for k in keep):
            text = line.split("Z ", 1)[-1]
            out += textwrap.wrap(text, WIDTH - 4, initial_indent="    ",
                                 subsequent_indent="      ")
    calls = show(root)["calls"].get("zpool reguid", 0)
    out.append(f"  second start: exit {second.returncode}; `zpool reguid` ran {calls} time(s)")
    return out


def demo_dir() -> str:
    """One fixed directory, emptied at each run: repeated demos leave one copy, not one
    ~3 MB directory per run, and the closing hint can name real paths."""
    return os.environ.get("METADATA_DEMO_DIR") or os.path.join(
        tempfile.gettempdir(), f"metadata-demo-{os.getuid()}")


def main() -> int:
    workdir = demo_dir()
    if os.path.lexists(workdir):
        shutil.rmtree(workdir) if os.path.isdir(workdir) and not os.path.islink(workdir) \
            else os.remove(workdir)
    os.makedirs(workdir, mode=0o755)
    print("Booting a simulated illumos guest per platform in")
    print(f"  {workdir}")
    print("(each runs the real agent: `metadata run --root DIR`)\n")
    failures = 0
    for platform in ORDER:
        if platform not in PLATFORMS:
            continue
        root = os.path.join(workdir, platform)
        guest.create(root, platform)
        with serving(root):
            code = run_agent(root).returncode
        failures += code != 0
        print("\n".join(report(platform, root, code)) + "\n")
    print("\n".join(demo_crash(workdir)) + "\n")
    print("The state machine, every step and what happens when it fails: docs/states.md")
    example = os.path.join(workdir, "smartos")
    print(f"Inspect a guest (all are in {workdir}, replaced by the next demo):")
    print(f"  .venv/bin/python -m sim show {example}")
    print(f"  .venv/bin/metadata status --root {example}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
