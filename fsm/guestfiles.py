"""Reading a guest's files: the one read path, in a module that costs nothing to import.

`System` (fsm/system.py) inherits this class and adds commands and writes; `metadata
status` reads the checkpoint, the history and the query record through it alone, without
the system layer's imports (logging, subprocess, threading, records), since status is
what an operator and an image pipeline run again and again (issue 17: ≤ 1.5× a bare
interpreter). Paths resolve under an alternate root (`--root DIR`, like `pkg -R`) and
are never followed through a symbolic link.
"""

from __future__ import annotations

import errno
import os
import stat

from fsm.errors import AgentError

# Any one file the agent reads, unless the caller gives a tighter limit.
MAX_READ_BYTES = 16 << 20


class UnsafePathError(OSError, AgentError):
    """A path would leave the root or pass through a symbolic link where that is refused.

    Also an AgentError, so a step meeting one reports it plainly (exit 95), not as an
    internal error with a traceback."""


class GuestFiles:
    """The files of one guest, rooted at `root`, read only."""

    def __init__(self, root: str = "/"):
        self.root = os.path.abspath(root)

    # ---- paths -------------------------------------------------------------------------
    def path(self, guest_path: str) -> str:
        """Host path of an absolute guest path; `..` may not climb out of the root."""
        if not guest_path.startswith("/"):
            raise UnsafePathError(errno.EINVAL, "guest paths must be absolute", guest_path)
        parts = [p for p in guest_path.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise UnsafePathError(errno.EINVAL, "'..' is not allowed in a guest path", guest_path)
        return os.path.join(self.root, *parts) if parts else self.root

    def exists(self, guest_path: str) -> bool:
        return os.path.exists(self.path(guest_path))

    def is_symlink(self, guest_path: str) -> bool:
        return os.path.islink(self.path(guest_path))

    def listdir(self, guest_path: str) -> list[str]:
        try:
            return sorted(os.listdir(self.path(guest_path)))
        except FileNotFoundError:
            return []

    def lexists(self, guest_path: str) -> bool:
        """Whether anything, a dangling link included, is at the path."""
        return os.path.lexists(self.path(guest_path))

    def read_bytes(self, guest_path: str, limit: int | None = None) -> bytes:
        """Read a regular file: the one read path for every file the agent reads.

        Never blocks and never follows a link: every directory on the way and the file are
        opened with O_NOFOLLOW (a link raises UnsafePathError), the file with O_NONBLOCK so
        a FIFO planted at resolv.conf cannot hang the boot, and fstat must say it is a
        regular file (not a FIFO, device or directory: /dev/zero would read for ever). At
        most `limit` bytes (default MAX_READ_BYTES): a larger file raises EFBIG.
        """
        limit = MAX_READ_BYTES if limit is None else limit
        parent, name = _split(guest_path)
        dfd = self._open_dir(parent, create=False)
        try:
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY,
                             dir_fd=dfd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.EMLINK) and _is_link_at(dfd, name):
                    raise UnsafePathError(errno.ELOOP, "refusing to follow a symbolic link",
                                          guest_path) from None
                raise
        finally:
            os.close(dfd)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EINVAL, "not a regular file; refusing to read it",
                              guest_path)
            if st.st_size > limit:
                raise OSError(errno.EFBIG, f"larger than {limit} bytes", guest_path)
            chunks: list[bytes] = []
            got = 0
            while got <= limit:
                chunk = os.read(fd, min(1 << 20, limit + 1 - got))
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
        finally:
            os.close(fd)
        if got > limit:
            raise OSError(errno.EFBIG, f"larger than {limit} bytes", guest_path)
        return b"".join(chunks)

    def _open_dir(self, guest_path: str, create: bool, mode: int = 0o755) -> int:
        """Open a directory under the root component by component with O_NOFOLLOW."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        walked = ""
        try:
            for part in [p for p in self.path(guest_path)[len(self.root):].split("/") if p]:
                walked += "/" + part
                try:
                    nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(part, mode, dir_fd=fd)
                    nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(self.path(walked)):
                        raise UnsafePathError(errno.ELOOP, "refusing to follow a symbolic link",
                                              walked) from None
                    raise
                os.close(fd)
                fd = nfd
            return fd
        except BaseException:
            os.close(fd)
            raise


def _split(guest_path: str) -> tuple[str, str]:
    parent, _, name = guest_path.rstrip("/").rpartition("/")
    if not name or name in (".", ".."):
        raise UnsafePathError(errno.EINVAL, "not a file path", guest_path)
    return parent or "/", name


def _is_link_at(dfd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mode)
    except OSError:
        return False
