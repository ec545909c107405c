"""Link names, MTUs, aggregations and VLANs (issue 15, Network): simulated guests boot to
DONE with the links in the stand-ins' state, a second boot runs no mutating dladm command,
and each refusal is a warning naming source, field and value while the rest applies."""

from __future__ import annotations

import subprocess

import pytest
from crashkit import kill_while_blocked, resume_until_done
from guest import make_guest, without_calls
from test_corpus import addresses, boot_nocloud, links_of, mutating_dladm, warnings_of

from providers.nocloud import parse_seed
from sim.serve import serving

DLADM = "/usr/sbin/dladm"

V2 = """network:
  version: 2
  ethernets:
    p0: {match: {macaddress: '52:54:00:00:00:01'}, set-name: net0, mtu: 9000, dhcp4: true}
    p1: {match: {macaddress: '52:54:00:00:00:02'}, mtu: 9000}
    p2: {match: {macaddress: '52:54:00:00:00:03'}, mtu: 9000}
  bonds:
    bond0:
      interfaces: [p1, p2]
      parameters: {mode: 802.3ad, lacp-rate: slow, transmit-hash-policy: layer2+3}
      addresses: [10.1.0.5/24]
  vlans:
    storage0:
      id: 100
      link: bond0
      addresses: [10.2.0.5/24]
    en-intra:
      id: 7
      link: p0
      addresses: [10.3.0.5/24]
"""
MACS = ["52:54:00:00:00:01", "52:54:00:00:00:02", "52:54:00:00:00:03"]


def test_v2_set_name_mtu_bond_and_vlans_boot_and_a_second_boot_changes_nothing(tmp_path):
    guest = boot_nocloud(tmp_path, MACS, network_config=V2)
    shown = guest.show()
    assert links_of(shown) == {
        "net0": ("phys", 9000, ""), "vioif1": ("phys", 9000, ""), "vioif2": ("phys", 9000, ""),
        "bond0": ("aggr", 9000, "vioif1,vioif2"), "storage0": ("vlan", 9000, "bond0"),
        "net7000": ("vlan", 9000, "net0")}      # en-intra: dladm's own name, VID 7 on net0
    assert shown["aggrs"] == [{"link": "bond0", "ports": ["vioif1", "vioif2"],
                               "policy": "L2,L3", "lacp_mode": "active", "lacp_timer": "long",
                               "mtu": 9000}]
    assert shown["interfaces"] == ["bond0", "net0", "net7000", "storage0"]  # no port plumbed
    assert addresses(shown) == {"net0/dhcp": "10.0.2.15/24", "bond0/v4": "10.1.0.5/24",
                                "storage0/v4": "10.2.0.5/24", "net7000/v4": "10.3.0.5/24"}
    assert warnings_of(guest) == []
    before = guest.calls()
    assert guest.run().returncode == 0
    assert mutating_dladm(before, guest.calls()) == {}
    assert without_calls(guest.show()) == without_calls(shown)


def test_refusals_are_warnings_naming_the_item_and_the_rest_applies(tmp_path):
    """The image already plumbed vioif0: it keeps its name and MTU (renaming or re-sizing it
    would break it); vioif1's MTU is beyond its driver; the bond names a port that is not
    there, the VLAN a link that is not; vioif2 is still renamed and sized, and every
    address lands."""
    config = """network:
  version: 2
  ethernets:
    a: {match: {macaddress: '52:54:00:00:00:01'}, set-name: lan0, mtu: 9000,
        addresses: [10.0.0.5/24]}
    b: {match: {macaddress: '52:54:00:00:00:02'}, mtu: 20000, addresses: [10.4.0.5/24]}
    c: {match: {macaddress: '52:54:00:00:00:03'}, set-name: san0, mtu: 4000,
        addresses: [10.5.0.5/24]}
  bonds:
    bond0: {interfaces: [c, ghost], parameters: {mode: 802.3ad}, addresses: [10.1.0.5/24]}
  vlans:
    vlan9: {id: 9, link: nowhere, addresses: [10.9.0.5/24]}
"""
    guest = make_guest(tmp_path, "nocloud", {"meta-data": "instance-id: iid-refusals\n",
                                             "user-data": None, "network-config": config})
    guest.set_state(links=[{"link": f"vioif{i}", "mac": mac, "media": "Ethernet",
                            "state": "up", "speed": 1000, "mtu": 1500}
                           for i, mac in enumerate(MACS)],
                    interfaces=["lo0", "vioif0"])           # configured by the image
    result = guest.run()
    assert result.returncode == 0, result.stderr[-3000:]
    assert guest.checkpoint().phase == "DONE"
    shown = guest.show()
    assert links_of(shown) == {"vioif0": ("phys", 1500, ""), "vioif1": ("phys", 1500, ""),
                               "san0": ("phys", 4000, "")}
    assert shown["aggrs"] == [] and shown["vlans"] == []
    assert addresses(shown) == {"vioif0/v4": "10.0.0.5/24", "vioif1/v4": "10.4.0.5/24",
                                "san0/v4": "10.5.0.5/24"}
    warnings = warnings_of(guest)
    expected = [
        "nocloud:network-config: a link name 'lan0': vioif0 already has an IP interface",
        "nocloud:network-config: a mtu (on vioif0) 9000: `dladm set-linkprop` refused it: "
        "dladm: warning: cannot set link property 'mtu' on 'vioif0': link busy",
        "nocloud:network-config: b mtu (on vioif1) 20000: `dladm set-linkprop` refused it: "
        "dladm: warning: cannot set link property 'mtu' on 'vioif1': invalid argument",
        "nocloud:network-config: bond0 aggregation port 'ghost': no interface of that name",
        "nocloud:network-config: vlan9 vlan link 'nowhere': no interface of that name",
    ]
    for needle in expected:
        assert any(w.startswith(needle) for w in warnings), (needle, warnings)
    assert len(warnings) == len(expected), warnings


