"""The SmartOS providers: detection (SMBIOS, and the bounded serial probe), where the port
comes from, the sdc:* -> Metadata mapping, and every error path against the emulator, in
process and as the real agent (`metadata run`) against a served guest.
"""

from __future__ import annotations

import json
import os
import re
import time
import tty

import pytest
from guest import make_guest

from fsm.checkpoint import Checkpoint
from fsm.errors import MetadataError, ServiceError
from fsm.settings import parse as parse_settings
from fsm.steps import Context
from fsm.system import System
from providers.model import Nic, Route
from providers.smartos import SmartOSProbeProvider, SmartOSProvider, parse
from providers.smbios import SmbiosInfo
from sim import guest as sim_guest
from sim.emulators import smartos
from sim.serve import serving, write_endpoint

UUID = smartos.default_metadata()["sdc:uuid"]
JOYENT = SmbiosInfo("Joyent", "SmartDC HVM", "7.20230301T000238Z", "", UUID.upper())
QEMU = SmbiosInfo("QEMU", "Standard PC (i440FX + PIIX, 1996)", "pc-i440fx-8.2")
UNKNOWN = SmbiosInfo("Bochs", "Bochs", "")


@pytest.fixture
def emulator():
    servers = []

    def start(**changes):
        md = {**smartos.default_metadata(), **changes}
        servers.append(smartos.serve("/nonexistent", {k: v for k, v in md.items()
                                                      if v is not None}))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def context(tmp_path, device: str | None = None, smbios=JOYENT, **timeouts) -> Context:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    toml = f'[smartos]\ndevice = "{device}"\n' if device else ""
    toml += "[timeouts]\n" + "".join(f"{k} = {v}\n" for k, v in timeouts.items())
    return Context(system=System(str(root)), settings=parse_settings(toml),
                   checkpoint=Checkpoint(), smbios=smbios)


def fetch(tmp_path, server, **timeouts):
    return SmartOSProvider().fetch(context(tmp_path, server.device, **timeouts))


def wire(metadata: dict) -> dict[str, bytes]:
    """Values as the host sends them (non-strings as JSON text), for the pure parser."""
    return {k: (v if isinstance(v, str) else json.dumps(v)).encode() for k, v in metadata.items()}


# ---- mapping ---------------------------------------------------------------------------

EXPECTED_NICS = (
    Nic(mac="90:b8:d0:01:02:03", addresses=("203.0.113.45/24",), gateways=("203.0.113.1",),
        primary=True, name="net0", mtu=1500),
    Nic(mac="90:b8:d0:04:05:06", dhcp4=True, addrconf=True, name="net1", mtu=8500),
)


def test_default_metadata_maps_onto_the_model(tmp_path, emulator):
    md = fetch(tmp_path, emulator())
    assert md.source == "smartos" and md.instance_id == UUID
    assert md.hostname == "web01" and md.origin("hostname") == "smartos:sdc:hostname"
    assert md.nics == EXPECTED_NICS
    assert md.resolvers == ("8.8.8.8", "8.8.4.4")
    assert md.routes == (Route("10.128.0.0/16", "203.0.113.254"),)
    assert md.search_domains == ("example.com",)
    assert [k.split()[2] for k in md.ssh_keys] == ["admin@example.com", "deploy@ci.example.com"]
    assert md.user_script == smartos.default_metadata()["user-script"].encode()
    assert md.origin("nics") == "smartos:sdc:nics"


def test_v1_only_host_gives_the_same_metadata(tmp_path, emulator):
    v2 = fetch(tmp_path, emulator())
    v1 = fetch(tmp_path, emulator(_emulator={"v1_only": True}))
    assert v1 == v2 and v1.user_script == v2.user_script


@pytest.mark.parametrize("drop, hostname, origin", [
    (("sdc:hostname",), "web01-production", "sdc:alias"),
    (("sdc:hostname", "sdc:alias"), UUID, "sdc:uuid"),
])
def test_hostname_falls_back_to_alias_then_uuid(drop, hostname, origin):
    values = wire({k: v for k, v in smartos.default_metadata().items() if k not in drop})
    md = parse(values)
    assert md.hostname == hostname and md.origin("hostname") == f"smartos:{origin}"


def test_missing_optional_keys_are_absent_not_errors(tmp_path, emulator):
    server = emulator(**{k: None for k in smartos.default_metadata() if k != "sdc:uuid"})
    md = fetch(tmp_path, server)
    assert (md.instance_id, md.hostname, md.origin("hostname")) == (UUID, UUID,
                                                                   "smartos:sdc:uuid")
    assert (md.nics, md.routes, md.resolvers, md.ssh_keys, md.user_script) == ((),) * 4 + (None,)
    assert "GET sdc:alias" in server.requests


