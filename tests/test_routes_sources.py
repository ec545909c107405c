"""Static routes, link routes, IPv6 gateways (link-local ones with their link) and DHCPv6 from
every source, booted in simulated guests and asserted on the stand-ins' state: the kernel
table (`python -m sim show`) and `/etc/inet/static_routes`. A second boot makes no mutating
route or ipadm call; a bad item is a warning naming source, field and value, and the rest is
applied. Documents come from tests/corpus (README.md there says where each is from)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from guest import PROJECT_DIR, make_guest
from test_corpus import boot_nocloud, doc, link, warnings_of

from providers import smartos
from providers.model import Route
from providers.nocloud import parse_seed
from sim.serve import serving

MUTATING_IPADM = ("ipadm create-addr", "ipadm delete-addr", "ipadm create-if")


def persistent(guest) -> list[str]:
    return guest.read("/etc/inet/static_routes").splitlines()[1:]


def second_boot_changes_nothing(guest) -> None:
    """Run the agent again: the only route call is `route -p show`, no address is made or
    removed, and the kernel table and the route file are as they were."""
    calls, shown, saved = dict(guest.calls()), guest.show(), persistent(guest)
    result = guest.run()
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    after = guest.calls()
    assert after.get("route", 0) == calls.get("route", 0) + 1
    assert {k: after.get(k, 0) for k in MUTATING_IPADM} == {
        k: calls.get(k, 0) for k in MUTATING_IPADM}
    assert guest.show()["routes"] == shown["routes"]
    assert persistent(guest) == saved


# ---- NoCloud: netplan's and cloud-init's documented examples -------------------------------

def test_netplan_ipv6_direct_connect_gateway_gets_an_interface_route_then_the_default(tmp_path):
    guest = boot_nocloud(tmp_path,
                         network_config=doc("nocloud/netplan-direct-connect-gateway-ipv6.yaml"))
    assert persistent(guest) == [
        "-inet6 -iface 2001:cafe:face::1/128 2001:cafe:face:beef::dead:dead",
        "-inet6 default 2001:cafe:face::1"]
    routes = guest.show()["routes"]
    assert {"destination": "default", "gateway": "2001:cafe:face::1"} in routes
    assert guest.show()["defaultrouter"] == []      # IPv4 only
    assert warnings_of(guest) == []                 # on-link is honoured, not warned about
    second_boot_changes_nothing(guest)


def test_netplan_ipv4_direct_connect_gateway(tmp_path):
    guest = boot_nocloud(tmp_path,
                         network_config=doc("nocloud/netplan-direct-connect-gateway.yaml"))
    assert persistent(guest) == ["-iface 9.9.9.9/32 10.10.10.1", "default 9.9.9.9"]
    assert guest.show()["defaultrouter"] == ["9.9.9.9"]
    assert warnings_of(guest) == []


def test_v1_route_example_adds_the_top_level_route_and_names_its_metric(tmp_path):
    guest = boot_nocloud(tmp_path, ["00:11:22:33:44:55"],
                         network_config=doc("nocloud/v1-route.yaml"))
    # 192.168.24.1 is outside 192.168.23.14/24: an interface route to it goes first.
    assert persistent(guest) == ["-iface 192.168.24.1/32 192.168.23.14",
                                 "default 192.168.23.1", "192.168.24.0/24 192.168.24.1"]
    assert warnings_of(guest) == [
        "nocloud: network-config config[1].metric: 3: not supported by this agent; the route "
        "is added without it; skipped; the rest is applied"]
    second_boot_changes_nothing(guest)


def test_v2_complex_example_boots_with_its_ipv6_gateway_and_off_link_route(tmp_path):
    guest = boot_nocloud(tmp_path, ["00:11:22:33:44:55"],
                         network_config=doc("nocloud/v2-complex.yaml"))
    lines = persistent(guest)
    assert "-inet6 default 2001:1::2" in lines and "default 192.168.14.1" in lines
    assert lines.index("-iface 11.0.0.1/32 192.168.14.2") < lines.index("192.0.2.0/24 11.0.0.1")
    assert {"destination": "default", "gateway": "2001:1::2"} in guest.show()["routes"]
    second_boot_changes_nothing(guest)


LINK_ROUTES_V2 = """\
version: 2
ethernets:
  net0:
    match: {macaddress: "00:11:22:33:44:55"}
    addresses: [192.0.2.10/24, "2001:db8:1::10/64"]
    gateway6: "fe80::1"
    dhcp6: true
    routes:
      - to: 198.51.100.0/24
        scope: link
      - to: "2001:db8:99::/48"
        via: "fe80::1"
      - to: "2001:db8:5::/64"
      - to: 10.1.0.0/16
        via: not-an-ip
      - to: default
