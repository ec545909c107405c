"""USERSCRIPT on the simulated guest: the script installed 0700 root, the userscript
service enabled once, bad scripts refused, and the script never in a log or checkpoint."""

from __future__ import annotations

import logging
import os
import subprocess

import pytest
from guest import make_guest

from fsm.checkpoint import CHECKPOINT_PATH, Checkpoint, CheckpointStore
from fsm.errors import SMF_EXIT_ERR_CONFIG, SMF_EXIT_OK, MetadataError
from fsm.machine import BootMachine
from fsm.settings import Settings
from fsm.steps import PHASE_NAMES, Context
from fsm.system import System
from operations import userscript
from operations.sshkeys import UnsafeFileError
from operations.userscript import SCRIPT_PATH, USERSCRIPT_FMRI, install
from providers.model import Metadata
from sim import state as sim_state

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="asserts root ownership")

SECRET = "s3cr3t-token-7f1c"
SCRIPT = f"#!/bin/sh\ncurl -H 'Authorization: {SECRET}' https://example.invalid/\n".encode()


def context(guest, script, instance_id="i-1") -> Context:
    md = Metadata(source="test", instance_id=instance_id, user_script=script,
                  provenance={"user_script": "user-script"})
    return Context(system=System(guest.root), settings=Settings(), checkpoint=Checkpoint(),
                   metadata=md)


def service(guest):
    return guest.state()["services"][USERSCRIPT_FMRI]


@pytest.fixture
def guest(tmp_path):
    return make_guest(tmp_path, "qemu")


def test_the_script_is_installed_and_the_service_enabled_once(guest):
    ctx = context(guest, SCRIPT)
    first = install(ctx)
    assert len(first.changes) == 3  # script, instance tag, enable
    shown = guest.show()["userscript"]
    assert shown["file"]["mode"] == "0700" and shown["file"]["owner"] == "0:0"
    assert open(guest.path(SCRIPT_PATH), "rb").read() == SCRIPT
    assert shown["service"] == "online" and service(guest)["enabled"] is True
    assert guest.calls()["svcadm enable"] == 1
    inode = os.stat(guest.path(SCRIPT_PATH)).st_ino

    second = install(ctx)
    assert second.changes == []
    assert guest.calls()["svcadm enable"] == 1
    assert os.stat(guest.path(SCRIPT_PATH)).st_ino == inode  # not rewritten


def test_no_script_is_a_no_op(guest):
    assert install(context(guest, None)).changes == []
    assert not os.path.exists(guest.path(SCRIPT_PATH))
    assert guest.calls() == {}
    assert service(guest)["enabled"] is False


@pytest.mark.parametrize("script, fragment", [
    (f"echo {SECRET}\n".encode(), "does not begin with an interpreter line"),
    (f"#!/bin/sh\r\necho {SECRET}\r\n".encode(), "CR-LF"),
    (b"", "empty"),
])
def test_a_script_illumos_cannot_run_is_not_installed(guest, script, fragment):
    with pytest.raises(MetadataError) as err:
        install(context(guest, script))
    assert str(err.value).startswith("test: user-script: ") and fragment in str(err.value)
    assert SECRET not in str(err.value)
    assert not os.path.exists(guest.path(SCRIPT_PATH))
    assert "svcadm enable" not in guest.calls()


def test_a_new_instance_with_a_new_script_replaces_it_and_re_enables(guest):
    install(context(guest, SCRIPT))
    with sim_state.locked(guest.root) as st:  # the method ran the script and disabled itself
        st["services"][USERSCRIPT_FMRI].update(enabled=False, state="disabled")
    os.chmod(guest.path(SCRIPT_PATH), 0o755)
    new = b"#!/bin/ksh\nprint second instance\n"
    outcome = install(context(guest, new, instance_id="i-2"))
    assert len(outcome.changes) == 2
    assert open(guest.path(SCRIPT_PATH), "rb").read() == new
    assert oct(os.stat(guest.path(SCRIPT_PATH)).st_mode & 0o7777) == "0o700"
    assert service(guest)["state"] == "online" and guest.calls()["svcadm enable"] == 2


def test_a_link_at_the_script_path_is_refused(guest, tmp_path):
    target = tmp_path / "target"
    target.write_text("unchanged\n")
    os.symlink(str(target), guest.path(SCRIPT_PATH))
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        install(context(guest, SCRIPT))
    assert target.read_text() == "unchanged\n"
    assert "svcadm enable" not in guest.calls()


