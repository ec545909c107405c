"""A misbehaving metadata service, seen by the whole agent (`metadata run`, a real process).

The providers' own tests (test_http.py, test_digitalocean.py, test_ec2.py,
test_smartos_protocol.py, test_smartos_provider.py) prove the client's retry rules request by
request. What only a whole agent can show is checked here: each fault ends in a bounded time
(the `[timeouts]` of /etc/metadata-agent.toml: `http` per request, `fetch` for the whole
FETCH phase), says what happened in one clear log line without a traceback, stops the
machine at FETCH with SMF's exit code 95, and the next start walks FETCH again, reaching
DONE once the service answers. Transient faults (flapping, 429 with Retry-After, a reset
mid-body, line noise, a V1-only host) are absorbed and the boot completes.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from guest import Guest, make_guest

from sim import guest as sim_guest
from sim.serve import serving, write_endpoint

# Short budgets keep each failing start to a few seconds; the bound asserted adds the
# agent's own start-up (a Python process and a few stand-ins) to the fetch budget.
# Timeouts small enough to keep the suite quick, large enough that a loaded 2-core CI box
# never decides a test: a request gets 2 s, and the bound on a whole start is generous.
HTTP_TIMEOUTS = "[timeouts]\nhttp = 2\nfetch = 5\n"
FETCH_BUDGET_S = 5.0
START_SLACK_S = 30.0
# DigitalOcean without its config drive: the agent must use the HTTP service.
NO_DRIVE = {"config_drive": False}


def do_guest(tmp_path, **faults: Any) -> Guest:
    guest = make_guest(tmp_path, "digitalocean", {"_emulator": {**NO_DRIVE, **faults}})
    guest.write("/etc/metadata-agent.toml", HTTP_TIMEOUTS)
    return guest


def set_faults(guest: Guest, **faults: Any) -> None:
    """The emulator's fault options for the next `serving` (the next start)."""
    metadata = sim_guest.load_metadata(guest.root)
    metadata["_emulator"] = {**NO_DRIVE, **faults}
    sim_guest.save_metadata(guest.root, metadata)


def timed_run(guest: Guest) -> tuple[int, str, float]:
    started = time.monotonic()
    result = guest.run()
    took_s = time.monotonic() - started
    return result.returncode, result.stdout + result.stderr, took_s


def stopped_in_fetch(code: int, out: str, took_s: float) -> None:
    assert code == 95, out[-3000:]
    assert "Traceback" not in out
    assert "stopped in FETCH (exit 95); the next start resumes there" in out
    assert "-> NETWORK" not in out
    assert took_s < FETCH_BUDGET_S + START_SLACK_S, f"took {took_s:.1f} s"


