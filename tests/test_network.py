"""NETWORK steps on a simulated guest, asserted by the guest's resulting state.

Whole-agent runs (`Guest.run()`) cover DHCP on the first link (no metadata network config),
a DHCP server that answers late or never, and running twice. Metadata-driven cases (static
IPv4 + IPv6, gateways, resolvers) build a Context by hand and call the step functions
against the guest's stand-ins, until the providers that produce such metadata land.
"""

from __future__ import annotations

import time

import pytest
from guest import make_guest, without_calls

from fsm.checkpoint import Checkpoint
from fsm.errors import ParseError, ServiceError
from fsm.settings import Settings, parse
from fsm.steps import Context
from fsm.system import System
from operations import dns, network
from operations.dhcp import ensure_dhcp, lease_facts
from operations.netlinks import list_links
from providers.model import Metadata, Nic, Route

MUTATING = ("ipadm create-if", "ipadm create-addr", "ipadm delete-addr", "ipadm delete-if")


def mutations(calls: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in calls.items() if k in MUTATING}


def context(guest, md: Metadata | None, settings: Settings | None = None) -> Context:
    return Context(system=System(guest.root), settings=settings or Settings(),
                   checkpoint=Checkpoint(), metadata=md)


def run_steps(ctx: Context) -> list[str]:
    changes: list[str] = []
    for step in network.STEPS:
        changes += step.run(ctx).changes
    return changes


def addresses(guest) -> dict[str, tuple[str, str]]:
    return {a["addrobj"]: (a["type"], a["addr"]) for a in guest.show()["addresses"]}


