"""`metadata collect-logs -o FILE`: one tarball for a bug report, like `cloud-init
collect-logs`: the agent's SMF logs, `status --json`, the checkpoint (decoded), the
history, the query file, the settings file and the service's SMF properties.

Everything passes through `redact` on the way in: the agent never logs or stores secrets,
but a settings file can carry an endpoint with a password, and a log may quote a line an
operator pasted. Redacted: private key blocks, SSH public key bodies, URL credentials,
`password`/`token`/`secret` values, and any long base64 run. The tarball is written to a
temporary file beside FILE and renamed into place, mode 0600.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import tempfile
import time

from fsm.system import System

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any

MAX_FILE_BYTES = 4 << 20   # of each log taken (its end: the latest lines)
PREFIX = "metadata-logs"

_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE "
                  r"KEY-----|\Z)", re.S)
_SSH_KEY = re.compile(r"\b((?:ssh|ecdsa|sk)-[a-z0-9@.-]+)[ \t]+AAAA[0-9A-Za-z+/=]+")
_URL_CREDENTIALS = re.compile(r"(\w+://)[^/\s:@]+:[^/\s@]+@")
_NAMED_SECRET = re.compile(r"(?i)\b(password|passwd|pass|token|secret|api[_-]?key)"
                           r"(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|\S+)")
_LONG_BASE64 = re.compile(r"[0-9A-Za-z+/]{64,}={0,2}")


def redact(text: str) -> str:
    text = _PEM.sub("[redacted: private key]", text)
    text = _SSH_KEY.sub(r"\1 [redacted: key]", text)
    text = _URL_CREDENTIALS.sub(r"\1[redacted]@", text)
    text = _NAMED_SECRET.sub(r"\1\2[redacted]", text)
    return _LONG_BASE64.sub("[redacted: base64]", text)


def _tail(system: System, path: str) -> str | None:
    try:
        size = os.path.getsize(system.path(path))
        with open(system.path(path), "rb") as f:
            if size > MAX_FILE_BYTES:
                f.seek(size - MAX_FILE_BYTES)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


def _checkpoint_json(system: System) -> str | None:
    from fsm.checkpoint import CHECKPOINT_PATH, CheckpointError, decode

    try:
        return json.dumps(decode(system.read_bytes(CHECKPOINT_PATH)).to_map(), indent=1,
                          sort_keys=True, default=str)
    except FileNotFoundError:
        return None
    except (OSError, CheckpointError) as e:
        return f"(unreadable: {e})"


def _smf_properties(system: System) -> str:
    from fsm.smfprops import PROPERTY_GROUP, SVCPROP

    fmri = "svc:/system/illumos/metadata:default"
    if not system.exists(SVCPROP):
        return f"({SVCPROP} is not on this guest)\n"
    try:
        result = system.run([SVCPROP, "-p", PROPERTY_GROUP, fmri], check=False)
    except Exception as e:  # a report must be made whatever the guest's state
        return f"({SVCPROP} failed: {e})\n"
    return result.stdout + (f"(exit {result.returncode}: {result.stderr.strip()})\n"
                            if result.returncode else "")


def members(system: System) -> dict[str, str]:
    """Archive name -> redacted text; what could not be read is said, not skipped."""
    from fsm.clean import SMF_LOGS
    from fsm.history import HISTORY_PATH
    from fsm.query import QUERY_PATH
    from fsm.settings import SETTINGS_PATH
    from fsm.status import status_data

    out: dict[str, Any] = {
        "status.json": json.dumps(status_data(system.root), indent=2, sort_keys=True) + "\n",
        "checkpoint.json": _checkpoint_json(system),
        "history.json": _tail(system, HISTORY_PATH),
        "query.json": _tail(system, QUERY_PATH),
        "metadata-agent.toml": _tail(system, SETTINGS_PATH),
        "smf-properties.txt": _smf_properties(system),
    }
    for log in SMF_LOGS:
        out["logs/" + log.rsplit("/", 1)[1]] = _tail(system, log)
    return {name: redact(text if text is not None else "(absent on this guest)\n")
            for name, text in out.items()}


def write(system: System, output: str) -> list[str]:
    """Write the tarball to `output` (a host path); returns the member names."""
    parts = members(system)
    now = int(time.time())
    directory = os.path.dirname(os.path.abspath(output)) or "."
    fd, tmp = tempfile.mkstemp(prefix=".collect-logs-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name, text in parts.items():
                data = text.encode("utf-8")
                info = tarfile.TarInfo(f"{PREFIX}/{name}")
                info.size, info.mtime, info.mode = len(data), now, 0o600
                tar.addfile(info, io.BytesIO(data))
        os.chmod(tmp, 0o600)
        os.replace(tmp, output)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return sorted(parts)
