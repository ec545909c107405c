"""The checkpoint cannot be written: a full /var, a read-only /var, or /var/metadata that is
not a directory. The agent must still configure the guest, say that it could not
checkpoint (once, not on every save), and never crash.

The tests run as root in CI and here, and root ignores permission bits, so a `chmod 0555`
would prove nothing. Instead:
- a file where the /var/metadata directory should be (ENOTDIR, which root cannot bypass);
- a real full file system: a 4 KiB tmpfs mounted on <root>/var/metadata and filled, in a
  private mount namespace (`unshare -m`) so the host never sees it (ENOSPC);
- a read-only bind mount of <root>/var/metadata, in the same kind of namespace (EROFS).
The namespace cases are skipped where mounting is not permitted (an unprivileged runner).
The first-boot script lives in /var/metadata too, so its step fails on the same disk with a
clear error; every other step configures the guest.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass

import pytest
from guest import PROJECT_DIR, Guest, make_guest

CHECKPOINT_DIR = "/var/metadata"
SAVE_FAILED = "checkpoint: could not write checkpoint /var/metadata/state.msgpack: "


def can_mount_in_a_namespace(tmp_path) -> bool:
    probe = tmp_path / "mount-probe"
    probe.mkdir()
    script = f"mount -t tmpfs -o size=4k tmpfs {shlex.quote(str(probe))}"
    try:
        done = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                              capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def run_in_namespace(guest: Guest, setup: str) -> subprocess.CompletedProcess:
    """`metadata run` in a private mount namespace after the shell commands `setup`."""
    env = {k: v for k, v in os.environ.items() if k != "METADATA_AGENT_CRASH_AT"}
    env["PYTHONPATH"] = PROJECT_DIR
    agent = " ".join(shlex.quote(a) for a in
                     (sys.executable, "-m", "fsm", "run", "--root", guest.root))
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                           f"set -e\n{setup}\nexec {agent}"],
                          capture_output=True, text=True, env=env, timeout=120)


@dataclass
class Boot:
    guest: Guest
    code: int
    out: str


def fill_disk(tmp_path, guest: Guest) -> Boot:
    where = shlex.quote(guest.path(CHECKPOINT_DIR))
    # 4 KiB is one page: a filler file takes it, so the first checkpoint write gets ENOSPC.
    result = run_in_namespace(guest, f"mount -t tmpfs -o size=4k,mode=0755 tmpfs {where}\n"
                                     f"head -c 4096 /dev/zero > {where}/filler 2>/dev/null || true")
    return Boot(guest, result.returncode, result.stdout + result.stderr)


def read_only(tmp_path, guest: Guest) -> Boot:
    where = shlex.quote(guest.path(CHECKPOINT_DIR))
    result = run_in_namespace(guest, f"mount --bind {where} {where}\n"
                                     f"mount -o remount,ro,bind {where}")
    return Boot(guest, result.returncode, result.stdout + result.stderr)


def file_in_the_way(tmp_path, guest: Guest) -> Boot:
    os.rmdir(guest.path(CHECKPOINT_DIR))
    with open(guest.path(CHECKPOINT_DIR), "w") as f:
        f.write("not a directory\n")
    result = guest.run()
    return Boot(guest, result.returncode, result.stdout + result.stderr)


# scenario -> (how, the errno text of the checkpoint's log line, needs a mount namespace)
SCENARIOS = {
    "full": (fill_disk, "No space left on device", True),
    "read-only": (read_only, "Read-only file system", True),
    "not-a-directory": (file_in_the_way, "Not a directory", False),
}


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def boot(request, tmp_path_factory):
    """One agent run per scenario, shared by the assertions below."""
    how, errno_text, needs_mount = SCENARIOS[request.param]
    tmp_path = tmp_path_factory.mktemp(request.param)
    if needs_mount and not can_mount_in_a_namespace(tmp_path):
        pytest.skip("cannot mount in a private mount namespace here")
    booted = how(tmp_path, make_guest(tmp_path, "qemu"))
    booted.errno_text = errno_text  # type: ignore[attr-defined]
    return booted


def test_says_once_that_it_could_not_checkpoint(boot):
    save_errors = [ln for ln in boot.out.splitlines() if SAVE_FAILED in ln]
    assert len(save_errors) == 1, boot.out[-3000:]   # once, not at every transition
    assert boot.errno_text in save_errors[0]
    assert save_errors[0].endswith("configuring the guest anyway")


def test_network_hostname_and_swap_are_configured_anyway(boot):
    # Read from the guest state and files: sim.show cannot list a /var/metadata that is a file.
    state = boot.guest.state()
    assert boot.guest.read("/etc/nodename") == "cpio-seed-guest\n", boot.out[-3000:]
    assert state["hostname"] == "cpio-seed-guest"
    assert any(a["type"] == "dhcp" and a["addr"] for a in state["addresses"])
    assert state["swap"]
    assert "USERSCRIPT -> " in boot.out        # every phase was walked


def test_the_first_boot_script_on_the_same_disk_fails_and_the_agent_holds(boot):
    """/var/metadata/userscript cannot be written either: a failed step, exit 95."""
    assert boot.code == 95
    assert any("[USERSCRIPT/install] failed" in ln for ln in boot.out.splitlines())
    assert not os.path.isfile(boot.guest.path("/var/metadata/userscript"))


# sshkeys.py keeps its record of managed keys in /var/metadata and expand.py once wrote
# format(8)'s command file there: a full or read-only /var must cost neither the keys nor
# the pool expansion, and a refused write is a named failure, not an internal error.


def test_keys_are_installed_anyway(boot):
    keys = boot.guest.path("/root/.ssh/authorized_keys")
    assert os.path.isfile(keys)
    with open(keys) as f:
        assert len(f.read().splitlines()) == 2


def test_the_pool_is_expanded_anyway(boot):
    assert boot.guest.state()["pools"]["rpool"]["size_bytes"] > 8 << 30


def test_no_internal_error_or_traceback_and_the_failed_file_is_named(boot):
    assert "Traceback" not in boot.out and "internal error" not in boot.out
    failed = [ln for ln in boot.out.splitlines() if "[USERSCRIPT/install] failed" in ln]
    assert "/var/metadata/userscript" in failed[0]


def test_nothing_written_through_or_over_what_was_in_the_way(boot):
    path = boot.guest.path(CHECKPOINT_DIR)
    if os.path.isfile(path):
        with open(path) as f:
            assert f.read() == "not a directory\n"
    else:   # the tmpfs or the read-only mount went with the namespace: nothing under it
        assert os.listdir(path) == []


def test_once_the_disk_is_fixed_the_next_start_checkpoints_and_completes(tmp_path):
    booted = file_in_the_way(tmp_path, make_guest(tmp_path, "qemu"))
    assert booted.code == 95
    os.remove(booted.guest.path(CHECKPOINT_DIR))
    os.mkdir(booted.guest.path(CHECKPOINT_DIR))
    result = booted.guest.run()
    assert result.returncode == 0, result.stdout[-3000:]
    assert booted.guest.checkpoint().phase == "DONE"
    assert os.path.isfile(booted.guest.path("/var/metadata/userscript"))
    assert len(booted.guest.show()["ssh"]["authorized_keys"]) == 2
