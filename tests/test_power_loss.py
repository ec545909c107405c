"""Power loss without fsync: what SIGKILL cannot show.

A killed process leaves everything it wrote in the page cache, so the kill tests never
see data the disk had not yet stored. Here the checkpoint write (`System.write_file`:
create a temp file, write, fsync it, hard-link the current file to `.prev`, rename the temp
over the current file, fsync the directory) runs for real while every syscall it makes is
recorded. Then, for every prefix of that sequence (power lost after k syscalls), the
directory is rebuilt the way the disk could hold it afterwards:
- a file's data is durable only if an fsync of it followed its last write; otherwise it
  may come back empty, torn (half), or whole;
- directory operations (create, link, rename, unlink) are durable once the directory was
  fsynced; after that, any *prefix* of the later ones may have reached the disk (ZFS and
  journalling file systems commit metadata in order).
`CheckpointStore.load()` on each such directory must return the previous generation or the
new one, never garbage and never an older generation that lacks a completed record.

A second test makes each syscall fail instead (EIO, ENOSPC): the save reports failure,
the previous generation stays, and no temp file is left.
"""

from __future__ import annotations

import errno
import itertools
import os
from typing import Any

import pytest

from fsm import system as system_mod
from fsm.checkpoint import CHECKPOINT_PATH, DONE, Checkpoint, CheckpointStore
from fsm.phases import PHASES
from fsm.system import System

DIR = os.path.dirname(CHECKPOINT_PATH)
NAME = os.path.basename(CHECKPOINT_PATH)


# ---- three generations of a checkpoint ---------------------------------------------------
def _generation(n: int) -> Checkpoint:
    """Generation n has the first 3 + n change steps done (each a superset of the last)."""
    cp = Checkpoint(phase="IDENTITY", boot=1, instance_id="i-power", provider="ec2")
    steps = [s for phase in ("NETWORK", "IDENTITY", "STORAGE") for s in PHASES[phase]]
    for i, step in enumerate(steps[: 3 + n]):
        rec = cp.mark(step, cp.instance_id, DONE, changes=1)
        rec.update(started=1000.0 + i, finished=1000.5 + i)  # the same bytes every time
    return cp


def _done(cp: Checkpoint) -> set[str]:
    return {key for key, rec in cp.completed_steps() if rec.get("status") == DONE}


def _comparable(cp: Checkpoint) -> dict[str, Any]:
    return {k: v for k, v in cp.to_map().items() if k != "updated"}


@pytest.fixture
def two_saved(tmp_path):
    """A guest root whose checkpoint has generations 1 (.prev) and 2 (current), durably."""
    root = tmp_path / "root"
    (root / DIR.lstrip("/")).mkdir(parents=True)
    store = CheckpointStore(System(str(root)))
    assert store.save(_generation(1)) and store.save(_generation(2))
    return root, store


# ---- recording the syscalls of one write ---------------------------------------------------
class RecordingOS:
    """Stands in for the `os` module inside fsm.system: performs every call, and records
    the ones that change the checkpoint directory, by name, in order. With `fail_at`, the
    fail_at-th recorded call raises OSError(`errno_`) instead of happening."""

    def __init__(self, fail_at: int | None = None, errno_: int = errno.EIO):
        self.events: list[tuple] = []
        self.fds: dict[int, str | None] = {}   # fd -> file name, None for a directory
        self.fail_at, self.errno_ = fail_at, errno_

    def __getattr__(self, name: str):
        return getattr(os, name)

    def _event(self, *event: Any) -> None:
        if self.fail_at is not None and len(self.events) + 1 == self.fail_at:
            self.events.append(("failed", *event))
            raise OSError(self.errno_, os.strerror(self.errno_))
        self.events.append(event)

    def open(self, path, flags, mode=0o777, *, dir_fd=None):
        if flags & os.O_CREAT and not flags & os.O_DIRECTORY:
            self._event("create", path)
        fd = os.open(path, flags, mode, dir_fd=dir_fd)
        self.fds[fd] = None if flags & os.O_DIRECTORY else path
        return fd

    def write(self, fd, data):
        self._event("write", self.fds[fd], bytes(data))
        written = os.write(fd, data)
        assert written == len(data), "short writes are not modelled"
        return written

    def fsync(self, fd):
        if self.fds.get(fd) is None:
            self._event("fsync-dir")
        else:
            self._event("fsync", self.fds[fd])
        return os.fsync(fd)

    def link(self, src, dst, **kwargs):
        self._event("link", src, dst)
        return os.link(src, dst, **kwargs)

    def replace(self, src, dst, **kwargs):
        self._event("rename", src, dst)
        return os.replace(src, dst, **kwargs)

    def unlink(self, path, **kwargs):
        self._event("unlink", path)
        return os.unlink(path, **kwargs)


