"""Azure (issue 16): the provider, the wireserver Ready report as a step, and the emulator.

A simulated Azure guest boots from Microsoft's documented documents (tests/corpus/azure/,
origins in tests/corpus/README.md) to DONE with its admin user, keys, password hash, host
name, network and CustomData applied, and the wireserver emulator receives exactly one
Ready report per provisioning; a provisioning that fails sends NotReady with the reason.
"""

from __future__ import annotations

import json
import os

import pytest
import requests
from guest import make_guest

from fsm.checkpoint import CHECKPOINT_PATH
from fsm.settings import Settings
from fsm.steps import Context
from fsm.system import System
from providers import smbios
from providers.azure import azure_mac, build_metadata
from providers.azure_ovf import parse_ovf_env
from providers.items import Items
from sim.emulators import azure as emulator
from sim.serve import serving

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "azure")
VM_ID = emulator.VM_ID
PASSWORD = "Example-Passw0rd!"
STEP = "USERSCRIPT/azure-ready"


def corpus(name: str) -> bytes:
    with open(os.path.join(CORPUS, name), "rb") as f:
        return f.read()


def boot(g, **env):
    with serving(g.root):
        return g.run(env=env or None)


# ---- the documents -----------------------------------------------------------------------
def test_the_corpus_ovf_env_parses_as_documented_and_the_emulator_serves_the_same():
    ovf = parse_ovf_env(corpus("ovf-env.xml"))
    assert (ovf.hostname, ovf.username, ovf.password) == ("examplevmname", "azureuser", PASSWORD)
    assert ovf.disable_password_auth is True
    assert ovf.ssh_keys == (emulator.DVD_KEY,)
    assert ovf.custom_data.decode() == emulator.CUSTOM_DATA
    assert len(ovf.warnings) == 1 and "Fingerprint" in ovf.warnings[0]
    assert PASSWORD not in repr(ovf) and PASSWORD not in " ".join(ovf.warnings)
    assert parse_ovf_env(emulator.ovf_env(emulator.default_ovf())) == ovf
    assert json.loads(corpus("imds-instance.json")) == emulator.default_imds()


@pytest.mark.parametrize("doc, why", [
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "DTD"),
    (b'<!DOCTYPE x [<!ENTITY e SYSTEM "http://127.0.0.1:1/x">]><x>&e;</x>', "DTD"),
    (b'<Environment><x>' + b"a" * (300 << 10) + b"</x></Environment>", "larger than"),
    (b"<Environment><unclosed></Environment>", "well-formed"),
    (emulator.ovf_env({"hostname": "h"}), "UserName"),
])
def test_a_hostile_or_broken_ovf_env_is_refused_naming_why(doc, why):
    from fsm.errors import MetadataError

    with pytest.raises(MetadataError, match=why):
        parse_ovf_env(doc)


def test_imds_macs_are_12_hex_digits_and_the_instance_keeps_a_byte_swapped_record():
    assert azure_mac("000D3AF806EC") == "00:0d:3a:f8:06:ec"
    ovf = parse_ovf_env(corpus("ovf-env.xml"))
    doc = json.loads(corpus("imds-instance.json"))
    md = build_metadata(ovf, doc, Items("azure"))
    assert md.instance_id == VM_ID
    nic = md.nics[0]
    assert (nic.mac, nic.dhcp4, nic.primary, nic.addresses) == \
        ("00:0d:3a:f8:06:ec", True, True, ("10.144.133.133/26",))
    # Recorded by something that read the UUID in the other byte order: the same VM.
    swapped = smbios.byte_swapped(VM_ID)
    assert build_metadata(ovf, doc, Items("azure"), recorded=swapped).instance_id == swapped
    # Without IMDS: the table's UUID as printed raw (vmId on Hyper-V).
    no_imds = build_metadata(ovf, None, Items("azure"), smbios_uuid=VM_ID.upper())
    assert no_imds.instance_id == VM_ID and no_imds.nics[0].dhcp4


