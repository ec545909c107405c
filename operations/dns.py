"""Name resolution: `/etc/resolv.conf` and the `hosts:`/`ipnodes:` lines of nsswitch.conf.

Nameservers and search domains come from the metadata, else from the primary DHCP lease.
resolv.conf is edited, not replaced: every `nameserver` line is replaced by the wanted ones
(stale servers from the image go), the `search`/`domain` lines by one `search` line when
domains are known (resolv.conf honours only the last of them), and every other line
(comments, `options`, `sortlist`) is kept in place. nsswitch.conf gets `dns` after `files`
on `hosts:` and `ipnodes:` when it is missing: without it illumos never asks the
nameservers (the original agent left it out, so names did not resolve). Both files are
rewritten whole and atomically, and only when their content changes.
"""

from __future__ import annotations

import logging

from fsm.errors import MetadataError
from fsm.steps import Outcome
from operations.dhcp import lease_facts
from operations.netlinks import nic_links, primary_nic
from operations.validate import validate_domain, validate_nameserver

TYPE_CHECKING = False  # typing's constant, without importing typing (issue 17)
if TYPE_CHECKING:
    from fsm.steps import Context

log = logging.getLogger(__name__)

RESOLV_CONF = "/etc/resolv.conf"
NSSWITCH = "/etc/nsswitch.conf"
NSSWITCH_DBS = ("hosts", "ipnodes")
MAX_NAMESERVERS = 3  # resolver(5): only the first three are used


def wanted_dns(ctx: Context, warnings: list[str] | None = None) -> tuple[list[str], list[str], str]:
    """(nameservers, search domains, where they came from).

    A malformed value from the metadata is skipped with a warning in `warnings` (the
    others are applied); one from the DHCP lease is garbage command output, an error."""
    md = ctx.metadata
    if md is None:
        return [], [], ""
    resolvers = list(md.resolvers)
    search = list(md.search_domains)
    source = md.source
    # Who to blame for a bad value: the metadata, or the DHCP server whose lease gave it.
    resolvers_from = (md.origin("resolvers"), "resolvers")
    search_from = (md.origin("search_domains"), "search_domains")
    if not resolvers or not search:
        pairs = nic_links(ctx)
        primary = primary_nic(md)
        # A lease whose DNS servers the metadata refuses (use-dns: false) is not asked.
        dhcp_links = [link for nic, link in pairs if nic.dhcp4 and nic.dhcp_dns and nic is primary]
        dhcp_links += [link for nic, link in pairs
                       if nic.dhcp4 and nic.dhcp_dns and nic is not primary]
        lease = lease_facts(ctx, dhcp_links[0]) if dhcp_links else None
        if lease:
            if not resolvers and lease["dns"]:
                resolvers, source = list(lease["dns"]), f"the DHCP lease on {lease['link']}"
                resolvers_from = (f"dhcp lease on {lease['link']}", "DNSserv")
            if not search and lease["domain"]:
                search = [lease["domain"]]
                search_from = (f"dhcp lease on {lease['link']}", "DNSdmain")
    good_resolvers, good_search = [], []
    for server in resolvers:
        try:
            good_resolvers.append(validate_nameserver(server, "x:x"))
        except MetadataError as e:
            _bad(MetadataError(*resolvers_from, e.problem), resolvers_from,
                 md.origin("resolvers"), warnings)
    for domain in search:
        try:
            good_search.append(validate_domain(domain, "x:x"))
        except MetadataError as e:
            _bad(MetadataError(*search_from, e.problem), search_from,
                 md.origin("search_domains"), warnings)
    return _unique(good_resolvers), _unique(good_search), source


def _bad(error: MetadataError, blamed: tuple[str, str], metadata_origin: str,
         warnings: list[str] | None) -> None:
    if warnings is None or blamed[0] != metadata_origin:
        raise error
    warnings.append(f"{error}; skipped; the rest is applied")


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def edit_resolv_conf(text: str, nameservers: list[str], search: list[str]) -> str:
    ns_lines = [f"nameserver {server}" for server in nameservers]
    search_line = "search " + " ".join(search) if search else None
    out: list[str] = []
    placed_ns = placed_search = False
    for line in text.splitlines():
        keyword = line.split()[0] if line.split() else ""
        if keyword == "nameserver" and ns_lines:
            if not placed_ns:
                out.extend(ns_lines)
                placed_ns = True
            continue
        if keyword in ("search", "domain") and search_line:
            if not placed_search:
                out.append(search_line)
                placed_search = True
            continue
        out.append(line)
    if search_line and not placed_search:
        out.append(search_line)
    if ns_lines and not placed_ns:
        out.extend(ns_lines)
    return "\n".join(out) + "\n" if out else ""


def edit_nsswitch(text: str) -> str:
    lines = text.splitlines()
    for db in NSSWITCH_DBS:
        index = next((i for i, ln in enumerate(lines) if ln.startswith(db + ":")), None)
        if index is None:
            lines.append(f"{db}:{' ' * max(1, 11 - len(db) - 1)}files dns")
            continue
        lines[index] = _with_dns(lines[index], db)
    return "\n".join(lines) + "\n"


def _with_dns(line: str, db: str) -> str:
    body, hash_, comment = line[len(db) + 1:].partition("#")
    tokens = body.split()
    if "dns" in tokens:
        return line
    lead = body[: len(body) - len(body.lstrip())] or " "
    at = len(tokens)
    if "files" in tokens:
        at = tokens.index("files") + 1
        while at < len(tokens) and tokens[at].startswith("["):  # files' [STATUS=action]
            at += 1
    tokens.insert(at, "dns")
    rebuilt = f"{db}:{lead}{' '.join(tokens)}"
    return f"{rebuilt} {hash_}{comment}".rstrip() if hash_ else rebuilt


def apply_dns(ctx: Context) -> Outcome:
    outcome = Outcome()
    nameservers, search, source = wanted_dns(ctx, outcome.warnings)
    system = ctx.system
    if len(nameservers) > MAX_NAMESERVERS:
        outcome.warnings.append(f"{len(nameservers)} nameservers given; the resolver uses the "
                                f"first {MAX_NAMESERVERS}")
    current = system.read_text(RESOLV_CONF, default="")
    if nameservers or search:
        edited = edit_resolv_conf(current, nameservers, search)
        if edited != current:
            system.write_file(RESOLV_CONF, edited, mode=0o644)
            outcome.changed(f"{RESOLV_CONF}: nameservers {', '.join(nameservers) or '(kept)'}"
                            f"{'; search ' + ' '.join(search) if search else ''} (from {source})")
        current = edited
    else:
        log.info("no nameservers in the metadata or a DHCP lease; resolv.conf left alone")
    has_servers = any(ln.split()[:1] == ["nameserver"] for ln in current.splitlines())
    if has_servers:
        ns_text = system.read_text(NSSWITCH, default="")
        ns_edited = edit_nsswitch(ns_text)
        if ns_edited != ns_text:
            system.write_file(NSSWITCH, ns_edited, mode=0o644)
            outcome.changed(f"{NSSWITCH}: dns added to {' and '.join(d + ':' for d in NSSWITCH_DBS)}")
    return outcome
