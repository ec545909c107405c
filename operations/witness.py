"""Witnesses of one-shot work that outlive the checkpoint.

The checkpoint is the agent's memory of what it did, and it can be lost: both generations
damaged, `metadata reset`, an image rolled back. A one-shot step whose repetition does
harm therefore also leaves a mark on the thing it changed, keyed by the instance it was
done for: the userscript service's run records carry the instance's tag
(operations/userscript.py, smf/userscript.sh), and the root pool carries the instance it
was reguid-ed for as a ZFS user property (operations/reguid.py). A lost checkpoint then
costs a re-check, never a second run for the same instance; a new instance (a new VM from
the image) has another tag and does the work again.
"""

from __future__ import annotations

import re

from fsm.digests import sha256

_SAFE_TAG = re.compile(r"[A-Za-z0-9._:-]{1,100}\Z")
UNKNOWN_TAG = "unknown"


def instance_tag(instance_id: str | None) -> str:
    """A word that names the instance in a record or a ZFS property value: the id itself
    when it is short and plain (`i-0abc`, a UUID), else `sha256-<32 hex>` of it. Never
    contains a space, a slash or a control character."""
    if not instance_id:
        return UNKNOWN_TAG
    if _SAFE_TAG.match(instance_id):
        return instance_id
    return "sha256-" + sha256(instance_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