# ---- a boot ------------------------------------------------------------------------------
def test_an_azure_guest_boots_to_done_fully_configured_and_reports_ready_once(tmp_path):
    g = make_guest(tmp_path, "azure")
    result = boot(g)
    assert result.returncode == 0, result.stdout[-3000:]
    cp = g.checkpoint()
    assert (cp.phase, cp.provider, cp.instance_id) == ("DONE", "azure", VM_ID)
    shown = g.show()
    assert shown["hostname"]["nodename"] == "examplevmname"
    admin = shown["users"]["azureuser"]
    assert "profiles=Primary Administrator" in admin["user_attr"]
    assert admin["password"].startswith("$6$")
    assert admin["ssh"]["authorized_keys"] == [emulator.DVD_KEY, emulator.IMDS_KEY]
    assert shown["ssh"]["authorized_keys"] == []          # root gets none on Azure
    assert "PasswordAuthentication no" in g.read("/etc/ssh/sshd_config")
    addresses = {a["addr"]: a["type"] for a in shown["addresses"]}
    assert addresses == {"10.144.133.132/26": "dhcp", "10.144.133.133/26": "static"}
    assert g.read("/etc/motd") == "Provisioned on Azure\n"        # CustomData cloud-config
    assert "TZ=UTC" in g.read("/etc/default/init")
    warnings = " ".join(w["message"] for w in cp.warnings)
    assert "D6A9B2E1F0C3E4D5A6B7C8D9E0F1A2B3C4D5E6F7" in warnings
    reports = emulator.reports(g.root)
    assert [r["state"] for r in reports] == ["Ready"]
    assert reports[0]["instance_id"] == f"{VM_ID}.examplevmname"
    assert g.read("/var/metadata/azure-ready").split()[:2] == ["Ready", VM_ID]
    # The provisioning password: in no log, no checkpoint, no argv.
    with open(g.path(CHECKPOINT_PATH), "rb") as f:
        assert PASSWORD.encode() not in f.read()
    assert PASSWORD not in result.stdout + result.stderr
    assert PASSWORD not in json.dumps(g.state().get("calls", {}))
    # A second boot is no new provisioning: nothing is reported again.
    assert boot(g).returncode == 0
    assert len(emulator.reports(g.root)) == 1


def test_a_failed_provisioning_reports_not_ready_with_the_reason_then_ready(tmp_path):
    g = make_guest(tmp_path, "azure")
    g.set_state(faults={"fail": {"useradd": "UX: useradd: ERROR: cannot create home"}})
    result = boot(g)
    assert result.returncode != 0
    reports = emulator.reports(g.root)
    assert [r["state"] for r in reports] == ["NotReady"]
    assert reports[0]["substatus"] == "ProvisioningFailed"
    assert "IDENTITY/users" in reports[0]["description"]
    assert not os.path.exists(g.path("/var/metadata/azure-ready"))
    # Fixed and resumed (`svcadm clear`): the user is made and Ready follows, once.
    g.set_state(faults={})
    assert boot(g).returncode == 0
    assert [r["state"] for r in emulator.reports(g.root)] == ["NotReady", "Ready"]
    assert "azureuser" in g.show()["users"]


def test_the_wireserver_address_comes_from_dhcp_option_245_else_the_fixed_one(tmp_path):
    from operations.wireserver import wireserver_url

    g = make_guest(tmp_path, "azure")
    assert boot(g).returncode == 0
    ctx = Context(system=System(g.root), settings=Settings(), checkpoint=g.checkpoint())
    dhcp = g.state()["dhcp"]
    for table in ("bound", "leases"):
        dhcp[table]["hv_netvsc0"]["options"] = {"245": "10.1.2.3"}
    g.set_state(dhcp=dhcp)
    assert wireserver_url(ctx) == "http://10.1.2.3"
    # An image without the inittab entry: dhcpinfo does not know code 245.
    os.remove(g.path("/etc/dhcp/inittab"))
    ctx = Context(system=System(g.root), settings=Settings(), checkpoint=g.checkpoint())
    assert wireserver_url(ctx) == "http://168.63.129.16"


