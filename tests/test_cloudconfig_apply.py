"""The cloud-config steps, applied to a simulated guest booted by the real agent."""

from __future__ import annotations

import os
import subprocess

import pytest
from guest import make_guest
from test_cloudconfig_parse import HASH, KEY

KEY2 = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDupwlf23WaiaILkKysovd4TyyDthpgCTjassDiHWFd4 "
        "deploy@pve")

USER_DATA = f"""#cloud-config
hostname: cc-host
ssh_authorized_keys:
  - {KEY}
users:
  - default
  - name: root
    ssh_authorized_keys: [{KEY2}]
  - name: alice
    gecos: Alice Admin
    shell: /usr/bin/bash
    groups: [staff, wheel]
    profiles: [Primary Administrator]
    lock_passwd: false
    passwd: '{HASH}'
    ssh_authorized_keys: [{KEY2}]
  - name: bob
groups:
  - devs: [alice]
chpasswd:
  expire: false
  users:
    - {{name: bob, password: bob-plain-secret, type: text}}
ssh_pwauth: true
timezone: Europe/Berlin
write_files:
  - path: /etc/motd
    content: hello from cloud-config
    owner: alice:staff
    permissions: '0640'
  - path: /opt/app/conf.d/a.conf
    encoding: b64
    content: YT0xCg==
runcmd:
  - [touch, /var/tmp/runcmd-ran]
bootcmd:
  - echo booted >> var/tmp/bootcmd.log
packages: [developer/versioning/git]
"""


def nocloud(tmp_path, user_data: str = USER_DATA, name: str = "guest", **meta):
    metadata = {"meta-data": {"instance-id": "iid-cc-1", **meta}, "user-data": user_data}
    return make_guest(tmp_path, "nocloud", metadata, name=name)


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    g = nocloud(tmp_path_factory.mktemp("cc"))
    os.makedirs(g.path("/var/tmp"), exist_ok=True)
    proc = g.run()
    return g, proc


def test_boots_to_done_with_warnings_only_for_default(booted):
    g, proc = booted
    assert proc.returncode == 0, proc.stderr
    cp = g.checkpoint()
    assert cp.phase == "DONE"
    messages = [w["message"] for w in cp.warnings]
    assert any("`default` is listed" in m for m in messages), messages
    assert "bob-plain-secret" not in proc.stderr + repr(messages)
    assert "bob-plain-secret" not in open(g.path("/var/metadata/state.msgpack"), "rb").read().decode("latin-1")


def test_named_users_created_with_keys_rbac_and_shadow(booted):
    g, _ = booted
    users = g.show()["users"]
    alice = users["alice"]
    assert alice["uid"] >= 100 and alice["home"] == "/export/home/alice"
    assert alice["shell"] == "/usr/bin/bash" and alice["gecos"] == "Alice Admin"
    assert alice["groups"] == ["devs", "staff", "wheel"]
    assert "profiles=Primary Administrator" in alice["user_attr"]
    assert alice["ssh"]["authorized_keys"] == [KEY2]
    assert alice["ssh"]["dir"]["mode"] == "0700" and alice["ssh"]["file"]["mode"] == "0600"
    assert alice["ssh"]["file"]["owner"] == f"{alice['uid']}:{alice['gid']}"
    shadow = g.read("/etc/shadow")
    assert f"alice:{HASH}:" in shadow
    bob = [ln for ln in shadow.splitlines() if ln.startswith("bob:")][0].split(":")
    assert bob[1].startswith("$6$") and bob[2] != "0"          # hashed, not expired
    assert users["bob"]["ssh"]["authorized_keys"] == []


def test_root_gets_top_level_and_its_own_keys(booted):
    g, _ = booted
    keys = g.show()["ssh"]["authorized_keys"]
    assert KEY in keys and KEY2 in keys


def test_sshd_timezone_files_runcmd_bootcmd_packages(booted):
    g, _ = booted
    assert "PasswordAuthentication yes" in g.read("/etc/ssh/sshd_config").splitlines()
    assert g.state()["services"]["svc:/network/ssh:default"].get("refreshes") == 1
    assert "TZ=Europe/Berlin" in g.read("/etc/default/init").splitlines()
    assert g.read("/etc/motd") == "hello from cloud-config"
    st = os.stat(g.path("/etc/motd"))
    assert oct(st.st_mode & 0o777) == "0o640"
    assert g.read("/opt/app/conf.d/a.conf") == "a=1\n"
    assert g.read("/var/metadata/runcmd") == "#!/bin/sh\ntouch /var/tmp/runcmd-ran\n"
    assert g.state()["services"]["svc:/system/illumos/userscript:default"]["enabled"]
    assert g.read("/var/tmp/bootcmd.log") == "booted\n"
    assert "developer/versioning/git" in g.show()["packages"]


