"""Exactly-once under hostile input and lost state (issue 12), against the whole agent.

Each test boots a simulated guest with the agent as a real process and asserts on the
guest it leaves: the one-shot commands' counts (`zpool reguid`, `svcadm enable`), the
first-boot script's own runs (the userscript service's start method, smf/userscript.sh,
run as svc.startd would run it whenever the agent left the service enabled), and the
checkpoint. Each failed on the agent before the fix.
"""

from __future__ import annotations

import fcntl
import glob
import os
import signal
import subprocess
import sys
import time

import msgpack
import pytest
from crashkit import one_shot_counts
from guest import PROJECT_DIR, Guest, make_guest

from fsm.checkpoint import CHECKPOINT_PATH, MAX_CHECKPOINT_BYTES
from sim import guest as sim_guest
from sim.emulators import digitalocean as do_emulator
from sim.emulators import ec2 as ec2_emulator
from sim.emulators import nocloud as nocloud_emulator
from sim.guest import USERSCRIPT_FMRI
from sim.serve import serving

RAN_LOG = "/var/tmp/firstboot-ran.log"


def nocloud_guest(tmp_path, search: list[str] | None = None, name: str = "guest") -> Guest:
    """A NoCloud guest whose first-boot script appends a line to RAN_LOG on every run."""
    md = nocloud_emulator.default_metadata()
    root = str(tmp_path / name)
    md["user-data"] = f"#!/bin/sh\necho ran >> '{root}{RAN_LOG}'\n"
    if search is not None:
        md["network-config"]["ethernets"]["net0"]["nameservers"]["search"] = search
    g = make_guest(tmp_path, "nocloud", md, name=name)
    os.makedirs(g.path("/var/tmp"), exist_ok=True)
    return g


def start_userscript_service(g: Guest) -> subprocess.CompletedProcess | None:
    """svc.startd starting svc:/system/illumos/userscript:default, when it is enabled."""
    if not g.state()["services"][USERSCRIPT_FMRI]["enabled"]:
        return None
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "METADATA_ROOT": g.root,
           "SMF_FMRI": USERSCRIPT_FMRI}
    return subprocess.run(["sh", g.path("/usr/lib/userscript.sh")], env=env,
                          capture_output=True, text=True, timeout=60)


def boot(g: Guest) -> subprocess.CompletedProcess:
    """One start of the guest: the agent, then the userscript service if enabled."""
    result = g.run()
    start_userscript_service(g)
    return result


