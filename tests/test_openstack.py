"""OpenStack guests (a `config-2` drive, ISO 9660 or FAT, or Nova's metadata service) and a
Proxmox VE configdrive2 guest boot to DONE fully configured; items the agent cannot apply
are warnings naming them and the rest is applied; cloud-init's own OpenStack reader (from
Debian's package) reads our drive and our metadata service."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from guest import make_guest

from providers.openstack import choose_version, parse
from sim.emulators import openstack, pveconfigdrive
from sim.emulators.openstack import KEY, PASSWORD_HASH
from sim.emulators.zoneseed import PVE_HASH
from sim.hardware import hardware
from sim.serve import serving

CLOUD_INIT = "/usr/lib/python3/dist-packages/cloudinit/sources/helpers/openstack.py"


def boot(g, code: int = 0) -> str:
    with serving(g.root):
        proc = g.run()
    assert proc.returncode == code, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def warnings_of(g) -> list[str]:
    return [w["message"] for w in g.checkpoint().warnings]


def assert_nova_instance(g, platform: str, warnings: tuple[str, ...] = ()) -> None:
    """What sim/emulators/openstack.py's default instance asks for, all of it applied
    (but for the items `warnings` name)."""
    shown = g.show()
    assert g.checkpoint().phase == "DONE"
    assert g.checkpoint().instance_id == hardware(platform)["smbios"]["uuid"].lower()
    assert shown["hostname"]["nodename"] == "web-1"
    assert "web-1.novalocal" in shown["hostname"]["hosts"][0]
    assert [a["addr"] for a in shown["addresses"]] == ["10.0.0.15/24"]
    assert shown["routes"] == [{"destination": "default", "gateway": "10.0.0.1"}]
    assert shown["dns"]["nameservers"] == ["10.0.0.2"]
    assert shown["ssh"]["authorized_keys"] == [KEY]        # public_keys and keys: once
    deploy = shown["users"]["deploy"]
    assert deploy["ssh"]["authorized_keys"] == [KEY]
    assert f"deploy:{PASSWORD_HASH}:" in g.read("/etc/shadow")
    # vendor_data.json's cloud-init member, merged under user-data.
    assert "TZ=Europe/Berlin" in g.read("/etc/default/init").splitlines()
    assert warnings_of(g) == list(warnings)


@pytest.mark.parametrize("drive_format", ["iso9660", "vfat"])
def test_openstack_guest_is_configured_from_its_config_drive(tmp_path, drive_format):
    md = openstack.default_metadata()
    md["format"] = drive_format
    g = make_guest(tmp_path, "openstack", md)
    out = boot(g)
    fstype = "hsfs" if drive_format == "iso9660" else "pcfs"
    assert f"config drive 'config-2' ({fstype})" in out
    assert "openstack/latest:" in out
    assert "DHCP" not in out and "metadata service" not in out   # nothing asked the network
    assert_nova_instance(g, "openstack")
    # A second boot changes nothing.
    before = g.show()
    boot(g)
    assert {k: v for k, v in g.show().items() if k != "calls"} == \
        {k: v for k, v in before.items() if k != "calls"}


def test_openstack_without_a_drive_reads_the_metadata_service_after_dhcp(tmp_path):
    g = make_guest(tmp_path, "openstack-http")
    out = boot(g)
    assert "no 'config-2' volume: reading the metadata service" in out
    assert "openstack: DHCP on vioif0 to reach the metadata service" in out
    assert "/openstack/latest: meta_data.json, network_data.json, user_data" in out
    # FETCH's DHCP plumbed the link to reach the service, and vioif takes no MTU change on
    # a plumbed link: the tap link's 1450 is a warning naming it; the rest is applied.
    assert_nova_instance(g, "openstack-http", (
        "openstack:network_data.json: tapcd9f6d46-4a mtu (on vioif0) 1450: `dladm "
        "set-linkprop` refused it: dladm: warning: cannot set link property 'mtu' on "
        "'vioif0': link busy; skipped; the rest is applied",))
    # NETWORK replaced FETCH's DHCP address with the static one network_data.json names.
    assert [a["addrobj"] for a in g.show()["addresses"]] == ["vioif0/v4"]


def test_a_service_that_keeps_failing_stops_fetch_within_its_bound(tmp_path):
    md = {**openstack.default_metadata("openstack-http"), "drive": False,
          "_emulator": {"status": 503}}
    g = make_guest(tmp_path, "openstack-http", md)
    g.write("/etc/metadata-agent.toml", "[timeouts]\nfetch = 2\nhttp = 1\ndhcp = 5\n")
    out = boot(g, code=95)
    assert "within the 2 s fetch budget; last: HTTP 503" in out
    assert g.checkpoint().phase == "FETCH"


def test_proxmox_configdrive2_is_found_by_its_label_and_fully_applied(tmp_path):
    g = make_guest(tmp_path, "proxmox-configdrive2")
    out = boot(g)
    assert "config drive 'config-2' (hsfs) on /dev/dsk/c1t0d0p0" in out
    assert "openstack/latest: meta_data.json, network_config, user_data, vendor_data.json" in out
    shown = g.show()
    assert shown["hostname"]["nodename"] == "pve-cd2"
    assert "pve-cd2.example.com" in shown["hostname"]["hosts"][0]
    # content/0000 (ENI): eth0 by name is the first link; DNS under `lo`, spelt dns_*.
    assert [a["addr"] for a in shown["addresses"]] == ["192.168.20.40/24"]
    assert shown["routes"] == [{"destination": "default", "gateway": "192.168.20.1"}]
    assert shown["dns"]["nameservers"] == ["192.168.20.1"]
    assert shown["dns"]["search"] == ["example.com"]
    admin = shown["users"]["admin"]
    assert admin["ssh"]["authorized_keys"] == [pveconfigdrive.KEY]
    assert f"admin:{PVE_HASH}:" in g.read("/etc/shadow")
    assert len(g.checkpoint().instance_id) == 40          # Cloudinit.pm's SHA-1 uuid
    assert warnings_of(g) == []


def test_without_latest_the_newest_version_directory_is_read(tmp_path):
    md = openstack.default_metadata()
    # 2013-04-04 predates network_data.json (Liberty): reading it would mean DHCP.
    md["versions"] = ["2013-04-04", "2017-02-22"]
    g = make_guest(tmp_path, "openstack", md)
    out = boot(g)
    assert "openstack/2017-02-22:" in out
    assert [a["addr"] for a in g.show()["addresses"]] == ["10.0.0.15/24"]
    assert choose_version(["2012-08-10", "2016-06-30", "content"]) == "2016-06-30"
    assert choose_version(["2018-08-27", "latest"]) == "latest"
    assert choose_version(["content"]) is None


BAD_NETWORK = {
    "links": [
        {"id": "tap0", "type": "ovs", "ethernet_mac_address": "fa:16:3e:9c:bf:3d", "mtu": "big"},
        {"id": "bond0", "type": "bond", "bond_links": ["tap0"], "bond_mode": "802.3ad"},
        {"id": "vlan7", "type": "vlan", "vlan_id": 7, "vlan_link": "tap0",
         "vlan_mac_address": "fa:16:3e:00:00:07"},
        {"id": "tap9", "type": "ovs", "ethernet_mac_address": "not-a-mac"},
    ],
    "networks": [
        {"id": "n0", "link": "tap0", "type": "ipv4", "ip_address": "10.0.0.15",
         "netmask": "255.255.255.0",
         "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"},
                    {"network": "192.168.0.0", "netmask": "255.255.0.0",
                     "gateway": "10.0.0.999"}]},
        {"id": "n1", "link": "tap0", "type": "ipv4", "ip_address": "10.0.0.300",
         "netmask": "255.255.255.0"},
        {"id": "n2", "link": "vlan7", "type": "ipv4", "ip_address": "10.7.0.5",
         "netmask": "255.255.255.0"},
        {"id": "n3", "link": "tap0", "type": "ipv4_carrier_pigeon"},
    ],
    "services": [{"type": "dns", "address": "10.0.0.2"}, {"type": "ntp", "address": "10.0.0.3"},
                 {"type": "dns", "address": "dns.example"}],
}


def test_bad_items_are_warnings_naming_them_and_the_rest_is_applied(tmp_path):
    md = openstack.default_metadata()
    md["network_data.json"] = BAD_NETWORK
    md["meta_data.json"]["keys"].append({"type": "x509", "data": "-----BEGIN"})
    md["meta_data.json"]["keys"].append("ssh-rsa AAAA")
    g = make_guest(tmp_path, "openstack", md)
    boot(g)
    status = g.metadata("status")
    assert status.returncode == 2, status.stdout               # done, with warnings
    shown = g.show()
    assert [a["addr"] for a in shown["addresses"]] == ["10.0.0.15/24"]
    assert shown["routes"] == [{"destination": "default", "gateway": "10.0.0.1"}]
    assert shown["dns"]["nameservers"] == ["10.0.0.2"]
    assert shown["ssh"]["authorized_keys"] == [KEY]
    assert shown["hostname"]["nodename"] == "web-1"
    text = "\n".join(warnings_of(g))
    for field in ("links[0].mtu: 'big'", "links[1].type: 'bond'", "links[2].type: 'vlan'",
                  "links[3].ethernet_mac_address", "networks[0].routes[1].gateway",
                  "networks[1].ip_address", "networks[2].link: 'vlan7'",
                  "networks[3].type", "services[1].type: 'ntp'", "services[2].address",
                  "meta_data.json keys[1].type: 'x509'", "meta_data.json keys[2]"):
        assert field in text, (field, text)
    assert all(w.startswith("openstack: ") for w in warnings_of(g))


def test_a_drive_without_meta_data_json_stops_fetch_naming_it(tmp_path):
    md = openstack.default_metadata()
    md["meta_data.json"] = None
    g = make_guest(tmp_path, "openstack", md)
    out = boot(g, code=96)
    assert "meta_data.json: missing (it is required)" in out
    assert g.checkpoint().phase == "FETCH"


@pytest.mark.parametrize("platform", ["openstack", "openstack-http"])
def test_a_document_over_the_cap_is_refused_naming_it(tmp_path, platform):
    md = openstack.default_metadata(platform)
    md.update(versions=["latest"], user_data="#!/bin/sh\n" + "#" * (2 << 20) + "\n")
    if platform == "openstack-http":
        md["drive"] = False
    g = make_guest(tmp_path, platform, md)
    out = boot(g, code=96)
    assert "latest/user_data: larger than 1048576 bytes" in out
    assert g.checkpoint().phase == "FETCH"


def test_meta_data_that_is_not_an_object_is_refused_and_vendor_data_loses_to_user_data():
    with pytest.raises(Exception, match="must be a JSON object"):
        parse({"meta_data.json": b"[1, 2]"})
    md = parse({"meta_data.json": b'{"uuid": "i-1"}',
                "user_data": b"#cloud-config\ntimezone: Asia/Tokyo\n",
                "vendor_data.json": json.dumps({"cloud-init": "#cloud-config\ntimezone: UTC\n"
                                                               "runcmd: [uptime]\n"}).encode()})
    assert md.cloud_config.timezone == "Asia/Tokyo"
    assert md.cloud_config.runcmd                       # vendor's other keys still merged
    # Proxmox VE writes its vendor snippet verbatim (not JSON): taken as cloud-config.
    md = parse({"meta_data.json": b'{"uuid": "i-1"}',
                "vendor_data.json": b"#cloud-config\ntimezone: UTC\n"})
    assert md.cloud_config.timezone == "UTC" and md.warnings == ()


# ---- cloud-init's OpenStack helper against our drive and our service ---------------------

def cloud_init_reads(script: str, *args: str) -> dict:
    if not os.path.exists(CLOUD_INIT):
        pytest.skip("Debian's cloud-init package is not installed")
    done = subprocess.run(["/usr/bin/python3", "-c", script, *args], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


READ_DRIVE = r"""
import json, sys
from cloudinit.sources.helpers import openstack
found = openstack.ConfigDriveReader(sys.argv[1]).read_v2()
net = openstack.convert_net_json(found.get("networkdata"), known_macs={sys.argv[2]: "vioif0"})
print(json.dumps({"metadata": found["metadata"], "userdata": found["userdata"].decode(),
                  "vendordata": found.get("vendordata"), "network": net}, default=str))
