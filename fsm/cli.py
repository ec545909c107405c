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


def _parser_class() -> type:
    """The parser class: no silent abbreviations (`--hostnam` is an error, not
    `--hostname`). Made on demand: argparse is not imported for `run`."""
    import argparse

    class _Parser(argparse.ArgumentParser):
        def __init__(self, *args, **kwargs):
            kwargs["allow_abbrev"] = False
            super().__init__(*args, **kwargs)

    return _Parser


def _chosen_parser(parser: argparse.ArgumentParser,
                   args: argparse.Namespace) -> argparse.ArgumentParser:
    """The innermost subcommand's parser (`metadata seed cpio`), found by the names parsed:
    how subparser defaults merge differs between Python versions, names do not."""
    import argparse

    while True:
        sub = next((a for a in parser._actions
                    if isinstance(a, argparse._SubParsersAction)), None)
        name = getattr(args, sub.dest, None) if sub is not None else None
        if sub is None or name not in sub.choices:
            return parser
        parser = sub.choices[name]


def build_parser() -> argparse.ArgumentParser:
    parser = _parser_class()(
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

    p = sub.add_parser("status", help="outcome, failures with what to do, steps, recent boots",
                       description="Show how the boot went: the outcome, every failure and "
                       "warning of this boot with what to do next, the host keys, the phases, "
                       "the steps in the order they ran with their changes, and the recent "
                       "starts. Reads only. Exit 0 done (or running / not run), 1 an error "
                       "(held, stopped, a settings error, killed), 2 done with warnings.")
    _add_root(p)
    p.add_argument("--json", action="store_true", help="machine-readable, stable keys")
    p.add_argument("--wait", action="store_true",
                   help="block until the boot has finished (for image pipelines)")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="with --wait: give up after this long (exit 1)")
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
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also log what DETECT and FETCH do (on stderr)")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("reset", help="move the checkpoint aside so the next run starts fresh",
                       description="Move the checkpoint aside; the next run is a first boot "
                       "of the agent (one-shot work already done for this instance is "
                       "recognised, not repeated). Takes the agent lock: waits for a "
                       "running agent at most --wait seconds, then exits 95.")
    _add_root(p)
    p.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                   help="how long to wait for a running agent (default: 10)")
    p.set_defaults(func=cmd_reset)

    _add_operator_parsers(sub)
    _add_seed_parsers(sub)
    return parser


