"""DigitalOcean: parsing every documented variant, the config drive and the HTTP service
against their emulators (a real ISO on the guest's disk, real HTTP on loopback), and whole
boots of a simulated droplet."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from guest import PROJECT_DIR, make_guest

from fsm import settings as agent_settings
from fsm.errors import MetadataError, ServiceError
from fsm.steps import Context
from fsm.system import System
from providers import smbios
from providers.digitalocean import (
    DigitalOceanProvider,
    decode_document,
    is_digitalocean,
    netmask_prefix,
    parse,
    read_service,
)
from providers.model import Nic
from providers.smbios import SmbiosInfo
from sim.emulators import digitalocean as emulator
from sim.emulators.nocloud import attach_volume, iso_image

DOC = emulator.default_metadata()
AUTH_KEY = DOC["auth_key"]
KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFlrnxu+BGmtRActXBVHrt4sOv3OK6BpGXMuTwwPL1yl a@do"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILLM+foIEpqiKKlhgYtN/WG2u4Tj8/BYmAxKLNdGnTc8 b@do"


def doc(**changes: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(DOC))
    out.update(changes)
    return out


def public(**changes: Any) -> dict[str, Any]:
    iface = json.loads(json.dumps(DOC["interfaces"]["public"][0]))
    iface.update(changes)
    return iface


def with_public(iface: dict[str, Any]) -> dict[str, Any]:
    return doc(interfaces={"public": [iface], "private": DOC["interfaces"]["private"]})


def settings(endpoint: str = "http://127.0.0.1:9", budget_s: float = 5.0):
    # 1 s a request: small enough to keep fault tests quick, large enough that a loaded CI
    # box never turns a good answer into a timeout.
    return agent_settings.parse(f'[digitalocean]\nendpoint = "{endpoint}"\n'
                                f'[timeouts]\nhttp = 1\nfetch = {budget_s}\n')


def context(root: str, endpoint: str = "http://127.0.0.1:9", budget_s: float = 5.0) -> Context:
    ctx = Context(system=System(root), settings=settings(endpoint, budget_s), checkpoint=None)
    ctx.smbios = smbios.read(ctx.system)
    return ctx


@contextmanager
def service(metadata: dict[str, Any] | None = None, **faults: Any):
    metadata = dict(metadata or DOC)
    if faults:
        metadata["_emulator"] = faults
    server = emulator.serve("/nonexistent", metadata)
    try:
        yield server
    finally:
        server.close()


# ---- DETECT -----------------------------------------------------------------------------

@pytest.mark.parametrize("info, expected", [
    (SmbiosInfo(manufacturer="DigitalOcean", product="Droplet"), True),
    (SmbiosInfo(manufacturer="QEMU", product="Droplet"), True),
    (SmbiosInfo(manufacturer="DigitalOcean", product="Something"), True),
    (SmbiosInfo(manufacturer="QEMU", product="Standard PC"), False),
    (None, False),
])
def test_detect_is_smbios_only(info, expected):
    assert is_digitalocean(info) is expected


# ---- parsing ----------------------------------------------------------------------------

def warned_fields(md) -> list[str]:
    """The fields the warnings name (`digitalocean: FIELD: ...; skipped; ...`): each a
    skipped item, the rest of the document applied."""
    assert all(w.startswith("digitalocean: ") and "skipped; the rest is applied" in w
               for w in md.warnings), md.warnings
    return [w.split(": ")[1] for w in md.warnings]


def test_default_document():
    md = parse(doc())
    assert md.instance_id == "412345678" and md.hostname == "droplet-sim-01"
    assert md.nics == (
        Nic(mac="da:01:02:03:04:05", addresses=("203.0.113.45/20", "10.19.0.5/16",
                                                "2001:db8:100::45/64"),
            gateways=("203.0.112.1", "2001:db8:100::1"), primary=True, name="public0"),
        Nic(mac="da:01:02:03:04:06", addresses=("10.110.0.2/20",), name="private0"),
    )
    assert md.resolvers == ("67.207.67.2", "67.207.67.3", "2001:4860:4860::8888")
    assert md.ssh_keys == tuple(DOC["public_keys"])
    assert md.user_script == DOC["user_data"].encode()
    assert md.origin("resolvers") == "digitalocean:dns.nameservers"


@pytest.mark.parametrize("value, expected", [
    (412345678, "412345678"), ("412345678", "412345678"), (" 77 ", "77"), (5.0, "5"),
])
def test_droplet_id_as_number_or_string(value, expected):
    assert parse(doc(droplet_id=value)).instance_id == expected


@pytest.mark.parametrize("value", [None, True, "", "a b", 1.5, [1], -3])
def test_bad_droplet_id_names_the_field(value):
    md = parse(doc(droplet_id=value))
    assert md.instance_id is None and md.ssh_keys      # SMBIOS gives the id; keys stay
    assert warned_fields(md) == ["droplet_id"]


@pytest.mark.parametrize("value, expected", [
    ([KEY_A, KEY_B], (KEY_A, KEY_B)),
    ("", ()),
    ([], ()),
    (None, ()),
    (f"{KEY_A}\n{KEY_B}\n", (KEY_A, KEY_B)),
    ([f"{KEY_A}\n\n{KEY_B}"], (KEY_A, KEY_B)),
])
def test_public_keys_as_list_or_string(value, expected):
    assert parse(doc(public_keys=value)).ssh_keys == expected


@pytest.mark.parametrize("value, field", [({"k": KEY_A}, "public_keys"), ([KEY_A, 7], "public_keys[1]")])
def test_bad_public_keys_name_the_field(value, field):
    md = parse(doc(public_keys=value))
    assert warned_fields(md) == [field]
    assert md.ssh_keys == (() if field == "public_keys" else (KEY_A,))


def test_features_values_of_any_json_type_are_accepted():
    features = {"dhcp_enabled": True, "n": 3, "s": "x", "l": [1, {"a": None}], "o": {}, "z": None}
    assert parse(doc(features=features)).instance_id == "412345678"
    md = parse(doc(features=["dhcp_enabled"]))
    assert md.warnings[0].startswith("digitalocean: features: expected an object, got an array")


@pytest.mark.parametrize("key", ["floating_ip", "reserved_ip"])
@pytest.mark.parametrize("value", [
    {"ipv4": {"active": False}},
    {"ipv4": {"active": True, "ip_address": "198.51.100.7"}},
    {"active": False},
    {"active": True, "ip_address": "198.51.100.7"},
])
def test_reserved_and_floating_ip_in_either_shape(key, value):
    assert parse(doc(**{key: value})).instance_id == "412345678"


@pytest.mark.parametrize("value, field", [
    ({"ipv4": {"active": True}}, "reserved_ip.ipv4.ip_address"),
    ({"ipv4": {"active": "yes"}}, "reserved_ip.ipv4.active"),
    ({"ipv4": "198.51.100.7"}, "reserved_ip.ipv4"),
    ("198.51.100.7", "reserved_ip"),
])
def test_malformed_reserved_ip_names_the_field(value, field):
    assert warned_fields(parse(doc(reserved_ip=value))) == [field]


@pytest.mark.parametrize("mask, prefix", [
    ("255.255.255.0", 24), ("255.255.240.0", 20), ("255.255.255.255", 32), ("0.0.0.0", 0),
])
def test_netmask_to_prefix(mask, prefix):
    assert netmask_prefix(mask, "f") == prefix


@pytest.mark.parametrize("mask", ["255.0.255.0", "255.255.255.1", "255.255.256.0", "24", 24])
def test_non_contiguous_or_bad_netmask_is_rejected_naming_the_field(mask):
    iface = public(ipv4={"ip_address": "203.0.113.45", "netmask": mask, "gateway": "203.0.112.1"})
    md = parse(with_public(iface))
    assert warned_fields(md) == ["interfaces.public[0].ipv4.netmask"]
    # Only that address is skipped: the anchor and IPv6 addresses stay.
    assert md.nics[0].addresses == ("10.19.0.5/16", "2001:db8:100::45/64")


def test_ipv6_cidr_as_number_or_string_and_gateways_on_the_public_interface_only():
    iface = public(ipv6={"ip_address": "2001:DB8:100:0:0:0:0:45", "cidr": "64",
                         "gateway": "2001:db8:100::1"}, anchor_ipv4=None)
    md = parse(with_public(iface))
    assert md.nics[0].addresses == ("203.0.113.45/20", "2001:db8:100::45/64")
    assert md.nics[0].gateways == ("203.0.112.1", "2001:db8:100::1")
    # The private interface's sample gateway is not a default route.
    assert DOC["interfaces"]["private"][0]["ipv4"]["gateway"] and md.nics[1].gateways == ()


def test_public_interface_without_gateway_or_ipv6():
    iface = public(ipv4={"ip_address": "203.0.113.45", "netmask": "255.255.255.0"}, ipv6=None,
                   anchor_ipv4=None)
    nic = parse(with_public(iface)).nics[0]
    assert nic.addresses == ("203.0.113.45/24",) and nic.gateways == () and nic.primary


@pytest.mark.parametrize("iface, field", [
    (public(mac="da:01:02:03:04"), "interfaces.public[0].mac"),
    (public(mac=None), "interfaces.public[0].mac"),
    (public(ipv4={"ip_address": "203.0.113.300", "netmask": "255.255.255.0"}),
     "interfaces.public[0].ipv4.ip_address"),
    (public(ipv4={"ip_address": "2001:db8::1", "netmask": "255.255.255.0"}),
     "interfaces.public[0].ipv4.ip_address"),
    (public(ipv6={"ip_address": "2001:db8::1", "cidr": 129}), "interfaces.public[0].ipv6.cidr"),
    (public(ipv6={"ip_address": "2001:db8::1", "cidr": 64, "gateway": "10.0.0.1"}),
     "interfaces.public[0].ipv6.gateway"),
    (public(anchor_ipv4="10.19.0.5"), "interfaces.public[0].anchor_ipv4"),
    ("eth0", "interfaces.public[0]"),
])
def test_malformed_interfaces_name_the_field(iface, field):
    md = parse(with_public(iface))
    assert warned_fields(md) == [field]
    assert any(nic.name == "private0" for nic in md.nics)     # the other interface stays


def test_nameservers_v4_and_v6_and_bad_ones():
    md = parse(doc(dns={"nameservers": ["2001:4860:4860::8844", "8.8.8.8"]}))
    assert md.resolvers == ("2001:4860:4860::8844", "8.8.8.8")
    assert parse(doc(dns=None)).resolvers == ()
    md = parse(doc(dns={"nameservers": ["8.8.8.8", "dns.example"]}))
    assert warned_fields(md) == ["dns.nameservers[1]"] and md.resolvers == ("8.8.8.8",)


def test_unknown_fields_are_ignored_and_missing_optional_ones_are_fine():
    md = parse({"droplet_id": 1, "something_new": {"x": [1]}})
    assert md.instance_id == "1" and md.nics == () and md.hostname is None


def test_user_data_that_is_not_a_script_is_never_logged(caplog):
    secret = "#cloud-config\npassword: hunter2\n"
    with caplog.at_level(logging.DEBUG):
        assert parse(doc(user_data=secret)).user_script is None
    assert "not a script" in caplog.text and "hunter2" not in caplog.text
    assert warned_fields(parse(doc(user_data=["#!/bin/sh"]))) == ["user_data"]


def test_malformed_json_is_a_metadata_error_without_the_secrets():
    raw = json.dumps(doc()).encode()[:-20]
    with pytest.raises(MetadataError) as err:
        decode_document(raw, "here")
    assert err.value.field == "here" and "not valid JSON" in str(err.value)
    assert AUTH_KEY not in str(err.value)
    with pytest.raises(MetadataError, match="must be a JSON object"):
        decode_document(b"[1, 2]", "here")
    with pytest.raises(MetadataError, match="not UTF-8"):
        decode_document(b'{"a": "\xff"}', "here")


# ---- the HTTP service -------------------------------------------------------------------

def test_service_document(tmp_path):
    with service() as server:
        raw, where = read_service(context(str(tmp_path), server.server.url))
    assert where == server.server.url + "/metadata/v1.json"
    assert parse(decode_document(raw, where)) == parse(doc())


@pytest.mark.parametrize("faults", [
    {"status": 503, "times": 2},
    {"status": 429, "retry_after": 0, "times": 2},
    {"reset": True, "times": 1},
    {"delay_s": 3, "times": 1},
])
def test_transient_service_faults_are_retried(tmp_path, faults):
    with service(**faults) as server:
        raw, _ = read_service(context(str(tmp_path), server.server.url, budget_s=3))
    assert json.loads(raw)["droplet_id"] == DOC["droplet_id"]
    assert server.server.received >= 2


@pytest.mark.parametrize("faults, message", [
    ({"status": 404}, "unexpected HTTP 404"),
    ({"status": 403}, "unexpected HTTP 403"),
    ({"status": 500}, "HTTP 500"),
    ({"status": 429, "retry_after": 60}, "retry after 60 s"),
    ({"delay_s": 5}, "no answer within"),
    ({"reset": True}, "connection failed"),
])
def test_broken_service_is_a_bounded_service_error(tmp_path, faults, message):
    started = time.monotonic()
    with service(**faults) as server, pytest.raises(ServiceError, match=message) as err:
        read_service(context(str(tmp_path), server.server.url, budget_s=3))
    assert time.monotonic() - started < 30   # bounded; the slack is for a loaded CI box
    assert str(err.value).startswith("digitalocean: GET http://127.0.0.1:")


def test_malformed_json_from_the_service_names_the_url(tmp_path):
    guest = make_guest(tmp_path, "digitalocean", {"_emulator": {"config_drive": False}})
    truncated = json.dumps(doc())[:-30]
    with service(body=truncated, paths=["/metadata/v1.json"]) as server:
        with pytest.raises(MetadataError) as err:
            DigitalOceanProvider().fetch(context(guest.root, server.server.url))
    assert err.value.field == server.server.url + "/metadata/v1.json"
    assert "not valid JSON" in str(err.value) and AUTH_KEY not in str(err.value)


def test_emulator_per_key_paths():
    with service() as server:
        url = server.server.url

        def get(path: str) -> str:
            reply = requests.get(url + path, timeout=2)
            assert reply.status_code == 200, path
            return reply.text

        assert get("/metadata/v1/id") == "412345678"
        assert get("/metadata/v1/hostname") == "droplet-sim-01"
        assert get("/metadata/v1/interfaces/public/0/ipv4/address") == "203.0.113.45"
        assert get("/metadata/v1/interfaces/public/0/ipv6/cidr") == "64"
        assert get("/metadata/v1/interfaces/private/0/mac") == "da:01:02:03:04:06"
        assert get("/metadata/v1/interfaces/") == "public/\nprivate/"
        assert "ipv4/" in get("/metadata/v1/interfaces/public/0/").splitlines()
        assert get("/metadata/v1/public-keys") == "\n".join(DOC["public_keys"])
        assert get("/metadata/v1/dns/nameservers").splitlines() == DOC["dns"]["nameservers"]
        assert get("/metadata/v1/floating_ip/ipv4/active") == "false"
        assert get("/metadata/v1/user-data") == DOC["user_data"]
        assert {"id", "hostname", "interfaces/", "dns/"} <= set(get("/metadata/v1/").splitlines())
        assert json.loads(get("/metadata/v1.json")) == DOC
        assert requests.get(url + "/metadata/v1/nope", timeout=2).status_code == 404


def test_emulator_follows_the_documented_metadata_api():
    # docs.digitalocean.com/reference/api/metadata: the index and its order, tags/ as an
    # index, 301 for an index without its slash, text/plain and application/json, 404.
    with service({**DOC, "tags": ["web", "prod"]}) as server:
        url = server.server.url
        top = requests.get(url + "/metadata/v1/", timeout=2)
        assert top.text.split("\n") == [
            "id", "hostname", "user-data", "vendor-data", "public-keys", "region",
            "interfaces/", "dns/", "floating_ip/", "reserved_ip/", "tags/", "features/"]
        assert top.headers["Content-Type"] == "text/plain"
        assert requests.get(url + "/metadata/v1/tags/", timeout=2).text == "web\nprod"
        assert requests.get(url + "/metadata/v1/auth-key", timeout=2).text == DOC["auth_key"]
        for index in ("/metadata/v1", "/metadata/v1/interfaces", "/metadata/v1/tags"):
            moved = requests.get(url + index, allow_redirects=False, timeout=2)
            assert (moved.status_code, moved.headers["Location"]) == (301, index + "/")
        assert requests.get(url + "/metadata/v1/interfaces", timeout=2).text == \
            "public/\nprivate/"                    # a client following the redirect
        assert requests.get(url + "/metadata/v1/interfaces/public/0/",
                            timeout=2).text == "mac\ntype\nipv4/\nipv6/\nanchor_ipv4/"
        whole = requests.get(url + "/metadata/v1.json", timeout=2)
        assert whole.headers["Content-Type"] == "application/json"
        missing = requests.get(url + "/metadata/v1/nope", timeout=2)
        assert (missing.status_code, missing.text) == (404, "404 page not found\n")


CLOUD_INIT_DO = """
import json, sys
from cloudinit.sources.helpers import digitalocean
print(json.dumps(digitalocean.read_metadata(sys.argv[1], timeout=5, sec_between=0,
                                            retries=0)))
