"""`metadata seed inspect`: seeds made by GNU cpio (every format and byte order), by our
writers, as directories, and broken ones; every problem reported, and the verdict and the
messages are the agent's own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from fsm.errors import SMF_EXIT_ERR_CONFIG
from fsm.seed.fingerprint import fingerprint
from fsm.seed.inspect import NotASeed, inspect_seed
from providers.iso9660 import iso_image
from sim.emulators import cpio as cpio_emulator
from tests.guest import PROJECT_DIR, make_guest

needs_cpio = pytest.mark.skipif(shutil.which("cpio") is None, reason="GNU cpio not installed")

KEY = cpio_emulator.DEFAULT_KEYS[0]
SCRIPT = "#!/bin/sh\necho hi\n"


def metadata(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fsm", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": PROJECT_DIR}, timeout=60)


def gnu_seed(tmp_path, files: dict, fmt: str = "bin", name: str = "seed.img"):
    """A seed image made by the real GNU `cpio -o` (sim/emulators/cpio.py)."""
    path = tmp_path / name
    path.write_bytes(cpio_emulator.make_archive(cpio_emulator.seed_files(files), fmt))
    return path


@needs_cpio
@pytest.mark.parametrize("fmt,shown", [("bin", "bin (little-endian)"), ("bin-swapped",
                                       "bin (big-endian)"), ("odc", "odc"), ("newc", "newc"),
                                       ("crc", "crc")])
def test_gnu_cpio_seeds_in_every_format(tmp_path, fmt, shown):
    path = gnu_seed(tmp_path, {"nodename": "web-1", "authorized_keys": [KEY],
                               "firstboot.sh": SCRIPT}, fmt)
    inspection = inspect_seed(str(path))
    text = inspection.text()
    assert inspection.evaluation.accepted, text
    assert f"CPIO archive, {shown} format" in text
    assert "hostname:      web-1  (nodename)" in text
    assert f"               {fingerprint(KEY)}" in text
    assert "user script:   18 bytes, interpreter /bin/sh  (firstboot.sh)" in text
    assert text.endswith("verdict: the agent would accept this seed\n")


@needs_cpio
def test_cli_prints_field_by_field_and_exits_0(tmp_path):
    path = gnu_seed(tmp_path, {"nodename": "web-1", "config.toml": {"network": {"skip": True}}})
    r = metadata("seed", "inspect", str(path))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"seed:          {path}: CPIO archive, bin (little-endian) format"
    assert lines[1] == "files:         nodename (6 bytes), config.toml (22 bytes)"
    assert "network:       skipped: no interface is configured  (config.toml network.skip)" in lines
    assert "ssh keys:      (none)" in lines and "user script:   (none)" in lines


@needs_cpio
def test_every_problem_at_once_and_exit_96(tmp_path):
    path = gnu_seed(tmp_path, {"nodename": "bad_name", "firstboot.sh": "echo no\n",
                               "config.toml": "[network]\nskip = \"yes\"\nmtu = 1\n",
                               "authorized_keys": [KEY, "ssh-ed25519 AAAA broken"]})
    r = metadata("seed", "inspect", str(path))
    assert r.returncode == SMF_EXIT_ERR_CONFIG
    problems = [ln for ln in r.stdout.splitlines() if ln.startswith("problem: ")]
    assert problems == [
        "problem: cpio config.toml: network.skip: must be a bool (true or false), not str 'yes'",
        "problem: cpio: nodename: hostname 'bad_name' contains '_' at position 3; only "
        "letters, digits, hyphens and dots are allowed",
    ]
    assert "warning: cpio:authorized_keys: line 2: key data is truncated; line skipped" in r.stdout
    # The agent skips a script without #! (a warning) and applies the rest: not a refusal.
    assert ("warning: cpio: firstboot.sh: must begin with an interpreter line such as "
            "#!/bin/sh: not installed, not run; skipped") in r.stdout
    assert "ssh keys:      1 for root  (authorized_keys)" in r.stdout
    assert r.stdout.endswith("verdict: the agent would refuse this seed (2 problems; exit 96)\n")


@needs_cpio
def test_the_agent_refuses_what_inspect_refuses_with_the_same_words(tmp_path):
    files = {"config.toml": "[network]\nskip = 1\n"}
    path = gnu_seed(tmp_path, files)
    problems = inspect_seed(str(path)).evaluation.problems
    guest = make_guest(tmp_path, "qemu", files)
    run = guest.run()
    assert run.returncode == SMF_EXIT_ERR_CONFIG
    assert problems == ["cpio config.toml: network.skip: must be a bool (true or false), not int 1"]
    assert problems[0] in run.stdout + run.stderr


@needs_cpio
def test_hostile_archives_and_stray_entries(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "nodename").symlink_to("/etc/shadow")
    (work / "hostname").write_text("wrong-name\n")
    archive = subprocess.run(["cpio", "-o", "--quiet", "-H", "newc"], input=b"nodename\n",
                             cwd=work, capture_output=True, check=True).stdout
    (tmp_path / "link.img").write_bytes(archive)
    evaluation = inspect_seed(str(tmp_path / "link.img")).evaluation
    assert evaluation.problems == [f"cpio {tmp_path / 'link.img'}: nodename: symbolic link "
                                   "refused: a seed holds only regular files and directories"]
    stray = subprocess.run(["cpio", "-o", "--quiet", "-H", "newc"], input=b"hostname\n",
                           cwd=work, capture_output=True, check=True).stdout
    (tmp_path / "stray.img").write_bytes(stray)
    evaluation = inspect_seed(str(tmp_path / "stray.img")).evaluation
    assert evaluation.accepted and evaluation.files == {}
    assert any("'hostname' is not a seed file" in w for w in evaluation.warnings)


def test_nocloud_iso_with_the_wrong_label_and_a_directory_entry(tmp_path):
    path = tmp_path / "other.iso"
    path.write_bytes(iso_image("config-2", {"meta-data": b"instance-id: i-1\n"}))
    evaluation = inspect_seed(str(path)).evaluation
    assert evaluation.problems == [f"{path}: volume label is 'config-2', not 'cidata': the "
                                   "agent would not find this volume"]
    assert evaluation.metadata.instance_id == "i-1"


def test_directories_nocloud_and_cpio_seed_files(tmp_path):
    nocloud_dir = tmp_path / "nc"
    nocloud_dir.mkdir()
    (nocloud_dir / "meta-data").write_text("instance-id: iid-dir\nlocal-hostname: dir-1\n")
    (nocloud_dir / "user-data").mkdir()
    inspection = inspect_seed(str(nocloud_dir))
    assert inspection.title[0].endswith("NoCloud directory")
    assert inspection.evaluation.problems == [
        f"{nocloud_dir}: user-data: is not a regular file; refusing to read it"]
    assert inspection.evaluation.metadata.hostname == "dir-1"
    cpio_dir = tmp_path / "seedfiles"
    cpio_dir.mkdir()
    (cpio_dir / "nodename").write_text("files-1\n")
    (cpio_dir / "firstboot.sh").write_text(SCRIPT)
    inspection = inspect_seed(str(cpio_dir))
    assert inspection.evaluation.accepted and inspection.evaluation.kind == "cpio"
    assert inspection.evaluation.metadata.hostname == "files-1"


@pytest.mark.parametrize("content,problem", [
    (b"just some text\n" * 10, "not a seed: no CPIO archive at offset 0"),
    (b"QFI\xfb" + bytes(100), "a qcow2 image"),
    (b"", "not a seed"),
])
def test_not_a_seed(tmp_path, content, problem):
    path = tmp_path / "x.img"
    path.write_bytes(content)
    with pytest.raises(NotASeed) as info:
        inspect_seed(str(path))
    assert problem in str(info.value)
    r = metadata("seed", "inspect", str(path))
    assert r.returncode == SMF_EXIT_ERR_CONFIG and problem in r.stderr


def test_a_missing_file_is_named(tmp_path):
    r = metadata("seed", "inspect", str(tmp_path / "absent.img"))
    assert r.returncode == SMF_EXIT_ERR_CONFIG
    assert "absent.img: (seed): cannot be read: No such file or directory" in r.stderr


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen not installed")
def test_fingerprints_are_what_ssh_keygen_prints(tmp_path):
    lines = []
    for kind, bits in (("ed25519", None), ("rsa", "2048"), ("ecdsa", "384")):
        key = tmp_path / f"k_{kind}"
        subprocess.run(["ssh-keygen", "-q", "-t", kind, *(["-b", bits] if bits else []),
                        "-N", "", "-C", f"me@{kind}", "-f", str(key)], check=True)
        lines.append((tmp_path / f"k_{kind}.pub").read_text().strip())
        expected = subprocess.run(["ssh-keygen", "-l", "-f", f"{key}.pub"], capture_output=True,
                                  text=True, check=True).stdout.strip()
        assert fingerprint(lines[-1]) == expected


def test_an_iso_whose_extent_runs_past_the_end_exits_96_with_the_reason(tmp_path):
    """Issue 12: before, IsoReadError escaped as a traceback (exit 1)."""
    image = iso_image("cidata", {"meta-data": b"instance-id: i-1\n" * 200,
                                 "user-data": b"#!/bin/sh\necho hi\n"})
    path = tmp_path / "cut.iso"
    path.write_bytes(image[: len(image) - 2048])   # the last file's sector cut off
    done = metadata("seed", "inspect", str(path))
    assert done.returncode == SMF_EXIT_ERR_CONFIG, done.stderr
    assert "data runs past the end of the image" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_an_empty_nocloud_seed_is_reported_as_no_usable_data(tmp_path):
    """Was: called acceptable, while the agent removed root's keys on it."""
    seed = tmp_path / "cidata"
    seed.mkdir()
    (seed / "meta-data").write_text("")
    (seed / "user-data").write_text("\n")
    text = inspect_seed(str(seed)).text()
    assert ("warning: nocloud: (volume): no usable data (every file missing or empty): not a "
            "new instance; nothing a previous instance installed is removed") in text
    assert text.endswith("verdict: the agent would accept this seed, with 1 warning (what "
                         "they name is skipped; the rest is applied)\n")


def test_inspect_reports_the_items_the_agent_would_skip_and_accepts(tmp_path):
    seed = tmp_path / "cidata"
    seed.mkdir()
    (seed / "meta-data").write_text(f"instance-id: i-1\npublic-keys: [{KEY}]\n")
    (seed / "network-config").write_text(
        "version: 2\nethernets:\n  id0:\n    match: {macaddress: '52:54:00:ab:cd:ef'}\n"
        "    dhcp4: true\nbonds:\n  bond0: {interfaces: [id0]}\n")
    inspection = inspect_seed(str(seed))
    text = inspection.text()
    assert inspection.evaluation.accepted and "refuse" not in text
    assert ("warning: nocloud: network-config bonds.bond0.parameters.mode: bond mode "
            "'balance-rr' (the default) has no illumos link aggregation equivalent") in text
    assert "network:       id0 52:54:00:ab:cd:ef [primary]: DHCPv4  (network-config)" in text
