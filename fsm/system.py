"""The one system layer: every command the agent runs and every file it writes goes here.

Everything is resolved under an alternate root (`--root DIR`, like `pkg -R`), so the agent
runs unchanged against a simulated guest. Commands run without a shell, with a clean
environment and a timeout; writes are atomic and durable (temp file in the same directory,
fsync, rename, fsync of the directory, which a boot defers to its next step) and never
follow a symbolic link under the root, so
a link planted at `/root/.ssh` cannot redirect a write. In dry-run mode (`metadata plan`)
commands that change the guest and file writes are recorded instead of performed.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading

from fsm import crashpoints, spawn
from fsm.errors import CommandError

# The read path is fsm/guestfiles.py's (status reads through it without this module).
from fsm.guestfiles import MAX_READ_BYTES, GuestFiles, UnsafePathError, _split  # noqa: F401
from fsm.record import record

log = logging.getLogger(__name__)

CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", "LC_ALL": "C"}
DEFAULT_COMMAND_TIMEOUT_S = 30.0
# A read of a disk's first sectors (DETECT looks for seed archives on every disk).
DEVICE_READ_TIMEOUT_S = 5.0


@record(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def _subprocess_run(command: list[str], env: dict[str, str], timeout: float,
                    stdin: str | None, cwd: str) -> tuple[int, str, str]:
    """subprocess.run, where fsm/spawn.py cannot be used (another working directory: the
    system layer inside another program, as the tests and `metadata plan` use it)."""
    import subprocess

    try:
        proc = subprocess.run(
            command, input=stdin, capture_output=True, text=True, errors="replace", env=env,
            timeout=timeout, cwd=cwd, stdin=None if stdin is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        raise spawn.SpawnTimeout(err) from None
    return proc.returncode, proc.stdout, proc.stderr


class System(GuestFiles):
    """Runs commands and touches files of one guest, rooted at `root` (its reads: GuestFiles)."""

    def __init__(self, root: str = "/", command_timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S,
                 dry_run: bool = False):
        self.root = os.path.abspath(root)
        self.command_timeout_s = command_timeout_s
        self.dry_run = dry_run
        self.planned: list[str] = []
        # Directories a rename went into whose fsync waits for `sync_directories`; None:
        # each write fsyncs its directory before it returns (see `defer_directory_syncs`).
        self._unsynced_dirs: dict[str, None] | None = None

    def read_head(self, guest_path: str, size: int, timeout_s: float | None = None) -> bytes:
        """The first `size` bytes of a raw disk, within `timeout_s` (DEVICE_READ_TIMEOUT_S).

        Device nodes are links into /devices on illumos, so this one read follows links.
        The read runs in a worker thread: a wedged disk (or a FIFO) leaves that thread
        blocked, not the boot; past the bound it raises OSError(ETIMEDOUT)."""
        path = self.path(guest_path)
        timeout = DEVICE_READ_TIMEOUT_S if timeout_s is None else timeout_s
        box: dict[str, object] = {}

        def read() -> None:
            try:
                with open(path, "rb") as f:
                    box["data"] = f.read(size)
            except BaseException as e:  # handed to the caller's thread
                box["error"] = e

        worker = threading.Thread(target=read, name=f"read {guest_path}", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise OSError(errno.ETIMEDOUT, f"no data within {timeout:g} s (a wedged device?)",
                          guest_path)
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        return box["data"]  # type: ignore[return-value]

    def read_text(self, guest_path: str, default: str | None = None,
                  limit: int | None = None) -> str:
        try:
            return self.read_bytes(guest_path, limit).decode("utf-8", errors="replace")
        except (FileNotFoundError, NotADirectoryError):
            if default is None:
                raise
            return default

    def stat(self, guest_path: str) -> os.stat_result:
        return os.lstat(self.path(guest_path))

    # ---- commands ----------------------------------------------------------------------
    def run(self, argv: list[str], timeout_s: float | None = None, check: bool = True,
            stdin: str | None = None, env: dict[str, str] | None = None) -> CommandResult:
        """Run a command that only reads the guest's state (always run, even in a plan).

        `env` adds variables to the clean environment, for the few commands whose
        behaviour depends on one (format's in-use check reads NOINUSE_CHECK)."""
        return self._execute(argv, timeout_s, check, stdin, env)

    def apply(self, argv: list[str], timeout_s: float | None = None, check: bool = True,
              stdin: str | None = None, env: dict[str, str] | None = None) -> CommandResult:
        """Run a command that changes the guest; a plan records it instead."""
        if self.dry_run:
            extra = " ".join(f"{k}={v}" for k, v in sorted((env or {}).items()))
            self.planned.append("run: " + " ".join(argv) + (f" (with {extra})" if extra else ""))
            return CommandResult(tuple(argv), 0, "", "")
        return self._execute(argv, timeout_s, check, stdin, env)

    def _execute(self, argv: list[str], timeout_s: float | None, check: bool,
                 stdin: str | None, env: dict[str, str] | None = None) -> CommandResult:
        if not argv or not argv[0].startswith("/"):
            raise ValueError(f"commands are named by absolute guest path: {argv!r}")
        timeout = self.command_timeout_s if timeout_s is None else timeout_s
        command = [self.path(argv[0]), *argv[1:]]
        environ = {**CLEAN_ENV, **(env or {})}
        log.debug("exec: %s", " ".join(argv))
        try:
            if spawn.usable(self.root):  # `metadata run`: fsm/spawn.py says why
                code, out, err = spawn.run(command, environ, timeout, stdin)
            else:
                code, out, err = _subprocess_run(command, environ, timeout, stdin, self.root)
        except spawn.SpawnTimeout as e:
            raise CommandError(argv, None, e.stderr, f"timed out after {timeout:g} s") from None
        except OSError as e:
            raise CommandError(argv, None, "", f"could not start: {e.strerror}") from None
        result = CommandResult(tuple(argv), code, out, err)
        if check and code != 0:
            raise CommandError(argv, code, err)
        return result

    # ---- writes ------------------------------------------------------------------------
    def write_file(self, guest_path: str, data: bytes | str, mode: int = 0o644,
                   owner: tuple[int, int] = (0, 0), keep_previous: str | None = None) -> None:
        """Replace a file atomically and durably, never following a link under the root.

        With `keep_previous`, the file being replaced is first hard-linked to
        `<path><keep_previous>`, so the previous generation survives (the checkpoint uses it).
        """
        if isinstance(data, str):
            data = data.encode("utf-8")
        if self.dry_run:
            self.planned.append(f"write: {guest_path} ({len(data)} bytes, mode {mode:04o})")
            return
        try:
            self._write_file(guest_path, data, mode, owner, keep_previous)
        except UnsafePathError:
            raise
        except OSError as e:  # name the file the guest refused, not our temp file
            raise OSError(e.errno, f"cannot write {guest_path}: {e.strerror}") from None

    def _write_file(self, guest_path: str, data: bytes, mode: int, owner: tuple[int, int],
                    keep_previous: str | None) -> None:
        parent, name = _split(guest_path)
        dfd = self._open_dir(parent, create=True)
        try:
            _remove_stale_temps(dfd, name)
            tmp = f".{name}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode,
                         dir_fd=dfd)
            try:
                view = memoryview(data)
                half = len(view) // 2
                while len(view) > len(data) - half:
                    view = view[os.write(fd, view[: len(view) - (len(data) - half)]):]
                crashpoints.reached(f"write-mid:{guest_path}")
                while view:
                    view = view[os.write(fd, view):]
                os.fchmod(fd, mode)
                _chown(fd, owner)
                os.fsync(fd)
            except BaseException:
                os.close(fd)
                os.unlink(tmp, dir_fd=dfd)
                raise
            os.close(fd)
            try:
                if keep_previous and _exists_at(dfd, name):
                    link_tmp = f"{tmp}.prev"
                    os.link(name, link_tmp, src_dir_fd=dfd, dst_dir_fd=dfd,
                            follow_symlinks=False)
                    try:
                        os.replace(link_tmp, name + keep_previous, src_dir_fd=dfd,
                                   dst_dir_fd=dfd)
                    except BaseException:
                        _unlink_quietly(dfd, link_tmp)
                        raise
                crashpoints.reached(f"write-rename:{guest_path}")
                os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            except BaseException:
                _unlink_quietly(dfd, tmp)
                raise
            if self._unsynced_dirs is None:
                os.fsync(dfd)
            else:
                self._unsynced_dirs[parent] = None
        finally:
            os.close(dfd)

    def defer_directory_syncs(self) -> None:
        """From now on a write's rename is made durable at the next `sync_directories`,
        not before the write returns: the boot machine calls that before every step runs
        and when it ends, so no change to the guest starts before what was written ahead
        of it is durable, and several writes into one directory (a step's record, the
        next transition, the next step's intent, all in /var/metadata) share one fsync.

        A write's data is still fsynced before its rename, so a power cut leaves each file
        whole, old or new, never torn (tests/test_power_loss.py): what waits is only
        which of the two the directory holds. On the simulated guest a first boot made
        about 130 fsyncs, which cost the agent 17 ms of CPU (the file system's journal
        commits), more than half a bare interpreter's start (issue 17)."""
        if self._unsynced_dirs is None:
            self._unsynced_dirs = {}

    def sync_directories(self, stop_deferring: bool = False) -> None:
        """fsync every directory a deferred write renamed into; the first error is raised
        once all were tried. With `stop_deferring`, later writes sync as they go."""
        pending = self._unsynced_dirs or {}
        self._unsynced_dirs = None if stop_deferring else {}
        first: OSError | None = None
        for parent in pending:
            try:
                dfd = self._open_dir(parent, create=False)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
            except OSError as e:
                first = first or OSError(e.errno, f"cannot make {parent} durable: {e.strerror}")
        if first is not None:
            raise first

    def ensure_dir(self, guest_path: str, mode: int = 0o755, owner: tuple[int, int] = (0, 0),
                   scratch: bool = False) -> bool:
        """Make a directory (and its parents) with this mode; True when anything changed.

        A symbolic link at any component is refused rather than followed. A `scratch`
        directory (a transient mount point for reading metadata) is made even in a plan,
        since the plan must read the metadata too.
        """
        if self.dry_run and not scratch:
            if not os.path.isdir(self.path(guest_path)):
                self.planned.append(f"mkdir: {guest_path} (mode {mode:04o})")
                return True
            return False
        existed = os.path.isdir(self.path(guest_path)) and not os.path.islink(self.path(guest_path))
        fd = self._open_dir(guest_path, create=True, mode=mode)
        try:
            st = os.fstat(fd)
            changed = not existed
            if st.st_mode & 0o7777 != mode:
                os.fchmod(fd, mode)
                changed = True
            if os.geteuid() == 0 and (st.st_uid, st.st_gid) != owner:
                os.fchown(fd, *owner)
                changed = True
            return changed
        finally:
            os.close(fd)

    def move_aside(self, guest_path: str, new_guest_path: str) -> None:
        """Rename a file (e.g. a damaged checkpoint) within the root, durably."""
        if self.dry_run:
            self.planned.append(f"rename: {guest_path} -> {new_guest_path}")
            return
        os.replace(self.path(guest_path), self.path(new_guest_path))
        parent = os.path.dirname(self.path(new_guest_path))
        dfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def remove(self, guest_path: str) -> None:
        if self.dry_run:
            self.planned.append(f"remove: {guest_path}")
            return
        try:
            os.unlink(self.path(guest_path))
        except FileNotFoundError:
            pass

def _remove_stale_temps(dfd: int, name: str) -> None:
    """Delete temp files an earlier write of `name` left when its process was killed.

    A SIGKILL or power cut between creating the temp file and renaming it leaves
    `.NAME.tmp-PID-HEX` (or its `.prev` link) behind: never read, but a half-written
    file an operator could mistake for something. Only temps of a process that no
    longer runs are removed (the agent's lock already excludes a second agent), only
    regular files, never through a link.
    """
    prefix = f".{name}.tmp-"
    for entry in os.listdir(dfd):
        if not entry.startswith(prefix):
            continue
        pid = entry[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or (int(pid) != os.getpid() and _process_exists(int(pid))):
            continue
        try:
            st = os.stat(entry, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode):
            _unlink_quietly(dfd, entry)
            log.debug("removed %s, left by an interrupted write", entry)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _unlink_quietly(dfd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dfd)
    except OSError:
        pass


def _exists_at(dfd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dfd, follow_symlinks=False)
        return True
    except FileNotFoundError:
        return False


def _chown(fd: int, owner: tuple[int, int]) -> None:
    # Only root can give a file away; an unprivileged test run keeps its own ownership.
    if os.geteuid() == 0:
        os.fchown(fd, *owner)
