"""The pure validators the agent and the seed tools share: hostnames, key lines, scripts."""

from __future__ import annotations

import base64
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsm.errors import MetadataError
from operations.validate import (
    KEY_TYPES,
    MAX_KEYS_TOTAL_BYTES,
    KeyLineError,
    node_name,
    parse_authorized_keys,
    parse_key_line,
    validate_hostname,
    validate_script,
)

ORIGIN = "smartos:sdc:hostname"

# Real keys made by OpenSSH's ssh-keygen (public halves only).
ED25519 = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDazqU03aY9Ji8PMC8LMY+/NEXpzM9RFnVZQftyKpuAJ "
           "user@ed25519")
ECDSA256 = ("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHuki1cpBhqB"
            "NYj66QJ1eDyoK54dNg9LEaujW+gjsNwpnLfwXjdtNTlYbC8D0ZsT9PG+pzdXUhhx4/YyLOfGvsk= "
            "user@ecdsab256")
RSA2048 = ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCXn9t7jxRh+4NgLjVSMf7p/nHZ/ygYClWyPIjRXp9GUWkbgf2"
           "SzuZ3/tXY00Sf3tsUG/z9NETivgGlX9KLB2B4jmWPTAjYv7DkAyZ/MmstlshgwVyhvd+kSmfChZzYLjYUEIq1K"
           "QYS6JLvok42wNqStc1qJ30u+mvi3BhN5oJHqSHaGHIfwTWTPkLf95DiH45bmfnvRpffSa6CpBWhVa0d6w+w3W2v"
           "xiWWLmeJWwHBtkMLsR/Pf8NeZqtfvQNAEv5Thgp4VEXl2NEjF6em55cjdkjQScf+k2bKO3UPoJDLIwUCo7hl4I"
           "jNCfPNk0gP31XNtEc241yw5fReKk3LiI+z user@rsab2048")
ED25519_BODY = ED25519.split()[1]


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def synth_key(key_type: str, seed: int = 1) -> str:
    """The base64 body of a structurally valid public key of `key_type`."""
    filler = bytes([seed % 256]) * 32
    fields = {
        "ssh-rsa": [b"\x01\x00\x01", b"\x00" + filler * 8],
        "ssh-dss": [filler, filler[:20], filler, filler],
        "ssh-ed25519": [filler],
        "ecdsa-sha2-nistp256": [b"nistp256", b"\x04" + filler * 2],
        "ecdsa-sha2-nistp384": [b"nistp384", b"\x04" + filler * 3],
        "ecdsa-sha2-nistp521": [b"nistp521", b"\x04" + filler * 4 + b"\x01\x02"],
        "sk-ssh-ed25519@openssh.com": [filler, b"ssh:"],
        "sk-ecdsa-sha2-nistp256@openssh.com": [b"nistp256", b"\x04" + filler * 2, b"ssh:"],
    }[key_type]
    blob = _string(key_type.encode()) + b"".join(_string(f) for f in fields)
    return base64.b64encode(blob).decode()


# ---- hostnames --------------------------------------------------------------------------

@pytest.mark.parametrize("name", [
    "web1", "a", "1web", "web-1", "Web1.Example.COM", "x" * 63,
    ".".join(["x" * 63] * 4),  # 255 characters exactly
    "xn--bcher-kva.example", "host.10", "10.example",
])
def test_valid_hostnames_are_returned_unchanged(name):
    assert validate_hostname(name, ORIGIN) == name


@pytest.mark.parametrize("name, fragment", [
    ("", "empty"),
    (" ", "a space"),
    ("web 1", "a space"),
    ("web1#evil", "'#'"),
    ("web1\n", "U+000A"),
    ("web1\n127.0.0.1 evil", "U+000A"),
    ("web1\r", "U+000D"),
    ("web\x00", "U+0000"),
    ("web\t1", "U+0009"),
    ("web\x7f", "U+007F"),
    ("-web", "hyphen"),
    ("web-", "hyphen"),
    ("web.-x", "hyphen"),
    ("a..b", "empty label"),
    (".a", "empty label"),
    ("a.", "empty label"),
    ("x" * 64, "at most 63"),
    ("a." * 150 + "a", "at most 255"),
    ("x" * 300, "at most 255"),
    ("bücher", "non-ASCII"),
    ("web\u2028x", "non-ASCII"),
    ("web_1", "'_'"),
    ("web/1", "'/'"),
    ("1.2.3.4", "IP address"),
])
def test_hostile_hostnames_are_rejected_naming_the_source(name, fragment):
    with pytest.raises(MetadataError) as err:
        validate_hostname(name, ORIGIN)
    assert err.value.source == "smartos" and err.value.field == "sdc:hostname"
    assert str(err.value).startswith("smartos: sdc:hostname: ")
    assert fragment in str(err.value)
    assert len(str(err.value)) < 300  # a 300-character name is not echoed whole


