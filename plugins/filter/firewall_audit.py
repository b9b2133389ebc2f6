# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: firewall_audit
short_description: Compare a host's listening sockets with its firewall plan
version_added: 0.1.0
description:
  - Reads the output of C(ss -tulnH) and reports sockets that listen on a non-loopback address on a port the plan does
    not open (C(unexpected) - a service nobody declared, blocked by the default deny), and planned ports nothing
    listens on (C(not_listening)).
options:
  _input:
    description: Output of C(ss -tulnH).
    type: str
    required: true
  plan:
    description: The plan from P(homelab.nixos.firewall_plan#filter).
    type: list
    elements: dict
    required: true
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Audit listeners
  ansible.builtin.set_fact:
    firewall_audit: "{{ __ss.stdout | homelab.nixos.firewall_audit(plan) }}"
  # {unexpected: [{proto: tcp, port: 631}], not_listening: [{name: grafana, proto: tcp, port: 3001}]}
"""

RETURN = r"""
_value:
  description: C(unexpected) and C(not_listening) lists.
  type: dict
"""

from ansible_collections.homelab.nixos.plugins.module_utils._firewall import audit_listeners


def firewall_audit_filter(ss_output, plan):
    """Unexpected listeners and planned ports without a listener."""
    return audit_listeners(ss_output or "", plan or [])


class FilterModule:
    """The firewall_audit filter."""

    def filters(self):
        return {"firewall_audit": firewall_audit_filter}