# ---- the emulator ------------------------------------------------------------------------
def test_the_wireserver_refuses_malformed_reports_and_records_none(tmp_path):
    g = make_guest(tmp_path, "azure")
    from operations.wireserver import HEADERS, health_report

    with serving(g.root) as server:
        base = server.endpoint["azure"]["wireserver"]
        goal = requests.get(f"{base}/machine/?comp=goalstate", headers=HEADERS, timeout=10)
        assert goal.status_code == 200 and b"<Incarnation>1</Incarnation>" in goal.content
        assert requests.get(f"{base}/machine/?comp=goalstate", timeout=10).status_code == 400
        url = f"{base}/machine?comp=health"
        good = {"incarnation": "1", "container_id": "f5940043-dbed-419c-9122-d77a4ac854b7",
                "instance_id": f"{VM_ID}.examplevmname"}
        for body in (b"not xml", health_report({**good, "incarnation": "7"}, "Ready"),
                     health_report(good, "Sleeping"),
                     b'<!DOCTYPE Health [<!ENTITY x "y">]><Health/>'):
            assert requests.post(url, data=body, headers=HEADERS, timeout=10).status_code == 400
        assert emulator.reports(g.root) == []
        assert requests.post(url, data=health_report(good, "Ready"), headers=HEADERS,
                             timeout=10).status_code == 200
        imds = server.endpoint["azure"]["endpoint"] + "/metadata/instance"
        assert requests.get(imds + "?api-version=2021-02-01", timeout=10).status_code == 400
        answer = requests.get(imds + "?api-version=2021-02-01", headers={"Metadata": "true"},
                              timeout=10)
        assert answer.json()["compute"]["vmId"] == VM_ID
    assert [r["state"] for r in emulator.reports(g.root)] == ["Ready"]


# ---- kills in the report step ------------------------------------------------------------
REPORT_POINTS = ["before", "intent-write", "witness-write", "after", "write-mid",
                 "write-rename"]


@pytest.mark.parametrize("point", REPORT_POINTS)
def test_a_kill_at_any_point_of_the_report_step_loses_no_ready_and_repeats_none(tmp_path,
                                                                                 point):
    """Exactly one Ready per provisioning, wherever the agent is killed in the report
    step, except half way through the witness write: the wireserver had accepted the
    report, nothing on the guest says so yet, and it is sent again (at least once)."""
    from crashkit import baseline, boot_until_done, crash_guest

    from fsm.checkpoint import STARTED

    base = baseline("azure")
    g = crash_guest(tmp_path, "azure")
    if point in ("before", "after"):
        crash_at = f"{point}:{STEP}"
    elif point == "intent-write":
        crash_at = f"write-mid:{CHECKPOINT_PATH}#{base.save_index(STEP, STARTED)}"
    elif point == "witness-write":
        crash_at = "write-mid:/var/metadata/azure-ready"
    else:
        crash_at = f"{point}:{CHECKPOINT_PATH}#{base.save_index(STEP)}"
    codes = boot_until_done(g, crash_at)
    assert codes[0] == -9 and codes[-1] == 0, codes
    states = [r["state"] for r in emulator.reports(g.root)]
    assert states == (["Ready", "Ready"] if point == "witness-write" else ["Ready"])
    assert g.checkpoint().phase == "DONE"
    assert g.read("/var/metadata/azure-ready").split()[:2] == ["Ready", VM_ID]


# ---- a third-party client: cloud-init's Azure helper (Debian's package) --------------------
CLOUD_INIT_DRIVER = r"""
import json, sys
from cloudinit.sources.helpers import azure as helper

with open(sys.argv[2], encoding="utf-8") as f:
    ovf = helper.OvfEnvXml.parse_text(f.read())
shim = helper.WALinuxAgentShim(endpoint=sys.argv[1])
shim.register_with_azure_and_fetch_data()
shim.register_with_azure_and_report_failure(description="disk & network <failed>")
print(json.dumps({"username": ovf.username, "hostname": ovf.hostname,
                  "password": ovf.password, "custom": ovf.custom_data.decode(),
                  "keys": [k["value"] for k in ovf.public_keys],
                  "disable": ovf.disable_ssh_password_auth}))
"""


@pytest.mark.skipif(not os.path.exists("/usr/lib/python3/dist-packages/cloudinit/sources/"
                                       "helpers/azure.py"), reason="Debian's cloud-init absent")
