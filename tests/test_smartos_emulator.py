"""The SmartOS emulator as a product: raw bytes on its pty, its default metadata, its
fault options on the wire, `sim serve`, and an unmodified third-party client (cloud-init's
Joyent serial client, from Debian's `cloud-init` package) reading from it.
"""

from __future__ import annotations

import base64
import json
import os
import select
import signal
import struct
import subprocess
import sys
import textwrap
import time

import pytest

from providers.model import normalise_mac
from providers.smartos_protocol import Frame, ProtocolError, decode_frame, encode_frame
from sim import guest as sim_guest
from sim.emulators import smartos
from sim.hardware import hardware


@pytest.fixture
def server():
    servers = []

    def start(**extra):
        servers.append(smartos.serve("/nonexistent", {**smartos.default_metadata(), **extra}))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


class RawLine:
    """The slave end opened with plain os.open: no pyserial, no termios changes of ours."""

    def __init__(self, device: str):
        self.fd = os.open(device, os.O_RDWR | os.O_NOCTTY)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def line(self, timeout_s: float = 2.0) -> bytes:
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(0, remaining))
            if not ready:
                raise AssertionError(f"no line within {timeout_s} s; have {self.buffer!r}")
            self.buffer += os.read(self.fd, 4096)
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def raw(server):
    lines = []

    def open_raw(**extra):
        lines.append(RawLine(server(**extra).device))
        return lines[-1]

    yield open_raw
    for ln in lines:
        ln.close()


# ---- the wire --------------------------------------------------------------------------

def test_bare_newline_answers_invalid_command_without_echo(raw):
    line = raw()
    line.send(b"\n")
    assert line.line() == b"invalid command"
    line.send(b"NEGOTIATE V2\n")
    assert line.line() == b"V2_OK"
    assert line.buffer == b""


def test_v2_get_keys_and_hidden_keys(raw):
    line = raw(_emulator={"noise": 0})
    line.send(encode_frame(Frame("0badcafe", "GET", b"sdc:hostname")))
    assert decode_frame(line.line()) == Frame("0badcafe", "SUCCESS", b"web01")
    line.send(encode_frame(Frame("0badcaff", "GET", b"_emulator")))
    assert decode_frame(line.line()) == Frame("0badcaff", "NOTFOUND")
    line.send(encode_frame(Frame("00000001", "KEYS")))
    keys = decode_frame(line.line()).payload.decode().split("\n")
    assert keys == ["role", "root_authorized_keys", "user-script"]


def test_v2_corrupt_request_answers_invalid_command(raw):
    line = raw()
    line.send(b"V2 25 00000000 dc4fae17 GET c2RjOnV1aWQ=\n")
    assert line.line() == b"invalid command"


def test_v1_get_is_dot_stuffed(raw):
    line = raw(**{"motd": ".hidden\nshown\n"})
    line.send(b"GET motd\n")
    assert [line.line() for _ in range(5)] == [b"SUCCESS", b"..hidden", b"shown", b"", b"."]
    line.send(b"GET nothing\n")
    assert line.line() == b"NOTFOUND"


def test_v1_only_refuses_negotiation(raw):
    line = raw(_emulator={"v1_only": True})
    line.send(b"NEGOTIATE V2\n")
    assert line.line() == b"invalid command"


def test_bad_crc_and_stale_reqid_on_the_wire(raw):
    line = raw(_emulator={"bad_crc": 1, "stale_reqid": 1})
    line.send(encode_frame(Frame("12345678", "GET", b"sdc:uuid")))
    stale = decode_frame(line.line())
    assert stale.reqid != "12345678" and stale.command == "NOTFOUND"
    with pytest.raises(ProtocolError, match="CRC"):
        decode_frame(line.line())
    line.send(encode_frame(Frame("12345679", "GET", b"sdc:uuid")))  # faults used up
    assert decode_frame(line.line()).reqid == "12345679"


def test_silent_host_reads_but_never_answers(raw, server):
    line = raw(_emulator={"silent": True})
    line.send(b"\n")
    with pytest.raises(AssertionError, match="no line"):
        line.line(timeout_s=0.2)


def test_close_is_prompt_even_while_delaying(server):
    s = server(_emulator={"delay_s": 30})
    line = RawLine(s.device)
    try:
        line.send(encode_frame(Frame("12345678", "GET", b"sdc:uuid")))
        started = time.monotonic()
        s.close()
        assert time.monotonic() - started < 10   # not the 30 s delay; slack for load
    finally:
        line.close()


