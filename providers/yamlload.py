"""PyYAML for every YAML document the agent reads, without the import-time cost of a pattern
that cloud-config almost never needs.

Why this module: PyYAML's yaml/reader.py compiles `Reader.NON_PRINTABLE` in its class body
when `yaml` is imported. That pattern matches the characters YAML forbids, and its
character class covers every Unicode plane. On Python 3.11 `re` builds the class's
65,536-entry map in a Python loop: 58 M instructions (callgrind). That is more than half
of PyYAML's whole import, and two thirds of what a bare interpreter costs to start. A
NoCloud, OpenStack, Proxmox, Azure or zone guest pays it on every first boot (issue 17).

So, two things, and PyYAML is otherwise used as it is:
- While `import yaml` runs, `re.compile` hands back a `_Deferred` pattern for exactly that
  text. The pattern is compiled the first time something uses it. The patch lasts only
  for the import, and any other pattern is compiled as usual.
- `SafeLoader` here checks text that is all ASCII (nearly every real document) with a
  small pattern. For ASCII characters it accepts and refuses exactly what PyYAML's pattern
  does. Text with any other character, and any text the small pattern refuses, goes to
  PyYAML's own check, so the error is PyYAML's own, position included.

tests/test_yamlload.py checks that PyYAML still carries that exact pattern (if a release
changes it, the deferral stops applying, which costs time but is never wrong), and that
this loader and PyYAML's `SafeLoader` give the same result and the same error on the same
input.
"""

from __future__ import annotations

import re
import sys

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any

# yaml/reader.py's Reader.NON_PRINTABLE, as that file spells it.
PYYAML_NON_PRINTABLE = "[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010ffff]"
# The same class restricted to ASCII: tab, line feed, carriage return and 0x20-0x7E.
_ASCII_NON_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E]")

_loader: type | None = None


class _Deferred:
    """A pattern compiled on its first use; until then only its text is kept."""

    def __init__(self, compile_now: Any, pattern: str, flags: int) -> None:
        self._compile_now, self.pattern, self.flags = compile_now, pattern, flags
        self.compiled: re.Pattern[str] | None = None

    def __getattr__(self, name: str) -> Any:
        if self.compiled is None:
            self.compiled = self._compile_now(self.pattern, self.flags)
        return getattr(self.compiled, name)


def import_yaml() -> ModuleType:
    """`import yaml`, with NON_PRINTABLE deferred when this is the first import."""
    if "yaml" in sys.modules:
        return sys.modules["yaml"]
    compile_now = re.compile

    def compile_or_defer(pattern: Any, flags: int = 0) -> Any:
        if pattern == PYYAML_NON_PRINTABLE and not flags:
            return _Deferred(compile_now, pattern, flags)
        return compile_now(pattern, flags)

    re.compile = compile_or_defer  # type: ignore[assignment]
    try:
        import yaml
    finally:
        re.compile = compile_now
    return yaml


def safe_loader() -> type:
    """PyYAML's SafeLoader with the ASCII check in front of its own."""
    global _loader
    if _loader is None:
        yaml = import_yaml()

        class SafeLoader(yaml.SafeLoader):
            def check_printable(self, data: str) -> None:
                if data.isascii() and _ASCII_NON_PRINTABLE.search(data) is None:
                    return
                super().check_printable(data)  # PyYAML's own check, and its own error

        _loader = SafeLoader
    return _loader


def safe_load(text: str) -> Any:
    """`yaml.safe_load`, through `safe_loader()`."""
    return import_yaml().load(text, Loader=safe_loader())  # noqa: S506 - a SafeLoader
