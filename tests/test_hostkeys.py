"""IDENTITY/host-keys on the simulated guest: a new instance gets SSH host keys of its own
before ssh starts, a false "new instance" (a lost checkpoint) never rotates them, the
setting turns it off, and the fingerprints reach the log and `metadata status`."""

from __future__ import annotations

import json
import os

from crashkit import boot_until_done
from guest import make_guest

from fsm.checkpoint import CHECKPOINT_PATH, encode
from operations import hostkeys
from sim import hostkeys as image_keys
from sim import state as sim_state

NEW_UUID = "0C0FFEE0-1111-4222-8333-444455556666"


def host_keys(g) -> dict[str, str]:
    return g.show()["ssh"]["host_keys"]


def test_a_first_boot_replaces_the_images_host_keys_and_records_the_instance(tmp_path):
    g = make_guest(tmp_path, "qemu")
    assert host_keys(g) == image_keys.IMAGE_FINGERPRINTS
    proc = g.run()
    assert proc.returncode == 0, proc.stdout[-2000:]
    keys = host_keys(g)
    assert set(keys) == {"rsa", "ecdsa", "ed25519"}
    assert not set(keys.values()) & set(image_keys.IMAGE_FINGERPRINTS.values())
    iid = g.checkpoint().instance_id
    assert g.show()["ssh"]["host_keys_for"] == iid
    assert oct(os.stat(g.path("/etc/ssh/ssh_host_ed25519_key")).st_mode & 0o777) == "0o600"
    for key_type, fp in keys.items():   # published in the service log
        assert f"host key {key_type} {fp}" in proc.stdout
    rec = g.checkpoint().instances[iid]["IDENTITY/host-keys"]
    assert rec["status"] == "done" and rec["record"]["fingerprints"] == keys
    assert rec["intent"]["fingerprints_before"] == sorted(image_keys.IMAGE_FINGERPRINTS.values())
    status = json.loads(g.metadata("status", "--json").stdout)
    assert status["host_keys"] == keys
    assert g.calls().get("ssh-keygen") == 1


def test_a_lost_checkpoint_of_the_same_instance_never_rotates_the_keys(tmp_path):
    g = make_guest(tmp_path, "qemu")
    assert g.run().returncode == 0
    first = host_keys(g)
    assert g.metadata("reset").returncode == 0
    os.remove(g.path(CHECKPOINT_PATH + ".prev")) if os.path.exists(
        g.path(CHECKPOINT_PATH + ".prev")) else None
    proc = g.run()
    assert proc.returncode == 0
    assert host_keys(g) == first
    assert "made for this instance" in proc.stdout
    assert g.calls().get("ssh-keygen") == 1


def test_a_new_instance_from_the_same_disk_gets_new_keys_again(tmp_path):
    g = make_guest(tmp_path, "qemu")
    assert g.run().returncode == 0
    first = host_keys(g)
    with sim_state.locked(g.root) as st:
        st["smbios"]["uuid"] = NEW_UUID
    assert g.run().returncode == 0
    second = host_keys(g)
    assert set(second) == set(first) and not set(second.values()) & set(first.values())
    assert g.show()["ssh"]["host_keys_for"] == NEW_UUID.lower()


def test_regenerate_host_keys_false_keeps_the_images_keys(tmp_path):
    g = make_guest(tmp_path, "qemu")
    g.write("/etc/metadata-agent.toml", "[ssh]\nregenerate_host_keys = false\n")
    assert g.run().returncode == 0
    assert host_keys(g) == image_keys.IMAGE_FINGERPRINTS
    assert g.show()["ssh"]["host_keys_for"] is None
    assert "ssh-keygen" not in g.calls()


def test_the_setting_must_be_a_boolean(tmp_path):
    g = make_guest(tmp_path, "qemu")
    g.write("/etc/metadata-agent.toml", "[ssh]\nregenerate_host_keys = \"no\"\n")
    proc = g.run()
    assert proc.returncode == 96
    assert "ssh.regenerate_host_keys" in proc.stdout
    assert host_keys(g) == image_keys.IMAGE_FINGERPRINTS


def test_an_instance_booted_before_the_step_existed_keeps_its_keys(tmp_path):
    """An agent upgraded on a running instance: no record beside the keys, but the
    checkpoint knows this instance from an earlier boot. The keys are its own: kept."""
    g = make_guest(tmp_path, "qemu")
    g.write("/etc/metadata-agent.toml", "[ssh]\nregenerate_host_keys = false\n")
    assert g.run().returncode == 0
    cp = g.checkpoint()
    for records in cp.instances.values():
        records.pop("IDENTITY/host-keys", None)   # as an older agent left it
    with open(g.path(CHECKPOINT_PATH), "wb") as f:
        f.write(encode(cp))
    os.remove(g.path("/etc/metadata-agent.toml"))
    proc = g.run()
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert host_keys(g) == image_keys.IMAGE_FINGERPRINTS
    assert g.show()["ssh"]["host_keys_for"] == cp.instance_id


