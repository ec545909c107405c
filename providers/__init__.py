"""Metadata sources: one module per source, each returning the same plain data model."""
