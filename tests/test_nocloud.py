"""NoCloud: parsing of meta-data, user-data and network-config v1/v2, and the agent against a
guest whose seed disk holds a real ISO 9660 `cidata` volume."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from fsm.errors import SMF_EXIT_ERR_CONFIG, MetadataError
from providers.items import Items
from providers.model import Nic
from providers.netconfig import parse_network_config
from providers.nocloud import parse_seed
from sim.emulators.nocloud import attach_volume, iso_image, seed_files
from sim.standins.mount import iso_files
from tests.guest import make_guest

KEY1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMoGdtovFc12Wy/u7HbSjCuUa/smTUJyBouwKcRA6h0+ one"
KEY2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr7WwgAI1R6Mm7fYzKFKRSO1GMd8qwCLyoEyT8u4lqn two"


@pytest.mark.parametrize("meta_data", [
    f"instance-id: iid-1\nlocal-hostname: web-1\npublic-keys:\n  - {KEY1}\n  - {KEY2}\n",
    json.dumps({"instance-id": "iid-1", "local-hostname": "web-1", "public-keys": [KEY1, KEY2]}),
    json.dumps({"instance-id": "iid-1", "local-hostname": "web-1",
                "public-keys": f"{KEY1}\n{KEY2}\n"}),
    json.dumps({"instance-id": "iid-1", "local-hostname": "web-1",
                "public-keys": {"alice": KEY1, "bob": [KEY2]}, "extra": {"ignored": True}}),
])
def test_meta_data_yaml_or_json_and_every_public_keys_shape(meta_data):
    md = parse_seed({"meta-data": meta_data.encode()})
    assert (md.instance_id, md.hostname, md.ssh_keys) == ("iid-1", "web-1", (KEY1, KEY2))
    assert md.origin("hostname") == "nocloud:meta-data local-hostname"
    # No network-config: DHCP on the first link.
    assert md.nics == (Nic(mac=None, dhcp4=True, primary=True),)


def test_empty_files_are_absent():
    md = parse_seed({"meta-data": b"", "user-data": b"\n", "network-config": b"  \n"})
    assert (md.instance_id, md.hostname, md.user_script) == (None, None, None)
    assert md.nics[0].dhcp4


def test_user_data_is_a_script_only_with_an_interpreter_line():
    assert parse_seed({"user-data": b"#!/bin/sh\necho hi\n"}).user_script == b"#!/bin/sh\necho hi\n"
    assert parse_seed({"user-data": b"#cloud-config\npackages: [vim]\n"}).user_script is None


@pytest.mark.parametrize("files,field,problem", [
    ({"meta-data": b"instance-id: [a\n"}, "meta-data", "not valid YAML at line"),
    ({"meta-data": b"{\"instance-id\": }"}, "meta-data", "not valid JSON"),
    ({"meta-data": b"- a\n- b\n"}, "meta-data", "must be a mapping"),
    ({"meta-data": b"\xff\xfe"}, "meta-data", "not UTF-8"),
    ({"meta-data": b"a: !!python/object/apply:os.system [true]\n"}, "meta-data", "not valid YAML"),
])
def test_malformed_files_name_the_field(files, field, problem):
    """Only a file that cannot be parsed at all refuses the seed."""
    with pytest.raises(MetadataError) as info:
        parse_seed(files)
    assert info.value.field == field and problem in info.value.problem


@pytest.mark.parametrize("meta_data,warning", [
    (b"local-hostname: [x]\n", "nocloud: meta-data local-hostname: (a list of 1 item): must be a string"),
    (b"public-keys: 5\n", "nocloud: meta-data public-keys: 5: must be a list"),
    (f"public-keys: [1, {KEY1}]\n".encode(), "nocloud: meta-data public-keys[0]: 1: must be a string"),
])
def test_a_field_of_the_wrong_type_is_a_warning_and_the_rest_is_kept(meta_data, warning):
    md = parse_seed({"meta-data": b"instance-id: iid-1\n" + meta_data,
                     "network-config": b"version: 3\n"})
    assert md.instance_id == "iid-1"
    assert any(w.startswith(warning) and w.endswith("skipped; the rest is applied")
               for w in md.warnings), md.warnings
    # An unknown network-config version: that whole document is skipped, DHCP instead.
    assert any("network-config version: must be 1 or 2, not 3" in w for w in md.warnings)
    assert md.nics == (Nic(mac=None, dhcp4=True, primary=True),)


V1 = """
version: 1
config:
  - type: physical
    name: eth0
    mac_address: "52:54:00:AB:CD:EF"
    subnets:
      - type: static
        address: 192.168.1.10
        netmask: 255.255.255.0
        gateway: 192.168.1.1
        dns_nameservers: [192.168.1.1]
        dns_search: [lab.example]
        routes:
          - network: 10.20.0.0
            netmask: 255.255.0.0
            gateway: 192.168.1.254
      - type: static6
        address: 2001:db8::10/64
        gateway: 2001:db8::1
      - type: dhcp6
  - type: physical
    name: eth1
    mac_address: "52:54:00:00:00:02"
    subnets:
      - type: dhcp
  - type: nameserver
    address: [9.9.9.9, "2620:fe::fe"]
    search: [example.org]
  - type: route
    destination: 172.16.0.0/12
    gateway: 192.168.1.253
