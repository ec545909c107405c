"""`python -m sim create|show|serve|boot`: make, inspect, serve and boot simulated guests."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from sim import guest
from sim.hardware import PLATFORMS
from sim.show import show


def _cmd_create(args: argparse.Namespace) -> int:
    override = None
    if args.metadata:
        with open(args.metadata, encoding="utf-8") as f:
            override = json.load(f)
    try:
        guest.create(args.dir, args.platform, override, args.disk or ())
    except ValueError as e:
        print(f"sim create: {e}", file=sys.stderr)
        return 2
    print(f"created a {args.platform} guest in {args.dir}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    print(json.dumps(show(args.dir), indent=2, sort_keys=True))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from sim.serve import serve_forever

    return serve_forever(args.dir)


def agent_command(root: str) -> list[str]:
    return [sys.executable, "-m", "fsm", "run", "--root", root]


def _cmd_boot(args: argparse.Namespace) -> int:
    from sim.serve import serving

    with serving(args.dir):
        env = {**os.environ, "PYTHONPATH": guest.PROJECT_DIR}
        rc = subprocess.call(agent_command(args.dir), env=env)
    print(json.dumps(show(args.dir), indent=2, sort_keys=True))
    return rc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("create", help="lay out a simulated guest in DIR")
    p.add_argument("dir")
    p.add_argument("--platform", choices=sorted(PLATFORMS), required=True)
    p.add_argument("--metadata", metavar="FILE", help="JSON overriding the default metadata")
    p.add_argument("--disk", action="append", metavar="cXtYdZ:SIZE[:KIND]",
                   help="attach a data disk; KIND is blank (default), label (a foreign EFI "
                        "label), ufs (a file system) or pool=NAME (an exported pool)")
    p.set_defaults(func=_cmd_create)
    for name, func, text in (("show", _cmd_show, "print the guest's state as JSON"),
                             ("serve", _cmd_serve, "run the platform's metadata emulator"),
                             ("boot", _cmd_boot, "serve, run the agent, and show")):
        p = sub.add_parser(name, help=text)
        p.add_argument("dir")
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
