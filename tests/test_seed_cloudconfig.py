"""`metadata seed nocloud --user --password-hash-file` writes #cloud-config; `seed inspect`
shows every cloud-config module and what it would do; a guest booted from it is configured."""

from __future__ import annotations

from guest import make_guest
from test_seed_nocloud import metadata

from fsm.errors import SMF_EXIT_ERR_CONFIG
from sim.emulators import nocloud as nocloud_emulator
from sim.emulators.zoneseed import OPERATOR_KEY, ZONE_HASH


def write_inputs(tmp_path):
    (tmp_path / "keys.pub").write_text(OPERATOR_KEY + "\n")
    (tmp_path / "hash").write_text(ZONE_HASH + "\n")


def test_seed_with_users_and_hash_boots_a_configured_guest(tmp_path):
    write_inputs(tmp_path)
    out = tmp_path / "seed.iso"
    r = metadata("seed", "nocloud", "-o", str(out), "--hostname", "web-2", "--authorized-keys",
                 str(tmp_path / "keys.pub"), "--user", "alice", "--password-hash-file",
                 str(tmp_path / "hash"))
    assert r.returncode == 0, r.stderr
    assert ZONE_HASH not in r.stdout + r.stderr
    shown = metadata("seed", "inspect", str(out))
    assert shown.returncode == 0
    for line in ("modules: disable_root, password, chpasswd, users",
                 "users: alice: created if missing (profiles Primary Administrator; 1 key(s); "
                 "password a $6$ hash)", "password: a $6$ hash, for the default user (or root)",
                 "chpasswd expire: false"):
        assert line in shown.stdout, shown.stdout
    assert ZONE_HASH not in shown.stdout
    g = make_guest(tmp_path, "nocloud", {"meta-data": {"instance-id": "i-1"}})
    nocloud_emulator.attach_volume(g.root, "c2t0d0", out.read_bytes())
    proc = g.run()
    assert proc.returncode == 0, proc.stdout
    users = g.show()["users"]
    assert users["alice"]["ssh"]["authorized_keys"] == [OPERATOR_KEY]
    assert "profiles=Primary Administrator" in users["alice"]["user_attr"]
    shadow = g.read("/etc/shadow")
    assert f"alice:{ZONE_HASH}:" in shadow and f"root:{ZONE_HASH}:" in shadow
    assert g.show()["ssh"]["authorized_keys"] == [OPERATOR_KEY]


def test_seed_refuses_a_bad_hash_or_name_and_writes_nothing(tmp_path):
    (tmp_path / "hash").write_text("plain-password\n")
    out = tmp_path / "seed.iso"
    r = metadata("seed", "nocloud", "-o", str(out), "--user", "bad;name",
                 "--password-hash-file", str(tmp_path / "hash"))
    assert r.returncode == SMF_EXIT_ERR_CONFIG
    assert "not a crypt(3C) hash" in r.stderr and "'bad;name'" in r.stderr
    assert "plain-password" not in r.stderr and not out.exists()