# ---- whole agent runs -------------------------------------------------------------------
def test_dhcp_on_first_link_then_second_run_changes_nothing(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    first = guest.run()
    assert first.returncode == 0, first.stdout + first.stderr
    shown = guest.show()
    assert shown["interfaces"] == ["vioif0"]
    assert addresses(guest) == {"vioif0/dhcp": ("dhcp", "10.0.2.15/24")}
    assert shown["routes"] == [{"destination": "default", "gateway": "10.0.2.2"}]
    assert shown["dns"]["nameservers"] == ["10.0.2.3"]
    assert shown["dns"]["nsswitch_hosts"] == "files dns"
    assert shown["dns"]["nsswitch_ipnodes"] == "files dns"
    assert guest.state()["dhcp"]["primary"] == "vioif0"  # created with -1
    calls_after_first = guest.calls()
    assert mutations(calls_after_first) == {"ipadm create-if": 1, "ipadm create-addr": 1}

    second = guest.run()  # a new boot
    assert second.returncode == 0, second.stdout + second.stderr
    assert mutations(guest.calls()) == mutations(calls_after_first)
    assert without_calls(guest.show()) == without_calls(shown)


def test_dhcp_that_answers_late_is_waited_for_with_backoff(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    lease = {"address": "172.16.5.20/24", "router": "172.16.5.1", "dns": ["172.16.5.53"],
             "hostname": "late-lease", "domain": "corp.example"}
    # The image's own network service already asked for a lease (LINK/dhcp exists, no lease
    # yet): the agent must not create it again but poll until the answer arrives.
    guest.set_state(interfaces=["lo0", "vioif0"],
                    addresses=guest.state()["addresses"] + [
                        {"addrobj": "vioif0/dhcp", "type": "dhcp", "state": "down", "addr": "?"}],
                    dhcp={"mode": "delay", "delay_s": 2.0, "leases": {"vioif0": lease},
                          "requested": {"vioif0": time.time()}, "bound": {}})
    started = time.monotonic()
    result = guest.run()
    took = time.monotonic() - started
    assert result.returncode == 0, result.stdout
    assert addresses(guest) == {"vioif0/dhcp": ("dhcp", "172.16.5.20/24")}
    assert guest.calls().get("ipadm create-addr", 0) == 0
    assert guest.calls()["ipadm show-addr"] >= 3  # polled more than once
    assert 1.5 <= took < 30
    shown = guest.show()
    assert shown["dns"]["nameservers"] == ["172.16.5.53"]
    assert shown["dns"]["search"] == ["corp.example"]


def test_dhcp_that_never_answers_fails_the_step_bounded_and_the_rest_still_runs(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    guest.write("/etc/metadata-agent.toml", "[timeouts]\ndhcp = 1\n")
    guest.set_state(dhcp={"mode": "never", "delay_s": 0.0, "leases": {}})
    started = time.monotonic()
    result = guest.run(timeout=40)
    took = time.monotonic() - started
    assert result.returncode == 95, result.stdout + result.stderr
    assert took < 20
    log = result.stdout + result.stderr
    assert "DHCP on vioif0: no lease within 1 s (timeouts.dhcp)" in log
    cp = guest.checkpoint()
    assert cp.last_error is not None
    assert (cp.last_error["phase"], cp.last_error["step"]) == ("NETWORK", "addresses")
    for phase in ("IDENTITY", "STORAGE", "USERSCRIPT"):
        assert phase in cp.phases, f"{phase} did not run after the DHCP failure"
    # the interface and the DHCP object exist; no lease, so no route and no nameserver
    assert addresses(guest) == {"vioif0/dhcp": ("dhcp", "?")}
    assert guest.show()["routes"] == []
    assert guest.show()["dns"]["nameservers"] == []


# ---- metadata-driven, in process --------------------------------------------------------
def static_md(**extra) -> Metadata:
    nic = Nic(mac="52:54:00:12:34:56", addresses=("192.0.2.10/24", "2001:db8:0:1::10/64"),
              gateways=("192.0.2.1", "2001:db8:0:1::1"), primary=True, name="net0")
    fields = {"source": "test", "nics": (nic,), "resolvers": ("192.0.2.53", "2001:db8::53"),
              "search_domains": ("example.com", "corp.example.com")}
    fields.update(extra)
    return Metadata(**fields)


def test_static_v4_and_v6_configuration_and_idempotence(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    changes = run_steps(context(guest, static_md()))
    assert changes
    assert addresses(guest) == {
        "vioif0/v4": ("static", "192.0.2.10/24"),
        "vioif0/v6": ("addrconf", "fe80::5054:ff:fe12:3456/10"),
        "vioif0/v6s": ("static", "2001:db8:0:1::10/64"),
    }
    shown = guest.show()
    assert shown["interfaces"] == ["vioif0"]
    assert shown["defaultrouter"] == ["192.0.2.1"]
    assert {"destination": "default", "gateway": "192.0.2.1"} in shown["routes"]
    assert {"destination": "default", "gateway": "2001:db8:0:1::1"} in shown["routes"]
    assert guest.read("/etc/inet/static_routes").splitlines()[1:] == [
        "default 192.0.2.1", "-inet6 default 2001:db8:0:1::1"]
    assert shown["dns"]["nameservers"] == ["192.0.2.53", "2001:db8::53"]
    assert shown["dns"]["search"] == ["example.com", "corp.example.com"]
    calls = guest.calls()

    again = run_steps(context(guest, static_md()))
    assert again == []
    after = guest.calls()
    assert mutations(after) == mutations(calls)
    assert after["route"] == calls["route"] + 1  # only `route -p show`
    assert without_calls(guest.show()) == without_calls(shown)


def test_wrong_address_and_type_replaced_right_one_left_and_wrong_link_corrected(tmp_path):
    guest = make_guest(tmp_path, "smartos")  # vioif0 90:b8:d0:1:2:3, vioif1 90:b8:d0:4:5:6
    base = guest.state()["addresses"]
    guest.set_state(interfaces=["lo0", "vioif0", "vioif1"], addresses=base + [
        {"addrobj": "vioif0/v4", "type": "static", "state": "ok", "addr": "192.0.2.99/24"},
        {"addrobj": "vioif0/v6", "type": "static", "state": "ok", "addr": "2001:db8::99/64"},
        {"addrobj": "vioif1/v4", "type": "static", "state": "ok", "addr": "198.51.100.10/24"},
        {"addrobj": "vioif1/v4n1", "type": "static", "state": "ok", "addr": "203.0.113.5/24"},
        {"addrobj": "vioif1/admin", "type": "static", "state": "ok", "addr": "10.9.9.9/8"},
    ])
    md = Metadata(source="test", nics=(
        Nic(mac="90:b8:d0:01:02:03", addresses=("192.0.2.10/24", "198.51.100.10/24"),
            addrconf=True, primary=True),
        Nic(mac="90:b8:d0:04:05:06", addresses=("203.0.113.5/24",)),
    ))
    run_steps(context(guest, md))
    assert addresses(guest) == {
        "vioif0/v4": ("static", "192.0.2.10/24"),            # wrong address: replaced
        "vioif0/v4n1": ("static", "198.51.100.10/24"),       # moved from vioif1
        "vioif0/v6": ("addrconf", "fe80::92b8:d0ff:fe01:203/10"),  # wrong type: replaced
        "vioif1/v4": ("static", "203.0.113.5/24"),
        "vioif1/admin": ("static", "10.9.9.9/8"),            # not ours: never touched
    }
    # vioif1/v4n1 held the right address under a name of ours that is no longer wanted
    assert guest.calls()["ipadm delete-addr"] == 4
    calls = guest.calls()
    assert run_steps(context(guest, md)) == []
    assert mutations(guest.calls()) == mutations(calls)


def test_right_address_is_left_alone(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    guest.set_state(interfaces=["lo0", "vioif0"], addresses=guest.state()["addresses"] + [
        {"addrobj": "vioif0/v4", "type": "static", "state": "ok", "addr": "192.0.2.10/24"}])
    md = Metadata(source="test", nics=(Nic(mac="52:54:00:12:34:56", addresses=("192.0.2.10/24",)),))
    run_steps(context(guest, md))
    assert mutations(guest.calls()) == {}
    assert addresses(guest) == {"vioif0/v4": ("static", "192.0.2.10/24")}


def test_several_gateways_use_the_primary_nics_first_and_stale_default_goes(tmp_path):
    guest = make_guest(tmp_path, "smartos")
    guest.write("/etc/inet/static_routes",
                "# File generated by route(1M) - do not edit.\ndefault 192.0.2.254\n")
    guest.set_state(routes=[{"destination": "default", "gateway": "192.0.2.254"},
                            {"destination": "default", "gateway": "198.51.100.1"}])
    md = Metadata(source="test", nics=(
        Nic(mac="90:b8:d0:01:02:03", addresses=("192.0.2.10/24",), gateways=("192.0.2.1",)),
        Nic(mac="90:b8:d0:04:05:06", addresses=("198.51.100.10/24",),
            gateways=("198.51.100.1", "198.51.100.2"), primary=True),
    ), routes=(Route("10.20.0.0/16", "192.0.2.1"),))
    changes = run_steps(context(guest, md))
    assert guest.read("/etc/inet/static_routes").splitlines()[1:] == [
        "default 198.51.100.1", "10.20.0.0/16 192.0.2.1"]
    assert guest.show()["defaultrouter"] == ["198.51.100.1"]
    routes = guest.show()["routes"]
    assert {"destination": "default", "gateway": "192.0.2.254"} not in routes
    # the kernel already had the wanted default: "entry exists" is not an error
    assert {"destination": "default", "gateway": "198.51.100.1"} in routes
    assert "persistent default route via 198.51.100.1" in changes
    assert run_steps(context(guest, md)) == []


def test_resolv_conf_and_nsswitch_edits_keep_unrelated_lines(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    guest.write("/etc/resolv.conf", "# managed by the image\ndomain old.example\n"
                "nameserver 8.8.8.8\noptions ndots:2\nnameserver 8.8.4.4\nsortlist 10.0.0.0\n")
    guest.write("/etc/nsswitch.conf", "# custom\npasswd: files\n"
                "hosts:  files [NOTFOUND=return] mdns # local\nnetworks: files\n")
    md = Metadata(source="test", resolvers=("192.0.2.53",), search_domains=("example.com",))
    ctx = context(guest, md)
    outcome = dns.apply_dns(ctx)
    assert len(outcome.changes) == 2
    assert guest.read("/etc/resolv.conf") == (
        "# managed by the image\nsearch example.com\nnameserver 192.0.2.53\n"
        "options ndots:2\nsortlist 10.0.0.0\n")
    assert guest.read("/etc/nsswitch.conf") == (
        "# custom\npasswd: files\nhosts:  files [NOTFOUND=return] dns mdns # local\n"
        "networks: files\nipnodes:   files dns\n")
    assert dns.apply_dns(context(guest, md)).changes == []


def test_nsswitch_already_with_dns_is_left_alone():
    text = "hosts: files dns\nipnodes: dns files\n"
    assert dns.edit_nsswitch(text) == text


def test_no_resolvers_anywhere_leaves_dns_files_alone(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    before = guest.read("/etc/nsswitch.conf")
    outcome = dns.apply_dns(context(guest, Metadata(source="test")))
    assert outcome.changes == []
    assert guest.read("/etc/nsswitch.conf") == before
    assert guest.show()["dns"]["nameservers"] == []


def test_nic_whose_mac_is_absent_is_a_warning_and_the_others_are_configured(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    md = Metadata(source="test", provenance={"nics": "network.interfaces"}, nics=(
        Nic(mac="52:54:00:12:34:56", addresses=("192.0.2.10/24",), primary=True),
        Nic(mac="de:ad:be:ef:00:01", addresses=("192.0.2.11/24",), name="extra")))
    ctx = context(guest, md)
    outcome = network.configure_interfaces(ctx)
    assert outcome.warnings == ["test:network.interfaces: extra: no link has MAC "
                                "de:ad:be:ef:00:01 (links: vioif0 52:54:00:12:34:56); skipped; "
                                "the rest is applied"]
    network.configure_addresses(ctx)
    assert addresses(guest) == {"vioif0/v4": ("static", "192.0.2.10/24")}


def test_malformed_static_address_is_a_warning_and_the_good_one_is_configured(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    md = Metadata(source="test", nics=(Nic(mac=None, addresses=("192.0.2.300/24",
                                                                "192.0.2.30/24")),))
    outcome = network.configure_addresses(context(guest, md))
    assert outcome.warnings == ["test:nics: addresses: on vioif0: '192.0.2.300/24' is not an "
                                "address/prefix; skipped; the rest is applied"]
    assert addresses(guest) == {"vioif0/v4": ("static", "192.0.2.30/24")}


def test_a_malformed_route_or_search_domain_is_a_warning_and_the_rest_applies(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    md = Metadata(source="test", nics=(Nic(mac=None, addresses=("192.0.2.30/24",),
                                           gateways=("192.0.2.1",), primary=True),),
                  routes=(Route("10.0.0.0/8", "2001:db8::1"), Route("10.1.0.0/16", "192.0.2.9")),
                  resolvers=("192.0.2.53",), search_domains=("bad domain!", "good.example"))
    ctx = context(guest, md)
    network.configure_interfaces(ctx)
    network.configure_addresses(ctx)
    routed = network.configure_routes(ctx)
    assert routed.warnings == ["test:routes: routes: '10.0.0.0/8' via '2001:db8::1' mixes IPv4 "
                               "and IPv6; skipped; the rest is applied"]
    assert {"destination": "10.1.0.0/16", "gateway": "192.0.2.9"} in guest.show()["routes"]
    named = network.configure_dns(ctx)
    assert named.warnings == ["test:search_domains: search_domains: 'bad domain!' is not a "
                              "domain name; skipped; the rest is applied"]
    assert guest.show()["dns"]["search"] == ["good.example"]


def test_list_links_normalises_macs_and_refuses_garbage(tmp_path):
    guest = make_guest(tmp_path, "bhyve")  # dladm prints 2:8:20:a:b:c
    assert list_links(System(guest.root)) == [("vioif0", "02:08:20:0a:0b:0c")]
    guest.set_state(faults={"garbage": {"dladm show-phys": "vioif0:2:8:20:a:b:c\n"}})
    with pytest.raises(ParseError) as info:
        list_links(System(guest.root))
    assert "dladm show-phys" in info.value.command and info.value.line == "vioif0:2:8:20:a:b:c"


def test_ensure_dhcp_contract_and_lease_facts(tmp_path):
    guest = make_guest(tmp_path, "smartos")
    guest.set_state(dhcp={"mode": "answer", "delay_s": 0.0, "leases": {"vioif1": {
        "address": "198.51.100.7/24", "router": "198.51.100.1", "dns": ["198.51.100.53"],
        "hostname": "from-dhcp", "domain": "example.org"}}})
    ctx = context(guest, Metadata(source="test"))
    lease = ensure_dhcp(ctx, "vioif1")
    assert lease == {"link": "vioif1", "address": "198.51.100.7/24", "hostname": "from-dhcp",
                     "routers": ["198.51.100.1"], "dns": ["198.51.100.53"], "domain": "example.org"}
    assert ctx.facts["dhcp"] == lease
    assert guest.state()["dhcp"]["primary"] == "vioif1"
    # a second call (e.g. NETWORK after EC2's FETCH) makes no change
    calls = guest.calls()
    assert ensure_dhcp(ctx, "vioif1") == lease
    assert mutations(guest.calls()) == mutations(calls)
    # a resumed start that skipped the step re-reads the bound lease without changing it
    fresh = context(guest, Metadata(source="test"))
    assert lease_facts(fresh) == lease and fresh.facts["dhcp"] == lease
    # a non-primary link does not take over facts["dhcp"]
    ensure_dhcp(ctx, "vioif0", primary=False)
    assert ctx.facts["dhcp"]["link"] == "vioif1"
    assert ctx.facts["dhcp_leases"]["vioif0"]["address"] == "10.0.2.15/24"


def test_ensure_dhcp_timeout_is_a_service_error(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    guest.set_state(dhcp={"mode": "never", "delay_s": 0.0, "leases": {}})
    ctx = context(guest, Metadata(source="test"), parse("[timeouts]\ndhcp = 1\n"))
    started = time.monotonic()
    with pytest.raises(ServiceError, match="no lease within 1 s"):
        ensure_dhcp(ctx, "vioif0")
    assert time.monotonic() - started < 10
    assert "dhcp" not in ctx.facts


def test_steps_declare_every_auditor_field():
    names = [step.name for step in network.STEPS]
    assert names == ["interfaces", "addresses", "routes", "dns"]
    for step in network.STEPS:
        assert step.phase == "NETWORK" and step.frequency.value == "per-boot"
        assert len(step.changes) > 40 and step.fails_when and step.on_failure
