"""smf/userscript.sh, the userscript service's start method, run as a real process under a
simulated guest: its smf_include.sh and svcadm are the guest's (METADATA_ROOT)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

import pytest
from guest import Guest, make_guest

from fsm.errors import SMF_EXIT_ERR_CONFIG, SMF_EXIT_ERR_FATAL, SMF_EXIT_OK
from sim import smffiles
from sim.guest import USERSCRIPT_FMRI

SECRET = "s3cr3t-token-in-the-user-script"
SMF_EXIT_ERR_NOSMF = 99
SHELLS = [sh for sh in ("bash", "dash") if shutil.which(sh)]


def _script(guest: Guest, body: str) -> str:
    """A user script that appends a line to a log under the guest, then runs `body`."""
    log = guest.path("/var/tmp/userscript-ran.log")
    return f"#!/bin/sh\n# {SECRET}\necho ran >> '{log}'\n{body}\n"


@pytest.fixture
def guest(tmp_path) -> Guest:
    g = make_guest(tmp_path, "qemu")
    smffiles.lay_out(g.root)
    os.makedirs(g.path("/var/tmp"), exist_ok=True)
    install(g, _script(g, "exit 0"))
    return g


def install(guest: Guest, text: str) -> str:
    """Install the script and enable the service, as the agent's USERSCRIPT step does."""
    guest.write("/var/metadata/userscript", text, mode=0o700)
    enable(guest)
    return hashlib.sha256(text.encode()).hexdigest()


def enable(guest: Guest) -> None:
    with_services = guest.state()["services"]
    with_services[USERSCRIPT_FMRI].update(enabled=True, state="online")
    guest.set_state(services=with_services)


