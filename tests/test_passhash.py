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
