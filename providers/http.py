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
`requests` is imported inside the functions: most platforms never talk HTTP, and the agent's
start-up should not pay for the import.
"""

from __future__ import annotations

import email.utils
import logging
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fsm.errors import ServiceError

if TYPE_CHECKING:
    from fsm.settings import Settings

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 0.05
MAX_BACKOFF_S = 5.0
MAX_ATTEMPTS = 30            # a second bound, should the clock ever misbehave
MAX_BODY_BYTES = 16 << 20    # far above any metadata document (EC2 user-data is <= 16 KiB)


@dataclass(frozen=True)
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
        import requests

        self.source = source
        self.request_timeout_s = request_timeout_s
        self.budget_s = budget_s
        self.deadline = time.monotonic() + budget_s
        self.session = requests.Session()
        # The metadata service is link-local: a proxy from the environment must not see it.
        self.session.trust_env = False

    @classmethod
    def from_settings(cls, source: str, settings: Settings) -> HttpClient:
        return cls(source, settings.get("timeouts.http"), settings.get("timeouts.fetch"))

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def request(self, method: str, url: str, headers: dict[str, str] | None = None) -> Reply:
        """One logical request: retried while transient and the budget lasts."""
        attempt = answers = 0
        last_error = "no attempt made"
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0 or attempt >= MAX_ATTEMPTS:
                break
            attempt += 1
            try:
                return self._attempt(method, url, headers or {}, min(self.request_timeout_s,
                                                                      remaining))
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

    def _attempt(self, method: str, url: str, headers: dict[str, str], timeout_s: float) -> Reply:
        """One exchange, ended at `timeout_s` of wall-clock time whatever the server does."""
        box: dict[str, Any] = {}
        done = threading.Event()
        cancelled = threading.Event()

        def exchange() -> None:
            try:
                box["reply"] = self._exchange(method, url, headers, timeout_s, box, cancelled)
            except BaseException as e:  # handed to the caller's thread
                box["error"] = e
            finally:
                done.set()

        worker = threading.Thread(target=exchange, daemon=True, name=f"http {url}")
        worker.start()
        if not done.wait(timeout_s):
            cancelled.set()
            _shut(box.get("response"))
            raise _Transient(f"no answer within {timeout_s:.3g} s (the answer was still "
                             f"arriving)")
        if "error" in box:
            raise box["error"]
        return box["reply"]

    def _exchange(self, method: str, url: str, headers: dict[str, str], timeout_s: float,
                  box: dict[str, Any], cancelled: threading.Event) -> Reply:
        import requests

        started = time.monotonic()
        try:
            with self.session.request(method, url, headers=headers, timeout=timeout_s,
                                      stream=True, allow_redirects=False) as resp:
                box["response"] = resp
                body = bytearray()
                for chunk in resp.iter_content(65536):
                    body += chunk
                    if len(body) > MAX_BODY_BYTES:
                        raise ServiceError(f"{self.source}: {method} {url}: answer larger than "
                                           f"{MAX_BODY_BYTES} bytes")
                    if cancelled.is_set() or time.monotonic() - started > timeout_s:
                        raise _Transient(f"answer took longer than {timeout_s:.3g} s")
                status, reply_headers = resp.status_code, dict(resp.headers)
        except requests.exceptions.Timeout:
            raise _Transient(f"no answer within {timeout_s:.3g} s") from None
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as e:
            raise _Transient(f"connection failed: {_reason(e)}") from None
        except requests.exceptions.RequestException as e:
            raise ServiceError(f"{self.source}: {method} {url}: {_reason(e)}") from None
        if status == 429 or 500 <= status <= 599:
            raise _Transient(f"HTTP {status}", _retry_after_s(reply_headers.get("Retry-After")),
                             answered=True)
        log.debug("%s: %s %s: HTTP %d, %d bytes", self.source, method, url, status, len(body))
        return Reply(status, bytes(body), reply_headers)


def _shut(response: Any) -> None:
    """Shut down the socket under a response still being read, so its reader wakes now."""
    conn = getattr(getattr(response, "raw", None), "_connection", None)
    sock = getattr(conn, "sock", None)
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _backoff_s(attempt: int) -> float:
    """Exponential with jitter in [1/2, 1] of the step, so a fleet does not retry in step."""
    step = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * (2 ** (attempt - 1)))
    return step * random.uniform(0.5, 1.0)


def _retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds (RFC 9110: delay-seconds or an HTTP-date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _reason(error: BaseException) -> str:
    """The innermost useful text of a requests/urllib3 exception chain, short."""
    text = str(error)
    for marker in ("Caused by ", "Connection broken: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text.strip("()'\" ")[:200] or type(error).__name__