"""


def extract_drive(tmp_path, drive_format: str) -> str:
    """The drive's tree as a third-party tool extracts it (bsdtar for the ISO, mtools' mcopy
    for FAT), not as our own stand-ins read it."""
    kind, image = openstack.drive_image({**openstack.default_metadata(),
                                         "format": drive_format})
    path = tmp_path / f"drive.{kind}"
    path.write_bytes(image)
    tree = tmp_path / "tree"
    tree.mkdir()
    if kind == "iso9660":
        subprocess.run(["bsdtar", "-xf", str(path), "-C", str(tree)], check=True)
    else:
        subprocess.run(["mcopy", "-s", "-i", str(path), "::/openstack", str(tree)], check=True,
                       env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    return str(tree)


@pytest.mark.parametrize("drive_format", ["iso9660", "vfat"])
def test_cloud_init_config_drive_reader_reads_our_drive(tmp_path, drive_format):
    mac = openstack._mac("openstack")
    found = cloud_init_reads(READ_DRIVE, extract_drive(tmp_path, drive_format), mac)
    uuid = hardware("openstack")["smbios"]["uuid"].lower()
    assert found["metadata"]["instance-id"] == uuid
    assert found["metadata"]["local-hostname"] == "web-1.novalocal"
    assert found["metadata"]["public_keys"] == {"mykey": KEY + "\n"}
    assert found["userdata"].startswith("#cloud-config\nusers:")
    assert found["vendordata"] == {"cloud-init": "#cloud-config\ntimezone: Europe/Berlin\n"}
    physical, nameserver = found["network"]["config"]
    assert physical["name"] == "vioif0" and physical["mac_address"] == mac
    assert physical["subnets"][0]["address"] == "10.0.0.15"
    assert physical["subnets"][0]["routes"][0]["gateway"] == "10.0.0.1"
    assert nameserver == {"type": "nameserver", "address": "10.0.0.2"}


READ_SERVICE = r"""
import json, sys
from cloudinit.sources.helpers import openstack
reader = openstack.MetadataReader(sys.argv[1], timeout=30, retries=0)
# The EC2 half is read from the hard-coded 169.254.169.254, which is not ours.
reader._read_ec2_metadata = lambda: {}
found = reader.read_v2()
print(json.dumps({"metadata": found["metadata"], "userdata": found["userdata"].decode(),
                  "vendordata": found.get("vendordata"), "networkdata": found["networkdata"],
                  "versions": reader._fetch_available_versions()}, default=str))
