"""getopt_long(3C) as ipadm.c and dladm.c call it: short options only, options and operands
may be mixed (getopt_long permutes argv, unlike getopt(3C)), `--` ends the options, and an
optstring starting with `:` reports a missing value apart from an unknown letter.

The commands print their own message for each kind (ipadm.c `die_opterr()`: `option '-%c'
requires a value` / `unrecognized option '-%c'`), so the parser raises and the caller words
it. Standard library only: this runs under `python -S`.
"""

from __future__ import annotations

from typing import Any


class OptError(Exception):
    """getopt_long returned `?` (unknown letter) or `:` (missing value) for `letter`."""

    def __init__(self, letter: str, missing: bool):
        super().__init__(letter)
        self.letter, self.missing = letter, missing


def getopt_long(args: list[str], flags: str, with_value: str) -> tuple[list[tuple[str, Any]], list[str]]:
    """(letter, value-or-True) pairs in order, and the operands in order."""
    pairs: list[tuple[str, Any]] = []
    operands: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            operands.extend(args[i + 1:])
            break
        if not arg.startswith("-") or arg == "-":
            operands.append(arg)
            i += 1
            continue
        j = 1
        while j < len(arg):
            letter = arg[j]
            if letter in flags:
                pairs.append((letter, True))
                j += 1
            elif letter in with_value:
                value = arg[j + 1:]
                if not value:
                    i += 1
                    if i >= len(args):
                        raise OptError(letter, True)
                    value = args[i]
                pairs.append((letter, value))
                break
            else:
                raise OptError(letter, False)
        i += 1
    return pairs, operands