@pytest.mark.parametrize("faults", [{}, {"v1_only": True}])
def test_empty_values_as_the_host_sends_them_are_absent(tmp_path, emulator, faults):
    # agent.js: an empty value is a SUCCESS frame without payload (V2), SUCCESS\n\n.\n (V1).
    server = emulator(**{"user-script": "", "root_authorized_keys": "", "sdc:alias": "",
                         "_emulator": faults})
    md = fetch(tmp_path, server)
    assert (md.user_script, md.ssh_keys, md.instance_id) == (None, (), UUID)
    assert md.hostname == "web01" and "GET user-script" in server.requests


def test_unknown_fields_and_legacy_nic_forms_are_accepted():
    nics = [{"mac": "90:B8:D0:1:2:3", "ip": "10.1.2.3", "netmask": "255.255.240.0",
             "gateway": "10.1.0.1", "nic_tag": "x", "future": {"a": [1]}, "vlan_id": 7},
            {"mac": "90-b8-d0-04-05-06", "ip": "dhcp", "primary": False},
            {"mac": "90:b8:d0:07:08:09", "ips": ["2001:db8::5/64", "addrconf"],
             "gateways": ["2001:db8::1"]}]
    md = parse(wire({"sdc:nics": nics, "sdc:dns_domain": "a.example, b.example",
                     "root_authorized_keys": "# comment\n\nssh-ed25519 AAAA k\n"}))
    assert md.nics == (
        Nic(mac="90:b8:d0:01:02:03", addresses=("10.1.2.3/20",), gateways=("10.1.0.1",)),
        Nic(mac="90:b8:d0:04:05:06", dhcp4=True),
        Nic(mac="90:b8:d0:07:08:09", addresses=("2001:db8::5/64",), addrconf=True,
            gateways=("2001:db8::1",)))
    assert md.search_domains == ("a.example", "b.example")
    assert md.ssh_keys == ("ssh-ed25519 AAAA k",)


@pytest.mark.parametrize("key, value, problem", [
    ("sdc:nics", "[{not json", "not valid JSON"),
    ("sdc:nics", {"mac": "90:b8:d0:01:02:03"}, "must be a JSON list, not an object"),
    ("sdc:nics", ["net0"], r"\[0\] must be an object, not a string"),
    ("sdc:nics", [{"mac": 5}], r"\[0\]\.mac must be a string, not a number"),
    ("sdc:nics", [{"ips": ["dhcp"]}], r"\[0\]\.mac is missing"),
    ("sdc:nics", [{"mac": "90:b8:d0:zz:02:03"}], "not a MAC address"),
    ("sdc:nics", [{"mac": "90:b8:d0:01:02:03", "ips": "dhcp"}], r"ips must be a list"),
    ("sdc:nics", [{"mac": "90:b8:d0:01:02:03", "ips": [7]}], r"ips\[0\] must be a string"),
    ("sdc:nics", [{"mac": "90:b8:d0:01:02:03", "ips": ["10.0.0.5"]}], "no prefix length"),
    ("sdc:nics", [{"mac": "90:b8:d0:01:02:03", "ips": ["10.0.0.500/24"]}], "address/prefix"),
    ("sdc:nics", [{"mac": "90:b8:d0:01:02:03", "primary": "true"}], "must be a boolean"),
    ("sdc:nics", [{"mac": "90:b8:d0:01:02:03", "gateways": ["gw"]}], "not an IP address"),
    ("sdc:nics", [{"mac": "90:b8:d0:01:02:03", "ip": "10.0.0.5", "netmask": "255.0.255.0"}],
     "not a contiguous netmask"),
    ("sdc:resolvers", "8.8.8.8", "not valid JSON"),
    ("sdc:resolvers", ["8.8.8.8", 53], r"\[1\] must be a string"),
    ("sdc:routes", [{"dst": "10.0.0.0/8"}], r"\[0\]\.gateway is missing"),
    ("sdc:routes", [{"dst": "ten", "gateway": "10.0.0.1"}], "not a network"),
    ("sdc:routes", [{"dst": "10.0.0.0/8", "gateway": "10.0.0.1", "linklocal": "no"}],
     "must be a boolean"),
])
def test_wrong_types_name_the_source_and_field(key, value, problem):
    """A key that is not JSON (or not a list) is refused; a bad item in it is a warning
    naming the key and the item, and is skipped while the other items are kept."""
    if problem in ("not valid JSON", "must be a JSON list, not an object"):
        with pytest.raises(MetadataError, match=problem) as caught:
            parse(wire({"sdc:uuid": UUID, key: value}))
        assert (caught.value.source, caught.value.field) == ("smartos", key)
        return
    good = {"sdc:nics": {"mac": "90:b8:d0:0a:0b:0c", "ips": ["10.9.0.5/24"]},
            "sdc:routes": {"dst": "10.8.0.0/16", "gateway": "10.9.0.1"},
            "sdc:resolvers": "10.9.0.53"}[key]
    md = parse(wire({"sdc:uuid": UUID, key: [good, *value]}))
    assert len(md.warnings) == 1 and md.warnings[0].startswith(f"smartos: {key}: [")
    assert re.search(re.sub(r"^\\\[\d\\\]", "", problem), md.warnings[0]), md.warnings
    assert md.warnings[0].endswith("skipped; the rest is applied")
    kept = {"sdc:nics": md.nics, "sdc:routes": md.routes, "sdc:resolvers": md.resolvers}[key]
    assert len(kept) == 1 + sum(isinstance(v, str) for v in value if key == "sdc:resolvers")


