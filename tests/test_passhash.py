"""operations/passhash.py: the SHA-512 crypt the agent hashes plain passwords with."""

from __future__ import annotations

import warnings

import pytest
from guest import fresh_python

from operations.passhash import hash_password, sha512_crypt


@pytest.mark.parametrize(("salt", "key", "expected"), [
    # Test vectors from Drepper's "Unix crypt using SHA-256 and SHA-512", section 8.
    ("saltstring", b"Hello world!",
     "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbY"
     "EdFCoEOfaS35inz1"),
    ("rounds=10000$saltstringsaltstring", b"Hello world!",
     "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM"
     "0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."),
    ("rounds=5000$toolongsaltstring", b"This is just a test",
     "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZx"
     "Uhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"),
])
def test_specification_vectors(salt, key, expected):
    assert sha512_crypt(key, salt) == expected


def test_same_as_libc_crypt_where_python_has_it():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        crypt = pytest.importorskip("crypt")
    for password in ("zone-secret", "ä unicode pässword", "x" * 100):
        assert sha512_crypt(password.encode(), "Qz1xYw2vUt3s") == \
            crypt.crypt(password, "$6$Qz1xYw2vUt3s$")


def test_fresh_salt_each_time():
    first, second = hash_password("same"), hash_password("same")
    assert first.startswith("$6$") and first != second and len(first.split("$")[2]) == 16


def test_libc_and_specification_agree_and_the_crypt_module_is_not_imported():
    """crypt_sha512 takes libc's hash when Python has `_crypt` (3.9-3.12) and the
    specification's otherwise: both must give the same string, `rounds=` included. The
    public `crypt` module stays unimported: its import hashes test passwords (~7 ms)."""
    probe = (
        "import sys\n"
        "from operations.passhash import crypt_sha512, sha512_crypt, hash_password\n"
        "for spec in ('Qz1xYw2vUt3s', 'rounds=5000$Qz1xYw2vUt3s', 'rounds=1000$short'):\n"
        "    for pw in ('zone-secret', 'ä pässword'):\n"
        "        assert crypt_sha512(pw, spec) == sha512_crypt(pw.encode(), spec), spec\n"
        "assert hash_password('x').startswith('$6$')\n"
        "print('crypt' in sys.modules)\n")
    assert fresh_python(probe) == "False"


def test_salts_use_the_whole_alphabet_and_only_it():
    """new_salt maps a random byte's low six bits onto the 64 salt letters: over many
    salts every letter turns up, nothing else does, and none repeats."""
    from operations.passhash import SALT_CHARS, new_salt

    salts = [new_salt() for _ in range(400)]
    assert len(SALT_CHARS) == len(set(SALT_CHARS)) == 64
    assert all(len(s) == 16 for s in salts) and len(set(salts)) == len(salts)
    assert set("".join(salts)) == set(SALT_CHARS)   # 6400 draws: a missing letter is ~1e-42


def test_the_digests_are_hashlibs_without_loading_openssl():
    """fsm/digests.py gives hashlib's SHA-256 and SHA-512, from CPython's own code: the
    boot never loads _hashlib (OpenSSL) for them."""
    probe = (
        "import sys\n"
        "from fsm.digests import sha256, sha512\n"
        "data = [b'', b'abc', bytes(range(256)) * 40]\n"
        "one = [sha256(d).hexdigest() + sha512(d).hexdigest() for d in data]\n"
        "h = sha256(); h.update(b'a'); h.update(b'bc')\n"
        "print('_hashlib' in sys.modules)\n"
        "import hashlib\n"
        "assert one == [hashlib.sha256(d).hexdigest() + hashlib.sha512(d).hexdigest()\n"
        "               for d in data]\n"
        "assert h.digest() == hashlib.sha256(b'abc').digest()\n"
        "print('ok')\n")
    assert fresh_python(probe).splitlines() == ["False", "ok"]
