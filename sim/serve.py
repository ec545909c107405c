"""Runs a guest's metadata emulator: in the foreground (`sim serve`) or around a boot.

An emulator module's `serve(root, metadata)` returns a running server with `.endpoint`
settings (written into `<root>/etc/metadata-agent.toml`) and `.close()`; it is ready when
`serve` returns, so nobody sleeps waiting for it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

from sim import guest, platforms

SETTINGS_FILE = "etc/metadata-agent.toml"


def write_endpoint(root: str, endpoint: dict[str, dict[str, Any]]) -> None:
    """Merge the emulator's endpoint into the guest's settings file, keeping what a test or
    a person already put there (e.g. short `[timeouts]` for a fault test)."""
    from fsm.settings import toml_parser

    tomllib = toml_parser()

    path = os.path.join(root, SETTINGS_FILE)
    try:
        with open(path, "rb") as f:
            settings: dict[str, dict[str, Any]] = tomllib.load(f)
    except FileNotFoundError:
        settings = {}
    for section, values in endpoint.items():
        settings.setdefault(section, {}).update(values)
    lines: list[str] = []
    for section, values in settings.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    guest._write(root, SETTINGS_FILE, "\n".join(lines))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):   # e.g. [storage] pools: an array of inline tables
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


@contextlib.contextmanager
def serving(root: str) -> Iterator[Any]:
    st_platform = guest.state.load(root)["platform"]
    mod = platforms.emulator(st_platform)
    server = mod.serve(root, guest.load_metadata(root)) if mod and hasattr(mod, "serve") else None
    if server is not None and server.endpoint:
        # (A served NoCloud seed's URL is in the SMBIOS serial, as on a Tribblix or OmniOS
        # zone: such a guest has no settings file, and none is made for it.)
        write_endpoint(root, server.endpoint)
    try:
        yield server
    finally:
        if server is not None:
            server.close()


def serve_forever(root: str) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with serving(root) as server:
        if server is None:
            print("this platform's metadata is local to the guest: nothing to serve")
            return 0
        print(f"serving: {getattr(server, 'where', None) or server.endpoint}", flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0
