"""`metadata`: the SMF start method and the operator's view of the boot machine.

Imports are lazy so that `metadata --version` and `metadata states` start fast; the HTTP
stack is only imported by the HTTP providers, on the platforms that need it. The SMF start
method's own command line (`run [--root DIR] [--force]`) and `--version` are recognised
without argparse, whose import and parser (gettext, locale, a help formatter per option)
cost a boot several milliseconds; any other command line goes to argparse, and a test checks
that both read the fast forms alike.
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

from fsm import __version__
from fsm.errors import SMF_EXIT_ERR_CONFIG, SMF_EXIT_ERR_FATAL, AgentError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing for `--version`
if TYPE_CHECKING:
    import argparse


def _add_root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", default="/", metavar="DIR",
                   help="act on the guest rooted at DIR, like `pkg -R` (default: /)")


def build_parser() -> argparse.ArgumentParser:
    import argparse

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
    p.add_argument("--seed", metavar="FILE",
                   help="instead of a guest: boot a simulated QEMU guest with this seed (CPIO "
                   "image, NoCloud ISO or directory) attached and plan it; needs sim/")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("reset", help="move the checkpoint aside so the next run starts fresh",
                       description="Move the checkpoint aside; the next run is a first boot.")
    _add_root(p)
    p.set_defaults(func=cmd_reset)

    _add_seed_parsers(sub)
    return parser


def _add_seed_parsers(sub) -> None:
    """`metadata seed cpio|nocloud|inspect`: the image builders' tools (fsm/seed/)."""
    seed = sub.add_parser("seed", help="make or check a seed disk for QEMU, bhyve or VMware",
                          description="Make a seed image the agent reads (a raw CPIO disk or "
                          "a NoCloud ISO), or check one. Inputs are checked with the agent's "
                          "own validators: a refused input writes nothing and exits 96.")
    kinds = seed.add_subparsers(dest="seed_command", metavar="KIND")
    kinds.required = True

    p = kinds.add_parser("cpio", help="write a CPIO seed disk image (attach it as a raw disk)",
                         description="Write the seed files (nodename, authorized_keys, "
                         "config.toml, firstboot.sh) as a CPIO archive at offset 0 of a disk "
                         "image, padded to 8192 bytes as illumos cpio pads.")
    p.add_argument("-o", "--output", required=True, metavar="IMAGE")
    p.add_argument("--hostname", metavar="NAME", help="written to nodename")
    p.add_argument("--authorized-keys", metavar="FILE", help="root's SSH keys, one per line")
    p.add_argument("--firstboot", metavar="FILE",
                   help="a script run once on first boot; must start with #!")
    p.add_argument("--network-skip", action="store_true",
                   help="config.toml [network] skip = true: configure no interface")
    p.add_argument("--format", choices=("bin", "odc", "newc"), default="bin",
                   help="bin (default: what illumos cpio -o writes, little-endian), odc, newc")
    p.set_defaults(func=cmd_seed_cpio)

    p = kinds.add_parser("nocloud", help="write a NoCloud ISO 9660 volume labelled cidata",
                         description="Write meta-data, user-data and network-config on an "
                         "ISO 9660 volume labelled cidata, as cloud-localds makes.")
    p.add_argument("-o", "--output", required=True, metavar="ISO")
    p.add_argument("--instance-id", metavar="ID", help="default: iid-local01, as cloud-localds")
    p.add_argument("--hostname", metavar="NAME", help="meta-data local-hostname")
    p.add_argument("--authorized-keys", metavar="FILE", help="meta-data public-keys")
    p.add_argument("--user-data", metavar="FILE",
                   help="run once on first boot when it starts with #!")
    p.add_argument("--network-config", metavar="FILE", help="network-config v1 or v2 (YAML)")
    p.set_defaults(func=cmd_seed_nocloud)

    p = kinds.add_parser("inspect", help="show what the agent would read from a seed",
                         description="Print what the agent would read from a seed (CPIO "
                         "image, NoCloud ISO, or a directory), field by field, with every "
                         "problem. Exit 0 when the agent would accept it, 96 when not.")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_seed_inspect)


# The command lines read without argparse: command -> its flags (options with a value:
# only --root).
_FAST_FORMS = {"run": ("--force",), "status": ("--json",)}


