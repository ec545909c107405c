"""What every stand-in gets: its arguments, the guest state, and illumos-style failures."""

from __future__ import annotations

import sys
from typing import Any, NoReturn


class Exit(Exception):
    """Raised to end a stand-in with an exit code (state changes so far are kept)."""

    def __init__(self, code: int):
        self.code = code


class Invocation:
    """One call of a stand-in. A plain class: `dataclasses` costs every simulated command
    ~15 ms of imports, and a boot runs ~40 of them."""

    def __init__(self, command: str, argv: list[str], root: str,
                 state: dict[str, Any] | None = None):
        self.command = command            # e.g. "ipadm"
        self.argv = argv                  # arguments after the command name
        self.root = root                  # the guest root on the host
        self.state: dict[str, Any] = {} if state is None else state

    def out(self, text: str = "") -> None:
        sys.stdout.write(text + "\n")

    def err(self, text: str) -> None:
        sys.stderr.write(text + "\n")

    def usage(self, message: str = "") -> NoReturn:
        """An argument form the man page does not document: exit 2, like illumos."""
        if message:
            self.err(f"{self.command}: {message}")
        self.err(f"usage: {self.command} ... (see {self.command}(8))")
        raise Exit(2)

    def fail(self, message: str, code: int = 1) -> NoReturn:
        self.err(message)
        raise Exit(code)


def parse_opts(inv: Invocation, args: list[str], flags: str, with_value: str) -> tuple[dict[str, Any], list[str]]:
    """getopt-style parsing of single-letter options: `flags` take no value,
    `with_value` take one. Unknown options are a usage error."""
    opts: dict[str, Any] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            rest.extend(args[i + 1:])
            break
        if a.startswith("-") and len(a) > 1:
            j = 1
            while j < len(a):
                ch = a[j]
                if ch in flags:
                    opts[ch] = True
                    j += 1
                elif ch in with_value:
                    if j + 1 < len(a):
                        opts[ch] = a[j + 1:]
                    else:
                        i += 1
                        if i >= len(args):
                            inv.usage(f"option requires an argument -- '{ch}'")
                        opts[ch] = args[i]
                    break
                else:
                    inv.usage(f"illegal option -- '{ch}'")
            i += 1
        else:
            rest.append(a)
            i += 1
    return opts, rest


class BadOption(Exception):
    """An option getopt(3C) would refuse: unknown, or missing its argument."""


def posix_getopt(args: list[str], flags: str, with_value: str) -> tuple[list[tuple[str, Any]], list[str]]:
    """getopt(3C) as illumos commands use it: options end at the first operand or `--`;
    returns the (letter, value-or-True) pairs in order, so repeated options are kept, and
    the operands. Raises BadOption; each command prints its own usage for it."""
    pairs: list[tuple[str, Any]] = []
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "-":
        if args[i] == "--":
            i += 1
            break
        j = 1
        while j < len(args[i]):
            letter = args[i][j]
            if letter in flags:
                pairs.append((letter, True))
                j += 1
            elif letter in with_value:
                value = args[i][j + 1:]
                if not value:
                    i += 1
                    if i >= len(args):
                        raise BadOption(letter)
                    value = args[i]
                pairs.append((letter, value))
                break
            else:
                raise BadOption(letter)
        i += 1
    return pairs, args[i:]


def usage_exit(inv: Invocation, usage: str) -> Exit:
    """The usage text on stderr and exit 1, as the illumos commands' usage() functions do
    (swap.c, zdb.c): the caller raises or returns the Exit."""
    inv.err(usage)
    return Exit(1)