def test_customer_hostname_key_is_honoured_as_cloud_init_does():
    values = wire({**smartos.default_metadata(), "hostname": "customer-name"})
    md = parse(values)
    assert md.hostname == "customer-name" and md.origin("hostname") == "smartos:hostname"


@pytest.mark.parametrize("script,installed", [
    (b"echo hi > /var/tmp/x\n", b"#!/bin/bash\necho hi > /var/tmp/x\n"),
    (b"#!/usr/bin/ksh\necho hi\n", b"#!/usr/bin/ksh\necho hi\n"),
    (b"\x7fELF\x02\x01\x00\x00", b"\x7fELF\x02\x01\x00\x00"),
])
def test_a_user_script_without_an_interpreter_line_runs_with_bash(script, installed):
    """SmartOS runs user-script from bash (mdata-execute) and cloud-init adds #!/bin/bash to
    a text script without one; a binary is left for USERSCRIPT to judge."""
    assert parse({"user-script": script}).user_script == installed


def test_non_utf8_text_is_a_metadata_error():
    with pytest.raises(MetadataError, match="sdc:hostname: is not UTF-8"):
        parse({"sdc:hostname": b"\xffweb"})
    assert parse({"user-script": b"#!/bin/sh\n\xff"}).user_script == b"#!/bin/sh\n\xff"


# ---- where the port is -------------------------------------------------------------------

def test_default_port_is_resolved_under_the_guest_root(tmp_path, emulator):
    ctx = context(tmp_path)
    with pytest.raises(ServiceError, match="/dev/term/b does not exist"):
        SmartOSProvider().fetch(ctx)
    os.makedirs(ctx.system.path("/dev/term"))
    os.symlink(emulator().device, ctx.system.path("/dev/term/b"))
    assert SmartOSProvider().fetch(ctx).instance_id == UUID


# ---- detection ---------------------------------------------------------------------------

def test_smbios_decides_without_touching_the_port(tmp_path, emulator):
    server = emulator()
    assert SmartOSProvider().detect(context(tmp_path, server.device, smbios=JOYENT))
    assert not SmartOSProvider().detect(context(tmp_path, server.device, smbios=None))
    assert not SmartOSProbeProvider().detect(context(tmp_path, server.device, smbios=QEMU))
    assert not SmartOSProbeProvider().detect(context(tmp_path, server.device, smbios=JOYENT))
    assert server.lines_received == 0


@pytest.mark.parametrize("smbios", [None, UNKNOWN])
def test_probe_finds_the_service_when_smbios_is_unknown(tmp_path, emulator, smbios):
    server = emulator(_emulator={"noise": 1})
    started = time.monotonic()
    # A probe bound of 5 s (not the default 0.25 s): a loaded CI box must not decide it.
    assert SmartOSProbeProvider().detect(context(tmp_path, server.device, smbios=smbios,
                                                 probe=5))
    assert time.monotonic() - started < 5
    assert server.requests == []  # a reset exchange only: no metadata read in DETECT


def test_probe_of_an_absent_port_is_instant(tmp_path):
    started = time.monotonic()
    assert not SmartOSProbeProvider().detect(context(tmp_path, smbios=None))
    assert time.monotonic() - started < 2   # no wait at all; slack for a loaded box


@pytest.mark.parametrize("what", ["silent emulator", "bare pty"])
def test_probe_of_a_port_with_nothing_answering_is_bounded(tmp_path, emulator, what):
    if what == "bare pty":
        master, slave = os.openpty()
        tty.setraw(slave)
        device = os.ttyname(slave)
    else:
        device = emulator(_emulator={"silent": True}).device
    started = time.monotonic()
    try:
        assert not SmartOSProbeProvider().detect(context(tmp_path, device, smbios=None))
        assert time.monotonic() - started < 10  # timeouts.probe is 0.25 s; slack for load
    finally:
        if what == "bare pty":
            os.close(master)
            os.close(slave)