def start_agent(g: Guest, *args: str) -> subprocess.Popen:
    """`metadata run` in a session of its own, as SMF starts it in a contract."""
    env = {**os.environ, "PYTHONPATH": PROJECT_DIR}
    env.pop("METADATA_AGENT_CRASH_AT", None)
    return subprocess.Popen([sys.executable, "-m", "fsm", "run", "--root", g.root, *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate(timeout=60)


def wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    """Poll a readiness condition (never a fixed sleep); fail if the agent exits first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{what} (agent exit {proc.returncode})")
        time.sleep(0.02)


def script_runs(g: Guest) -> int:
    try:
        return len(g.read(RAN_LOG).splitlines())
    except FileNotFoundError:
        return 0


def damaged(g: Guest) -> list[str]:
    return glob.glob(g.path(CHECKPOINT_PATH) + ".corrupt-*")


# ---- error text cannot grow the checkpoint past its cap -------------------------------

def test_a_600_kb_bad_search_domain_never_makes_the_checkpoint_unreadable(tmp_path):
    """Before: the domain was quoted whole in the error, stored twice: the checkpoint grew
    past its 1 MiB cap, every later start was "boot 1 (no checkpoint)", reguid and the
    first-boot script ran again each time and two corrupt-* files piled up per start."""
    g = nocloud_guest(tmp_path, search=["x" * 600_000 + "!"])
    for n in range(1, 4):
        result = boot(g)
        out = result.stdout + result.stderr
        # Issue 11 made the bad domain a skipped item: a warning, the rest applied, DONE.
        assert result.returncode == 0, out[-2000:]
        assert "is not a domain name" in out
        size = os.path.getsize(g.path(CHECKPOINT_PATH))
        assert size < 64 * 1024 < MAX_CHECKPOINT_BYTES, size
        cp = g.checkpoint()
        assert cp.boot == n, "every start read the checkpoint the one before wrote"
        assert cp.warnings and all(len(w["message"]) < 2000 for w in cp.warnings)
        assert max(len(line) for line in out.splitlines()) < 4000, "a log line quoted it whole"
        assert "no checkpoint" not in out or n == 1
    assert damaged(g) == []
    assert one_shot_counts(g)["zpool reguid"] == 1
    assert one_shot_counts(g)["svcadm enable"] == 1
    assert script_runs(g) == 1


# ---- checkpoints that decode but lie ---------------------------------------------------

def _rewrite_checkpoint(g: Guest, **changes) -> None:
    with open(g.path(CHECKPOINT_PATH), "rb") as f:
        obj = msgpack.unpackb(f.read(), raw=False)
    obj.update(changes)
    with open(g.path(CHECKPOINT_PATH), "wb") as f:
        f.write(msgpack.packb(obj, use_bin_type=True))


LIES = {
    "boot 2**64-1": {"boot": 2**64 - 1},
    "last_error without keys": {"last_error": {"phase": "STORAGE"}},
    "time as text": {"updated": "yesterday"},
    "phase record start as text": {"phases": {"DETECT": {"start": "now", "boot": 1,
                                                         "result": "ok"}}},
    "step record boot negative": {"boot_steps": {"NETWORK/dns": {"status": "done",
                                                                 "boot": -5}}},
    "nan time": {"updated": float("nan")},
}


def test_checkpoints_that_decode_but_lie_are_damaged_not_trusted(tmp_path):
    """Before: `boot = 2**64-1` crashed the run (msgpack cannot pack 2**64), a last_error
    missing its keys crashed `metadata status` (KeyError), a string where a time belongs
    crashed it too (TypeError). Now each is a damaged checkpoint: moved aside, the
    previous generation used, no one-shot step repeated."""
    g = nocloud_guest(tmp_path)
    assert boot(g).returncode == 0
    for name, lie in LIES.items():
        _rewrite_checkpoint(g, **lie)
        status = g.metadata("status")
        assert status.returncode == 0 and "Traceback" not in status.stderr, (name, status.stderr)
        assert "damaged" in status.stdout and "not a valid checkpoint" in status.stdout, name
        result = g.run()
        out = result.stdout + result.stderr
        assert result.returncode == 0 and "Traceback" not in out, (name, out[-2000:])
        assert "is damaged" in out and "previous generation" in out, name
        assert g.checkpoint().boot < 100
    assert len(damaged(g)) == len(LIES)
    assert one_shot_counts(g)["zpool reguid"] == 1
    assert script_runs(g) == 1


# ---- an intent that cannot be read is that step's failure ------------------------------

def test_a_failing_intent_read_is_the_steps_failure_and_later_steps_still_run(tmp_path):
    """reguid's intent reads the pool GUID; with `zpool get` failing, the exception used
    to escape the machine: exit 95 without "Holding at", swap and USERSCRIPT never ran and
    `metadata status` showed STORAGE "running" for ever."""
    g = nocloud_guest(tmp_path)
    g.set_state(faults={"fail": {"zpool get": "internal error: out of memory"}})
    result = boot(g)
    out = result.stdout + result.stderr
    assert result.returncode == 95, out[-2000:]
    assert "[STORAGE/reguid] failed: /usr/sbin/zpool get" in out
    assert "Holding at STORAGE" in out and "Traceback" not in out
    counts = one_shot_counts(g)
    assert counts["zpool reguid"] == 0
    assert counts["zfs create"] == 1 and counts["svcadm enable"] == 1, counts
    assert script_runs(g) == 1
    cp = g.checkpoint()
    assert cp.phases["STORAGE"]["result"] == "failed"
    assert cp.instances[cp.instance_id]["STORAGE/reguid"]["status"] == "failed"
    status = g.metadata("status", "--json")
    assert status.returncode == 1 and '"result": "running"' not in status.stdout
    g.set_state(faults={})
    assert boot(g).returncode == 0
    assert one_shot_counts(g)["zpool reguid"] == 1
    assert script_runs(g) == 1


# ---- the lock ---------------------------------------------------------------------------

def _plant_lock(g: Guest, kind: str) -> None:
    path = g.path("/var/metadata/.lock")
    if kind == "directory":
        os.mkdir(path)
    else:
        os.symlink("/tmp/elsewhere-lock", path)


@pytest.mark.parametrize("kind", ["directory", "symlink"])
def test_without_the_lock_no_one_shot_step_runs_but_the_network_does(tmp_path, kind):
    """Before: with .lock a directory or a link the agent "went on without it", and two
    concurrent runs each ran reguid, enabled the userscript and created swap. Now every
    one-shot step is refused (the start holds, exit 95, saying why); per-boot steps run."""
    g = nocloud_guest(tmp_path)
    _plant_lock(g, kind)
    result = boot(g)
    out = result.stdout + result.stderr
    assert result.returncode == 95, out[-2000:]
    assert f"/var/metadata/.lock is a {'directory' if kind == 'directory' else 'symbolic link'}" in out
    assert "one-shot steps will not run" in out and "Holding at IDENTITY" in out
    counts = one_shot_counts(g)
    assert counts == {"zpool reguid": 0, "zfs create": 0, "zpool create": 0,
                      "svcadm enable": 0, "useradd": 0, "groupadd": 0, "hostname NAME": 0,
                      "swap -a": 0}, counts
    assert script_runs(g) == 0
    shown = g.show()
    assert "192.168.122.1" in shown["dns"]["nameservers"], shown["dns"]
    assert not os.path.exists("/tmp/elsewhere-lock")
    # The operator removes what was planted: the next start does the one-shot work, once.
    if kind == "directory":
        os.rmdir(g.path("/var/metadata/.lock"))
    else:
        os.unlink(g.path("/var/metadata/.lock"))
    assert boot(g).returncode == 0
    assert one_shot_counts(g)["zpool reguid"] == 1 and script_runs(g) == 1


def _lock_held(g: Guest) -> bool:
    fd = os.open(g.path("/var/metadata/.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def test_reset_waits_a_bounded_time_for_a_running_agent_and_changes_nothing(tmp_path):
    """Before: `metadata reset` took no lock; the running agent then re-saved the checkpoint
    reset had just moved aside, silently."""
    g = nocloud_guest(tmp_path)
    assert boot(g).returncode == 0
    g.set_state(faults={"hang": ["dladm show-phys"]})
    proc = start_agent(g)
    try:
        wait_for(lambda: _lock_held(g), proc, "the agent never took its lock")
        started = time.monotonic()
        result = g.metadata("reset", "--wait", "1")
        took = time.monotonic() - started
        assert result.returncode == 95, result.stderr
        assert "an agent is running on this guest" in result.stderr
        assert "waited 1 s" in result.stderr and took < 30
        assert os.path.exists(g.path(CHECKPOINT_PATH))
        assert glob.glob(g.path(CHECKPOINT_PATH) + ".reset-*") == []
    finally:
        kill_group(proc)
        g.set_state(faults={})
    result = g.metadata("reset", "--wait", "1")
    assert result.returncode == 0 and "moved aside" in result.stdout, result.stderr


# ---- checkpoint loss does not repeat one-shot work for the same instance ---------------

def _lose_checkpoint(g: Guest, how: str) -> None:
    if how == "both generations damaged":
        for suffix in ("", ".prev"):
            with open(g.path(CHECKPOINT_PATH + suffix), "wb") as f:
                f.write(b"\xc1 not msgpack")
    else:
        result = g.metadata("reset")
        assert result.returncode == 0 and "moved aside" in result.stdout, result.stderr


@pytest.mark.parametrize("how", ["both generations damaged", "metadata reset"])
def test_a_lost_checkpoint_does_not_rerun_reguid_or_the_script_for_the_same_instance(
        tmp_path, how):
    """Before: the same instance ran `zpool reguid` and its first-boot script again
    (USERSCRIPT/install deleted the service's done record as "another instance's")."""
    g = nocloud_guest(tmp_path)
    assert boot(g).returncode == 0
    guid = g.state()["pools"]["rpool"]["guid"]
    _lose_checkpoint(g, how)
    result = boot(g)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-2000:]
    assert "boot 1 starts (no checkpoint)" in out
    assert "already given its own GUID for this instance" in out
    assert one_shot_counts(g)["zpool reguid"] == 1
    assert g.state()["pools"]["rpool"]["guid"] == guid
    assert script_runs(g) == 1
    assert g.show()["userscript"]["runs"]["done"][0].endswith("/iid-nocloud-0001")
    # A new instance from the same image (its metadata names another id) does both again.
    md = sim_guest.load_metadata(g.root)
    md["meta-data"]["instance-id"] = "iid-nocloud-0002"
    nocloud_emulator.lay_out(g.root, md)
    assert boot(g).returncode == 0
    assert one_shot_counts(g)["zpool reguid"] == 2
    assert script_runs(g) == 2


def test_a_newer_schema_is_kept_and_refuses_one_shot_steps(tmp_path):
    """An older agent after a boot-environment rollback meets its successor's checkpoint.
    Before: moved aside as damaged, "no checkpoint", one-shot steps run again. Now: left
    untouched, never overwritten; one-shot steps refused (exit 95); the network is still
    configured; `metadata reset` accepts the loss and the next start does not repeat the
    one-shot work, which its witnesses show done."""
    g = nocloud_guest(tmp_path)
    assert boot(g).returncode == 0
    _rewrite_checkpoint(g, schema=2, future_field={"x": 1})
    with open(g.path(CHECKPOINT_PATH), "rb") as f:
        newer = f.read()
    result = boot(g)
    out = result.stdout + result.stderr
    assert result.returncode == 95, out[-2000:]
    assert "written by a newer agent" in out and "Holding at IDENTITY" in out
    with open(g.path(CHECKPOINT_PATH), "rb") as f:
        assert f.read() == newer, "the newer agent's checkpoint was rewritten"
    assert damaged(g) == []
    assert one_shot_counts(g)["zpool reguid"] == 1 and script_runs(g) == 1
    assert g.metadata("reset").returncode == 0
    assert boot(g).returncode == 0
    assert one_shot_counts(g)["zpool reguid"] == 1 and script_runs(g) == 1


# ---- hostile values ---------------------------------------------------------------------

FORGED = "fe80::1%x\nnameserver 198.51.100.66\noptions ndots:15"


def _do_guest(tmp_path, name: str = "guest", **changes) -> Guest:
    md = do_emulator.default_metadata()
    if "nameservers" in changes:
        md["dns"]["nameservers"] = changes["nameservers"]
    if "gateway6" in changes:
        md["interfaces"]["public"][0]["ipv6"]["gateway"] = changes["gateway6"]
    if "gateway4" in changes:
        md["interfaces"]["public"][0]["ipv4"]["gateway"] = changes["gateway4"]
    if "netmask" in changes:
        md["interfaces"]["public"][0]["ipv4"]["netmask"] = changes["netmask"]
    return make_guest(tmp_path, "digitalocean", md, name=name)


def test_a_scope_id_cannot_add_lines_to_resolv_conf(tmp_path):
    """Before: ipaddress took anything after `%`, so this nameserver became three lines of
    /etc/resolv.conf (a forged nameserver, `options ndots:15`) and a forged log line."""
    g = _do_guest(tmp_path, nameservers=["67.207.67.2", FORGED])
    with serving(g.root):
        result = g.run()
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-2000:]   # a skipped item (issue 11), the rest applied
    assert "scope id" in out and "is not a link name" in out
    resolv = g.read("/etc/resolv.conf")
    assert "nameserver 67.207.67.2" in resolv, "the good nameserver is applied"
    assert "198.51.100.66" not in resolv and "ndots" not in resolv
    assert not any(line.startswith("nameserver 198.51.100.66") for line in out.splitlines())
    assert g.show()["ssh"]["authorized_keys"], "the keys are still installed"


@pytest.mark.parametrize("field,value,problem", [
    ("gateway6", "fe80::1%vioif0 -ifp evil", "is not a link name"),
    ("gateway4", "255.255.255.255", "is not a router's address"),
    ("gateway4", "224.0.0.1", "is not a router's address"),
    ("netmask", "0.0.0.0", "/0 prefix"),
    ("nameservers", ["0.0.0.0"], "is not a host address"),
    ("nameservers", ["ff02::1"], "is not a host address"),
])
def test_nonsense_network_values_are_refused_and_nothing_of_them_applied(tmp_path, field,
                                                                         value, problem):
    g = _do_guest(tmp_path, **{field: value})
    with serving(g.root):
        result = g.run()
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-2000:]   # a skipped item (issue 11), the rest applied
    assert problem in out, out[-2000:]
    assert "Traceback" not in out
    argv_log = g.show()
    assert all("255.255.255.255" not in r and "224.0.0.1" not in r and "-ifp" not in r
               for r in map(str, argv_log.get("routes", []))), argv_log.get("routes")
    resolv = g.path("/etc/resolv.conf")
    assert not os.path.exists(resolv) or "0.0.0.0" not in g.read("/etc/resolv.conf")