"""


def test_v2_link_routes_link_local_gateways_and_dhcpv6(tmp_path):
    """netplan: a route without `via` is a link-scope route; `dhcp6: true` asks for DHCPv6;
    a link-local gateway is reached through the NIC's link (`-ifp`)."""
    guest = make_guest(tmp_path, "nocloud", {"meta-data": "instance-id: iid-ll\n",
                                             "user-data": None,
                                             "network-config": LINK_ROUTES_V2})
    guest.set_state(links=[link("vioif0", "00:11:22:33:44:55")],
                    dhcpv6={"vioif0": "2001:db8:1::100"})
    result = guest.run()
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert persistent(guest) == [
        "-interface 198.51.100.0/24 192.0.2.10",
        "-inet6 -interface 2001:db8:5::/64 2001:db8:1::10",
        "-inet6 default fe80::1 -ifp vioif0",
        "-inet6 2001:db8:99::/48 fe80::1 -ifp vioif0"]
    shown = guest.show()
    assert {"destination": "default", "gateway": "fe80::1", "ifp": "vioif0"} in shown["routes"]
    assert {"destination": "198.51.100.0/24", "gateway": "192.0.2.10",
            "iface": True} in shown["routes"]
    # DHCPv6 ran: the object was made stateful, and the leased address is on it.
    assert guest.state()["addrconf"]["vioif0/v6"] == {"stateless": True, "stateful": True}
    assert {"addrobj": "vioif0/v6", "type": "addrconf", "state": "ok",
            "addr": "2001:db8:1::100/128"} in shown["addresses"]
    assert warnings_of(guest) == [
        "nocloud: network-config ethernets.net0.routes[3].via: 'not-an-ip' is not an IP "
        "address; skipped; the rest is applied",
        "nocloud: network-config ethernets.net0.routes[4].via: a default route needs a "
        "gateway; skipped; the rest is applied"]
    second_boot_changes_nothing(guest)


def test_without_dhcp6_the_addrconf_object_is_created_without_stateful(tmp_path):
    doc_ = LINK_ROUTES_V2.replace("    dhcp6: true\n", "")
    guest = make_guest(tmp_path, "nocloud", {"meta-data": "instance-id: iid-ll\n",
                                             "user-data": None, "network-config": doc_})
    guest.set_state(links=[link("vioif0", "00:11:22:33:44:55")])
    assert guest.run().returncode == 0
    # libipadm's own default: both yes; the agent passed no -p.
    assert guest.state()["addrconf"]["vioif0/v6"] == {"stateless": True, "stateful": True}


V1_LINK_ROUTE = """\
version: 1
config:
  - type: physical
    name: interface0
    mac_address: "00:11:22:33:44:55"
    subnets:
      - type: static
        address: 10.5.0.10/24
        routes:
          - network: 10.6.0.0
            netmask: 255.255.0.0
          - network: "2001:db8:7::"
            netmask: "ffff:ffff:ffff:ffff::"
      - type: dhcp6
"""


