"""Run one command and capture what it prints: posix_spawn(3C) and one poll loop.

Why not `subprocess.run`: a first boot runs 40 to 60 commands, and each `subprocess.run`
costs the agent about 0.30 ms of CPU (user and system, measured over 300 runs). That goes
on Popen's bookkeeping, a text wrapper for each pipe, and a sleeping poll for the exit.
This costs about 0.16 ms. Over a first boot that is 6 to 8 ms, a quarter of a bare
interpreter's start (issue 17). A boot that never imports `subprocess` also skips its
import, and that of `selectors`: about 19 M instructions against the bare start's 89 M.
fsm/system.py still uses `subprocess.run` when this does not apply (see `usable`).

What it keeps of `subprocess.run(argv, capture_output=True, text=True, errors="replace",
timeout=T, env=E, cwd=ROOT)`, which the system layer used before:
- stdin is /dev/null, or a pipe fed `stdin` while the output is read, so a large input
  cannot deadlock against a full output pipe;
- stdout and stderr are decoded as subprocess decodes them: the locale's encoding,
  errors replaced, universal newlines;
- SIGPIPE and SIGXFSZ go back to their defaults in the child (subprocess's
  restore_signals), since the interpreter ignores them and exec would keep that;
- no other descriptor reaches the child (close_fds): the agent's own are close-on-exec
  (PEP 446), and any it inherited open for exec are closed in the child, as listed by
  /proc/self/fd (Linux and illumos alike; without it, subprocess.run is used);
- on the timeout, and on any exception (SIGTERM's SystemExit included), the child is
  killed and reaped before this returns or raises, so no command outlives its wait;
- the working directory is the guest root. posix_spawn cannot change directory, so this
  runs only when the agent's own working directory already is the root (`metadata run`
  changes to it at start).
"""

from __future__ import annotations

import locale
import os
import select
import time

# The C module signal.py wraps, loaded at every interpreter's start: signal.py would add
# its IntEnum classes, 3.6 M instructions, for three constants (issue 17).
from _signal import SIGKILL, SIGPIPE, SIGXFSZ

# As Popen waits for a child that closed its output but has not exited: a short sleep,
# doubled each time, capped.
FIRST_WAIT_S, MAX_WAIT_S = 0.0005, 0.05
READ_CHUNK = 32768
FD_DIR = "/proc/self/fd"


class SpawnTimeout(Exception):
    """The command ran past its timeout: it was killed and reaped; its stderr so far."""

    def __init__(self, stderr: str) -> None:
        super().__init__("timed out")
        self.stderr = stderr


def usable(root: str) -> bool:
    """Whether `run` can stand in for subprocess.run here: the child must start in the
    guest root, and 0, 1 and 2 must be open (else a pipe could take one of their numbers,
    and dup2 onto itself would leave it close-on-exec)."""
    try:
        if (os.getcwd() != root or not os.path.isdir(FD_DIR)
                or not hasattr(os, "posix_spawn")):  # a Python built without it
            return False
        for fd in (0, 1, 2):
            os.fstat(fd)
    except OSError:
        return False
    return True


def _inherited() -> list[int]:
    """Descriptors above 2 that exec would pass on: the child closes them."""
    fds = []
    for name in os.listdir(FD_DIR):
        fd = int(name)
        if fd > 2:
            try:
                if os.get_inheritable(fd):
                    fds.append(fd)
            except OSError:
                pass  # the directory listdir itself had open
    return fds


def run(argv: list[str], env: dict[str, str], timeout_s: float,
        stdin: str | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `argv` (argv[0] a path); OSError when it cannot
    start; SpawnTimeout past `timeout_s`. A negative code is the signal that ended it."""
    deadline = time.monotonic() + timeout_s
    encoding = locale.getpreferredencoding(False)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    in_w = None
    try:
        if stdin is None:
            in_r = os.open(os.devnull, os.O_RDONLY)
        else:
            in_r, in_w = os.pipe()
        try:
            pid = os.posix_spawn(argv[0], argv, env, file_actions=[
                (os.POSIX_SPAWN_DUP2, in_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1),
                (os.POSIX_SPAWN_DUP2, err_w, 2),
                *((os.POSIX_SPAWN_CLOSE, fd) for fd in _inherited())],
                setsigdef=(SIGPIPE, SIGXFSZ))
        finally:
            for fd in (in_r, out_w, err_w):
                os.close(fd)
            out_w = err_w = -1
    except BaseException:
        for fd in (out_r, err_r, in_w, out_w, err_w):
            if fd is not None and fd >= 0:
                os.close(fd)
        raise
    try:
        out, err = _communicate(out_r, err_r, in_w, stdin, encoding, deadline)
        code = _reap(pid, deadline)
    except _Expired as e:
        _kill(pid)
        raise SpawnTimeout(_text(e.err, encoding)) from None
    except BaseException:
        _kill(pid)  # not reaped yet: `_reap` raises only from its sleep
        raise
    if code is None:
        _kill(pid)
        raise SpawnTimeout(_text(err, encoding))
    return code, _text(out, encoding), _text(err, encoding)


def _communicate(out_r: int, err_r: int, in_w: int | None, stdin: str | None,
                 encoding: str, deadline: float) -> tuple[list[bytes], list[bytes]]:
    """Read both pipes to their end (and feed stdin); the chunks read, or _Expired at the
    deadline. Closes the three descriptors whatever happens."""
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    poller = select.poll()
    for fd in chunks:
        poller.register(fd, select.POLLIN)
    pending = memoryview((stdin or "").encode(encoding))
    if in_w is not None:
        if pending:
            os.set_blocking(in_w, False)
            poller.register(in_w, select.POLLOUT)
        else:
            os.close(in_w)
            in_w = None
    open_fds = {out_r, err_r} | ({in_w} if in_w is not None else set())
    try:
        while out_r in open_fds or err_r in open_fds:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Expired(chunks[err_r])
            for fd, _event in poller.poll(remaining * 1000):
                if fd == in_w:
                    try:
                        pending = pending[os.write(in_w, pending[:select.PIPE_BUF]):]
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:  # it stopped reading: as subprocess, go on
                        pending = pending[:0]
                    if not pending:
                        poller.unregister(in_w)
                        os.close(in_w)
                        open_fds.discard(in_w)
                    continue
                data = os.read(fd, READ_CHUNK)
                if data:
                    chunks[fd].append(data)
                else:
                    poller.unregister(fd)
                    os.close(fd)
                    open_fds.discard(fd)
    finally:
        for fd in open_fds:
            os.close(fd)
    return chunks[out_r], chunks[err_r]


class _Expired(Exception):
    """The deadline passed while the pipes were still open; stderr read so far."""

    def __init__(self, err: list[bytes]) -> None:
        super().__init__("expired")
        self.err = err


def _reap(pid: int, deadline: float) -> int | None:
    """The exit code once the child exits, or None at the deadline (it is still running)."""
    pause = FIRST_WAIT_S
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, MAX_WAIT_S)


def _kill(pid: int) -> None:
    """SIGKILL and reap the child, unless it was reaped already."""
    try:
        os.kill(pid, SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _text(chunks: list[bytes], encoding: str) -> str:
    text = b"".join(chunks).decode(encoding, "replace")
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text