"""

V2 = {
    "version": 2,
    "ethernets": {
        "net0": {"match": {"macaddress": "52:54:00:ab:cd:ef"},
                 "addresses": ["192.168.1.10/24", "2001:db8::10/64"],
                 "gateway4": "192.168.1.1", "gateway6": "2001:db8::1",
                 "routes": [{"to": "10.20.0.0/16", "via": "192.168.1.254"},
                            {"to": "172.16.0.0/12", "via": "192.168.1.253"}],
                 "nameservers": {"addresses": ["192.168.1.1", "9.9.9.9", "2620:fe::fe"],
                                 "search": ["lab.example", "example.org"]},
                 "dhcp6": True},
        "net1": {"match": {"macaddress": "52:54:0:0:0:2"}, "dhcp4": True},
    },
}

EXPECTED_NET0 = Nic(mac="52:54:00:ab:cd:ef", addresses=("192.168.1.10/24", "2001:db8::10/64"),
                    addrconf=True, gateways=("192.168.1.1", "2001:db8::1"), primary=True)
EXPECTED_NET1 = Nic(mac="52:54:00:00:00:02", dhcp4=True)


@pytest.mark.parametrize("doc", [V1, f"network:\n  {V1.strip().replace(chr(10), chr(10) + '  ')}\n",
                                 json.dumps(V2), json.dumps({"network": V2})])
def test_network_config_v1_and_v2_wrapped_or_not(doc):
    md = parse_seed({"network-config": doc.encode()})
    net0, net1 = md.nics
    assert (net0.mac, net0.addresses, net0.addrconf, net0.gateways, net0.primary) == (
        EXPECTED_NET0.mac, EXPECTED_NET0.addresses, True, EXPECTED_NET0.gateways, True)
    assert (net1.mac, net1.dhcp4, net1.primary) == (EXPECTED_NET1.mac, True, False)
    assert {(r.destination, r.gateway) for r in md.routes} == {
        ("10.20.0.0/16", "192.168.1.254"), ("172.16.0.0/12", "192.168.1.253")}
    assert md.warnings == ()   # a v1 `type: route` item's own `type` is not a route field
    assert set(md.resolvers) == {"192.168.1.1", "9.9.9.9", "2620:fe::fe"}
    assert set(md.search_domains) == {"lab.example", "example.org"}


@pytest.mark.parametrize("doc,field", [
    ({"version": 2, "ethernets": {"n": {"match": {"macaddress": "zz"}}}},
     "network-config ethernets.n.match.macaddress: 'zz'"),
    ({"version": 2, "ethernets": {"n": {"addresses": ["10.0.0.1"]}}},
     "network-config ethernets.n.addresses[0]: '10.0.0.1' has no prefix"),
    ({"version": 2, "ethernets": {"n": {"gateway4": "10.0.0"}}},
     "network-config ethernets.n.gateway4: '10.0.0'"),
    ({"version": 2, "ethernets": {"n": {"dhcp4": "maybe"}}}, "network-config ethernets.n.dhcp4: 'maybe'"),
    ({"version": 2, "ethernets": {"n": {"routes": [{"to": "default"}]}}},
     "network-config ethernets.n.routes[0].via: a default route needs a gateway"),
    ({"version": 1, "config": [{"type": "physical", "subnets": [
        {"type": "static", "address": "10.0.0.2", "netmask": "255.0.255.0"}]}]},
     "network-config config[0].subnets[0].address"),
    ({"version": 1, "config": [{"type": "physical", "subnets": [{"type": "manual6"}]}]},
     "network-config config[0].subnets[0].type: unknown subnet type 'manual6'"),
    ({"version": 1, "config": [{"type": "bond", "name": "bond0"}]},
     "network-config config[0].bond_interfaces: None is not a list of interface names"),
    ({"version": 2, "ethernets": {}, "vlans": {"vlan10": {"id": 5000, "link": "n"}}},
     "network-config vlans.vlan10.id: 5000 is not a VLAN ID from 1 to 4094"),
    ({"version": 2, "ethernets": {"a": {"dhcp4": True}, "b": {"dhcp4": True}}},
     "network-config b: 'b': no MAC address, only a Linux name"),
])
def test_an_item_the_agent_cannot_apply_is_a_warning_naming_it(doc, field):
    """Each bad item is skipped with a warning naming source, field and value; a good NIC
    beside it is still configured."""
    good = {"match": {"macaddress": "52:54:00:00:00:09"}, "addresses": ["10.9.0.5/24"]}
    if doc["version"] == 2:
        doc = {**doc, "ethernets": {"good": good, **doc["ethernets"]}}
    else:
        doc = {**doc, "config": [*doc["config"], {
            "type": "physical", "name": "good", "mac_address": "52:54:00:00:00:09",
            "subnets": [{"type": "static", "address": "10.9.0.5/24"}]}]}
    items = Items("nocloud")
    network = parse_network_config(doc, items)
    assert any(w.startswith(f"nocloud: {field}") for w in items.warnings), items.warnings
    assert network is not None
    assert [n.addresses for n in network["nics"] if n.name == "good"] == [("10.9.0.5/24",)]


def test_one_bad_item_still_installs_keys_hostname_and_every_supported_address():
    doc = """version: 1
