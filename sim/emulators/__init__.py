"""Metadata service emulators, one module per source: default_metadata(), lay_out(), serve()."""