def test_the_script_never_reaches_the_log_or_the_checkpoint(guest, caplog):
    caplog.set_level(logging.DEBUG)
    phases = {name: () for name in PHASE_NAMES}
    phases["USERSCRIPT"] = userscript.STEPS
    ctx = context(guest, SCRIPT)
    assert BootMachine(ctx, CheckpointStore(ctx.system), phases=phases).run() == SMF_EXIT_OK
    assert service(guest)["state"] == "online"
    assert "changed: /var/metadata/userscript installed" in caplog.text
    assert SECRET not in caplog.text
    with open(guest.path(CHECKPOINT_PATH), "rb") as f:
        assert SECRET.encode() not in f.read()

    # Nor when it is refused.
    caplog.clear()
    bad = Context(system=System(guest.root), settings=Settings(), checkpoint=Checkpoint(),
                  metadata=Metadata(source="test", instance_id="i-3",
                                    user_script=f"echo {SECRET}\n".encode()))
    assert BootMachine(bad, CheckpointStore(bad.system), phases=phases).run() == SMF_EXIT_ERR_CONFIG
    assert "does not begin with an interpreter line" in caplog.text
    assert SECRET not in caplog.text
    with open(guest.path(CHECKPOINT_PATH), "rb") as f:
        assert SECRET.encode() not in f.read()


def test_the_step_is_declared_per_instance():
    (step,) = userscript.STEPS
    assert step.key == "USERSCRIPT/install" and step.frequency.value == "per-instance"
    assert SCRIPT_PATH in step.changes and "never logged" in step.changes


# ---- the svcadm(8) and svcprop(1) stand-ins ---------------------------------------------

def test_svcadm_and_svcprop_standins_follow_their_man_pages(guest):
    def run(command, *args):
        r = subprocess.run([guest.path(command), *args], capture_output=True, text=True)
        return r.returncode, r.stdout, r.stderr

    svcadm, svcprop = "/usr/sbin/svcadm", "/usr/bin/svcprop"
    assert run(svcprop, "-c", "-p", "general/enabled", "userscript") == (0, "false\n", "")
    assert run(svcadm, "-v", "enable", "illumos/userscript") == (
        0, f"{USERSCRIPT_FMRI} enabled.\n", "")
    assert run(svcprop, "-p", "restarter/state", USERSCRIPT_FMRI) == (0, "online\n", "")
    assert run(svcadm, "disable", "-c", "done; ran once", "userscript:default")[0] == 0
    assert run(svcprop, "-p", "general", "userscript") == (0, (
        "general/comment astring done\\;\\ ran\\ once\n"
        "general/enabled boolean false\n"), "")
    assert run(svcprop, "-p", "general/nope", "userscript") == (1, "", (
        f"svcprop: Couldn't find property `general/nope' for instance `{USERSCRIPT_FMRI}'.\n"))
    assert run(svcprop, "-q", "-p", "general/nope", "userscript") == (1, "", "")
    assert run(svcadm, "enable", "nosuch") == (
        1, "", "svcadm: Pattern 'nosuch' doesn't match any instances\n")
    assert run(svcadm, "enable", "system/*") == (0, "", "")  # a pattern: every match
    assert run(svcprop, "-p", "general/enabled", "svc:/system/*") == (0, (
        "svc:/system/illumos/metadata:default/:properties/general/enabled boolean true\n"
        f"{USERSCRIPT_FMRI}/:properties/general/enabled boolean true\n"), "")
    assert run(svcadm, "mark", "bogus", "userscript")[0] == 2
    assert run(svcadm, "frobnicate", "userscript")[0] == 2
    assert run(svcprop, "-C", "-c", "-p", "general/enabled", "userscript")[0] == 2


def test_a_new_instance_clears_another_instances_run_records(tmp_path):
    """The image builder's VM ran the same script: the new instance must run it too."""
    from guest import make_guest

    from fsm.checkpoint import Checkpoint
    from fsm.settings import Settings
    from fsm.steps import Context
    from fsm.system import System
    from operations.userscript import RUN_RECORDS, install
    from providers.model import Metadata

    g = make_guest(tmp_path, "qemu")
    for record in RUN_RECORDS[:2]:
        g.write(record, "0123abcd\n")
    md = Metadata(source="test", instance_id="i-new", user_script=b"#!/bin/sh\necho hi\n")
    ctx = Context(system=System(g.root), settings=Settings(), checkpoint=Checkpoint(),
                  metadata=md)
    outcome = install(ctx)
    assert not any(os.path.exists(g.path(r)) for r in RUN_RECORDS)
    assert any("another instance's run" in c for c in outcome.changes)
    assert install(ctx).changes == []