def _add_operator_parsers(sub) -> None:
    """`clean`, `query`, `collect-logs`: image capture, first-boot scripts, bug reports."""
    p = sub.add_parser("clean", help="prepare a configured guest for image capture",
                       description="Remove what makes this guest an instance: the checkpoint "
                       "and its generations, the history and query files, the keys the agent "
                       "installed and its record of them, the first-boot script and its run "
                       "records, DHCP leases and identifiers, the agent's SMF logs; the next "
                       "boot is the first boot of a new instance. Refused on / without "
                       "--force, like run.")
    _add_root(p)
    p.add_argument("--dry-run", action="store_true", help="list what would be removed; "
                   "change nothing")
    p.add_argument("--host-keys", action="store_true",
                   help="also remove the SSH host keys (/etc/ssh/ssh_host_*)")
    p.add_argument("--nodename", nargs="?", const="unknown", metavar="NAME",
                   help="set /etc/nodename (and the loopback names of /etc/inet/hosts) back "
                   "to NAME (default: unknown)")
    p.add_argument("--force", action="store_true", help="clean / outside --root")
    p.set_defaults(func=cmd_clean)

    p = sub.add_parser("query", help="print the metadata this instance was configured from",
                       description="Print the normalised metadata of this instance (instance "
                       "id, hostname, NICs, routes, resolvers, key fingerprints) as JSON, or "
                       "one value: KEY is dotted, e.g. hostname, nics.0.mac. Never secrets.")
    _add_root(p)
    p.add_argument("key", nargs="?", metavar="KEY")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("collect-logs", help="a tarball of logs and state for a bug report",
                       description="Write a gzipped tarball of the agent's SMF logs, status "
                       "--json, the checkpoint, the history, the settings and the SMF "
                       "properties, redacted of secrets.")
    _add_root(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    p.set_defaults(func=cmd_collect_logs)


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

    p = kinds.add_parser("nocloud", help="write a NoCloud volume labelled cidata (ISO or FAT)",
                         description="Write meta-data, user-data and network-config on an "
                         "ISO 9660 (or, with -f vfat, FAT) volume labelled cidata, as "
                         "cloud-localds makes.")
    p.add_argument("-o", "--output", required=True, metavar="IMAGE")
    p.add_argument("-f", "--filesystem", choices=("iso9660", "iso", "vfat"), default="iso9660",
                   help="iso9660 (default) or vfat: a FAT volume, made with mkfs.vfat and "
                        "mcopy (dosfstools, mtools), as cloud-localds -f vfat")
    p.add_argument("--instance-id", metavar="ID", help="default: iid-local01, as cloud-localds")
    p.add_argument("--hostname", metavar="NAME", help="meta-data local-hostname")
    p.add_argument("--authorized-keys", metavar="FILE", help="meta-data public-keys")
    p.add_argument("--user-data", metavar="FILE",
                   help="run once on first boot when it starts with #!")
    p.add_argument("--network-config", metavar="FILE", help="network-config v1 or v2 (YAML)")
    p.add_argument("--user", metavar="NAME", action="append", default=[],
                   help="#cloud-config: create this user (Primary Administrator profile) "
                        "with the --authorized-keys and --password-hash-file (repeatable)")
    p.add_argument("--password-hash-file", metavar="FILE",
                   help="#cloud-config: a crypt(3C) hash (e.g. `openssl passwd -6`) for root "
                        "(the default user) and every --user; never given on the command line")
    p.set_defaults(func=cmd_seed_nocloud)

    p = kinds.add_parser("inspect", help="show what the agent would read from a seed",
                         description="Print what the agent would read from a seed (CPIO "
                         "image, NoCloud ISO, or a directory), field by field, with every "
                         "problem. Exit 0 when the agent would accept it, 96 when not.")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_seed_inspect)


# The command lines read without argparse: command -> (its flags, its options with a value).
_FAST_FORMS = {"run": (("--force",), ("--root",)),
               "status": (("--json", "--wait"), ("--root", "--timeout"))}


