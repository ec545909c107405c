"""A small HTTP client with bounded retries, shared by the HTTP metadata sources.

Many instances boot at once and the metadata service throttles (429) or stumbles (5xx), so
transient failures are retried with jittered exponential backoff; but the original agent
retried forever, which turned a broken service into a hung boot. Here every request has its
own timeout (`timeouts.http`) and the whole fetch shares one budget (`timeouts.fetch`):
when it is spent the caller gets a ServiceError naming the source and the URL.

`timeouts.http` is a wall-clock deadline on the whole exchange (connect, headers, body),
not a per-read socket timeout: a server drip-feeding one byte a second satisfies every read
and would otherwise hold FETCH for ever. The exchange runs in a worker thread; at the
deadline the caller moves on (the connection is shut down when it can be reached, else the
daemon thread is left to the server's pace, and dies with the process).

Only transient answers are retried (connection errors, timeouts, a body cut short, 5xx,
429); any other status goes back to the caller, who knows what a 401 or 404 means there.

The transport is imported on the first request: for http:// (every metadata service)
providers/httpwire.py, the small part of HTTP/1.1 a link-local exchange needs, since
`http.client` imports ssl, the email package and the idna codec (13 ms of an EC2 first
boot); for https:// (a NoCloud seed URL may be one) the standard library's `http.client`.
A metadata service answers small documents, which needs none of what `requests` adds
(sessions, proxies, decoding, redirects), and importing `requests` cost an EC2 boot more
CPU than all the rest of the agent's start-up. As before, redirects are not followed and
proxy variables from the environment are not used.
"""

from __future__ import annotations

import _socket  # socket.py's C core, as providers/httpwire.py uses it
import logging
import os
import threading
import time

from fsm.errors import ServiceError
from fsm.record import field, record

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any

    from fsm.settings import Settings

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 0.05
MAX_BACKOFF_S = 5.0
MAX_ATTEMPTS = 30            # a second bound, should the clock ever misbehave
MAX_BODY_BYTES = 16 << 20    # far above any metadata document (EC2 user-data is <= 16 KiB)