def _record_save(monkeypatch, store: CheckpointStore, rec: RecordingOS) -> bool:
    with monkeypatch.context() as m:
        m.setattr(system_mod, "os", rec)
        return store.save(_generation(3))


# ---- what the disk may hold after power is lost -------------------------------------------
def _disk_states(before: dict[str, bytes], events: list[tuple]) -> list[dict[str, bytes]]:
    """Every directory content (name -> bytes) the disk may hold after `events` ran and
    power was lost, starting from the durable `before`."""
    inodes: dict[int, dict[str, Any]] = {}
    names: dict[str, int] = {}
    for name, data in before.items():
        inodes[len(inodes)] = {"data": data, "durable": data}
        names[name] = len(inodes) - 1
    durable_names = dict(names)
    pending: list[tuple] = []   # namespace operations not yet made durable, in order
    for event in events:
        kind = event[0]
        if kind == "create":
            inodes[len(inodes)] = {"data": b"", "durable": None}
            names[event[1]] = len(inodes) - 1
            pending.append(("bind", event[1], names[event[1]]))
        elif kind == "write":
            inodes[names[event[1]]]["data"] += event[2]
        elif kind == "fsync":
            ino = inodes[names[event[1]]]
            ino["durable"] = ino["data"]
        elif kind == "link":
            names[event[2]] = names[event[1]]
            pending.append(("bind", event[2], names[event[1]]))
        elif kind == "rename":
            names[event[2]] = names.pop(event[1])
            pending.append(("rename", event[1], event[2]))
        elif kind == "unlink":
            names.pop(event[1])
            pending.append(("drop", event[1]))
        elif kind == "fsync-dir":
            for op in pending:
                _apply(durable_names, op)
            pending = []
    states = []
    for cut in range(len(pending) + 1):
        layout = dict(durable_names)
        for op in pending[:cut]:
            _apply(layout, op)
        unsynced = sorted({ino for ino in layout.values()
                           if inodes[ino]["durable"] != inodes[ino]["data"]})
        for losses in itertools.product(("empty", "torn", "whole"), repeat=len(unsynced)):
            lost = dict(zip(unsynced, losses))
            states.append({name: _content(inodes[ino], lost.get(ino))
                           for name, ino in layout.items()})
    return states


def _apply(layout: dict[str, int], op: tuple) -> None:
    """One directory operation, whole: a rename is never half done."""
    if op[0] == "bind":
        layout[op[1]] = op[2]
    elif op[0] == "rename":
        if op[1] in layout:
            layout[op[2]] = layout.pop(op[1])
    else:
        layout.pop(op[1], None)


