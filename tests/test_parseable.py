"""The dladm/ipadm `-p -o` parser: escapes, empty fields kept, wrong field counts refused."""

from __future__ import annotations

import pytest

from fsm.errors import ParseError
from operations.parseable import escape_field, parse_records, split_fields


def test_escaped_colons_stay_inside_their_field():
    assert split_fields(r"vioif0:2\:8\:20\:a\:b\:c") == ["vioif0", "2:8:20:a:b:c"]
    assert split_fields(r"vioif0/v6:addrconf:ok:fe80\:\:1/10") == [
        "vioif0/v6", "addrconf", "ok", "fe80::1/10"]


def test_empty_fields_are_kept_in_place():
    # The original agent dropped empty fields, shifting `addr` into `state`.
    assert split_fields("vioif0/dhcp:dhcp::") == ["vioif0/dhcp", "dhcp", "", ""]
    assert split_fields(":a::b:") == ["", "a", "", "b", ""]
    rows = parse_records("lo0::ok:127.0.0.1/8\n", ["addrobj", "type", "state", "addr"], "ipadm")
    assert rows == [{"addrobj": "lo0", "type": "", "state": "ok", "addr": "127.0.0.1/8"}]


def test_escaped_backslash_and_round_trip():
    for value in ["a:b", "back\\slash", "::1/128", "", "x\\:y"]:
        assert split_fields(escape_field(value)) == [value]
    line = ":".join(escape_field(v) for v in ["a:b", "", "c\\"])
    assert split_fields(line) == ["a:b", "", "c\\"]


def test_blank_lines_are_no_records():
    assert parse_records("\n\n", ["link"], "dladm show-ether") == []
    assert parse_records("", ["link"], "dladm show-ether") == []


def test_wrong_field_count_names_command_and_line():
    with pytest.raises(ParseError) as info:
        parse_records("vioif0:2\\:8\\:20\\:a\\:b\\:c\ngarbage line\n", ["link", "address"],
                      "dladm show-phys -m -p -o link,address")
    err = info.value
    assert err.command == "dladm show-phys -m -p -o link,address"
    assert err.line == "garbage line"
    assert "expected 2 fields" in str(err) and "found 1" in str(err)


def test_unescaped_colon_in_mac_is_too_many_fields():
    with pytest.raises(ParseError, match="found 7"):
        parse_records("vioif0:2:8:20:a:b:c", ["link", "address"], "dladm show-phys")
