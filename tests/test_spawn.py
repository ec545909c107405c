"""fsm/spawn.py keeps what the system layer relied on from subprocess.run: output, exit
codes, stdin, the timeout, the child's signals and descriptors, and no child left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from guest import fresh_python

from fsm import spawn

ENV = {"PATH": "/usr/bin:/bin", "LANG": "C", "LC_ALL": "C"}
SH = "/bin/sh"


def _sh(script: str, timeout_s: float = 60.0, stdin: str | None = None):
    return spawn.run([SH, "-c", script], ENV, timeout_s, stdin)


@pytest.mark.parametrize("script", [
    "echo out; echo err >&2; exit 3",
    "printf 'a\\r\\nb\\rc'",               # universal newlines, as text=True gives
    "printf '\\377\\376 not utf-8\\n'",    # undecodable bytes replaced, not an exception
    "kill -TERM $$",                       # ended by a signal: a negative code
    "exec 1>&- 2>&-; exit 0",              # closes its output before exiting
    ":",
])
def test_same_result_as_subprocess_run(script):
    ours = _sh(script)
    theirs = subprocess.run([SH, "-c", script], capture_output=True, text=True,
                            errors="replace", env=ENV, timeout=60, stdin=subprocess.DEVNULL)
    assert ours == (theirs.returncode, theirs.stdout, theirs.stderr)


def test_a_large_stdin_is_fed_while_the_output_is_read():
    """Four megabytes through `cat`: more than both pipe buffers, so feeding without reading
    (or the reverse) would deadlock."""
    data = "0123456789abcdef\n" * (4 * 1024 * 1024 // 17)
    code, out, err = spawn.run(["/bin/cat"], ENV, 120.0, data)
    assert (code, err) == (0, "") and out == data
    assert _sh("cat", stdin="") == (0, "", "")
    assert _sh("read line; echo \"got $line\"", stdin="x\n") == (0, "got x\n", "")


def test_stdin_is_dev_null_without_input():
    assert _sh("cat; echo end") == (0, "end\n", "")


def test_a_reader_that_stops_early_does_not_fail_the_writer():
    code, out, _ = _sh("head -c 5", stdin="y" * 1_000_000)
    assert (code, out) == (0, "yyyyy")


def test_timeout_kills_and_reaps_within_its_bound(monkeypatch):
    pids = []
    real = os.posix_spawn
    monkeypatch.setattr(os, "posix_spawn", lambda *a, **k: pids.append(real(*a, **k)) or pids[-1])
    started = time.monotonic()
    with pytest.raises(spawn.SpawnTimeout) as caught:  # 5 s: time for the shell to write
        _sh("echo partial >&2; exec sleep 60", timeout_s=5)
    assert time.monotonic() - started < 30  # generous: a busy machine, never the 60 s
    assert caught.value.stderr == "partial\n"
    with pytest.raises(ProcessLookupError):  # killed and reaped: no zombie left
        os.kill(pids[0], 0)


def test_a_child_that_keeps_running_after_closing_its_output_times_out():
    started = time.monotonic()
    with pytest.raises(spawn.SpawnTimeout):
        _sh("exec >/dev/null 2>&1; sleep 60", timeout_s=0.5)
    assert time.monotonic() - started < 30


def test_an_exception_while_waiting_kills_and_reaps_the_child(monkeypatch):
    """SIGTERM's handler raises SystemExit in the agent (fsm/cli.py): the command it was
    waiting for must not outlive it."""
    pids = []
    real = os.posix_spawn

    def spawned(*args, **kwargs):  # the signal comes once the child exists, however slow
        pids.append(real(*args, **kwargs))
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        return pids[-1]

    monkeypatch.setattr(os, "posix_spawn", spawned)

    def stop(_signum, _frame):
        raise SystemExit(95)

    old = signal.signal(signal.SIGALRM, stop)
    try:
        with pytest.raises(SystemExit):
            _sh("exec sleep 60")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_the_child_gets_default_sigpipe_and_only_its_three_descriptors(tmp_path):
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN  # as in every interpreter
    held = [os.open(tmp_path, os.O_RDONLY) for _ in range(3)]  # the agent's own (PEP 446)
    try:
        code, out, _ = spawn.run(["/bin/cat", "/proc/self/status"], ENV, 60.0)
        ignored = int(next(ln for ln in out.splitlines() if ln.startswith("SigIgn:")).split()[1], 16)
        assert code == 0 and not ignored & (1 << (signal.SIGPIPE - 1))
        code, out, _ = spawn.run(["/bin/ls", "/proc/self/fd"], ENV, 60.0)
        assert code == 0 and set(out.split()) <= {"0", "1", "2", "3"}  # 3: ls's own
    finally:
        for fd in held:
            os.close(fd)


def test_a_command_that_cannot_start_is_an_os_error_and_leaks_nothing():
    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    with pytest.raises(OSError):
        spawn.run(["/nonexistent/command"], ENV, 5.0)
    with pytest.raises(OSError):
        spawn.run(["/nonexistent/command"], ENV, 5.0, "input")
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) == before


def test_usable_only_in_the_guest_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert spawn.usable(str(tmp_path))
    assert not spawn.usable(os.path.dirname(str(tmp_path)))


def test_the_system_layer_runs_through_it_in_a_run(tmp_path):
    """`metadata run` changes to the guest root, so every command goes through spawn and
    subprocess is never imported; elsewhere (this test process) the layer falls back to
    subprocess.run with the same result."""
    from fsm.system import System

    guest = tmp_path / "g"
    (guest / "usr" / "bin").mkdir(parents=True)
    tool = guest / "usr" / "bin" / "where"
    tool.write_text("#!/bin/sh\npwd\necho \"$1\" >&2\nexit 4\n")
    tool.chmod(0o755)
    here = System(str(guest)).run(["/usr/bin/where", "arg"], check=False)
    assert (here.returncode, here.stdout, here.stderr) == (4, f"{guest}\n", "arg\n")
    probe = ("import os, sys\nfrom fsm.system import System\nos.chdir(sys.argv[1])\n"
             "r = System(sys.argv[1]).run(['/usr/bin/where', 'arg'], check=False)\n"
             "print(repr((r.returncode, r.stdout, r.stderr)), 'subprocess' in sys.modules)\n")
    assert fresh_python(probe, str(guest)) == \
        f"{(4, f'{guest}' + chr(10), 'arg' + chr(10))!r} False"
