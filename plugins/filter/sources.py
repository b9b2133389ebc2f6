# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: sources
short_description: Resolve who may connect (CIDRs, network names, inventory groups) to CIDRs
version_added: 0.1.0
description:
  - Each entry is an IP address or CIDR, the name of a network in O(networks) (the inventory's
    C(homelab_networks), e.g. C(lan) or C(tailscale)), or an inventory group, which stands for the addresses of its
    members (C(homelab_addresses), else C(ansible_host) when it is an IP address).
  - Addresses are validated with netaddr; a CIDR with host bits set is an error. The result is normalised
    (C(192.0.2.7/32)), sorted and without duplicates.
  - Fails with one error listing every problem, before any host is touched.
options:
  _input:
    description: The sources.
    type: list
    elements: str
    required: true
  networks:
    description: Named networks, name to list of CIDRs.
    type: dict
    default: {}
  hostvars:
    description: C(hostvars), to find group members' addresses.
    type: dict
    default: {}
  groups:
    description: C(groups), the inventory's groups and their members.
    type: dict
    default: {}
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Who may reach SSH
  ansible.builtin.set_fact:
    ssh_sources: >-
      {{ ['lan', 'monitoring_server', '192.0.2.7'] | homelab.nixos.sources(homelab_networks, hostvars, groups) }}
  # ['10.89.60.14/32', '192.0.2.7/32', '192.168.1.0/24']
"""

RETURN = r"""
_value:
  description: Normalised CIDRs, IPv4 before IPv6.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._sources import SourceError, resolve_sources


def sources_filter(entries, networks=None, hostvars=None, groups=None):
    """The CIDRs ``entries`` stand for."""
    try:
        return resolve_sources(entries, networks, hostvars, groups)
    except SourceError as e:
        raise AnsibleFilterError(f"sources: {e}") from e


class FilterModule:
    """The sources filter."""

    def filters(self):
        return {"sources": sources_filter}
