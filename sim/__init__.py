"""A simulated illumos guest: a root directory with /etc as a fresh OmniOS image has it,
stateful stand-ins for the illumos commands, and emulators of each metadata service.

Kept free of imports: the stand-ins run as `python -S -m sim.standins`, with the standard
library only, once per simulated command."""
