"""SHA-512 crypt (`$6$`) for plain cloud-config passwords, before anything is written.

Why this, and not something else:
- illumos passwd(1) hashes with crypt(3C) and the algorithm CRYPT_DEFAULT names in
  /etc/security/policy.conf; every illumos distribution ships `crypt_sha512` and reads
  `$6$` hashes (crypt.conf(5)), so a `$6$` hash works on every image we boot.
- libc crypt(3C), the exact code passwd uses, is called through the C function behind
  Python's `crypt` module (`_crypt.crypt`) when it is there: Python 3.9 to 3.12, which is what OmniOS, OpenIndiana and Tribblix ship.
- It is deprecated (PEP 594) and gone in 3.13, and we will not hand a password to a
  command's argv or environment (`openssl passwd` takes it there unless -stdin), nor pull
  in passlib (unmaintained since 2020) for one function. So without `crypt`, the hash is
  computed here, following Ulrich Drepper's published "Unix crypt using SHA-256 and
  SHA-512" specification step by step (5000 rounds, 16-character salt); the tests check
  it against the specification's own test vectors and against libc crypt where present.

The plain password exists only in memory: it is never logged, checkpointed or passed to
a command.
"""

from __future__ import annotations

import os

from fsm.digests import sha512

SALT_CHARS = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ROUNDS_DEFAULT = 5000
# The order in which the spec's final step distributes the 64 digest bytes.
_ORDER = ((0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26),
          (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32),
          (12, 33, 54), (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38),
          (18, 39, 60), (40, 61, 19), (62, 20, 41))


def new_salt() -> str:
    """16 characters from the kernel's random source, as `secrets` would draw them:
    the alphabet has 64 letters, so a byte's low six bits pick one without bias."""
    return "".join(SALT_CHARS[b & 0x3F] for b in os.urandom(16))


def hash_password(password: str, salt: str | None = None) -> str:
    """`$6$SALT$HASH` of `password`, with libc crypt(3C) when Python still has it."""
    return crypt_sha512(password, salt or new_salt())


def crypt_sha512(password: str, salt_spec: str) -> str:
    """The `$6$` hash of `password` with this salt (`rounds=N$` allowed, as in a setting):
    libc's when Python has it, else the specification's, which the tests hold equal."""
    libc = _libc_crypt()
    if libc is not None:
        result = libc(password, f"$6${salt_spec}$")
        if result and result.startswith("$6$"):
            return result
    return sha512_crypt(password.encode("utf-8"), salt_spec)


def _libc_crypt():  # noqa: ANN202 - the C function or None
    """`_crypt.crypt`: the very function `crypt.crypt` calls. Not the `crypt` module: its
    import hashes a test password with every method it knows (SHA-512 and SHA-256 at 5000
    rounds, Blowfish, MD5) to list the available ones, about 7 ms of a boot, for nothing
    we use. Gone with `crypt` in Python 3.13: then the specification's code runs."""
    try:
        from _crypt import crypt  # type: ignore[import-not-found]
    except ImportError:
        return None
    return crypt


def _b64(data: bytes) -> str:
    out = []
    for a, b, c in _ORDER:
        value = (data[a] << 16) | (data[b] << 8) | data[c]
        out.extend(SALT_CHARS[(value >> (6 * i)) & 0x3F] for i in range(4))
    value = data[63]
    out.extend(SALT_CHARS[(value >> (6 * i)) & 0x3F] for i in range(2))
    return "".join(out)


def _repeat(digest: bytes, length: int) -> bytes:
    return (digest * (length // 64 + 1))[:length]


def sha512_crypt(key: bytes, salt_spec: str) -> str:
    """The specification's algorithm. `salt_spec` may carry `rounds=N$` like a setting."""
    rounds, custom = ROUNDS_DEFAULT, False
    if salt_spec.startswith("rounds="):
        text, _, salt_spec = salt_spec[len("rounds="):].partition("$")
        rounds, custom = min(max(int(text), 1000), 999_999_999), True
    salt = salt_spec.split("$", 1)[0][:16].encode("ascii")
    b = sha512(key + salt + key).digest()
    a = sha512(key + salt + _repeat(b, len(key)))
    n = len(key)
    while n:
        a.update(b if n & 1 else key)
        n >>= 1
    a_digest = a.digest()
    p = _repeat(sha512(key * len(key)).digest(), len(key))
    s = _repeat(sha512(salt * (16 + a_digest[0])).digest(), len(salt))
    c = a_digest
    for i in range(rounds):
        h = sha512(p if i & 1 else c)
        if i % 3:
            h.update(s)
        if i % 7:
            h.update(p)
        h.update(c if i & 1 else p)
        c = h.digest()
    prefix = f"$6$rounds={rounds}$" if custom else "$6$"
    return f"{prefix}{salt.decode()}${_b64(c)}"
