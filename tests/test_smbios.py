"""SMBIOS: the parser of `smbios -t 1` and the one platform classification DETECT uses."""

from __future__ import annotations

import pytest

from providers.smbios import CLOUDS, SmbiosInfo, parse, platform

OUTPUT = """ID    SIZE TYPE
1     126  SMB_TYPE_SYSTEM (type 1) (system information)

  Manufacturer: Joyent
  Product: SmartDC HVM
  Version: 7.20230301T000238Z
  Serial Number: smartos-0001

  UUID: D2F3C6A0-4B5E-4E6F-9A1B-2C3D4E5F6A7B
  Wake-Up Event: 0x6 (power switch)
"""


def test_parse_reads_the_identity_fields():
    info = parse(OUTPUT)
    assert info == SmbiosInfo(manufacturer="Joyent", product="SmartDC HVM",
                              version="7.20230301T000238Z", serial="smartos-0001",
                              uuid="D2F3C6A0-4B5E-4E6F-9A1B-2C3D4E5F6A7B")


@pytest.mark.parametrize("maker, product, version, expected", [
    ("Joyent", "SmartDC HVM", "7", "smartos"),
    ("", "SmartDC HVM", "", "smartos"),
    ("DigitalOcean", "Droplet", "20171212", "digitalocean"),
    ("Amazon EC2", "t3.micro", "1.0", "ec2"),
    ("Xen", "HVM domU", "4.11.amazon", "ec2"),
    ("Xen", "HVM domU", "4.11", None),            # plain Xen is not EC2
    ("Oxide", "OxVM", "", "oxide"),
    ("VMware, Inc.", "VMware Virtual Platform", "None", "vmware"),
    ("QEMU", "Standard PC (i440FX + PIIX, 1996)", "pc-i440fx-8.2", "qemu"),
    ("OmniOS", "OmniOS HVM", "1.0", "omnios"),
    ("Tribblix", "Tribblix HVM", "1.0", "tribblix"),
    ("Some Vendor", "Box", "1", None),
])
def test_platform(maker, product, version, expected):
    info = SmbiosInfo(manufacturer=maker, product=product, version=version)
    assert platform(info) == expected
    assert (platform(info) in CLOUDS) == (expected in ("smartos", "digitalocean", "ec2", "oxide"))


def test_no_table_is_unknown():
    assert platform(None) is None
