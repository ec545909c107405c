"""VMware guestinfo: encodings, the cloud-init metadata form, the vmware-rpctool stand-in,
and the agent on simulated VMware guests with and without open-vm-tools."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys

import pytest

from fsm.errors import SMF_EXIT_ERR_CONFIG, MetadataError
from providers.vmware import decode, parse
from sim.emulators import cpio as cpio_emulator
from sim.emulators.vmware import default_metadata, encode
from sim.standins import vmware_rpctool
from sim.standins.base import Exit, Invocation
from tests.guest import make_guest

META = {"instance-id": "vm-42", "local-hostname": "vm42",
        "public-keys": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr7WwgAI1R6Mm7fYzKFKRSO1GMd8qwCLyoEyT8u4lqn a"}


@pytest.mark.parametrize("encoding", ["", "base64", "b64", "gzip+base64", "gz+b64"])
def test_every_encoding_round_trips(encoding):
    text = json.dumps(META)
    assert decode(encode(text, encoding), encoding or None, "metadata") == text.encode()


@pytest.mark.parametrize("value,encoding,field,problem", [
    ("%%%not base64", "base64", "guestinfo.metadata", "not valid base64"),
    (base64.b64encode(b"not gzip").decode(), "gzip+base64", "guestinfo.metadata", "not valid gzip"),
    (base64.b64encode(gzip.compress(b"x", mtime=0)[:-6]).decode(), "gzip+base64", "guestinfo.metadata",
     "not valid gzip"),
    ("e30=", "rot13", "guestinfo.metadata.encoding", "unknown encoding"),
    (base64.b64encode(gzip.compress(b" " * (2 << 20), mtime=0)).decode(), "gzip+base64",
     "guestinfo.metadata", "decompresses to more than"),
])
def test_bad_encodings_are_clear_errors(value, encoding, field, problem):
    with pytest.raises(MetadataError) as info:
        decode(value, encoding, "metadata")
    assert (info.value.source, info.value.field) == ("vmware", field)
    assert problem in info.value.problem


def test_metadata_yaml_with_encoded_v1_network():
    network = {"version": 1, "config": [
        {"type": "physical", "name": "ens192", "mac_address": "00:50:56:aa:bb:cc",
         "subnets": [{"type": "static", "address": "10.0.0.5/24", "gateway": "10.0.0.1"}]},
        {"type": "nameserver", "address": ["10.0.0.1"]}]}
    meta = (f"instance-id: vm-42\nlocal-hostname: vm42\nnetwork.encoding: gzip+base64\n"
            f"network: {encode(json.dumps(network), 'gzip+base64')}\n")
    md = parse(meta.encode(), b"#!/bin/sh\necho hi\n")
    assert (md.instance_id, md.hostname, md.user_script) == ("vm-42", "vm42", b"#!/bin/sh\necho hi\n")
    assert md.nics[0].mac == "00:50:56:aa:bb:cc" and md.nics[0].addresses == ("10.0.0.5/24",)
    assert md.resolvers == ("10.0.0.1",)
    assert md.origin("hostname") == "vmware:guestinfo.metadata local-hostname"


def test_cloud_config_user_data_is_not_run_and_no_network_means_dhcp():
    md = parse(json.dumps(META).encode(), b"#cloud-config\nusers: []\n")
    assert md.user_script is None and md.nics[0].dhcp4 and md.nics[0].mac is None


@pytest.mark.parametrize("meta,field", [
    (b"[1, 2]", "guestinfo.metadata"),
    (b"{not: [json", "guestinfo.metadata"),
])
def test_malformed_metadata_names_the_field(meta, field):
    """Only a metadata document that cannot be parsed at all is refused."""
    with pytest.raises(MetadataError) as info:
        parse(meta, None)
    assert info.value.field == field and info.value.source == "vmware"


@pytest.mark.parametrize("meta,warning", [
    (b'{"local-hostname": 7.5}', "vmware: guestinfo.metadata local-hostname: 7.5: must be a string"),
    (b'{"network": {"version": 2, "ethernets": {"e": {"addresses": ["nope"]}}}}',
     "vmware: guestinfo.metadata network ethernets.e.addresses[0]: 'nope' has no prefix"),
    (b'{"network": 12}', "vmware: guestinfo.metadata network: must be a mapping"),
])
def test_a_field_the_agent_cannot_use_is_a_warning_and_the_keys_stay(meta, warning):
    doc = json.loads(meta)
    doc["public-keys-data"] = KEY
    md = parse(json.dumps(doc).encode(), None)
    assert md.ssh_keys == (KEY,)
    assert any(w.startswith(warning) for w in md.warnings), md.warnings


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr7WwgAI1R6Mm7fYzKFKRSO1GMd8qwCLyoEyT8u4lqn a"
KEY2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMoGdtovFc12Wy/u7HbSjCuUa/smTUJyBouwKcRA6h0+ b"


@pytest.mark.parametrize("field", ["public-keys-data", "public_keys_data", "public-keys",
                                   "public_keys"])
@pytest.mark.parametrize("shape", ["text", "list"])
def test_keys_from_each_field_cloud_init_reads(field, shape):
    """cloud-init's DataSourceVMware.get_public_ssh_keys reads these four, in this order;
    its VMware documentation tells users to set `public-keys-data`."""
    value = f"{KEY}\n{KEY2}\n" if shape == "text" else [KEY, KEY2]
    md = parse(json.dumps({"instance-id": "vm-1", field: value}).encode(), None)
    assert md.ssh_keys == (KEY, KEY2)
    assert md.origin("ssh_keys") == f"vmware:guestinfo.metadata {field}"


def test_the_first_key_field_present_wins_as_in_cloud_init():
    md = parse(json.dumps({"public_keys": [KEY2], "public-keys-data": KEY}).encode(), None)
    assert md.ssh_keys == (KEY,)


def test_vmware_guest_gets_root_keys_from_public_keys_data(tmp_path):
    """Was: `public-keys-data` ignored and "no SSH keys" logged: the user locked out."""
    metadata = default_metadata()
    meta = metadata["guestinfo"]["metadata"]
    del meta["public-keys"]
    meta["public-keys-data"] = f"{KEY}\n"
    guest = make_guest(tmp_path, "vmware", metadata)
    rpctool_works(guest)
    result = guest.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert guest.read("/root/.ssh/authorized_keys") == KEY + "\n"


def test_rpctool_standin_get_set_and_missing_key():
    inv = Invocation("vmware-rpctool", ["info-set guestinfo.x hello world"], "/nonexistent", {})
    assert vmware_rpctool.main(inv) == 0
    assert inv.state["guestinfo"] == {"guestinfo.x": "hello world"}
    for argv in (["info-get guestinfo.missing"], ["machine.id.get"], []):
        with pytest.raises(Exit) as info:
            code = vmware_rpctool.main(Invocation("vmware-rpctool", argv, "/nonexistent", inv.state))
            raise Exit(code)
        assert info.value.code == 1


# ---- the agent on VMware guests -----------------------------------------------------------

def rpctool_works(guest) -> bool:
    """The stand-in dispatcher must map `vmware-rpctool` to the module vmware_rpctool."""
    proc = subprocess.run([guest.path("/usr/bin/vmware-rpctool"), "info-get guestinfo.metadata"],
                          capture_output=True, text=True)
    if "No module named 'sim.standins.vmware-rpctool'" in proc.stderr:
        pytest.skip("sim/standins/__main__.py does not yet map '-' to '_' in command names")
    return proc.returncode == 0


def test_vmware_guest_with_guestinfo(tmp_path):
    guest = make_guest(tmp_path, "vmware")
    assert rpctool_works(guest)
    assert guest.state()["guestinfo"]["guestinfo.metadata.encoding"] == "gzip+base64"
    result = guest.run()
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "metadata from vmware: instance vmware-instance-0001" in out
    assert "first boot on vmware" not in out
    assert guest.checkpoint().provider == "vmware"


def test_vmware_with_tools_but_no_guestinfo_uses_the_cpio_seed(tmp_path):
    seed = cpio_emulator.default_metadata()
    guest = make_guest(tmp_path, "vmware", {"guestinfo": {}, "cpio": seed})
    rpctool_works(guest)
    result = guest.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CPIO seed archive on /dev/rdsk/c1t1d0p0" in result.stdout
    assert guest.checkpoint().provider == "cpio"


def test_vmware_fusion_without_tools_uses_the_cpio_seed(tmp_path):
    guest = make_guest(tmp_path, "vmware", {"open-vm-tools": False,
                                            "cpio": {"nodename": "fusion", "format": "odc"}})
    assert not (tmp_path / "guest/usr/bin/vmware-rpctool").exists()
    result = guest.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "metadata from cpio" in result.stdout and guest.checkpoint().provider == "cpio"


def test_bad_guestinfo_stops_at_fetch(tmp_path):
    metadata = default_metadata()
    metadata["guestinfo"]["metadata"] = "instance-id: [unclosed"
    metadata["guestinfo"]["metadata.encoding"] = "base64"
    guest = make_guest(tmp_path, "vmware", metadata)
    rpctool_works(guest)
    result = guest.run()
    out = result.stdout + result.stderr
    assert result.returncode == SMF_EXIT_ERR_CONFIG, out
    assert "vmware: guestinfo.metadata: not valid YAML" in out and "Traceback" not in out


# ---- a third-party client: cloud-init's VMware datasource through the stand-in ----------

CLOUD_INIT_GUESTINFO = """
import json, sys
from cloudinit.sources import DataSourceVMware as ds
rpctool = sys.argv[1]
print(json.dumps({
    "metadata": ds.load_json_or_yaml(ds.guestinfo("metadata", rpctool)),
    "userdata": ds.guestinfo("userdata", rpctool),
}))
"""


def test_cloud_init_reads_the_emulated_guestinfo(tmp_path):
    # cloud-init's DataSourceVMware guestinfo(): `vmware-rpctool "info-get guestinfo.KEY"`,
    # then KEY.encoding, decoded by its decode(): our encodings must be the ones it knows.
    python = next((p for p in (sys.executable, "/usr/bin/python3") if os.path.exists(p)
                   and subprocess.run([p, "-c", "import cloudinit.sources.DataSourceVMware"],
                                      capture_output=True, timeout=30).returncode == 0), None)
    if python is None:
        pytest.skip("cloud-init is not importable")
    guest = make_guest(tmp_path, "vmware")
    rpctool_works(guest)
    script = tmp_path / "cloud_init_vmware.py"
    script.write_text(CLOUD_INIT_GUESTINFO)
    result = subprocess.run([python, str(script), guest.path("/usr/bin/vmware-rpctool")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)
    info = default_metadata()["guestinfo"]
    assert out == {"metadata": info["metadata"], "userdata": info["userdata"]}