def reached_done(code: int, out: str) -> None:
    assert code == 0, out[-3000:]
    assert "Traceback" not in out
    assert "USERSCRIPT -> DONE" in out


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- HTTP (DigitalOcean's service) ------------------------------------------------------

def test_service_down_is_bounded_and_fetch_is_retried_on_the_next_start(tmp_path):
    guest = do_guest(tmp_path)
    write_endpoint(guest.root, {"digitalocean": {"endpoint": f"http://127.0.0.1:{closed_port()}"}})
    code, out, took_s = timed_run(guest)
    stopped_in_fetch(code, out, took_s)
    assert "digitalocean: GET http://127.0.0.1:" in out
    assert f"no answer within the {FETCH_BUDGET_S:g} s fetch budget" in out
    assert "last: connection failed" in out
    assert guest.checkpoint().phase == "FETCH"
    assert guest.state()["hostname"] == "unknown"   # nothing configured from no metadata

    # The service comes up: the next start resumes this boot at FETCH and completes it.
    with serving(guest.root) as server:
        code, out, _ = timed_run(guest)
        asked = server.server.received
    reached_done(code, out)
    assert "resuming boot 1, stopped in FETCH" in out
    assert asked >= 1
    assert guest.checkpoint().boot == 1 and guest.checkpoint().phase == "DONE"
    assert guest.state()["hostname"] == "droplet-sim-01"


def test_slow_service_times_out_per_request_within_the_fetch_budget(tmp_path):
    guest = do_guest(tmp_path, delay_s=5)
    with serving(guest.root):
        code, out, took_s = timed_run(guest)
    stopped_in_fetch(code, out, took_s)
    assert "no answer within 2 s" in out
    assert f"within the {FETCH_BUDGET_S:g} s fetch budget" in out


def test_persistent_5xx_is_bounded_and_each_start_asks_again(tmp_path):
    guest = do_guest(tmp_path, status=503)
    for start in (1, 2):
        with serving(guest.root) as server:
            code, out, took_s = timed_run(guest)
            asked = server.server.received
        stopped_in_fetch(code, out, took_s)
        assert "last: HTTP 503" in out
        assert asked >= 2   # retried within the budget, on each start
        if start == 2:
            assert "resuming boot 1, stopped in FETCH" in out
    assert guest.checkpoint().boot == 1


def test_reset_mid_body_every_time_is_bounded_and_never_half_read(tmp_path):
    guest = do_guest(tmp_path, reset=True)
    with serving(guest.root):
        code, out, took_s = timed_run(guest)
    stopped_in_fetch(code, out, took_s)
    assert "last: connection failed" in out
    assert "not valid JSON" not in out   # half a body is never parsed


def test_flapping_service_is_absorbed_and_the_boot_completes(tmp_path):
    """Every other request fails (503, then a reset mid-body): the retries ride it out."""
    guest = do_guest(tmp_path, status=503, flap=True)
    with serving(guest.root) as server:
        code, out, _ = timed_run(guest)
        log = list(server.server.log)
    reached_done(code, out)
    assert "digitalocean: GET" in out and "HTTP 503; retrying in" in out
    assert [status for _, _, status in log][:2] == [503, 200]
    assert guest.state()["hostname"] == "droplet-sim-01"


def test_429_with_retry_after_is_honoured_then_the_boot_completes(tmp_path):
    guest = do_guest(tmp_path, status=429, retry_after=1, times=1)
    with serving(guest.root):
        code, out, _ = timed_run(guest)
    reached_done(code, out)
    waited = [ln for ln in out.splitlines() if "HTTP 429; retrying in" in ln]
    assert waited, out[-3000:]
    assert float(waited[0].split("retrying in ")[1].split(" s")[0]) >= 1.0


def test_a_reset_mid_body_once_is_retried_and_the_boot_completes(tmp_path):
    guest = do_guest(tmp_path, reset=True, times=1)
    with serving(guest.root):
        code, out, _ = timed_run(guest)
    reached_done(code, out)
    assert "connection failed" in out and "retrying in" in out


def test_ec2_v1_only_service_boots_without_tokens(tmp_path):
    guest = make_guest(tmp_path, "ec2", {"_emulator": {"imds": "v1-only"}})
    with serving(guest.root) as server:
        code, out, _ = timed_run(guest)
        log = list(server.server.log)
    reached_done(code, out)
    assert ("PUT", "/latest/api/token", 404) in log
    assert guest.state()["hostname"] == "ip-10-0-1-23"


# ---- serial (SmartOS) -------------------------------------------------------------------

SERIAL_TIMEOUTS = "[timeouts]\nserial = 0.2\nfetch = 2\n"


def test_silent_serial_host_is_bounded_and_fetch_is_retried_on_the_next_start(tmp_path):
    guest = make_guest(tmp_path, "smartos", {"_emulator": {"silent": True}})
    guest.write("/etc/metadata-agent.toml", SERIAL_TIMEOUTS)
    with serving(guest.root) as server:
        code, out, took_s = timed_run(guest)
        first_lines = server.lines_received
    stopped_in_fetch(code, out, took_s)
    assert "smartos: metadata service unreachable" in out
    assert first_lines >= 1

    metadata = sim_guest.load_metadata(guest.root)
    del metadata["_emulator"]
    sim_guest.save_metadata(guest.root, metadata)
    with serving(guest.root):
        code, out, _ = timed_run(guest)
    reached_done(code, out)
    assert "resuming boot 1, stopped in FETCH" in out
    assert guest.checkpoint().instance_id == metadata["sdc:uuid"]


def test_serial_line_noise_and_a_v1_only_host_are_absorbed(tmp_path):
    guest = make_guest(tmp_path, "smartos", {"_emulator": {"noise": 3, "v1_only": True}})
    with serving(guest.root) as server:
        code, out, _ = timed_run(guest)
        asked = list(server.requests)
    reached_done(code, out)
    assert "the host refused NEGOTIATE V2; using protocol V1" in out
    assert asked and all(not r.startswith(("KEYS", "PUT")) for r in asked)
    assert guest.state()["hostname"] == sim_guest.load_metadata(guest.root)["sdc:hostname"]