# ---- service errors against the emulator -------------------------------------------------

@pytest.mark.parametrize("faults, problem", [
    ({"delay_s": 2}, "no answer to GET"),
    ({"silent": True}, "no `invalid command` answer"),
    ({"bad_crc": True}, "CRC"),
])
def test_service_errors_are_clear_and_bounded(tmp_path, emulator, faults, problem):
    started = time.monotonic()
    with pytest.raises(ServiceError, match=problem) as caught:
        fetch(tmp_path, emulator(_emulator=faults), serial=0.1)
    assert time.monotonic() - started < 15   # 3 attempts of 0.1 s; slack for load
    assert "smartos: metadata service unreachable" in str(caught.value)
    assert "after 3 attempts" in str(caught.value)


def test_transient_faults_are_absorbed(tmp_path, emulator):
    server = emulator(_emulator={"bad_crc": 2, "stale_reqid": True, "noise": 3})
    md = fetch(tmp_path, server, serial=0.5)
    assert md.nics == EXPECTED_NICS
    assert server.requests.count("GET sdc:uuid") == 3  # two corrupt answers, then a good one


# ---- the real agent against a served guest ------------------------------------------------

def agent_output(result) -> str:
    return result.stdout + result.stderr


def test_agent_fetches_smartos_metadata_and_reaches_done(tmp_path):
    guest = make_guest(tmp_path, "smartos")
    with serving(guest.root):
        result = guest.run()
    out = agent_output(result)
    assert result.returncode == 0, out[-3000:]
    assert (f"metadata from smartos: instance {UUID}, hostname given, 2 NIC(s), 2 key(s), "
            "a user script") in out
    assert guest.checkpoint().instance_id == UUID
    assert guest.checkpoint().phase == "DONE"
    assert "Traceback" not in out


def test_agent_reports_malformed_nics_naming_the_field(tmp_path):
    guest = make_guest(tmp_path, "smartos", metadata={"sdc:nics": "[{not json"})
    with serving(guest.root):
        result = guest.run()
    out = agent_output(result)
    assert result.returncode == 96, out[-3000:]
    assert "smartos: sdc:nics: is not valid JSON" in out
    assert "Traceback" not in out


def test_agent_gives_up_on_a_slow_host_within_bounds(tmp_path):
    guest = make_guest(tmp_path, "smartos", metadata={"_emulator": {"delay_s": 3}})
    with serving(guest.root):
        with open(guest.path("/etc/metadata-agent.toml"), "a", encoding="utf-8") as f:
            f.write("[timeouts]\nserial = 0.1\n")
        started = time.monotonic()
        result = guest.run()
        took_s = time.monotonic() - started
    out = agent_output(result)
    assert result.returncode == 95, out[-3000:]
    assert "smartos: metadata service unreachable" in out and "after 3 attempts" in out
    assert took_s < 60 and "Traceback" not in out   # unbounded before; slack for load


def test_agent_probes_the_serial_port_on_an_unknown_platform(tmp_path):
    guest = make_guest(tmp_path, "none")
    # An unfamiliar hypervisor offering the service: its one NIC is the guest's e1000g0.
    metadata = {**smartos.default_metadata(), "sdc:routes": [],
                "sdc:nics": [{"mac": "08:00:27:01:02:03", "interface": "net0",
                              "ips": ["dhcp"], "primary": True}]}
    server = smartos.serve(guest.root, metadata)
    try:
        write_endpoint(guest.root, server.endpoint)
        result = guest.run()
    finally:
        server.close()
    out = agent_output(result)
    assert "metadata source: smartos" in out, out[-3000:]
    assert f"metadata from smartos: instance {UUID}, hostname given, 1 NIC(s)" in out
    assert guest.checkpoint().instance_id == UUID
    assert result.returncode == 0 and "Traceback" not in out


def test_agent_on_unknown_platform_with_a_silent_port_detects_fast(tmp_path):
    guest = make_guest(tmp_path, "none")
    server = smartos.serve(guest.root, {"_emulator": {"silent": True}})
    try:
        write_endpoint(guest.root, server.endpoint)
        result = guest.run()
    finally:
        server.close()
    out = agent_output(result)
    detect = [ln for ln in out.splitlines() if "no metadata source found (" in ln]
    assert detect, out[-3000:]
    # The probe is bounded by timeouts.probe (0.25 s); 5 s of slack for a loaded CI box.
    assert int(detect[0].split("found (")[1].split(" ms")[0]) < 5000
    assert result.returncode == 0 and "Traceback" not in out


def test_sim_create_writes_the_default_metadata(tmp_path):
    guest = make_guest(tmp_path, "smartos")
    assert sim_guest.load_metadata(guest.root) == json.loads(json.dumps(
        smartos.default_metadata()))
