"""The corpus: real documents from public sources (tests/corpus/README.md says where each
comes from), each booted in a simulated guest (or parsed, where a boot adds nothing), with
an expectation written from the source's documented behaviour: what gets configured, and
what is warned about. Where the agent cannot honour a documented field (a bond, a VLAN, a
bridge, an MTU, a route metric...), the warning names that field."""

from __future__ import annotations

import json
import os

from guest import make_guest, without_calls

from operations.validate import parse_authorized_keys
from providers import digitalocean, smartos, vmware
from providers.model import Vlan
from providers.nocloud import parse_seed
from sim.serve import serving

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def doc(path: str) -> str:
    with open(os.path.join(CORPUS, path), encoding="utf-8") as f:
        return f.read()


def link(name: str, mac: str) -> dict:
    return {"link": name, "mac": mac, "media": "Ethernet", "state": "up", "speed": 1000,
            "mtu": 1500}


def boot_nocloud(tmp_path, macs: list[str] | None = None, **files: str | None):
    """A NoCloud guest whose cidata volume holds exactly `files` (meta-data, user-data,
    network-config; None = absent) and whose links carry `macs` (default: the sim's)."""
    seed = {"meta-data": "instance-id: iid-corpus\n", "user-data": None, "network-config": None}
    seed.update({name.replace("_", "-"): text for name, text in files.items()})
    guest = make_guest(tmp_path, "nocloud", seed)
    if macs:
        guest.set_state(links=[link(f"vioif{i}", mac) for i, mac in enumerate(macs)])
    result = guest.run()
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert guest.checkpoint().phase == "DONE"
    return guest


def warnings_of(guest) -> list[str]:
    return [w["message"] for w in guest.checkpoint().warnings]


def addresses(shown: dict) -> dict[str, str]:
    return {a["addrobj"]: a["addr"] for a in shown["addresses"]
            if not a["addrobj"].startswith("lo0")}


def links_of(shown: dict) -> dict[str, tuple[str, int, str]]:
    return {lk["link"]: (lk["class"], lk["mtu"], lk["over"]) for lk in shown["links"]}


MUTATING_DLADM = ("dladm rename-link", "dladm create-vlan", "dladm create-aggr",
                  "dladm set-linkprop")


