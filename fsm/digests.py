"""SHA-256 and SHA-512 from CPython's own SHA-2 code, not OpenSSL's.

Importing hashlib loads OpenSSL (`_hashlib`, that is libcrypto and its relocations):
11 M instructions, about 2.7 ms of CPU, a tenth of a bare interpreter's start, for the
few digests a boot takes (an instance id, a host key's fingerprint, a seed's). CPython
builds its own SHA-2 as `_sha256` and `_sha512` (3.9 to 3.11) or `_sha2` (3.12 on), the
code hashlib itself falls back to without OpenSSL: the same digests (the tests compare
them with hashlib's). Where an interpreter was built without them, hashlib's are used.
"""

from __future__ import annotations

try:
    from _sha2 import sha256, sha512  # Python 3.12 and later
except ImportError:
    try:
        from _sha256 import sha256
        from _sha512 import sha512
    except ImportError:
        from hashlib import sha256, sha512

__all__ = ["sha256", "sha512"]
