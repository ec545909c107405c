"""Emulator of the SmartOS (Triton) metadata service: the host end of the guest's serial port.

On a SmartOS HVM guest the metadata service answers on the second serial port
(`/dev/term/b`). Here it answers on a pty pair (os.openpty): the agent, cloud-init's
Joyent client or Joyent's mdata-client open the slave side (`/dev/pts/N`, the endpoint)
and talk to the thread holding the master. The pty is raw (no echo, no newline
translation), as a serial line is, and we keep the slave open ourselves so a client
closing it does not hang the line up between clients.

It speaks what the Triton "Metadata Protocol Specification (Version 2)" describes: a bare
newline (or any line it does not understand) -> `invalid command`; `NEGOTIATE V2` ->
`V2_OK`; V2 frames GET, KEYS, PUT, DELETE answered SUCCESS/NOTFOUND/FAILURE with the
request's id; V1 `GET key` -> `SUCCESS` + dot-stuffed lines + `.`, or `NOTFOUND`.

Metadata is the guest's metadata JSON: each key is served as is when its value is a
string, as JSON text otherwise (so `sdc:nics` may be written as a list). `KEYS` lists the
customer keys (not `sdc:*`), as the real host does. Keys starting with `_` are not served;
`_emulator` holds the fault options, for tests and for image builders trying their
client against a misbehaving host:

    "_emulator": {
      "delay_s": 0.5,        # wait this long before answering each GET/KEYS/PUT/DELETE
      "bad_crc": 1,          # the first N V2 answers carry a wrong CRC (true: every one)
      "stale_reqid": 1,      # before each of the first N V2 answers, a valid frame for
                             #   another request id (a late answer to an old request)
      "noise": 1,            # before each of the first N answers of any kind, a line of
                             #   garbage bytes (line noise)
      "v1_only": true,       # refuse NEGOTIATE V2 (`invalid command`): an old host
      "silent": true         # read everything, answer nothing (service down)
    }
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import select
import threading
import tty
from typing import Any

from providers.smartos_protocol import (
    Frame,
    ProtocolError,
    decode_frame,
    encode_frame,
    encode_v1_value,
    new_reqid,
)
from sim.hardware import hardware

FAULTS_KEY = "_emulator"
WRITE_GIVE_UP_S = 5.0  # a client that stops reading must not wedge the emulator


def default_metadata() -> dict[str, Any]:
    """What a Triton HVM instance with a public and a private NIC is given."""
    uuid = hardware("smartos")["smbios"]["uuid"].lower()  # SmartOS sets SMBIOS UUID = VM uuid
    return {
        "sdc:uuid": uuid,
        "sdc:hostname": "web01",
        "sdc:alias": "web01-production",
        "sdc:dns_domain": "example.com",
        "sdc:datacenter_name": "us-east-1",
        "sdc:server_uuid": "44454c4c-3800-104e-8052-b4c04f4a3132",
        "sdc:nics": [
            {"interface": "net0", "mac": "90:b8:d0:01:02:03", "vlan_id": 0,
             "nic_tag": "external", "model": "virtio", "mtu": 1500,
             "ip": "203.0.113.45", "netmask": "255.255.255.0", "ips": ["203.0.113.45/24"],
             "gateway": "203.0.113.1", "gateways": ["203.0.113.1"], "primary": True},
            {"interface": "net1", "mac": "90:b8:d0:04:05:06", "vlan_id": 3,
             "nic_tag": "internal", "model": "virtio", "mtu": 1500,
             "ip": "dhcp", "ips": ["dhcp", "addrconf"]},
        ],
        "sdc:resolvers": ["8.8.8.8", "8.8.4.4"],
        "sdc:routes": [
            {"linklocal": False, "dst": "10.128.0.0/16", "gateway": "203.0.113.254"},
        ],
        "root_authorized_keys": (
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHUhl5TgVBnLyQSGJ9/vnkgAP+qDeWUXRJVM/3Hj9sAI"
            " admin@example.com\n"
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINMHylSwSG+/ds7LX4by94Sv9V31AOiY+qHWMk/frYi8"
            " deploy@ci.example.com\n"),
        "user-script": "#!/bin/sh\necho 'first boot on SmartOS' > /var/tmp/first-boot\n",
        "role": "web",
    }


def _wire_value(value: Any) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else json.dumps(value).encode()


class _Faults:
    """The `_emulator` options, with per-fault counters for the `first N` forms."""

    def __init__(self, options: dict[str, Any]):
        self.delay_s = float(options.get("delay_s", 0) or 0)
        self.v1_only = bool(options.get("v1_only", False))
        self.silent = bool(options.get("silent", False))
        self._left = {name: options.get(name, 0) for name in ("bad_crc", "stale_reqid", "noise")}

    def take(self, name: str) -> bool:
        """Whether this answer gets fault `name` (true = always; N = the first N times)."""
        left = self._left[name]
        if left is True:
            return True
        if isinstance(left, int) and left > 0:
            self._left[name] = left - 1
            return True
        return False


class SmartOSServer:
    """The host end of the pty; ready (the thread answering) when constructed."""

    def __init__(self, metadata: dict[str, Any]):
        self.values = {k: _wire_value(v) for k, v in metadata.items() if not k.startswith("_")}
        self.faults = _Faults(metadata.get(FAULTS_KEY) or {})
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.device = os.ttyname(self.slave)
        self.endpoint = {"smartos": {"device": self.device}}
        self.requests: list[str] = []  # what was asked, for tests: "GET sdc:uuid", ...
        self.lines_received = 0         # every line, requests or not (a probe's reset too)
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._loop, name="smartos-emulator", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop answering and release the pty; a second call does nothing."""
        if self._stop.is_set():
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=10)
        for fd in (self.master, self.slave, self._wake_r, self._wake_w):
            os.close(fd)

    # ---- the line loop ------------------------------------------------------------------
    def _loop(self) -> None:
        pending = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            try:
                pending += os.read(self.master, 65536)
            except BlockingIOError:
                continue
            except OSError:  # EIO: nobody has the slave open (cannot happen: we hold it)
                continue
            while b"\n" in pending and not self._stop.is_set():
                line, _, pending = pending.partition(b"\n")
                self._answer(line.rstrip(b"\r"))

    def _answer(self, line: bytes) -> None:
        self.lines_received += 1
        if self.faults.silent:
            return
        if line == b"NEGOTIATE V2" and not self.faults.v1_only:
            self._write(b"V2_OK\n")
        elif line.startswith(b"V2 "):
            self._answer_v2(line)
        elif line.startswith(b"GET "):
            self._answer_v1_get(line[4:].decode("utf-8", "replace"))
        else:
            self._write(b"invalid command\n")

    def _answer_v1_get(self, key: str) -> None:
        self.requests.append(f"GET {key}")
        self._delay()
        value = self.values.get(key)
        self._write(b"NOTFOUND\n" if value is None else b"SUCCESS\n" + encode_v1_value(value))

    def _answer_v2(self, line: bytes) -> None:
        try:
            request = decode_frame(line)
        except ProtocolError:
            self._write(b"invalid command\n")
            return
        status, payload = self._execute(request)
        self._delay()
        answer = encode_frame(Frame(request.reqid, status, payload))
        if self.faults.take("stale_reqid"):
            stale = new_reqid()
            while stale == request.reqid:
                stale = new_reqid()
            self._write(encode_frame(Frame(stale, "NOTFOUND")))
        if self.faults.take("bad_crc"):
            head, length, crc, body = answer.split(b" ", 3)
            wrong = b"%08x" % (int(crc, 16) ^ 0xFFFFFFFF)
            answer = b" ".join((head, length, wrong, body))
        self._write(answer)

    def _execute(self, request: Frame) -> tuple[str, bytes | None]:
        arg = request.payload or b""
        if request.command == "KEYS":
            self.requests.append("KEYS")
            keys = sorted(k for k in self.values if not k.startswith("sdc:"))
            return "SUCCESS", "\n".join(keys).encode("utf-8")
        key = arg.decode("utf-8", "replace")
        if request.command == "GET":
            self.requests.append(f"GET {key}")
            value = self.values.get(key)
            return ("NOTFOUND", None) if value is None else ("SUCCESS", value)
        if request.command == "DELETE":
            self.requests.append(f"DELETE {key}")
            self.values.pop(key, None)
            return "SUCCESS", None
        if request.command == "PUT":
            try:
                name, value = (base64.b64decode(p, validate=True) for p in arg.split(b" "))
            except (ValueError, binascii.Error):
                return "FAILURE", None
            self.requests.append(f"PUT {name.decode('utf-8', 'replace')}")
            self.values[name.decode("utf-8", "replace")] = value
            return "SUCCESS", None
        self.requests.append(request.command)
        return "FAILURE", None

    # ---- output -------------------------------------------------------------------------
    def _delay(self) -> None:
        if self.faults.delay_s:
            self._stop.wait(self.faults.delay_s)

    def _write(self, data: bytes) -> None:
        if self.faults.take("noise"):
            data = b"\x00\xff~#garbage\x1b[0m\xfe\n" + data
        while data and not self._stop.is_set():
            _, writable, _ = select.select([], [self.master], [], WRITE_GIVE_UP_S)
            if not writable:
                return  # the client stopped reading; drop the answer
            try:
                data = data[os.write(self.master, data):]
            except BlockingIOError:
                continue
            except OSError:
                return


def serve(root: str, metadata: dict[str, Any]) -> SmartOSServer:
    """Start answering on a new pty; `.endpoint` names its slave device for the agent."""
    return SmartOSServer(metadata)
