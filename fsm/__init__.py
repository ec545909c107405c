"""The boot state machine of illumos-metadata-agent: phases, steps, checkpoint and CLI."""

__version__ = "0.1.0"