@pytest.mark.parametrize("value", [None, 5, b"web1", ["web1"]])
def test_a_hostname_that_is_not_text_is_rejected(value):
    with pytest.raises(MetadataError, match="hostname must be text"):
        validate_hostname(value, "cpio:nodename")


def test_node_name_is_the_first_label():
    assert node_name("web1.example.com") == "web1"
    assert node_name("web1") == "web1"


LABEL = st.from_regex(r"\A[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")


@settings(max_examples=300, deadline=None)
@given(st.lists(LABEL, min_size=1, max_size=5).map(".".join)
       .filter(lambda n: len(n) <= 255 and not (
           "." in n and all(label.isdigit() for label in n.split(".")))))
def test_property_valid_hostnames_round_trip(name):
    assert validate_hostname(name, ORIGIN) == name
    assert validate_hostname(node_name(name), ORIGIN) == node_name(name)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_property_any_text_is_accepted_unchanged_or_rejected_cleanly(text):
    try:
        result = validate_hostname(text, ORIGIN)
    except MetadataError as e:
        assert str(e).startswith("smartos: sdc:hostname: ")
        return
    assert result == text
    assert set(text) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
    assert 0 < len(text) <= 255 and all(0 < len(label) <= 63 for label in text.split("."))


# ---- authorized_keys --------------------------------------------------------------------

KEYS_ORIGIN = "cpio:authorized_keys"


def test_real_keys_of_each_common_type_are_accepted_with_their_comments():
    valid, problems = parse_authorized_keys("\n".join([ED25519, ECDSA256, RSA2048]) + "\n",
                                            KEYS_ORIGIN)
    assert valid == [ED25519, ECDSA256, RSA2048]
    assert problems == []


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_every_known_key_type_is_accepted(key_type):
    line = f"{key_type} {synth_key(key_type)} someone@somewhere"
    assert parse_authorized_keys(line, KEYS_ORIGIN) == ([line], [])


@pytest.mark.parametrize("options", [
    "no-pty",
    "restrict,pty",
    'from="10.0.0.0/8,!10.1.2.3",no-agent-forwarding',
    'command="echo \\"hi, there\\"",no-pty',
    'environment="A=b c",permitopen="host:22"',
    'NO-PTY,Restrict',
])
def test_options_are_allowed(options):
    line = f"{options} {ED25519}"
    key = parse_key_line(line)
    assert key.options == options and key.key_type == "ssh-ed25519"
    assert key.comment == "user@ed25519"
    assert parse_authorized_keys(line, KEYS_ORIGIN) == ([line], [])


def test_blank_and_comment_lines_are_skipped_and_repeats_kept_once():
    text = f"# root's keys\n\n   \n{ED25519}\n  {ED25519}  \nno-pty {ED25519}\n"
    assert parse_authorized_keys(text, KEYS_ORIGIN) == ([ED25519], [])


