"""operations/passhash.py: the SHA-512 crypt the agent hashes plain passwords with."""

from __future__ import annotations

import warnings

import pytest

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