def test_v1_subnet_route_without_gateway_is_a_link_route_and_dhcp6_is_stateful():
    md = parse_seed({"network-config": V1_LINK_ROUTE.encode()})
    (nic,) = md.nics
    assert (nic.addrconf, nic.dhcp6) == (True, True)
    assert md.routes == (Route("10.6.0.0/16", None, "00:11:22:33:44:55"),
                         Route("2001:db8:7::/64", None, "00:11:22:33:44:55"))
    assert md.warnings == ()


def test_a_link_route_whose_link_has_no_address_of_its_family_is_a_warning(tmp_path):
    """Without `dhcp6` the NIC has no IPv6 address at all, so its IPv6 link route has no
    address to go through: a warning naming it (the link by its new name: v1 `name` renames
    it, as cloud-init does); the IPv4 link route still goes in."""
    doc_ = V1_LINK_ROUTE.replace("      - type: dhcp6\n", "")
    guest = boot_nocloud(tmp_path, ["00:11:22:33:44:55"], network_config=doc_)
    assert persistent(guest) == ["-interface 10.6.0.0/16 10.5.0.10"]
    assert warnings_of(guest) == [
        "nocloud:routes: link route to 2001:db8:7::/64 on interface0: the link has no address "
        "of its family up; skipped; the rest is applied"]


def test_v1_top_level_route_without_gateway_names_the_field():
    md = parse_seed({"network-config": json.dumps({"version": 1, "config": [
        {"type": "physical", "mac_address": "00:11:22:33:44:55",
         "subnets": [{"type": "static", "address": "10.5.0.10/24"}]},
        {"type": "route", "destination": "10.9.0.0/16"}]}).encode()})
    assert md.routes == ()
    assert md.warnings == (
        "nocloud: network-config config[1].gateway: route to '10.9.0.0/16' has no gateway "
        "and names no interface it is on; skipped; the rest is applied",)


# ---- SmartOS: vmadm `routes` with a "nics[N]" gateway --------------------------------------

def test_smartos_linklocal_route_is_a_link_route_on_that_nic():
    md = smartos.parse({"sdc:uuid": b"d2f3c6a0-4b5e-4e6f-9a1b-2c3d4e5f6a7b",
                        "sdc:nics": doc("smartos/sdc-nics.json").encode(),
                        "sdc:routes": doc("smartos/vmadm-routes.json").encode()})
    assert md.routes == (Route("10.2.2.0/24", "10.2.1.1"),
                         Route("10.3.0.1/32", None, "192.168.128.93"))
    assert md.warnings == ()


def test_smartos_guest_with_vmadm_routes(tmp_path):
    nics = json.loads(doc("smartos/sdc-nics.json"))
    routes = json.loads(doc("smartos/vmadm-routes.json"))
    guest = make_guest(tmp_path, "smartos", {"sdc:nics": nics, "sdc:routes": routes})
    guest.set_state(links=[link("vioif0", "90:b8:d0:f5:e4:f5"),
                           link("vioif1", "90:b8:d0:a5:ff:cd")])
    with serving(guest.root):
        result = guest.run()
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
        assert persistent(guest) == [
            "-interface 10.3.0.1/32 192.168.128.93",    # over the second NIC, by its IP
            "-iface 10.2.1.1/32 8.12.42.102",           # 10.2.1.1 is off-link: reach it first
            "default 8.12.42.1",
            "10.2.2.0/24 10.2.1.1"]
        assert warnings_of(guest) == []
        second_boot_changes_nothing(guest)