def _content(inode: dict[str, Any], loss: str | None) -> bytes:
    if loss is None:
        return inode["data"]
    base = inode["durable"] or b""
    if loss == "empty":
        return base
    if loss == "torn":
        return inode["data"][: max(1, len(inode["data"]) // 2)]
    return inode["data"]


def _load_from(tmp_path, label: str, files: dict[str, bytes]) -> Checkpoint:
    root = tmp_path / label
    d = root / DIR.lstrip("/")
    d.mkdir(parents=True)
    for name, data in files.items():
        (d / name).write_bytes(data)
    return CheckpointStore(System(str(root))).load()


def _directory(root) -> dict[str, bytes]:
    d = root / DIR.lstrip("/")
    return {p.name: p.read_bytes() for p in d.iterdir()}


# ---- the tests ----------------------------------------------------------------------------
@pytest.mark.crash_matrix
def test_power_lost_after_each_syscall_of_the_checkpoint_write(tmp_path, two_saved,
                                                                monkeypatch):
    root, store = two_saved
    before = _directory(root)
    rec = RecordingOS()
    assert _record_save(monkeypatch, store, rec)
    assert [e[0] for e in rec.events][:2] == ["create", "write"], rec.events
    old, new = _comparable(_generation(2)), _comparable(_generation(3))
    seen = set()
    for k in range(len(rec.events) + 1):
        for i, files in enumerate(_disk_states(before, rec.events[:k])):
            cp = _load_from(tmp_path, f"cut{k}-{i}", files)
            got = _comparable(cp)
            assert got in (old, new), f"power lost after {rec.events[:k][-1:]}: got {got}"
            assert _done(cp) >= _done(_generation(2)), "a completed record was lost"
            seen.add("new" if got == new else "old")
            if k < len(rec.events):
                assert got == old or _renamed(rec.events[:k]), \
                    "the new generation showed before its rename"
    assert seen == {"old", "new"}
    # Once the directory was fsynced, the new generation is what every disk state holds.
    for i, files in enumerate(_disk_states(before, rec.events)):
        got = _comparable(_load_from(tmp_path, f"final{i}", files))
        assert got == new, f"the write returned, yet after a power cut the disk holds {got}"


def _renamed(events: list[tuple]) -> bool:
    return any(e[0] == "rename" and e[2] == NAME for e in events)


@pytest.mark.crash_matrix
@pytest.mark.parametrize("errno_", [errno.EIO, errno.ENOSPC], ids=["EIO", "ENOSPC"])
def test_each_syscall_of_the_checkpoint_write_failing(tmp_path, two_saved, monkeypatch,
                                                       errno_):
    root, store = two_saved
    count = len(_recorded_events(tmp_path, monkeypatch))
    for k in range(1, count + 1):
        root_k = tmp_path / f"fail{k}"
        (root_k / DIR.lstrip("/")).mkdir(parents=True)
        store_k = CheckpointStore(System(str(root_k)))
        assert store_k.save(_generation(1)) and store_k.save(_generation(2))
        rec = RecordingOS(fail_at=k, errno_=errno_)
        saved = _record_save(monkeypatch, store_k, rec)
        failed = next(e for e in rec.events if e[0] == "failed")
        assert saved is False and store_k.last_save_error, f"failure at {failed} not reported"
        names = sorted(_directory(root_k))
        assert names == [NAME, NAME + ".prev"], f"after failing {failed}: {names}"
        got = _comparable(CheckpointStore(System(str(root_k))).load())
        # Only a failing fsync of the directory comes after the rename.
        assert got == _comparable(_generation(3 if failed[1] == "fsync-dir" else 2)), failed


def _recorded_events(tmp_path, monkeypatch) -> list[tuple]:
    root = tmp_path / "count"
    (root / DIR.lstrip("/")).mkdir(parents=True)
    store = CheckpointStore(System(str(root)))
    assert store.save(_generation(1)) and store.save(_generation(2))
    rec = RecordingOS()
    assert _record_save(monkeypatch, store, rec)
    return rec.events


def test_a_temp_file_left_by_a_killed_write_is_removed_by_the_next_write(tmp_path, two_saved):
    """A SIGKILL between creating the temp file and renaming it leaves the temp behind;
    the next write of the same file removes it (its process is gone), and leaves alone a
    temp whose process still runs and any other file."""
    root, store = two_saved
    d = root / DIR.lstrip("/")
    dead = _dead_pid()
    (d / f".{NAME}.tmp-{dead}-0badc0de").write_bytes(b"half a checkpoi")
    (d / f".{NAME}.tmp-{dead}-0badc0de.prev").write_bytes(b"prev link")
    (d / f".{NAME}.tmp-{os.getppid()}-00000001").write_bytes(b"a live writer's")
    (d / ".other.tmp-1-00000002").write_bytes(b"not ours to judge")
    assert store.save(_generation(3))
    assert sorted(_directory(root)) == sorted(
        [NAME, NAME + ".prev", f".{NAME}.tmp-{os.getppid()}-00000001", ".other.tmp-1-00000002"])


def _dead_pid() -> int:
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


@pytest.mark.crash_matrix
def test_power_lost_during_deferred_directory_syncs(tmp_path, two_saved, monkeypatch):
    """How a boot writes (System.defer_directory_syncs): two saves, then the machine's
    sync before the next step. Each save still fsyncs its data before its rename, so
    after a power cut at any syscall the disk holds generation 2, 3 or 4, whole, never
    losing a completed record; after the sync every disk state holds 4. The two saves
    share one fsync of the directory."""
    root, store = two_saved
    before = _directory(root)
    rec = RecordingOS()
    with monkeypatch.context() as m:
        m.setattr(system_mod, "os", rec)
        store.system.defer_directory_syncs()
        assert store.save(_generation(3)) and store.save(_generation(4))
        assert [e[0] for e in rec.events].count("fsync-dir") == 0
        store.system.sync_directories(stop_deferring=True)
    assert [e[0] for e in rec.events].count("fsync-dir") == 1
    assert [e[0] for e in rec.events].count("fsync") == 2   # each save's data
    generations = [_comparable(_generation(n)) for n in (2, 3, 4)]
    for k in range(len(rec.events) + 1):
        for i, files in enumerate(_disk_states(before, rec.events[:k])):
            cp = _load_from(tmp_path, f"cut{k}-{i}", files)
            assert _comparable(cp) in generations, f"power lost after {rec.events[:k][-1:]}"
            assert _done(cp) >= _done(_generation(2)), "a completed record was lost"
    for i, files in enumerate(_disk_states(before, rec.events)):
        assert _comparable(_load_from(tmp_path, f"final{i}", files)) == generations[-1]
    # Writes after the machine stopped deferring sync their directory again.
    rec.events.clear()
    with monkeypatch.context() as m:
        m.setattr(system_mod, "os", rec)
        assert store.save(_generation(5))
    assert [e[0] for e in rec.events].count("fsync-dir") == 1

