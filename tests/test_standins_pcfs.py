"""FAT (pcfs) volumes: fstyp recognises them as the libfstyp pcfs module does and mount -F pcfs
reads them as mount_pcfs and the kernel's pcfs show them (issue 10)."""

from __future__ import annotations

import subprocess

import pytest
from guest import make_guest

from sim.emulators.nocloud import attach_volume
from sim.emulators.oxide import fat_image

DEVICE = "/dev/dsk/c2t0d0p0"


def run(guest, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([guest.path(argv[0]), *argv[1:]], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def guest(tmp_path):
    g = make_guest(tmp_path, "qemu")
    files = {"meta-data": b'{"instance-id": "i-1"}', "user-data": b"#!/bin/sh\necho hi\n",
             "README.TXT": b"short name\n"}
    attach_volume(g.root, "c2t0d0", fat_image("cidata", files))
    return g


def test_fstyp_names_a_fat_volume_pcfs_with_its_padded_label_and_attributes(guest):
    r = run(guest, "/usr/sbin/fstyp", "-a", DEVICE)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "pcfs"
    assert "gen_volume_label: 'cidata     '" in lines      # 11 characters, as get_label()
    assert "gen_clean: true" in lines and "fat_entry_size: 12" in lines
    assert lines[1] == "bytes_per_sector: 512"             # get_attr()'s order
    assert run(guest, "/usr/sbin/fstyp", DEVICE).stdout == "pcfs\n"


def test_mount_pcfs_reads_long_and_folded_short_names(guest):
    guest.write("/var/tmp/mnt/.keep", "")
    r = run(guest, "/usr/sbin/mount", "-F", "pcfs", "-o", "ro", DEVICE, "/var/tmp/mnt")
    assert (r.returncode, r.stderr) == (0, "")
    assert guest.read("/var/tmp/mnt/meta-data") == '{"instance-id": "i-1"}'
    assert guest.read("/var/tmp/mnt/user-data") == "#!/bin/sh\necho hi\n"
    assert guest.read("/var/tmp/mnt/readme.txt") == "short name\n"   # foldcase
    assert "pcfs" in guest.read("/etc/mnttab")
    r = run(guest, "/usr/sbin/mount", "-F", "pcfs", "-o", "ro", DEVICE, "/var/tmp/mnt")
    assert (r.returncode, r.stderr) == (
        32, f"mount: {DEVICE} is already mounted or /var/tmp/mnt is busy\n")
    assert run(guest, "/usr/sbin/umount", "/var/tmp/mnt").returncode == 0


def test_mount_pcfs_of_something_else_is_not_a_dos_filesystem(tmp_path):
    g = make_guest(tmp_path, "nocloud")           # its seed disk holds an ISO 9660 volume
    g.write("/var/tmp/mnt/.keep", "")
    r = run(g, "/usr/sbin/mount", "-F", "pcfs", "-o", "ro", DEVICE, "/var/tmp/mnt")
    assert (r.returncode, r.stderr) == (32, f"mount: {DEVICE} is not a DOS filesystem.\n")
    assert run(g, "/usr/sbin/fstyp", DEVICE).stdout == "hsfs\n"
