"""providers/httpwire.py: the plain-HTTP exchange, against canned answers on a real socket.

Each answer is sent by a one-connection server on loopback (listening before the client
connects, so nothing waits on timing); the request the client sent is kept for the test.
The retry and deadline rules on top are tests/test_http.py's.
"""

from __future__ import annotations

import socket
import threading

import pytest

from fsm.errors import ServiceError
from providers import httpwire
from providers.http import HttpClient


class Canned:
    """Answers a connection with `answer` (bytes) and closes it; then the next connection
    with the next of `more`, if any."""

    def __init__(self, answer: bytes, family: int = socket.AF_INET, host: str = "127.0.0.1",
                 more: tuple[bytes, ...] = ()):
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.bind((host, 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.answers = [answer, *more]
        self.request = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for answer in self.answers:
            try:
                conn, _ = self.listener.accept()
            except OSError:   # the listener shut down: the test is over
                return
            with conn:
                self.request = b""
                while b"\r\n\r\n" not in self.request:
                    data = conn.recv(65536)
                    if not data:
                        break
                    self.request += data
                conn.sendall(answer)

    def __enter__(self) -> Canned:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None or len(self.answers) > 1:
            self.listener.shutdown(socket.SHUT_RDWR)   # wakes an accept still waiting
        self.thread.join(timeout=30)
        self.listener.close()


def fetch(server: Canned, method: str = "GET", host: str = "127.0.0.1",
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = httpwire.Connection(host, server.port, timeout=30)
    try:
        conn.request(method, "/doc?x=1", headers=headers or {})
        resp = conn.getresponse()
        body = b""
        while True:
            chunk = resp.read(7)   # small reads: chunk and buffer edges are crossed
            if not chunk:
                break
            body += chunk
        return resp.status, dict(resp.getheaders()), body
    finally:
        conn.close()


def test_content_length_body_and_the_request_sent():
    with Canned(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\n"
                b"hello world") as server:
        status, headers, body = fetch(server, headers={"X-Token": "abc"})
    assert (status, body, headers["Content-Type"]) == (200, b"hello world", "text/plain")
    lines = server.request.decode().split("\r\n")
    assert lines[0] == "GET /doc?x=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}" in lines and "X-Token: abc" in lines
    assert "Connection: close" in lines and "Content-Length: 0" not in lines


def test_an_empty_body_by_content_length():
    with Canned(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n") as server:
        assert fetch(server)[::2] == (404, b"")


def test_a_bodiless_put_says_content_length_0_as_http_client_does():
    with Canned(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\ntoken") as server:
        assert fetch(server, "PUT")[2] == b"token"
    assert b"\r\nContent-Length: 0\r\n" in server.request


def test_chunked_body_with_extensions_and_trailers():
    answer = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5;name=x\r\nhello\r\n1\r\n \r\nA\r\nworld, all\r\n0\r\nTrailer: t\r\n\r\n")
    with Canned(answer) as server:
        assert fetch(server)[2] == b"hello world, all"


def test_a_body_framed_by_the_close_of_the_connection():
    with Canned(b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 100) as server:
        assert fetch(server)[2] == b"x" * 100


def test_interim_answers_are_skipped_and_a_204_has_no_body():
    # (The server closes after its answer: a client reading for a 204 body would get b""
    # anyway, so the request asks for a Content-Length the 204 must not be read for.)
    answer = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n"
              b"Content-Length: 5\r\n\r\n")
    with Canned(answer) as server:
        assert fetch(server)[::2] == (204, b"")


@pytest.mark.parametrize("answer, problem", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "cut short"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "cut short"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhixx\r\n0\r\n\r\n",
     "line end"),
    (b"ICY 200 OK\r\n\r\n", "status line"),
    (b"", "before a status line"),
    (b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", "header lines"),
    (b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n", "longer than"),
])
def test_a_malformed_or_cut_answer_is_a_protocol_error(answer, problem):
    with Canned(answer) as server, pytest.raises(httpwire.ProtocolError, match=problem):
        fetch(server)


def test_an_ipv6_literal_is_bracketed_in_the_host_header():
    try:
        server = Canned(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", socket.AF_INET6,
                        "::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with server:
        assert fetch(server, host="::1")[2] == b"ok"
    assert f"Host: [::1]:{server.port}".encode() in server.request


def test_through_the_client_a_cut_body_is_retried_and_never_returned():
    """providers/http.py on top: a protocol error is transient; the next answer is whole."""
    with Canned(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ncut",
                more=(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nwhole",)) as server:
        with HttpClient("test", 30, 60) as client:
            reply = client.request("GET", f"http://127.0.0.1:{server.port}/doc")
    assert (reply.status, reply.body) == (200, b"whole")


def test_through_the_client_a_service_that_keeps_cutting_is_a_service_error():
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ncut"
    with Canned(cut, more=(cut,) * 40) as server:
        # (The last attempt may instead meet the budget's end: either way, no body.)
        with HttpClient("test", 30, 0.3) as client, \
                pytest.raises(ServiceError, match="fetch budget .* last: (connection failed: "
                              "ProtocolError: the body was cut short|no answer within)"):
            client.request("GET", f"http://127.0.0.1:{server.port}/doc")


def test_connect_is_create_connections_loop_without_socket_py():
    """httpwire.connect, on _socket: the first address that answers, with the timeout set
    and close-on-exec; a refused port is the connect's own error, as from
    socket.create_connection."""
    import os

    server = Canned(b"HTTP/1.1 204 No Content\r\n\r\n")
    sock = httpwire.connect(b"127.0.0.1", server.port, 2.5)
    try:
        assert sock.gettimeout() == 2.5 and not os.get_inheritable(sock.fileno())
        assert sock.getpeername() == ("127.0.0.1", server.port)
    finally:
        sock.close()
    spare = socket.socket()
    spare.bind(("127.0.0.1", 0))
    free_port = spare.getsockname()[1]
    spare.close()           # nothing listens there now
    with pytest.raises(ConnectionRefusedError):
        httpwire.connect(b"127.0.0.1", free_port, 2.5)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", free_port), timeout=2.5)


def test_a_timeout_while_reading_is_the_socket_timeout_http_py_catches():
    """A server that accepts and says nothing: the read raises socket.timeout (TimeoutError
    from Python 3.10 on), as makefile's reader would."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        conn = httpwire.Connection("127.0.0.1", listener.getsockname()[1], 0.2)
        conn.request("GET", "/", {})
        with pytest.raises(socket.timeout):
            conn.getresponse()
        conn.close()
    finally:
        listener.close()
