"""Simulated guests of the illumos hypervisors' own seeds boot to DONE fully configured:
an OmniOS bhyve zone (CIDATA on a CD-ROM, `ds=nocloud;i=` serial), a Tribblix zone whose
cloud-init attribute is a URL (`ds=nocloud-net;s=URL;i=`), and a Proxmox VE NoCloud drive."""

from __future__ import annotations

import os
import subprocess

import pytest
from guest import make_guest

from sim.emulators import omnioszone
from sim.emulators.zoneseed import DEPLOY_KEY, OPERATOR_KEY, PVE_HASH, ZONE_HASH
from sim.hardware import hardware
from sim.serve import serving


def boot(g):
    with serving(g.root):
        proc = g.run()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert g.checkpoint().phase == "DONE"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def omnios(tmp_path_factory):
    g = make_guest(tmp_path_factory.mktemp("omnios"), "omnios-zone")
    return g, boot(g)


def test_omnios_zone_root_logs_in_by_key_and_password(omnios):
    g, proc = omnios
    shown = g.show()
    uuid = hardware("omnios-zone")["smbios"]["uuid"].lower()
    assert g.checkpoint().instance_id == uuid
    assert "NoCloud volume 'CIDATA' (hsfs) on /dev/dsk/c2t0d0p0" in proc
    assert shown["hostname"]["live"] == "web-1"
    assert [a["addr"] for a in shown["addresses"]] == ["10.0.5.20/24"]
    assert shown["defaultrouter"] == ["10.0.5.1"]
    assert shown["ssh"]["authorized_keys"] == [OPERATOR_KEY]
    assert shown["ssh"]["dir"]["mode"] == "0700" and shown["ssh"]["file"]["mode"] == "0600"
    root = [ln for ln in g.read("/etc/shadow").splitlines() if ln.startswith("root:")][0]
    assert root.split(":")[1] == ZONE_HASH and root.split(":")[2] != "0"   # expire: false
    assert "PasswordAuthentication yes" in g.read("/etc/ssh/sshd_config").splitlines()
    messages = [w["message"] for w in g.checkpoint().warnings]
    assert len(messages) == 1 and "`default` is listed" in messages[0]


def test_omnios_zone_with_a_default_user_creates_it_with_primary_administrator(tmp_path):
    g = make_guest(tmp_path, "omnios-zone")
    g.write("/etc/metadata-agent.toml", '[users]\ndefault = "omnios"\n')
    boot(g)
    omnios = g.show()["users"]["omnios"]
    assert "profiles=Primary Administrator" in omnios["user_attr"]
    assert omnios["ssh"]["authorized_keys"] == [OPERATOR_KEY]
    assert omnios["password"].startswith("$6$")        # `password` is the default user's
    assert g.checkpoint().warnings == []
    # disable_root: false: root has the keys too; its password stays as it was.
    assert g.show()["ssh"]["authorized_keys"] == [OPERATOR_KEY]
    assert g.show()["users"]["root"]["password"] == "NP"


def test_tribblix_zone_fetches_its_seed_from_the_url_after_dhcp(tmp_path):
    g = make_guest(tmp_path, "tribblix-zone")
    proc = boot(g)
    assert "nocloud-net: DHCP on vioif0" in proc
    assert "3 file(s) from the seed URL" in proc
    shown = g.show()
    assert shown["hostname"]["live"] == "trib-1"
    assert shown["ssh"]["authorized_keys"] == [OPERATOR_KEY]
    assert g.checkpoint().instance_id == hardware("tribblix-zone")["smbios"]["uuid"].lower()


def test_proxmox_default_user_gets_keys_hash_and_fqdn(tmp_path):
    g = make_guest(tmp_path, "proxmox")
    boot(g)
    shown = g.show()
    assert shown["hostname"]["nodename"] == "pve-vm"
    assert "pve-vm.example.com" in shown["hostname"]["hosts"][0]
    admin = shown["users"]["admin"]
    assert admin["home"] == "/export/home/admin"
    assert admin["ssh"]["authorized_keys"] == [DEPLOY_KEY]
    assert admin["ssh"]["file"]["mode"] == "0600"
    assert f"admin:{PVE_HASH}:" in g.read("/etc/shadow")
    assert shown["users"]["root"]["ssh"]["authorized_keys"] == []   # PVE ciuser is admin
    assert g.calls().get("pkg update") == 1                           # package_upgrade


def test_runcmd_runs_once_after_the_user_script(tmp_path):
    md = omnioszone.default_metadata()
    log = str(tmp_path / "order.log")
    md["user-data"] += f"runcmd:\n  - echo runcmd >> {log}\n"
    g = make_guest(tmp_path, "omnios-zone", md)
    boot(g)
    assert g.read("/var/metadata/runcmd") == f"#!/bin/sh\necho runcmd >> {log}\n"
    assert g.state()["services"]["svc:/system/illumos/userscript:default"]["enabled"]
    env = {"PATH": os.environ["PATH"], "METADATA_ROOT": g.root,
           "SMF_FMRI": "svc:/system/illumos/userscript:default"}
    for _ in range(3):
        done = subprocess.run(["sh", g.path("/usr/lib/userscript.sh")], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    assert open(log).read() == "runcmd\n"


def test_smartos_cloud_init_user_data_and_root_pw_through_the_serial_service(tmp_path):
    from sim.emulators import smartos

    md = smartos.default_metadata()
    md.update({"root_pw": "smartos-secret",
               "cloud-init:user-data": "#cloud-config\nusers:\n  - name: joyent\n"
                                       f"    ssh_authorized_keys: ['{OPERATOR_KEY}']\n"
                                       "timezone: America/New_York\n"})
    g = make_guest(tmp_path, "smartos", md)
    out = boot(g)
    assert "smartos-secret" not in out
    shown = g.show()
    assert shown["users"]["joyent"]["ssh"]["authorized_keys"] == [OPERATOR_KEY]
    assert shown["users"]["root"]["password"].startswith("$6$")
    assert shown["users"]["root"]["lastchg"] != "0"             # root_pw is not expired
    assert "TZ=America/New_York" in g.read("/etc/default/init").splitlines()
    from operations.passhash import sha512_crypt
    root = [ln for ln in g.read("/etc/shadow").splitlines() if ln.startswith("root:")][0]
    hashed = root.split(":")[1]
    assert sha512_crypt(b"smartos-secret", hashed[3:].rsplit("$", 1)[0]) == hashed
