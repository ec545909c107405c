"""Pure validators for the metadata fields that end up in files root trusts.

Hostnames go into /etc/nodename and /etc/inet/hosts, key lines into root's authorized_keys,
and the user script is executed as root; a stray newline, `#` or NUL in any of them can add
lines the operator never asked for. These functions only look at their arguments (no guest,
no logging), so the agent and the seed tools (`metadata seed ...`) reject exactly the same
inputs with exactly the same messages. `origin` is `source:field` as
`Metadata.origin("hostname")` gives it, e.g. `smartos:sdc:hostname` or `cpio:nodename`.

Problem texts never contain a whole key or any of a script: a message may end up in a log
that more people read than root's files.
"""

from __future__ import annotations

import binascii
import ipaddress
import re
import struct

from fsm.errors import MetadataError, shown
from fsm.record import record

# ---- hostnames --------------------------------------------------------------------------

MAX_HOSTNAME_CHARS = 255   # RFC 1123 section 2.1 (and below SYS_NMLN - 1 = 256 on illumos)
MAX_LABEL_CHARS = 63
_LABEL_CHARS = re.compile(r"[A-Za-z0-9-]+\Z")
_OPTION_NAME = re.compile(r"[A-Za-z0-9-]+")


def _error(origin: str, problem: str) -> MetadataError:
    source, sep, field = origin.partition(":")
    return MetadataError(source, field if sep else "value", problem)