@record(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class _Transient(Exception):
    """One attempt failed in a way worth retrying; `retry_after_s` as the server asked."""

    def __init__(self, why: str, retry_after_s: float | None = None, answered: bool = False):
        super().__init__(why)
        self.retry_after_s = retry_after_s
        self.answered = answered   # the service answered (with an error status)


class HttpClient:
    """Requests to one metadata source, all sharing one retry budget from construction."""

    def __init__(self, source: str, request_timeout_s: float, budget_s: float):
        self.source = source
        self.request_timeout_s = request_timeout_s
        self.budget_s = budget_s
        self.deadline = time.monotonic() + budget_s

    @classmethod
    def from_settings(cls, source: str, settings: Settings) -> HttpClient:
        return cls(source, settings.get("timeouts.http"), settings.get("timeouts.fetch"))

    def close(self) -> None:
        """Nothing is kept open between requests (one connection per attempt)."""

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def request(self, method: str, url: str, headers: dict[str, str] | None = None,
                body: bytes | None = None) -> Reply:
        """One logical request: retried while transient and the budget lasts. `body` is
        sent as is (Azure's health report: a POST the wireserver takes more than once)."""
        attempt = answers = 0
        last_error = "no attempt made"
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0 or attempt >= MAX_ATTEMPTS:
                break
            attempt += 1
            try:
                return self._attempt(method, url, headers or {}, min(self.request_timeout_s,
                                                                      remaining), body)
            except _Transient as e:
                last_error = str(e)
                answers += e.answered
                delay = _backoff_s(attempt)
                if e.retry_after_s is not None:
                    delay = max(delay, e.retry_after_s)
                remaining = self.deadline - time.monotonic()
                if delay >= remaining:
                    if e.retry_after_s is not None and e.retry_after_s >= remaining:
                        last_error += (f" (the service asked to retry after {e.retry_after_s:g} s,"
                                       f" beyond the {self.budget_s:g} s budget)")
                    break
                log.info("%s: %s %s: %s; retrying in %.2f s (attempt %d)", self.source,
                         method, url, last_error, delay, attempt)
                time.sleep(delay)
        if answers:   # say what happened: the service was there, and kept failing
            raise ServiceError(f"{self.source}: {method} {url}: the service answered with an "
                               f"error to {answers} of {attempt} attempt(s) within the "
                               f"{self.budget_s:g} s fetch budget; last: {last_error}")
        raise ServiceError(f"{self.source}: {method} {url}: no answer within the "
                           f"{self.budget_s:g} s fetch budget ({attempt} attempt(s)); "
                           f"last: {last_error}")

    def _attempt(self, method: str, url: str, headers: dict[str, str], timeout_s: float,
                 body: bytes | None = None) -> Reply:
        """One exchange, ended at `timeout_s` of wall-clock time whatever the server does."""
        box: dict[str, Any] = {}
        done = threading.Event()
        cancelled = threading.Event()

        def exchange() -> None:
            try:
                box["reply"] = self._exchange(method, url, headers, timeout_s, box, cancelled,
                                              body)
            except BaseException as e:  # handed to the caller's thread
                box["error"] = e
            finally:
                done.set()

        worker = threading.Thread(target=exchange, daemon=True, name=f"http {url}")
        worker.start()
        if not done.wait(timeout_s):
            cancelled.set()
            _shut(box.get("connection"))
            raise _Transient(f"no answer within {timeout_s:.3g} s (the answer was still "
                             f"arriving)")
        if "error" in box:
            raise box["error"]
        return box["reply"]

    def _exchange(self, method: str, url: str, headers: dict[str, str], timeout_s: float,
                  box: dict[str, Any], cancelled: threading.Event,
                  payload: bytes | None = None) -> Reply:
        started = time.monotonic()
        conn = _connection(url, timeout_s)
        if conn is None:
            raise ServiceError(f"{self.source}: {method} {url}: not an http:// or https:// URL")
        connection, target, protocol_errors = conn
        box["connection"] = connection
        try:
            # Link-local service: no proxy from the environment (http.client uses none).
            connection.request(method, target, body=payload, headers=headers)
            resp = connection.getresponse()
            body = bytearray()
            while True:
                chunk = resp.read(65536)
                if not chunk:
                    break
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    raise ServiceError(f"{self.source}: {method} {url}: answer larger than "
                                       f"{MAX_BODY_BYTES} bytes")
                if cancelled.is_set() or time.monotonic() - started > timeout_s:
                    raise _Transient(f"answer took longer than {timeout_s:.3g} s")
            status, reply_headers = resp.status, dict(resp.getheaders())
        except _socket.timeout:   # TimeoutError from Python 3.10 on
            raise _Transient(f"no answer within {timeout_s:.3g} s") from None
        except (OSError, *protocol_errors) as e:
            # Refused, reset, a body cut short (IncompleteRead), no status line: transient.
            raise _Transient(f"connection failed: {_reason(e)}") from None
        finally:
            connection.close()
        if status == 429 or 500 <= status <= 599:
            raise _Transient(f"HTTP {status}", _retry_after_s(reply_headers.get("Retry-After")),
                             answered=True)
        log.debug("%s: %s %s: HTTP %d, %d bytes", self.source, method, url, status, len(body))
        return Reply(status, bytes(body), reply_headers)


def _shut(connection: Any) -> None:
    """Shut down the socket of an exchange still under way, so its reader wakes now."""
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    try:
        sock.shutdown(_socket.SHUT_RDWR)
    except OSError:
        pass


def _connection(url: str, timeout_s: float) -> tuple[Any, str, tuple[type, ...]] | None:
    """An unopened connection to the URL's host, the request target and the errors its
    protocol layer raises for a bad answer; None for a URL that is not http(s)://.

    http:// goes through providers/httpwire.py (no ssl, email or idna imports: see there);
    https:// through `http.client`, imported only for it."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    https = parts.scheme == "https"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # The port always explicit: given none, http.client takes the digits after an IPv6
    # literal's last colon (`fd00:ec2::254`) for one.
    port = parts.port or (443 if https else 80)
    if https:
        import http.client

        return (http.client.HTTPSConnection(parts.hostname, port, timeout=timeout_s), target,
                (http.client.HTTPException,))
    from providers import httpwire

    return httpwire.Connection(parts.hostname, port, timeout_s), target, (httpwire.ProtocolError,)


def _backoff_s(attempt: int) -> float:
    """Exponential with jitter in [1/2, 1] of the step, so a fleet does not retry in step."""
    step = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * (2 ** (attempt - 1)))
    # Two bytes of os.urandom, not the random module: its import (3 M instructions) for
    # one draw a retry, on a boot that usually never retries (issue 17).
    return step * (0.5 + int.from_bytes(os.urandom(2), "big") / 0x20000)


def _retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds (RFC 9110: delay-seconds or an HTTP-date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils  # here only: the email package costs start-up milliseconds

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _reason(error: BaseException) -> str:
    """The exception's text, short; its type when it has none (RemoteDisconnected...)."""
    text = str(error).strip("()'\" ")[:200]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
