"""Stand-ins for illumos commands, one module per command, each `main(inv) -> exit code`.

Each accepts only the argument forms its illumos man page documents (anything else is a
usage error, exit 2, as illumos does), prints the documented output formats, and keeps the
guest's state in sim/state.py. Standard library only: they run under `python -S`.
"""
