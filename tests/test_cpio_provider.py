"""The CPIO seed device: seed files to Metadata, and the agent against simulated guests whose
seed disk holds an archive made by the real `cpio -o`."""

from __future__ import annotations

import os
import shutil

import pytest

from fsm.errors import SMF_EXIT_ERR_CONFIG, ConfigError
from fsm.settings import Settings
from fsm.steps import Context
from fsm.system import System
from providers import smbios
from providers.cpio import CpioProvider
from providers.seedfiles import parse_config, read_seed
from providers.smbios import SmbiosInfo
from providers.vmware import VMwareProvider
from sim.emulators import cpio as cpio_emulator
from tests.guest import make_guest

pytestmark = pytest.mark.skipif(shutil.which("cpio") is None, reason="GNU cpio not installed")

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBW76c9qHq4UK/Q6SSmCMzv9+IDZVDLsl0e67D40grsN a@b"


# ---- seed files -----------------------------------------------------------------------------

def test_seed_files_become_metadata():
    reading = read_seed({"nodename": b"  web-1  \nignored\n",
                         "authorized_keys": f"# comment\n\n{KEY}\n{KEY} second\n".encode(),
                         "firstboot.sh": b"#!/bin/ksh\necho hi\n"})
    md = reading.metadata
    assert (md.source, md.hostname, md.ssh_keys) == ("cpio", "web-1", (KEY, f"{KEY} second"))
    assert md.user_script == b"#!/bin/ksh\necho hi\n"
    assert md.nics[0].dhcp4 and md.nics[0].mac is None and not md.network_skip
    assert md.origin("hostname") == "cpio:nodename"
    assert reading.warnings == []


def test_empty_seed_files_are_absent():
    md = read_seed({"nodename": b"\n", "firstboot.sh": b"", "authorized_keys": b" \n"}).metadata
    assert (md.hostname, md.ssh_keys, md.user_script) == (None, (), None)


def test_network_skip_and_unknown_keys_warned():
    reading = read_seed({"config.toml": b"[network]\nskip = true\nmtu = 9000\n[zfs]\nx = 1\n"})
    assert reading.metadata.network_skip and reading.metadata.nics == ()
    assert reading.warnings == ["cpio config.toml: unknown key 'network.mtu' ignored",
                                "cpio config.toml: unknown key 'zfs' ignored"]


@pytest.mark.parametrize("text,key,problem", [
    (b"[network]\nskip = \"yes\"\n", "network.skip", "must be a bool"),
    (b"[network]\nskip = 1\n", "network.skip", "must be a bool"),
    (b"network = 3\n", "network", "must be a table"),
    (b"[network\nskip = true\n", "(file)", "not valid TOML"),
    (b"\xff\xfe", "(file)", "not UTF-8"),
])
def test_bad_config_toml_is_a_config_error_naming_the_key(text, key, problem):
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert (info.value.key, info.value.exit_code) == (key, SMF_EXIT_ERR_CONFIG)
    assert problem in info.value.problem


def test_script_without_interpreter_line_is_skipped_and_the_rest_applied():
    """Was: the whole seed refused (no keys). Now the script is skipped with a warning."""
    md = read_seed({"firstboot.sh": b"echo no shebang\n", "nodename": b"web-1\n"}).metadata
    assert md.user_script is None and md.hostname == "web-1"
    assert md.warnings == ("cpio: firstboot.sh: must begin with an interpreter line such as "
                           "#!/bin/sh: not installed, not run; skipped",)


def test_an_empty_seed_is_no_usable_data():
    assert read_seed({"nodename": b"\n", "authorized_keys": b""}).metadata.empty
    assert not read_seed({"nodename": b"x\n"}).metadata.empty


# ---- the agent against simulated guests ---------------------------------------------------

def assert_done(guest, result, source):
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert f"metadata from {source}" in out
    cp = guest.checkpoint()
    assert (cp.phase, cp.provider) == ("DONE", source)


@pytest.mark.parametrize("platform,disk", [("qemu", "c2t0d0"), ("bhyve", "c2t0d0")])
def test_seed_disk_of_the_platform_is_used(tmp_path, platform, disk):
    guest = make_guest(tmp_path, platform)
    with open(guest.path(f"/dev/rdsk/{disk}p0"), "rb") as f:
        assert f.read(2) == b"\xc7\x71"        # GNU cpio -H bin on a little-endian host
    result = guest.run()
    assert_done(guest, result, "cpio")
    assert f"CPIO seed archive on /dev/rdsk/{disk}p0" in result.stdout + result.stderr
    assert "2 key(s), a user script" in result.stdout + result.stderr
    assert "first boot from the cpio seed" not in result.stdout + result.stderr  # never logged


