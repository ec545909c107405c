"""The checkpoint codec and store: atomic generations, and damaged files never crash."""

from __future__ import annotations

import glob
import logging
import os

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsm.checkpoint import (
    CHECKPOINT_PATH,
    PREVIOUS_SUFFIX,
    Checkpoint,
    CheckpointError,
    CheckpointStore,
    decode,
    encode,
)
from fsm.steps import Frequency, Outcome, Step
from fsm.system import System

STEP = Step("IDENTITY", "hostname", Frequency.PER_INSTANCE, lambda ctx: Outcome(), "-", "-", "-")


@pytest.fixture
def store(tmp_path):
    return CheckpointStore(System(str(tmp_path)))


def _saved(store: CheckpointStore, boot: int, done: bool = True) -> Checkpoint:
    cp = Checkpoint(phase="DONE", boot=boot, instance_id="i-1", provider="qemu")
    if done:
        cp.mark(STEP, "i-1", "done", changes=1)
    store.save(cp)
    return cp


def _path(store, suffix=""):
    return store.system.path(CHECKPOINT_PATH + suffix)


def test_round_trip_keeps_every_field(store):
    cp = _saved(store, 3)
    cp.last_error = {"phase": "STORAGE", "step": "expand", "message": "x", "exit_code": 95,
                     "time": 1.5e9}
    cp.resume_from = "STORAGE"
    store.save(cp)
    back = store.load()
    assert back.to_map() == cp.to_map()
    assert back.record_of(STEP, "i-1")["status"] == "done"


def test_save_keeps_the_previous_generation(store):
    _saved(store, 1)
    _saved(store, 2)
    with open(_path(store, PREVIOUS_SUFFIX), "rb") as f:
        assert decode(f.read()).boot == 1
    assert store.load().boot == 2
    assert os.stat(_path(store)).st_mode & 0o777 == 0o600
    assert not glob.glob(_path(store, ".tmp*")) and not glob.glob(
        os.path.join(os.path.dirname(_path(store)), ".*tmp*"))


@pytest.mark.parametrize("damage", [
    pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
    pytest.param(lambda data: os.urandom(200), id="garbage"),
    pytest.param(lambda data: b"", id="empty"),
    pytest.param(lambda data: msgpack.packb({**msgpack.unpackb(data), "schema": 0}),
                 id="wrong-version"),
    pytest.param(lambda data: msgpack.packb({**msgpack.unpackb(data), "schema": "1"}),
                 id="version-as-text"),
    pytest.param(lambda data: msgpack.packb([1, 2, 3]), id="not-a-map"),
    pytest.param(lambda data: msgpack.packb({**msgpack.unpackb(data), "boot": "two"}),
                 id="wrong-type"),
])
def test_damaged_current_is_moved_aside_and_previous_generation_used(store, damage, caplog):
    _saved(store, 1)
    _saved(store, 2)
    with open(_path(store), "rb") as f:
        data = f.read()
    with open(_path(store), "wb") as f:
        f.write(damage(data))
    with caplog.at_level(logging.WARNING):
        cp = store.load()
    assert cp.boot == 1  # the previous generation, whose records are not repeated
    assert cp.record_of(STEP, "i-1")["status"] == "done"
    moved = glob.glob(_path(store, ".corrupt-*"))
    assert len(moved) == 1
    assert "moved aside" in caplog.text and "previous generation" in caplog.text


def test_both_generations_damaged_means_a_fresh_start(store):
    _saved(store, 1)
    _saved(store, 2)
    for suffix in ("", PREVIOUS_SUFFIX):
        with open(_path(store, suffix), "wb") as f:
            f.write(b"\xc1garbage")
    cp = store.load()
    assert cp.boot == 0 and cp.phase == "DETECT"
    assert len(glob.glob(_path(store, ".corrupt-*"))) == 2


def test_unreadable_checkpoint_is_moved_aside(store):
    os.makedirs(_path(store))  # a directory where the file should be: reading it fails
    cp = store.load()
    assert cp.boot == 0
    assert len(glob.glob(_path(store, ".corrupt-*"))) == 1


def test_reset_moves_the_checkpoint_aside(store):
    _saved(store, 1)
    _saved(store, 2)
    moved = store.reset()
    assert moved and os.path.exists(store.system.path(moved))
    assert store.load().boot == 0


def test_no_metadata_values_in_the_checkpoint(store):
    cp = _saved(store, 1)
    assert set(cp.to_map()) == {"schema", "phase", "boot", "instance_id", "provider",
                                "instances", "once", "boot_steps", "phases", "last_error",
                                "resume_from", "updated", "warnings"}


def test_warnings_are_capped_deduplicated_and_survive_a_round_trip():
    cp = Checkpoint()
    for i in range(300):
        cp.add_warning("FETCH/fetch", f"item {i % 150}: " + "v" * 2000)
    cp.add_warning("FETCH/fetch", "item 0: " + "v" * 2000)
    again = decode(encode(cp))
    assert len(again.warnings) == 100
    assert all(len(w["message"]) < 600 for w in again.warnings)
    assert len(encode(cp)) < 64 * 1024


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_decoding_random_bytes_only_raises_checkpoint_error(data):
    try:
        decode(data)
    except CheckpointError:
        pass


_names = st.text(min_size=1, max_size=12)


@settings(max_examples=100, deadline=None)
@given(phase=st.sampled_from(["DETECT", "FETCH", "NETWORK", "DONE"]),
       boot=st.integers(min_value=0, max_value=2**31 - 1), instance=st.none() | _names,
       provider=st.none() | _names)
def test_encode_decode_round_trip(phase, boot, instance, provider):
    cp = Checkpoint(phase=phase, boot=boot, instance_id=instance, provider=provider)
    cp.mark(STEP, instance, "started", intent={"guid": "123"})
    assert decode(encode(cp)).to_map() == cp.to_map()


def test_shown_cuts_long_values_and_escapes_newlines():
    from fsm.errors import shown
    assert shown("a\nb") == "'a\\nb'"
    cut = shown("x" * 600_000)
    assert len(cut) < 120 and "600000 characters" in cut


def test_shown_never_builds_the_whole_repr_of_a_huge_structure():
    """A YAML alias bomb is small in memory and enormous when printed."""
    from fsm.errors import shown
    row = ["x" * 1000] * 1000
    bomb = {"k": [row] * 1000}            # a billion characters if printed whole
    text = shown(bomb)
    assert len(text) <= 90 and text.startswith("{'k': [")
