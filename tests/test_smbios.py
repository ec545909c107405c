"""SMBIOS: the parser of `smbios -t 1` and the one platform classification DETECT uses."""

from __future__ import annotations

import pytest

from providers.smbios import CLOUDS, SmbiosInfo, instance_uuid, parse, platform

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


# A newer build (smbios.c print_system() with the endian-corrected line); values from a
# real Oxide guest's output. print_common() leaves out the empty Version.
NEWER = """ID    SIZE TYPE
1     372  SMB_TYPE_SYSTEM (type 1) (system information)

  Manufacturer: Oxide
  Product: OxVM
  Serial Number: 0000000000

  UUID: faaad566-debf-d311-01a6-9c6b00871b75
  UUID (Endian-corrected): 66d5aafa-bfde-11d3-01a6-9c6b00871b75
  Wake-Up Event: 0x6 (power switch)
"""
RAW, CORRECTED = "faaad566-debf-d311-01a6-9c6b00871b75", "66d5aafa-bfde-11d3-01a6-9c6b00871b75"


def test_parse_reads_both_uuid_forms_and_omitted_fields():
    info = parse(NEWER)
    assert (info.manufacturer, info.product, info.version) == ("Oxide", "OxVM", "")
    assert (info.uuid, info.uuid_corrected) == (RAW, CORRECTED)


@pytest.mark.parametrize("uuid, corrected, recorded, expected", [
    (RAW, CORRECTED, None, CORRECTED),         # a fresh guest: the reported form
    (RAW, "", None, RAW),                      # an older build prints the raw form only
    (RAW, CORRECTED, RAW, RAW),                # recorded on an older build, now updated
    (RAW, "", CORRECTED, CORRECTED),           # recorded on a newer build, rolled back
    (RAW, CORRECTED, "0c0ffee0-1111-4222-8333-444455556666", CORRECTED),   # a new VM
    ("", "", "x", None),
])
def test_instance_uuid_prefers_the_corrected_form_and_keeps_the_recorded_one(
        uuid, corrected, recorded, expected):
    info = SmbiosInfo(manufacturer="Oxide", uuid=uuid.upper(), uuid_corrected=corrected)
    assert instance_uuid(info, recorded) == expected
    assert instance_uuid(None, recorded) is None


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
    ("OpenStack Foundation", "OpenStack Nova", "29.0.1", "openstack"),
    ("RDO", "OpenStack Compute", "2014.1", "openstack"),   # older Nova, a distributor's name
    ("Some Vendor", "Box", "1", None),
])
def test_platform(maker, product, version, expected):
    info = SmbiosInfo(manufacturer=maker, product=product, version=version)
    assert platform(info) == expected
    assert (platform(info) in CLOUDS) == (expected in ("smartos", "digitalocean", "ec2", "oxide"))


def test_no_table_is_unknown():
    assert platform(None) is None


def test_the_standin_prints_what_each_build_prints(tmp_path):
    """Empty fields left out (print_common()), the raw UUID in lower case, and the
    endian-corrected line on newer builds only."""
    import subprocess

    from guest import make_guest

    g = make_guest(tmp_path, "qemu")
    table = dict(g.state()["smbios"], version="", uuid=CORRECTED.upper())
    g.set_state(smbios=table)

    def smbios() -> str:
        return subprocess.run([g.path("/usr/sbin/smbios"), "-t", "1"], capture_output=True,
                              text=True, timeout=30, check=True).stdout

    newer = smbios().splitlines()
    assert not any(line.startswith("  Version:") for line in newer)
    assert f"  UUID: {RAW}" in newer and f"  UUID (Endian-corrected): {CORRECTED}" in newer
    assert parse("\n".join(newer)).uuid_corrected == CORRECTED
    g.set_state(illumos={"smbios_endian_corrected": False})
    older = smbios().splitlines()
    assert f"  UUID: {RAW}" in older and not any("Endian" in line for line in older)
