"""Entry point of every stand-in: `python -S -m sim.standins COMMAND ARGS...`.

Counts the call under `calls["<command> <subcommand>"]` (e.g. `"zpool reguid"`), applies
injected faults from `state["faults"]`, then runs `sim.standins.<command>.main`.

Faults, keyed like the call counts: `hang` (block until killed, before any effect),
`hang_after` (do the work, then block: a kill in the middle of a step after its effect),
`fail` (exit 1 with the given message), `garbage` (print the given text instead),
`delay` ({key: seconds}: sleep, then do the work: a slow command whose effect comes late).
"""

from __future__ import annotations

import importlib
import os
import sys

from sim import state as guest_state
from sim.standins.base import Exit, Invocation

WITH_SUBCOMMANDS = {"dladm", "ipadm", "zpool", "zfs", "svcadm", "pkg"}


def call_key(command: str, argv: list[str]) -> str:
    if command in WITH_SUBCOMMANDS and argv and not argv[0].startswith("-"):
        return f"{command} {argv[0]}"
    return command


def _block_until_killed() -> None:
    import signal  # only here: every simulated command would pay for it otherwise
    import time

    while True:
        signal.pause() if hasattr(signal, "pause") else time.sleep(3600)


def main() -> int:
    # The wrappers run `python -S -c ... sim.standins COMMAND ARGS` (no runpy to import);
    # `python -m sim.standins COMMAND ARGS` works too.
    args = sys.argv[2:] if sys.argv[1:2] == ["sim.standins"] else sys.argv[1:]
    command, argv = args[0], args[1:]
    root = os.environ["SIM_ROOT"]
    key = call_key(command, argv)
    faults = guest_state.load(root).get("faults", {})
    if key in faults.get("hang", []):
        _block_until_killed()
    if key in faults.get("delay", {}):   # a slow command: its effect comes late, but comes
        import time

        time.sleep(float(faults["delay"][key]))
    module = importlib.import_module(f"sim.standins.{command.replace('-', '_')}")
    code = 0
    with guest_state.locked(root) as st:
        calls = st.setdefault("calls", {})
        calls[key] = calls.get(key, 0) + 1
        if key in faults.get("fail", {}):
            sys.stderr.write(faults["fail"][key] + "\n")
            code = 1
        elif key in faults.get("garbage", {}):
            sys.stdout.write(faults["garbage"][key])
        else:
            inv = Invocation(command=command, argv=argv, root=root, state=st)
            try:
                code = module.main(inv) or 0
            except Exit as e:
                code = e.code
    if key in faults.get("hang_after", []):
        _block_until_killed()
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
