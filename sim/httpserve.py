"""A threaded HTTP server on 127.0.0.1 for the metadata emulators, with injectable faults.

Ready when constructed: the socket is bound and listening before `__init__` returns, so a
client connecting at once is queued by the kernel and nobody sleeps waiting for the server.
An emulator supplies `answer(request) -> Answer`; the faults a real service shows under
load (slow answers, 5xx, 429 with Retry-After, flapping, a connection reset mid-body, a
garbled body) are applied here, the same way for every emulator, as configured by the
reserved `"_emulator"` key of the metadata JSON:

    "_emulator": {
      "status": 503,          answer with this status instead (body "injected fault")
      "retry_after": 2,       ... with this Retry-After header (seconds)
      "delay_s": 3.0,         wait this long before answering (slow beyond a timeout)
      "reset": true,          send the headers and half the body, then reset the connection
      "drip_s": 1.0,          send the whole answer (status line included) one byte per
                              drip_s seconds: each read gets a byte, the answer never ends
      "body": "{not json",    serve this text instead of the real body (status 200)
      "times": 2,             apply the faults to the first N matching requests only
      "flap": true,           apply them to every other matching request (1st, 3rd, ...)
      "paths": ["/metadata/v1.json"]   only requests to these paths match (default: all)
    }

Emulator-specific keys (e.g. EC2's `"imds"`) live in the same object; see each emulator.
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

RESERVED_KEY = "_emulator"
FAULT_KEYS = frozenset({"status", "retry_after", "delay_s", "reset", "body", "times", "flap",
                        "paths", "drip_s"})


@dataclass(frozen=True)
class Request:
    method: str
    path: str                   # normalised: no query, no doubled or trailing slash
    trailing_slash: bool        # the raw path ended in `/` (a directory listing was asked)
    headers: Message
    body: bytes
    query: str = ""             # after `?` (Azure's `comp=goalstate`, `api-version=...`)


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/plain"


def normalise_path(raw: str) -> tuple[str, bool]:
    """`//latest//meta-data/` -> (`/latest/meta-data`, True): one path, however it is spelt."""
    path = raw.split("?", 1)[0].split("#", 1)[0]
    trailing = path.endswith("/") and path.strip("/") != ""
    parts = [p for p in path.split("/") if p]
    return "/" + "/".join(parts), trailing


class Faults:
    """Which requests get which injected fault; counts matching requests, thread-safely."""

    def __init__(self, spec: dict[str, Any] | None):
        spec = dict(spec or {})
        self.status = int(spec["status"]) if spec.get("status") is not None else None
        self.retry_after: Any = spec.get("retry_after")
        self.delay_s = float(spec.get("delay_s", 0) or 0)
        self.reset = bool(spec.get("reset", False))
        self.drip_s = float(spec.get("drip_s", 0) or 0)
        self.body = str(spec["body"]) if spec.get("body") is not None else None
        self.times = int(spec["times"]) if spec.get("times") is not None else None
        self.flap = bool(spec.get("flap", False))
        self.paths = {normalise_path(p)[0] for p in spec.get("paths", [])}
        self.active = any((self.status, self.delay_s, self.reset, self.drip_s,
                           self.body is not None))
        self._seen = 0
        self._lock = threading.Lock()

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any], own_keys: frozenset[str] = frozenset(),
                      emulator: str = "emulator") -> Faults:
        """The faults of `"_emulator"`; a key neither a fault nor the emulator's own is
        refused, so a misspelt option cannot silently test the happy path instead."""
        spec = metadata.get(RESERVED_KEY) or {}
        if not isinstance(spec, dict):
            raise ValueError(f"{emulator}: {RESERVED_KEY} must be an object")
        unknown = sorted(set(spec) - FAULT_KEYS - own_keys)
        if unknown:
            raise ValueError(f"{emulator}: unknown {RESERVED_KEY} option(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(FAULT_KEYS | own_keys))}")
        return cls(spec)

    def applies(self, request: Request) -> bool:
        if not self.active or (self.paths and request.path not in self.paths):
            return False
        with self._lock:
            self._seen += 1
            nth = self._seen
        if self.times is not None and nth > self.times:
            return False
        return not (self.flap and nth % 2 == 0)


class _HttpServer6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class HttpServer:
    """`answer` behind a real HTTP/1.1 server on 127.0.0.1:<free port> (or `host`, e.g.
    `::1` for a service a guest reaches over IPv6)."""

    def __init__(self, answer: Callable[[Request], Answer], faults: Faults | None = None,
                 host: str = "127.0.0.1"):
        self.answer = answer
        self.faults = faults or Faults(None)
        self.log: list[tuple[str, str, int]] = []   # (method, raw path, status) per answer
        self.received = 0                            # requests read, answered or not
        self._closing = threading.Event()
        self._log_lock = threading.Lock()
        server_class = _HttpServer6 if ":" in host else ThreadingHTTPServer
        self.httpd = server_class((host, 0), _handler_class(self))
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.port = self.httpd.server_address[1]
        self.url = f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name=f"httpserve:{self.port}")
        self._thread.start()

    def close(self) -> None:
        self._closing.set()   # wakes handlers sleeping in an injected delay
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> HttpServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def record(self, method: str, path: str, status: int) -> None:
        with self._log_lock:
            self.log.append((method, path, status))


def _handler_class(server: HttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True   # headers and body are separate writes: no 40 ms stall
        server_version = "sim-metadata/1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass  # the emulator is quiet; `server.log` records every request

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            path, trailing = normalise_path(self.path)
            query = self.path.split("#", 1)[0].partition("?")[2]
            request = Request(self.command, path, trailing, self.headers, body, query)
            with server._log_lock:
                server.received += 1
            faulty = server.faults.applies(request)
            faults = server.faults
            if faulty and faults.delay_s and server._closing.wait(faults.delay_s):
                self.close_connection = True
                return
            if faulty and faults.status:
                answer = Answer(faults.status, b"injected fault\n")
                if faults.retry_after is not None:
                    answer.headers["Retry-After"] = str(faults.retry_after)
            else:
                answer = server.answer(request)
                if faulty and faults.body is not None:
                    answer = Answer(200, faults.body.encode(), content_type=answer.content_type)
            server.record(self.command, self.path, answer.status)
            if faulty and faults.drip_s:
                self._drip(answer, faults.drip_s)
                return
            self._send(answer, reset=faulty and faults.reset)

        def _drip(self, answer: Answer, every_s: float) -> None:
            raw = (f"HTTP/1.1 {answer.status} OK\r\nContent-Type: {answer.content_type}\r\n"
                   f"Content-Length: {len(answer.body)}\r\n\r\n").encode() + answer.body
            self.close_connection = True
            try:
                for byte in raw:
                    if server._closing.wait(every_s):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
            except OSError:   # the client gave up and closed: what a bounded client does
                return

        def _send(self, answer: Answer, reset: bool) -> None:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command == "HEAD":
                return
            if not reset:
                self.wfile.write(answer.body)
                return
            self.wfile.write(answer.body[: len(answer.body) // 2])
            self.wfile.flush()
            # SO_LINGER with a zero timeout makes close() send RST: a connection reset, as
            # a crashing or overloaded service gives, rather than a tidy end of stream.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            self.rfile.close()   # drop the makefile() reference so close() is real
            self.connection.close()

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _serve  # noqa: N815

    return Handler
