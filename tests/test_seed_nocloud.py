"""`metadata seed nocloud`: ISO 9660 volumes read by isoinfo (genisoimage) and by the agent on a
simulated QEMU guest; seeds made by cloud-localds read by the agent and `seed inspect`."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from fsm.errors import SMF_EXIT_ERR_CONFIG
from fsm.seed.isoreader import read_volume
from providers.iso9660 import iso_image
from providers.nocloud import parse_seed
from sim.emulators import nocloud as nocloud_emulator
from tests.guest import PROJECT_DIR, make_guest

needs_isoinfo = pytest.mark.skipif(shutil.which("isoinfo") is None,
                                   reason="isoinfo (Debian genisoimage) not installed")

KEY1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMoGdtovFc12Wy/u7HbSjCuUa/smTUJyBouwKcRA6h0+ one"
KEY2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr7WwgAI1R6Mm7fYzKFKRSO1GMd8qwCLyoEyT8u4lqn two"
USER_DATA = b"#!/bin/sh\necho 'first boot on nocloud' > /var/tmp/firstboot.txt\n"
NETWORK_CONFIG = """\
version: 2
ethernets:
  net0:
    match: {macaddress: "52:54:00:12:34:56"}
    addresses: [192.168.122.50/24]
    gateway4: 192.168.122.1
    nameservers: {addresses: [192.168.122.1], search: [lab.example]}
"""


def metadata(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": PROJECT_DIR, **(env or {})}
    return subprocess.run([sys.executable, "-m", "fsm", *args], capture_output=True,
                          text=True, env=full_env, timeout=60)


def attach(root: str, image: bytes) -> None:
    """The volume at offset 0 of the QEMU guest's seed disk, replacing its CPIO seed."""
    disk = nocloud_emulator.seed_disk("qemu")
    for kind in ("dsk", "rdsk"):
        os.truncate(os.path.join(root, "dev", kind, f"{disk}p0"), 0)
    nocloud_emulator.attach_volume(root, disk, image)