def provider_context(guest, info=None):
    """DETECT's context for a direct call: the provider reads the guest through System."""
    info = smbios.read(System(guest.root)) if info is None else info
    return Context(system=System(guest.root), settings=Settings(), checkpoint=None, smbios=info)


@pytest.mark.parametrize("fmt", ["odc", "newc", "crc", "bin-swapped"])
def test_every_format_on_the_disk(tmp_path, fmt):
    guest = make_guest(tmp_path, "qemu", {"format": fmt, "config.toml": {"network": {"skip": True}}})
    provider = CpioProvider()
    assert provider.detect(provider_context(guest))
    md = provider.fetch(provider_context(guest))
    assert (md.hostname, md.network_skip, md.nics) == ("cpio-seed-guest", True, ())
    assert md.ssh_keys == tuple(cpio_emulator.DEFAULT_KEYS)


def test_no_smbios_table_still_finds_the_seed(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    guest.set_state(smbios=None)
    ctx = provider_context(guest)
    assert ctx.smbios is None
    assert CpioProvider().detect(ctx)


def test_cloud_smbios_never_looks_at_disks(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    oxide = SmbiosInfo(manufacturer="Oxide", product="OxVM")
    ec2 = SmbiosInfo(manufacturer="Xen", product="HVM domU", version="4.11.amazon")
    for info in (oxide, ec2):
        assert not CpioProvider().detect(provider_context(guest, info))


def test_two_seed_disks_are_a_clear_error(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    archive = cpio_emulator.make_archive({"nodename": b"other\n"})
    extra = guest.path("/dev/rdsk/c3t0d0p0")
    with open(extra, "wb") as f:
        f.write(archive)
    result = guest.run()
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "2 disks start with a CPIO archive" in out and "c3t0d0p0" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("damage,disk_size,message", [
    # A short device: the archive runs off its end.
    (lambda a: a[:40], None, "archive truncated: data needs 16 bytes at offset 36, only 4 left"),
    # Cut short on a bigger disk: what follows is zeros, not the next header.
    (lambda a: a[:40], 1 << 20, "bad magic at offset 52"),
    (lambda a: a.replace(b"nodename\0", b"../abcde\0", 1), 1 << 20, "path with '..' refused"),
])
def test_damaged_seed_stops_at_fetch_with_a_clear_error(tmp_path, damage, disk_size, message):
    guest = make_guest(tmp_path, "qemu")
    archive = cpio_emulator.make_archive(cpio_emulator.seed_files(
        cpio_emulator.default_metadata()))
    for kind in ("dsk", "rdsk"):
        with open(guest.path(f"/dev/{kind}/c2t0d0p0"), "wb") as f:
            f.write(damage(archive).ljust(disk_size or 0, b"\0"))
    result = guest.run()
    out = result.stdout + result.stderr
    assert result.returncode == SMF_EXIT_ERR_CONFIG, out
    assert message in out and "cpio /dev/rdsk/c2t0d0p0" in out
    assert "Traceback" not in out
    assert guest.checkpoint().phase == "FETCH"


def test_vmware_without_open_vm_tools_uses_the_cpio_seed(tmp_path):
    """As the original did for VMware Fusion: no guestinfo tools, so the seed disk c1t1d0."""
    guest = make_guest(tmp_path, "qemu", name="vm")
    vmware_seed = cpio_emulator.make_archive({"nodename": b"fusion-guest\n"})
    for kind in ("dsk", "rdsk"):
        os.remove(guest.path(f"/dev/{kind}/c2t0d0p0"))
        with open(guest.path(f"/dev/{kind}/c1t1d0p0"), "wb") as f:
            f.write(vmware_seed)
    ctx = provider_context(guest, SmbiosInfo(manufacturer="VMware, Inc.", product="VMware7,1"))
    assert not VMwareProvider().detect(ctx)
    provider = CpioProvider()
    assert provider.detect(ctx) and provider.device == "/dev/rdsk/c1t1d0p0"
    assert provider.fetch(ctx).hostname == "fusion-guest"