def fast_args(argv: list[str]) -> SimpleNamespace | None:
    """The arguments of `run [--root DIR] [--force]` or `status [--root DIR] [--json]
    [--wait] [--timeout SECONDS]` (each option at most once), as argparse would give them;
    None for any other command line, which argparse then reads (and explains, if it is
    wrong)."""
    if not argv or argv[0] not in _FAST_FORMS:
        return None
    command, (flags, valued) = argv[0], _FAST_FORMS[argv[0]]
    given: dict[str, object] = {}
    rest = argv[1:]
    while rest:
        word = rest.pop(0)
        option, eq, value = word.partition("=")
        if word in flags and word not in given:
            given[word] = True
        elif word in valued and word not in given and rest and not rest[0].startswith("-"):
            given[word] = rest.pop(0)
        elif eq and option in valued and option not in given and value:
            given[option] = value
        else:
            return None
    args = SimpleNamespace(command=command, root=given.get("--root", "/"),
                           func=cmd_run if command == "run" else cmd_status)
    for flag in flags:
        setattr(args, flag[2:], bool(given.get(flag)))
    if command == "status":
        try:  # argparse's own conversion (type=float); it explains a bad value
            args.timeout = None if "--timeout" not in given else float(given["--timeout"])
        except ValueError:
            return None
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--version"]:
        print(f"metadata {__version__}")
        return 0
    args = fast_args(argv)
    if args is None:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if extra:   # the subcommand's own usage, not the top level's
            _chosen_parser(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args) or 0)
    except AgentError as e:
        print(f"metadata: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return SMF_EXIT_ERR_FATAL
    except BrokenPipeError:
        # `metadata plan | head -1`: the reader has gone; nothing left to say to it.
        # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _open_guest(root: str, dry_run: bool = False, verbose: bool = False):
    from fsm import logsetup
    from fsm import settings as settings_mod
    from fsm.system import System

    system = System(root, dry_run=dry_run)
    settings = settings_mod.load(system, os.environ.get("SMF_FMRI") if not dry_run else None)
    # A plan's report is stdout; its log goes to stderr, and only warnings unless asked.
    level = "warning" if dry_run and not verbose else settings.get("log.level")
    logsetup.setup(level, "" if dry_run else settings.get("log.console"), to_stderr=dry_run)
    system.command_timeout_s = settings.get("timeouts.command")
    return system, settings


QUERY_PATH = "/var/metadata/query.json"   # fsm/query.py's, without importing it


def cmd_run(args: argparse.Namespace | SimpleNamespace) -> int:
    if os.path.abspath(args.root) == "/" and not os.environ.get("SMF_FMRI") and not args.force:
        print("metadata: refusing to change this machine outside SMF: run it as the "
              "svc:/system/illumos/metadata start method, pass --root DIR for another guest, "
              "or --force", file=sys.stderr)
        return SMF_EXIT_ERR_CONFIG
    if not _root_exists(args.root, "run"):
        return SMF_EXIT_ERR_CONFIG
    _one_pass_gc()
    from fsm import history
    from fsm.checkpoint import CheckpointStore
    from fsm.lock import agent_lock
    from fsm.machine import BootMachine
    from fsm.steps import Context

    try:
        system, settings = _open_guest(args.root)
    except AgentError as e:
        print(f"metadata: {e}")  # stdout is the SMF service log
        from fsm.system import System

        with agent_lock(System(args.root)):
            history.settings_error(System(args.root), str(e), e.exit_code)
        return e.exit_code
    # Commands start in the guest root; posix_spawn cannot change directory (fsm/spawn.py),
    # so the agent does, once: a service keeps no other directory busy anyway.
    os.chdir(system.root)
    _stop_on_signals()
    with agent_lock(system) as not_held:
        store = CheckpointStore(system)
        if not_held:
            store.refuse_one_shot(not_held)
        ctx = Context(system=system, settings=settings, checkpoint=store.load())
        attempt = history.begin(system)
        machine = BootMachine(ctx, store)
        code = machine.run()
        provider = ctx.provider.name if ctx.provider else None
        history.finish(system, attempt, machine.cp, provider, code)
        if ctx.metadata is not None and (machine.ran_one_shot or not system.exists(QUERY_PATH)):
            # What this instance was configured from changes only with a one-shot step (a
            # second boot with nothing to do loads neither key nor fingerprint code).
            from fsm import query

            query.save(system, ctx.metadata, provider)
        return code


def _one_pass_gc() -> None:
    """No cyclic garbage collection in a boot: measured with callgrind on a second boot,
    the collector's passes (over every object the imports create, none of it garbage) and
    its final collection at exit were about an eighth of the agent's own instructions.

    A start is one bounded pass over the phases, whose few reference cycles (exception
    tracebacks, mostly) the process's exit reclaims; reference counting still frees
    everything else as it goes. At exit the surviving objects are frozen, so that the
    interpreter's last collection does not walk them either. Only for `run`: the other
    commands are short or interactive, and keep Python's defaults."""
    import atexit
    import gc

    gc.disable()
    atexit.register(gc.freeze)


def _stop_on_signals() -> None:
    """SIGTERM and SIGHUP end the run cleanly instead of killing it where it stands.

    Commands run in the agent's own process group and session (never a new one), so SMF's
    contract kill on `svcadm disable/restart`, and a kill of the whole group, reach them.
    A signal to the agent alone is logged, and the SystemExit raised here unwinds the run:
    fsm/spawn.py kills the command it is waiting for and reaps it, so no command outlives
    the agent to take effect after the restarted agent has decided to run it again; the
    lock is released and temp files removed by the normal `finally` paths. The step stays
    `started` in the checkpoint: the next start asks whether it took effect.
    """
    # _signal: the C module signal.py wraps, loaded at every interpreter's start; signal.py
    # would add its IntEnum classes (3.6 M instructions) for two handlers (issue 17).
    import _signal
    import logging

    names = {_signal.SIGTERM: "SIGTERM", _signal.SIGHUP: "SIGHUP"}

    def stop(signum: int, _frame: object) -> None:
        logging.getLogger("fsm.cli").error(
            "received %s: killing the running command and exiting; the next start resumes "
            "where this one stopped", names.get(signum, signum))
        raise SystemExit(SMF_EXIT_ERR_FATAL)

    for signum in names:
        _signal.signal(signum, stop)


def cmd_status(args: argparse.Namespace | SimpleNamespace) -> int:
    from fsm import statusview
    from fsm.status import status_data

    if not _root_exists(args.root, "status"):
        return 1
    if args.wait:
        data, finished = statusview.wait_for(args.root, args.timeout)
    else:
        data, finished = status_data(args.root), True
    sys.stdout.write(statusview.render_json(data) if args.json
                     else statusview.render_text(data))
    if not finished:
        print(f"metadata: status: the boot has not finished within --timeout {args.timeout:g} s",
              file=sys.stderr)
        return 1
    return int(data["exit_code"])


def _root_exists(root: str, command: str) -> bool:
    """A --root that is not a directory is a mistake, never an empty guest."""
    if os.path.isdir(root):
        return True
    print(f"metadata: {command}: --root {root}: no such directory", file=sys.stderr)
    return False


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
            system, settings = _open_guest(root, dry_run=True, verbose=args.verbose)
            return run_plan(system, settings, summary=True)
    if not _root_exists(args.root, "plan"):
        return SMF_EXIT_ERR_CONFIG
    system, settings = _open_guest(args.root, dry_run=True, verbose=args.verbose)
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
                                           args.network_config, args.user,
                                           args.password_hash_file,
                                           "iso9660" if args.filesystem == "iso"
                                           else args.filesystem))
    except SeedRefused as e:
        return _seed_refused(e, args.output)


