# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: firewall_plan
short_description: What a host's firewall opens, to whom
version_added: 0.1.0
description:
  - Takes the merged port declarations of one host (P(homelab.nixos.listen_ports#filter)) and resolves each entry's
    C(allow_from) to CIDRs with P(homelab.nixos.sources#filter) (CIDRs, C(homelab_networks) names, inventory groups),
    IPv4 and IPv6 apart. C(any) opens the port to everyone.
  - Fails with one error listing every source that cannot be resolved.
options:
  _input:
    description: The merged declarations C({name, port, proto, allow_from}).
    type: list
    elements: dict
    required: true
  networks:
    description: Named networks (C(homelab_networks)).
    type: dict
    default: {}
  hostvars:
    description: C(hostvars), for group members' addresses.
    type: dict
    default: {}
  groups:
    description: C(groups).
    type: dict
    default: {}
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Plan the firewall
  ansible.builtin.set_fact:
    plan: >-
      {{ hostvars[inventory_hostname] | homelab.nixos.listen_ports
         | homelab.nixos.firewall_plan(homelab_networks, hostvars, groups) }}
  # [{name: ssh, port: 22, proto: tcp, anywhere: false, ipv4: [100.64.0.0/10, 192.168.1.0/24], ipv6: []}, ...]
"""

RETURN = r"""
_value:
  description: One entry per port and protocol - C(name), C(port), C(proto), C(anywhere), C(ipv4), C(ipv6).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._firewall import FirewallError, firewall_plan


def firewall_plan_filter(declared, networks=None, hostvars=None, groups=None):
    """Each declared port with its sources resolved to CIDRs."""
    try:
        return firewall_plan(declared, networks, hostvars, groups)
    except FirewallError as e:
        raise AnsibleFilterError(f"firewall_plan: {e}") from e


class FilterModule:
    """The firewall_plan filter."""

    def filters(self):
        return {"firewall_plan": firewall_plan_filter}