def test_cloud_inits_azure_helper_reads_our_dvd_and_reports_to_our_wireserver(tmp_path):
    import subprocess

    from sim.emulators.zoneseed import cdrom
    from sim.standins.udfs import udf_files

    g = make_guest(tmp_path, "azure")
    with open(g.path(f"/dev/dsk/{cdrom('azure')}p0"), "rb") as f:
        ovf_path = tmp_path / "ovf-env.xml"
        ovf_path.write_bytes(udf_files(f.read())["ovf-env.xml"])
    with serving(g.root) as server:
        endpoint = server.endpoint["azure"]["wireserver"].split("//", 1)[1]
        done = subprocess.run(["/usr/bin/python3", "-c", CLOUD_INIT_DRIVER, endpoint,
                               str(ovf_path)], capture_output=True, text=True, timeout=120,
                              env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    parsed = json.loads(done.stdout.strip().splitlines()[-1])
    assert parsed == {"username": "azureuser", "hostname": "examplevmname",
                      "password": PASSWORD, "custom": emulator.CUSTOM_DATA,
                      "keys": [emulator.DVD_KEY, ""], "disable": True}
    reports = emulator.reports(g.root)
    assert [(r["state"], r["substatus"]) for r in reports] == \
        [("Ready", None), ("NotReady", "ProvisioningFailed")]
    assert reports[1]["description"] == "disk & network <failed>"


# ---- detection ---------------------------------------------------------------------------
def test_azure_is_told_from_on_premises_hyper_v_by_the_chassis_asset_tag(tmp_path):
    g = make_guest(tmp_path, "azure")
    info = smbios.read(System(g.root))
    assert info.chassis_asset_tag == smbios.AZURE_ASSET_TAG
    assert smbios.platform(info) == "azure"
    assert info.uuid == VM_ID          # Hyper-V's table holds vmId in byte order
    table = g.state()["smbios"]
    table.pop("chassis_asset_tag")
    g.set_state(smbios=table)           # the same VM on on-premises Hyper-V
    info = smbios.read(System(g.root))
    assert (info.manufacturer, info.chassis_asset_tag) == ("Microsoft Corporation", "")
    assert smbios.platform(info) is None
    # Other platforms never run the second smbios command.
    q = make_guest(tmp_path, "qemu", name="qemu")
    smbios.read(System(q.root))
    assert q.calls().get("smbios", 0) == 1


def test_without_imds_the_dvd_still_provisions_and_the_smbios_uuid_is_the_vm_id(tmp_path):
    """IMDS refusing every request (HTTP 404) costs the network details only: the DVD's
    admin user, name and key are applied, the primary link gets DHCP, the instance id is
    the table's UUID (vmId on Hyper-V), and Ready is still reported."""
    g = make_guest(tmp_path, "azure", {"_emulator": {"imds_status": 404}})
    result = boot(g)
    assert result.returncode == 0, result.stdout[-3000:]
    cp = g.checkpoint()
    assert cp.instance_id == VM_ID
    assert any("IMDS: not read" in w["message"] for w in cp.warnings)
    shown = g.show()
    assert shown["users"]["azureuser"]["ssh"]["authorized_keys"] == [emulator.DVD_KEY]
    assert [a["type"] for a in shown["addresses"]] == ["dhcp"]
    assert [r["state"] for r in emulator.reports(g.root)] == ["Ready"]


def test_a_later_boot_without_the_provisioning_dvd_is_configured_from_imds(tmp_path):
    """cloud-init ejects the DVD after reporting ready, and an operator may detach it: a
    later boot must not fail FETCH for want of it, nor report again."""
    from sim.emulators.zoneseed import cdrom

    g = make_guest(tmp_path, "azure")
    assert boot(g).returncode == 0
    for kind in ("dsk", "rdsk"):
        for suffix in ("p0", "s2"):
            os.truncate(g.path(f"/dev/{kind}/{cdrom('azure')}{suffix}"), 0)   # no medium
    result = boot(g)
    assert result.returncode == 0, result.stdout[-3000:]
    cp = g.checkpoint()
    assert (cp.phase, cp.boot, cp.instance_id) == ("DONE", 2, VM_ID)
    assert any("no provisioning DVD" in w["message"] for w in cp.warnings)
    assert g.show()["hostname"]["nodename"] == "examplevmname"
    assert len(emulator.reports(g.root)) == 1
