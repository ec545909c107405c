"""providers/http.py against sim/httpserve.py: real HTTP on loopback, faults injected by the
server, small timeouts so that every bounded retry finishes in about a second."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from guest import PROJECT_DIR

from fsm.errors import ServiceError
from providers.http import HttpClient, _backoff_s, _retry_after_s
from sim.httpserve import Answer, Faults, HttpServer, normalise_path

BODY = b"x" * 5000


def hello(request) -> Answer:
    if request.path == "/missing":
        return Answer(404, b"not here\n")
    return Answer(200, BODY)


def serve(**faults) -> HttpServer:
    return HttpServer(hello, Faults(faults))


def client(timeout_s: float = 2.0, budget_s: float = 5.0) -> HttpClient:
    # Generous by default: a loaded CI box must never turn a good answer into a timeout.
    # Tests of the timeouts themselves pass small values and assert loose upper bounds.
    return HttpClient("test", timeout_s, budget_s)


def test_answer_and_statuses_the_caller_handles_are_not_retried():
    with serve() as server, client() as c:
        assert c.request("GET", server.url + "/doc").body == BODY
        assert c.request("GET", server.url + "/missing").status == 404
    assert [status for _, _, status in server.log] == [200, 404]


def test_server_is_ready_when_constructed():
    server = serve()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=1) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert sock.recv(12) == b"HTTP/1.1 200"
    finally:
        server.close()


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_transient_statuses_are_retried_until_the_service_recovers(status):
    with serve(status=status, times=2, retry_after=0) as server, client() as c:
        assert c.request("GET", server.url + "/doc").body == BODY
    assert [s for _, _, s in server.log] == [status, status, 200]


def test_flapping_service_is_retried():
    with serve(status=503, flap=True) as server, client() as c:
        assert c.request("GET", server.url + "/doc").status == 200
    assert [s for _, _, s in server.log] == [503, 200]


def test_a_service_that_keeps_failing_gives_a_bounded_service_error():
    started = time.monotonic()
    with serve(status=500) as server, client(budget_s=3) as c:
        with pytest.raises(ServiceError) as err:
            c.request("GET", server.url + "/doc")
    elapsed = time.monotonic() - started
    assert elapsed < 15
    assert "test: GET " + server.url + "/doc" in str(err.value)
    assert "HTTP 500" in str(err.value) and "3 s fetch budget" in str(err.value)
    assert len(server.log) >= 2  # retried, with backoff, but not forever
    # It answered every time: say so, not "no answer" (issue 13).
    assert "no answer" not in str(err.value)
    n = len(server.log)
    assert f"the service answered with an error to {n} of {n} attempt(s)" in str(err.value)


def test_retry_after_beyond_the_budget_fails_at_once():
    started = time.monotonic()
    with serve(status=429, retry_after=30) as server, client(budget_s=2) as c:
        with pytest.raises(ServiceError, match="retry after 30 s, beyond the 2 s budget"):
            c.request("GET", server.url + "/doc")
    assert time.monotonic() - started < 15   # at once, not after 30 s; slack for load
    assert len(server.log) == 1


def test_retry_after_is_honoured():
    started = time.monotonic()
    with serve(status=429, retry_after=1, times=1) as server, client(budget_s=3) as c:
        assert c.request("GET", server.url + "/doc").status == 200
    assert time.monotonic() - started >= 1.0


def test_slow_answers_time_out_then_the_budget_ends_it():
    started = time.monotonic()
    with serve(delay_s=5) as server, client(timeout_s=0.2, budget_s=1) as c:
        with pytest.raises(ServiceError, match=r"no answer within the 1 s fetch budget .*no answer within 0\.\d+ s"):
            c.request("GET", server.url + "/doc")
    assert time.monotonic() - started < 20   # ~1 s; slack for a loaded CI box


def test_one_slow_answer_is_retried():
    with serve(delay_s=5, times=1) as server, client(timeout_s=1, budget_s=10) as c:
        assert c.request("GET", server.url + "/doc").body == BODY


def test_reset_mid_body_is_retried_and_never_returns_half_a_body():
    with serve(reset=True, times=1) as server, client() as c:
        assert c.request("GET", server.url + "/doc").body == BODY
    with serve(reset=True) as server, client(budget_s=3) as c:
        with pytest.raises(ServiceError, match="connection failed"):
            c.request("GET", server.url + "/doc")


def test_nothing_listening_is_a_bounded_service_error():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with client(budget_s=3) as c, pytest.raises(ServiceError, match="connection failed"):
        c.request("GET", f"http://127.0.0.1:{port}/doc")


def test_proxies_from_the_environment_are_ignored(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with serve() as server, client() as c:
        assert c.request("GET", server.url + "/doc").status == 200


def test_backoff_grows_with_jitter_and_is_capped():
    assert all(0.025 <= _backoff_s(1) <= 0.05 for _ in range(50))
    assert all(0.2 <= _backoff_s(4) <= 0.4 for _ in range(50))
    assert _backoff_s(40) <= 5.0
    assert len({_backoff_s(3) for _ in range(20)}) > 1


def test_retry_after_forms():
    assert _retry_after_s("3") == 3.0
    assert _retry_after_s(None) is None and _retry_after_s("soon") is None
    assert _retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 100))
    assert 95 <= _retry_after_s(future) <= 100


def test_unknown_emulator_options_are_refused():
    with pytest.raises(ValueError, match=r"unknown _emulator option\(s\) stauts"):
        Faults.from_metadata({"_emulator": {"stauts": 500}})
    assert Faults.from_metadata({"_emulator": {"mine": 1}}, frozenset({"mine"})).active is False


def test_paths_are_normalised():
    assert normalise_path("//latest//meta-data/") == ("/latest/meta-data", True)
    assert normalise_path("/latest/meta-data?x=1") == ("/latest/meta-data", False)
    assert normalise_path("/") == ("/", False)


def test_requests_is_not_imported_by_the_providers_at_start_up():
    code = ("import sys; import providers.registry, fsm.gather; "
            "print('requests' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=PROJECT_DIR, check=True).stdout
    assert out.strip() == "False"


def test_a_drip_feeding_server_is_cut_at_the_wall_clock_deadline():
    """One byte every 0.2 s satisfies every socket read: before, a request lasted as long
    as the server liked (the budget was checked only between 64 KiB chunks)."""
    started = time.monotonic()
    with serve(drip_s=0.2) as server, client(timeout_s=0.5, budget_s=2) as c:
        with pytest.raises(ServiceError, match=r"fetch budget .* no answer within 0\.\d+ s "
                                               r"\(the answer was still arriving\)"):
            c.request("GET", server.url + "/doc")
    assert time.monotonic() - started < 30   # unbounded before; ~2 s now, slack for load