def test_smartos_linklocal_route_on_an_address_no_nic_has_is_a_warning(tmp_path):
    nics = json.loads(doc("smartos/sdc-nics.json"))
    routes = [{"linklocal": True, "dst": "10.3.0.0/16", "gateway": "172.16.0.9"},
              {"linklocal": False, "dst": "10.4.0.0/16", "gateway": "8.12.42.7"}]
    guest = make_guest(tmp_path, "smartos", {"sdc:nics": nics, "sdc:routes": routes})
    guest.set_state(links=[link("vioif0", "90:b8:d0:f5:e4:f5"),
                           link("vioif1", "90:b8:d0:a5:ff:cd")])
    with serving(guest.root):
        assert guest.run().returncode == 0
    assert "10.4.0.0/16 8.12.42.7" in persistent(guest)
    assert warnings_of(guest) == [
        "smartos:sdc:routes: routes: link route to '10.3.0.0/16': interface '172.16.0.9' is "
        "no NIC of this guest; skipped; the rest is applied"]


# ---- DigitalOcean: the IPv6 gateway of the public interface --------------------------------

def test_digitalocean_droplet_gets_its_ipv6_default_route(tmp_path):
    document = json.loads(doc("digitalocean/cloud-init-do-meta.json"))
    guest = make_guest(tmp_path, "digitalocean", document)
    guest.set_state(links=[link("vioif0", "04:01:57:d1:9e:01"),
                           link("vioif1", "04:01:57:d1:9e:02")])
    with serving(guest.root):
        result = guest.run()
        assert result.returncode in (0, 2), (result.stdout + result.stderr)[-3000:]
        assert "-inet6 default 2604:a880:800::1" in persistent(guest)
        assert {"destination": "default", "gateway": "2604:a880:800::1"} in \
            guest.show()["routes"]
        second_boot_changes_nothing(guest)


# ---- the stand-ins: route.c's and ipadm.c's refusals ---------------------------------------