def isoinfo(*args: str) -> str:
    return subprocess.run(["isoinfo", *args], capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture
def seed(tmp_path):
    (tmp_path / "keys").write_text(f"{KEY1}\n# spare\n{KEY2}\n")
    (tmp_path / "user-data").write_bytes(USER_DATA)
    (tmp_path / "network-config").write_text(NETWORK_CONFIG)
    out = tmp_path / "seed.iso"
    r = metadata("seed", "nocloud", "-o", str(out), "--instance-id", "iid-web-1",
                 "--hostname", "web-1", "--authorized-keys", str(tmp_path / "keys"),
                 "--user-data", str(tmp_path / "user-data"),
                 "--network-config", str(tmp_path / "network-config"))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return out


@needs_isoinfo
def test_isoinfo_sees_a_cidata_volume_with_rock_ridge_and_joliet(seed):
    described = isoinfo("-d", "-i", str(seed))
    assert "Volume id: cidata\n" in described
    assert "Rock Ridge signatures version 1 found" in described
    assert "Joliet with UCS level 3 found" in described
    for tree in ("-R", "-J"):
        listing = isoinfo(tree, "-l", "-i", str(seed))
        names = [line.split()[-1] for line in listing.splitlines() if line.startswith("-")]
        assert names == ["meta-data", "network-config", "user-data"], listing
    plain = isoinfo("-l", "-i", str(seed))
    assert "META_DAT.;1" in plain and "USER_DAT.;1" in plain
    assert isoinfo("-R", "-x", "/user-data", "-i", str(seed)).encode() == USER_DATA
    assert isoinfo("-J", "-x", "/network-config", "-i", str(seed)) == NETWORK_CONFIG
    meta = yaml.safe_load(isoinfo("-R", "-x", "/meta-data", "-i", str(seed)))
    assert meta == {"instance-id": "iid-web-1", "local-hostname": "web-1",
                    "public-keys": [KEY1, KEY2]}


def test_the_agent_parser_reads_what_we_wrote_and_bytes_are_reproducible(seed, tmp_path):
    volume = read_volume(seed.read_bytes())
    files = {name: volume.read(name) for name in volume.entries}
    md = parse_seed(files)
    assert (md.instance_id, md.hostname, md.ssh_keys) == ("iid-web-1", "web-1", (KEY1, KEY2))
    assert md.nics[0].addresses == ("192.168.122.50/24",) and md.user_script == USER_DATA
    again = tmp_path / "again.iso"
    r = metadata("seed", "nocloud", "-o", str(again), "--instance-id", "iid-web-1",
                 "--hostname", "web-1", "--authorized-keys", str(tmp_path / "keys"),
                 "--user-data", str(tmp_path / "user-data"),
                 "--network-config", str(tmp_path / "network-config"))
    assert r.returncode == 0 and again.read_bytes() == seed.read_bytes()


def test_the_agent_applies_a_built_nocloud_seed(seed, tmp_path):
    guest = make_guest(tmp_path, "qemu")
    attach(guest.root, seed.read_bytes())
    r = guest.run()
    assert r.returncode == 0, r.stdout + r.stderr
    shown = guest.show()
    assert shown["hostname"]["nodename"] == "web-1"
    assert shown["ssh"]["authorized_keys"] == [KEY1, KEY2]
    assert [a["addr"] for a in shown["addresses"]] == ["192.168.122.50/24"]
    assert shown["dns"]["search"] == ["lab.example"]
    assert shown["dns"]["nameservers"] == ["192.168.122.1"]
    assert guest.checkpoint().instance_id == "iid-web-1"


def _cloud_localds(tmp_path, user_data: str, meta_data: str) -> bytes:
    """A seed as cloud-localds makes it; without it, genisoimage exactly as it calls it."""
    work = tmp_path / "localds"
    work.mkdir()
    (work / "user-data").write_text(user_data)
    (work / "meta-data").write_text(meta_data)
    out = work / "seed.img"
    if shutil.which("cloud-localds"):
        subprocess.run(["cloud-localds", str(out), str(work / "user-data"),
                        str(work / "meta-data")], check=True, capture_output=True)
    elif shutil.which("genisoimage"):
        subprocess.run(["genisoimage", "-output", str(out), "-volid", "cidata", "-joliet",
                        "-rock", "user-data", "meta-data"], cwd=work, check=True,
                       capture_output=True)
    else:
        pytest.skip("neither cloud-localds nor genisoimage is installed")
    return out.read_bytes()


def test_a_cloud_localds_seed_is_read_by_inspect_and_by_the_agent(tmp_path):
    image = _cloud_localds(tmp_path, USER_DATA.decode(),
                           f"instance-id: iid-localds\nlocal-hostname: localds-1\n"
                           f"public-keys:\n  - {KEY1}\n")
    path = tmp_path / "localds.img"
    path.write_bytes(image)
    r = metadata("seed", "inspect", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ISO 9660 volume 'cidata', Rock Ridge names" in r.stdout
    assert "hostname:      localds-1  (meta-data local-hostname)" in r.stdout
    assert "instance id:   iid-localds" in r.stdout
    guest = make_guest(tmp_path, "qemu")
    attach(guest.root, image)
    run = guest.run()
    assert run.returncode == 0, run.stdout + run.stderr
    shown = guest.show()
    assert shown["hostname"]["nodename"] == "localds-1"
    assert shown["ssh"]["authorized_keys"] == [KEY1]
    assert shown["userscript"]["file"]["sha256"] == hashlib.sha256(USER_DATA).hexdigest()


@pytest.mark.parametrize("args,files,expected", [
    (["--hostname", "web_1"], {}, "nocloud: meta-data local-hostname: hostname 'web_1' "
                                  "contains '_' at position 3"),
    (["--authorized-keys", "keys"], {"keys": "ssh-ed25519 AAAA x\n"},
     "nocloud:meta-data public-keys: line 1: key data is truncated; line skipped"),
    (["--network-config", "nc"], {"nc": "version: 3\n"},
     "nocloud: network-config version: must be 1 or 2, not 3"),
    (["--network-config", "nc"], {"nc": "version: 2\nethernets: {e: {addresses: [10.0.0.1]}}\n"},
     "'10.0.0.1' has no prefix length"),
    (["--user-data", "ud"], {"ud": "#!/bin/sh\r\necho\r\n"},
     "nocloud: user-data: user script's #! line ends with CR-LF"),
])
def test_bad_inputs_are_refused_with_the_agent_messages(tmp_path, args, files, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    out = tmp_path / "bad.iso"
    r = metadata("seed", "nocloud", "-o", str(out),
                 *[str(tmp_path / a) if a in files else a for a in args])
    assert r.returncode == SMF_EXIT_ERR_CONFIG
    assert expected in r.stderr and not out.exists()


def test_cloud_config_user_data_is_written_and_taken(tmp_path):
    (tmp_path / "ud").write_text("#cloud-config\npackages: [vim]\nsnap: {}\n")
    out = tmp_path / "cc.iso"
    r = metadata("seed", "nocloud", "-o", str(out), "--user-data", str(tmp_path / "ud"))
    assert r.returncode == 0
    # cloud-config is applied now: only the module the agent does not apply is a warning.
    assert r.stderr == ("metadata: warning: nocloud:user-data: 'snap' is not a cloud-config "
                        "module the agent applies; ignored\n")
    volume = read_volume(out.read_bytes())
    assert volume.read("user-data").startswith(b"#cloud-config")
    assert b'"instance-id": "iid-local01"' in volume.read("meta-data")


def test_writer_refuses_what_a_flat_seed_volume_cannot_hold():
    with pytest.raises(ValueError):
        iso_image("cidata", {"dir/meta-data": b""})
    with pytest.raises(ValueError):
        iso_image("a" * 33, {"meta-data": b""})
