"""pkg(1) stand-in (IPS, pkg5 src/client.py), for the forms the agent runs:

    pkg refresh
    pkg install [--accept] PKG_FMRI...
    pkg update [--accept]

Installed packages live in `state["packages"]` (name -> version). `install` of packages
all present prints `No updates necessary for this image.` and exits 4 (EXIT_NOP), as
client.py does; otherwise it prints the plan summary, records them and exits 0.
`state["pkg_new_be"]` true makes install/update print `Create boot environment: Yes`
and the clone message (what pkg prints when the change needs a new boot environment).
A package named in `state["pkg_unknown"]` fails with `pkg install: The following
pattern(s) did not match any allowable packages.` and exit 1.
"""

from __future__ import annotations

from sim.standins.base import Invocation

EXIT_OOPS, EXIT_NOP = 1, 4


def main(inv: Invocation) -> int:
    args = list(inv.argv)
    if not args:
        inv.fail("Usage:\n        pkg [options] command [cmd_options] [operands]", 2)
    sub, rest = args[0], [a for a in args[1:] if not a.startswith("-")]
    installed = inv.state.setdefault("packages", {})
    if sub == "refresh":
        inv.out("Refreshing catalog 1/1 omnios")
        return 0
    if sub in ("install", "update"):
        unknown = [p for p in rest if p in inv.state.get("pkg_unknown", [])]
        if unknown:
            inv.fail(f"pkg {sub}: The following pattern(s) did not match any allowable "
                     f"packages.  Try\nusing a different matching pattern, or refreshing "
                     f"publisher information:\n\n        " + "\n        ".join(unknown),
                     EXIT_OOPS)
        new = [p for p in rest if p.split("@")[0] not in installed]
        if sub == "install" and not new or sub == "update" and not inv.state.get("pkg_new_be"):
            inv.out("No updates necessary for this image.")
            return EXIT_NOP
        for p in new:
            name, _, version = p.partition("@")
            installed[name] = version or "latest"
        inv.out(f"           Packages to install:   {len(new)}")
        if inv.state.get("pkg_new_be"):
            inv.out("       Create boot environment:   Yes")
            inv.out("A clone of omnios exists and has been updated and activated.")
        else:
            inv.out("       Create boot environment:    No")
        return 0
    inv.fail(f"pkg: unknown subcommand '{sub}'", 2)
    return 2