def test_an_unsupported_bond_mode_is_named_and_its_members_still_configured():
    md = parse_seed({"network-config": b"""network:
  version: 2
  ethernets:
    e1: {match: {macaddress: '52:54:00:00:00:02'}, dhcp4: true}
  bonds:
    bond0: {interfaces: [e1], parameters: {mode: active-backup, primary: e1}}
"""})
    assert [n.name for n in md.nics] == ["e1"]
    assert any("bonds.bond0.parameters.mode: bond mode 'active-backup' has no illumos link "
               "aggregation equivalent" in w for w in md.warnings), md.warnings
    assert any("bonds.bond0.parameters.primary: 'e1': not supported by illumos link "
               "aggregations" in w for w in md.warnings), md.warnings


@pytest.mark.parametrize("mtu", ["jumbo", 0, 70000, True])
def test_a_malformed_mtu_is_named_and_the_interface_kept(mtu):
    md = parse_seed({"network-config": f"""version: 1
config:
  - {{type: physical, name: eth0, mac_address: '52:54:00:00:00:01', mtu: {mtu!r}}}
""".encode()})
    (nic,) = md.nics
    assert nic.mtu is None and nic.link_name == "eth0"
    assert len(md.warnings) == 1 and "config[0].mtu" in md.warnings[0]


def test_smartos_nic_mtu_is_set_and_its_vlan_id_is_not_a_guest_vlan(tmp_path):
    """The emulator's net1 is on a jumbo-frame network (mtu 8500, vlan_id 3): the link gets
    the MTU; no VLAN is made (Triton tags on the host's VNIC)."""
    guest = make_guest(tmp_path, "smartos")
    with serving(guest.root):
        assert guest.run().returncode == 0
        shown = guest.show()
        assert links_of(shown) == {"vioif0": ("phys", 1500, ""), "vioif1": ("phys", 8500, "")}
        assert shown["vlans"] == [] and guest.calls()["dladm set-linkprop"] == 1
        before = guest.calls()
        assert guest.run().returncode == 0
    assert mutating_dladm(before, guest.calls()) == {}


# ---- the stand-ins' refusals, from dladm.c and libdladm ------------------------------------