# ---- reads: no FIFO waited on, no link followed, no unbounded size ----------------------

@pytest.mark.parametrize("path,expect", [
    ("/etc/resolv.conf", "[NETWORK/dns] failed"),
    ("/etc/nsswitch.conf", "[NETWORK/dns] failed"),
    ("/etc/defaultrouter", "[NETWORK/routes] failed"),
    ("/etc/vfstab", "[STORAGE/swap] failed"),
    ("/etc/metadata-agent.toml", "/etc/metadata-agent.toml: (file): cannot be read"),
    (CHECKPOINT_PATH, "is damaged"),
])
def test_a_fifo_where_a_file_belongs_never_hangs_the_agent(tmp_path, path, expect):
    """Before: each of these blocked for ever in open() (with the lock held)."""
    g = nocloud_guest(tmp_path)
    if path == CHECKPOINT_PATH:
        assert boot(g).returncode == 0
    target = g.path(path)
    if os.path.lexists(target):
        os.unlink(target)
    os.mkfifo(target)
    started = time.monotonic()
    result = g.run(timeout=300)
    took = time.monotonic() - started
    out = result.stdout + result.stderr
    assert expect in out, out[-3000:]
    assert "not a regular file" in out
    assert took < 120, took
    assert "Traceback" not in out
    if path != "/etc/metadata-agent.toml":
        assert one_shot_counts(g)["zpool reguid"] == 1


