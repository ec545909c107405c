"""Azure's provisioning report, declared as a step: the last of USERSCRIPT.

Why there: Azure marks a VM provisioned when its guest reports Ready to the wireserver
(and fails the deployment with OSProvisioningTimedOut when nothing comes), so the report
says the provisioning is complete: after the network, the host name, the admin user and
its keys, the pool, and the first-boot script's installation. DONE has no steps by design,
and the script itself runs later in its own service, as cloud-init's scripts-user does
after cloud-init has reported ready. Elsewhere than Azure it does nothing.
"""

from __future__ import annotations

from fsm.steps import Frequency, Step

WITNESS_PATH = "/var/metadata/azure-ready"   # operations/wireserver.py writes it

STEPS: tuple[Step, ...] = (
    Step("USERSCRIPT", "azure-ready", Frequency.PER_INSTANCE, "operations.wireserver:report",
         changes="on Azure only: GET the wireserver's goal state (`/machine/?comp=goalstate`, "
                 "`x-ms-version: 2012-11-30`; the wireserver from the lease's DHCP option 245, "
                 "else 168.63.129.16) and POST `/machine?comp=health` with its incarnation, "
                 "container id and role instance id: `Ready`, or `NotReady` with substatus "
                 "ProvisioningFailed and a description naming the steps that failed. After a "
                 f"200 for Ready, writes {WITNESS_PATH} (the instance tag and the incarnation)",
         fails_when="the wireserver cannot be reached or refuses the report within "
                    "`timeouts.fetch`; a goal state without incarnation, container id or "
                    "instance id; after sending NotReady (so `svcadm clear` sends Ready once "
                    "the failed steps succeed)",
         on_failure="recorded; the machine holds at USERSCRIPT for `svcadm clear`, which "
                    "runs it again",
         checkpointed="started record (intent: the state to report) before the POST, done "
                      f"record after; on resume, {WITNESS_PATH} naming this instance means "
                      "the Ready was accepted (not sent again). A kill between the 200 and "
                      "the witness sends it again: at least once, never lost",
         intent="operations.wireserver:intent",
         took_effect="operations.wireserver:took_effect"),
)
