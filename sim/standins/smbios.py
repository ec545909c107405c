"""smbios(8) stand-in: `smbios -t TYPE` for the system (type 1) and chassis (type 3) records.

Forms accepted: `smbios -t 1` / `smbios -t SMB_TYPE_SYSTEM`. Output after illumos-gate
usr/src/cmd/smbios/smbios.c: the `ID    SIZE TYPE` header, the record line, a blank line,
print_common() (Manufacturer, Product, Version, Serial Number, each left out when empty),
a blank line, then print_system(): `UUID:` with the table's 16 bytes in order as `%02x`
(lower case), `Wake-Up Event: 0x6 (power switch)`, `SKU Number:` and `Family:` (printed
even when empty, as print_system() does).

The hardware's `uuid` is the form the hypervisor reports. SMBIOS 2.6+ tables store its first
three fields little-endian, so the raw `UUID:` line shows them byte-swapped. Builds that
print `UUID (Endian-corrected):` after it show the reported form again; the guest's
`state["illumos"]["smbios_endian_corrected"]` (default true) says whether this build does,
so a test can boot an image on an older build and then "update" it. A guest without a table
fails the way illumos does. `-t 3` / `-t SMB_TYPE_CHASSIS`: the record line, print_common()
(Manufacturer, Version, Serial Number, `Asset Tag:` from the hardware's
`chassis_asset_tag`, each left out when empty), then print_chassis()'s fixed lines (OEM
Data, SKU Number, Lock Present, Chassis Type 0x3 (desktop), the three states, Chassis
Height, Power Cords, Element Records). Not modelled: the other record types, `-x` hex
dumps, and the getopt refusals beyond the options smbios(8) documents.
"""

from __future__ import annotations

from sim.standins.base import Invocation, parse_opts


def raw_uuid(uuid: str) -> str:
    """The table's byte order: the first three fields of the reported UUID byte-swapped."""
    parts = uuid.lower().split("-")
    if len(parts) != 5:
        return uuid.lower()
    swapped = ["".join(reversed([p[i:i + 2] for i in range(0, len(p), 2)])) for p in parts[:3]]
    return "-".join(swapped + parts[3:])


def main(inv: Invocation) -> int:
    opts, rest = parse_opts(inv, inv.argv, "BeOsx", "it")
    if rest or opts.get("t") not in ("1", "SMB_TYPE_SYSTEM", "3", "SMB_TYPE_CHASSIS"):
        inv.usage("this stand-in serves `smbios -t 1` and `smbios -t 3` only")
    table = inv.state.get("smbios")
    if not table:
        inv.fail("smbios: failed to load SMBIOS: System does not export an SMBIOS table")
    if opts["t"] in ("3", "SMB_TYPE_CHASSIS"):
        return chassis(inv, table)
    corrected = inv.state.get("illumos", {}).get("smbios_endian_corrected", True)
    inv.out("ID    SIZE TYPE")
    inv.out("1     126  SMB_TYPE_SYSTEM (type 1) (system information)")
    inv.out()
    for label, key in (("Manufacturer", "manufacturer"), ("Product", "product"),
                       ("Version", "version"), ("Serial Number", "serial")):
        if table.get(key):
            inv.out(f"  {label}: {table[key]}")
    inv.out()
    uuid = table.get("uuid", "")
    inv.out(f"  UUID: {raw_uuid(uuid)}")
    if corrected:
        inv.out(f"  UUID (Endian-corrected): {uuid.lower()}")
    inv.out("  Wake-Up Event: 0x6 (power switch)")
    inv.out(f"  SKU Number: {table.get('sku', '')}")
    inv.out(f"  Family: {table.get('family', 'Virtual Machine')}")
    return 0


def chassis(inv: Invocation, table: dict) -> int:
    """usr/src/cmd/smbios/smbios.c: print_common() then print_chassis() for type 3."""
    inv.out("ID    SIZE TYPE")
    inv.out("3     72   SMB_TYPE_CHASSIS (type 3) (system enclosure or chassis)")
    inv.out()
    for label, key in (("Manufacturer", "manufacturer"), ("Version", "version"),
                       ("Serial Number", "serial"), ("Asset Tag", "chassis_asset_tag")):
        if table.get(key):
            inv.out(f"  {label}: {table[key]}")
    inv.out()
    for line in ("OEM Data: 0x0", "SKU Number: <unknown>", "Lock Present: N",
                 "Chassis Type: 0x3 (desktop)", "Boot-Up State: 0x3 (safe)",
                 "Power Supply State: 0x3 (safe)", "Thermal State: 0x3 (safe)",
                 "Chassis Height: 0u", "Power Cords: 0", "Element Records: 0"):
        inv.out(f"  {line}")
    return 0