def _shown(text: str, limit: int = 40) -> str:
    """A short printable rendering of a rejected value: never a 10 MB log line."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def validate_hostname(value: object, origin: str) -> str:
    """Return `value` unchanged if it is an RFC 1123 host name, else raise MetadataError.

    A name is dot-separated labels of ASCII letters, digits and hyphens, none starting or
    ending with a hyphen, each at most 63 characters, 255 in all; the first label is the
    node name. No trailing dot, no IDN in Unicode form (give the `xn--` form), and not a
    dotted-decimal address (RFC 1123 2.1: a host name must not look like one).
    """
    if not isinstance(value, str):
        raise _error(origin, f"hostname must be text, not {type(value).__name__}")
    if value == "":
        raise _error(origin, "hostname is empty")
    for pos, ch in enumerate(value):
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise _error(origin, f"hostname contains control character U+{ord(ch):04X} at "
                                 f"position {pos}")
        if ord(ch) > 0x7E:
            raise _error(origin, f"hostname contains non-ASCII character U+{ord(ch):04X} at "
                                 f"position {pos}; give an internationalised name in its "
                                 f"xn-- (IDNA) form")
    if len(value) > MAX_HOSTNAME_CHARS:
        raise _error(origin, f"hostname is {len(value)} characters long; at most "
                             f"{MAX_HOSTNAME_CHARS} are allowed")
    for pos, ch in enumerate(value):
        if not (ch.isalnum() or ch in "-."):
            what = "a space" if ch == " " else repr(ch)
            raise _error(origin, f"hostname {_shown(value)} contains {what} at position {pos}; "
                                 f"only letters, digits, hyphens and dots are allowed")
    labels = value.split(".")
    for label in labels:
        if label == "":
            raise _error(origin, f"hostname {_shown(value)} has an empty label (a leading, "
                                 f"trailing or doubled dot)")
        if len(label) > MAX_LABEL_CHARS:
            raise _error(origin, f"hostname label {_shown(label)} is {len(label)} characters "
                                 f"long; at most {MAX_LABEL_CHARS} are allowed")
        if label[0] == "-" or label[-1] == "-":
            raise _error(origin, f"hostname label {_shown(label)} starts or ends with a hyphen")
        assert _LABEL_CHARS.match(label)
    if len(labels) > 1 and all(label.isdigit() for label in labels):
        raise _error(origin, f"hostname {_shown(value)} looks like an IP address, not a name")
    return value


def node_name(hostname: str) -> str:
    """The node name of a validated host name: its first label (`web1` of `web1.example`)."""
    return hostname.split(".", 1)[0]


# ---- authorized_keys --------------------------------------------------------------------

MAX_KEY_LINE_BYTES = 16 * 1024        # an RSA-16384 line with options is well under this
MAX_KEYS_TOTAL_BYTES = 1024 * 1024    # far above any real key list; a 10 MB blob is hostile

# key type -> the fields of its public key blob after the type string, in wire order:
# "mpint"/"string" are RFC 4251 strings; "ed25519" is a 32-byte string; "curve:NAME" a
# string that must equal NAME.
KEY_BLOB_FIELDS: dict[str, tuple[str, ...]] = {
    "ssh-rsa": ("mpint", "mpint"),
    "ssh-dss": ("mpint", "mpint", "mpint", "mpint"),
    "ssh-ed25519": ("ed25519",),
    "ecdsa-sha2-nistp256": ("curve:nistp256", "string"),
    "ecdsa-sha2-nistp384": ("curve:nistp384", "string"),
    "ecdsa-sha2-nistp521": ("curve:nistp521", "string"),
    "sk-ssh-ed25519@openssh.com": ("ed25519", "string"),
    "sk-ecdsa-sha2-nistp256@openssh.com": ("curve:nistp256", "string", "string"),
}
KEY_TYPES = tuple(KEY_BLOB_FIELDS)

# sshd(8) AUTHORIZED_KEYS FILE FORMAT: options without and with a quoted value.
FLAG_OPTIONS = frozenset({
    "agent-forwarding", "cert-authority", "no-agent-forwarding", "no-port-forwarding",
    "no-pty", "no-user-rc", "no-x11-forwarding", "port-forwarding", "pty", "restrict",
    "user-rc", "x11-forwarding", "no-touch-required", "verify-required",
})
VALUE_OPTIONS = frozenset({
    "command", "environment", "expiry-time", "from", "permitlisten", "permitopen",
    "principals", "tunnel",
})


@record(frozen=True)
class KeyLine:
    """One parsed authorized_keys line; `identity` is what makes two lines the same key."""

    options: str
    key_type: str
    body: str
    comment: str

    @property
    def identity(self) -> tuple[str, str]:
        return (self.key_type, self.body)

    @property
    def line(self) -> str:
        parts = [self.options] if self.options else []
        parts += [self.key_type, self.body]
        if self.comment:
            parts.append(self.comment)
        return " ".join(parts)


class KeyLineError(ValueError):
    """Why one line is not a usable public key (message safe to log: no key material)."""


def _split_options(line: str) -> tuple[str, str]:
    """Split a leading options field off: it ends at the first unquoted space or tab."""
    in_quotes = False
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and in_quotes and i + 1 < len(line) and line[i + 1] == '"':
            i += 2
            continue
        if ch == '"':
            in_quotes = not in_quotes
        elif ch in " \t" and not in_quotes:
            return line[:i], line[i:].lstrip(" \t")
        i += 1
    if in_quotes:
        raise KeyLineError("options have an unterminated quoted string")
    return line, ""


def _check_options(options: str) -> None:
    pos = 0
    while pos < len(options):
        m = _OPTION_NAME.match(options, pos)
        if not m:
            raise KeyLineError(f"options are malformed at character {pos + 1}")
        name = m.group(0).lower()
        pos = m.end()
        if pos < len(options) and options[pos] == "=":
            if name not in VALUE_OPTIONS:
                raise KeyLineError(f"option {_shown(name, 30)} does not take a value")
            if pos + 1 >= len(options) or options[pos + 1] != '"':
                raise KeyLineError(f"option {name} needs a double-quoted value")
            end = pos + 2
            while end < len(options) and options[end] != '"':
                escaped = options[end] == "\\" and options[end + 1:end + 2] == '"'
                end += 2 if escaped else 1
            if end >= len(options):
                raise KeyLineError(f"option {name} has an unterminated quoted value")
            pos = end + 1
        elif name not in FLAG_OPTIONS:
            known = name in VALUE_OPTIONS
            raise KeyLineError(f"option {name} needs a value" if known
                               else f"unknown option {_shown(name, 30)}")
        if pos < len(options):
            if options[pos] != ",":
                raise KeyLineError(f"options are malformed at character {pos + 1}")
            pos += 1
            if pos == len(options):
                raise KeyLineError("options end with a comma")


def _read_string(blob: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 4 > len(blob):
        raise KeyLineError("key data is truncated")
    (size,) = struct.unpack(">I", blob[pos:pos + 4])
    if pos + 4 + size > len(blob):
        raise KeyLineError("key data is truncated")
    return blob[pos + 4:pos + 4 + size], pos + 4 + size


def _check_blob(key_type: str, blob: bytes) -> None:
    """The decoded body must be this type's public key exactly: no more, no less."""
    embedded, pos = _read_string(blob, 0)
    if embedded != key_type.encode():
        raise KeyLineError(f"key data is for type {_shown(embedded.decode('ascii', 'replace'), 40)}, "
                           f"not {key_type}")
    for kind in KEY_BLOB_FIELDS[key_type]:
        value, pos = _read_string(blob, pos)
        if kind == "ed25519" and len(value) != 32:
            raise KeyLineError(f"{key_type} key is {len(value)} bytes, not 32")
        if kind.startswith("curve:") and value != kind[6:].encode():
            raise KeyLineError(f"key data names curve {_shown(value.decode('ascii', 'replace'), 20)}, "
                               f"not {kind[6:]}")
        if kind == "mpint" and not value:
            raise KeyLineError("key data has an empty number")
    if pos != len(blob):
        raise KeyLineError("key data has trailing bytes")


