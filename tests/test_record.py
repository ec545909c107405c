"""fsm/record.py keeps the dataclass contract the agent relies on: each behaviour is checked
side by side with the standard library's `dataclasses` on the same class body."""

from __future__ import annotations

import copy
import dataclasses
import math
import pickle
from typing import ClassVar

import pytest

from fsm import record as rec


def _pair(frozen: bool):
    """The same class written with each decorator."""
    made = []
    for decorate, field in ((dataclasses.dataclass, dataclasses.field), (rec.record, rec.field)):
        @decorate(frozen=frozen)
        class Nic:
            kind: ClassVar[str] = "nic"
            mac: str
            ips: tuple = ()
            secret: str | None = field(default=None, repr=False)
            tags: list = field(default_factory=list, hash=False)
            note: str = field(default="", compare=False)
        made.append(Nic)
    return made


@pytest.mark.parametrize("frozen", [True, False])
def test_construction_repr_and_equality_match_dataclasses(frozen):
    dc, rc = _pair(frozen)
    args, kwargs = ("02:00", ("10.0.0.2/24",), "hunter2"), {"note": "x"}
    assert repr(rc(*args, **kwargs)) == repr(dc(*args, **kwargs))
    assert repr(rc(*args, **kwargs)).endswith(
        "Nic(mac='02:00', ips=('10.0.0.2/24',), tags=[], note='x')")  # no secret
    for cls in (dc, rc):
        a = cls(*args, **kwargs)
        assert a == cls(*args, note="other")                              # compare=False
        assert a != cls("02:01", *args[1:])
        assert cls("m").tags is not cls("m").tags                         # a fresh list each
        assert cls.kind == "nic" and "kind" not in repr(cls("m"))          # ClassVar: no field


def test_equality_is_per_class_and_identity_first():
    dc, rc = _pair(True)
    assert rc("m") != dc("m") and (rc("m") == "m") is False
    one = (math.nan,)
    assert rc("m", one) == rc("m", one) and dc("m", one) == dc("m", one)
    assert rc("m", (float("nan"),)) != rc("m", (float("nan"),))


def test_frozen_refuses_assignment_as_an_attribute_error_and_hashes_like_dataclasses():
    dc, rc = _pair(True)
    for cls in (dc, rc):
        a = cls("m", ("x",))
        with pytest.raises(AttributeError, match="cannot assign to field 'mac'"):
            a.mac = "n"
        with pytest.raises(AttributeError, match="cannot delete field 'mac'"):
            del a.mac
    # The same fields hashed (not `tags`, hash=False; not `note`, compare=False), the same way.
    assert hash(rc("m", ("x",), tags=[1], note="a")) == hash(dc("m", ("x",), note="b"))


def test_mutable_records_are_unhashable_and_assignable():
    dc, rc = _pair(False)
    for cls in (dc, rc):
        a = cls("m")
        a.mac = "n"
        assert a.mac == "n"
        with pytest.raises(TypeError):
            hash(a)


@pytest.mark.parametrize("call, message", [
    (lambda c: c(), "missing 1 required positional argument: 'mac'"),
    (lambda c: c("m", mac="n"), "got multiple values for argument 'mac'"),
    (lambda c: c("m", colour="red"), "got an unexpected keyword argument 'colour'"),
    (lambda c: c(*"abcdefg"), "positional arguments but 8 were given"),
])
def test_bad_construction_is_the_same_type_error(call, message):
    for cls in _pair(True):
        with pytest.raises(TypeError, match=message):
            call(cls)


def test_replace_post_init_and_inheritance():
    calls = []

    @rec.record(frozen=True)
    class Base:
        a: int
        b: int = 2

        def __post_init__(self):
            calls.append((self.a, self.b))

    @rec.record(frozen=True)
    class Child(Base):
        c: int = 3

    child = Child(1, c=4)
    assert (child.a, child.b, child.c) == (1, 2, 4)
    changed = rec.replace(child, b=5)
    assert changed == Child(1, 5, 4) and changed != child and calls[-1] == (1, 5)
    with pytest.raises(TypeError):
        rec.replace(object())


def test_definitions_dataclasses_refuses_are_refused():
    with pytest.raises(ValueError, match="mutable default"):
        @rec.record
        class Bad:
            items: list = []  # noqa: RUF012
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
        @rec.record
        class Order:
            a: int = 1
            b: int
    with pytest.raises(ValueError):
        rec.field(default=1, default_factory=int)


@rec.record(frozen=True)
class Shown:
    a: int
    b: tuple = ()

    def __repr__(self):
        return "mine"


def test_methods_the_class_defines_are_kept_and_copies_work():
    assert repr(Shown(1)) == "mine"
    one = Shown(1, (2,))
    assert copy.deepcopy(one) == one and pickle.loads(pickle.dumps(one)) == one
    assert copy.copy(one).b is one.b
