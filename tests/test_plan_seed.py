"""`metadata plan --seed FILE`: a throwaway simulated QEMU guest boots with the seed attached
and the plan shows hostname, addresses, key fingerprints, swap and script; nothing of the
host changes and the guest is gone afterwards."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fsm.errors import SMF_EXIT_ERR_CONFIG
from fsm.seed.fingerprint import fingerprint
from tests.guest import PROJECT_DIR

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBW76c9qHq4UK/Q6SSmCMzv9+IDZVDLsl0e67D40grsN admin@seed"
QEMU_MAC = "52:54:00:12:34:56"     # the first link of sim/hardware.py's qemu guest


def metadata(tmp_path, *args: str, python_args: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """The CLI with TMPDIR inside the test's directory, so leftovers can be seen."""
    scratch = tmp_path / "tmpdir"
    scratch.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": PROJECT_DIR, "TMPDIR": str(scratch)}
    return subprocess.run([sys.executable, *python_args, "-m", "fsm", *args], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "keys").write_text(KEY + "\n")
    (tmp_path / "first.sh").write_text("#!/bin/ksh\necho once\n")
    return tmp_path


def test_plan_of_a_cpio_seed(inputs):
    tmp_path = inputs
    r = metadata(tmp_path, "seed", "cpio", "-o", "seed.img", "--hostname", "web-1.example.com",
                 "--authorized-keys", "keys", "--firstboot", "first.sh")
    assert r.returncode == 0, r.stderr
    before = sorted(p.name for p in tmp_path.iterdir())
    r = metadata(tmp_path, "plan", "--seed", "seed.img")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert out.startswith("seed: seed.img (image, 8192 bytes) attached as the seed disk "
                          "c2t0d0 of a simulated qemu guest\n")
    assert "platform: cpio;" in out
    assert "  hostname:      web-1.example.com  (nodename)" in out
    assert f"                 {fingerprint(KEY)}" in out
    assert "  user script:   21 bytes, interpreter /bin/ksh  (firstboot.sh)" in out
    assert "run: /usr/bin/hostname web-1" in out
    assert "swap activated on /dev/zvol/dsk/rpool/swap" in out
    assert "/var/metadata/userscript installed (21 bytes" in out
    # Nothing of the host changed, and the throwaway guest is gone.
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert list((tmp_path / "tmpdir").iterdir()) == []


def test_plan_of_a_nocloud_directory_shows_its_static_address(tmp_path):
    seed = tmp_path / "nocloud"
    seed.mkdir()
    (seed / "meta-data").write_text(f"instance-id: iid-plan\nlocal-hostname: static-1\n"
                                    f"public-keys: [\"{KEY}\"]\n")
    (seed / "network-config").write_text(
        "version: 2\nethernets:\n  net0:\n"
        f"    match: {{macaddress: \"{QEMU_MAC}\"}}\n"
        "    addresses: [192.168.122.50/24]\n    gateway4: 192.168.122.1\n")
    r = metadata(tmp_path, "plan", "--seed", str(seed))
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "(NoCloud ISO made from the directory," in out
    assert "platform: nocloud; instance: iid-plan" in out
    assert (f"  network:       net0 {QEMU_MAC} [primary]: 192.168.122.50/24, gateway "
            "192.168.122.1  (network-config)") in out
    assert "192.168.122.50/24" in out.split("\nNETWORK\n", 1)[1]
    assert "  hostname:      static-1  (meta-data local-hostname)" in out


def test_a_seed_the_agent_refuses_fails_the_plan_with_its_message(tmp_path):
    (tmp_path / "seed").mkdir()
    (tmp_path / "seed" / "config.toml").write_text("[network]\nskip = \"yes\"\n")
    r = metadata(tmp_path, "plan", "--seed", "seed")
    assert r.returncode == SMF_EXIT_ERR_CONFIG
    assert "cpio config.toml: network.skip: must be a bool (true or false)" in r.stderr
    assert list((tmp_path / "tmpdir").iterdir()) == []


def test_seed_and_root_together_are_refused(tmp_path):
    (tmp_path / "s.img").write_bytes(b"")
    r = metadata(tmp_path, "plan", "--seed", "s.img", "--root", str(tmp_path))
    assert r.returncode == SMF_EXIT_ERR_CONFIG and "does not take --root" in r.stderr


def test_without_sim_the_message_says_what_to_do(tmp_path):
    """The zipapp ships no sim/: the import fails, and the user is told so."""
    (tmp_path / "s.img").write_bytes(b"")
    hide_sim = ("import sys; sys.modules['sim'] = None; from fsm.cli import main; "
                "sys.exit(main(['plan', '--seed', 's.img']))")
    r = subprocess.run([sys.executable, "-c", hide_sim], cwd=tmp_path, capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": PROJECT_DIR}, timeout=60)
    assert r.returncode == SMF_EXIT_ERR_CONFIG
    assert "needs the simulated guest (the sim/ package)" in r.stderr
    assert "metadata seed inspect" in r.stderr