def cmd_seed_inspect(args: argparse.Namespace) -> int:
    from fsm.seed.inspect import inspect_seed

    inspection = inspect_seed(args.file)    # NotASeed is an AgentError: main prints it
    sys.stdout.write(inspection.text())
    return 0 if inspection.evaluation.accepted else SMF_EXIT_ERR_CONFIG


def cmd_reset(args: argparse.Namespace) -> int:
    import math

    from fsm.checkpoint import CheckpointStore
    from fsm.lock import exclusive
    from fsm.system import System

    if not _root_exists(args.root, "reset"):
        return SMF_EXIT_ERR_CONFIG
    if not (math.isfinite(args.wait) and 0 <= args.wait <= 3600):
        print("metadata: reset: --wait must be 0..3600 seconds", file=sys.stderr)
        return SMF_EXIT_ERR_CONFIG
    system = System(args.root)
    with exclusive(system, args.wait):
        moved = CheckpointStore(system).reset()
    print(f"checkpoint moved aside to {moved}" if moved else "no checkpoint: nothing to reset")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    if not _root_exists(args.root, "clean"):
        return SMF_EXIT_ERR_CONFIG
    if os.path.abspath(args.root) == "/" and not args.force and not args.dry_run:
        print("metadata: clean: refusing to clean this machine: pass --root DIR for another "
              "guest, --dry-run to see what it would remove, or --force", file=sys.stderr)
        return SMF_EXIT_ERR_CONFIG
    from fsm import clean
    from fsm.status import agent_running
    from fsm.system import System

    system = System(args.root)
    if agent_running(system):
        print("metadata: clean: the agent is running on this guest; run clean when it has "
              "finished (`metadata status --wait`)", file=sys.stderr)
        return SMF_EXIT_ERR_FATAL
    actions = clean.plan(system, host_keys=args.host_keys, nodename=args.nodename)
    for line in clean.run(system, actions, args.dry_run):
        print(line)
    if not actions:
        print("nothing to clean")
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from fsm import query
    from fsm.system import System

    if not _root_exists(args.root, "query"):
        return 1
    doc = query.load(System(args.root))
    value = doc if args.key is None else query.lookup(doc, args.key)
    print(query.render(value))
    return 0


def cmd_collect_logs(args: argparse.Namespace) -> int:
    from fsm import collectlogs
    from fsm.system import System

    if not _root_exists(args.root, "collect-logs"):
        return 1
    names = collectlogs.write(System(args.root), args.output)
    print(f"wrote {args.output}: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
