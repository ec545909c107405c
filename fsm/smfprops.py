"""The agent's settings as SMF properties: `config/<section>_<key>` of our service.

Each property maps 1:1 to `<section>.<key>` of fsm/settings.SCHEMA (`config/timeouts_dhcp`
is `timeouts.dhcp`): split at the first `_`, since no section name contains one. The
manifest (smf/metadata.xml) declares every property without a value, meaning "not set";
only properties that hold a value override the TOML file, so the file keeps working on an
image whose operator never touches SMF.

Types: a `bool` key must be an SMF `boolean`. A `float` key (seconds) may be a `count`,
an `integer` or an `astring` holding a decimal number, because SMF has no fractional
type. A `list` key (storage.pools) is an `astring` holding a TOML array, as it would be
written in the file (`[{name = "tank", disks = ["c2t0d0"]}]`). A `str` key may be an `astring`, `ustring` or `uri`. Anything else, an unknown
property, or more than one value, is a ConfigError naming `config/NAME` (exit 96): a
mistyped override silently ignored would send the agent to the wrong place.

The values are read with `svcprop -p config FMRI` (svcprop(1)), whose output is one line
per property, `config/NAME TYPE VALUE...`, with the shell metacharacters of string values
(space, tab, newline, backslash, quotes, `;&()|^<>`) escaped by a backslash and an empty
string shown as `""`. An escaped newline continues the same property on the next line.
"""

from __future__ import annotations

import math

from fsm.errors import CommandError, ConfigError, ParseError
from fsm.settings import LOG_LEVELS, SCHEMA
from fsm.system import System

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any

SVCPROP = "/usr/bin/svcprop"
PROPERTY_GROUP = "config"

# SMF property types each Python type of SCHEMA accepts.
ACCEPTED_TYPES: dict[type, tuple[str, ...]] = {
    bool: ("boolean",),
    float: ("count", "integer", "astring"),
    str: ("astring", "ustring", "uri"),
    list: ("astring",),
}

# What `svccfg setprop` should be given, for error messages and the manifest.
DECLARED_TYPE: dict[type, str] = {bool: "boolean", float: "astring", str: "astring",
                                  list: "astring"}


def property_name(section: str, key: str) -> str:
    """`config/<section>_<key>`: the SMF property of a SCHEMA setting."""
    return f"{PROPERTY_GROUP}/{section}_{key}"


def setting_of(prop: str) -> tuple[str, str] | None:
    """(section, key) of `config/NAME`, or None when NAME is not a setting."""
    group, _, name = prop.partition("/")
    section, _, key = name.partition("_")
    if group != PROPERTY_GROUP or section not in SCHEMA or key not in SCHEMA[section]:
        return None
    return section, key


def split_records(text: str) -> list[list[str]]:
    """svcprop's multi-property output as records of unescaped tokens.

    A backslash makes the next character literal (space, newline...); an unescaped
    newline ends a record; an unescaped `""` token is the empty string.
    """
    records: list[list[str]] = []
    tokens: list[str] = []
    chars: list[str] = []
    in_token = escaped = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text):
                raise ParseError("svcprop", text.rsplit("\n", 1)[-1], "ends in a lone backslash")
            chars.append(text[i + 1])
            in_token = escaped = True
            i += 2
            continue
        if ch in " \t\n":
            if in_token:
                word = "".join(chars)
                tokens.append("" if word == '""' and not escaped else word)
                chars, in_token, escaped = [], False, False
            if ch == "\n" and tokens:
                records.append(tokens)
                tokens = []
        else:
            chars.append(ch)
            in_token = True
        i += 1
    if in_token:
        word = "".join(chars)
        tokens.append("" if word == '""' and not escaped else word)
    if tokens:
        records.append(tokens)
    return records


def _coerce(source: str, prop: str, want: type, smf_type: str, value: str) -> Any:
    if smf_type not in ACCEPTED_TYPES[want]:
        raise ConfigError(
            source, prop, f"must be {' or '.join(ACCEPTED_TYPES[want])}, not {smf_type} "
            f"(svccfg setprop {prop} = {DECLARED_TYPE[want]}: VALUE)")
    if want is bool:
        if value not in ("true", "false"):
            raise ConfigError(source, prop, f"boolean value {value!r} is not true or false")
        return value == "true"
    if want is float:
        try:
            seconds = float(value)
        except ValueError:
            raise ConfigError(source, prop, f"{value!r} is not a number of seconds") from None
        if not math.isfinite(seconds) or seconds < 0:
            raise ConfigError(source, prop, f"{value!r} must be a finite, non-negative number")
        from fsm.settings import check_seconds

        return check_seconds(source, prop, seconds)
    if want is list:
        from fsm.settings import toml_parser

        tomllib = toml_parser()

        try:
            parsed = tomllib.loads(f"value = {value}")["value"]
        except (tomllib.TOMLDecodeError, RecursionError):
            parsed = None
        if not isinstance(parsed, list):
            raise ConfigError(source, prop, "must be a TOML array, e.g. "
                                            "[{name = \"tank\", disks = [\"c2t0d0\"]}]")
        return parsed
    return value


def parse_smf_settings(text: str, source: str = "SMF") -> dict[str, dict[str, Any]]:
    """Settings from `svcprop -p config FMRI` output; properties without a value are unset.

    `source` (the FMRI) is what a ConfigError names, with the property.
    """
    settings: dict[str, dict[str, Any]] = {}
    for record in split_records(text):
        if len(record) < 2:
            raise ParseError("svcprop", " ".join(record), "expected `PG/PROP TYPE VALUE...`")
        prop, smf_type, values = record[0], record[1], record[2:]
        if not prop.startswith(PROPERTY_GROUP + "/"):
            raise ParseError("svcprop", " ".join(record), f"not in property group {PROPERTY_GROUP}")
        where = setting_of(prop)
        if where is None:
            known = ", ".join(property_name(s, k) for s, keys in SCHEMA.items() for k in keys)
            raise ConfigError(source, prop, f"unknown property; known: {known}")
        if not values:
            continue
        if len(values) > 1:
            raise ConfigError(source, prop, f"must have one value, not {len(values)}")
        section, key = where
        value = _coerce(source, prop, SCHEMA[section][key][0], smf_type, values[0])
        if (section, key) == ("log", "level") and value not in LOG_LEVELS:
            raise ConfigError(source, prop, f"must be one of {', '.join(LOG_LEVELS)}")
        settings.setdefault(section, {})[key] = value
    return settings


def read_smf_settings(system: System, fmri: str) -> dict[str, dict[str, object]]:
    """The settings set as properties of `fmri`, as {section: {key: value}}.

    Only the properties that hold a value are returned. An instance without a `config`
    property group has none set: an empty dict.
    """
    argv = [SVCPROP, "-p", PROPERTY_GROUP, fmri]
    result = system.run(argv, check=False)
    if result.returncode != 0:
        if "Couldn't find property group" in result.stderr:
            return {}
        raise CommandError(argv, result.returncode, result.stderr)
    return parse_smf_settings(result.stdout, fmri)


def merged(values: dict[str, dict[str, Any]],
           overrides: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`values` (defaults < TOML file) with the SMF properties laid over them."""
    return {section: {**keys, **overrides.get(section, {})} for section, keys in values.items()}
