"""USERSCRIPT/azure-ready: the provisioning report to Azure's wireserver (see azureready.py).

The exchange is the one Microsoft documents for images provisioned without the Linux agent
("Creating generalized images without a provisioning agent") and cloud-init's Azure helper
performs: `GET /machine/?comp=goalstate` with `x-ms-version: 2012-11-30`, read
`Incarnation`, `Container/ContainerId` and `Container/RoleInstanceList/RoleInstance/
InstanceId`, then `POST /machine?comp=health` with a `Health` document carrying them and
`<State>Ready</State>`, or `NotReady` with `<Details><SubStatus>ProvisioningFailed
</SubStatus><Description>...</Description></Details>` (cut to 512 characters) so the
portal shows why.

The wireserver's address: `azure.wireserver` when set (our emulators), else the DHCP
lease's option 245 (`dhcpinfo -i LINK 245`; it is no standard option, so dhcpinfo knows it
only when the image's /etc/dhcp/inittab has a SITE entry for it, e.g. `AzureWS SITE, 245,
IP, 1, 1, i`, and dhcpagent requests it through PARAM_REQUEST_LIST in
/etc/default/dhcpagent), else Microsoft's documented fixed address 168.63.129.16.

Exactly once per provisioning, crash-safe: the machine records the step started (with the
state to report) before the POST and done after it; right after the wireserver's 200 for
Ready, a witness file names the instance, so a run resumed after a kill (or a lost
checkpoint) finds the report accepted and does not repeat it. Only a kill between the 200
and the witness write sends it again: at least once, never lost. A NotReady report fails
the step, so `svcadm clear` (after fixing what failed) sends the Ready.
"""

from __future__ import annotations

import logging

from fsm.checkpoint import FAILED
from fsm.errors import MetadataError, ServiceError, shown
from fsm.steps import Outcome
from operations.azureready import WITNESS_PATH
from operations.witness import instance_tag

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from typing import Any

    from fsm.steps import Context

log = logging.getLogger(__name__)

SOURCE = "azure"
DEFAULT_WIRESERVER = "168.63.129.16"
DHCPINFO = "/sbin/dhcpinfo"
WIRESERVER_OPTION = "245"
HEADERS = {"x-ms-version": "2012-11-30", "x-ms-agent-name": "illumos-metadata-agent"}
GOAL_STATE_CAP = 1 << 20
DESCRIPTION_CHARS = 512
STEP_KEY = "USERSCRIPT/azure-ready"


class ProvisioningFailed(ServiceError):
    """Provisioning did not complete: reported NotReady, and the step fails."""


def on_azure(ctx: Context) -> bool:
    return ctx.metadata is not None and ctx.metadata.source == SOURCE


def failures(ctx: Context) -> list[str]:
    """`PHASE/step: error` of every step that failed for this provisioning: this instance's
    one-shot steps (not yet done) and this boot's per-boot ones."""
    cp = ctx.checkpoint
    rows = list(cp.instances.get(cp.instance_id or "", {}).items())
    rows += [(k, r) for k, r in cp.boot_steps.items() if r.get("boot") == cp.boot]
    return [f"{key}: {rec.get('error', 'failed')}" for key, rec in rows
            if rec.get("status") == FAILED and key != STEP_KEY]


def intent(ctx: Context) -> dict[str, Any]:
    if not on_azure(ctx):
        return {}
    return {"state": "NotReady" if failures(ctx) else "Ready"}


def took_effect(ctx: Context, recorded: dict[str, Any]) -> bool:
    """A Ready the wireserver accepted for this instance (its witness): not sent again."""
    return recorded.get("state") == "Ready" and _witnessed(ctx)


def _witness(ctx: Context, incarnation: str) -> str:
    return f"Ready {instance_tag(ctx.checkpoint.instance_id)} incarnation {incarnation}\n"


def _witnessed(ctx: Context) -> bool:
    text = ctx.system.read_text(WITNESS_PATH, default="") or ""
    words = text.split()
    return len(words) >= 2 and words[0] == "Ready" and \
        words[1] == instance_tag(ctx.checkpoint.instance_id)


def wireserver_url(ctx: Context) -> str:
    configured = ctx.settings.get("azure.wireserver")
    if configured:
        return configured.rstrip("/")
    address = _option_245(ctx)
    if address:
        return f"http://{address}"
    log.info("%s: no wireserver address in the DHCP lease (option 245); using %s",
             SOURCE, DEFAULT_WIRESERVER)
    return f"http://{DEFAULT_WIRESERVER}"


