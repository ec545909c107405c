"""Property-based tests (hypothesis) for the parsers and codecs not covered elsewhere.

Already property-tested in their own files, and not repeated: the CPIO reader on random and
truncated bytes (test_cpioarchive.py), the SmartOS frame codec (test_smartos_protocol.py),
the hostname, key-line and script validators (test_validate.py), the checkpoint codec
(test_checkpoint.py). Here: the dladm/ipadm `-p` parser, the netmask/prefix conversions of
each source that has one, the command-output parsers (fstyp, prtvtoc, smbios, svcprop),
the CPIO reader's round trip in every header format, and the idempotence of the whole-file
rewrites (resolv.conf, nsswitch.conf, vfstab): never an exception other than the module's
own error, and what round-trips does.
"""

from __future__ import annotations

import ipaddress
import json

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from test_cpioarchive import bin_entry, newc, newc_entry

from fsm.errors import ConfigError, MetadataError, ParseError
from fsm.smfprops import parse_smf_settings, split_records
from operations.dns import edit_nsswitch, edit_resolv_conf
from operations.expand import parse_prtvtoc
from operations.parseable import escape_field, parse_records, split_fields
from operations.swap import SWAP_DEVICE, vfstab_swap_devices, with_one_swap_line
from providers import digitalocean, nocloud, smartos, smbios
from providers.cpioarchive import CpioFormatError, read_archive
from providers.localdisk import parse_fstyp
from providers.seedfiles import SEED_FILES

# Field text as dladm/ipadm could print it: anything but a line break.
FIELD = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x0b\x0c"
                              "\x1c\x1d\x1e\x85\u2028\u2029"), max_size=20)
LINES = st.text(max_size=400)


# ---- dladm / ipadm -p ------------------------------------------------------------------

@given(st.lists(FIELD, min_size=1, max_size=8))
def test_parseable_fields_round_trip(fields):
    line = ":".join(escape_field(f) for f in fields)
    assert split_fields(line) == fields


@given(st.lists(st.lists(FIELD, min_size=3, max_size=3), max_size=6))
def test_parseable_records_round_trip(rows):
    text = "".join(":".join(escape_field(f) for f in row) + "\n" for row in rows)
    names = ["link", "state", "addr"]
    expected = [dict(zip(names, row)) for row in rows if ":".join(
        escape_field(f) for f in row).strip()]
    assert parse_records(text, names, "dladm show-link") == expected


@given(LINES, st.integers(1, 6))
def test_parseable_any_output_is_records_or_a_named_parse_error(text, count):
    names = [f"f{i}" for i in range(count)]
    try:
        records = parse_records(text, names, "ipadm show-addr")
    except ParseError as e:
        assert e.command == "ipadm show-addr" and e.line in text
        return
    assert all(list(r) == names for r in records)


# ---- netmask <-> prefix ----------------------------------------------------------------

def dotted(prefix: int) -> str:
    return str(ipaddress.IPv4Network(f"0.0.0.0/{prefix}").netmask)


@given(st.integers(0, 32))
def test_contiguous_netmasks_give_their_prefix_in_every_source(prefix):
    mask = dotted(prefix)
    assert digitalocean.netmask_prefix(mask, "f") == prefix
    assert digitalocean.netmask_prefix(f" {mask} ", "f") == prefix
    nic = {"mac": "90:b8:d0:00:00:01", "ip": "10.1.2.3", "netmask": mask, "primary": True}
    md = smartos.parse({"sdc:nics": json.dumps([nic]).encode()})
    assert md.nics[0].addresses[0].endswith(f"/{prefix}")
    assert nocloud._cidr("10.1.2.3", "w", netmask=mask) == f"10.1.2.3/{prefix}"


@given(st.integers(0, 0xFFFFFFFF))
def test_any_32_bit_mask_is_its_prefix_or_refused(value):
    """Host masks (`0.0.0.255`) included: Python's ipaddress reads those as a /24."""
    mask = str(ipaddress.IPv4Address(value))
    host_bits = (~value) & 0xFFFFFFFF
    nic = {"mac": "90:b8:d0:00:00:01", "ip": "10.1.2.3", "netmask": mask}
    if (host_bits & (host_bits + 1)) == 0:
        prefix = bin(value).count("1")
        assert smartos.parse({"sdc:nics": json.dumps([nic]).encode()}).nics[0].addresses == (
            f"10.1.2.3/{prefix}",)
        assert nocloud._cidr("10.1.2.3", "w", netmask=mask) == f"10.1.2.3/{prefix}"
        assert smartos._cidr("sdc:nics", "[0]", f"10.1.2.3/{mask}") == f"10.1.2.3/{prefix}"
    else:
        # The NIC is skipped with a warning naming the mask; the rest of the metadata stays.
        md = smartos.parse({"sdc:nics": json.dumps([nic]).encode()})
        assert md.nics == () and "contiguous netmask" in md.warnings[0]
        with pytest.raises(MetadataError, match="contiguous netmask"):
            nocloud._cidr("10.1.2.3", "w", netmask=mask)
        with pytest.raises(MetadataError, match="contiguous netmask"):
            smartos._cidr("sdc:nics", "[0]", f"10.1.2.3/{mask}")


