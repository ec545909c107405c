"""The SmartOS (Triton) metadata protocol over a serial port: V2 frames, with a V1 fallback.

The original agent shelled out to `mdata-get`, which every image then had to ship; speaking
the protocol here needs only pyserial. Facts from the Triton "Metadata Protocol
Specification (Version 2)":

- Reset: flush pending input, send a bare `\\n`; the host answers `invalid command`. Then
  `NEGOTIATE V2` -> `V2_OK`. A host that answers anything else speaks only V1.
- V2 frame: `V2 <len> <crc32> <body>\\n`; `len` is the decimal byte length of `body`,
  `crc32` the zlib CRC-32 of `body` as 8 lowercase hex digits, `body` is
  `<reqid> <CMD>[ <base64 arg>]` with `reqid` 8 random hex digits that the answer repeats.
  Answers are `SUCCESS [b64 value]` or `NOTFOUND` (or `FAILURE`).
- V1: `GET key\\n` (or `KEYS\\n`) -> `NOTFOUND\\n`, `FAILURE\\n`, or `SUCCESS\\n`, the value's
  lines (a line starting with `.` sent as `..`) and a line holding a single `.`; the host
  ends the value with a newline of its own, so an empty value is `SUCCESS\\n\\n.\\n`. In V2
  an empty value is a `SUCCESS` frame without payload.
- A bare newline that completes a partial line the host already held is answered as that
  request (`FAILURE`, `NOTFOUND`): the reset sends another newline, as cloud-init does.
  (smartos-live `src/vm/lib/metadata/agent.js`, the host's side, is the reference.)

A serial line is shared and lossy: an answer may arrive late (after we gave up and sent the
next request), so frames with another request's id are dropped, not errors; a corrupt frame
(length or CRC wrong) is rejected and the request retried after a reset. Every wait has a
deadline and every retry loop a count, so a silent or babbling host costs bounded time.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import time
import zlib

from fsm.record import record

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Protocol

    class SerialPort(Protocol):
        """What the client needs of a pyserial `Serial` (so tests may pass any such object)."""

        timeout: float | None

        def read(self, size: int = 1) -> bytes: ...
        def write(self, data: bytes) -> int | None: ...
        def reset_input_buffer(self) -> None: ...
        def close(self) -> None: ...
        @property
        def in_waiting(self) -> int: ...

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 8 << 20        # a value larger than this is not metadata: stop reading
RESET_ANSWER = b"invalid command"
ONE_LINE_ANSWERS = (b"FAILURE", b"NOTFOUND")   # the host's answers to a line it took as V1
_FRAME = re.compile(rb"V2 ([0-9]{1,9}) ([0-9a-f]{8}) (.*)", re.DOTALL)
_REQID = re.compile(r"[0-9a-f]{8}")
_TOKEN = re.compile(r"[A-Z_]+")


class ProtocolError(Exception):
    """A line that is not a well-formed V2 frame (wrong length, CRC, syntax)."""


class TransportError(Exception):
    """The host did not answer properly within the bounds; says what was tried."""


@record(frozen=True)
class Frame:
    reqid: str
    command: str                 # GET/KEYS/PUT/DELETE in requests, SUCCESS/NOTFOUND/... in answers
    payload: bytes | None = None  # the decoded base64 argument, None when there was none


def checksum(body: bytes) -> str:
    return f"{zlib.crc32(body) & 0xFFFFFFFF:08x}"


def new_reqid() -> str:
    return os.urandom(4).hex()  # as random as secrets.token_hex, without its imports


def encode_frame(frame: Frame) -> bytes:
    """The wire form of a frame, newline included."""
    if not _REQID.fullmatch(frame.reqid) or not _TOKEN.fullmatch(frame.command):
        raise ValueError(f"not a valid frame: {frame!r}")
    body = f"{frame.reqid} {frame.command}".encode("ascii")
    if frame.payload is not None:
        body += b" " + base64.b64encode(frame.payload)
    return b"V2 %d %s %s\n" % (len(body), checksum(body).encode("ascii"), body)


def decode_frame(line: bytes) -> Frame:
    """Parse one line (with or without its newline); ProtocolError for anything malformed."""
    if line.endswith(b"\n"):
        line = line[:-1]
    match = _FRAME.fullmatch(line)
    if not match:
        raise ProtocolError(f"not a V2 frame: {line[:60]!r}")
    length, crc, body = int(match.group(1)), match.group(2).decode("ascii"), match.group(3)
    if length != len(body):
        raise ProtocolError(f"frame length {length} but the body has {len(body)} bytes")
    if crc != checksum(body):
        raise ProtocolError(f"frame CRC {crc} but the body's CRC is {checksum(body)}")
    parts = body.split(b" ")
    if len(parts) not in (2, 3):
        raise ProtocolError(f"frame body has {len(parts)} fields, expected 2 or 3")
    try:
        reqid, command = parts[0].decode("ascii"), parts[1].decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError("frame body is not ASCII") from None
    if not _REQID.fullmatch(reqid):
        raise ProtocolError(f"request id {reqid[:20]!r} is not 8 hex digits")
    if not _TOKEN.fullmatch(command):
        raise ProtocolError(f"command {command[:20]!r} is not a protocol word")
    payload = None
    if len(parts) == 3:
        try:
            payload = base64.b64decode(parts[2], validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("frame argument is not valid base64") from None
    return Frame(reqid, command, payload)


# ---- the client ------------------------------------------------------------------------

class MetadataClient:
    """Requests over one open port, each bounded by `timeout_s` and retried `attempts` times."""

    def __init__(self, port: SerialPort, where: str, timeout_s: float = 2.0,
                 attempts: int = 3):
        self.port, self.where = port, where
        self.timeout_s, self.attempts = timeout_s, max(1, attempts)
        self.version: str | None = None      # "V2" or "V1" once reset
        self._buffer = b""

    # -- low level
    def _readline(self, deadline: float) -> bytes | None:
        """One line without its newline, or None when the deadline passes first."""
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                self.port.timeout = remaining
                chunk = self.port.read(max(1, min(self.port.in_waiting, 65536)))
            except OSError as e:  # pyserial's SerialException is an OSError
                raise TransportError(f"{self.where}: read failed: {e}") from None
            if chunk:
                self._buffer += chunk
                if len(self._buffer) > MAX_LINE_BYTES:
                    self._buffer = b""
                    raise TransportError(f"{self.where}: a line longer than "
                                         f"{MAX_LINE_BYTES} bytes")
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.rstrip(b"\r")

    def _send(self, data: bytes) -> None:
        # pyserial's write returns once the kernel has the bytes (bounded by write_timeout);
        # no flush(): tcdrain could wait forever on a port whose flow control never opens.
        try:
            self.port.write(data)
        except OSError as e:  # includes pyserial's write timeout
            raise TransportError(f"{self.where}: write failed: {e}") from None

    def _flush_input(self) -> None:
        self._buffer = b""
        try:
            self.port.reset_input_buffer()
            waiting = self.port.in_waiting
            if waiting:
                self.port.timeout = 0
                self.port.read(waiting)
        except OSError as e:
            raise TransportError(f"{self.where}: flushing input failed: {e}") from None

    # -- reset and negotiation
    def reset(self, timeout_s: float | None = None) -> str:
        """Flush, expect `invalid command` for a bare newline, negotiate V2 (else V1)."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        self._flush_input()
        self._send(b"\n")
        while True:
            answer = self._expect(lambda ln: ln in (RESET_ANSWER,) + ONE_LINE_ANSWERS, deadline)
            if answer is None:
                raise TransportError(f"{self.where}: no `invalid command` answer to a bare "
                                     "newline: is the host metadata service there?")
            if answer == RESET_ANSWER:
                break
            # Our newline ended a partial line the host already held (a client that died
            # mid-request, line noise), and the host answered that as a request: again.
            self._send(b"\n")
        self._send(b"NEGOTIATE V2\n")
        answer = self._expect(lambda ln: ln in (b"V2_OK", RESET_ANSWER), deadline)
        if answer is None:
            raise TransportError(f"{self.where}: no answer to NEGOTIATE V2")
        self.version = "V2" if answer == b"V2_OK" else "V1"
        if self.version == "V1":
            log.info("%s: the host refused NEGOTIATE V2; using protocol V1", self.where)
        return self.version

    def _expect(self, wanted, deadline: float) -> bytes | None:
        """Read lines until one is `wanted`; others (noise, late frames) are skipped."""
        while True:
            line = self._readline(deadline)
            if line is None or wanted(line):
                return line
            log.debug("%s: skipping an unexpected line (%d bytes)", self.where, len(line))

    # -- requests
    def get(self, key: str) -> bytes | None:
        """The value of `key`, or None when the host says NOTFOUND."""
        return self._with_retries(f"GET {key}", lambda: self._get_once(key))

    def keys(self) -> list[str]:
        found = self._with_retries("KEYS", lambda: self._v1_once(b"KEYS\n", "KEYS")
                                   if self.version == "V1" else self._v2_once("KEYS", None))
        return [k for k in (found or b"").decode("utf-8", "replace").split("\n") if k]

    def _get_once(self, key: str) -> tuple[bool, bytes | None]:
        if self.version == "V1":
            return self._v1_get_once(key)
        return self._v2_once("GET", key.encode("utf-8"))

    def _with_retries(self, what: str, once) -> bytes | None:
        problems: list[str] = []
        for attempt in range(1, self.attempts + 1):
            try:
                if self.version is None or problems:
                    self.reset()
                found, value = once()
                return value if found else None
            except TransportError as e:
                problems.append(str(e))
                log.warning("%s (attempt %d of %d)", e, attempt, self.attempts)
        told = problems[-1] if problems[0] == problems[-1] else \
            f"{problems[0]}; then {problems[-1]}"
        raise TransportError(f"{what} failed after {self.attempts} attempts: {told}")

    def _v2_once(self, command: str, arg: bytes | None) -> tuple[bool, bytes | None]:
        reqid = new_reqid()
        self._send(encode_frame(Frame(reqid, command, arg)))
        deadline = time.monotonic() + self.timeout_s
        while True:
            line = self._readline(deadline)
            if line is None:
                raise TransportError(f"{self.where}: no answer to {command} within "
                                     f"{self.timeout_s:g} s")
            if not line.startswith(b"V2 "):
                log.debug("%s: skipping a line that is not a frame (%d bytes)", self.where,
                          len(line))
                continue
            try:
                frame = decode_frame(line)
            except ProtocolError as e:
                raise TransportError(f"{self.where}: corrupt answer to {command}: {e}") from None
            if frame.reqid != reqid:
                log.debug("%s: dropping a frame for request %s (ours is %s)", self.where,
                          frame.reqid, reqid)
                continue
            if frame.command == "SUCCESS":
                return True, frame.payload if frame.payload is not None else b""
            if frame.command == "NOTFOUND":
                return False, None
            raise TransportError(f"{self.where}: {command} answered {frame.command}")

    def _v1_get_once(self, key: str) -> tuple[bool, bytes | None]:
        if not key or any(c in key for c in " \n\r"):
            raise TransportError(f"{self.where}: key {key!r} cannot be sent in protocol V1")
        return self._v1_once(f"GET {key}\n".encode(), key)

    def _v1_once(self, request: bytes, what: str) -> tuple[bool, bytes | None]:
        """A V1 request: `NOTFOUND`, or `SUCCESS`, dot-stuffed lines and a lone `.`."""
        self._send(request)
        deadline = time.monotonic() + self.timeout_s
        command = request.split()[0].decode()
        status = self._expect(lambda ln: ln in (b"SUCCESS",) + ONE_LINE_ANSWERS, deadline)
        if status is None:
            raise TransportError(f"{self.where}: no answer to {command} "
                                 f"within {self.timeout_s:g} s")
        if status == b"NOTFOUND":
            return False, None
        if status == b"FAILURE":
            raise TransportError(f"{self.where}: {command} answered FAILURE")
        lines: list[bytes] = []
        while True:
            line = self._readline(deadline)
            if line is None:
                raise TransportError(f"{self.where}: V1 value of {what} not terminated "
                                     f"within {self.timeout_s:g} s")
            if line == b".":
                return True, b"\n".join(lines)
            lines.append(line[1:] if line.startswith(b"..") else line)

    def close(self) -> None:
        self.port.close()


def open_port(device: str, timeout_s: float):
    """Open the serial device exclusively (a second reader would steal our answers)."""
    import serial  # pyserial: imported here so the codec is usable without it

    try:
        return serial.Serial(device, baudrate=115200, timeout=timeout_s,
                             write_timeout=timeout_s, exclusive=True)
    except (serial.SerialException, OSError, ValueError) as e:
        raise TransportError(f"{device}: cannot open: {e}") from None
