"""IDENTITY on the simulated guest: hostname and root's SSH keys, each run twice, plus
hostile names and key files and symbolic-link attacks, asserted on the guest's files,
modes, owners and live state."""

from __future__ import annotations

import base64
import os
import struct
import subprocess

import pytest
from crashkit import boot_until_done, comparable, crash_guest, one_shot_counts
from guest import make_guest

from fsm.checkpoint import Checkpoint, CheckpointStore
from fsm.errors import MetadataError, shown
from fsm.machine import BootMachine
from fsm.settings import Settings
from fsm.steps import PHASE_NAMES, Context
from fsm.system import System
from operations import identity
from operations.hostname import rewrite_hosts, set_hostname
from operations.sshkeys import MANAGED_HEADER, MANAGED_PATH, UnsafeFileError, install_keys, merge
from providers.model import Metadata

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="asserts root ownership")


def key(seed: int, comment: str = "") -> str:
    blob = b"".join(struct.pack(">I", len(f)) + f for f in (b"ssh-ed25519", bytes([seed]) * 32))
    line = "ssh-ed25519 " + base64.b64encode(blob).decode()
    return f"{line} {comment}" if comment else line


KEY_A, KEY_B, KEY_C, KEY_D = (key(i, f"user{i}@example") for i in (1, 2, 3, 4))
BODY_A = KEY_A.split()[1]


def context(guest, facts=None, **fields) -> Context:
    md = Metadata(source="test", provenance={"hostname": "sdc:hostname",
                                             "ssh_keys": "root_authorized_keys"}, **fields)
    return Context(system=System(guest.root), settings=Settings(), checkpoint=Checkpoint(),
                   metadata=md, facts=facts or {})


def snapshot(guest, *paths):
    out = {}
    for p in paths:
        full = guest.path(p)
        out[p] = (open(full, "rb").read(), os.lstat(full).st_ino) if os.path.lexists(full) else None
    return out


def mode_owner(guest, path):
    st = os.lstat(guest.path(path))
    return oct(st.st_mode & 0o7777), (st.st_uid, st.st_gid)


@pytest.fixture
def guest(tmp_path):
    return make_guest(tmp_path, "qemu")


# ---- hostname ---------------------------------------------------------------------------

def test_hostname_sets_nodename_hosts_and_live_name_then_changes_nothing(guest):
    ctx = context(guest, hostname="web1.example.com")
    first = set_hostname(ctx)
    assert len(first.changes) == 3
    assert guest.read("/etc/nodename") == "web1\n"
    assert guest.state()["hostname"] == "web1"
    shown = guest.show()["hostname"]
    assert shown["hosts"] == ["::1\tweb1.example.com web1 localhost",
                              "127.0.0.1\tweb1.example.com web1 localhost loghost"]
    assert shown["hosts_other"][:2] == ["#", "# Copyright 2009 Sun Microsystems, Inc.  All rights reserved."]
    calls = guest.calls()["hostname"]  # one query, one set
    before = snapshot(guest, "/etc/nodename", "/etc/inet/hosts")

    second = set_hostname(ctx)
    assert second.changes == []
    assert guest.calls()["hostname"] == calls + 1  # only the read-only query
    assert snapshot(guest, "/etc/nodename", "/etc/inet/hosts") == before  # not even rewritten
    assert os.path.islink(guest.path("/etc/hosts"))  # illumos's /etc/hosts -> ./inet/hosts


def test_hostname_falls_back_to_the_dhcp_lease(guest):
    ctx = context(guest, facts={"dhcp": {"hostname": "leased"}})
    set_hostname(ctx)
    assert guest.show()["hostname"]["live"] == "leased"
    assert guest.read("/etc/nodename") == "leased\n"


def test_no_hostname_anywhere_changes_nothing(guest):
    before = snapshot(guest, "/etc/nodename", "/etc/inet/hosts")
    assert set_hostname(context(guest)).changes == []
    assert snapshot(guest, "/etc/nodename", "/etc/inet/hosts") == before
    assert "hostname" not in guest.calls()


CUSTOM_HOSTS = """\
# Internet host table, edited by the operator
::1\t\tlocalhost oldname.example oldname
127.0.0.1\tlocalhost loghost oldname\t# loopback, keep this comment
127.0.0.1\tmyapp.local myapp
10.0.0.5\tdb db.internal   # the database
192.168.1.1 gateway
"""


