"""The handlers of the cloud-config modules (HANDLERS, in cloudconfig.py, maps each key to
one; users and passwords are in cloudconfig_users.py): type checks and safe values.

Each handler takes (value, where, fields, warnings): it puts what it accepts into `fields`
(the CloudConfig keyword arguments) and appends one warning per item it refuses, naming
`where` (`source:document: key`), the item and, cut with `shown`, the value. Secrets
(passwords, hashes, file contents) are never quoted. Nothing here touches the guest: the
checks that need the guest (does the user exist, is a path a link) are the steps'.
"""

from __future__ import annotations

import base64
import binascii
import re
import shlex
import zlib

from fsm.errors import shown
from providers.cloudconfig_model import WriteFile

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any, Callable

# illumos login and group names: printable, no `:`; we also refuse anything a shell or a
# `user:group` owner string could misread, and keep to LOGNAME_MAX (32).
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\Z")
HASH = re.compile(r"\$[0-9a-z]+\$[^:\s]+\Z")
PACKAGE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+/@,:=~-]*\Z")
TIMEZONE = re.compile(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*\Z")
PROFILE = re.compile(r"[A-Za-z0-9 _.()-]+\Z")    # prof_attr(5) names: "Primary Administrator"
MAX_ITEMS = 1000                 # users, groups, files, commands, packages, keys
MAX_FILES_BYTES = 16 << 20       # write_files, decoded, in all
MAX_COMMANDS_BYTES = 1 << 20     # runcmd and bootcmd, each, as a script
# Where write_files may not write: the agent's own state, and kernel/device name spaces.
REFUSED_PREFIXES = ("/var/metadata", "/proc", "/dev", "/devices", "/system")


def _bool(value: Any, where: str, warnings: list[str]) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "no", "off", "0"):
        return False
    warnings.append(f"{where}: must be true or false, not {shown(value)}; ignored")
    return None


def _str(value: Any, where: str, warnings: list[str], secret: bool = False) -> str | None:
    if isinstance(value, str) and "\0" not in value:
        return value
    what = "a value" if secret else shown(value)
    warnings.append(f"{where}: must be text, not {what} ({type(value).__name__}); ignored")
    return None