config:
  - type: physical
    name: eth0
    mac_address: "52:54:00:ab:cd:ef"
    subnets:
      - type: static
        address: 192.168.1.10/24
        gateway: 192.168.1.1
      - type: static6
        address: "2001:db8::10"
        netmask: "ffff:ffff:ffff:ffff::"
      - type: manual
      - type: static
        address: 192.168.1.11
        netmask: 255.0.255.0
  - type: route
    destination: 10.0.0.0/8
  - type: nameserver
    address: [192.168.1.1, not-an-ip]
"""
    md = parse_seed({"meta-data": f"instance-id: i\nlocal-hostname: web-1\npublic-keys: [{KEY1}]\n"
                     .encode(), "network-config": doc.encode()})
    assert (md.hostname, md.ssh_keys) == ("web-1", (KEY1,))
    assert md.nics[0].addresses == ("192.168.1.10/24", "2001:db8::10/64")
    assert md.nics[0].gateways == ("192.168.1.1",) and md.resolvers == ("192.168.1.1",)
    assert md.routes == ()
    assert len(md.warnings) == 3, md.warnings
    assert "subnets[3].address: '192.168.1.11/255.0.255.0' has no contiguous netmask" in md.warnings[0]
    assert "config[1].gateway: route to '10.0.0.0/8' has no gateway" in md.warnings[1]
    assert "config[2].address[1]: 'not-an-ip' is not an IP address" in md.warnings[2]


def test_network_config_disabled_skips_the_network_as_cloud_init_does():
    md = parse_seed({"meta-data": b"instance-id: i\n",
                     "network-config": b"network:\n  config: disabled\n"})
    assert md.network_skip and md.nics == () and not md.warnings
    assert md.origin("network_skip") == "nocloud:network-config config: disabled"


def test_an_empty_volume_is_no_usable_data():
    for files in ({}, {"meta-data": b"", "user-data": b"\n"}, {"meta-data": b"# nothing\n"}):
        md = parse_seed(files)
        assert md.empty and md.instance_id is None, files
        assert any("no usable data" in w for w in md.warnings)
    assert not parse_seed({"meta-data": b"instance-id: x\n"}).empty


def test_meta_data_network_interfaces_as_in_cloud_inits_nocloud_example():
    """doc/rtd/reference/datasources/nocloud.rst: ENI text in meta-data, used only when
    there is no network-config file."""
    meta = b"""instance-id: iid-abcdefg
