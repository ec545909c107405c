"""The seed files of the original agent's CPIO device, turned into the one Metadata model.

Pure (name -> bytes in, Metadata out) so that the CPIO provider and the image builders' seed
tools (`metadata seed cpio|inspect`) accept exactly the same seeds with the same messages.
The files, as the original README defines them (all optional):

- `nodename`: the hostname, on the first line.
- `authorized_keys`: SSH keys for root, one per line, as sshd reads them.
- `config.toml`: overrides; only `[network] skip` (boolean) exists. An unknown key is
  warned about, not fatal, so a seed written for a newer agent still boots; bad TOML or a
  wrong type is a ConfigError naming the key (exit 96), since silently ignoring a `skip`
  the user asked for would configure a network they meant to leave alone.
- `firstboot.sh`: a script run once; it must start with an interpreter line (`#!`), else
  it is skipped with a warning (the rest of the seed is still applied).
"""

from __future__ import annotations

import logging

from fsm.errors import ConfigError, MetadataError
from fsm.record import field, record
from providers.items import Items
from providers.model import Metadata, Nic

log = logging.getLogger(__name__)

SEED_FILES = ("nodename", "authorized_keys", "config.toml", "firstboot.sh")
# config.toml: section -> key -> type
CONFIG_SCHEMA: dict[str, dict[str, type]] = {"network": {"skip": bool}}


@record(frozen=True)
class SeedReading:
    metadata: Metadata
    warnings: list[str] = field(default_factory=list)


def read_seed(files: dict[str, bytes], source: str = "cpio") -> SeedReading:
    """Metadata from the seed files present in `files`; an empty file counts as absent.

    Item by item (providers/items.py): a file the agent cannot use (not UTF-8, a
    firstboot.sh without `#!`) is a warning and is skipped, the other files are applied.
    Bad config.toml stays a ConfigError (see the module docstring). No file with content
    gives `empty=True`: no usable data, not a new instance.
    """
    files = {name: data for name, data in files.items() if name in SEED_FILES and data.strip()}
    items = Items(source)
    provenance: dict[str, str] = {}
    hostname = None
    if "nodename" in files:
        with items.guard():
            hostname = _text(files["nodename"], source, "nodename").strip().splitlines()[0].strip()
            provenance["hostname"] = "nodename"
    keys: tuple[str, ...] = ()
    if "authorized_keys" in files:
        with items.guard():
            text = _text(files["authorized_keys"], source, "authorized_keys")
            keys = tuple(line.strip() for line in text.splitlines()
                         if line.strip() and not line.lstrip().startswith("#"))
            provenance["ssh_keys"] = "authorized_keys"
    network_skip = False
    if "config.toml" in files:
        network_skip, warnings = parse_config(files["config.toml"], source)
        items.extend(warnings)
        provenance["network_skip"] = "config.toml network.skip"
    script = None
    if "firstboot.sh" in files:
        if files["firstboot.sh"].startswith(b"#!"):
            script = files["firstboot.sh"]
            provenance["user_script"] = "firstboot.sh"
        else:
            items.note("firstboot.sh", "must begin with an interpreter line such as "
                                       "#!/bin/sh: not installed, not run; skipped")
    # A seed names no NICs: as the original agent did, DHCP on the first link unless the
    # seed says `[network] skip = true`.
    nics: tuple[Nic, ...] = ()
    if not network_skip:
        nics = (Nic(mac=None, dhcp4=True, primary=True),)
        provenance["nics"] = "(seed: DHCP on the first link)"
    empty = not files
    if empty:
        items.note("(seed)", "no usable data (every file missing or empty): not a new "
                             "instance; nothing a previous instance installed is removed")
    md = Metadata(source=source, hostname=hostname or None, nics=nics, ssh_keys=keys,
                  user_script=script, network_skip=network_skip, provenance=provenance,
                  warnings=items.tuple(), empty=empty)
    return SeedReading(metadata=md, warnings=list(items.warnings))


def to_metadata(files: dict[str, bytes], source: str = "cpio") -> Metadata:
    """`read_seed`'s Metadata (its warnings are logged as they are found)."""
    return read_seed(files, source).metadata


def parse_config(data: bytes, source: str = "cpio") -> tuple[bool, list[str]]:
    """(network.skip, warnings) from config.toml; ConfigError naming the key when it is bad."""
    where = f"{source} config.toml"
    from fsm.settings import toml_parser  # imported for a config.toml only

    tomllib = toml_parser()
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(where, "(file)", "is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(where, "(file)", f"not valid TOML: {e}") from None
    except RecursionError:  # the parser recurses per level of `a = [[[[...`
        raise ConfigError(where, "(file)", "not valid TOML: nested too deeply") from None
    warnings = []
    for section, table in doc.items():
        if section not in CONFIG_SCHEMA:
            warnings.append(f"{where}: unknown key {section!r} ignored")
            continue
        if not isinstance(table, dict):
            raise ConfigError(where, section, f"must be a table ([{section}])")
        for key, value in table.items():
            wanted = CONFIG_SCHEMA[section].get(key)
            if wanted is None:
                warnings.append(f"{where}: unknown key '{section}.{key}' ignored")
            elif not isinstance(value, wanted):
                raise ConfigError(where, f"{section}.{key}",
                                  f"must be a {wanted.__name__} (true or false), "
                                  f"not {type(value).__name__} {value!r}")
    return bool(doc.get("network", {}).get("skip", False)), warnings


def _text(data: bytes, source: str, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise MetadataError(source, name, "is not UTF-8 text") from None