"""


def test_cloud_init_metadata_reader_reads_our_metadata_service(tmp_path):
    md = openstack.default_metadata("openstack-http")
    service = openstack.MetadataService(md)
    try:
        found = cloud_init_reads(READ_SERVICE, service.server.url)
    finally:
        service.close()
    assert found["versions"] == list(openstack.VERSIONS)
    assert found["metadata"]["instance-id"] == md["meta_data.json"]["uuid"]
    assert found["metadata"]["local-hostname"] == "web-1.novalocal"
    assert found["networkdata"] == md["network_data.json"]
    assert found["vendordata"] == md["vendor_data.json"]
    assert found["userdata"] == md["user_data"]


# ---- documents from OpenStack's documentation and cloud-init's fixtures (tests/corpus) ----

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "openstack")


def corpus(name: str) -> str:
    with open(os.path.join(CORPUS, name), encoding="utf-8") as f:
        return f.read()


def test_nova_user_guide_documents_boot_dhcp_with_their_key_name_and_dns(tmp_path):
    md = {"meta_data.json": corpus("nova-user-guide.meta_data.json"),
          "network_data.json": corpus("nova-user-guide.network_data.json"),
          "user_data": None, "vendor_data.json": None}
    g = make_guest(tmp_path, "openstack", md)   # its link's MAC is the guide's fa:16:3e:9c:bf:3d
    boot(g)
    shown = g.show()
    assert g.checkpoint().instance_id == "d8e02d56-2648-49a3-bf97-6be8f1204f38"
    assert shown["hostname"]["nodename"] == "test"
    assert "test.novalocal" in shown["hostname"]["hosts"][0]
    assert [(a["addrobj"], a["type"]) for a in shown["addresses"]] == [("vioif0/dhcp", "dhcp")]
    assert shown["dns"]["nameservers"] == ["8.8.8.8"]
    assert [k.split()[-3:] for k in shown["ssh"]["authorized_keys"]] == \
        [["Generated", "by", "Nova"]]                       # keys and public_keys: one key
    assert warnings_of(g) == []


def test_cloud_init_fixture_two_links_static_ipv4_ipv6_and_routes():
    md = parse({"meta_data.json": b'{"uuid": "i-1"}',
                "network_data.json": corpus("cloud-init-network-data-3.json").encode()})
    first, second = md.nics
    assert (first.mac, first.primary) == ("fa:16:3e:dd:50:9a", True)
    assert first.addresses == ("172.17.48.18/25", "fdb8:52d0:9d14:0:f816:3eff:fe9f:70d/64")
    assert (second.mac, second.addresses) == ("fa:16:3e:a8:14:69", ("172.16.48.13/25",))
    assert [(r.destination, r.gateway) for r in md.routes] == [
        ("default", "172.17.48.1"), ("default", "fdb8:52d0:9d14::1"),
        ("default", "172.16.48.1"), ("172.16.0.0/16", "172.16.48.1")]
    assert md.resolvers == ("172.16.36.11", "172.16.36.12")
    assert md.warnings == ()


def test_a_drive_with_nothing_usable_is_no_new_instance():
    md = parse({"meta_data.json": b"  \n", "user_data": b""})
    assert md.empty and md.instance_id is None
    assert any("no usable data" in w for w in md.warnings)