def mutating_dladm(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The mutating dladm calls made between two call counts (a second boot makes none)."""
    return {k: after.get(k, 0) - before.get(k, 0) for k in MUTATING_DLADM
            if after.get(k, 0) != before.get(k, 0)}


def only(warnings, *needles: str) -> None:
    """Every warning is one of the expected ones, and each expected one is there."""
    for needle in needles:
        assert any(needle in w for w in warnings), (needle, warnings)
    assert len(warnings) == len(needles), warnings


# ---- cloud-init's network-config v1 and v2 examples ---------------------------------------

def test_v1_physical_3_nic_renames_every_link_and_sets_the_jumbo_mtu(tmp_path):
    """v1 `name` with a MAC renames the link (cloud-init renames the interface); `mtu`
    is set on its link, before any IP interface is plumbed."""
    guest = boot_nocloud(tmp_path, ["00:11:22:33:44:55", "aa:11:22:33:44:55",
                                    "cd:11:22:33:44:00", "cd:11:22:33:44:02"],
                         network_config=doc("nocloud/v1-physical-3-nic.yaml"))
    shown = guest.show()
    assert links_of(shown) == {"interface0": ("phys", 1500, ""), "jumbo0": ("phys", 9000, ""),
                               "gbe0": ("phys", 1500, ""), "gbe1": ("phys", 1500, "")}
    assert shown["interfaces"] == ["gbe0", "gbe1", "interface0", "jumbo0"]
    assert addresses(shown) == {}     # no subnets: plumbed, no address
    assert warnings_of(guest) == []


def test_v1_bonded_pair_active_backup_is_named_and_the_members_configured(tmp_path):
    """active-backup has no illumos aggregation equivalent: the bond is a warning naming
    the mode; the three physical interfaces are still renamed and plumbed."""
    guest = boot_nocloud(tmp_path, ["00:11:22:33:44:55", "cd:11:22:33:44:00",
                                    "cd:11:22:33:44:02"],
                         network_config=doc("nocloud/v1-bonded-pair.yaml"))
    shown = guest.show()
    assert set(shown["interfaces"]) == {"interface0", "gbe0", "gbe1"}
    assert shown["aggrs"] == []
    only(warnings_of(guest), "network-config config[3].params.bond-mode: bond mode "
                             "'active-backup' has no illumos link aggregation equivalent")


def test_v1_bridge_keeps_the_physical_nics_and_their_mtu_and_names_the_bridge():
    md = parse_seed({"network-config": doc("nocloud/v1-bridge.yaml").encode()})
    assert [(n.name, n.mtu) for n in md.nics] == [("interface0", None), ("jumbo0", 9000)]
    only(md.warnings, "config[2].type: 'bridge'")


def test_v1_vlan_tags_eth0_101_over_the_renamed_eth0(tmp_path):
    guest = boot_nocloud(tmp_path, ["c0:d6:9f:2c:e8:80"],
                         network_config=doc("nocloud/v1-vlan.yaml"))
    shown = guest.show()
    assert links_of(shown) == {"eth0": ("phys", 1500, ""), "eth0.101": ("vlan", 1500, "eth0")}
    assert shown["vlans"] == [{"link": "eth0.101", "vid": 101, "over": "eth0"}]
    assert shown["interfaces"] == ["eth0", "eth0.101"]
    assert warnings_of(guest) == []


def test_v1_bonded_vlan_aggregates_with_lacp_and_leases_on_the_vlan(tmp_path):
    """802.3ad is LACP active, `bond-lacp-rate: fast` the short timer; the VLAN tags the
    aggregation and gets the lease; the ports carry no IP."""
    guest = boot_nocloud(tmp_path, ["cd:11:22:33:44:00", "cd:11:22:33:44:02"],
                         network_config=doc("nocloud/v1-bonded-vlan.yaml"))
    shown = guest.show()
    assert shown["aggrs"] == [{"link": "bond0", "ports": ["gbe0", "gbe1"], "policy": "L4",
                               "lacp_mode": "active", "lacp_timer": "short", "mtu": 1500}]
    assert links_of(shown)["bond0.200"] == ("vlan", 1500, "bond0")
    assert shown["interfaces"] == ["bond0", "bond0.200"]
    assert addresses(shown)["bond0.200/dhcp"] != "?"
    assert warnings_of(guest) == []
    before = guest.calls()
    assert guest.run().returncode == 0
    assert mutating_dladm(before, guest.calls()) == {}


def test_v1_multiple_vlan_example_four_vlans_over_eth1_and_a_second_boot_changes_nothing(
        tmp_path):
    guest = boot_nocloud(tmp_path, ["d4:be:d9:a8:49:13", "d4:be:d9:a8:49:15"],
                         network_config=doc("nocloud/v1-multiple-vlan.yaml"))
    shown = guest.show()
    assert [(v["link"], v["vid"], v["over"]) for v in shown["vlans"]] == [
        (f"eth1.{vid}", vid, "eth1") for vid in (2667, 2668, 2669, 2670)]
    assert addresses(shown) == {
        "eth0/v4": "10.245.168.16/21", "eth1/v4": "10.245.188.2/24",
        "eth1.2667/v4": "10.245.184.2/24", "eth1.2668/v4": "10.245.185.1/24",
        "eth1.2669/v4": "10.245.186.1/24", "eth1.2670/v4": "10.245.187.2/24"}
    assert {"destination": "default", "gateway": "10.245.168.1"} in shown["routes"]
    assert warnings_of(guest) == []
    before, first = guest.calls(), without_calls(shown)
    assert guest.run().returncode == 0
    assert mutating_dladm(before, guest.calls()) == {}
    assert without_calls(guest.show()) == first


def test_v1_subnet_routes_dhcp_plus_static_and_both_routes(tmp_path):
    guest = boot_nocloud(tmp_path, ["00:11:22:33:44:55"],
                         network_config=doc("nocloud/v1-subnet-routes.yaml"))
    shown = guest.show()
    addrs = addresses(shown)
    assert addrs["interface0/v4"] == "10.184.225.122/30" and addrs["interface0/dhcp"] != "?"
    routes = {(r["destination"], r["gateway"]) for r in shown["routes"]}
    assert {("10.176.0.0/12", "10.184.225.121"), ("10.208.0.0/12", "10.184.225.121")} <= routes
    assert warnings_of(guest) == []


def test_v2_eno1_by_name_only_is_the_first_link_with_dhcp(tmp_path):
    guest = boot_nocloud(tmp_path, network_config=doc("nocloud/v2-eno1-dhcp.yaml"))
    assert addresses(guest.show()) == {"vioif0/dhcp": "10.0.2.15/24"}
    assert warnings_of(guest) == []


def test_v2_complex_example_keeps_id0_and_its_vlan_and_names_every_field_it_skips():
    md = parse_seed({"network-config": doc("nocloud/v2-complex.yaml").encode()})
    id0, intra = md.nics
    assert (intra.name, intra.vlan, intra.dhcp4) == ("en-intra", Vlan(vid=1, over="id0"), True)
    assert (id0.name, id0.mac, id0.dhcp4) == ("id0", "00:11:22:33:44:55", True)
    assert id0.addresses == ("192.168.14.2/24", "2001:1::1/64")
    assert id0.gateways == ("192.168.14.1", "2001:1::2")
    assert [(r.destination, r.gateway) for r in md.routes] == [("192.0.2.0/24", "11.0.0.1")]
    assert md.resolvers == ("8.8.8.8",) and md.search_domains == ("foo.local", "bar.local")
    only(md.warnings, "ethernets.id0.wakeonlan: True: not supported",
         "ethernets.id0.routes[0].metric: 3: not supported",
         "network-config lom: 'lom': no MAC address",
         "network-config switchports: 'switchports': no MAC address",
         "bonds.bond0.parameters.mode: bond mode 'balance-rr' (the default) has no illumos "
         "link aggregation equivalent",
         "network-config bridges: 'br0': bridges are not supported")


def test_v2_complex_example_boots_en_intra_as_dladms_own_vlan_name(tmp_path):
    """`en-intra` is no illumos link name: the VLAN gets dladm's DRIVER(VID*1000+PPA)."""
    guest = boot_nocloud(tmp_path, ["00:11:22:33:44:55"],
                         network_config=doc("nocloud/v2-complex.yaml"))
    shown = guest.show()
    assert shown["vlans"] == [{"link": "vioif1000", "vid": 1, "over": "vioif0"}]
    assert addresses(shown)["vioif1000/dhcp"] != "?"
    assert addresses(shown)["vioif0/v4"] == "192.168.14.2/24"


# ---- cloud-init's NoCloud documentation ---------------------------------------------------

def test_nocloud_network_interfaces_example_boots_static(tmp_path):
    guest = boot_nocloud(tmp_path, meta_data=doc("nocloud/network-interfaces.meta-data"))
    shown = guest.show()
    assert addresses(shown) == {"vioif0/v4": "192.168.1.10/24"}
    assert {"destination": "default", "gateway": "192.168.1.254"} in shown["routes"]
    assert shown["hostname"]["nodename"] == "myhost"
    assert guest.checkpoint().instance_id == "iid-abcdefg" and warnings_of(guest) == []


def test_nocloud_v2_example_with_a_dotted_netmask(tmp_path):
    guest = boot_nocloud(tmp_path, ["52:54:00:12:34:00"],
                         network_config=doc("nocloud/nocloud-doc-v2.network-config"))
    shown = guest.show()
    assert addresses(shown) == {"interface0/v4": "192.168.1.10/24"}    # set-name
    assert {"destination": "default", "gateway": "192.168.1.254"} in shown["routes"]


def test_nocloud_creating_a_disk_example_sets_roots_password_never_showing_it(tmp_path):
    """`password` is the default user's, root here (no [users] default): hashed, never shown;
    `create_hostname_file` is the one module the agent does not apply, named."""
    guest = boot_nocloud(tmp_path, meta_data=doc("nocloud/creating-a-disk.meta-data"),
                         user_data=doc("nocloud/creating-a-disk.user-data"))
    shown = guest.show()
    assert shown["hostname"]["nodename"] == "cloudimg"
    assert addresses(shown) == {"vioif0/dhcp": "10.0.2.15/24"}
    assert not shown["ssh"]["authorized_keys"]
    assert shown["users"]["root"]["password"].startswith("$6$")
    only(warnings_of(guest), "nocloud:user-data: 'create_hostname_file' is not a cloud-config "
                             "module the agent applies; ignored")
    assert "passw0rd" not in json.dumps(warnings_of(guest)) + json.dumps(shown)


# ---- seeds generated by Proxmox VE and KubeVirt -------------------------------------------

def test_proxmox_seed_gets_its_user_keys_name_static_ipv6_and_dns(tmp_path):
    """Proxmox puts the keys and the name in cloud-config user-data (was: no keys, no name):
    `user: admin` with `users: [default]` makes admin, whose keys they are, as in cloud-init;
    root gets none."""
    guest = boot_nocloud(tmp_path, ["bc:24:11:2c:69:ec"],
                         meta_data=doc("nocloud/proxmox/meta-data"),
                         user_data=doc("nocloud/proxmox/user-data"),
                         network_config=doc("nocloud/proxmox/network-config"))
    shown = guest.show()
    assert shown["hostname"]["nodename"] == "web1"
    assert shown["users"]["admin"]["ssh"]["authorized_keys"] == [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMoGdtovFc12Wy/u7HbSjCuUa/smTUJyBouwKcRA6h0+ "
        "admin@pve"]
    assert shown["ssh"]["authorized_keys"] == []
    addrs = addresses(shown)
    # v1 `name: eth0` with its MAC renames the link, as cloud-init renames the interface
    assert addrs["eth0/v4"] == "192.168.1.50/24" and addrs["eth0/v6"].startswith("fe80::")
    assert {"destination": "default", "gateway": "192.168.1.1"} in shown["routes"]
    assert (shown["dns"]["nameservers"], shown["dns"]["search"]) == (["1.1.1.1"], ["example.com"])
    assert warnings_of(guest) == []


def test_kubevirt_seed_dhcp_on_the_first_link_and_its_name(tmp_path):
    guest = boot_nocloud(tmp_path, meta_data=doc("nocloud/kubevirt/meta-data"),
                         user_data=doc("nocloud/kubevirt/user-data"),
                         network_config=doc("nocloud/kubevirt/network-config"))
    shown = guest.show()
    assert shown["hostname"]["nodename"] == "testvm"
    assert guest.checkpoint().instance_id == "testvm.default"
    assert addresses(shown) == {"vioif0/dhcp": "10.0.2.15/24"}
    assert "kc2user" in shown["users"]
    only(warnings_of(guest), "nocloud:user-data: users[0].sudo: not supported; use profiles "
                             "(RBAC) instead; ignored",
         "nocloud:user-data: 'growpart' is not a cloud-config module the agent applies; ignored")


# ---- VMware guestinfo ---------------------------------------------------------------------

def test_vmware_walkthrough_metadata_dhcp_on_the_nic_matched_by_name():
    md = vmware.parse(doc("vmware/walkthrough.metadata.yaml").encode(), None)
    (nic,) = md.nics
    assert (nic.mac, nic.dhcp4, nic.name) == (None, True, "nics")
    assert (md.instance_id, md.hostname, md.warnings) == ("cloud-vm", "cloud-vm", ())


def test_vmware_public_keys_data_is_read_and_placeholder_lines_are_named():
    md = vmware.parse(doc("vmware/cloudbase-init.metadata.yaml").encode(), None)
    assert md.ssh_keys == ("ssh-key 1", "ssh-key 2")
    assert md.origin("ssh_keys") == "vmware:guestinfo.metadata public-keys-data"
    valid, problems = parse_authorized_keys("\n".join(md.ssh_keys), md.origin("ssh_keys"))
    assert valid == [] and [p.split(": ")[1] for p in problems] == ["line 1", "line 2"]


# ---- DigitalOcean, EC2, SmartOS -----------------------------------------------------------

def test_digitalocean_droplet_document():
    md = digitalocean.parse(digitalocean.decode_document(
        doc("digitalocean/cloud-init-do-meta.json").encode(), "v1.json"))
    assert (md.instance_id, md.hostname, md.ssh_keys, md.user_script) == (
        "22532410", "utl-96268", (), None)
    public, private = md.nics
    assert public.addresses == ("192.0.0.20/24", "10.0.0.5/16", "2604:a880:800:0:1000::/64")
    assert public.gateways == ("104.236.0.1", "2604:a880:800::1") and public.primary
    assert private.addresses == ("10.132.6.205/16",) and private.gateways == ()
    assert md.resolvers == ("2001:4860:4860::8844", "2001:4860:4860::8888", "8.8.8.8")
    assert md.warnings == ()


def flat_imds(tree: dict, prefix: str = "meta-data/") -> dict:
    """cloud-init's nested test metadata as the IMDS emulator's flat path keys."""
    flat: dict = {}
    for key, value in tree.items():
        if key == "public-keys":
            flat[prefix + key] = {n: "\n".join(v) for n, v in value.items()}
        elif isinstance(value, dict):
            flat.update(flat_imds(value, f"{prefix}{key}/"))
        else:
            flat[prefix + key] = value
    return flat


def test_ec2_instance_two_enis_dhcp_ipv6_and_a_static_second_nic(tmp_path):
    from sim.emulators import ec2 as emulator

    metadata = {k: None for k in emulator.default_metadata()}
    metadata.update(flat_imds(json.loads(doc("ec2/cloud-init-default-metadata.json"))))
    guest = make_guest(tmp_path, "ec2", metadata)
    guest.set_state(links=[link("ena0", "6:17:4:d7:26:9"), link("ena1", "6:17:4:d7:26:a")])
    with serving(guest.root):
        result = guest.run()
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    shown = guest.show()
    addrs = addresses(shown)
    assert addrs["ena0/dhcp"] != "?" and addrs["ena0/v6"].startswith("fe80::")
    assert addrs["ena1/v4"] == "172.3.3.16/20"
    assert shown["hostname"]["nodename"] == "ip-172-3-3-15"
    # The fixture's key is elided ("AAAAB3Nz....w=="): refused by line, never installed.
    assert not shown["ssh"]["authorized_keys"]
    only(warnings_of(guest), "ec2:meta-data/public-keys/: line 1: ssh-rsa key data is not "
                             "valid base64")


def test_smartos_sdc_nics_and_routes_documents():
    md = smartos.parse({"sdc:uuid": b"d2f3c6a0-4b5e-4e6f-9a1b-2c3d4e5f6a7b",
                        "sdc:nics": doc("smartos/sdc-nics.json").encode(),
                        "sdc:routes": doc("smartos/sdc-routes.json").encode()})
    net0, net1 = md.nics
    assert (net0.name, net0.addresses, net0.gateways, net0.primary) == (
        "net0", ("8.12.42.102/24",), ("8.12.42.1",), True)
    assert (net1.name, net1.addresses, net1.gateways, net1.primary) == (
        "net1", ("192.168.128.93/22",), ("192.168.128.1",), False)
    assert [(r.destination, r.gateway) for r in md.routes] == [
        ("3.0.0.0/8", "8.12.42.3"), ("4.0.0.0/8", "10.210.1.4")]
    assert md.warnings == ()


def test_smartos_guest_with_the_documented_nics(tmp_path):
    nics = json.loads(doc("smartos/sdc-nics.json"))
    guest = make_guest(tmp_path, "smartos", {"sdc:nics": nics, "sdc:routes": []})
    guest.set_state(links=[link("vioif0", "90:b8:d0:f5:e4:f5"),
                           link("vioif1", "90:b8:d0:a5:ff:cd")])
    with serving(guest.root):
        result = guest.run()
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    shown = guest.show()
    assert addresses(shown) == {"vioif0/v4": "8.12.42.102/24", "vioif1/v4": "192.168.128.93/22"}
    assert [r for r in shown["routes"] if r["destination"] == "default"] == [
        {"destination": "default", "gateway": "8.12.42.1"}]
    assert warnings_of(guest) == []