def test_without_ssh_keygen_the_keys_are_removed_with_a_warning(tmp_path):
    """sshd's start method makes missing keys (`ssh-keygen -A` on OmniOS, OpenIndiana and
    Tribblix): removing the image's is what matters."""
    g = make_guest(tmp_path, "qemu")
    os.remove(g.path(hostkeys.SSH_KEYGEN))
    proc = g.run()
    assert proc.returncode == 0
    assert host_keys(g) == {}
    assert not [n for n in os.listdir(g.path("/etc/ssh")) if n.startswith("ssh_host_")]
    warnings = [w["message"] for w in g.checkpoint().warnings]
    assert any("ssh-keygen is missing" in w for w in warnings), warnings


def test_no_instance_id_changes_nothing(tmp_path):
    g = make_guest(tmp_path, "none")    # no metadata, no SMBIOS: no instance id
    codes = boot_until_done(g)
    assert codes[-1] == 0
    assert g.checkpoint().instance_id is None
    assert host_keys(g) == image_keys.IMAGE_FINGERPRINTS
    assert "ssh-keygen" not in g.calls()


def test_a_symlinked_etc_ssh_is_refused(tmp_path):
    g = make_guest(tmp_path, "qemu")
    elsewhere = tmp_path / "elsewhere"
    os.rename(g.path("/etc/ssh"), elsewhere)
    os.symlink(str(elsewhere), g.path("/etc/ssh"))
    proc = g.run()
    assert proc.returncode == 95
    # What the image has there (its host keys and sshd_config), nothing removed or added.
    assert sorted(os.listdir(elsewhere)) == sorted(
        [f"ssh_host_{t}_key{s}" for t in ("rsa", "ecdsa", "ed25519") for s in ("", ".pub")]
        + ["sshd_config"])


def test_ssh_keygen_standin_follows_ssh_keygen_A(tmp_path):
    g = make_guest(tmp_path, "qemu")
    for name in os.listdir(g.path("/etc/ssh")):
        if name.startswith("ssh_host_ed25519"):
            os.remove(g.path(f"/etc/ssh/{name}"))
    import subprocess
    run = subprocess.run([g.path(hostkeys.SSH_KEYGEN), "-A"], capture_output=True, text=True)
    assert run.returncode == 0
    assert run.stdout == "ssh-keygen: generating new host keys: ED25519 \n"
    again = subprocess.run([g.path(hostkeys.SSH_KEYGEN), "-A"], capture_output=True, text=True)
    assert (again.returncode, again.stdout) == (0, "")
    listed = subprocess.run([g.path(hostkeys.SSH_KEYGEN), "-l", "-f",
                             "/etc/ssh/ssh_host_ed25519_key.pub"], capture_output=True, text=True)
    assert listed.stdout.startswith("256 SHA256:") and listed.stdout.endswith("(ED25519)\n")
    assert listed.stdout.split()[1] == host_keys(g)["ed25519"]
    bad = subprocess.run([g.path(hostkeys.SSH_KEYGEN), "-Z"], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("usage: ssh-keygen")


def test_fingerprint_matches_openssh(tmp_path):
    """Our fingerprint of a .pub line is ssh-keygen -l's (the real one, on the host)."""
    import shutil
    import subprocess

    import pytest
    if not shutil.which("ssh-keygen"):
        pytest.skip("ssh-keygen is not installed (apt-get install openssh-client)")
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    line = (tmp_path / "k.pub").read_text()
    real = subprocess.run(["ssh-keygen", "-l", "-f", str(key) + ".pub"], capture_output=True,
                          text=True, check=True).stdout.split()[1]
    assert hostkeys.fingerprint_of(line) == real


def test_killed_after_making_the_keys_the_restart_keeps_them(tmp_path):
    """A power cut after `ssh-keygen -A`, before the record: the new keys were never
    served (ssh starts after the agent), so the restart keeps them rather than making a
    third set, and records them."""
    from crashkit import crash_guest, kill_while_blocked, resume_until_done

    g = crash_guest(tmp_path, "qemu")
    assert kill_while_blocked(g, "ssh-keygen", after_effect=True) == -9
    made = host_keys(g)
    assert made and not set(made.values()) & set(image_keys.IMAGE_FINGERPRINTS.values())
    codes = resume_until_done(g, [-9])
    assert codes[-1] == 0
    assert host_keys(g) == made
    assert g.show()["ssh"]["host_keys_for"] == g.checkpoint().instance_id


def test_a_failing_ssh_keygen_is_a_warning_not_a_held_boot(tmp_path):
    g = make_guest(tmp_path, "qemu")
    with sim_state.locked(g.root) as st:
        st["faults"] = {"fail": {"ssh-keygen": "ssh-keygen: out of entropy"}}
    proc = g.run()
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert host_keys(g) == {}     # the image's are gone; sshd's method makes new ones
    assert any("out of entropy" in w["message"] for w in g.checkpoint().warnings)
    assert g.show()["ssh"]["host_keys_for"] == g.checkpoint().instance_id


def test_a_guest_without_ssh_is_left_alone(tmp_path):
    import shutil

    g = make_guest(tmp_path, "qemu")
    shutil.rmtree(g.path("/etc/ssh"))
    assert g.run().returncode == 0
    assert not os.path.exists(g.path("/etc/ssh"))
    assert "ssh-keygen" not in g.calls()
