"""`@record`: the part of `dataclasses` the agent uses, at a fraction of its start-up cost.

Why not `dataclasses` itself: the agent runs on every boot before the network is up, and
issue 17 measured the standard library's decorator as the largest single cost of a boot
that has nothing to do. Each class costs about 3 M instructions (0.5 ms) on Python 3.11,
because `dataclasses` writes the source of `__init__`, `__repr__`, `__eq__` and
`__hash__` and compiles each with `exec`; a boot builds 30 to 60 such classes. The import
itself adds 5 M more, beyond the `inspect` that transitions loads anyway. Here the
methods are shared closures over the field table: a class costs about 0.2 M. An instance
costs a little more to build than a dataclass's (a loop instead of straight-line code),
which is nothing at the few hundred a boot makes. (callgrind; a bare interpreter: 89 M.)

What it keeps of the dataclass contract, since callers and tests rely on it: fields in
annotation order (inherited ones first), positional or keyword construction, defaults and
`field(default_factory=...)`, `field(repr=False)` (secrets stay out of reprs and so out
of logs), `compare`/`hash`, `__post_init__`, `frozen=True` with a FrozenInstanceError that
is an AttributeError, equality only between instances of the same class, `replace()`, and
the same repr format. Methods the class defines itself are never replaced. Annotations are
read as strings (every module has `from __future__ import annotations`), so `ClassVar`
attributes are recognised by name, as `dataclasses` does with string annotations.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any, Callable

_MISSING: Any = object()
_FIELDS = "__record_fields__"


class FrozenInstanceError(AttributeError):
    """An assignment to a field of a frozen record."""


class Field:
    __slots__ = ("name", "default", "default_factory", "repr", "compare", "hash")

    def __init__(self, default: Any = _MISSING, default_factory: Any = _MISSING,
                 repr: bool = True, compare: bool = True, hash: bool | None = None):
        if default is not _MISSING and default_factory is not _MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.default, self.default_factory = default, default_factory
        self.repr, self.compare = repr, compare
        self.hash = compare if hash is None else hash


def field(*, default: Any = _MISSING, default_factory: Any = _MISSING, repr: bool = True,
          compare: bool = True, hash: bool | None = None) -> Any:
    return Field(default, default_factory, repr, compare, hash)


def _is_classvar(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return text.startswith(("ClassVar", "typing.ClassVar"))


def _own_fields(cls: type) -> list[Field]:
    fields = []
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if _is_classvar(annotation):
            continue
        value = cls.__dict__.get(name, _MISSING)
        spec = value if isinstance(value, Field) else Field(default=value)
        if isinstance(spec.default, (list, dict, set)):
            raise ValueError(f"mutable default {type(spec.default).__name__} for field "
                             f"{name} is not allowed: use default_factory")
        spec.name = name
        if spec.default is _MISSING:
            if isinstance(value, Field):
                delattr(cls, name)  # as dataclasses does: no Field left as a class attribute
        else:
            setattr(cls, name, spec.default)
        fields.append(spec)
    return fields


def _all_fields(cls: type) -> tuple[Field, ...]:
    merged: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        for spec in base.__dict__.get(_FIELDS, ()):
            merged[spec.name] = spec
    for spec in _own_fields(cls):
        merged[spec.name] = spec
    seen_default = ""
    for spec in merged.values():
        has_default = spec.default is not _MISSING or spec.default_factory is not _MISSING
        if seen_default and not has_default:
            raise TypeError(f"non-default argument {spec.name!r} follows default argument")
        seen_default = seen_default or (spec.name if has_default else "")
    return tuple(merged.values())


def _make_init(cls: type, fields: tuple[Field, ...], frozen: bool) -> Callable[..., None]:
    names = [f.name for f in fields]
    qualname = cls.__qualname__
    post_init = hasattr(cls, "__post_init__")
    assign = object.__setattr__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(fields):
            raise TypeError(f"{qualname}.__init__() takes {len(fields) + 1} positional "
                            f"arguments but {len(args) + 1} were given")
        for spec, value in zip(fields, args):
            if spec.name in kwargs:
                raise TypeError(f"{qualname}.__init__() got multiple values for argument "
                                f"{spec.name!r}")
            assign(self, spec.name, value)
        for spec in fields[len(args):]:
            value = kwargs.pop(spec.name, _MISSING)
            if value is _MISSING:
                if spec.default_factory is not _MISSING:
                    value = spec.default_factory()
                elif spec.default is not _MISSING:
                    value = spec.default
                else:
                    raise TypeError(f"{qualname}.__init__() missing 1 required positional "
                                    f"argument: {spec.name!r}")
            assign(self, spec.name, value)
        if kwargs:
            unknown = next(iter(kwargs))
            if unknown in names:
                raise TypeError(f"{qualname}.__init__() got multiple values for argument "
                                f"{unknown!r}")
            raise TypeError(f"{qualname}.__init__() got an unexpected keyword argument "
                            f"{unknown!r}")
        if post_init:
            self.__post_init__()

    return __init__


def _install(cls: type, name: str, method: Any) -> None:
    if name not in cls.__dict__:
        method.__qualname__ = f"{cls.__qualname__}.{name}"
        setattr(cls, name, method)


def _decorate(cls: type, frozen: bool) -> type:
    fields = _all_fields(cls)
    setattr(cls, _FIELDS, fields)
    shown = tuple(f.name for f in fields if f.repr)
    compared = tuple(f.name for f in fields if f.compare)
    hashed = tuple(f.name for f in fields if f.hash)

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in shown)
        return f"{type(self).__qualname__}({inner})"

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is not self.__class__:
            return NotImplemented
        # Tuples, as dataclasses compares: identical objects (a NaN) are equal.
        return (tuple(getattr(self, n) for n in compared)
                == tuple(getattr(other, n) for n in compared))

    _install(cls, "__init__", _make_init(cls, fields, frozen))
    _install(cls, "__repr__", __repr__)
    _install(cls, "__eq__", __eq__)
    if frozen:
        def __setattr__(self: Any, name: str, value: Any) -> None:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")

        def __delattr__(self: Any, name: str) -> None:
            raise FrozenInstanceError(f"cannot delete field {name!r}")

        def __hash__(self: Any) -> int:
            return hash(tuple(getattr(self, n) for n in hashed))

        for name in ("__setattr__", "__delattr__"):
            if name in cls.__dict__:
                raise TypeError(f"cannot overwrite attribute {name} in class {cls.__name__}")
        _install(cls, "__setattr__", __setattr__)
        _install(cls, "__delattr__", __delattr__)
        _install(cls, "__hash__", __hash__)
    elif "__hash__" not in cls.__dict__ or cls.__dict__["__hash__"] is None:
        cls.__hash__ = None  # type: ignore[assignment]  # mutable and compared: unhashable
    return cls


def record(cls: type | None = None, *, frozen: bool = False) -> Any:
    """`@record` or `@record(frozen=True)`, as `@dataclass` is written."""
    if cls is None:
        return lambda c: _decorate(c, frozen)
    return _decorate(cls, frozen)


def replace(obj: Any, **changes: Any) -> Any:
    """A copy of `obj` with `changes`, built through `__init__` (so `__post_init__` runs)."""
    fields = getattr(type(obj), _FIELDS, None)
    if fields is None:
        raise TypeError("replace() should be called on record instances")
    for spec in fields:
        if spec.name not in changes:
            changes[spec.name] = getattr(obj, spec.name)
    return type(obj)(**changes)