network-interfaces: |
  iface eth0 inet static
  address 192.168.1.10
  network 192.168.1.0
  netmask 255.255.255.0
  broadcast 192.168.1.255
  gateway 192.168.1.254
  dns-nameservers 192.168.1.254 8.8.8.8
  post-up /sbin/do-something
hostname: myhost
"""
    md = parse_seed({"meta-data": meta})
    assert md.hostname == "myhost" and md.origin("nics") == "nocloud:meta-data network-interfaces"
    assert md.nics == (Nic(mac=None, addresses=("192.168.1.10/24",),
                           gateways=("192.168.1.254",), primary=True, name="eth0"),)
    assert md.resolvers == ("192.168.1.254", "8.8.8.8")
    assert md.warnings == ("nocloud: meta-data network-interfaces iface eth0 post-up: hook "
                           "commands are never run by this agent; skipped",)
    with_file = parse_seed({"meta-data": meta, "network-config": b"version: 2\nethernets: {}\n"})
    assert with_file.nics == () and with_file.origin("nics") == "nocloud:network-config"


# ---- the ISO volume and the agent ---------------------------------------------------------

@pytest.mark.skipif(shutil.which("isoinfo") is None, reason="isoinfo (genisoimage) not installed")
def test_our_volume_is_read_by_isoinfo(tmp_path):
    image = tmp_path / "seed.iso"
    image.write_bytes(iso_image("cidata", {"meta-data": b"instance-id: x\n", "user-data": b"#!/bin/sh\n"}))
    info = subprocess.run(["isoinfo", "-d", "-i", str(image)], capture_output=True, text=True).stdout
    listing = subprocess.run(["isoinfo", "-R", "-f", "-i", str(image)], capture_output=True,
                             text=True).stdout
    assert "Volume id: cidata" in info and set(listing.split()) == {"/meta-data", "/user-data"}


@pytest.mark.skipif(shutil.which("genisoimage") is None, reason="genisoimage not installed")
@pytest.mark.parametrize("flags", [["-joliet", "-rock"], ["-joliet"], ["-rock"]])
def test_cloud_localds_style_volumes_are_read(tmp_path, flags):
    src = tmp_path / "src"
    src.mkdir()
    (src / "meta-data").write_text("instance-id: iid-genisoimage\n")
    (src / "network-config").write_text("version: 2\nethernets: {}\n")
    image = tmp_path / "seed.iso"
    subprocess.run(["genisoimage", "-quiet", "-output", str(image), "-volid", "cidata", *flags,
                    str(src)], check=True)
    assert iso_files(image.read_bytes()) == {"meta-data": b"instance-id: iid-genisoimage\n",
                                             "network-config": b"version: 2\nethernets: {}\n"}


def test_nocloud_guest_end_to_end(tmp_path):
    guest = make_guest(tmp_path, "nocloud")
    result = guest.run()
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "metadata from nocloud: instance iid-nocloud-0001" in out
    assert "NoCloud volume 'cidata' (hsfs) on /dev/dsk/c2t0d0p0" in out
    assert "first boot on nocloud" not in out        # user-data is never logged
    cp = guest.checkpoint()
    assert (cp.phase, cp.provider) == ("DONE", "nocloud")
    assert guest.state().get("mounts") == [] and guest.read("/etc/mnttab") == ""


def test_qemu_guest_with_a_nocloud_disk_uses_it(tmp_path):
    """Unlike the original agent: a QEMU guest with no CPIO seed but a cidata disk."""
    guest = make_guest(tmp_path, "qemu", {"format": "newc"})
    attach_volume(guest.root, "c2t0d0", iso_image("CIDATA", seed_files(
        {"meta-data": {"instance-id": "iid-qemu", "local-hostname": "q"}})).ljust(1 << 20, b"\0"))
    result = guest.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert guest.checkpoint().provider == "nocloud"
    assert "metadata from nocloud: instance iid-qemu" in result.stdout


def test_malformed_network_config_on_the_volume_stops_at_fetch(tmp_path):
    guest = make_guest(tmp_path, "nocloud", {"network-config": "version: 2\nethernets: [\n"})
    result = guest.run()
    out = result.stdout + result.stderr
    assert result.returncode == SMF_EXIT_ERR_CONFIG, out
    assert "nocloud: network-config: not valid YAML at line" in out and "Traceback" not in out
    assert guest.state().get("mounts") == []           # unmounted even on failure


def test_cloud_config_keys_and_name_are_taken_the_rest_warned_about(caplog):
    """Proxmox puts root's keys and the name in cloud-config user-data, not in meta-data;
    cloud-init installs them (ssh_authorized_keys for the default user, root here; fqdn,
    else hostname, over meta-data). A module the agent does not apply is named in a
    warning, never its value; a password is never shown."""
    user_data = (f"#cloud-config\nhostname: web1\nfqdn: web1.example.com\nuser: admin\n"
                 f"password: hunter2\nssh_authorized_keys:\n  - {KEY2}\n"
                 f"users:\n  - name: bob\n    ssh_authorized_keys: [{KEY1}]\n"
                 f"snap: {{commands: [hunter3]}}\n").encode()
    md = parse_seed({"meta-data": f"instance-id: i\nlocal-hostname: meta\npublic-keys: [{KEY1}]\n"
                     .encode(), "user-data": user_data})
    assert md.hostname == "web1.example.com" and md.origin("hostname") == "nocloud:user-data fqdn"
    # meta-data's keys are root's; cloud-config's go to the default user (IDENTITY/ssh-keys
    # adds them to root's when no [users] default is set), bob's to bob.
    assert md.ssh_keys == (KEY1,) and md.origin("ssh_keys") == "nocloud:meta-data public-keys"
    cc = md.cloud_config
    assert cc is not None and cc.ssh_authorized_keys == (KEY2,)
    assert cc.user is not None and cc.user.name == "admin"
    assert [(u.name, u.ssh_authorized_keys) for u in cc.users] == [("bob", (KEY1,))]
    assert md.user_script is None
    assert md.warnings == ("nocloud:user-data: 'snap' is not a cloud-config module the agent "
                           "applies; ignored",)
    for text in (caplog.text, "".join(md.warnings), repr(md)):
        assert "hunter2" not in text and "hunter3" not in text
    broken = parse_seed({"meta-data": b"instance-id: i\n", "user-data": b"#cloud-config\n[a\n"})
    assert broken.warnings[0].startswith("nocloud:user-data: #cloud-config is not valid YAML")
    assert broken.cloud_config is None
    # Neither a script nor cloud-config: named, never quoted (it can be a secret).
    other = parse_seed({"meta-data": b"instance-id: i\n", "user-data": b"token=hunter4\n"})
    assert other.warnings == ("nocloud:user-data: neither a script (#!) nor #cloud-config "
                              "(14 bytes, not shown); ignored",)
