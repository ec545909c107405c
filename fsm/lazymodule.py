"""Defer a standard-library module a dependency imports but a boot never calls.

transitions' core module imports `inspect` at its top, for one `inspect.ismethod` call
that runs only when the model defines `on_enter_<state>`/`on_exit_<state>` methods; ours
defines none. Importing `inspect` (with ast, dis, opcode and tokenize) costs about 4.4 ms
of CPU, a sixth of a bare interpreter's start, on every boot (issue 17).

`defer` puts a placeholder module in `sys.modules` before the dependency's import, so its
`import inspect` binds the placeholder. The first read of an attribute the placeholder
lacks imports the real module, puts it in `sys.modules` and copies its namespace into the
placeholder: code holding either sees the same functions. Nothing changes for code that
does use it, only when it is loaded.

Why not importlib.util.LazyLoader: an `import` statement that finds a module in
`sys.modules` reads its `__spec__` (to see whether it is still initialising), and any
attribute read of a LazyLoader module executes it, so the dependency's own `import`
would load it at once. The placeholder has its `__spec__` (None, as a new module's is).
"""

from __future__ import annotations

import sys
import types


class Deferred(types.ModuleType):
    """A module not yet executed: the real one is imported at the first attribute read."""

    def __getattr__(self, attr: str) -> object:  # only for attributes the placeholder lacks
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        real = __import__(name)
        self.__dict__.update(real.__dict__)
        return getattr(real, attr)


def defer(name: str) -> bool:
    """Register top-level module `name` to load on first use; True when it was deferred."""
    if name in sys.modules or "." in name:
        return False
    sys.modules[name] = Deferred(name)
    return True


def is_loaded(name: str) -> bool:
    """Whether `name` has been executed, not merely registered by `defer`."""
    return name in sys.modules and not isinstance(sys.modules[name], Deferred)