def test_resolv_conf_linked_elsewhere_is_neither_followed_nor_copied(tmp_path):
    """Before: a link to a root-only file was read and its content rewritten into a 0644
    /etc/resolv.conf; a link to /dev/zero read until MemoryError."""
    g = nocloud_guest(tmp_path)
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secret-hash:19000::::::\n")
    os.chmod(secret, 0o600)
    os.symlink(str(secret), g.path("/etc/resolv.conf"))
    os.unlink(g.path("/etc/nsswitch.conf"))
    os.symlink("/dev/zero", g.path("/etc/nsswitch.conf"))
    result = g.run(timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 95, out[-2000:]
    assert "refusing to follow a symbolic link" in out
    assert "secret-hash" not in out
    assert os.path.islink(g.path("/etc/resolv.conf"))
    assert secret.read_text() == "root:$6$secret-hash:19000::::::\n"
    for dirpath, _dirs, files in os.walk(g.root):
        for name in files:
            full = os.path.join(dirpath, name)
            if os.path.isfile(full) and not os.path.islink(full) and "var/sim" not in full:
                with open(full, "rb") as f:
                    assert b"secret-hash" not in f.read(), full


def test_a_wedged_disk_does_not_hang_detect(tmp_path):
    """Before: DETECT read the first sector of every /dev/rdsk/*p0 in-process with no
    bound: a disk that never answers (a FIFO here) hung the boot until SMF's timeout put
    the service in maintenance with no network and no keys."""
    g = nocloud_guest(tmp_path)
    wedged = g.path("/dev/rdsk/c1t0d0p0")
    os.unlink(wedged)
    os.mkfifo(wedged)
    result = g.run(timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "/dev/rdsk/c1t0d0p0: no data within" in out
    assert g.show()["ssh"]["authorized_keys"]


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "sparse"])
def test_status_reads_the_checkpoint_through_the_bounded_path(tmp_path, kind):
    """Before: `metadata status` hung on a FIFO, died with MemoryError on /dev/zero and
    read a 1 GiB sparse file whole."""
    g = nocloud_guest(tmp_path)
    path = g.path(CHECKPOINT_PATH)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        os.symlink("/dev/zero", path)
    else:
        with open(path, "wb") as f:
            f.truncate(1 << 30)
    result = g.metadata("status", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "damaged" in result.stdout and "Traceback" not in result.stderr
    assert os.path.lexists(path), "status reads only"


# ---- every wait bounded: a drip-feeding metadata service --------------------------------

DRIP_SETTINGS = "[timeouts]\nhttp = 1\nfetch = 4\n"


def drip_guest(tmp_path, platform: str, name: str = "guest") -> Guest:
    md = {"digitalocean": do_emulator.default_metadata, "ec2": ec2_emulator.default_metadata}[
        platform]()
    md["_emulator"] = {**md.get("_emulator", {}), "drip_s": 0.5}
    if platform == "digitalocean":
        md["_emulator"]["config_drive"] = False   # the HTTP service is the only source
    g = make_guest(tmp_path, platform, md, name=name)
    g.write("/etc/metadata-agent.toml", DRIP_SETTINGS)
    return g


@pytest.mark.parametrize("platform", ["digitalocean", "ec2"])
def test_a_drip_feeding_service_cannot_hold_fetch(tmp_path, platform):
    """Before: one byte every half second kept each read alive, and FETCH never ended."""
    g = drip_guest(tmp_path, platform)
    started = time.monotonic()
    with serving(g.root):
        result = g.run(timeout=300)
    took = time.monotonic() - started
    out = result.stdout + result.stderr
    assert result.returncode == 95, out[-2000:]
    assert "fetch budget" in out and "the answer was still arriving" in out, out[-2000:]
    assert took < 120, took


# ---- SIGTERM and SIGHUP -----------------------------------------------------------------

def _standin_alive(session: int, key: str) -> bool:
    from crashkit import _standin_running

    return _standin_running(session, key)


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_a_signal_kills_the_running_command_and_the_restart_runs_it_once(tmp_path, signame):
    """Before: a SIGTERM to the agent left its slow `zpool reguid` running; the restarted
    agent found the GUID unchanged and ran reguid again, and then the orphan finished too:
    two reguids. Now the signal is logged, the command is killed with the agent, and the
    restart runs it exactly once."""
    g = nocloud_guest(tmp_path)
    g.set_state(faults={"delay": {"zpool reguid": 20}})
    proc = start_agent(g)
    try:
        wait_for(lambda: _standin_alive(proc.pid, "zpool reguid"), proc,
                 "zpool reguid was never started")
        os.kill(proc.pid, getattr(signal, signame))
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            kill_group(proc)
    assert proc.returncode == 95, out[-2000:]
    assert f"received {signame}: killing the running command" in out
    assert "Traceback" not in out
    assert not _standin_alive(proc.pid, "zpool reguid"), "the command outlived the agent"
    assert one_shot_counts(g)["zpool reguid"] == 0
    assert not glob.glob(g.path("/var/metadata/.*.tmp-*"))
    g.set_state(faults={})
    result = g.run()
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]
    assert one_shot_counts(g)["zpool reguid"] == 1


