"""Field-by-field text of the Metadata a seed gives, for `seed inspect` and `plan --seed`.

Each line names the field, the value and, in parentheses, the seed file it came from (the
model's provenance), so a wrong value points straight at the file to fix. The user script
is described by size and interpreter only: it may hold secrets.
"""

from __future__ import annotations

from fsm.seed.evaluate import Evaluation
from fsm.seed.fingerprint import fingerprints
from providers.model import Metadata, Nic

WIDTH = 14


def _line(name: str, value: str, origin: str | None = None) -> str:
    where = "" if not origin else f"  {origin}" if origin.startswith("(") else f"  ({origin})"
    return f"{name + ':':<{WIDTH}} {value}{where}"


def _nic(nic: Nic) -> str:
    which = " ".join(p for p in (nic.name or "", nic.mac or "first link") if p)
    how = [*nic.addresses]
    if nic.dhcp4:
        how.append("DHCPv4")
    if nic.addrconf:
        how.append("IPv6 addrconf")
    if nic.gateways:
        how.append("gateway " + ", ".join(nic.gateways))
    primary = " [primary]" if nic.primary else ""
    return f"{which}{primary}: {', '.join(how) or 'link only, no address'}"


def script_summary(script: bytes) -> str:
    """Size and interpreter, never the body."""
    first = script.split(b"\n", 1)[0][2:].strip().split(b" ")[0]
    return f"{len(script)} bytes, interpreter {first.decode('utf-8', 'replace') or '?'}"


def describe(md: Metadata) -> list[str]:
    """The fields the agent would act on, one line each (continuation lines indented)."""
    prov = md.provenance
    pad = " " * (WIDTH + 1)
    lines = [_line("source", md.source)]
    lines.append(_line("instance id", md.instance_id or "(none: the agent derives one)",
                       prov.get("instance_id")))
    lines.append(_line("hostname", md.hostname or "(none: the name is left as it is, or "
                       "taken from DHCP)", prov.get("hostname")))
    prints = fingerprints(md.ssh_keys)
    lines.append(_line("ssh keys", f"{len(prints)} for root" if md.ssh_keys else "(none)",
                       prov.get("ssh_keys")))
    lines += [pad + p for p in prints]
    if md.network_skip:
        lines.append(_line("network", "skipped: no interface is configured",
                           prov.get("network_skip")))
    else:
        nics = [_nic(nic) for nic in md.nics]
        lines.append(_line("network", nics[0] if nics else "(none)", prov.get("nics")))
        lines += [pad + n for n in nics[1:]]
    if md.routes:
        lines.append(_line("routes", ", ".join(
            f"{r.destination} via {r.gateway}" if r.gateway else
            f"{r.destination} on the link of {r.interface}" for r in md.routes)))
    if md.resolvers or md.search_domains:
        dns = ", ".join(md.resolvers) or "(no servers)"
        if md.search_domains:
            dns += "; search " + " ".join(md.search_domains)
        lines.append(_line("dns", dns))
    lines.append(_line("user script", script_summary(md.user_script)
                       if md.user_script is not None else "(none)", prov.get("user_script")))
    if md.cloud_config is not None:
        from fsm.seed.cloudrender import describe_cloud_config

        entries = describe_cloud_config(md.cloud_config)
        lines.append(_line("cloud-config", entries[0]))
        lines += [pad + entry for entry in entries[1:]]
    return lines


def report(title: list[str], evaluation: Evaluation) -> str:
    """The whole `seed inspect` text: what was read, the fields, problems, the verdict."""
    lines = list(title)
    files = evaluation.files
    lines.append(_line("files", ", ".join(f"{n} ({len(d)} bytes)" for n, d in files.items())
                       if files else "(no seed files)"))
    if evaluation.metadata is not None:
        lines += describe(evaluation.metadata)
    for warning in evaluation.warnings:
        lines.append(f"warning: {warning}")
    for problem in evaluation.problems:
        lines.append(f"problem: {problem}")
    count = len(evaluation.warnings)
    with_warnings = (f", with {count} warning{'s' if count != 1 else ''} (what they name is "
                     f"skipped; the rest is applied)" if count else "")
    lines.append(f"verdict: the agent would accept this seed{with_warnings}"
                 if evaluation.accepted else
                 f"verdict: the agent would refuse this seed ({len(evaluation.problems)} "
                 f"problem{'s' if len(evaluation.problems) != 1 else ''}; exit 96)")
    return "\n".join(lines) + "\n"