@pytest.mark.parametrize("line, fragment", [
    ("ssh-foo AAAAC3NzaC1lZDI1NTE5 x", "unknown key type 'ssh-foo'"),
    ("ssh-ed25519", "no key data"),
    ("ssh-ed25519 AAAA!!notbase64 x", "not valid base64"),
    ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDazqU03aY9Ji8PMC8LMY-_NEXpzM9RFnVZQftyKpuAJ",
     "not valid base64"),
    (f"ssh-rsa {ED25519_BODY} x", "for type 'ssh-ed25519', not ssh-rsa"),
    (f"ssh-ed25519 {synth_key('ssh-ed25519')[:-8]}", "truncated"),
    ("ssh-ed25519 " + base64.b64encode(_string(b"ssh-ed25519") + _string(b"x" * 31)).decode(),
     "31 bytes, not 32"),
    ("ssh-ed25519 " + base64.b64encode(_string(b"ssh-ed25519") + _string(b"x" * 32)
                                       + b"junk").decode(), "trailing bytes"),
    ("ssh-ed25519 " + base64.b64encode(_string(b"ssh-ed25519") + b"\x00\x00").decode(),
     "truncated"),
    ("ecdsa-sha2-nistp256 " + synth_key("ecdsa-sha2-nistp384"),
     "not ecdsa-sha2-nistp256"),
    (f"bogus-option {ED25519}", "unknown key type"),
    (f"no-pty,bogus {ED25519}", "unknown option 'bogus'"),
    (f'command="unterminated {ED25519}', "unterminated"),
    (f"command=noquotes {ED25519}", "double-quoted"),
    (f"no-pty=\"x\" {ED25519}", "does not take a value"),
    (f"no-pty, {ED25519}", "end with a comma"),
    (f"{ED25519}\x00evil", "NUL"),
    (f"{ED25519}\r", "carriage return"),
    (f"{ED25519}\x1b[31m", "U+001B"),
    ("ssh-ed25519 " + "A" * 20000, "longer than 16384 bytes"),
])
def test_bad_lines_are_reported_by_number_and_skipped(line, fragment):
    text = f"{ED25519}\n# a comment\n{line}\n{ECDSA256}\n"
    valid, problems = parse_authorized_keys(text, KEYS_ORIGIN)
    assert valid == [ED25519, ECDSA256]
    assert len(problems) == 1
    assert problems[0].startswith(f"{KEYS_ORIGIN}: line 3: ")
    assert fragment in problems[0]
    body = line.split()[1] if len(line.split()) > 1 else "\0\0never"
    assert body not in problems[0] and ED25519_BODY not in problems[0]


def test_an_embedded_newline_makes_two_lines_each_judged_alone():
    valid, problems = parse_authorized_keys(f"{ED25519}\nrm -rf / #", KEYS_ORIGIN)
    assert valid == [ED25519]
    assert problems == [f"{KEYS_ORIGIN}: line 2: unknown key type 'rm'; line skipped"]


def test_a_10_mb_key_file_is_refused_whole():
    huge = (ED25519 + "\n") * (10 * 1024 * 1024 // (len(ED25519) + 1))
    with pytest.raises(MetadataError, match=f"at most {MAX_KEYS_TOTAL_BYTES}"):
        parse_authorized_keys(huge, KEYS_ORIGIN)
    with pytest.raises(MetadataError, match="none were taken"):
        parse_authorized_keys(huge.encode(), KEYS_ORIGIN)


def test_key_bytes_that_are_not_utf8_are_refused_whole():
    with pytest.raises(MetadataError, match="not UTF-8"):
        parse_authorized_keys(ED25519.encode() + b" \xff\xfe\n", KEYS_ORIGIN)


@settings(max_examples=300, deadline=None)
@given(key_type=st.sampled_from(KEY_TYPES), seed=st.integers(0, 255),
       options=st.lists(st.sampled_from(["no-pty", "restrict", "no-user-rc",
                                         'from="10.0.0.0/8"', 'command="/bin/true, x"']),
                        max_size=3, unique=True).map(",".join),
       comment=st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
                       max_size=40).map(str.strip))
def test_property_valid_key_lines_round_trip(key_type, seed, options, comment):
    parts = [options] if options else []
    parts += [key_type, synth_key(key_type, seed)]
    if comment:
        parts.append(comment)
    line = " ".join(parts)
    assert parse_authorized_keys(line, KEYS_ORIGIN) == ([line], [])
    assert parse_key_line(line).line == line


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=400), st.binary(max_size=400),
                 st.lists(st.sampled_from([ED25519, "ssh-ed25519 ", "no-pty ", '"', "\n", "\r",
                                           "\0", "AAAA", "=", ",", " ", "#"]),
                          max_size=20).map("".join)))
def test_property_any_input_gives_lines_from_it_or_a_clean_error(data):
    try:
        valid, problems = parse_authorized_keys(data, KEYS_ORIGIN)
    except MetadataError:
        return
    text = data.decode() if isinstance(data, bytes) else data
    assert all(line in [ln.strip(" \t") for ln in text.split("\n")] for line in valid)
    assert all(p.startswith(f"{KEYS_ORIGIN}: line ") for p in problems)
    for line in valid:
        parse_key_line(line)  # every accepted line parses again