_PRIVATE_BEGIN = re.compile(r"^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_PRIVATE_END = re.compile(r"^-----END [A-Z0-9 ]*PRIVATE KEY-----")
_TYPE_NAME = re.compile(r"[a-z][a-z0-9.@-]{0,39}")


def _key_type_shown(word: str) -> str:
    """An unknown key type as a message may quote it: only if it looks like a type name
    (`ssh-ed25519`, `sk-ssh-ed25519@openssh.com`); anything else may be a piece of key
    material (a private key's base64 body) and is never echoed."""
    if _TYPE_NAME.fullmatch(word):
        return _shown(word, 30)
    return "(not shown: it may be key material)"


def parse_key_line(line: str) -> KeyLine:
    """Parse one non-blank, non-comment authorized_keys line, or raise KeyLineError."""
    try:
        size = len(line.encode("utf-8"))
    except UnicodeEncodeError:
        raise KeyLineError("line is not valid Unicode text") from None
    if size > MAX_KEY_LINE_BYTES:
        raise KeyLineError(f"line is longer than {MAX_KEY_LINE_BYTES} bytes")
    if "\0" in line:
        raise KeyLineError("line contains a NUL byte")
    if "\r" in line:
        raise KeyLineError("line contains a carriage return (DOS line endings?); "
                           "use Unix line endings")
    for ch in line:
        if (ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F:
            raise KeyLineError(f"line contains control character U+{ord(ch):04X}")
    text = line.strip(" \t")
    first = re.split(r"[ \t]", text, maxsplit=1)[0]
    options = ""
    if first not in KEY_BLOB_FIELDS:
        if not ("=" in first or "," in first or first.lower() in FLAG_OPTIONS):
            raise KeyLineError(f"unknown key type {_key_type_shown(first)}")
        options, text = _split_options(text)
        if not text:
            raise KeyLineError(f"unknown key type {_key_type_shown(first)}")
        _check_options(options)
    fields = re.split(r"[ \t]+", text, maxsplit=2)
    key_type = fields[0]
    if key_type not in KEY_BLOB_FIELDS:
        raise KeyLineError(f"unknown key type {_key_type_shown(key_type)}")
    if len(fields) < 2:
        raise KeyLineError(f"{key_type} line has no key data")
    body = fields[1]
    comment = fields[2] if len(fields) > 2 else ""
    import base64  # here only: a boot whose keys are already installed reads no key line

    try:
        blob = base64.b64decode(body.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise KeyLineError(f"{key_type} key data is not valid base64") from None
    _check_blob(key_type, blob)
    return KeyLine(options, key_type, body, comment)


def parse_authorized_keys(text: str | bytes, origin: str) -> tuple[list[str], list[str]]:
    """Split authorized_keys text into (valid key lines, problems).

    Blank lines and `#` comment lines are skipped silently. Each valid line is returned
    stripped of surrounding blanks, once (a key repeated with the same type and data is
    kept at its first line). Each problem names `origin` and the line number, never the key.
    A whole input that is not UTF-8 text or exceeds MAX_KEYS_TOTAL_BYTES raises
    MetadataError: nothing from it is trusted.
    """
    if isinstance(text, bytes):
        size = len(text)
        if size <= MAX_KEYS_TOTAL_BYTES:
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as e:
                raise _error(origin, f"SSH keys are not UTF-8 text (byte {e.start})") from None
    elif isinstance(text, str):
        size = len(text.encode("utf-8", "surrogatepass"))
    else:
        raise _error(origin, f"SSH keys must be text, not {type(text).__name__}")
    if size > MAX_KEYS_TOTAL_BYTES:
        raise _error(origin, f"SSH keys are {size} bytes; at most {MAX_KEYS_TOTAL_BYTES} "
                             f"are accepted, so none were taken")
    assert isinstance(text, str)
    valid: list[str] = []
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    private_from: int | None = None
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip(" \t")
        if private_from is not None:   # inside a private key: skip it, say nothing of it
            if _PRIVATE_END.match(stripped):
                private_from = None
            continue
        if _PRIVATE_BEGIN.match(stripped):
            private_from = number
            problems.append(f"{origin}: line {number}: this looks like a private key; give "
                            "the public key (the .pub file) instead. Its lines were skipped "
                            "and are not shown")
            continue
        if not stripped or stripped.startswith("#"):
            continue
        try:
            key = parse_key_line(line)
        except KeyLineError as e:
            problems.append(f"{origin}: line {number}: {e}; line skipped")
            continue
        if key.identity in seen:
            continue
        seen.add(key.identity)
        valid.append(stripped)
    return valid, problems


# ---- the first-boot script --------------------------------------------------------------

MAX_SCRIPT_BYTES = 16 * 1024 * 1024
MAX_INTERPRETER_LINE_BYTES = 1024   # illumos exec reads INTPSZ = MAXPATHLEN bytes of `#!`


def validate_script(data: bytes, origin: str) -> bytes:
    """Return the script unchanged if illumos can execute it, else raise MetadataError.

    It must start with `#!` and an absolute interpreter path on a line ending in LF; a
    CR-LF line ending would make the kernel look for an interpreter named `/bin/sh\\r`.
    Messages never quote the script: it may carry secrets.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, (bytes, bytearray)):
        raise _error(origin, f"user script must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise _error(origin, "user script is empty; it was not installed")
    if len(data) > MAX_SCRIPT_BYTES:
        raise _error(origin, f"user script is {len(data)} bytes; at most {MAX_SCRIPT_BYTES} "
                             f"are accepted; it was not installed")
    if not data.startswith(b"#!"):
        hint = " (it starts with a byte-order mark)" if data.startswith(b"\xef\xbb\xbf") else ""
        raise _error(origin, f"user script does not begin with an interpreter line such as "
                             f"#!/bin/sh{hint}; it was not installed")
    end = data.find(b"\n")
    first = data if end < 0 else data[:end]
    if len(first) >= MAX_INTERPRETER_LINE_BYTES:
        raise _error(origin, f"user script's #! line is longer than "
                             f"{MAX_INTERPRETER_LINE_BYTES - 1} bytes; it was not installed")
    if first.endswith(b"\r"):
        raise _error(origin, "user script's #! line ends with CR-LF (DOS line endings): the "
                             "interpreter would not be found; convert it to Unix line "
                             "endings; it was not installed")
    if b"\0" in first or b"\r" in first:
        raise _error(origin, "user script's #! line contains a NUL or CR byte; "
                             "it was not installed")
    interpreter = first[2:].lstrip(b" \t")
    if not interpreter.startswith(b"/"):
        raise _error(origin, "user script's #! line must name an interpreter by absolute "
                             "path (e.g. #!/bin/sh); it was not installed")
    return data


# ---- addresses, nameservers, gateways, domains ------------------------------------------
#
# Python's ipaddress accepts anything after `%` as an IPv6 scope id, newlines included: a
# nameserver `fe80::1%x\nnameserver 198.51.100.66` would add lines to /etc/resolv.conf and
# forge log lines, and the same text would reach `route` argv as a gateway. A scope is
# accepted only when it is an illumos link name (dladm(8): letters, digits, `_` and `.`,
# starting with a letter and ending with a digit, at most 31 characters), and only on a
# link-local address, the one kind of address a scope names a link for.

_LINK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,29}[0-9]\Z")
_DOMAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,62}(\.[A-Za-z0-9_][A-Za-z0-9_-]{0,62})*\.?\Z")
MAX_DOMAIN_CHARS = 253
LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def _shown_value(value: object) -> str:
    return shown(value)


def parse_address(value: object, origin: str, what: str = "address"
                  ) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IP address, with a scope id only when it is a link name on a link-local address."""
    if not isinstance(value, str):
        raise _error(origin, f"{what} must be text, not {type(value).__name__}")
    text = value.strip()
    address, pct, scope = text.partition("%")
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        raise _error(origin, f"{_shown_value(value)} is not an IP address") from None
    if pct:
        if parsed.version != 6 or not parsed.is_link_local:
            raise _error(origin, f"{what} {_shown_value(value)}: a scope id (%...) is only "
                                 "meaningful on an IPv6 link-local address")
        if not _LINK_NAME.match(scope):
            raise _error(origin, f"{what} {_shown_value(value)}: scope id {_shown_value(scope)}"
                                 " is not a link name")
        return ipaddress.ip_address(text)
    return parsed


def validate_nameserver(value: object, origin: str) -> str:
    """A resolver address as resolv.conf may name it: not unspecified (0.0.0.0, ::),
    not multicast or broadcast."""
    addr = parse_address(value, origin, "nameserver")
    if addr.is_unspecified or addr.is_multicast or addr == LIMITED_BROADCAST:
        raise _error(origin, f"nameserver {_shown_value(value)} is not a host address")
    return str(addr)


def validate_gateway(value: object, origin: str) -> str:
    """A router address: not unspecified, multicast, broadcast or loopback."""
    addr = parse_address(value, origin, "gateway")
    if (addr.is_unspecified or addr.is_multicast or addr.is_loopback
            or addr == LIMITED_BROADCAST):
        raise _error(origin, f"gateway {_shown_value(value)} is not a router's address")
    return str(addr)


def validate_interface(value: object, origin: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """address/prefix for a static address: a /0 prefix (netmask 0.0.0.0) would claim
    every address as on-link, so it is refused; no scope ids."""
    if not isinstance(value, str) or "%" in value:
        raise _error(origin, f"{_shown_value(value)} is not an address/prefix")
    try:
        iface = ipaddress.ip_interface(value.strip())
    except ValueError:
        raise _error(origin, f"{_shown_value(value)} is not an address/prefix") from None
    if iface.network.prefixlen == 0:
        raise _error(origin, f"{_shown_value(value)} has a /0 prefix (netmask 0.0.0.0): "
                             "every address would be on this link")
    if iface.ip.is_multicast or iface.ip.is_unspecified:
        raise _error(origin, f"{_shown_value(value)} is not a host address")
    return iface


def validate_domain(value: object, origin: str) -> str:
    """A DNS search domain: dot-separated labels of letters, digits, `-` and `_` (end
    anchored with \\Z: `$` would let a trailing newline through)."""
    if not isinstance(value, str) or len(value) > MAX_DOMAIN_CHARS or not _DOMAIN.match(value):
        raise _error(origin, f"{_shown_value(value)} is not a domain name")
    return value
