"""providers/dsserial.py: the NoCloud seed in the SMBIOS serial number."""

from __future__ import annotations

from providers.dsserial import apply, parse
from providers.model import Metadata


def test_nocloud_and_nocloud_net_forms():
    seed = parse("ds=nocloud;i=9B8C-uuid")
    assert (seed.mode, seed.instance_id, seed.seedfrom) == ("nocloud", "9B8C-uuid", None)
    seed = parse("ds=nocloud-net;s=http://10.0.0.1:8000/zone/;i=abc;h=web-1")
    assert seed.mode == "nocloud-net" and seed.seedfrom == "http://10.0.0.1:8000/zone/"
    assert seed.hostname == "web-1"
    long_form = parse("ds=nocloud;instance-id=x;local-hostname=y;seedfrom=http://h/")
    assert (long_form.instance_id, long_form.hostname, long_form.seedfrom) == \
        ("x", "y", "http://h/")


def test_not_a_seed():
    for serial in ("", "omnios-zone-0001", "ds=ec2", "VMware-56 4d", "xds=nocloud;i=1"):
        assert parse(serial) is None


def test_serial_wins_over_meta_data_but_not_over_cloud_config_hostname():
    md = Metadata(source="nocloud", instance_id="from-meta", hostname="meta",
                  provenance={"hostname": "meta-data local-hostname"})
    got = apply(md, parse("ds=nocloud;i=from-serial;h=serial-host"))
    assert got.instance_id == "from-serial" and got.hostname == "serial-host"
    assert got.origin("instance_id") == "nocloud:SMBIOS serial ds= i"
    md = Metadata(source="nocloud", hostname="cc", provenance={"hostname": "user-data hostname"})
    assert apply(md, parse("ds=nocloud;h=serial-host")).hostname == "cc"
