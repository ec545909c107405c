"""SSH public key fingerprints as `ssh-keygen -l` prints them, so an image builder can
compare what a seed would install with the keys they hold: `256 SHA256:... comment (ED25519)`.

The SHA256 fingerprint is the unpadded base64 of the SHA-256 of the decoded key blob; the
size is the modulus (RSA) or p (DSA) in bits, or the curve size. Lines are parsed by the
agent's own operations/validate.parse_key_line, so a line it would skip has no fingerprint.
"""

from __future__ import annotations

import base64
import struct

from fsm.digests import sha256
from operations.validate import KeyLineError, parse_key_line

_TYPE_NAMES = {
    "ssh-rsa": "RSA", "ssh-dss": "DSA", "ssh-ed25519": "ED25519",
    "ecdsa-sha2-nistp256": "ECDSA", "ecdsa-sha2-nistp384": "ECDSA",
    "ecdsa-sha2-nistp521": "ECDSA", "sk-ssh-ed25519@openssh.com": "ED25519-SK",
    "sk-ecdsa-sha2-nistp256@openssh.com": "ECDSA-SK",
}
_FIXED_BITS = {
    "ssh-ed25519": 256, "sk-ssh-ed25519@openssh.com": 256, "ecdsa-sha2-nistp256": 256,
    "ecdsa-sha2-nistp384": 384, "ecdsa-sha2-nistp521": 521,
    "sk-ecdsa-sha2-nistp256@openssh.com": 256,
}


def _mpints(blob: bytes) -> list[int]:
    """The RFC 4251 strings after the type string, as unsigned integers."""
    values, pos = [], 0
    while pos + 4 <= len(blob):
        (size,) = struct.unpack(">I", blob[pos:pos + 4])
        values.append(int.from_bytes(blob[pos + 4:pos + 4 + size], "big"))
        pos += 4 + size
    return values[1:]


def fingerprint(line: str) -> str:
    """`BITS SHA256:HASH COMMENT (TYPE)` for one authorized_keys line; KeyLineError if the
    agent would skip it."""
    key = parse_key_line(line)
    blob = base64.b64decode(key.body)
    digest = base64.b64encode(sha256(blob).digest()).decode("ascii").rstrip("=")
    if key.key_type in _FIXED_BITS:
        bits = _FIXED_BITS[key.key_type]
    else:
        numbers = _mpints(blob)
        # ssh-rsa: e, n (the modulus sizes the key); ssh-dss: p, q, g, y (p does).
        bits = (numbers[1] if key.key_type == "ssh-rsa" else numbers[0]).bit_length()
    return f"{bits} SHA256:{digest} {key.comment or 'no comment'} ({_TYPE_NAMES[key.key_type]})"


def fingerprints(lines: tuple[str, ...] | list[str]) -> list[str]:
    """Fingerprints of the lines the agent would install (skipped lines left out)."""
    out = []
    for line in lines:
        try:
            out.append(fingerprint(line))
        except KeyLineError:
            continue
    return out