def dladm(guest, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([guest.path(DLADM), *args], capture_output=True, text=True,
                          timeout=60)


def test_dladm_link_configuration_refusals(tmp_path):
    guest = make_guest(tmp_path, "smartos")                  # vioif0, vioif1
    guest.set_state(interfaces=["lo0", "vioif0"])
    r = dladm(guest, "rename-link", "vioif0", "net0")
    assert (r.returncode, r.stderr) == (1, "dladm: rename operation failed: link busy\n")
    r = dladm(guest, "rename-link", "vioif1", "net-1")
    assert (r.returncode, r.stderr) == (1, "dladm: rename operation failed: invalid link\n")
    r = dladm(guest, "rename-link", "vioif1", "vioif0")
    assert r.stderr == "dladm: rename operation failed: object already exists\n"
    assert dladm(guest, "rename-link", "vioif1", "net1").returncode == 0
    r = dladm(guest, "create-vlan", "-l", "net1", "-v", "4095", "v0")
    assert (r.returncode, r.stderr) == (1, "dladm: invalid VLAN identifier '4095'\n")
    r = dladm(guest, "create-vlan", "-l", "net1", "-v", "5", "-v", "6")
    assert r.stderr == "dladm: the option -v cannot be specified more than once\n"
    assert dladm(guest, "create-vlan", "-l", "net1", "-v", "5").returncode == 0   # net5001
    r = dladm(guest, "create-vlan", "-l", "net1", "-v", "5", "other5")
    assert r.stderr == "dladm: create operation failed: object already exists\n"   # same VID
    r = dladm(guest, "set-linkprop", "-p", "mtu=9000", "net5001")
    assert (r.returncode, r.stderr) == (1, "dladm: warning: cannot set link property 'mtu' "
                                           "on 'net5001': operation not supported\n")
    r = dladm(guest, "set-linkprop", "-p", "mtu=9001", "net1")
    assert r.stderr.endswith("'net1': invalid argument\n")
    r = dladm(guest, "set-linkprop", "-p", "mtu=9000", "vioif0")
    assert r.stderr.endswith("'vioif0': link busy\n")
    assert dladm(guest, "set-linkprop", "-p", "mtu=9000", "net1").returncode == 0
    r = dladm(guest, "show-linkprop", "-p", "mtu", "-c", "-o", "value", "net1")
    assert (r.returncode, r.stdout) == (0, "9000\n")
    r = dladm(guest, "create-aggr", "-L", "sometimes", "-l", "net1", "aggr1")
    assert r.stderr == "dladm: invalid LACP mode 'sometimes'\n"
    r = dladm(guest, "create-aggr", "-P", "L5", "-l", "net1", "aggr1")
    assert r.stderr == "dladm: invalid policy 'L5'\n"
    r = dladm(guest, "create-aggr", "-l", "vioif0", "aggr1")
    assert r.stderr == "dladm: create operation failed: link busy\n"       # plumbed port
    r = dladm(guest, "create-aggr", "-l", "net1", "aggr1")
    assert r.stderr == "dladm: create operation failed: link busy\n"       # has a VLAN
    r = dladm(guest, "show-link", "-p", "-o", "link,class,mtu,over")
    assert r.stdout == "vioif0:phys:1500:\nnet1:phys:9000:\nnet5001:vlan:9000:net1\n"
    r = dladm(guest, "show-vlan", "-p", "-o", "link,vid,over")
    assert r.stdout == "net5001:5:net1\n"


def test_dladm_create_aggr_reads_l_without_a_digit_as_the_lacp_mode(tmp_path):
    """dladm.c do_create_aggr(): `-l active` is the old spelling of `-L active`."""
    guest = make_guest(tmp_path, "smartos")
    r = dladm(guest, "create-aggr", "-l", "active", "-T", "long", "-l", "vioif0", "-l",
              "vioif1", "1")
    assert r.returncode == 0, r.stderr
    r = dladm(guest, "show-aggr", "-p", "-o", "link,policy,addrpolicy,lacpactivity,lacptimer")
    assert r.stdout == "aggr1:L4:auto:active:long\n"
    r = dladm(guest, "show-phys", "-m", "-p", "-o", "link,inuse,client")
    assert r.stdout == "vioif0:yes:aggr1\nvioif1:yes:aggr1\n"
    r = dladm(guest, "rename-link", "vioif0", "net0")
    assert r.stderr == "dladm: rename operation failed: link busy\n"        # an aggr port


# ---- a kill in the middle of each link-creating command resumes to the same guest ---------

def _v2_guest(tmp_path, name: str):
    guest = make_guest(tmp_path, "nocloud", {"meta-data": "instance-id: iid-links\n",
                                             "user-data": None, "network-config": V2},
                       name=name)
    guest.set_state(links=[{"link": f"vioif{i}", "mac": mac, "media": "Ethernet",
                            "state": "up", "speed": 1000, "mtu": 1500}
                           for i, mac in enumerate(MACS)])
    return guest


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    guest = _v2_guest(tmp_path_factory.mktemp("links"), "baseline")
    assert guest.run().returncode == 0
    return without_calls(guest.show())


@pytest.mark.parametrize(("call_key", "after_effect"), [
    ("dladm rename-link", True), ("dladm set-linkprop", True), ("dladm create-aggr", True),
    ("dladm create-vlan", True), ("dladm create-aggr", False), ("dladm create-vlan", False)])
def test_a_kill_mid_link_command_resumes_to_the_uninterrupted_guest(tmp_path, uninterrupted,
                                                                    call_key, after_effect):
    """SIGKILL while a link-creating dladm command blocks (after or before its effect): the
    restart finds what was done, does the rest once, and ends as an uninterrupted boot."""
    guest = _v2_guest(tmp_path, "crashed")
    codes = resume_until_done(guest, [kill_while_blocked(guest, call_key, after_effect)])
    assert codes[0] == -9 and codes[-1] == 0, codes
    assert guest.checkpoint().phase == "DONE"
    shown, expected = without_calls(guest.show()), uninterrupted
    for key in ("links", "vlans", "aggrs", "interfaces", "addresses", "routes"):
        assert shown[key] == expected[key], key
    assert warnings_of(guest) == []