def fast_args(argv: list[str]) -> SimpleNamespace | None:
    """The arguments of `run [--root DIR] [--force]` or `status [--root DIR] [--json]`
    (each option at most once), as argparse would give them; None for any other command
    line, which argparse then reads (and explains, if it is wrong)."""
    if not argv or argv[0] not in _FAST_FORMS:
        return None
    command, flags = argv[0], _FAST_FORMS[argv[0]]
    given: dict[str, object] = {}
    rest = argv[1:]
    while rest:
        word = rest.pop(0)
        if word in flags and word not in given:
            given[word] = True
        elif word == "--root" and word not in given and rest and not rest[0].startswith("-"):
            given[word] = rest.pop(0)
        elif word.startswith("--root=") and "--root" not in given and len(word) > 7:
            given["--root"] = word[7:]
        else:
            return None
    args = SimpleNamespace(command=command, root=given.get("--root", "/"),
                           func=cmd_run if command == "run" else cmd_status)
    for flag in flags:
        setattr(args, flag[2:], bool(given.get(flag)))
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--version"]:
        print(f"metadata {__version__}")
        return 0
    args = fast_args(argv) or build_parser().parse_args(argv)
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
    logsetup.setup(settings.get("log.level"), "" if dry_run else settings.get("log.console"),
                   to_stderr=dry_run)
    system.command_timeout_s = settings.get("timeouts.command")
    return system, settings


def cmd_run(args: argparse.Namespace | SimpleNamespace) -> int:
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


def cmd_status(args: argparse.Namespace | SimpleNamespace) -> int:
    from fsm.status import render_status

    print(render_status(args.root, as_json=args.json), end="")
    return 0


def cmd_states(args: argparse.Namespace) -> int:
    from fsm.statesdoc import render

    sys.stdout.write(render(args.format))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from fsm.plan import run_plan

    if args.seed is not None:
        if os.path.abspath(args.root) != "/":
            print("metadata: plan: --seed boots its own simulated guest; it does not take "
                  "--root", file=sys.stderr)
            return SMF_EXIT_ERR_CONFIG
        from fsm.plan import seeded_guest

        with seeded_guest(args.seed) as root:
            system, settings = _open_guest(root, dry_run=True)
            return run_plan(system, settings, summary=True)
    system, settings = _open_guest(args.root, dry_run=True)
    return run_plan(system, settings)


def _seed_written(written) -> int:
    for warning in written.warnings:
        print(f"metadata: warning: {warning}", file=sys.stderr)
    print(f"wrote {written.path} ({written.size} bytes)")
    return 0


def _seed_refused(error, output: str) -> int:
    for problem in error.problems:
        print(f"metadata: {problem}", file=sys.stderr)
    print(f"metadata: nothing written to {output}", file=sys.stderr)
    return error.exit_code


def cmd_seed_cpio(args: argparse.Namespace) -> int:
    from fsm.seed.build import SeedRefused, build_cpio

    try:
        return _seed_written(build_cpio(args.output, args.hostname, args.authorized_keys,
                                        args.firstboot, args.network_skip, args.format))
    except SeedRefused as e:
        return _seed_refused(e, args.output)


def cmd_seed_nocloud(args: argparse.Namespace) -> int:
    from fsm.seed.build import SeedRefused, build_nocloud

    try:
        return _seed_written(build_nocloud(args.output, args.instance_id, args.hostname,
                                           args.authorized_keys, args.user_data,
                                           args.network_config))
    except SeedRefused as e:
        return _seed_refused(e, args.output)


def cmd_seed_inspect(args: argparse.Namespace) -> int:
    from fsm.seed.inspect import inspect_seed

    inspection = inspect_seed(args.file)    # NotASeed is an AgentError: main prints it
    sys.stdout.write(inspection.text())
    return 0 if inspection.evaluation.accepted else SMF_EXIT_ERR_CONFIG


def cmd_reset(args: argparse.Namespace) -> int:
    from fsm.checkpoint import CheckpointStore
    from fsm.system import System

    moved = CheckpointStore(System(args.root)).reset()
    print(f"checkpoint moved aside to {moved}" if moved else "no checkpoint: nothing to reset")
    return 0


if __name__ == "__main__":
    sys.exit(main())
