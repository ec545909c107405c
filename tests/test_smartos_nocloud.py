"""A SmartOS 20260306 bhyve guest with vmadm's FAT16 `CIDATA` disk boots to DONE fully
configured from the disk, while the metadata service answers on its serial port too; without
the disk the same guest reads the service (providers/smartosnocloud.py)."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml
from guest import make_guest

from operations.passhash import sha512_crypt
from providers import nocloud, smartosnocloud
from sim.emulators import smartosnocloud as emulator
from sim.hardware import hardware
from sim.serve import serving

PLATFORM = "smartos-nocloud"
UUID = hardware(PLATFORM)["smbios"]["uuid"].lower()
DISK = "/dev/dsk/c2t0d0p0"
USERSCRIPT_FMRI = "svc:/system/illumos/userscript:default"


def boot(g):
    """Boot with the serial service running; (agent output, what the service was asked)."""
    with serving(g.root) as server:
        proc = g.run()
        asked = (list(server.requests), server.lines_received)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert g.checkpoint().phase == "DONE"
    return proc.stdout + proc.stderr, asked


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("smartos-nocloud")
    md = emulator.default_metadata()      # runcmd's log where the test can read it
    md["cloud-init:user-data"] = md["cloud-init:user-data"].replace(
        "/var/tmp/runcmd.log", str(tmp / "runcmd.log"))
    g = make_guest(tmp, PLATFORM, md)
    out, asked = boot(g)
    return g, out, asked


def test_the_disk_is_read_and_the_serial_service_is_never_asked(booted):
    g, out, asked = booted
    assert "NoCloud volume 'CIDATA' (pcfs) on /dev/dsk/c2t0d0p0" in out
    assert asked == ([], 0)                 # not even a probe: the choice is local
    cp = g.checkpoint()
    assert cp.instance_id == UUID and cp.provider == "nocloud"
    assert cp.warnings == []


def test_root_and_the_named_user_log_in_by_key_and_password(booted):
    g, _, _ = booted
    shown = g.show()
    # Root's keys are user-data's (the default user is root), not the service's
    # root_authorized_keys, which cloud-init would not read on this guest either.
    assert shown["ssh"]["authorized_keys"] == [emulator.ADMIN_KEY]
    assert shown["ssh"]["dir"]["mode"] == "0700" and shown["ssh"]["file"]["mode"] == "0600"
    deploy = shown["users"]["deploy"]
    assert deploy["ssh"]["authorized_keys"] == [emulator.DEPLOY_KEY]
    assert deploy["ssh"]["file"]["mode"] == "0600" and deploy["ssh"]["file"]["owner"] == \
        f"{deploy['uid']}:{deploy['gid']}"
    assert (deploy["gecos"], deploy["shell"]) == ("Deploy user", "/bin/bash")
    shadow = {ln.split(":")[0]: ln.split(":") for ln in g.read("/etc/shadow").splitlines()}
    for user in ("root", "deploy"):
        assert shadow[user][1] == emulator.PASSWORD_HASH
        assert shadow[user][2] != "0"                             # chpasswd expire: false
    salt = emulator.PASSWORD_HASH[3:].rsplit("$", 1)[0]
    assert sha512_crypt(b"smartos-nocloud", salt) == emulator.PASSWORD_HASH


def test_hostname_and_network_come_from_meta_data_and_network_config_v2(booted):
    g, _, _ = booted
    shown = g.show()
    assert shown["hostname"]["nodename"] == "nc-web01" and shown["hostname"]["live"] == "nc-web01"
    # vmadm's `set-name` (the NIC's `interface`) renames vioif0/vioif1 to net0/net1.
    by_obj = {a["addrobj"]: a for a in shown["addresses"]}
    assert by_obj["net0/v4"]["addr"] == "203.0.113.45/24"
    assert by_obj["net1/dhcp"]["type"] == "dhcp"                  # ips: dhcp -> dhcp4
    assert by_obj["net1/v6"]["type"] == "addrconf"                # ips: addrconf -> dhcp6
    assert "203.0.113.1" in shown["defaultrouter"]
    assert shown["dns"]["nameservers"] == ["8.8.8.8", "8.8.4.4"]
    # sdc:routes is the service's alone: vmadm does not put routes on the disk.
    assert not [r for r in shown["routes"] if r["destination"].startswith("10.128.")]


def test_files_are_written_vendor_data_merges_and_runcmd_runs_once(booted):
    g, _, _ = booted
    log = os.path.join(os.path.dirname(g.root), "runcmd.log")
    assert g.read("/etc/motd") == "Provisioned from the SmartOS CIDATA disk.\n"
    assert "TZ=Europe/Berlin" in g.read("/etc/default/init").splitlines()  # vendor-data
    assert g.read("/var/metadata/runcmd") == f"#!/bin/sh\necho runcmd >> {log}\n"
    assert g.state()["services"][USERSCRIPT_FMRI]["enabled"]
    env = {"PATH": os.environ["PATH"], "METADATA_ROOT": g.root, "SMF_FMRI": USERSCRIPT_FMRI}
    for _ in range(3):
        done = subprocess.run(["sh", g.path("/usr/lib/userscript.sh")], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    with open(log) as f:
        assert f.read() == "runcmd\n"


def test_a_second_boot_repeats_nothing(booted):
    g, _, _ = booted
    before = g.show()
    out, asked = boot(g)
    assert g.checkpoint().boot == 2 and asked == ([], 0)
    after = g.show()
    assert after["users"] == before["users"] and after["ssh"] == before["ssh"]
    assert after["calls"].get("useradd") == before["calls"].get("useradd") == 1


def test_without_the_disk_the_same_vm_reads_the_serial_service(tmp_path):
    g = make_guest(tmp_path, PLATFORM)
    for kind in ("dsk", "rdsk"):
        with open(g.path(f"/dev/{kind}/c2t0d0p0"), "r+b") as f:
            f.write(bytes(64 * 1024))                 # the VM's image no longer asks for it
    out, (requests, _) = boot(g)
    assert "GET sdc:uuid" in requests
    assert g.checkpoint().provider == "smartos" and g.checkpoint().instance_id == UUID
    assert g.show()["hostname"]["nodename"] == "nc-web01"


def test_the_disk_is_the_fat16_volume_vmadm_makes(tmp_path):
    g = make_guest(tmp_path, PLATFORM)
    image = g.path(DISK)
    assert os.path.getsize(image) == emulator.DISK_SIZE_MIB << 20
    fstyp = subprocess.run([g.path("/usr/sbin/fstyp"), "-a", DISK], capture_output=True,
                           text=True, timeout=60)
    assert fstyp.stdout.splitlines()[0] == "pcfs"
    assert "fat_entry_size: 16" in fstyp.stdout.splitlines()
    assert "gen_volume_label: 'CIDATA     '" in fstyp.stdout.splitlines()
    listing = subprocess.run(["mdir", "-b", "-i", image, "::/"], capture_output=True,
                             text=True, timeout=60, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    assert sorted(p.rsplit("/", 1)[1] for p in listing.stdout.split()) == \
        ["meta-data", "network-config", "user-data", "vendor-data"]


def test_network_config_and_meta_data_are_built_as_nocloud_js_builds_them():
    md = emulator.default_metadata()
    files = emulator.cidata_files(md)
    assert files["meta-data"].decode() == (f"# cloud-init meta-data\ninstance-id: {UUID}\n"
                                           "local-hostname: nc-web01\n")
    doc = yaml.safe_load(files["network-config"])
    net0, net1 = doc["ethernets"]["net0"], doc["ethernets"]["net1"]
    assert doc["version"] == 2
    assert net0 == {"match": {"macaddress": "90:b8:d0:01:02:03"}, "set-name": "net0",
                    "addresses": ["203.0.113.45/24"], "gateway4": "203.0.113.1",
                    "nameservers": {"addresses": ["8.8.8.8", "8.8.4.4"]}}
    assert net1 == {"match": {"macaddress": "90:b8:d0:04:05:06"}, "set-name": "net1",
                    "dhcp4": True, "dhcp6": True}     # no gateway or resolvers off primary
    assert b'macaddress: "90:b8:d0:01:02:03"' in files["network-config"]   # quoted, as vmadm
    # No cloud-init:user-data: the minimal cloud-config vmadm always writes.
    del md["cloud-init:user-data"]
    assert emulator.cidata_files(md)["user-data"] == b"#cloud-config\n{}\n"
    md["cloud-init:network-config"] = "version: 2\nethernets: {}\n"
    assert emulator.cidata_files(md)["network-config"] == b"version: 2\nethernets: {}\n"


def test_the_smartos_disk_finder_looks_for_the_nocloud_label():
    assert smartosnocloud.LABEL == nocloud.LABEL