def test_second_boot_repeats_only_bootcmd(booted):
    g, _ = booted
    before = g.show()
    proc = g.run()
    assert proc.returncode == 0, proc.stderr
    after = g.show()
    assert after["users"] == before["users"]
    assert g.read("/var/tmp/bootcmd.log") == "booted\nbooted\n"
    assert after["calls"].get("useradd") == before["calls"].get("useradd") == 2


def test_userscript_method_runs_runcmd_once(booted, tmp_path):
    g, _ = booted
    marker = g.path("/var/tmp/runcmd-ran-here")
    g.write("/var/metadata/runcmd", f"#!/bin/sh\necho x >> '{marker}'\n", mode=0o700)
    env = {"PATH": os.environ["PATH"], "METADATA_ROOT": g.root,
           "SMF_FMRI": "svc:/system/illumos/userscript:default"}
    for _ in range(2):
        proc = subprocess.run(["sh", g.path("/usr/lib/userscript.sh")], env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
    assert open(marker).read() == "x\n"
    assert g.read("/var/metadata/runcmd.done").strip()


def test_a_kill_between_useradd_and_shadow_still_unlocks_the_user(tmp_path):
    """useradd leaves `*LK*` (no key login on illumos); the step's intent names the users it
    is creating, so the resumed run gives carol `NP` although she then already exists."""
    from crashkit import kill_while_blocked, resume_until_done

    g = nocloud(tmp_path, f"#cloud-config\nusers:\n  - name: carol\n"
                          f"    ssh_authorized_keys: ['{KEY}']\n")
    codes = resume_until_done(g, [kill_while_blocked(g, "useradd", after_effect=True)])
    assert codes[0] == -9 and codes[-1] == 0, codes
    carol = g.show()["users"]["carol"]
    assert carol["password"] == "NP"
    assert carol["ssh"]["authorized_keys"] == [KEY]
    assert g.calls()["useradd"] == 1


def test_runcmd_records_are_per_instance_and_survive_a_lost_checkpoint(tmp_path):
    """runcmd's records are keyed like the first-boot script's (`<sha256>/<instance tag>`):
    USERSCRIPT/runcmd running again for the same instance (its checkpoint lost) keeps this
    instance's done record, so runcmd does not run twice; a new instance's removes it.
    Before the merge with the instance-keyed method, every run of the step removed them."""
    from fsm.checkpoint import Checkpoint
    from fsm.settings import Settings
    from fsm.steps import Context
    from fsm.system import System
    from operations.cloudcmds import RUNCMD_RECORDS, install_runcmd
    from providers.cloudconfig_model import CloudConfig
    from providers.model import Metadata

    g = make_guest(tmp_path, "qemu")
    marker = str(tmp_path / "runcmd-ran-here")
    cc = CloudConfig(runcmd=(f"echo x >> '{marker}'",))
    env = {"PATH": os.environ["PATH"], "METADATA_ROOT": g.root,
           "SMF_FMRI": "svc:/system/illumos/userscript:default"}

    def start(instance_id: str) -> None:
        """A start with no checkpoint: USERSCRIPT/runcmd, then the userscript method."""
        md = Metadata(source="test", instance_id=instance_id, cloud_config=cc)
        ctx = Context(system=System(g.root), settings=Settings(),
                      checkpoint=Checkpoint(instance_id=instance_id), metadata=md)
        install_runcmd(ctx)
        proc = subprocess.run(["sh", g.path("/usr/lib/userscript.sh")], env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr

    start("i-1")
    assert g.read("/var/metadata/runcmd.done").strip().endswith("/i-1")
    start("i-1")
    assert open(marker).read() == "x\n"
    start("i-2")
    assert open(marker).read() == "x\nx\n"
    assert g.read("/var/metadata/runcmd.done").strip().endswith("/i-2")
    assert not os.path.exists(g.path(RUNCMD_RECORDS[2]))
