# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who may connect: named sources resolved to CIDRs.

A source is a CIDR or IP address, the name of a network from the inventory's
``homelab_networks`` (e.g. ``lan``, ``tailscale``) or an inventory group,
which stands for its members' addresses (``homelab_addresses``, else an
``ansible_host`` that is an IP address). Everything is validated with netaddr
and returned normalised (``192.0.2.7/32``), sorted and without duplicates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

try:
    import netaddr
except ImportError:  # pragma: no cover - the controller's requirements.txt installs it
    netaddr = None

TAILSCALE_CIDR = "100.64.0.0/10"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


class SourceError(ValueError):
    """Sources that cannot be resolved; ``problems`` lists every reason."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def cidr(text):
    """The normalised CIDR of an IP address or network, or raise ValueError with the reason."""
    if netaddr is None:
        raise ValueError("the netaddr Python package is required on the controller")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{text!r} is not an IP address or CIDR")
    try:
        network = netaddr.IPNetwork(text.strip())
    except (netaddr.AddrFormatError, ValueError, TypeError) as e:
        raise ValueError(f"{text!r} is not an IP address or CIDR ({e})") from e
    if network.ip != network.network:
        raise ValueError(f"{text!r} has host bits set: did you mean {network.cidr}?")
    return str(network.cidr)


def _looks_numeric(text):
    return text[:1].isdigit() or ":" in text or "/" in text


def _member_addresses(host, host_vars, what, problems):
    addresses = host_vars.get("homelab_addresses")
    if addresses:
        if isinstance(addresses, str):
            addresses = [addresses]
        found = []
        for address in addresses:
            try:
                found.append(cidr(address))
            except ValueError as e:
                problems.append(f"{what}: {host}'s homelab_addresses: {e}")
        return found
    address = host_vars.get("ansible_host", host)
    try:
        return [cidr(str(address))]
    except ValueError:
        problems.append(f"{what}: {host} has no IP address (ansible_host is {address!r}): set homelab_addresses for it")
        return []


def resolve_sources(entries, networks=None, hostvars=None, groups=None, what="sources"):
    """The sorted, distinct CIDRs ``entries`` stand for; SourceError lists every problem."""
    networks = networks or {}
    hostvars = hostvars or {}
    groups = groups or {}
    problems = []
    if isinstance(entries, (str, Mapping)) or not isinstance(entries, (list, tuple)):
        raise SourceError([f"{what} must be a list of CIDRs, network names or group names, got {entries!r}"])
    if not isinstance(networks, Mapping):
        raise SourceError([f"homelab_networks must be a mapping of name to CIDRs, got {networks!r}"])
    resolved = set()
    for entry in entries:
        text = entry.strip() if isinstance(entry, str) else ""
        if not text:
            problems.append(f"{what} holds {entry!r}, which is not a CIDR, network name or group name")
        elif _looks_numeric(text):
            try:
                resolved.add(cidr(text))
            except ValueError as e:
                problems.append(f"{what}: {e}")
        elif text in networks:
            members = networks[text]
            if isinstance(members, str) or not isinstance(members, (list, tuple)) or not members:
                problems.append(f"homelab_networks.{text} must be a non-empty list of CIDRs")
                continue
            for member in members:
                try:
                    resolved.add(cidr(member))
                except ValueError as e:
                    problems.append(f"homelab_networks.{text}: {e}")
        elif text in groups:
            hosts = groups[text] or []
            if not hosts:
                problems.append(f"{what}: group {text} has no hosts")
            for host in hosts:
                resolved.update(_member_addresses(host, hostvars.get(host, {}), what, problems))
        elif _NAME.match(text):
            known = sorted(set(networks) | {g for g in groups if g not in ("all", "ungrouped")})
            problems.append(
                f"{what}: {text!r} is neither a network in homelab_networks nor an inventory group"
                f" (known: {', '.join(known)})"
            )
        else:
            problems.append(f"{what} holds {entry!r}, which is not a CIDR, network name or group name")
    if problems:
        raise SourceError(problems)
    return sorted(resolved, key=lambda c: (netaddr.IPNetwork(c).version, netaddr.IPNetwork(c)))


def contains(cidrs, address):
    """Whether IP ``address`` lies in one of ``cidrs``."""
    ip = netaddr.IPAddress(address)
    return any(ip in netaddr.IPNetwork(c) for c in cidrs)