def start(guest: Guest, shell: str = "bash", fmri: str | None = USERSCRIPT_FMRI,
          ) -> subprocess.CompletedProcess:
    """The start method as svc.startd runs it, with the guest as METADATA_ROOT."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "METADATA_ROOT": guest.root}
    if fmri:
        env["SMF_FMRI"] = fmri
    proc = subprocess.run([shell, guest.path("/usr/lib/userscript.sh")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert SECRET not in proc.stdout + proc.stderr, "the script's contents were printed"
    return proc


def runs(guest: Guest) -> int:
    try:
        return len(guest.read("/var/tmp/userscript-ran.log").splitlines())
    except FileNotFoundError:
        return 0


def record(guest: Guest, name: str) -> str | None:
    try:
        return guest.read(f"/var/metadata/userscript.{name}").strip()
    except FileNotFoundError:
        return None


def service(guest: Guest) -> dict:
    return guest.state()["services"][USERSCRIPT_FMRI]


@pytest.mark.parametrize("shell", SHELLS)
def test_runs_once_records_and_disables_itself_persistently(guest, shell):
    sha = hashlib.sha256(guest.read("/var/metadata/userscript").encode()).hexdigest()
    proc = start(guest, shell)
    assert proc.returncode == SMF_EXIT_OK, proc.stderr
    assert runs(guest) == 1
    assert record(guest, "started") == sha
    assert record(guest, "done") == sha
    assert guest.show()["userscript"]["runs"] == {"started": [sha], "done": [sha]}
    assert service(guest)["enabled"] is False
    assert service(guest)["state"] == "disabled"
    assert service(guest)["temporary"] is False  # not `disable -t`: off across reboots
    assert guest.calls().get("svcadm disable") == 1
    assert f"sha256:{sha[:12]} completed" in proc.stdout
    assert not [n for n in os.listdir(guest.path("/var/metadata")) if n.startswith(".")]


def test_second_start_does_not_run_it_again(guest):
    assert start(guest).returncode == SMF_EXIT_OK
    enable(guest)  # e.g. an operator's `svcadm enable`, or a reboot with it enabled
    proc = start(guest)
    assert proc.returncode == SMF_EXIT_OK
    assert runs(guest) == 1
    assert "already completed" in proc.stdout
    assert service(guest)["enabled"] is False


def test_started_without_done_runs_again_and_says_why(guest):
    sha = hashlib.sha256(guest.read("/var/metadata/userscript").encode()).hexdigest()
    guest.write("/var/metadata/userscript.started", sha + "\n")  # crashed mid-script
    proc = start(guest)
    assert proc.returncode == SMF_EXIT_OK
    assert runs(guest) == 1
    assert "started before but its completion was never recorded" in proc.stdout
    assert "must be idempotent" in proc.stdout
    assert record(guest, "done") == sha


def test_a_new_script_runs_even_after_an_old_one_completed(guest):
    assert start(guest).returncode == SMF_EXIT_OK
    sha = install(guest, _script(guest, "echo second script"))
    proc = start(guest)
    assert proc.returncode == SMF_EXIT_OK
    assert runs(guest) == 2
    assert "second script" in proc.stdout  # the script's own output reaches the log
    assert record(guest, "done") == sha


def test_failing_script_is_fatal_and_records_no_completion(guest):
    sha = install(guest, _script(guest, "exit 3"))
    proc = start(guest)
    assert proc.returncode == SMF_EXIT_ERR_FATAL  # maintenance at once, no blind retries
    assert f"sha256:{sha[:12]} failed with exit status 3" in proc.stderr
    assert "svcadm clear" in proc.stderr
    assert record(guest, "done") is None
    assert record(guest, "failed") == f"{sha} 3"
    assert service(guest)["enabled"] is True  # left for svc.startd: maintenance
    assert "svcadm disable" not in guest.calls()

    # After `svcadm clear` the method runs again and says the last run failed.
    again = start(guest)
    assert again.returncode == SMF_EXIT_ERR_FATAL
    assert "failed on its last run (exit status 3)" in again.stdout
    assert runs(guest) == 2


def test_script_fixed_after_failure_completes_and_clears_the_failure(guest):
    install(guest, _script(guest, "exit 1"))
    assert start(guest).returncode == SMF_EXIT_ERR_FATAL
    sha = install(guest, _script(guest, "exit 0"))
    assert start(guest).returncode == SMF_EXIT_OK
    assert record(guest, "failed") is None
    assert record(guest, "done") == sha


def test_script_killed_by_a_signal_is_reported_as_such(guest):
    install(guest, _script(guest, "kill -9 $$"))
    proc = start(guest)
    assert proc.returncode == SMF_EXIT_ERR_FATAL
    assert "killed by signal 9" in proc.stderr
    assert record(guest, "done") is None


def test_no_script_disables_the_service_and_succeeds(guest):
    os.unlink(guest.path("/var/metadata/userscript"))
    proc = start(guest)
    assert proc.returncode == SMF_EXIT_OK
    assert "nothing to run" in proc.stdout
    assert service(guest)["enabled"] is False
    assert record(guest, "started") is None


@pytest.mark.parametrize("problem", ["not executable", "symlink"])
def test_script_that_is_not_an_executable_file_is_a_configuration_error(guest, problem):
    script = guest.path("/var/metadata/userscript")
    if problem == "symlink":
        os.rename(script, guest.path("/var/tmp/elsewhere"))
        os.symlink(guest.path("/var/tmp/elsewhere"), script)
    else:
        os.chmod(script, 0o600)
    proc = start(guest)
    assert proc.returncode == SMF_EXIT_ERR_CONFIG
    assert runs(guest) == 0
    assert record(guest, "started") is None


def test_outside_smf_it_refuses_to_run(guest):
    proc = start(guest, fmri=None)
    assert proc.returncode == SMF_EXIT_ERR_NOSMF
    assert "SMF_FMRI is not set" in proc.stderr
    assert runs(guest) == 0
    assert service(guest)["enabled"] is True


def test_the_user_script_does_not_inherit_the_methods_smf_variables(guest):
    install(guest, _script(guest, 'echo "fmri=[${SMF_FMRI:-}] root=[${METADATA_ROOT:-}]"'))
    proc = start(guest)
    assert proc.returncode == SMF_EXIT_OK
    assert "fmri=[] root=[]" in proc.stdout
