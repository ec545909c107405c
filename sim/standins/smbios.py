"""smbios(8) stand-in: `smbios -t TYPE` for the system information record (type 1).

Forms accepted: `smbios -t 1` / `smbios -t SMB_TYPE_SYSTEM`. Output as smbios(8) prints it
(illumos-gate usr/src/cmd/smbios/smbios.c): a header line, the record line, then indented
`Name: value` lines. A guest without a table fails the way illumos does.
"""

from __future__ import annotations

from sim.standins.base import Invocation, parse_opts


def main(inv: Invocation) -> int:
    opts, rest = parse_opts(inv, inv.argv, "BeOsx", "it")
    if rest or opts.get("t") not in ("1", "SMB_TYPE_SYSTEM"):
        inv.usage("this stand-in serves `smbios -t 1` only")
    table = inv.state.get("smbios")
    if not table:
        inv.fail("smbios: failed to load SMBIOS: System does not export an SMBIOS table")
    inv.out("ID    SIZE TYPE")
    inv.out("1     126  SMB_TYPE_SYSTEM (type 1) (system information)")
    inv.out()
    inv.out(f"  Manufacturer: {table.get('manufacturer', '')}")
    inv.out(f"  Product: {table.get('product', '')}")
    inv.out(f"  Version: {table.get('version', '')}")
    inv.out(f"  Serial Number: {table.get('serial', '')}")
    inv.out()
    inv.out(f"  UUID: {table.get('uuid', '')}")
    inv.out("  Wake-Up Event: 0x6 (power switch)")
    inv.out(f"  SKU Number: {table.get('sku', '')}")
    inv.out(f"  Family: {table.get('family', 'Virtual Machine')}")
    return 0
