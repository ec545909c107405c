"""EC2: the provider against the IMDS emulator (real HTTP on loopback), the emulator against
an unmodified third-party client, and whole boots of a simulated EC2 guest."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest
import requests
from guest import PROJECT_DIR, make_guest

from fsm import settings as agent_settings
from fsm.errors import MetadataError, ServiceError
from fsm.steps import Context
from fsm.system import System
from providers.base import choose_primary_link
from providers.ec2 import PRIMARY_LINK_PREFIXES, EC2Provider, Imds, is_ec2, read_imds
from providers.http import HttpClient
from providers.model import Nic
from providers.smbios import SmbiosInfo
from sim.emulators import ec2 as emulator

MAC = "02:1a:2b:3c:4d:5e"
NIC = f"meta-data/network/interfaces/macs/{MAC}/"
SECOND_MAC = "02:1a:2b:3c:4d:5f"
SECOND = f"meta-data/network/interfaces/macs/{SECOND_MAC}/"
KEYS = emulator.default_metadata()["meta-data/public-keys"]
TOKEN = {"X-aws-ec2-metadata-token-ttl-seconds": "60"}


@contextmanager
def imds(overrides: dict | None = None, **options):
    metadata = {**emulator.default_metadata(), **(overrides or {})}
    if options:
        metadata["_emulator"] = options
    service = emulator.serve("/nonexistent", metadata)
    try:
        yield service
    finally:
        service.close()


def read(service, timeout_s: float = 1.0, budget_s: float = 5.0, **kwargs):
    with HttpClient("ec2", timeout_s, budget_s) as client:
        return read_imds(Imds(client, service.server.url), **kwargs)


def token_for(service) -> dict[str, str]:
    reply = requests.put(service.server.url + "/latest/api/token", headers=TOKEN, timeout=2)
    assert reply.status_code == 200
    return {"X-aws-ec2-metadata-token": reply.text}


# ---- DETECT -----------------------------------------------------------------------------

@pytest.mark.parametrize("info, expected", [
    (SmbiosInfo(manufacturer="Amazon EC2", product="t3.micro"), True),
    (SmbiosInfo(manufacturer="Xen", product="HVM domU", version="4.11.amazon"), True),
    (SmbiosInfo(manufacturer="Xen", product="HVM domU", version="4.2.5"), False),
    (SmbiosInfo(manufacturer="QEMU", product="Standard PC"), False),
    (None, False),
])
def test_detect_is_smbios_only(info, expected):
    assert is_ec2(info) is expected


def test_primary_link_prefers_ena_then_xnf_then_the_first():
    assert choose_primary_link(["vioif0", "xnf0", "ena1"], PRIMARY_LINK_PREFIXES) == "ena1"
    assert choose_primary_link(["vioif0", "xnf0"], PRIMARY_LINK_PREFIXES) == "xnf0"
    assert choose_primary_link(["vioif0", "e1000g0"], PRIMARY_LINK_PREFIXES) == "vioif0"
    assert choose_primary_link(["enabled0"], PRIMARY_LINK_PREFIXES) == "enabled0"
    assert choose_primary_link([], PRIMARY_LINK_PREFIXES) is None


# ---- FETCH against the emulator ---------------------------------------------------------

def test_default_metadata_all_keys_and_the_primary_nic():
    with imds() as service:
        md = read(service)
        calls = list(service.server.log)
    assert md.source == "ec2" and md.instance_id == "i-0a1b2c3d4e5f60718"
    assert md.hostname == "ip-10-0-1-23.ec2.internal"
    assert md.ssh_keys == tuple(KEYS.values())
    assert md.nics == (Nic(mac=MAC, dhcp4=True, primary=True, name="device-0"),)
    assert md.user_script == emulator.default_metadata()["user-data"].encode()
    assert calls[0] == ("PUT", "/latest/api/token", 200)
    assert all(status in (200, 404) for _, _, status in calls)  # every GET had the token
    assert md.origin("hostname") == "ec2:meta-data/local-hostname"


def test_every_public_key_is_read_not_only_the_first():
    keys = {"a": "ssh-ed25519 AAAA1 a", "b": "ssh-rsa AAAA2 b", "c": "ssh-ed25519 AAAA3 c"}
    with imds({"meta-data/public-keys": keys}) as s:
        assert read(s).ssh_keys == ("ssh-ed25519 AAAA1 a", "ssh-rsa AAAA2 b", "ssh-ed25519 AAAA3 c")
    with imds({"meta-data/public-keys": {}}) as s:
        assert read(s).ssh_keys == ()
    with imds({"meta-data/public-keys": None}) as s:
        assert read(s).ssh_keys == ()


def test_a_key_listed_without_its_openssh_key_is_skipped(caplog):
    service = emulator.Ec2Service({**emulator.default_metadata()})
    try:
        del service.tree["meta-data"]["public-keys"]["1"]["openssh-key"]
        with caplog.at_level(logging.WARNING):
            md = read(service)
    finally:
        service.close()
    assert md.ssh_keys == (KEYS["admin"],)
    assert md.warnings == ("ec2: meta-data/public-keys/1/openssh-key: 'deploy': absent; "
                           "skipped; the rest is applied",)
    assert md.warnings[0] in caplog.text


def test_dhcp_hostname_is_preferred_then_local_hostname_then_hostname():
    with imds() as service:
        md = read(service, dhcp_hostname="from-dhcp")
        assert md.hostname == "from-dhcp" and "DHCP" in md.origin("hostname")
    with imds({"meta-data/local-hostname": None}) as service:
        md = read(service)
        assert md.origin("hostname") == "ec2:meta-data/hostname"
    with imds({"meta-data/local-hostname": None, "meta-data/hostname": None}) as service:
        assert read(service).hostname is None


def test_secondary_nics_are_static_from_local_ipv4s_and_the_subnet_prefix():
    extra = {SECOND + "device-number": "1", SECOND + "local-ipv4s": ["10.0.2.7", "10.0.2.8"],
             SECOND + "subnet-ipv4-cidr-block": "10.0.2.0/20",
             SECOND + "ipv6s": ["2600:1f18::7"], NIC + "ipv6s": ["2600:1f18::5"]}
    with imds(extra) as service:
        md = read(service, primary_mac=MAC)
    primary, second = md.nics
    assert primary == Nic(mac=MAC, dhcp4=True, addrconf=True, primary=True, name="device-0")
    assert second == Nic(mac=SECOND_MAC, addresses=("10.0.2.7/20", "10.0.2.8/20"),
                         addrconf=True, name="device-1")


def test_without_per_mac_data_the_primary_link_gets_dhcp():
    gone = {k: None for k in emulator.default_metadata() if k.startswith(NIC)}
    with imds(gone) as service:
        md = read(service, primary_mac=MAC)
    assert md.nics == (Nic(mac=MAC, dhcp4=True, primary=True, name="primary"),)


@pytest.mark.parametrize("overrides, field", [
    ({"meta-data/instance-id": None}, "meta-data/instance-id"),
    ({"meta-data/instance-id": "i-1 i-2"}, "meta-data/instance-id"),
])
def test_malformed_metadata_names_the_field(overrides, field):
    with imds(overrides) as service, pytest.raises(MetadataError) as err:
        read(service)
    assert err.value.source == "ec2" and err.value.field == field


@pytest.mark.parametrize("overrides, warning", [
    ({NIC + "device-number": "zero"}, f"ec2: {NIC}device-number: expected a non-negative "
                                      "integer, got 'zero'"),
    ({SECOND + "device-number": "1", SECOND + "local-ipv4s": "10.0.2.7",
      SECOND + "subnet-ipv4-cidr-block": "10.0.2.0/99"},
     f"ec2: {SECOND}subnet-ipv4-cidr-block: '10.0.2.0/99': expected an IPv4 CIDR block; "
     "the addresses get /32"),
    ({SECOND + "device-number": "1", SECOND + "local-ipv4s": ["10.0.2.777", "10.0.2.8"],
      SECOND + "subnet-ipv4-cidr-block": "10.0.2.0/24"},
     f"ec2: {SECOND}local-ipv4s: '10.0.2.777': not an IPv4 address"),
])
def test_a_malformed_item_is_a_warning_naming_its_path(overrides, warning):
    with imds(overrides) as service:
        md = read(service)
    assert md.ssh_keys == tuple(KEYS.values())          # the rest is applied
    assert any(w.startswith(warning) for w in md.warnings), md.warnings


def test_a_malformed_public_keys_listing_line_is_skipped():
    service = emulator.Ec2Service(emulator.default_metadata())
    try:
        service.tree["meta-data"]["public-keys"] = {"garbage": "x"}
        md = read(service)
    finally:
        service.close()
    assert md.ssh_keys == () and md.warnings == (
        "ec2: meta-data/public-keys/: 'garbage': expected `N=name` lines; skipped; the rest "
        "is applied",)


def test_secondary_private_ipv4_and_ipv6_addresses_of_an_eni_are_configured():
    """AWS IMDS lists every private address of an ENI in `local-ipv4s` and `ipv6s`; the
    first comes from DHCP/addrconf, the others are static with the subnet's prefix
    (cloud-init's get_secondary_addresses). Was: dropped."""
    extra = {NIC + "local-ipv4s": ["10.0.1.23", "10.0.1.24", "10.0.1.25"],
             NIC + "ipv6s": ["2600:1f18:abc:de00::5", "2600:1f18:abc:de00::6"],
             NIC + "subnet-ipv6-cidr-blocks": "2600:1f18:abc:de00::/64",
             SECOND + "device-number": "1", SECOND + "local-ipv4s": ["10.0.2.7", "10.0.2.8"],
             SECOND + "subnet-ipv4-cidr-block": "10.0.2.0/24",
             SECOND + "ipv6s": ["2600:1f18:abc:de01::7", "2600:1f18:abc:de01::8"],
             SECOND + "subnet-ipv6-cidr-blocks": "2600:1f18:abc:de01::/64"}
    with imds(extra) as service:
        md = read(service, primary_mac=MAC)
    primary, second = md.nics
    assert primary == Nic(mac=MAC, addresses=("10.0.1.24/24", "10.0.1.25/24",
                                              "2600:1f18:abc:de00::6/64"),
                          dhcp4=True, addrconf=True, primary=True, name="device-0")
    assert second.addresses == ("10.0.2.7/24", "10.0.2.8/24", "2600:1f18:abc:de01::8/64")
    assert not md.warnings


def test_user_data_that_is_not_a_script_is_ignored_without_logging_it(caplog):
    with imds({"user-data": "#cloud-config\npassword: hunter2\n"}) as service:
        with caplog.at_level(logging.DEBUG):
            md = read(service)
    assert md.user_script is None
    assert "is not a script" in caplog.text and "hunter2" not in caplog.text
    with imds({"user-data": None}) as service:
        assert read(service).user_script is None


# ---- tokens and the IMDS modes ----------------------------------------------------------

def test_imds_disabled_fails_fast_with_a_clear_error():
    started = time.monotonic()
    with imds(imds="disabled") as service, pytest.raises(ServiceError) as err:
        read(service, budget_s=5)
    assert time.monotonic() - started < 4.5   # not retried until the 5 s budget ends
    assert "HTTP 403" in str(err.value) and "disabled" in str(err.value)
    assert service.server.log == [("PUT", "/latest/api/token", 403)]


def test_v1_only_service_is_read_without_a_token():
    with imds(imds="v1-only") as service:
        md = read(service)
        assert service.server.log[0] == ("PUT", "/latest/api/token", 404)
    assert md.instance_id == "i-0a1b2c3d4e5f60718" and len(md.ssh_keys) == 2


def test_an_expired_token_is_renewed():
    with imds(token_uses=3) as service:
        md = read(service)
        assert service.tokens_issued >= 3
        assert sum(1 for *_, status in service.server.log if status == 401) >= 2
    assert md.ssh_keys == tuple(KEYS.values())


def test_a_token_that_cannot_be_sent_back_is_a_service_error():
    service = emulator.Ec2Service(emulator.default_metadata())
    try:
        service.server.answer = lambda request: emulator.Answer(200, b"\xff\xfe bad")
        with pytest.raises(ServiceError, match="not a printable ASCII string"):
            read(service)
    finally:
        service.close()


def test_optional_tokens_allow_v1_gets_but_refuse_a_forged_token():
    with imds(imds="optional") as service:
        url = service.server.url + "/latest/meta-data/instance-id"
        assert requests.get(url, timeout=2).text == "i-0a1b2c3d4e5f60718"
        forged = {"X-aws-ec2-metadata-token": "forged"}
        assert requests.get(url, headers=forged, timeout=2).status_code == 401
        assert read(service).instance_id == "i-0a1b2c3d4e5f60718"


def test_a_token_refused_even_when_fresh_is_a_service_error():
    with imds(token_uses=0) as service, pytest.raises(ServiceError, match="even with a fresh token"):
        read(service)


# ---- transient faults: bounded retries --------------------------------------------------

@pytest.mark.parametrize("faults", [
    {"status": 503, "times": 3},
    {"status": 429, "retry_after": 0, "times": 2},
    {"status": 500, "flap": True},
    {"reset": True, "times": 2},
    {"delay_s": 3, "times": 1},
])
def test_transient_faults_are_retried(faults):
    with imds(**faults) as service:
        md = read(service, budget_s=3)
    assert md.instance_id == "i-0a1b2c3d4e5f60718" and len(md.ssh_keys) == 2


@pytest.mark.parametrize("faults, message", [
    ({"status": 500}, "HTTP 500"),
    ({"status": 429, "retry_after": 60}, "retry after 60 s"),
    ({"delay_s": 5}, "no answer within"),
    ({"reset": True, "paths": ["/latest/meta-data/instance-id"]}, "connection failed"),
])
def test_a_service_that_stays_broken_is_a_bounded_service_error(faults, message):
    started = time.monotonic()
    with imds(**faults) as service, pytest.raises(ServiceError, match=message) as err:
        read(service, budget_s=3)
    assert time.monotonic() - started < 30   # bounded; the slack is for a loaded CI box
    assert str(err.value).startswith("ec2: ")


def test_an_answer_that_is_not_text_is_a_metadata_error():
    service = emulator.Ec2Service(emulator.default_metadata())
    try:
        real = service.server.answer
        service.server.answer = lambda request: (
            emulator.Answer(200, b"i-\xff\xfe") if request.path.endswith("instance-id")
            else real(request))
        with pytest.raises(MetadataError, match="is not UTF-8"):
            read(service)
    finally:
        service.close()


# ---- the emulator is faithful -----------------------------------------------------------

def test_emulator_enforces_tokens_and_serves_versions_slashes_and_listings():
    with imds() as service:
        url = service.server.url
        assert requests.get(url + "/latest/meta-data/instance-id", timeout=2).status_code == 401
        assert requests.put(url + "/latest/api/token", timeout=2).status_code == 400
        assert requests.get(url + "/latest/api/token", timeout=2).status_code == 405
        headers = token_for(service)
        bad = {"X-aws-ec2-metadata-token": "forged"}
        assert requests.get(url + "/latest/meta-data/", headers=bad, timeout=2).status_code == 401

        def get(path: str) -> str:
            reply = requests.get(url + path, headers=headers, timeout=2)
            assert reply.status_code == 200, path
            return reply.text

        assert get("/latest/meta-data/instance-id") == "i-0a1b2c3d4e5f60718"
        assert get("/2021-03-23/meta-data/instance-id") == "i-0a1b2c3d4e5f60718"
        assert get("//latest//meta-data//instance-id/") == "i-0a1b2c3d4e5f60718"
        assert "latest" in get("/").splitlines() and "2021-03-23" in get("/").splitlines()
        assert get("/latest/") == "dynamic\nmeta-data\nuser-data"
        listing = get("/latest/meta-data/").splitlines()
        assert "instance-id" in listing and "public-keys/" in listing and "network/" in listing
        assert get("/latest/meta-data/public-keys/") == "0=admin\n1=deploy"
        assert get("/latest/meta-data/public-keys/0/") == "openssh-key"
        assert get("/latest/meta-data/network/interfaces/macs/") == MAC + "/"
        assert json.loads(get("/latest/dynamic/instance-identity/document"))["region"]
        missing = requests.get(url + "/latest/meta-data/nope", headers=headers, timeout=2)
        assert missing.status_code == 404
        assert requests.get(url + "/1999-01-01/meta-data/", headers=headers,
                            timeout=2).status_code == 404


def test_emulator_works_with_the_ec2_metadata_client():
    ec2_metadata = pytest.importorskip("ec2_metadata")
    with imds() as service:
        client = ec2_metadata.EC2Metadata()
        client.service_url = service.server.url + "/latest/"
        client.dynamic_url = client.service_url + "dynamic/"
        client.metadata_url = client.service_url + "meta-data/"
        client.userdata_url = client.service_url + "user-data/"
        assert client.instance_id == "i-0a1b2c3d4e5f60718"
        assert client.region == "us-east-1"
        assert client.private_hostname == "ip-10-0-1-23.ec2.internal"
        assert {name: key.openssh_key for name, key in client.public_keys.items()} == KEYS
        nic = client.network_interfaces[MAC]
        assert nic.device_number == 0 and nic.private_ipv4s == ["10.0.1.23"]
        assert nic.subnet_ipv4_cidr_block == "10.0.1.0/24" and nic.ipv6s == []
        assert client.user_data.startswith(b"#!/bin/sh")
        assert client.public_ipv4 == "203.0.113.25"
        assert service.tokens_issued == 1


def test_plan_reads_the_service_without_starting_dhcp(tmp_path):
    guest = make_guest(tmp_path, "ec2")
    with imds() as service:
        settings = agent_settings.parse(f'[ec2]\nendpoint = "{service.server.url}"\n'
                                        '[timeouts]\nhttp = 1\nfetch = 5\n')
        ctx = Context(system=System(guest.root, dry_run=True), settings=settings,
                      checkpoint=None)
        md = EC2Provider().fetch(ctx)
    assert md.instance_id == "i-0a1b2c3d4e5f60718" and md.nics[0].mac == MAC
    assert "ipadm create-addr" not in guest.calls()
    assert guest.show()["addresses"] == []


# ---- whole boots ------------------------------------------------------------------------

def sim(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": PROJECT_DIR}
    return subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True,
                          cwd=PROJECT_DIR, env=env, timeout=timeout)


def test_boot_reaches_done_with_the_metadata_logged(tmp_path):
    root = str(tmp_path / "guest")
    assert sim("create", root, "--platform", "ec2").returncode == 0
    booted = sim("boot", root)
    assert booted.returncode == 0, booted.stdout + booted.stderr
    assert "metadata source: ec2" in booted.stdout
    assert ("metadata from ec2: instance i-0a1b2c3d4e5f60718, hostname given, 1 NIC(s), "
            "2 key(s), a user script") in booted.stdout
    assert "-> DONE" in booted.stdout
    shown = json.loads(booted.stdout[booted.stdout.index("\n{") + 1:])
    assert "ena0" in shown["interfaces"]
    assert any(a["addrobj"] == "ena0/dhcp" and a["type"] == "dhcp" for a in shown["addresses"])
    assert shown["hostname"]["nodename"] == "ip-10-0-1-23"
    assert shown["ssh"]["authorized_keys"] == list(KEYS.values())
    script = emulator.default_metadata()["user-data"].encode()
    assert shown["userscript"]["file"]["sha256"] == hashlib.sha256(script).hexdigest()
    assert shown["dns"]["nameservers"]  # from the DHCP lease FETCH brought up


def test_boot_with_imds_disabled_stops_in_fetch_with_a_clear_error(tmp_path):
    root = str(tmp_path / "guest")
    override = tmp_path / "md.json"
    override.write_text(json.dumps({"_emulator": {"imds": "disabled"}}))
    assert sim("create", root, "--platform", "ec2", "--metadata", str(override)).returncode == 0
    booted = sim("boot", root)
    assert booted.returncode == 95
    assert "metadata service is disabled for this instance" in booted.stdout
    assert "Traceback" not in booted.stdout + booted.stderr


IPV6_ONLY = {
    NIC + "local-ipv4s": None, "meta-data/local-ipv4": None,
    NIC + "subnet-ipv4-cidr-block": None,
    NIC + "ipv6s": ["2600:1f18:abc:de00:1a:2bff:fe3c:4d5e", "2600:1f18:abc:de00::99"],
    NIC + "subnet-ipv6-cidr-blocks": "2600:1f18:abc:de00::/64",
    "meta-data/local-hostname": "i-0a1b2c3d4e5f60718.ec2.internal",
    "meta-data/hostname": "i-0a1b2c3d4e5f60718.ec2.internal",
}


def test_an_ipv6_only_instance_reaches_done_through_imds_over_ipv6(tmp_path):
    """IPv6-only subnet: no DHCPv4 server, SLAAC gives the address, IMDS answers on
    [fd00:ec2::254] (here the emulator on [::1], `ec2.endpoint_ipv6`). Was: FETCH waited for
    a DHCPv4 lease that never comes and failed."""
    guest = make_guest(tmp_path, "ec2", IPV6_ONLY)
    guest.set_state(dhcp={"mode": "never", "delay_s": 0.0, "leases": {}},
                    ipv6_ra={"ena0": "2600:1f18:abc:de00::/64"})
    guest.write("/etc/metadata-agent.toml", "[timeouts]\ndhcp = 2\n")
    from sim.serve import serving

    started = time.monotonic()
    with serving(guest.root) as service:
        result = guest.run()
        v4_requests, v6_requests = len(service.server.log), len(service.server6.log)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert time.monotonic() - started < 60          # bounded: 2 s of DHCP, then IPv6
    assert "trying the metadata service over IPv6 at http://[::1]:" in out
    assert v4_requests == 0 and v6_requests > 0
    shown = guest.show()
    addrs = [(a["addrobj"], a["type"], a["addr"]) for a in shown["addresses"]]
    assert ("ena0/v6", "addrconf", "2600:1f18:abc:de00:1a:2bff:fe3c:4d5e/64") in addrs
    assert ("ena0/v6s", "static", "2600:1f18:abc:de00::99/64") in addrs
    assert not any(a[1] == "dhcp" for a in addrs)   # the unanswered DHCPv4 object is gone
    assert shown["ssh"]["authorized_keys"] == list(KEYS.values())
    assert shown["hostname"]["nodename"] == "i-0a1b2c3d4e5f60718"
    assert guest.checkpoint().phase == "DONE"