"""


def test_cloud_init_reads_the_emulated_service(tmp_path):
    python = next((p for p in (sys.executable, "/usr/bin/python3") if os.path.exists(p)
                   and subprocess.run([p, "-c", "import cloudinit.sources.helpers.digitalocean"],
                                      capture_output=True, timeout=30).returncode == 0), None)
    if python is None:
        pytest.skip("cloud-init is not importable")
    script = tmp_path / "cloud_init_do.py"
    script.write_text(CLOUD_INIT_DO)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    with service() as server:
        result = subprocess.run([python, str(script), server.server.url + "/metadata/v1.json"],
                                capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == DOC


# ---- the config drive first, the service as the fallback --------------------------------

def test_config_drive_is_read_first_without_asking_the_service(tmp_path):
    guest = make_guest(tmp_path, "digitalocean", {"hostname": "from-the-drive"})
    with service(doc(hostname="from-the-service"), status=500) as server:
        md = DigitalOceanProvider().fetch(context(guest.root, server.server.url))
    assert md.hostname == "from-the-drive"
    assert server.server.log == []
    assert any(call.startswith("mount") for call in guest.calls())
    assert guest.state()["mounts"] == []  # unmounted afterwards


def test_without_a_config_drive_the_service_is_asked_and_no_secret_is_logged(tmp_path, caplog):
    guest = make_guest(tmp_path, "digitalocean", {"_emulator": {"config_drive": False}})
    with service() as server, caplog.at_level(logging.DEBUG):
        md = DigitalOceanProvider().fetch(context(guest.root, server.server.url))
    assert md == parse(doc())
    assert server.server.log == [("GET", "/metadata/v1.json", 200)]
    assert "metadata document from http" in caplog.text and AUTH_KEY not in caplog.text
    assert "hello from digitalocean" not in caplog.text


def test_malformed_config_drive_names_the_device_and_file(tmp_path):
    guest = make_guest(tmp_path, "digitalocean", {"_emulator": {"config_drive": False}})
    bad = json.dumps(doc()).encode()[:-5]
    attach_volume(guest.root, "c4t0d0",
                  iso_image("config-2", {emulator.DRIVE_FILE: bad}))
    with pytest.raises(MetadataError) as err:
        DigitalOceanProvider().fetch(context(guest.root))
    assert err.value.field == "/dev/dsk/c4t0d0p0:digitalocean_meta_data.json"
    assert AUTH_KEY not in str(err.value)


# ---- whole boots ------------------------------------------------------------------------

def sim(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": PROJECT_DIR}
    return subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True,
                          cwd=PROJECT_DIR, env=env, timeout=timeout)


@pytest.mark.parametrize("config_drive", [True, False])
def test_boot_reaches_done_with_the_metadata_logged(tmp_path, config_drive):
    root = str(tmp_path / "guest")
    override = tmp_path / "md.json"
    override.write_text(json.dumps({"_emulator": {"config_drive": config_drive}}))
    created = sim("create", root, "--platform", "digitalocean", "--metadata", str(override))
    assert created.returncode == 0
    booted = sim("boot", root)
    assert booted.returncode == 0, booted.stdout + booted.stderr
    where = "/dev/dsk/c4t0d0p0:digitalocean_meta_data.json" if config_drive else "/metadata/v1.json"
    assert f"metadata document from {'' if config_drive else 'http://127.0.0.1:'}" in booted.stdout
    assert where in booted.stdout
    assert ("metadata from digitalocean: instance 412345678, hostname given, 2 NIC(s), "
            "1 key(s), a user script") in booted.stdout
    assert "-> DONE" in booted.stdout and AUTH_KEY not in booted.stdout
    shown = json.loads(booted.stdout[booted.stdout.index("\n{") + 1:])
    assert shown["hostname"]["nodename"] == "droplet-sim-01"
    assert {a["addr"] for a in shown["addresses"]} >= {"203.0.113.45/20", "10.110.0.2/20"}
    assert shown["defaultrouter"] == ["203.0.112.1"]
    assert shown["dns"]["nameservers"] == DOC["dns"]["nameservers"]
    assert shown["ssh"]["authorized_keys"] == DOC["public_keys"]
    script = DOC["user_data"].encode()
    assert shown["userscript"]["file"]["sha256"] == hashlib.sha256(script).hexdigest()
