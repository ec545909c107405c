"""The agent's own settings: `<root>/etc/metadata-agent.toml`, all keys optional.

The endpoint keys are fixed so that other tools (our `sim serve`, an image builder's test
rig) can point the agent at any metadata service. Every key is checked against SCHEMA: a
wrong type or an unknown key is a ConfigError naming the file and the key (exit 96), since
a mistyped endpoint silently ignored would send the agent to the wrong service.
"""

from __future__ import annotations

import math
import sys

from fsm.errors import ConfigError
from fsm.record import field, record
from fsm.system import System

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any


def toml_parser():
    """The TOML module (tomllib, or tomli before 3.11), imported when there is a file to
    parse: most guests have no settings file and no seed config.toml, and its import
    compiles regular expressions on every boot."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on the illumos distributions' Python 3.9/3.10
        import tomli as tomllib
    return tomllib


SETTINGS_PATH = "/etc/metadata-agent.toml"

# section -> key -> (type, default, what it is for)
SCHEMA: dict[str, dict[str, tuple[type, Any, str]]] = {
    "log": {
        "level": (str, "info", "debug, info, warning or error"),
        "console": (str, "", "also copy log lines to this device (e.g. /dev/msglog)"),
    },
    "smartos": {
        "device": (str, "/dev/term/b", "serial port of the SmartOS metadata service"),
    },
    "ec2": {
        "endpoint": (str, "http://169.254.169.254", "IMDS base URL"),
        "endpoint_ipv6": (str, "http://[fd00:ec2::254]",
                          "IMDS base URL over IPv6, used when no DHCPv4 lease comes "
                          "(IPv6-only subnets)"),
    },
    "digitalocean": {
        "endpoint": (str, "http://169.254.169.254", "metadata service base URL"),
    },
    "azure": {
        "endpoint": (str, "http://169.254.169.254", "Instance Metadata Service base URL"),
        "wireserver": (str, "", "wireserver base URL; empty: from the DHCP lease's option "
                                "245, else http://168.63.129.16"),
    },
    "openstack": {
        "endpoint": (str, "http://169.254.169.254",
                     "metadata service base URL, asked when no config-2 drive is attached"),
    },
    "timeouts": {
        "command": (float, 30.0, "seconds any one command may run"),
        "http": (float, 2.0, "seconds for one HTTP request"),
        "serial": (float, 2.0, "seconds for one serial request"),
        "fetch": (float, 60.0, "seconds FETCH may spend in retries, in all"),
        "probe": (float, 0.25, "seconds a local probe (serial port) may take in DETECT"),
        "dhcp": (float, 60.0, "seconds to wait for a DHCP lease"),
        "devlinks": (float, 10.0, "seconds to wait for the root disk's /dev links at boot"),
    },
    "network": {
        "skip": (bool, False, "skip the NETWORK phase (as the metadata's network.skip)"),
    },
    "ssh": {
        "regenerate_host_keys": (bool, True, "give a new instance its own SSH host keys"),
    },
    "users": {
        "default": (str, "", "cloud-config's default user (e.g. omnios); unset: none, root "
                             "takes its keys and password"),
        "default_profiles": (str, "Primary Administrator",
                             "RBAC profiles the default user gets when it is created"),
    },
    "storage": {
        # Checked entry by entry when STORAGE runs (operations/poolspec.py): a bad entry is
        # a warning naming its field and value, and the other pools are still made.
        "pools": (list, [], "data pools: [{name, disks = [\"c2t0d0\" | \"size>=10G\" | "
                            "\"all-blank\"], vdev = stripe|mirror|raidz|raidz2, mountpoint, "
                            "autoexpand}]; made once per instance on blank disks, or "
                            "imported when an attached disk has the named pool"),
    },
}

LOG_LEVELS = ("debug", "info", "warning", "error")
# No wait of the agent's is meant to last an hour: a larger value is a typo (ms for s) or
# `inf`, and would turn a bounded wait into SMF's timeout and maintenance.
MAX_SECONDS = 3600.0


def check_seconds(source: str, dotted: str, value: float) -> float:
    """A timeout: finite, 0..MAX_SECONDS (nan, inf, 1e9 are configuration errors)."""
    if not math.isfinite(value):
        raise ConfigError(source, dotted, f"{value!r} is not a finite number of seconds")
    if not 0 <= value <= MAX_SECONDS:
        raise ConfigError(source, dotted, f"{value:g} s is outside 0..{MAX_SECONDS:g} s")
    return float(value)


@record(frozen=True)
class Settings:
    values: dict[str, dict[str, Any]] = field(default_factory=lambda: defaults())
    # `section.key` names set by the file (or SMF), as opposed to left at their defaults.
    given: frozenset[str] = frozenset()

    def get(self, dotted: str) -> Any:
        section, _, key = dotted.partition(".")
        return self.values[section][key]

    def explicit(self, dotted: str) -> bool:
        """Whether the operator set this key (e.g. a serial device path on the host)."""
        return dotted in self.given


def defaults() -> dict[str, dict[str, Any]]:
    return {s: {k: spec[1] for k, spec in keys.items()} for s, keys in SCHEMA.items()}


# What TOML forbids in a comment: the control characters but tab (TOML 1.0, "Comment").
_NOT_IN_COMMENTS = frozenset(map(chr, [*range(0x09), *range(0x0A, 0x20), 0x7F]))


def only_comments(text: str) -> bool:
    """Whether `text` is blank lines and comments alone, as a commented-out template an
    image ships is: the empty TOML document, {} to tomllib too. Such a file is not worth
    importing tomllib for (with typing, 33 M instructions beside what a boot has loaded,
    more than a third of a bare interpreter's 89 M). Anything else, invalid text
    included, goes to tomllib."""
    lines = text.split("\n")
    for n, line in enumerate(lines, 1):
        if n < len(lines) and line.endswith("\r"):    # CRLF; a CR without its LF is not
            line = line[:-1]
        body = line.lstrip(" \t")
        if body and (body[0] != "#" or not _NOT_IN_COMMENTS.isdisjoint(body)):
            return False
    return True


def parse(text: str, source: str = SETTINGS_PATH) -> Settings:
    doc = {} if only_comments(text) else _parse_toml(text, source)
    values = defaults()
    given: set[str] = set()
    for section, table in doc.items():
        if section not in SCHEMA:
            raise ConfigError(source, section, f"unknown section; known: {', '.join(SCHEMA)}")
        if not isinstance(table, dict):
            raise ConfigError(source, section, "must be a table")
        for key, value in table.items():
            dotted = f"{section}.{key}"
            if key not in SCHEMA[section]:
                raise ConfigError(source, dotted, f"unknown key; known: {', '.join(SCHEMA[section])}")
            values[section][key] = _coerce(source, dotted, SCHEMA[section][key][0], value)
            given.add(dotted)
    if values["log"]["level"] not in LOG_LEVELS:
        raise ConfigError(source, "log.level", f"must be one of {', '.join(LOG_LEVELS)}")
    return Settings(values, frozenset(given))


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    tomllib = toml_parser()
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(source, "(file)", f"not valid TOML: {e}") from None
    except RecursionError:
        raise ConfigError(source, "(file)", "nested too deeply to be settings") from None


def _coerce(source: str, dotted: str, want: type, value: Any) -> Any:
    if want is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ConfigError(source, dotted, "must not be negative")
        return check_seconds(source, dotted, float(value))
    if isinstance(value, want) and (want is bool or not isinstance(value, bool)):
        return value
    raise ConfigError(source, dotted, f"must be a {want.__name__}, not {type(value).__name__}")


def load(system: System, smf_fmri: str | None = None) -> Settings:
    """Defaults < the guest's TOML file < the SMF instance's `config/*` properties.

    SMF properties come last because `svccfg setprop` + `svcadm refresh` is how an operator
    adjusts an installed image, while the TOML file is usually baked into it; the manifest
    declares the properties without values, so the file applies wherever nobody set one.
    They are read only under SMF (`smf_fmri` given).
    """
    try:
        text = system.read_text(SETTINGS_PATH, limit=1 << 20)
    except FileNotFoundError:
        settings = Settings()
    except (OSError, UnicodeError) as e:
        raise ConfigError(SETTINGS_PATH, "(file)", f"cannot be read: {e}") from None
    else:
        settings = parse(text)
    if smf_fmri:
        from fsm.smfprops import merged, read_smf_settings

        overrides = read_smf_settings(system, smf_fmri)
        given = settings.given | {f"{s}.{k}" for s, keys in overrides.items() for k in keys}
        settings = Settings(merged(settings.values, overrides), frozenset(given))
    return settings
