"""`ds=nocloud-net;s=URL`: the NoCloud files fetched over HTTP from the seed URL.

The network is not configured yet in FETCH, so the primary link (the first Ethernet link)
gets DHCP first, as EC2's provider does for its service (operations/dhcp.py, bounded by
`timeouts.dhcp`), except on a start resuming a boot whose NETWORK phase is done; then `meta-data`, `user-data`, `vendor-data` and `network-config` are
fetched below the URL with the agent's HTTP client: every request bounded by
`timeouts.http`, all of them by `timeouts.fetch`, each file capped like on a volume. A
404 is an absent file; other failures are the service's (exit 95, FETCH retried).
`file://` and other schemes are refused with a clear error.
"""

from __future__ import annotations

import logging

from fsm.errors import MetadataError, ServiceError

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from fsm.steps import Context

log = logging.getLogger(__name__)

SOURCE = "nocloud-net"


def _bring_up_dhcp(ctx: Context, source: str = SOURCE, what: str = "the seed URL") -> None:
    """DHCP on the first link to reach `what` (OpenStack's metadata service uses it too)."""
    from operations.dhcp import ensure_dhcp
    from operations.netlinks import known_links

    done = ctx.checkpoint.boot_steps.get("NETWORK/addresses") or {}
    if done.get("status") == "done" and done.get("boot") == ctx.checkpoint.boot:
        # A resumed boot: NETWORK already configured the links (and removed a DHCP address
        # it did not want); bringing DHCP up again would leave one it never removes.
        log.info("%s: this boot's NETWORK phase is done: %s is reached through it",
                 source, what)
        return
    links = known_links(ctx)
    if not links:
        raise ServiceError(f"{source}: no network link to reach {what} on")
    if ctx.system.dry_run:
        log.info("%s: plan: would bring up DHCP on %s", source, links[0][0])
        return
    log.info("%s: DHCP on %s to reach %s", source, links[0][0], what)
    ensure_dhcp(ctx, links[0][0], primary=True)


def fetch_files(ctx: Context, url: str, names: tuple[str, ...], cap: int) -> dict[str, bytes]:
    from providers.http import HttpClient

    if not url.startswith(("http://", "https://")):
        raise MetadataError("nocloud", "SMBIOS serial ds= s", f"seed URL must be http:// or "
                            f"https://, not {url.split(':', 1)[0]!r}")
    base = url if url.endswith("/") else url + "/"
    _bring_up_dhcp(ctx)
    files: dict[str, bytes] = {}
    with HttpClient.from_settings(SOURCE, ctx.settings) as client:
        for name in names:
            reply = client.request("GET", base + name)
            if reply.status == 404:
                continue
            if reply.status != 200:
                raise ServiceError(f"{SOURCE}: GET {base}{name}: HTTP {reply.status}")
            if len(reply.body) > cap:
                raise MetadataError("nocloud", name, f"larger than {cap} bytes")
            files[name] = reply.body
    log.info("%s: %d file(s) from the seed URL", SOURCE, len(files))
    return files
