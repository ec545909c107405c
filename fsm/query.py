"""`metadata query [KEY]`: the metadata this instance was configured from, normalised.

What a first-boot script or an operator needs without speaking each platform's protocol:
the instance id, hostname, NICs, routes, resolvers, the fingerprints of root's keys and of
the host keys. Written by each start that fetched metadata, after the machine ran, as JSON
beside the checkpoint (/var/metadata/query.json, 0600, atomically through System).

Secrets never enter it: not the user script, not user-data, not passwords, not the key
material of root's authorized keys (fingerprints only). The source's own documents are
not kept either: only the fields of the one data model (providers/model.py).
"""

from __future__ import annotations

import json

from fsm.errors import AgentError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (status imports this)
if TYPE_CHECKING:
    from typing import Any

    from fsm.system import System


def _log():
    """This module's logger, made when there is something to log: `metadata status` reads
    this module's file without importing logging."""
    import logging

    return logging.getLogger(__name__)


QUERY_PATH = "/var/metadata/query.json"
QUERY_SCHEMA = 1
MAX_BYTES = 1 << 20


class QueryError(AgentError):
    """Nothing recorded yet, or no such key."""

    exit_code = 1


def normalised(md: Any, provider: str | None, host_keys: dict[str, str]) -> dict[str, Any]:
    """The document `query` prints, from a Metadata (no secret field is read)."""
    from fsm.seed.fingerprint import fingerprint
    from operations.validate import parse_authorized_keys

    keys, _ = parse_authorized_keys("\n".join(md.ssh_keys), md.origin("ssh_keys")) \
        if md.ssh_keys else ([], [])
    return {
        "schema": QUERY_SCHEMA,
        "platform": provider,
        "source": md.source,
        "instance_id": md.instance_id,
        "hostname": md.hostname,
        "nics": [{"mac": n.mac, "name": n.name, "addresses": list(n.addresses),
                  "dhcp4": n.dhcp4, "addrconf": n.addrconf, "gateways": list(n.gateways),
                  "primary": n.primary} for n in md.nics],
        "routes": [{"destination": r.destination, "gateway": r.gateway,
                    **({"interface": r.interface} if r.interface else {})} for r in md.routes],
        "resolvers": list(md.resolvers),
        "search_domains": list(md.search_domains),
        "ssh_key_fingerprints": [fingerprint(k) for k in keys],
        "host_key_fingerprints": dict(sorted(host_keys.items())),
        "user_script": md.user_script is not None,   # whether one came, never what
        "network_skip": md.network_skip,
    }


def save(system: System, md: Any, provider: str | None) -> None:
    """Record the metadata this start fetched; a failed write is only logged."""
    if system.dry_run or md is None:
        return
    from operations.hostkeys import fingerprints

    try:
        doc = normalised(md, provider, fingerprints(system))
        text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
        if len(text) > MAX_BYTES:   # `query` would refuse to read it back
            _log().warning("query: the metadata's summary is over %d bytes; %s not written",
                           MAX_BYTES, QUERY_PATH)
            return
        try:   # unchanged on most starts: spare the boot an fsync'd rewrite
            if system.read_bytes(QUERY_PATH, limit=MAX_BYTES) == text.encode("utf-8"):
                return
        except OSError:
            pass
        system.write_file(QUERY_PATH, text, mode=0o600)
    except (OSError, AgentError) as e:
        _log().warning("query: cannot write %s: %s", QUERY_PATH, e)


def load(system: System) -> dict[str, Any]:
    try:
        doc = json.loads(system.read_bytes(QUERY_PATH, limit=MAX_BYTES))
    except FileNotFoundError:
        raise QueryError(f"{QUERY_PATH}: no metadata recorded yet: the agent has not "
                         "fetched any on this guest") from None
    except (OSError, ValueError) as e:
        raise QueryError(f"{QUERY_PATH}: unreadable: {e}") from None
    if not isinstance(doc, dict):
        raise QueryError(f"{QUERY_PATH}: not a JSON object")
    return doc


def lookup(doc: dict[str, Any], key: str) -> Any:
    """`hostname`, `nics.0.mac`, `host_key_fingerprints.ed25519`: dotted, list indices."""
    value: Any = doc
    for part in key.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            known = ", ".join(sorted(doc)) if value is doc else ""
            raise QueryError(f"no key {key!r}" + (f"; known: {known}" if known else ""))
    return value


def render(value: Any) -> str:
    """A scalar as plain text (a script's `$(metadata query hostname)`), else JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return json.dumps(value, indent=1, sort_keys=True)