def test_custom_hosts_lines_are_kept_and_only_the_loopback_names_change(guest):
    guest.write("/etc/inet/hosts", CUSTOM_HOSTS)
    os.chown(guest.path("/etc/inet/hosts"), 0, 3)  # root:sys, as illumos ships it
    ctx = context(guest, hostname="new1")
    set_hostname(ctx)
    assert guest.read("/etc/inet/hosts") == """\
# Internet host table, edited by the operator
::1\tnew1 localhost
127.0.0.1\tnew1 localhost loghost\t# loopback, keep this comment
127.0.0.1\tmyapp.local myapp
10.0.0.5\tdb db.internal   # the database
192.168.1.1 gateway
"""
    assert mode_owner(guest, "/etc/inet/hosts") == ("0o644", (0, 3))
    assert set_hostname(ctx).changes == []

    # A new instance with another name: the old name leaves the loopback lines.
    set_hostname(context(guest, hostname="new2.corp.example"))
    assert guest.show()["hostname"]["hosts"][:2] == [
        "::1\tnew2.corp.example new2 localhost",
        "127.0.0.1\tnew2.corp.example new2 localhost loghost\t# loopback, keep this comment"]
    assert "127.0.0.1\tmyapp.local myapp" in guest.read("/etc/inet/hosts")


def test_missing_loopback_lines_are_added():
    assert rewrite_hosts("# empty\n", "h") == "# empty\n::1\th localhost\n127.0.0.1\th localhost loghost\n"
    assert rewrite_hosts("", "h.d") == "::1\th.d h localhost\n127.0.0.1\th.d h localhost loghost\n"


