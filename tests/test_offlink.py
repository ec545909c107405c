"""Issue 10's agent fixes on whole simulated guests: off-link gateways (a static one outside
the address's prefix, a /32 DHCP lease's router), a DHCP lease that counts only once its
address is `ok`, and the first DHCP request asking for the metadata's host name."""

from __future__ import annotations

import time

import pytest
from guest import make_guest

from fsm.checkpoint import Checkpoint
from fsm.errors import ServiceError
from fsm.settings import Settings, parse
from fsm.steps import Context
from fsm.system import System
from operations import network
from operations.dhcp import ensure_dhcp
from providers.model import Metadata, Nic
from sim import state as sim_state
from sim.serve import serving

NOCLOUD_MAC = "52:54:00:ab:cd:ef"
OFFLINK_LEASE = {"address": "172.30.0.5/32", "router": "172.30.0.1", "dns": ["172.30.0.53"],
                 "hostname": None, "domain": None}


def boot(g):
    with serving(g.root):
        result = g.run()
    assert result.returncode == 0, result.stdout[-3000:]
    return result


def route_calls(g) -> int:
    return g.calls().get("route", 0)


def test_a_static_gateway_outside_the_address_prefix_gets_an_interface_route_first(tmp_path):
    network_config = {"version": 2, "ethernets": {"net0": {
        "match": {"macaddress": NOCLOUD_MAC}, "addresses": ["192.0.2.10/24"],
        "gateway4": "198.51.100.1", "nameservers": {"addresses": ["192.0.2.53"]}}}}
    g = make_guest(tmp_path, "nocloud", {"network-config": network_config})
    boot(g)
    routes = g.show()["routes"]
    assert {"destination": "198.51.100.1/32", "gateway": "192.0.2.10", "iface": True} in routes
    assert {"destination": "default", "gateway": "198.51.100.1"} in routes
    assert g.read("/etc/inet/static_routes").splitlines()[1:] == [
        "-iface 198.51.100.1/32 192.0.2.10", "default 198.51.100.1"]
    assert g.show()["defaultrouter"] == ["198.51.100.1"]
    before, calls = g.show()["routes"], route_calls(g)
    boot(g)                                          # the next boot changes nothing
    assert g.show()["routes"] == before
    assert route_calls(g) == calls + 1               # only `route -p show`
    assert not g.checkpoint().warnings


def test_a_32_dhcp_lease_with_an_off_link_router_ends_with_a_default_route(tmp_path):
    g = make_guest(tmp_path, "nocloud", {"network-config": None})
    g.set_state(dhcp={"mode": "answer", "delay_s": 0.0, "leases": {"vioif0": OFFLINK_LEASE}})
    boot(g)
    routes = g.show()["routes"]
    assert len(routes) == 2
    assert {"destination": "default", "gateway": "172.30.0.1"} in routes
    assert {"destination": "172.30.0.1/32", "gateway": "172.30.0.5", "iface": True} in routes
    assert not _static_routes(g)                     # the lease's router is not persisted
    boot(g)                                          # second boot: idempotent
    assert g.show()["routes"] == routes


def _static_routes(g) -> list[str]:
    try:
        return g.read("/etc/inet/static_routes").splitlines()
    except FileNotFoundError:
        return []


def test_a_tentative_dhcp_address_from_an_earlier_boot_is_awaited_until_ok(tmp_path):
    g = make_guest(tmp_path, "nocloud", {"network-config": None})
    # An earlier boot's persistent DHCP object came back; DAD is still running on it.
    with sim_state.locked(g.root) as st:
        st["interfaces"].append("vioif0")
        st["addresses"].append({"addrobj": "vioif0/dhcp", "type": "dhcp", "state": "down",
                                "addr": "?"})
        st["dhcp"].update(mode="answer", delay_s=0.0, dad_s=2.0,
                          requested={"vioif0": time.time()})
    boot(g)
    assert [(a["addrobj"], a["state"]) for a in g.show()["addresses"]] == [("vioif0/dhcp", "ok")]
    assert {"destination": "default", "gateway": "10.0.2.2"} in g.show()["routes"]


def test_a_duplicate_dhcp_address_is_no_lease_and_the_error_says_so(tmp_path):
    g = make_guest(tmp_path, "qemu")
    lease = dict(OFFLINK_LEASE, address="192.0.2.50/24", router="192.0.2.1", duplicate=True)
    g.set_state(dhcp={"mode": "answer", "delay_s": 0.0, "leases": {"vioif0": lease}})
    ctx = Context(system=System(g.root), settings=parse("[timeouts]\ndhcp = 1\n"),
                  checkpoint=Checkpoint(), metadata=Metadata(source="test"))
    with pytest.raises(ServiceError, match="already uses \\(duplicate\\)"):
        ensure_dhcp(ctx, "vioif0")
    assert "dhcp" not in ctx.facts


def test_the_first_dhcp_request_asks_for_the_metadata_hostname(tmp_path):
    g = make_guest(tmp_path, "nocloud", {"network-config": None})
    g.set_state(hostname="old-image-name")
    boot(g)
    assert g.state()["dhcp"]["reqhost"] == {"vioif0": "nocloud-guest"}
    assert g.show()["hostname"]["nodename"] == "nocloud-guest"


def test_a_hostname_ipadm_would_refuse_is_not_sent_and_dhcp_still_runs(tmp_path):
    g = make_guest(tmp_path, "qemu")
    md = Metadata(source="test", hostname="bad_name", nics=(Nic(mac=None, dhcp4=True, primary=True),))
    ctx = Context(system=System(g.root), settings=Settings(), checkpoint=Checkpoint(), metadata=md)
    outcome = network.configure_addresses(ctx)
    assert any("'bad_name'" in w for w in outcome.warnings)
    assert g.state()["dhcp"]["reqhost"] == {"vioif0": None}
    assert [a["state"] for a in g.show()["addresses"]] == ["ok"]


def test_an_oxide_guest_boots_to_done_with_a_default_route_through_its_off_link_router(tmp_path):
    g = make_guest(tmp_path, "oxide")
    result = boot(g)
    assert "metadata from nocloud" in result.stdout
    assert g.checkpoint().phase == "DONE"
    shown = g.show()
    assert shown["addresses"] == [{"addrobj": "vioif0/dhcp", "type": "dhcp", "state": "ok",
                                   "addr": "172.30.0.5/32"}]
    assert {"destination": "172.30.0.1/32", "gateway": "172.30.0.5", "iface": True} in shown["routes"]
    assert {"destination": "default", "gateway": "172.30.0.1"} in shown["routes"]
    assert shown["ssh"]["authorized_keys"] == [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHxoBpTPJLsEaynVCc+AyTmbrXmb7fyNPjXA5adH7Kj6 admin@oxide"]
    assert shown["hostname"]["nodename"] == "oxide-guest"
    assert g.state()["dhcp"]["reqhost"] == {"vioif0": "oxide-guest"}
    assert g.checkpoint().instance_id == "0d5c3f4e-7b1a-4c2d-9e8f-a1b2c3d4e5f6"
    boot(g)                                          # the next boot: same routes, no error
    assert g.show()["routes"] == shown["routes"]


def test_an_oxide_guest_refuses_user_data_over_32_kib(tmp_path):
    with pytest.raises(ValueError, match="at most 32768"):
        make_guest(tmp_path, "oxide", {"user-data": "#!/bin/sh\n" + "#" * 32768})
