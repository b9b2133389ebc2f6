# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host firewall as plain data: default deny inbound, open exactly what
the roles on the host declare (``*_listen_ports``, merged by listen_ports),
each port only to its sources.

``firewall_plan`` resolves every entry's sources to CIDRs (IPv4 and IPv6
apart; no sources = anywhere). ``nftables_ruleset`` renders it as one nftables
table for Debian, ``nixos_firewall`` as ``networking.firewall`` options with
the nftables backend, and ``audit_listeners`` compares ``ss -tulnH`` with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible_collections.homelab.nixos.plugins.module_utils._sources import SourceError, resolve_sources

ANY = "any"
TABLE = "homelab_filter"
_RULE_TEXT = re.compile(r"^[^\n;#{}]+$")


class FirewallError(ValueError):
    """A firewall that cannot be built; ``problems`` lists every reason."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def _split_families(cidrs):
    return [c for c in cidrs if ":" not in c], [c for c in cidrs if ":" in c]


def firewall_plan(declared, networks=None, hostvars=None, groups=None):
    """[{name, port, proto, anywhere, ipv4, ipv6}] for the merged declarations of one host."""
    if isinstance(declared, (str, Mapping)) or not isinstance(declared, (list, tuple)):
        raise FirewallError([f"declared ports must be a list, got {declared!r}"])
    problems = []
    plan = []
    for entry in declared:
        sources = entry.get("allow_from") or []
        rule = {"name": entry["name"], "port": int(entry["port"]), "proto": entry["proto"]}
        if ANY in sources:
            rule.update(anywhere=True, ipv4=[], ipv6=[])
        else:
            try:
                cidrs = resolve_sources(sources, networks, hostvars, groups, what=f"{entry['name']} ({entry['port']})")
            except SourceError as e:
                problems.extend(e.problems)
                continue
            ipv4, ipv6 = _split_families(cidrs)
            rule.update(anywhere=False, ipv4=ipv4, ipv6=ipv6)
        plan.append(rule)
    if problems:
        raise FirewallError(problems)
    return plan


def _match_lines(rule):
    dport = f"{rule['proto']} dport {rule['port']}"
    comment = f'comment "{rule["name"]}"'
    if rule["anywhere"]:
        return [f"{dport} accept {comment}"]
    lines = []
    if rule["ipv4"]:
        lines.append(f"ip saddr {{ {', '.join(rule['ipv4'])} }} {dport} accept {comment}")
    if rule["ipv6"]:
        lines.append(f"ip6 saddr {{ {', '.join(rule['ipv6'])} }} {dport} accept {comment}")
    return lines


def _extra_rules(extra_rules):
    problems = []
    for rule in extra_rules or []:
        if not isinstance(rule, str) or not _RULE_TEXT.match(rule.strip()):
            problems.append(f"extra rule {rule!r} must be one nftables statement (no newlines, ';', '#' or braces)")
    if problems:
        raise FirewallError(problems)
    return [rule.strip() for rule in extra_rules or []]


def nftables_ruleset(plan, extra_rules=None, header="", log_drops=True):
    """The whole /etc/nftables.conf: one table, inbound default deny.

    The table is declared, deleted and declared again so that loading the
    file replaces it atomically without touching other tables (containers,
    VPNs). ``extra_rules`` come before the accepts (e.g. a drop).
    """
    extra = _extra_rules(extra_rules)
    body = [
        "type filter hook input priority filter; policy drop;",
        "ct state established,related accept",
        "ct state invalid drop",
        'iif "lo" accept',
        "meta l4proto icmp icmp type { echo-request, destination-unreachable, time-exceeded, parameter-problem }"
        " limit rate 50/second accept",
        "meta l4proto icmpv6 accept",
        *extra,
    ]
    for rule in plan:
        body += _match_lines(rule)
    if log_drops:
        body.append('limit rate 5/minute log prefix "homelab-firewall drop: " level info')
    lines = [header.rstrip("\n")] if header else []
    lines += [
        f"table inet {TABLE}",
        f"delete table inet {TABLE}",
        f"table inet {TABLE} {{",
        "\tchain input {",
        *(f"\t\t{line}" for line in body),
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def nixos_firewall(plan, extra_rules=None, log_drops=True):
    """``networking`` options: the nftables firewall, ports open to anyone in the
    allowed*Ports lists, source-limited ones as extraInputRules."""
    extra = _extra_rules(extra_rules)
    anywhere = {"tcp": [], "udp": []}
    limited = list(extra)
    for rule in plan:
        if rule["anywhere"]:
            anywhere[rule["proto"]].append(rule["port"])
        else:
            limited += _match_lines(rule)
    return {
        "nftables": {"enable": True},
        "firewall": {
            "enable": True,
            "allowPing": True,
            "logRefusedConnections": bool(log_drops),
            "allowedTCPPorts": sorted(set(anywhere["tcp"])),
            "allowedUDPPorts": sorted(set(anywhere["udp"])),
            "extraInputRules": "\n".join(limited) + ("\n" if limited else ""),
        },
    }


_SS_LINE = re.compile(r"^(?P<proto>tcp|udp)\s+\S+\s+\d+\s+\d+\s+(?P<local>\S+)\s+\S+")


def _local_port(local):
    address, _sep, port = local.rpartition(":")
    address = address.split("%", 1)[0].strip("[]")
    return address, int(port) if port.isdigit() else None


def audit_listeners(ss_output, plan):
    """What listens beyond the plan (reachable from outside: not loopback), and
    what the plan opens that nothing listens on. ``ss_output``: ``ss -tulnH``."""
    open_ports = {(rule["proto"], rule["port"]) for rule in plan}
    listening = set()
    unexpected = set()
    for line in ss_output.splitlines():
        match = _SS_LINE.match(line.strip())
        if not match:
            continue
        address, port = _local_port(match["local"])
        if port is None or address.startswith("127.") or address == "::1":
            continue
        key = (match["proto"], port)
        listening.add(key)
        if key not in open_ports:
            unexpected.add(key)
    return {
        "unexpected": [{"proto": proto, "port": port} for proto, port in sorted(unexpected)],
        "not_listening": [
            {"name": rule["name"], "proto": rule["proto"], "port": rule["port"]}
            for rule in plan
            if (rule["proto"], rule["port"]) not in listening
        ],
    }