def _names(value: Any, where: str, warnings: list[str], pattern: re.Pattern = NAME,
           what: str = "name") -> tuple[str, ...]:
    """A list of names, or one comma-separated string of them (cloud-init takes both)."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list):
        warnings.append(f"{where}: must be a list or a comma-separated string, not "
                        f"{type(value).__name__}; ignored")
        return ()
    out = []
    for i, item in enumerate(value[:MAX_ITEMS]):
        if isinstance(item, str) and pattern.match(item.strip()):
            out.append(item.strip())
        else:
            warnings.append(f"{where}[{i}]: {shown(item)} is not a valid {what}; skipped")
    return tuple(dict.fromkeys(out))


def _keys(value: Any, where: str, warnings: list[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.splitlines()
    if not isinstance(value, list):
        warnings.append(f"{where}: must be a list of key lines, not {type(value).__name__}; "
                        f"ignored")
        return ()
    out = []
    for i, item in enumerate(value[:MAX_ITEMS]):
        if isinstance(item, str) and "\0" not in item:
            out.extend(line.strip() for line in item.splitlines() if line.strip())
        else:
            warnings.append(f"{where}[{i}]: must be a key line (text), not "
                            f"{type(item).__name__}; skipped")
    return tuple(out)


# ---- hostname, keys, root ----------------------------------------------------------------

def _hostname(key: str) -> Callable[..., None]:
    def handle(value: Any, where: str, fields: dict, warnings: list[str]) -> None:
        text = _str(value, where, warnings)
        if text is not None and text.strip():
            fields[key] = text.strip()     # validated (RFC 1123) by the hostname step
    return handle


def _flag(key: str) -> Callable[..., None]:
    def handle(value: Any, where: str, fields: dict, warnings: list[str]) -> None:
        flag = _bool(value, where, warnings)
        if flag is not None:
            fields[key] = flag
    return handle


def _ssh_authorized_keys(value: Any, where: str, fields: dict, warnings: list[str]) -> None:
    fields["ssh_authorized_keys"] = _keys(value, where, warnings)


def _ssh_pwauth(value: Any, where: str, fields: dict, warnings: list[str]) -> None:
    if isinstance(value, str) and value.strip().lower() == "unchanged":
        return
    flag = _bool(value, where, warnings)
    if flag is not None:
        fields["ssh_pwauth"] = flag


# ---- files, commands, packages, timezone -------------------------------------------------

def _decode(content: Any, encoding: Any, where: str, warnings: list[str]) -> bytes | None:
    if content is None:
        return b""
    if isinstance(content, bytes):   # YAML !!binary
        data = content
    elif isinstance(content, str):
        data = content.encode("utf-8")
    else:
        warnings.append(f"{where}.content: must be text, not {type(content).__name__}; skipped")
        return None
    kind = str(encoding or "text/plain").lower()
    try:
        if kind in ("b64", "base64", "gz+base64", "gzip+base64", "gz+b64", "gzip+b64"):
            data = base64.b64decode(data, validate=False)
        if kind.startswith(("gz", "gzip")):
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            data = inflater.decompress(data, MAX_FILES_BYTES + 1)
        elif kind not in ("text/plain", "b64", "base64"):
            warnings.append(f"{where}.encoding: {shown(encoding)} is not b64, gzip or "
                            f"gz+b64; skipped")
            return None
    except (binascii.Error, zlib.error, ValueError):
        warnings.append(f"{where}.content: cannot be decoded as {kind}; skipped")
        return None
    return data


def _write_files(value: Any, where: str, fields: dict, warnings: list[str]) -> None:
    if not isinstance(value, list):
        warnings.append(f"{where}: must be a list, not {type(value).__name__}; ignored")
        return
    files: list[WriteFile] = []
    total = 0
    for i, item in enumerate(value[:MAX_ITEMS]):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            warnings.append(f"{at}: must be a mapping, not {type(item).__name__}; skipped")
            continue
        path = item.get("path")
        parts = path.split("/") if isinstance(path, str) else []
        if not isinstance(path, str) or not path.startswith("/") or "\0" in path or \
                ".." in parts or path.endswith("/") or len(path) > 1024:
            warnings.append(f"{at}.path: {shown(path)} is not an absolute file path without "
                            f"`..`; skipped")
            continue
        path = "/" + "/".join(p for p in parts if p not in ("", "."))
        if any(path == p or path.startswith(p + "/") for p in REFUSED_PREFIXES):
            warnings.append(f"{at}.path: {shown(path)} is under a directory write_files may not "
                            f"write ({', '.join(REFUSED_PREFIXES)}); skipped")
            continue
        for unknown in set(item) - {"path", "content", "encoding", "owner", "permissions",
                                    "append", "defer"}:
            warnings.append(f"{at}.{shown(unknown)}: not supported (no `source`: the agent "
                            f"fetches nothing for a file); ignored")
        data = _decode(item.get("content"), item.get("encoding"), at, warnings)
        if data is None:
            continue
        total += len(data)
        if total > MAX_FILES_BYTES:
            warnings.append(f"{at}: write_files holds more than {MAX_FILES_BYTES} bytes; "
                            f"{path} and the files after it skipped")
            break
        owner = item.get("owner", "root:root")
        user, _, group = owner.partition(":") if isinstance(owner, str) else ("", "", "")
        if not NAME.match(user) or (group and not NAME.match(group)):
            warnings.append(f"{at}.owner: {shown(owner)} is not `user` or `user:group`; "
                            f"{path} skipped")
            continue
        perms = item.get("permissions", 0o644)
        try:
            mode = perms if isinstance(perms, int) and not isinstance(perms, bool) \
                else int(str(perms), 8)
        except ValueError:
            mode = -1
        if not 0 <= mode <= 0o7777:
            warnings.append(f"{at}.permissions: {shown(perms)} is not an octal mode; "
                            f"{path} skipped")
            continue
        flags = {k: _bool(item[k], f"{at}.{k}", warnings) for k in ("append", "defer") if k in item}
        files.append(WriteFile(path, data, owner if group else f"{user}:", mode,
                               append=bool(flags.get("append")), defer=bool(flags.get("defer"))))
    fields["write_files"] = tuple(files)


def _commands(key: str) -> Callable[..., None]:
    def handle(value: Any, where: str, fields: dict, warnings: list[str]) -> None:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            warnings.append(f"{where}: must be a list of commands, not {type(value).__name__}; "
                            f"ignored")
            return
        lines: list[str] = []
        for i, item in enumerate(value[:MAX_ITEMS]):
            if isinstance(item, list) and item and all(isinstance(a, (str, int, float))
                                                       and not isinstance(a, bool) for a in item):
                line = " ".join(shlex.quote(str(a)) for a in item)
            elif isinstance(item, str):
                line = item
            else:
                warnings.append(f"{where}[{i}]: must be a string or a list of arguments, not "
                                f"{type(item).__name__}; skipped")
                continue
            if "\0" in line:
                warnings.append(f"{where}[{i}]: contains a NUL byte; skipped")
                continue
            lines.append(line)
        if sum(len(line) + 1 for line in lines) > MAX_COMMANDS_BYTES:
            warnings.append(f"{where}: more than {MAX_COMMANDS_BYTES} bytes of commands; ignored")
            return
        fields[key] = tuple(lines)
    return handle


def _packages(value: Any, where: str, fields: dict, warnings: list[str]) -> None:
    if not isinstance(value, list):
        warnings.append(f"{where}: must be a list, not {type(value).__name__}; ignored")
        return
    names = []
    for i, item in enumerate(value[:MAX_ITEMS]):
        if isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item):
            item = f"{item[0]}@{item[1]}"   # cloud-init's [name, version]: a pkg(5) FMRI
        if isinstance(item, str) and PACKAGE.match(item):
            names.append(item)
        else:
            warnings.append(f"{where}[{i}]: {shown(item)} is not a package name; skipped")
    fields["packages"] = tuple(dict.fromkeys(names))


def _timezone(value: Any, where: str, fields: dict, warnings: list[str]) -> None:
    text = _str(value, where, warnings)
    if text is not None and TIMEZONE.match(text) and len(text) < 128:
        fields["timezone"] = text
    elif text is not None:
        warnings.append(f"{where}: {shown(text)} is not a zoneinfo name; ignored")