# ---- settings: no unbounded timeouts -----------------------------------------------------

@pytest.mark.parametrize("value", ["nan", "inf", "+inf", "1e9", "86400"])
def test_absurd_timeouts_are_configuration_errors(tmp_path, value):
    """Before: `http = nan` or `inf` was accepted; inf turned every request into an
    unbounded wait and nan made every comparison false."""
    g = nocloud_guest(tmp_path)
    g.write("/etc/metadata-agent.toml", f"[timeouts]\nhttp = {value}\n")
    result = g.run()
    out = result.stdout + result.stderr
    assert result.returncode == 96, out[-2000:]
    assert "/etc/metadata-agent.toml: timeouts.http:" in out
    assert one_shot_counts(g)["zpool reguid"] == 0


# ---- foreign-owned /root/.ssh -----------------------------------------------------------

ATTACKER = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBW76c9qHq4UK/Q6SSmCMzv9+IDZVDLsl0e67D40grsN "
            "mallory@elsewhere")


@pytest.mark.parametrize("case", ["foreign owner", "world-writable"])
def test_lines_of_a_file_root_did_not_own_are_not_blessed(tmp_path, case):
    """Before: the agent chowned /root/.ssh and authorized_keys to root and kept their
    lines, turning a key sshd's StrictModes ignored into a working root login."""
    if os.geteuid() != 0:
        pytest.skip("giving a file to another uid needs root")
    g = nocloud_guest(tmp_path)
    ssh = g.path("/root/.ssh")
    os.makedirs(ssh, exist_ok=True)
    g.write("/root/.ssh/authorized_keys", ATTACKER + "\n", mode=0o666)
    if case == "foreign owner":
        os.chown(ssh, 1234, 1234)
        os.chown(g.path("/root/.ssh/authorized_keys"), 1234, 1234)
    os.chmod(ssh, 0o777)
    os.chmod(g.path("/root/.ssh/authorized_keys"), 0o666)
    result = g.run()
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-2000:]
    keys = g.show()["ssh"]
    assert ATTACKER not in keys["authorized_keys"]
    assert keys["authorized_keys"] == list(nocloud_emulator.DEFAULT_KEYS)
    assert keys["file"]["owner"] == "0:0" and keys["file"]["mode"] == "0600"
    assert keys["dir"]["owner"] == "0:0" and keys["dir"]["mode"] == "0700"
    assert "sshd ignored it; its lines were not carried" in out
    assert any("sshd ignored it" in w["message"] for w in g.checkpoint().warnings)
    assert g.read("/root/.ssh/authorized_keys.untrusted") == ATTACKER + "\n"


def test_a_user_owned_hosts_file_is_roots_after_the_rewrite(tmp_path):
    """Before: a user-owned 0666 /etc/inet/hosts kept its owner and mode after the agent
    rewrote it, so that user could keep rewriting root's name resolution."""
    if os.geteuid() != 0:
        pytest.skip("giving a file to another uid needs root")
    g = nocloud_guest(tmp_path)
    hosts = g.path("/etc/inet/hosts")
    os.chown(hosts, 1234, 1234)
    os.chmod(hosts, 0o666)
    assert g.run().returncode == 0
    st = os.stat(hosts)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 3, 0o644)
    assert "nocloud-guest" in g.read("/etc/inet/hosts")
