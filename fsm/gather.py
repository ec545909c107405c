"""DETECT and FETCH: learn where the guest is and what its metadata says.

Both only read (EC2 excepted: reaching its service needs DHCP on the primary link, which the
EC2 provider brings up inside FETCH). They run on every start, resumed or not, because what
they learn (the platform, the metadata, hardware names) is never trusted from a checkpoint:
a disk called `c1t0d0` in the image builder's VM may be `c3t0d0` on the cloud, and the
metadata can hold secrets the checkpoint must not.
"""

from __future__ import annotations

import logging
import time

from fsm.steps import Context, Frequency, Outcome, Step
from providers import smbios
from providers.registry import PROVIDERS

log = logging.getLogger(__name__)


def read_smbios(ctx: Context) -> Outcome:
    ctx.smbios = smbios.read(ctx.system)
    if ctx.smbios:
        log.info("SMBIOS: manufacturer %r, product %r, version %r", ctx.smbios.manufacturer,
                 ctx.smbios.product, ctx.smbios.version)
    return Outcome()


def choose_provider(ctx: Context) -> Outcome:
    started = time.monotonic()
    platform = smbios.platform(ctx.smbios)
    for entry in PROVIDERS:
        if not entry.may_detect(platform):
            continue  # its detect would say no: not even imported
        provider = entry.load()()
        if provider.detect(ctx):
            ctx.provider = provider
            break
    assert ctx.provider is not None  # the last provider always detects
    took_ms = (time.monotonic() - started) * 1000
    if ctx.provider.name == "none":
        log.warning("no metadata source found (%.0f ms); will bring up DHCP on the first link",
                    took_ms)
    else:
        log.info("metadata source: %s (%.0f ms)", ctx.provider.name, took_ms)
    return Outcome(record={"provider": ctx.provider.name})


def fetch_metadata(ctx: Context) -> Outcome:
    assert ctx.provider is not None
    from fsm.record import replace

    md = ctx.provider.fetch(ctx)
    recorded = ctx.checkpoint.instance_id
    fallback = None if md.instance_id else smbios.instance_uuid(ctx.smbios, recorded)
    if md.empty and recorded:
        # No usable data (an empty seed volume) is no new instance: the recorded one stays,
        # and so does its network (persistent ipadm and route configuration).
        log.warning("%s gave no usable data: keeping instance %s and its configuration",
                    md.source, recorded)
        md = replace(md, instance_id=recorded, network_skip=True, provenance={
            **md.provenance, "instance_id": "(no usable data: the recorded instance)",
            "network_skip": "(no usable data: the previous instance's network is kept)"})
    elif fallback:
        md = replace(md, instance_id=fallback,
                     provenance={**md.provenance, "instance_id": "(SMBIOS UUID)"})
    ctx.metadata = md
    log.info("metadata from %s: instance %s, hostname %s, %d NIC(s), %d key(s)%s",
             md.source, md.instance_id or "unknown", "given" if md.hostname else "absent",
             len(md.nics), len(md.ssh_keys), ", a user script" if md.user_script else "")
    return Outcome(warnings=list(md.warnings))


STEPS: tuple[Step, ...] = (
    Step("DETECT", "smbios", Frequency.PER_BOOT, read_smbios,
         changes="nothing (reads `smbios -t 1`)",
         fails_when="never: no SMBIOS table is a fact, not an error",
         on_failure="-", checkpointed="nothing (hardware facts are re-read every start)"),
    Step("DETECT", "provider", Frequency.PER_BOOT, choose_provider,
         changes="nothing (SMBIOS and local devices; a serial probe only when SMBIOS is unknown)",
         fails_when="a local source is unreadable or ambiguous (e.g. two CPIO seed disks): "
                    "exit 96; no source at all is not a failure, it selects `none` "
                    "(DHCP on the first link)",
         on_failure="the next start detects again",
         checkpointed="provider name", stops_machine=True),
    Step("FETCH", "metadata", Frequency.PER_BOOT, fetch_metadata,
         changes="nothing, except DHCP on the primary link where only a service has the "
                 "metadata (EC2; OpenStack without a config drive; nocloud-net)",
         fails_when="the service is unreachable within its bounded retries (exit 95), "
                    "or a document cannot be parsed at all (not JSON/YAML/TOML, not a "
                    "mapping: exit 96). A document that parses is taken item by item: an "
                    "item the agent cannot apply is a warning naming source, field and "
                    "value, and the rest is applied. A source with no usable data (an empty "
                    "seed volume) is not a new instance: the recorded instance is kept and "
                    "NETWORK is skipped, so nothing a previous instance installed is removed",
         on_failure="the machine stops at FETCH; the next start retries it",
         checkpointed="instance id (never the metadata itself)", stops_machine=True),
)