def test_parse_key_line_raises_only_its_own_error():
    with pytest.raises(KeyLineError):
        parse_key_line("ssh-ed25519 %%%%")


# ---- user scripts -----------------------------------------------------------------------

SCRIPT_ORIGIN = "smartos:user-script"


@pytest.mark.parametrize("script", [
    b"#!/bin/sh\necho hi\n", b"#! /usr/bin/env python3\nprint(1)\n", b"#!/bin/ksh",
    b"#!/bin/bash -ex\nlater CR-LF lines are the interpreter's business\r\n",
])
def test_scripts_with_an_interpreter_line_are_accepted_unchanged(script):
    assert validate_script(script, SCRIPT_ORIGIN) == script


@pytest.mark.parametrize("script, fragment", [
    (b"", "empty"),
    (b"echo hunter2-secret\n", "does not begin with an interpreter line"),
    (b"\xef\xbb\xbf#!/bin/sh\necho hunter2-secret\n", "byte-order mark"),
    (b"#!/bin/sh\r\necho hunter2-secret\r\n", "CR-LF"),
    (b"#!bin/sh\necho hunter2-secret\n", "absolute path"),
    (b"#!\necho hunter2-secret\n", "absolute path"),
    (b"#!/bin/sh\x00hunter2-secret\n", "NUL or CR"),
    (b"#!/" + b"x" * 1100 + b"\necho hunter2-secret\n", "longer than 1023 bytes"),
])
def test_scripts_illumos_cannot_run_are_rejected_without_quoting_them(script, fragment):
    with pytest.raises(MetadataError) as err:
        validate_script(script, SCRIPT_ORIGIN)
    assert fragment in str(err.value)
    assert str(err.value).startswith("smartos: user-script: ")
    assert "hunter2" not in str(err.value) and "not installed" in str(err.value)


def test_a_text_script_is_taken_as_utf8():
    assert validate_script("#!/bin/sh\necho é\n", SCRIPT_ORIGIN) == "#!/bin/sh\necho é\n".encode()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_property_scripts_are_accepted_unchanged_or_rejected_cleanly(data):
    try:
        assert validate_script(data, SCRIPT_ORIGIN) == data
    except MetadataError:
        return
    assert data.startswith(b"#!")


# ---- nameservers, gateways, interfaces, domains (issue 12) -------------------------------

@pytest.mark.parametrize("value", [
    "fe80::1%x\nnameserver 198.51.100.66", "fe80::1%", "fe80::1%vioif0 -ifp x",
    "2001:db8::1%vioif0", "192.0.2.1%vioif0", "0.0.0.0", "::", "224.0.0.251", "ff02::1",
    "255.255.255.255", "not-an-address", 5,
])
def test_nonsense_nameservers_are_refused(value):
    from operations.validate import validate_nameserver

    with pytest.raises(MetadataError):
        validate_nameserver(value, "test:resolvers")


def test_a_link_local_nameserver_may_name_its_link():
    from operations.validate import validate_gateway, validate_nameserver

    assert validate_nameserver("fe80::1%vioif0", "t:f") == "fe80::1%vioif0"
    assert validate_gateway(" 192.0.2.1 ", "t:f") == "192.0.2.1"


@pytest.mark.parametrize("value", ["127.0.0.1", "255.255.255.255", "224.0.0.1", "0.0.0.0",
                                   "fe80::1%a\nb0"])
def test_nonsense_gateways_are_refused(value):
    from operations.validate import validate_gateway

    with pytest.raises(MetadataError):
        validate_gateway(value, "test:nics")


@pytest.mark.parametrize("value", ["10.0.0.5/0", "0.0.0.0/24", "224.0.0.5/24",
                                   "fe80::1%vioif0/64", "x/24"])
def test_nonsense_interfaces_are_refused(value):
    from operations.validate import validate_interface

    with pytest.raises(MetadataError):
        validate_interface(value, "test:nics")


@pytest.mark.parametrize("value", ["example.com\n", "example.com\nnameserver 1.2.3.4",
                                   "a" * 64 + ".com", "x" * 600_000, "-", ""])
def test_domains_are_anchored_at_the_very_end(value):
    from operations.validate import validate_domain

    with pytest.raises(MetadataError) as e:
        validate_domain(value, "test:search")
    assert len(str(e.value)) < 300