@pytest.mark.parametrize("mask, prefix", [("255.255.255.0", 24), ("255.0.255.0", None),
                                          ("0.0.0.255", None)])
def test_digitalocean_netmask_contiguous_or_refused(mask, prefix):
    if prefix is not None:
        assert digitalocean.netmask_prefix(mask, "f") == prefix
    else:
        with pytest.raises(MetadataError, match="not a contiguous IPv4 netmask"):
            digitalocean.netmask_prefix(mask, "f")


@given(st.one_of(st.text(max_size=30), st.integers(), st.floats(), st.none(), st.booleans(),
                 st.lists(st.integers(), max_size=3)))
def test_any_netmask_value_is_a_prefix_or_a_metadata_error(value):
    try:
        prefix = digitalocean.netmask_prefix(value, "interfaces.public[0].ipv4.netmask")
    except MetadataError as e:
        assert e.source == "digitalocean" and e.field == "interfaces.public[0].ipv4.netmask"
        return
    assert 0 <= prefix <= 32


@example(addr="", mask="\u00b2", prefix=None)   # str.isdigit() takes "²"; int() does not
@given(st.text(max_size=40), st.one_of(st.none(), st.text(max_size=20)),
       st.one_of(st.none(), st.integers(-5, 200), st.text(max_size=5)))
def test_nocloud_address_with_netmask_or_prefix_is_cidr_or_a_metadata_error(addr, mask, prefix):
    try:
        cidr = nocloud._cidr(addr, "ethernets.x.addresses[0]", netmask=mask, prefix=prefix)
    except MetadataError as e:
        assert e.field.startswith("network-config ethernets.x")
        return
    ipaddress.ip_interface(cidr)


# ---- command output parsers: arbitrary text is parsed or a ParseError -------------------

@given(LINES)
def test_fstyp_output(text):
    try:
        fstype, label = parse_fstyp(text, "/dev/dsk/c2t0d0p0")
    except ParseError as e:
        assert e.command == "fstyp -a /dev/dsk/c2t0d0p0"
        return
    assert isinstance(fstype, str) and isinstance(label, str)


@given(LINES)
def test_prtvtoc_output(text):
    try:
        parse_prtvtoc(text, "c1t0d0")
    except ParseError as e:
        assert e.command.startswith("prtvtoc")


@given(LINES)
def test_smbios_output_never_raises(text):
    info = smbios.parse(text)
    assert all(isinstance(v, str) for v in (info.manufacturer, info.product, info.uuid))


@given(LINES)
def test_svcprop_output(text):
    try:
        split_records(text)
        parse_smf_settings(text)
    except (ParseError, ConfigError) as e:
        assert "svcprop" in str(e) or isinstance(e, ConfigError)


# ---- CPIO: any seed files round-trip in every header format ----------------------------

def odc_entry(name: str, data: bytes) -> bytes:
    encoded = name.encode() + b"\0"
    header = b"070707" + b"".join(f"{v:0{w}o}".encode() for v, w in (
        (0, 6), (1, 6), (0o100644, 6), (0, 6), (0, 6), (1, 6), (0, 6), (0, 11),
        (len(encoded), 6), (len(data), 11)))
    return header + encoded + data


FILES = st.dictionaries(st.sampled_from(sorted(SEED_FILES)), st.binary(max_size=300), max_size=4)


@settings(max_examples=150, deadline=None)
@given(FILES, st.sampled_from(["newc", "odc", "bin"]))
def test_cpio_round_trip_in_every_format(files, fmt):
    if fmt == "newc":
        archive = newc(*(newc_entry(n, d) for n, d in files.items()))
    elif fmt == "odc":
        archive = b"".join(odc_entry(n, d) for n, d in files.items()) + odc_entry("TRAILER!!!", b"")
    else:
        archive = b"".join(bin_entry(n, d) for n, d in files.items()) + bin_entry("TRAILER!!!", b"")
    assert read_archive(archive + bytes(512), SEED_FILES) == files


@given(FILES, st.integers(0, 3000), st.integers(0, 255))
def test_cpio_one_flipped_byte_is_read_or_refused(files, where, value):
    archive = newc(*(newc_entry(n, d) for n, d in files.items()))
    assume(where < len(archive))
    hostile = archive[:where] + bytes([value]) + archive[where + 1:]
    try:
        read = read_archive(hostile, SEED_FILES)
    except CpioFormatError:
        return
    assert set(read) <= set(SEED_FILES)


# ---- whole-file rewrites are idempotent -------------------------------------------------

NAMESERVERS = st.lists(st.ip_addresses().map(str), max_size=4)
DOMAINS = st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,10}){0,2}",
                                 fullmatch=True), max_size=3)


@given(LINES, NAMESERVERS, DOMAINS)
def test_resolv_conf_edit_is_idempotent(text, servers, search):
    once = edit_resolv_conf(text, servers, search)
    assert edit_resolv_conf(once, servers, search) == once


@given(LINES)
def test_nsswitch_edit_is_idempotent(text):
    once = edit_nsswitch(text)
    assert edit_nsswitch(once) == once


@given(LINES)
def test_vfstab_keeps_exactly_one_swap_line_for_our_volume(text):
    once = with_one_swap_line(text)
    assert with_one_swap_line(once) == once
    assert vfstab_swap_devices(once).count(SWAP_DEVICE) == 1
