"""`metadata`: the SMF start method and the operator's view of the boot machine.

Imports are lazy so that `metadata --version` and `metadata states` start fast; the HTTP
stack is only imported by the HTTP providers, on the platforms that need it.
"""

from __future__ import annotations

import argparse
import os
import sys

from fsm import __version__
from fsm.errors import SMF_EXIT_ERR_CONFIG, SMF_EXIT_ERR_FATAL, AgentError


def _add_root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", default="/", metavar="DIR",
                   help="act on the guest rooted at DIR, like `pkg -R` (default: /)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metadata", description="Configure an illumos guest from its platform's metadata.")
    parser.add_argument("--version", action="version", version=f"metadata {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("run", help="run the boot machine to DONE (the SMF start method)",
                       description="Run from the checkpointed phase to DONE. Exit 0 when done, "
                       "95 when an operator must act, 96 for bad settings or metadata.")
    _add_root(p)
    p.add_argument("--force", action="store_true",
                   help="run against / outside SMF (normally refused when SMF_FMRI is unset)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="phase, instance, timeline and steps done",
                       description="Show the checkpoint: phase, instance, provider, the timeline "
                       "of phases and the steps done. Reads only.")
    _add_root(p)
    p.add_argument("--json", action="store_true", help="machine-readable, stable keys")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("states", help="print the state machine",
                       description="Print the machine the agent runs; docs/states.md is the "
                       "markdown form.")
    p.add_argument("--format", choices=("markdown", "mermaid", "json"), default="markdown")
    p.set_defaults(func=cmd_states)

    p = sub.add_parser("plan", help="show what each step would change, changing nothing",
                       description="Run DETECT and FETCH, then print what every later step "
                       "would change, without changing the guest or the checkpoint.")
    _add_root(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("reset", help="move the checkpoint aside so the next run starts fresh",
                       description="Move the checkpoint aside; the next run is a first boot.")
    _add_root(p)
    p.set_defaults(func=cmd_reset)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except AgentError as e:
        print(f"metadata: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return SMF_EXIT_ERR_FATAL


def _open_guest(root: str, dry_run: bool = False):
    from fsm import logsetup
    from fsm import settings as settings_mod
    from fsm.system import System

    system = System(root, dry_run=dry_run)
    settings = settings_mod.load(system, os.environ.get("SMF_FMRI") if not dry_run else None)
    logsetup.setup(settings.get("log.level"), "" if dry_run else settings.get("log.console"))
    system.command_timeout_s = settings.get("timeouts.command")
    return system, settings


def cmd_run(args: argparse.Namespace) -> int:
    if os.path.abspath(args.root) == "/" and not os.environ.get("SMF_FMRI") and not args.force:
        print("metadata: refusing to change this machine outside SMF: run it as the "
              "svc:/system/illumos/metadata start method, pass --root DIR for another guest, "
              "or --force", file=sys.stderr)
        return SMF_EXIT_ERR_CONFIG
    from fsm.checkpoint import CheckpointStore
    from fsm.lock import agent_lock
    from fsm.machine import BootMachine
    from fsm.steps import Context

    try:
        system, settings = _open_guest(args.root)
    except AgentError as e:
        print(f"metadata: {e}")  # stdout is the SMF service log
        return e.exit_code
    with agent_lock(system):
        store = CheckpointStore(system)
        ctx = Context(system=system, settings=settings, checkpoint=store.load())
        return BootMachine(ctx, store).run()


def cmd_status(args: argparse.Namespace) -> int:
    from fsm.status import render_status

    print(render_status(args.root, as_json=args.json), end="")
    return 0


def cmd_states(args: argparse.Namespace) -> int:
    from fsm.statesdoc import render

    sys.stdout.write(render(args.format))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from fsm.plan import run_plan

    system, settings = _open_guest(args.root, dry_run=True)
    return run_plan(system, settings)


def cmd_reset(args: argparse.Namespace) -> int:
    from fsm.checkpoint import CheckpointStore
    from fsm.system import System

    moved = CheckpointStore(System(args.root)).reset()
    print(f"checkpoint moved aside to {moved}" if moved else "no checkpoint: nothing to reset")
    return 0


if __name__ == "__main__":
    sys.exit(main())