HOSTILE_NAMES = ["web1\n127.0.0.1 evil", "web#1", "web 1", "web\x00", "x" * 300, "bücher",
                 "", "-x", "a..b"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_hostnames_write_nothing_and_run_nothing(guest, name):
    """A bad name is one skipped item: a warning naming the source field and the value
    (cut to shown()'s length), nothing written, and the step itself succeeds."""
    before = snapshot(guest, "/etc/nodename", "/etc/inet/hosts")
    outcome = set_hostname(context(guest, hostname=name))
    assert outcome.changes == [] and len(outcome.warnings) == 1
    assert outcome.warnings[0].startswith(f"test: sdc:hostname: hostname {shown(name)} skipped: ")
    assert outcome.warnings[0].endswith("; the name is left as it is")
    assert len(outcome.warnings[0]) < 400
    assert snapshot(guest, "/etc/nodename", "/etc/inet/hosts") == before
    assert guest.state()["hostname"] == "unknown"
    assert "hostname" not in guest.calls()


def test_a_hostile_hostname_from_dhcp_is_refused_too(guest):
    outcome = set_hostname(context(guest, facts={"dhcp": {"hostname": "evil name"}}))
    assert [w.split(" skipped: ")[0] for w in outcome.warnings] == \
        ["dhcp: Hostname: hostname 'evil name'"]
    assert guest.read("/etc/nodename") == "unknown\n"


def test_a_bad_hostname_does_not_cost_the_keys(guest):
    """A bad name is skipped with a warning in the checkpoint; the keys are installed and the
    machine reaches DONE (it was: IDENTITY/hostname failed, exit 96)."""
    ctx = context(guest, hostname="bad name#", ssh_keys=(KEY_A,), instance_id="i-1")
    phases = {name: () for name in PHASE_NAMES}
    phases["IDENTITY"] = identity.STEPS
    code = BootMachine(ctx, CheckpointStore(ctx.system), phases=phases).run()
    assert code == 0
    assert guest.show()["ssh"]["authorized_keys"] == [KEY_A]
    assert guest.read("/etc/nodename") == "unknown\n"
    assert [w["message"] for w in ctx.checkpoint.warnings] == [
        "test: sdc:hostname: hostname 'bad name#' skipped: hostname 'bad name#' contains a "
        "space at position 3; only letters, digits, hyphens and dots are allowed; the name "
        "is left as it is"]


def test_identity_steps_are_declared_per_instance_with_texts():
    assert [s.key for s in identity.STEPS] == ["IDENTITY/hostname", "IDENTITY/ssh-keys",
                                               "IDENTITY/host-keys"]
    for step in identity.STEPS:
        assert step.frequency.value == "per-instance"
        assert len(step.changes) > 80 and step.fails_when and step.on_failure


# ---- SSH keys ---------------------------------------------------------------------------

def test_keys_are_installed_with_safe_modes_then_nothing_changes(guest):
    ctx = context(guest, ssh_keys=(KEY_A, KEY_B))
    first = install_keys(ctx)
    assert first.changes and first.warnings == []
    ssh = guest.show()["ssh"]
    assert ssh["dir"] == {"mode": "0700", "owner": "0:0", "type": "dir"}
    assert ssh["file"] == {"mode": "0600", "owner": "0:0", "type": "file"}
    assert ssh["authorized_keys"] == [KEY_A, KEY_B]
    assert mode_owner(guest, MANAGED_PATH) == ("0o600", (0, 0))
    before = snapshot(guest, "/root/.ssh/authorized_keys", MANAGED_PATH)

    second = install_keys(ctx)
    assert second.changes == [] and second.warnings == []
    assert snapshot(guest, "/root/.ssh/authorized_keys", MANAGED_PATH) == before


def test_keys_merge_with_an_operators_file_without_duplicates(guest):
    operator = [
        "# keys added by hand",
        f'from="10.0.0.0/8" {KEY_A}',       # the metadata's key A, restricted by the operator
        KEY_C,
        "",
        "not a key, but the operator's business",
    ]
    guest.write("/root/.ssh/authorized_keys", "\n".join(operator) + "\n", mode=0o600)
    ctx = context(guest, ssh_keys=(f"{KEY_A}\n{KEY_B}", KEY_B))
    install_keys(ctx)
    assert guest.read("/root/.ssh/authorized_keys") == "\n".join(operator + [KEY_B]) + "\n"
    assert install_keys(ctx).changes == []


def test_a_new_instance_drops_the_previous_instances_keys_but_not_the_operators(guest):
    install_keys(context(guest, ssh_keys=(KEY_A, KEY_B)))
    path = "/root/.ssh/authorized_keys"
    guest.write(path, guest.read(path) + KEY_C + "\n", mode=0o600)  # the operator adds C

    outcome = install_keys(context(guest, ssh_keys=(KEY_B, KEY_D)))
    assert guest.show()["ssh"]["authorized_keys"] == [KEY_B, KEY_C, KEY_D]
    assert any("1 key(s) added" in c and "1 key(s) no longer" in c for c in outcome.changes)
    managed = guest.read(MANAGED_PATH).splitlines()[1:]
    assert managed == sorted([KEY_B, KEY_D])

    # A later instance with no keys at all (or none valid) removes nothing: only a source
    # that positively lists the current keys retires the others.
    for nothing in ((), ("ssh-ed25519 !!!",)):
        assert install_keys(context(guest, ssh_keys=nothing)).changes == []
        assert guest.show()["ssh"]["authorized_keys"] == [KEY_B, KEY_C, KEY_D]
        assert guest.read(MANAGED_PATH).splitlines()[1:] == sorted([KEY_B, KEY_D])


def test_a_record_left_by_a_crash_before_the_file_write_is_harmless(guest):
    # As after a crash between writing the superset record and authorized_keys.
    guest.write(MANAGED_PATH, f"# header\n{KEY_A}\n{KEY_B}\n", mode=0o600)
    install_keys(context(guest, ssh_keys=(KEY_B,)))
    assert guest.show()["ssh"]["authorized_keys"] == [KEY_B]
    assert guest.read(MANAGED_PATH).splitlines()[1:] == [KEY_B]


def test_merge_is_pure_and_keeps_order():
    lines, added, removed = merge(["# c", KEY_A, KEY_C], {KEY_A}, [KEY_B])
    assert lines == ["# c", KEY_C, KEY_B] and added == [KEY_B] and removed == [KEY_A]


def test_wrong_mode_and_owner_are_repaired(guest):
    guest.write("/root/.ssh/authorized_keys", KEY_A + "\n", mode=0o644)
    os.chown(guest.path("/root/.ssh/authorized_keys"), 1000, 1000)
    os.chmod(guest.path("/root/.ssh"), 0o755)
    outcome = install_keys(context(guest, ssh_keys=(KEY_A,)))
    assert len(outcome.changes) == 2
    assert mode_owner(guest, "/root/.ssh") == ("0o700", (0, 0))
    assert mode_owner(guest, "/root/.ssh/authorized_keys") == ("0o600", (0, 0))
    assert guest.read("/root/.ssh/authorized_keys") == KEY_A + "\n"


def test_invalid_key_lines_are_warned_by_line_and_skipped(guest):
    bad = "ssh-rsa " + BODY_A + " wrong type"
    ctx = context(guest, ssh_keys=(KEY_A, bad, "ssh-ed25519 !!!", "ssh-dss\x00 x"))
    outcome = install_keys(ctx)
    assert guest.show()["ssh"]["authorized_keys"] == [KEY_A]
    assert [w.split(":")[:3] for w in outcome.warnings] == [
        ["test", "root_authorized_keys", " line 2"], ["test", "root_authorized_keys", " line 3"],
        ["test", "root_authorized_keys", " line 4"]]
    assert not any(BODY_A in w for w in outcome.warnings)


HOSTILE_KEYS = [
    ("ssh-ed25519 AAAA\nrm -rf /",),
    (KEY_A.replace(" user1", "\x00 user1"),),
    ("ssh-ed25519 not*base64!",),
    ("ssh-rsa " + BODY_A,),
    ("ssh-foo " + BODY_A,),
    (KEY_A + "\r",),
]


@pytest.mark.parametrize("keys", HOSTILE_KEYS)
def test_hostile_key_files_are_rejected_with_nothing_written(guest, keys):
    outcome = install_keys(context(guest, ssh_keys=keys))
    assert outcome.changes == [] and outcome.warnings
    assert not os.path.lexists(guest.path("/root/.ssh"))
    assert not os.path.lexists(guest.path(MANAGED_PATH))


def test_a_10_mb_key_file_is_refused_with_nothing_written(guest):
    huge = (KEY_A + "\n") * (10 * 1024 * 1024 // len(KEY_A))
    with pytest.raises(MetadataError, match="^test: root_authorized_keys: SSH keys are"):
        install_keys(context(guest, ssh_keys=(huge,)))
    assert not os.path.lexists(guest.path("/root/.ssh"))


# ---- symbolic-link attacks --------------------------------------------------------------

def test_a_symlink_at_root_ssh_fails_the_step_and_writes_nothing_outside(guest, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), guest.path("/root/.ssh"))
    with pytest.raises(UnsafeFileError, match=r"^/root/\.ssh: is a symbolic link"):
        install_keys(context(guest, ssh_keys=(KEY_A,)))
    assert os.listdir(outside) == []
    assert os.path.islink(guest.path("/root/.ssh"))
    assert not os.path.lexists(guest.path(MANAGED_PATH))


def test_a_symlink_at_authorized_keys_is_neither_read_nor_written_through(guest, tmp_path):
    target = tmp_path / "shadow"
    target.write_text("root:secret-hash:::\n")
    os.makedirs(guest.path("/root/.ssh"), mode=0o700)
    os.symlink(str(target), guest.path("/root/.ssh/authorized_keys"))
    with pytest.raises(UnsafeFileError, match="authorized_keys: is a symbolic link"):
        install_keys(context(guest, ssh_keys=(KEY_A,)))
    assert target.read_text() == "root:secret-hash:::\n"
    assert os.path.islink(guest.path("/root/.ssh/authorized_keys"))
    assert not os.path.lexists(guest.path(MANAGED_PATH))


def test_write_file_replaces_a_planted_link_rather_than_writing_through_it(guest, tmp_path):
    """What the system layer guarantees underneath: rename() replaces the link itself."""
    target = tmp_path / "victim"
    target.write_text("untouched\n")
    os.makedirs(guest.path("/root/.ssh"), mode=0o700)
    os.symlink(str(target), guest.path("/root/.ssh/authorized_keys"))
    System(guest.root).write_file("/root/.ssh/authorized_keys", KEY_A + "\n", mode=0o600)
    assert target.read_text() == "untouched\n"
    assert not os.path.islink(guest.path("/root/.ssh/authorized_keys"))


def test_a_symlinked_root_home_or_hard_link_is_refused(guest, tmp_path):
    other = tmp_path / "other-home"
    (other / ".ssh").mkdir(parents=True)
    (other / ".ssh" / "authorized_keys").write_text(KEY_C + "\n")
    os.rename(guest.path("/root"), guest.path("/root.real"))
    os.symlink(str(other), guest.path("/root"))
    with pytest.raises(UnsafeFileError, match="^/root: is a symbolic link"):
        install_keys(context(guest, ssh_keys=(KEY_A,)))
    assert (other / ".ssh" / "authorized_keys").read_text() == KEY_C + "\n"

    os.unlink(guest.path("/root"))
    os.rename(guest.path("/root.real"), guest.path("/root"))
    os.makedirs(guest.path("/root/.ssh"), mode=0o700)
    os.link(guest.path("/etc/nodename"), guest.path("/root/.ssh/authorized_keys"))
    with pytest.raises(UnsafeFileError, match="hard links"):
        install_keys(context(guest, ssh_keys=(KEY_A,)))
    assert guest.read("/etc/nodename") == "unknown\n"


def test_a_symlink_at_the_hosts_file_is_refused_before_any_write(guest, tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("127.0.0.1 localhost\n")
    os.unlink(guest.path("/etc/inet/hosts"))
    os.symlink(str(target), guest.path("/etc/inet/hosts"))
    with pytest.raises(UnsafeFileError):
        set_hostname(context(guest, hostname="web1"))
    assert target.read_text() == "127.0.0.1 localhost\n"
    assert guest.read("/etc/nodename") == "unknown\n"
    assert "hostname" not in guest.calls()


# ---- the hostname(1) stand-in -----------------------------------------------------------

def test_hostname_standin_follows_hostname_1(guest):
    def run(*args):
        r = subprocess.run([guest.path("/usr/bin/hostname"), *args], capture_output=True,
                           text=True)
        return r.returncode, r.stdout, r.stderr

    assert run("web1.example.com") == (0, "", "")
    assert run() == (0, "web1.example.com\n", "")
    assert run("-s") == (0, "web1\n", "")
    assert run("-x") == (1, "", "usage: hostname [-s] [system_name]\n")
    assert run("a", "b") == (1, "", "usage: hostname [-s] [system_name]\n")
    assert run("x" * 257) == (1, "", "hostname: error in setting name: Invalid argument\n")
    assert run("--", "-s") == (0, "", "")
    assert guest.state()["hostname"] == "-s"


# ---- kill and resume (a real agent process, a CPIO seed) --------------------------------

SEED = {"nodename": "web1.example.com", "authorized_keys": [KEY_A, KEY_B],
        "firstboot.sh": "#!/bin/sh\necho first boot\n",
        "config.toml": {"network": {"skip": True}}}  # fewer commands: a faster matrix


@pytest.fixture(scope="module")
def seeded_baseline(tmp_path_factory):
    g = crash_guest(tmp_path_factory.mktemp("baseline"), "qemu")
    _seed(g)
    assert boot_until_done(g) == [0]
    shown = comparable(g)
    assert shown["hostname"]["live"] == "web1"
    assert shown["ssh"]["authorized_keys"] == [KEY_A, KEY_B]
    assert shown["userscript"]["service"] == "online"
    return shown, one_shot_counts(g)


def _seed(g) -> None:
    from sim.emulators import cpio
    cpio.lay_out(g.root, SEED)


@pytest.mark.parametrize("crash_at", [
    "after:IDENTITY/hostname", "write-rename:/etc/inet/hosts",
    # The record is written once when keys are added (the superset before the file).
    "write-rename:/root/.ssh/authorized_keys", f"write-mid:{MANAGED_PATH}#1",
    "after:IDENTITY/ssh-keys", "write-mid:/var/metadata/userscript", "after:USERSCRIPT/install",
])
def test_killed_in_identity_or_userscript_resumes_to_the_same_guest(tmp_path, seeded_baseline,
                                                                   crash_at):
    shown, counts = seeded_baseline
    g = crash_guest(tmp_path, "qemu")
    _seed(g)
    codes = boot_until_done(g, crash_at=crash_at)
    assert codes[0] == -9 and codes[-1] == 0, codes
    assert comparable(g) == shown
    assert g.read(MANAGED_PATH) == "".join(
        ln + "\n" for ln in [MANAGED_HEADER.rstrip("\n"), *sorted([KEY_A, KEY_B])])
    got = one_shot_counts(g)
    assert got["svcadm enable"] == counts["svcadm enable"] == 1
    assert got["hostname NAME"] == counts["hostname NAME"] == 1


def test_a_start_resumed_past_network_still_finds_the_leased_hostname(guest):
    link = guest.state()["links"][0]["link"]
    guest.set_state(dhcp={"mode": "answer", "delay_s": 0.0, "leases": {link: {
        "address": "10.0.2.15/24", "router": "10.0.2.2", "dns": ["10.0.2.3"],
        "hostname": "leased-host", "domain": None}}})
    for argv in (["create-if", link], ["create-addr", "-T", "dhcp", "-1", "-w", "10", f"{link}/dhcp"]):
        subprocess.run([guest.path("/usr/sbin/ipadm"), *argv], check=True, capture_output=True)
    set_hostname(context(guest))  # no metadata hostname, no facts: NETWORK did not run now
    assert guest.state()["hostname"] == "leased-host"
    assert guest.read("/etc/nodename") == "leased-host\n"
