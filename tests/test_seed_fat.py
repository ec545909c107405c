"""`metadata seed nocloud -f vfat`: a FAT `cidata` volume (as `cloud-localds -f vfat` makes it)
that mtools and fsck.fat accept, `seed inspect` reads, and the agent applies in a booted
simulated guest; a failure writes nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from fsm.errors import SMF_EXIT_ERR_CONFIG
from operations.passhash import sha512_crypt
from sim.emulators import nocloud as nocloud_emulator
from tests.guest import PROJECT_DIR, make_guest

pytestmark = pytest.mark.skipif(
    shutil.which("mcopy") is None or not any(
        os.path.exists(os.path.join(d, "fsck.fat")) for d in ("/usr/sbin", "/sbin")),
    reason="mtools and dosfstools are not installed")

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMoGdtovFc12Wy/u7HbSjCuUa/smTUJyBouwKcRA6h0+ one"
HASH = sha512_crypt(b"fat-secret", "Fat16SaltAbc")
NETWORK_CONFIG = """\
version: 2
ethernets:
  net0:
    match: {macaddress: "52:54:00:12:34:56"}
    addresses: [192.168.122.60/24]
    gateway4: 192.168.122.1
    nameservers: {addresses: [192.168.122.1]}
"""
MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}


def metadata(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": PROJECT_DIR, **(env or {})}
    return subprocess.run([sys.executable, "-m", "fsm", *args], capture_output=True,
                          text=True, env=full_env, timeout=120)


def build(tmp_path, out, env=None) -> subprocess.CompletedProcess:
    (tmp_path / "keys").write_text(f"{KEY}\n")
    (tmp_path / "hash").write_text(HASH + "\n")
    (tmp_path / "network-config").write_text(NETWORK_CONFIG)
    return metadata("seed", "nocloud", "-f", "vfat", "-o", str(out), "--instance-id",
                    "iid-fat-1", "--hostname", "fat-1", "--authorized-keys",
                    str(tmp_path / "keys"), "--user", "ops", "--password-hash-file",
                    str(tmp_path / "hash"), "--network-config",
                    str(tmp_path / "network-config"), env=env)


@pytest.fixture
def seed(tmp_path):
    out = tmp_path / "seed.img"
    r = build(tmp_path, out)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and f"wrote {out}" in r.stdout
    return out


def test_mtools_and_fsck_fat_read_the_volume(seed, tmp_path):
    fsck = subprocess.run([shutil.which("fsck.fat") or "/usr/sbin/fsck.fat", "-n", str(seed)],
                          capture_output=True, text=True, timeout=60)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    listing = subprocess.run(["mdir", "-i", str(seed), "::/"], capture_output=True, text=True,
                             env=MTOOLS_ENV, timeout=60, check=True).stdout
    assert "Volume in drive : is cidata" in listing
    names = subprocess.run(["mdir", "-b", "-i", str(seed), "::/"], capture_output=True,
                           text=True, env=MTOOLS_ENV, timeout=60, check=True).stdout.split()
    assert sorted(n.rsplit("/", 1)[1] for n in names) == \
        ["meta-data", "network-config", "user-data"]

    def mtype(name: str) -> str:
        return subprocess.run(["mtype", "-i", str(seed), f"::/{name}"], capture_output=True,
                              text=True, env=MTOOLS_ENV, timeout=60, check=True).stdout

    assert yaml.safe_load(mtype("meta-data")) == {
        "instance-id": "iid-fat-1", "local-hostname": "fat-1", "public-keys": [KEY]}
    assert mtype("network-config") == NETWORK_CONFIG
    user_data = yaml.safe_load(mtype("user-data"))
    assert user_data["password"] == HASH
    assert user_data["users"][0]["name"] == "ops" and user_data["users"][0]["passwd"] == HASH
    # Reproducible: the same inputs, another time zone, the same bytes.
    again = tmp_path / "again.img"
    assert build(tmp_path, again, env={"TZ": "Asia/Tokyo"}).returncode == 0
    assert again.read_bytes() == seed.read_bytes()


def test_seed_inspect_reads_the_fat_volume(seed):
    r = metadata("seed", "inspect", str(seed))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "(pcfs) volume 'cidata'" in r.stdout.splitlines()[0]
    assert "fat-1" in r.stdout and "iid-fat-1" in r.stdout
    assert "users: ops: created if missing (profiles Primary Administrator; 1 key(s); " \
        "password a $6$ hash)" in r.stdout


def test_the_agent_applies_the_fat_seed_in_a_booted_guest(seed, tmp_path):
    guest = make_guest(tmp_path, "qemu")
    disk = nocloud_emulator.seed_disk("qemu")
    for kind in ("dsk", "rdsk"):
        os.truncate(guest.path(f"/dev/{kind}/{disk}p0"), 0)
    nocloud_emulator.attach_volume(guest.root, disk, seed.read_bytes())
    r = guest.run()
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"NoCloud volume 'cidata' (pcfs) on /dev/dsk/{disk}p0" in r.stdout + r.stderr
    shown = guest.show()
    assert guest.checkpoint().instance_id == "iid-fat-1"
    assert shown["hostname"]["nodename"] == "fat-1"
    assert shown["ssh"]["authorized_keys"] == [KEY]
    assert shown["users"]["ops"]["ssh"]["authorized_keys"] == [KEY]
    shadow = {ln.split(":")[0]: ln.split(":")[1] for ln in guest.read("/etc/shadow").splitlines()}
    assert shadow["root"] == HASH and shadow["ops"] == HASH
    assert [a["addr"] for a in shown["addresses"]] == ["192.168.122.60/24"]


def test_a_missing_tool_writes_nothing_and_keeps_the_old_image(tmp_path):
    out = tmp_path / "seed.img"
    out.write_bytes(b"the previous image")
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    # mkfs.fat is still found in /usr/sbin or /sbin; mcopy (in /usr/bin) is not.
    r = build(tmp_path, out, env={"PATH": str(empty_bin)})
    assert r.returncode == SMF_EXIT_ERR_CONFIG
    assert "mcopy is needed to make a FAT volume" in r.stderr
    assert f"nothing written to {out}" in r.stderr
    assert out.read_bytes() == b"the previous image"
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        ["bin", "hash", "keys", "network-config", "seed.img"]
