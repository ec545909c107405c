"""The network stand-ins behave as their illumos man pages and sources say."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from guest import make_guest

from operations.parseable import parse_records
from sim.state import locked as guest_state_locked_root


def run(guest, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([guest.path(argv[0]), *argv[1:]], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def guest(tmp_path):
    return make_guest(tmp_path, "smartos")


def test_dladm_prints_macs_without_leading_zeros_escaped(guest):
    r = run(guest, "/usr/sbin/dladm", "show-phys", "-m", "-p", "-o", "link,address")
    assert r.returncode == 0
    assert r.stdout == "vioif0:90\\:b8\\:d0\\:1\\:2\\:3\nvioif1:90\\:b8\\:d0\\:4\\:5\\:6\n"
    r = run(guest, "/usr/sbin/dladm", "show-ether", "-p", "-o", "link")
    assert r.stdout.split() == ["vioif0", "vioif1"]
    r = run(guest, "/usr/sbin/dladm", "show-phys", "-m")
    assert r.stdout.splitlines()[0].split() == ["LINK", "SLOT", "ADDRESS", "INUSE", "CLIENT"]


def test_dladm_refuses_undocumented_forms(guest):
    assert run(guest, "/usr/sbin/dladm", "show-phys", "-p").returncode == 1  # -p needs -o
    assert run(guest, "/usr/sbin/dladm", "create-vnic", "-l", "vioif0", "v0").returncode == 1
    # dladm.c: usage() and die() exit 1 (EXIT_FAILURE), never 2
    r = run(guest, "/usr/sbin/dladm", "show-phys", "-Z")
    assert r.returncode == 1 and r.stderr.startswith("dladm: unrecognized option '-Z'\n")
    r = run(guest, "/usr/sbin/dladm", "frob")
    assert r.returncode == 1 and r.stderr.startswith(
        "dladm: unknown subcommand 'frob'\nusage:  dladm <subcommand> <args> ...\n")
    r = run(guest, "/usr/sbin/dladm", "show-phys", "-m", "-p", "-o", "link,bogus")
    assert (r.returncode, r.stderr) == (1, "dladm: invalid field(s) specified\n")
    r = run(guest, "/usr/sbin/dladm", "show-phys", "nosuch0")
    assert (r.returncode, r.stderr) == (1, "dladm: link nosuch0 is not valid: object not found\n")
    # getopt_long: options after the operand
    assert run(guest, "/usr/sbin/dladm", "show-phys", "vioif0", "-p", "-o", "link").stdout == "vioif0\n"


def test_ipadm_create_fails_like_illumos(guest):
    assert run(guest, "/usr/sbin/ipadm", "create-if", "vioif0").returncode == 0
    r = run(guest, "/usr/sbin/ipadm", "create-if", "vioif0")
    # ipadm.c die(): the message on stderr, its newline (putchar) on stdout, exit 1
    assert (r.returncode, r.stderr, r.stdout) == (
        1, "ipadm: Could not create vioif0 : Interface already exists", "\n")
    args = ["/usr/sbin/ipadm", "create-addr", "-T", "static", "-a", "192.0.2.5/24", "vioif0/v4"]
    assert run(guest, *args).returncode == 0
    r = run(guest, *args)
    assert (r.returncode, r.stderr) == (1, "ipadm: Could not create address: Address object already exists")
    r = run(guest, "/usr/sbin/ipadm", "delete-addr", "vioif0/nope")
    assert (r.returncode, r.stderr) == (1, "ipadm: could not delete address: Object not found")
    r = run(guest, "/usr/sbin/ipadm", "show-addr", "-p")
    assert r.returncode == 1 and "-p requires -o" in r.stderr
    assert run(guest, "/usr/sbin/ipadm", "create-addr", "-T", "bogus", "vioif0/x").returncode == 1
    r = run(guest, "/usr/sbin/ipadm", "frobnicate")   # usage() exits 1, not 2
    assert r.returncode == 1 and r.stderr.startswith(
        "ipadm: unknown subcommand 'frobnicate'\nusage:  ipadm <subcommand> <args> ...\n")


def test_ipadm_create_addr_plumbs_a_missing_interface_and_escapes_ipv6(guest):
    assert run(guest, "/usr/sbin/ipadm", "create-addr", "-T", "addrconf", "vioif1/v6").returncode == 0
    assert run(guest, "/usr/sbin/ipadm", "create-addr", "-T", "static", "-a",
               "2001:db8::5/64", "vioif1/v6s").returncode == 0
    assert "vioif1" in guest.state()["interfaces"]
    r = run(guest, "/usr/sbin/ipadm", "show-addr", "-p", "-o", "addrobj,type,state,addr", "vioif1/")
    assert r.stdout.splitlines() == [
        "vioif1/v6:addrconf:ok:fe80\\:\\:92b8\\:d0ff\\:fe04\\:506/10",
        "vioif1/v6s:static:ok:2001\\:db8\\:\\:5/64",
    ]
    r = run(guest, "/usr/sbin/ipadm", "create-addr", "-T", "addrconf", "vioif1/v6b")
    assert r.returncode == 1 and "Addrconf already in progress" in r.stderr


def test_dhcp_wait_that_runs_out_warns_and_leaves_an_object_without_lease(guest):
    guest.set_state(dhcp={"mode": "never", "delay_s": 0.0, "leases": {}})
    started = time.monotonic()
    r = run(guest, "/usr/sbin/ipadm", "create-addr", "-T", "dhcp", "-1", "-w", "1", "vioif0/dhcp")
    took = time.monotonic() - started
    assert r.returncode == 0
    assert r.stderr == "ipadm: warning: Communication with dhcpagent timed out\n"
    assert 1.0 <= took < 10
    r = run(guest, "/usr/sbin/ipadm", "show-addr", "-p", "-o", "addrobj,type,state,addr", "vioif0/dhcp")
    assert r.stdout == "vioif0/dhcp:dhcp:down:?\n"
    r = run(guest, "/sbin/dhcpinfo", "-i", "vioif0", "Router")
    assert r.returncode == 2 and "not in appropriate state" in r.stderr
    assert guest.state()["routes"] == []


def test_dhcp_delay_answers_within_the_wait_with_a_configured_lease(guest):
    lease = {"address": "198.51.100.7/25", "router": ["198.51.100.1", "198.51.100.2"],
             "dns": ["198.51.100.53", "198.51.100.54"], "hostname": "leased", "domain": "example.net"}
    guest.set_state(dhcp={"mode": "delay", "delay_s": 0.5, "leases": {"vioif1": lease}})
    started = time.monotonic()
    r = run(guest, "/usr/sbin/ipadm", "create-addr", "-T", "dhcp", "-w", "10", "vioif1/dhcp")
    took = time.monotonic() - started
    assert r.returncode == 0 and r.stderr == ""
    assert 0.5 <= took < 5
    info = {code: run(guest, "/sbin/dhcpinfo", "-i", "vioif1", code) for code in
            ("Router", "DNSserv", "Hostname", "DNSdmain", "Subnet")}
    assert all(p.returncode == 0 for p in info.values())
    assert info["Router"].stdout == "198.51.100.1\n198.51.100.2\n"  # granularity 1: a line each
    assert info["DNSserv"].stdout == "198.51.100.53\n198.51.100.54\n"
    assert info["Hostname"].stdout == "leased\n"
    assert info["DNSdmain"].stdout == "example.net\n"
    assert info["Subnet"].stdout == "255.255.255.128\n"
    assert run(guest, "/sbin/dhcpinfo", "-i", "vioif1", "-n", "1", "Router").stdout == "198.51.100.1\n"
    assert {"destination": "default", "gateway": "198.51.100.1"} in guest.state()["routes"]


def test_dhcpinfo_errors_and_missing_options(guest):
    r = run(guest, "/sbin/dhcpinfo", "-i", "vioif0", "Router")
    assert (r.returncode, r.stderr) == (2, "dhcpinfo: interface is not under DHCP control\n")
    assert run(guest, "/sbin/dhcpinfo", "-i", "vioif0", "NoSuchThing").returncode == 3
    assert run(guest, "/sbin/dhcpinfo").returncode == 3
    run(guest, "/usr/sbin/ipadm", "create-addr", "-T", "dhcp", "-w", "5", "vioif0/dhcp")
    r = run(guest, "/sbin/dhcpinfo", "-i", "vioif0", "Hostname")  # default lease has none
    assert (r.returncode, r.stdout) == (0, "")
    assert run(guest, "/sbin/dhcpinfo", "-i", "vioif0", "3").stdout == "10.0.2.2\n"


def test_delete_addr_releases_the_lease_and_its_route(guest):
    run(guest, "/usr/sbin/ipadm", "create-addr", "-T", "dhcp", "-w", "5", "vioif0/dhcp")
    assert guest.state()["routes"] == [{"destination": "default", "gateway": "10.0.2.2"}]
    assert run(guest, "/usr/sbin/ipadm", "delete-addr", "-r", "vioif0/dhcp").returncode == 0
    assert guest.state()["routes"] == []
    assert run(guest, "/sbin/dhcpinfo", "-i", "vioif0", "Router").returncode == 2


def test_route_persistent_add_and_entry_exists(guest):
    assert run(guest, "/usr/sbin/ipadm", "create-addr", "-T", "static", "-a", "192.0.2.5/24",
               "vioif0/v4").returncode == 0
    assert run(guest, "/usr/sbin/ipadm", "create-addr", "-T", "addrconf", "vioif0/v6").returncode == 0
    r = run(guest, "/usr/sbin/route", "-p", "show")
    assert r.stdout == "No persistent routes are defined\n"
    r = run(guest, "/usr/sbin/route", "-p", "add", "default", "192.0.2.1")
    assert (r.returncode, r.stdout) == (0, "add net default: gateway 192.0.2.1\n"
                                           "add persistent net default: gateway 192.0.2.1\n")
    with open(guest.path("/etc/inet/static_routes")) as f:
        assert f.read() == "# File generated by route(1M) - do not edit.\ndefault 192.0.2.1\n"
    r = run(guest, "/usr/sbin/route", "-p", "add", "default", "192.0.2.1")
    assert r.returncode == 1
    assert r.stdout == "add net default: gateway 192.0.2.1: entry exists\n"
    assert r.stderr == "add persistent net default: gateway 192.0.2.1: entry exists\n"
    r = run(guest, "/usr/sbin/route", "add", "default", "192.0.2.1")  # kernel only: errno
    assert r.returncode == 17 and r.stdout.endswith(": entry exists\n")
    r = run(guest, "/usr/sbin/route", "-p", "add", "-inet6", "default", "fe80::1")
    assert r.returncode == 0
    assert run(guest, "/usr/sbin/route", "-p", "show").stdout == (
        "persistent: route add default 192.0.2.1\npersistent: route add -inet6 default fe80::1\n")
    r = run(guest, "/usr/sbin/route", "-p", "delete", "default", "192.0.2.1")
    assert r.returncode == 0
    assert guest.state()["routes"] == [{"destination": "default", "gateway": "fe80::1"}]


def test_route_refuses_bad_forms(guest):
    assert run(guest, "/usr/sbin/route", "show").returncode == 1  # show needs -p
    r = run(guest, "/usr/sbin/route", "-p", "add", "default")
    assert r.returncode == 1 and "gateway required" in r.stderr
    assert run(guest, "/usr/sbin/route", "-p", "add", "default", "not-an-ip").returncode == 1
    r = run(guest, "/usr/sbin/route", "-p", "frob")   # route.c usage(): exit 1
    assert (r.returncode, r.stderr.splitlines()[0]) == (1, "route: botched keyword: frob")
    assert not os.path.exists(guest.path("/etc/inet/static_routes"))


def test_parseable_output_round_trips_through_our_parser(guest):
    run(guest, "/usr/sbin/ipadm", "create-addr", "-T", "addrconf", "vioif0/v6")
    r = run(guest, "/usr/sbin/ipadm", "show-addr", "-p", "-o", "addrobj,type,state,current,persistent,addr")
    rows = parse_records(r.stdout, ["addrobj", "type", "state", "current", "persistent", "addr"],
                         "ipadm show-addr")
    assert {"addrobj": "lo0/v6", "type": "static", "state": "ok", "current": "U----",
            "persistent": "U--", "addr": "::1/128"} in rows


# ---- issue 10: what the old, lenient stand-ins let through ---------------------------------
def guest_state_locked(guest):
    return guest_state_locked_root(guest.root)


def test_route_to_an_off_link_gateway_is_unreachable_until_an_interface_route_covers_it(guest):
    assert run(guest, "/usr/sbin/ipadm", "create-addr", "-T", "static", "-a", "172.30.0.5/32",
               "vioif0/v4").returncode == 0
    # route.c newroute(): the summary and strerror(ENETUNREACH) on stdout, the errno as exit
    r = run(guest, "/usr/sbin/route", "add", "default", "172.30.0.1")
    assert (r.returncode, r.stdout, r.stderr) == (
        128, "add net default: gateway 172.30.0.1: Network is unreachable\n", "")
    r = run(guest, "/usr/sbin/route", "-p", "add", "default", "172.30.0.1")
    assert r.returncode == 128 and not os.path.exists(guest.path("/etc/inet/static_routes"))
    r = run(guest, "/usr/sbin/route", "add", "-iface", "172.30.0.1/32", "172.30.0.9")
    assert r.returncode == 128   # an interface route's gateway must be a local address
    assert guest.state()["routes"] == []
    r = run(guest, "/usr/sbin/route", "-p", "add", "-iface", "172.30.0.1/32", "172.30.0.5")
    assert (r.returncode, r.stdout) == (0, "add host 172.30.0.1/32: gateway 172.30.0.5\n"
                                           "add persistent host 172.30.0.1/32: gateway 172.30.0.5\n")
    r = run(guest, "/usr/sbin/route", "-p", "add", "default", "172.30.0.1")
    assert r.returncode == 0
    assert run(guest, "/usr/sbin/route", "-p", "show").stdout == (
        "persistent: route add -iface 172.30.0.1/32 172.30.0.5\n"
        "persistent: route add default 172.30.0.1\n")
    assert {"destination": "default", "gateway": "172.30.0.1"} in guest.state()["routes"]


def test_dhcp_address_is_tentative_during_dad_and_only_ok_is_bound(guest):
    guest.set_state(dhcp={"mode": "answer", "delay_s": 0.0, "dad_s": 3600.0, "leases": {}})
    started = time.monotonic()
    r = run(guest, "/usr/sbin/ipadm", "create-addr", "-T", "dhcp", "-w", "0", "vioif0/dhcp")
    assert (r.returncode, r.stderr) == (0, "")     # -w 0: no wait, and no warning
    assert time.monotonic() - started < 30          # it did not wait out the DAD
    show = ["/usr/sbin/ipadm", "show-addr", "-p", "-o", "addrobj,state,addr", "vioif0/dhcp"]
    assert run(guest, *show).stdout == "vioif0/dhcp:tentative:10.0.2.15/24\n"
    r = run(guest, "/sbin/dhcpinfo", "-i", "vioif0", "Router")
    assert (r.returncode, r.stderr) == (2, "dhcpinfo: interface not in appropriate state for command\n")
    assert guest.state()["routes"] == []
    with guest_state_locked(guest) as st:
        st["dhcp"]["dad_s"] = 0.0                  # the kernel finishes DAD
    assert run(guest, *show).stdout == "vioif0/dhcp:ok:10.0.2.15/24\n"
    assert run(guest, "/sbin/dhcpinfo", "-i", "vioif0", "Router").stdout == "10.0.2.2\n"
    assert guest.state()["routes"] == [{"destination": "default", "gateway": "10.0.2.2"}]


def test_a_duplicate_dhcp_address_is_shown_and_never_bound(guest):
    lease = {"address": "192.0.2.50/24", "router": "192.0.2.1", "dns": [], "duplicate": True}
    guest.set_state(dhcp={"mode": "answer", "delay_s": 0.0, "leases": {"vioif0": lease}})
    r = run(guest, "/usr/sbin/ipadm", "create-addr", "-T", "dhcp", "-w", "1", "vioif0/dhcp")
    assert (r.returncode, r.stderr) == (0, "ipadm: warning: Communication with dhcpagent timed out\n")
    r = run(guest, "/usr/sbin/ipadm", "show-addr", "-p", "-o", "state,addr", "vioif0/dhcp")
    assert r.stdout == "duplicate:192.0.2.50/24\n"
    assert run(guest, "/sbin/dhcpinfo", "-i", "vioif0", "Router").returncode == 2
    assert guest.state()["routes"] == []


def test_a_32_lease_gets_no_default_route_from_dhcpagent(guest):
    lease = {"address": "172.30.0.5/32", "router": "172.30.0.1", "dns": ["172.30.0.53"]}
    guest.set_state(dhcp={"mode": "answer", "delay_s": 0.0, "leases": {"vioif0": lease}})
    r = run(guest, "/usr/sbin/ipadm", "create-addr", "-T", "dhcp", "-w", "5", "vioif0/dhcp")
    assert (r.returncode, r.stderr) == (0, "")
    assert run(guest, "/sbin/dhcpinfo", "-i", "vioif0", "Router").stdout == "172.30.0.1\n"
    assert guest.state()["routes"] == []           # off-link: dhcpagent does not add it


def test_ipadm_create_addr_argument_checks_follow_ipadm_c(guest):
    ipadm = "/usr/sbin/ipadm"
    for wait in ("-1", "soon"):
        r = run(guest, ipadm, "create-addr", "-T", "dhcp", "-w", wait, "vioif0/dhcp")
        assert (r.returncode, r.stderr) == (1, "ipadm: Invalid argument")
    r = run(guest, ipadm, "create-addr", "-T", "dhcp", "-h", "bad_name!", "vioif0/dhcp")
    assert (r.returncode, r.stderr) == (1, "ipadm: Error in setting reqhost: Invalid argument provided")
    r = run(guest, ipadm, "create-addr", "-T", "static", "-h", "web-1", "-a", "192.0.2.5/24",
            "vioif0/v4")
    assert r.returncode == 1 and r.stderr.startswith("ipadm: Invalid arguments for type static\n")
    r = run(guest, ipadm, "create-addr", "-T", "dhcp", "vioif0")
    assert r.returncode == 1 and r.stderr.startswith("ipadm: invalid address object name: vioif0\n")
    r = run(guest, ipadm, "create-addr", "-T", "dhcp", "vioif0/no_underscores")
    assert r.stderr == "ipadm: Error in creating address object: Invalid argument provided"
    r = run(guest, ipadm, "create-addr", "-T", "dhcp", "-x", "vioif0/dhcp")
    assert r.returncode == 1 and r.stderr.startswith("ipadm: unrecognized option '-x'\nusage: ")
    r = run(guest, ipadm, "create-addr", "-T", "dhcp", "vioif0/dhcp", "-w")
    assert r.stderr.startswith("ipadm: option '-w' requires a value\n")
    assert run(guest, ipadm).returncode == 1          # no subcommand: usage(), exit 1
    # getopt_long: options may follow the operand
    assert run(guest, ipadm, "create-addr", "vioif1/v4", "-T", "static", "-a",
               "192.0.2.6/24").returncode == 0
    assert guest.state()["dhcp"].get("reqhost", {}) == {}


def test_ipadm_dhcp_reqhost_reaches_the_server_and_w_forever_waits_for_the_lease(guest):
    r = run(guest, "/usr/sbin/ipadm", "create-addr", "-T", "dhcp", "-1", "-h", "web-1.example.com",
            "-w", "forever", "vioif0/dhcp")
    assert (r.returncode, r.stderr) == (0, "")
    dhcp = guest.state()["dhcp"]
    assert dhcp["reqhost"] == {"vioif0": "web-1.example.com"} and "vioif0" in dhcp["bound"]