def standin(guest, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SIM_ROOT": guest.root, "PYTHONPATH": PROJECT_DIR}
    return subprocess.run([sys.executable, "-m", "sim.standins", *argv], capture_output=True,
                          text=True, env=env, timeout=60)


def test_route_standin_ifp_and_address_families(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    guest.set_state(interfaces=["vioif0"], addresses=[
        {"addrobj": "vioif0/v6", "type": "addrconf", "state": "ok",
         "addr": "fe80::5054:ff:fe12:3456/10"}])
    missing = standin(guest, "route", "-p", "add", "-inet6", "default", "fe80::1", "-ifp", "net9")
    assert (missing.returncode, missing.stderr) == (1, "route: net9: no such interface\n")
    assert not os.path.exists(guest.path("/etc/inet/static_routes"))
    no_value = standin(guest, "route", "add", "-inet6", "default", "fe80::1", "-ifp")
    assert (no_value.returncode, no_value.stderr) == (
        1, "route: argument required following keyword -ifp\n")
    v6_as_v4 = standin(guest, "route", "add", "default", "fe80::1")
    assert (v6_as_v4.returncode, v6_as_v4.stderr) == (1, "fe80::1: bad value\n")
    v4_as_v6 = standin(guest, "route", "add", "-inet6", "default", "10.0.0.1")
    assert (v4_as_v6.returncode, v4_as_v6.stderr) == (1, "route: 10.0.0.1: bad address\n")
    ok = standin(guest, "route", "-p", "add", "-inet6", "default", "fe80::1", "-ifp", "vioif0")
    assert ok.returncode == 0 and ok.stdout == "add net default: gateway fe80::1\n" \
        "add persistent net default: gateway fe80::1\n", ok.stdout + ok.stderr
    again = standin(guest, "route", "-p", "add", "-inet6", "default", "fe80::1", "-ifp", "vioif0")
    assert again.returncode == 1 and again.stderr.endswith(": entry exists\n")
    shown = standin(guest, "route", "-p", "show")
    assert shown.stdout == "persistent: route add -inet6 default fe80::1 -ifp vioif0\n"


def test_ipadm_standin_addrconf_p(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    guest.set_state(dhcpv6={"vioif0": "2001:db8::77"})
    bad = standin(guest, "ipadm", "create-addr", "-T", "addrconf", "-p", "stateful=maybe",
                  "vioif0/v6")
    assert bad.returncode == 1 and "ipadm: invalid argument" in bad.stderr
    twice = standin(guest, "ipadm", "create-addr", "-T", "addrconf", "-p",
                    "stateful=yes,stateful=no", "vioif0/v6")
    assert twice.returncode == 1 and "ipadm: duplicate option" in twice.stderr
    off = standin(guest, "ipadm", "create-addr", "-T", "addrconf", "-p", "stateful=no",
                  "vioif0/v6")
    assert off.returncode == 0, off.stderr
    addrs = [a["addr"] for a in guest.state()["addresses"] if a["addrobj"] == "vioif0/v6"]
    assert all(not a.startswith("2001:db8::77") for a in addrs)   # no DHCPv6 without stateful
    assert standin(guest, "ipadm", "delete-addr", "vioif0/v6").returncode == 0
    on = standin(guest, "ipadm", "create-addr", "-T", "addrconf", "-p", "stateful=yes",
                 "vioif0/v6")
    assert on.returncode == 0, on.stderr
    addrs = [a["addr"] for a in guest.state()["addresses"] if a["addrobj"] == "vioif0/v6"]
    assert "2001:db8::77/128" in addrs


# ---- a kill between route calls: every prefix of the boot's route adds, resumed ------------

def _kernel_entry(line: str) -> dict:
    """The kernel table entry `route add LINE` makes (sim/standins/route.py)."""
    words, entry, rest = line.split(), {}, []
    it = iter(words)
    for word in it:
        if word == "-ifp":
            entry["ifp"] = next(it)
        elif word in ("-iface", "-interface"):
            entry["iface"] = True
        elif not word.startswith("-"):
            rest.append(word)
    return {"destination": rest[0], "gateway": rest[1], **entry}


def _link_routes_guest(tmp_path, name: str):
    guest = make_guest(tmp_path, "nocloud", {"meta-data": "instance-id: iid-ll\n",
                                             "user-data": None,
                                             "network-config": LINK_ROUTES_V2}, name=name)
    guest.set_state(links=[link("vioif0", "00:11:22:33:44:55")],
                    dhcpv6={"vioif0": "2001:db8:1::100"})
    return guest


def test_a_boot_killed_after_any_route_add_resumes_to_the_same_routes(tmp_path):
    """route(8) changes the kernel, then the file: a kill after k persistent adds and the
    kernel half of the next leaves exactly that; the next boot finishes the rest, with no
    error and no duplicate."""
    base = _link_routes_guest(tmp_path, "baseline")
    assert base.run().returncode == 0
    lines, kernel = persistent(base), base.show()["routes"]
    assert len(lines) == 4
    for k in range(len(lines)):
        guest = _link_routes_guest(tmp_path, f"killed-after-{k}")
        guest.write("/etc/inet/static_routes", "# File generated by route(1M) - do not edit.\n"
                    + "".join(ln + "\n" for ln in lines[:k]))
        guest.set_state(routes=[_kernel_entry(ln) for ln in lines[:k + 1]])
        result = guest.run()
        assert result.returncode == 0, (k, (result.stdout + result.stderr)[-3000:])
        assert guest.checkpoint().phase == "DONE"
        assert persistent(guest) == lines, k
        assert guest.show()["routes"] == kernel, k


def test_an_ipv6_link_route_on_a_link_with_only_its_link_local_address_names_the_link(tmp_path):
    doc_ = V1_LINK_ROUTE.replace("      - type: dhcp6\n", "      - type: ipv6_slaac\n")
    guest = boot_nocloud(tmp_path, ["00:11:22:33:44:55"], network_config=doc_)
    assert persistent(guest) == [
        "-interface 10.6.0.0/16 10.5.0.10",
        "-inet6 -interface 2001:db8:7::/64 fe80::211:22ff:fe33:4455 -ifp interface0"]
    assert warnings_of(guest) == []
    second_boot_changes_nothing(guest)
