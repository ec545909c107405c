"""Blast radius, whole agent: one item the agent cannot apply costs that item only, and a seed
with no usable data never removes what a previous instance installed.

Each test boots a simulated guest through the real agent process and asserts on the guest's
resulting state (`sim show`) and the checkpoint's warnings.
"""

from __future__ import annotations

from guest import make_guest

from providers.iso9660 import iso_image
from sim.emulators import nocloud as nocloud_emulator
from sim.emulators.nocloud import attach_volume, seed_files

KEY = nocloud_emulator.DEFAULT_KEYS[0]
MAC = nocloud_emulator.SEED_MAC

ONE_BAD_ITEM = f"""version: 1
config:
  - type: physical
    name: eth0
    mac_address: "{MAC}"
    subnets:
      - type: static
        address: 192.168.122.50/24
        gateway: 192.168.122.1
      - type: static6
        address: "2001:db8::50"
        netmask: "ffff:ffff:ffff:ffff::"
      - type: manual
  - type: bond
    name: bond0
    bond_interfaces: [eth1, eth2]
  - type: physical
    name: eth1
    subnets:
      - type: dhcp
  - type: route
    destination: 10.0.0.0/8
  - type: nameserver
    address: [192.168.122.1, not-an-address]
"""


def warnings_of(guest) -> list[str]:
    return [w["message"] for w in guest.checkpoint().warnings]


def test_one_unsupported_item_still_installs_keys_hostname_and_every_address(tmp_path):
    """Was: exit 96 at FETCH, no network, no hostname and no SSH keys."""
    guest = make_guest(tmp_path, "nocloud", {"network-config": ONE_BAD_ITEM})
    result = guest.run()
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    shown = guest.show()
    assert guest.checkpoint().phase == "DONE"
    assert shown["ssh"]["authorized_keys"] == [KEY]
    assert shown["hostname"]["nodename"] == "nocloud-guest"
    addrs = {a["addrobj"]: a["addr"] for a in shown["addresses"]}
    # v1 `name: eth0` with its MAC renames the link
    assert addrs["eth0/v4"] == "192.168.122.50/24" and addrs["eth0/v6s"] == "2001:db8::50/64"
    assert shown["dns"]["nameservers"] == ["192.168.122.1"]
    warnings = warnings_of(guest)
    for needle in ("config[1].params.bond-mode: bond mode 'balance-rr' (the default)", "network-config eth1: 'eth1': no MAC address", "config[3].gateway: route to "
                   "'10.0.0.0/8' has no gateway", "config[4].address[1]: 'not-an-address'"):
        assert any(needle in w for w in warnings), (needle, warnings)


def test_network_config_disabled_leaves_the_network_and_installs_the_keys(tmp_path):
    guest = make_guest(tmp_path, "nocloud", {"network-config": "network:\n  config: disabled\n"})
    result = guest.run()
    assert result.returncode == 0, result.stdout + result.stderr
    shown = guest.show()
    assert shown["ssh"]["authorized_keys"] == [KEY]
    assert [a["addrobj"] for a in shown["addresses"] if not a["addrobj"].startswith("lo0")] == []
    assert guest.checkpoint().phases["NETWORK"]["result"] == "skipped"


def test_an_empty_cidata_volume_keeps_the_previous_instances_keys_and_network(tmp_path):
    """Was: accepted as a new instance (SMBIOS UUID), root's keys removed, network redone."""
    guest = make_guest(tmp_path, "nocloud")
    first = guest.run()
    assert first.returncode == 0, first.stdout + first.stderr
    before = guest.show()
    assert before["ssh"]["authorized_keys"] == [KEY]
    instance = guest.checkpoint().instance_id

    for files in ({}, {"meta-data": b"", "user-data": b"\n", "network-config": b"  \n"}):
        attach_volume(guest.root, nocloud_emulator.seed_disk("nocloud"),
                      iso_image("cidata", files).ljust(1 << 20, b"\0"))
        again = guest.run()
        out = again.stdout + again.stderr
        assert again.returncode == 0, out
        after = guest.show()
        assert after["ssh"]["authorized_keys"] == [KEY], out
        assert after["addresses"] == before["addresses"] and after["routes"] == before["routes"]
        assert after["hostname"] == before["hostname"]
        cp = guest.checkpoint()
        assert cp.instance_id == instance and cp.phases["NETWORK"]["result"] == "skipped"
        assert any("no usable data" in w for w in warnings_of(guest))


def test_a_new_instance_without_keys_keeps_root_keys(tmp_path):
    """A new instance id with no key field: nothing positively lists the current keys."""
    guest = make_guest(tmp_path, "nocloud")
    assert guest.run().returncode == 0
    attach_volume(guest.root, nocloud_emulator.seed_disk("nocloud"), iso_image("cidata", seed_files(
        {"meta-data": {"instance-id": "iid-other", "local-hostname": "other"}})).ljust(1 << 20, b"\0"))
    result = guest.run()
    assert result.returncode == 0, result.stdout + result.stderr
    shown = guest.show()
    assert shown["hostname"]["nodename"] == "other" and shown["ssh"]["authorized_keys"] == [KEY]


DHCP_OVERRIDES = f"""version: 2
ethernets:
  primary:
    match: {{macaddress: "{MAC}"}}
    dhcp4: true
  backend:
    match: {{macaddress: "52:54:00:00:00:02"}}
    dhcp4: true
    dhcp4-overrides:
      use-routes: false
      use-dns: false
"""


def test_dhcp4_overrides_use_routes_and_use_dns_false_leave_one_default_route(tmp_path):
    """netplan dhcp4-overrides on the second NIC: its lease installs no router and gives no
    DNS servers (dhcpagent's per-interface PARAM_IGNORE_LIST). Was: ignored, two default
    routes."""
    guest = make_guest(tmp_path, "nocloud", {"network-config": DHCP_OVERRIDES})
    links = guest.state()["links"]
    guest.set_state(links=links + [{**links[0], "link": "vioif1", "mac": "52:54:0:0:0:2"}])
    result = guest.run()
    assert result.returncode == 0, result.stdout + result.stderr
    shown = guest.show()
    assert [r for r in shown["routes"] if r["destination"] == "default"] == [
        {"destination": "default", "gateway": "10.0.2.2"}]
    assert shown["dns"]["nameservers"] == ["10.0.2.3"]
    assert "vioif1.PARAM_IGNORE_LIST=3,6" in guest.read("/etc/default/dhcpagent").splitlines()
    assert {a["addrobj"] for a in shown["addresses"]} >= {"vioif0/dhcp", "vioif1/dhcp"}
