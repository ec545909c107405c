"""Parser for the parseable (`-p -o f1,f2`) output of dladm(8) and ipadm(8).

Both commands print one record per line, fields joined by `:`, a literal `:` inside a field
written `\\:` (MAC and IPv6 addresses), and a literal backslash written `\\\\`. Empty fields
are printed as nothing between two separators and must be kept: the original agent dropped
them, which shifted every later column onto the wrong name. A line with the wrong number of
fields means the command printed something we do not understand, so it is a ParseError
naming the command and the line, never a silently misread record.
"""

from __future__ import annotations

from fsm.errors import ParseError


def split_fields(line: str) -> list[str]:
    """Split one parseable line into its fields, undoing `\\:` and `\\\\` escapes."""
    fields: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in line:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(ch)
    if escaped:  # a trailing lone backslash is kept as printed
        current.append("\\")
    fields.append("".join(current))
    return fields


def parse_records(output: str, fields: list[str], command: str) -> list[dict[str, str]]:
    """Records of `command`'s `-p -o` output as dicts keyed by the requested field names.

    Blank lines are skipped (no records prints nothing); every other line must carry exactly
    `len(fields)` fields.
    """
    records: list[dict[str, str]] = []
    for line in output.splitlines():
        if not line.strip():
            continue
        values = split_fields(line)
        if len(values) != len(fields):
            raise ParseError(command, line,
                             f"expected {len(fields)} fields ({','.join(fields)}), "
                             f"found {len(values)}")
        records.append(dict(zip(fields, values)))
    return records


def escape_field(value: str) -> str:
    """The inverse of split_fields for one field (what dladm/ipadm print)."""
    return value.replace("\\", "\\\\").replace(":", "\\:")
