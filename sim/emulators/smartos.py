"""Emulator of the SmartOS (Triton) metadata service: the host end of the guest's serial port.

On a SmartOS HVM guest the metadata service answers on the second serial port
(`/dev/term/b`). Here it answers on a pty pair (os.openpty): the agent, cloud-init's
Joyent client or Joyent's mdata-client open the slave side (`/dev/pts/N`, the endpoint)
and talk to the thread holding the master. The pty is raw (no echo, no newline
translation), as a serial line is, and we keep the slave open ourselves so a client
closing it does not hang the line up between clients.

What it answers is sim/emulators/smartos_host.py, derived from smartos-live's metadata
agent (`src/vm/lib/metadata/agent.js`): see there for the evidence and the details
(empty values, read-only `sdc:` keys, silence for a corrupt frame, V1 KEYS...).

Metadata is the guest's metadata JSON: `sdc:*` keys are the VM's fields, the others its
customer metadata. A string is served as is; `sdc:nics`, `sdc:resolvers`, `sdc:routes`
(lists) as compact JSON, as the host's `JSON.stringify` writes them; null means absent.
Keys starting with `_` are not served; `_emulator` holds the fault options, for tests and
for image builders trying their client against a misbehaving host:

    "_emulator": {
      "delay_s": 0.5,        # wait this long before answering each GET/KEYS/PUT/DELETE
      "bad_crc": 1,          # the first N V2 answers carry a wrong CRC (true: every one)
      "stale_reqid": 1,      # before each of the first N V2 answers, a valid frame for
                             #   another request id (a late answer to an old request)
      "noise": 1,            # before each of the first N answers of any kind, a line of
                             #   garbage bytes (line noise)
      "v1_only": true,       # answer NEGOTIATE and V2 frames with `invalid command`, as
                             #   a host from before V2 would (the clients take that
                             #   answer to NEGOTIATE as "V1 only")
      "silent": true         # read everything, answer nothing (service down)
    }
"""

from __future__ import annotations

import os
import select
import threading
import tty
from typing import Any

from sim.emulators.smartos_host import Host, v2_frame
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
             "nic_tag": "internal", "model": "virtio", "mtu": 8500,   # a jumbo-frame network
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
        self.faults = _Faults(metadata.get(FAULTS_KEY) or {})
        self.host = Host({k: v for k, v in metadata.items() if not k.startswith("_")},
                         v1_only=self.faults.v1_only)
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.device = os.ttyname(self.slave)
        self.endpoint: dict[str, Any] = {"smartos": {"device": self.device}}
        self.link: str | None = None     # the guest's /dev/term/b, when serve() made it
        self.where = self.device
        self.requests: list[str] = []  # what was asked, for tests: "GET sdc:uuid", ...
        self.lines_received = 0         # every line, requests or not (a probe's reset too)
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._loop, name="smartos-emulator", daemon=True)
        self._thread.start()

    @property
    def values(self) -> dict[str, Any]:
        """The metadata as the host now holds it (a client's PUT and DELETE change it)."""
        return self.host.values

    def close(self) -> None:
        """Stop answering and release the pty; a second call does nothing."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self.link and os.path.islink(self.link) and os.readlink(self.link) == self.device:
            os.unlink(self.link)
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
                self._answer(line)

    def _answer(self, line: bytes) -> None:
        self.lines_received += 1
        if self.faults.silent:
            return
        reply = self.host.answer(line)
        if reply.request is not None:
            self.requests.append(reply.request)
            self._delay()
        if not reply.data:
            return                    # a corrupt frame: the host stays silent
        answer = reply.data
        if reply.reqid is not None:
            if self.faults.take("stale_reqid"):
                stale = "%08x" % (int(reply.reqid[:8], 16) ^ 0x5A5A5A5A)
                self._write(v2_frame(stale, "NOTFOUND"))
            if self.faults.take("bad_crc"):
                head, length, crc, body = answer.split(b" ", 3)
                wrong = b"%08x" % (int(crc, 16) ^ 0xFFFFFFFF)
                answer = b" ".join((head, length, wrong, body))
        self._write(answer)

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
    """Start answering on a new pty, linked from the guest's `/dev/term/b`.

    On a SmartOS VM the agent's default port, /dev/term/b, is a link into /devices (the
    second COM port: illumos-gate usr/src/cmd/devfsadm/port_link.c, onbrd_port_create()
    makes `term/<letter>` with devfsadm_mklink, and on x86 check_compat_ports() takes the
    letter from the asy minor name, `b` for the second port), and no settings file names
    it. The guest here has the same: the link
    points at the pty's slave, so the agent opens its default port and reads no settings.
    A guest that already has a /dev/term/b of its own (a test's) keeps it, and the device
    goes into the settings file instead (`.endpoint`)."""
    server = SmartOSServer(metadata)
    term = os.path.join(root, "dev", "term")
    link = os.path.join(term, "b")
    if os.path.isdir(os.path.join(root, "dev")) and not os.path.lexists(link):
        os.makedirs(term, exist_ok=True)
        os.symlink(server.device, link)
        server.link, server.endpoint = link, {}
        server.where = f"/dev/term/b -> {server.device}"
    return server
