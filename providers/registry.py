"""Every provider, in the order DETECT tries them: one explicit tuple, no string lookups.

The first whose `detect` says yes wins; `NoMetadataProvider` always does, so it is last.
"""

from __future__ import annotations

from providers.base import Provider
from providers.nometadata import NoMetadataProvider

PROVIDERS: tuple[type[Provider], ...] = (
    NoMetadataProvider,
)
