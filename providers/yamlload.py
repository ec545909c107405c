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

And documents are parsed by libyaml when PyYAML was built with it (`load`): PyYAML's
Python scanner and parser took 2.9 ms of CPU for a 1 KB cloud-config, three such
documents a NoCloud first boot. libyaml's event parser (PyYAML's own `CParser`) feeds
PyYAML's Python composer, constructor and resolver, so the objects built, the tags
resolved and any node counting a caller adds to `compose_node` are as before: 0.44 ms for
that document. Only text of the kinds where the two parsers were found to agree goes to
libyaml (`libyaml_agrees`); a document libyaml refuses is parsed again by the Python
parser, so an error is always PyYAML's own message, and one it accepts gives what
PyYAML's SafeLoader gives (tests/test_yamlload.py and fuzz/fuzz_yaml_parsers.py hold the
two to each other).
libyaml's parser keeps its state in heap stacks, not C recursion; nesting depth is counted
in the Python composer, where a caller's limits and Python's recursion limit apply.

tests/test_yamlload.py checks that PyYAML still carries that exact pattern (if a release
changes it, the deferral stops applying, which costs time but is never wrong), and that
these loaders and PyYAML's `SafeLoader` give the same result and the same error on the
same input.
"""

from __future__ import annotations

import re
import sys

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any, Callable

# yaml/reader.py's Reader.NON_PRINTABLE, as that file spells it.
PYYAML_NON_PRINTABLE = "[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010ffff]"
# The same class restricted to ASCII: tab, line feed, carriage return and 0x20-0x7E.
_ASCII_NON_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E]")

_loader: type | None = None
_fast_loader: type | None = None


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


def fast_loader() -> type | None:
    """libyaml's event parser under PyYAML's Python composer, constructor and resolver:
    SafeLoader's results; None when PyYAML was built without libyaml."""
    global _fast_loader
    yaml = import_yaml()
    if _fast_loader is None and getattr(yaml, "__with_libyaml__", False):
        CParser = yaml.cyaml.CParser  # noqa: N806 - the class, as PyYAML names it

        class FastSafeLoader(yaml.composer.Composer, CParser, yaml.constructor.SafeConstructor,
                             yaml.resolver.Resolver):
            # Composer before CParser: its compose_node (and a subclass's) builds the nodes,
            # from CParser's events, instead of CParser's own C composer.
            def __init__(self, stream: str) -> None:
                CParser.__init__(self, stream)
                yaml.composer.Composer.__init__(self)
                yaml.constructor.SafeConstructor.__init__(self)
                yaml.resolver.Resolver.__init__(self)

        _fast_loader = FastSafeLoader
    return _fast_loader


# A '#' glued to the character before it.
_GLUED_HASH = re.compile(r"[^ \n\r]#")


def libyaml_agrees(text: str) -> bool:
    """Whether `text` is of the kind where libyaml's parser and PyYAML's were found to
    agree. Comparing the two on about 570,000 random texts drawn from YAML's punctuation,
    indicators and scalar forms found them differ only on text with a tab (libyaml allows
    tabs PyYAML refuses), a `!` tag (a bare `!` resolves differently), a non-ASCII
    character (a BOM or NEL inside the text) or a `#` glued to the token before it
    (`|#`, `{#`: libyaml reads a comment, PyYAML refuses). Text with any of those goes to
    PyYAML's parser, as all text did before; on the rest, 90,000 texts, none differed."""
    return (text.isascii() and "\t" not in text and "!" not in text
            and _GLUED_HASH.search(text) is None)


def load(text: str, extend: Callable[[type], type] | None = None) -> Any:
    """`yaml.load` with a SafeLoader (`extend(base)` subclasses it, e.g. to count nodes):
    libyaml's parser first, PyYAML's Python one for a document libyaml refuses."""
    yaml = import_yaml()
    fast = fast_loader() if libyaml_agrees(text) else None
    if fast is not None:
        try:
            return yaml.load(text, Loader=extend(fast) if extend else fast)  # noqa: S506
        except yaml.YAMLError:
            pass  # PyYAML's own parser says what is wrong, in its own words
    base = safe_loader()
    return yaml.load(text, Loader=extend(base) if extend else base)  # noqa: S506


def safe_load(text: str) -> Any:
    """`yaml.safe_load`, through `load`."""
    return load(text)