def _option_245(ctx: Context) -> str | None:
    import ipaddress

    from operations.dhcp import lease_facts

    lease = lease_facts(ctx) or {}
    link = lease.get("link")
    if not link:
        return None
    result = ctx.system.run([DHCPINFO, "-i", link, WIRESERVER_OPTION], check=False,
                            timeout_s=5)
    value = result.stdout.strip().splitlines()[0].strip() if result.stdout.strip() else ""
    if result.returncode != 0 or not value:
        log.info("%s: dhcpinfo -i %s %s: %s", SOURCE, link, WIRESERVER_OPTION,
                 result.stderr.strip() or "no value in the lease")
        return None
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        log.warning("%s: DHCP option 245 on %s is %s, not an IPv4 address; ignored", SOURCE,
                    link, shown(value))
        return None


def escape(text: str) -> str:
    """XML character data (xml.sax.saxutils would import urllib and http.client into
    every boot, Azure or not)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def parse_goal_state(data: bytes) -> dict[str, str]:
    """Incarnation, container id and role instance id of a goal state document."""
    from xml.etree import ElementTree

    where = "wireserver goal state"
    if len(data) > GOAL_STATE_CAP or b"<!doctype" in data.lower() or b"<!entity" in data.lower():
        raise MetadataError(SOURCE, where, "too large or has a DTD; refused")
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as e:
        raise MetadataError(SOURCE, where, f"is not well-formed XML ({e})") from None
    found = {}
    for key, path in (("incarnation", "./Incarnation"),
                      ("container_id", "./Container/ContainerId"),
                      ("instance_id", "./Container/RoleInstanceList/RoleInstance/InstanceId")):
        element = root.find(path)
        text = (element.text or "").strip() if element is not None else ""
        if not text:
            raise MetadataError(SOURCE, f"{where} {path[2:]}", "missing or empty")
        found[key] = text
    return found


def health_report(goal: dict[str, str], state: str, description: str | None = None) -> bytes:
    """The Health document for the goal state (Microsoft's and cloud-init's layout)."""
    details = ""
    if state != "Ready":
        details = ("<Details><SubStatus>ProvisioningFailed</SubStatus>"
                   f"<Description>{escape((description or '')[:DESCRIPTION_CHARS])}"
                   "</Description></Details>")
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            '<Health xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
            f"<GoalStateIncarnation>{escape(goal['incarnation'])}</GoalStateIncarnation>"
            f"<Container><ContainerId>{escape(goal['container_id'])}</ContainerId>"
            "<RoleInstanceList><Role>"
            f"<InstanceId>{escape(goal['instance_id'])}</InstanceId>"
            f"<Health><State>{state}</State>{details}</Health>"
            "</Role></RoleInstanceList></Container></Health>\n").encode()


def report(ctx: Context) -> Outcome:
    """USERSCRIPT/azure-ready: see the module docstring."""
    outcome = Outcome()
    if not on_azure(ctx):
        return outcome
    failed = failures(ctx)
    if not failed and _witnessed(ctx):
        log.info("%s: the wireserver already accepted Ready for this instance (%s)",
                 SOURCE, WITNESS_PATH)
        return outcome
    state = "NotReady" if failed else "Ready"
    description = ("provisioning failed: " + "; ".join(failed)) if failed else None
    base = wireserver_url(ctx)
    if ctx.system.dry_run:
        return outcome.changed(f"would report {state} to the wireserver at {base}")
    from providers.http import HttpClient

    with HttpClient.from_settings(SOURCE, ctx.settings) as client:
        url = f"{base}/machine/?comp=goalstate"
        reply = client.request("GET", url, HEADERS)
        if reply.status != 200:
            raise ServiceError(f"{SOURCE}: GET {url}: unexpected HTTP {reply.status}")
        goal = parse_goal_state(reply.body)
        url = f"{base}/machine?comp=health"
        reply = client.request("POST", url, {**HEADERS,
                                              "Content-Type": "text/xml; charset=utf-8"},
                               health_report(goal, state, description))
        if reply.status != 200:
            raise ServiceError(f"{SOURCE}: POST {url}: the wireserver refused the {state} "
                               f"report (HTTP {reply.status})")
    if failed:
        raise ProvisioningFailed(f"{SOURCE}: reported NotReady to the wireserver ({description})")
    ctx.system.write_file(WITNESS_PATH, _witness(ctx, goal["incarnation"]), mode=0o644)
    return outcome.changed(f"reported Ready to the wireserver at {base} (incarnation "
                           f"{goal['incarnation']})")