# ---- default metadata ------------------------------------------------------------------

def test_default_metadata_matches_the_virtual_hardware():
    md = smartos.default_metadata()
    macs = {normalise_mac(mac) for _, mac in hardware("smartos")["links"]}
    assert {normalise_mac(nic["mac"]) for nic in md["sdc:nics"]} == macs
    assert md["sdc:uuid"] == hardware("smartos")["smbios"]["uuid"].lower()
    assert any({"dhcp", "addrconf"} & set(nic["ips"]) for nic in md["sdc:nics"])
    assert [nic.get("primary", False) for nic in md["sdc:nics"]].count(True) == 1
    assert md["user-script"].startswith("#!")
    for ln in md["root_authorized_keys"].splitlines():
        kind, blob, _comment = ln.split(" ", 2)
        raw_key = base64.b64decode(blob, validate=True)
        (name_len,) = struct.unpack(">I", raw_key[:4])
        assert kind == "ssh-ed25519" and raw_key[4:4 + name_len] == b"ssh-ed25519"
        assert struct.unpack(">I", raw_key[15:19]) == (32,) and len(raw_key) == 19 + 32


# ---- `python -m sim serve` ---------------------------------------------------------------

def test_sim_serve_foreground_writes_the_endpoint_and_answers(tmp_path):
    root = str(tmp_path / "guest")
    sim_guest.create(root, "smartos")
    env = {**os.environ, "PYTHONPATH": sim_guest.PROJECT_DIR}
    proc = subprocess.Popen([sys.executable, "-m", "sim", "serve", root], env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        ready = proc.stdout.readline()  # printed once the pty answers
        assert ready.startswith("serving: ")
        with open(os.path.join(root, "etc/metadata-agent.toml"), encoding="utf-8") as f:
            settings = f.read()
        device = ready.split("'device': '")[1].split("'")[0]
        assert f'device = "{device}"' in settings
        line = RawLine(device)
        try:
            line.send(b"\n")
            assert line.line() == b"invalid command"
        finally:
            line.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


# ---- a third-party client: cloud-init's JoyentMetadataSerialClient ------------------------

CLOUD_INIT_CLIENT = textwrap.dedent("""
    import json, sys
    from cloudinit.sources import DataSourceSmartOS as ds
    client = ds.jmc_client_factory(smartos_type=ds.SMARTOS_ENV_KVM,
                                   serial_device=sys.argv[1], serial_timeout=5)
    with client:
        out = {key: client.get(key) for key in sys.argv[2:]}
        out["(nics)"] = client.get_json("sdc:nics")
        out["(keys)"] = client.list()
        client.put("note", "written by cloud-init")
        out["(note)"] = client.get("note")
        client.delete("note")
        out["(deleted)"] = client.get("note")
    print(json.dumps(out))
""")


def _python_with_cloud_init() -> str | None:
    for python in (sys.executable, "/usr/bin/python3"):
        if os.path.exists(python) and subprocess.run(
                [python, "-c", "import cloudinit.sources.DataSourceSmartOS"],
                capture_output=True, timeout=30).returncode == 0:
            return python
    return None


def test_cloud_init_joyent_client_reads_the_emulator(server, tmp_path):
    python = _python_with_cloud_init()
    if python is None:
        pytest.skip("cloud-init's DataSourceSmartOS is not importable "
                    "(Debian: apt-get install --no-install-recommends cloud-init)")
    script = tmp_path / "cloud_init_client.py"
    script.write_text(CLOUD_INIT_CLIENT)
    s = server()
    md = smartos.default_metadata()
    keys = ["sdc:uuid", "sdc:hostname", "root_authorized_keys", "user-script", "absent"]
    result = subprocess.run([python, str(script), s.device, *keys], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)
    assert {k: out[k] for k in keys} == {**{k: md[k] for k in keys[:-1]}, "absent": None}
    assert out["(nics)"] == md["sdc:nics"]
    assert out["(keys)"] == ["role", "root_authorized_keys", "user-script"]
    assert out["(note)"] == "written by cloud-init" and out["(deleted)"] is None
    assert "PUT note" in s.requests and "DELETE note" in s.requests
