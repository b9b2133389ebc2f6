# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: firewall_rules
short_description: Render a firewall plan as nftables (Debian) or networking.firewall options (NixOS)
version_added: 0.1.0
description:
  - With O(format=nftables) (default), the whole C(/etc/nftables.conf) - one table C(inet homelab_filter) whose input
    chain drops by default, accepts established traffic, loopback and ICMP, then each planned port from its sources
    only, and logs drops (rate-limited). The file declares, deletes and re-declares its table, so loading it replaces
    the table atomically without touching other tables.
  - With O(format=nixos), C(networking) options - C(nftables.enable), C(firewall.enable), ports open to anyone in
    C(allowedTCPPorts)/C(allowedUDPPorts), source-limited ports as C(firewall.extraInputRules).
  - O(extra_rules) are nftables statements placed before the accepts (e.g. a C(drop)).
options:
  _input:
    description: The plan from P(homelab.nixos.firewall_plan#filter).
    type: list
    elements: dict
    required: true
  format:
    description: What to produce.
    type: str
    choices: [nftables, nixos]
    default: nftables
  extra_rules:
    description: Extra nftables statements, one per item.
    type: list
    elements: str
    default: []
  header:
    description: Comment lines at the top of the file.
    type: str
    default: ""
  log_drops:
    description: Log dropped packets (rate-limited).
    type: bool
    default: true
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Write the nftables ruleset
  ansible.builtin.copy:
    content: "{{ plan | homelab.nixos.firewall_rules(header='# managed') }}"
    dest: /etc/nftables.conf
    mode: "0644"
    validate: nft -c -f %s
"""

RETURN = r"""
_value:
  description: The ruleset text (O(format=nftables)) or the C(networking) options (O(format=nixos)).
  type: raw
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._firewall import (
    FirewallError,
    nftables_ruleset,
    nixos_firewall,
)


def firewall_rules_filter(plan, format="nftables", extra_rules=None, header="", log_drops=True):
    """The plan as an nftables ruleset or NixOS options."""
    try:
        if format == "nftables":
            return nftables_ruleset(plan, extra_rules, header, log_drops)
        if format == "nixos":
            return nixos_firewall(plan, extra_rules, log_drops)
    except FirewallError as e:
        raise AnsibleFilterError(f"firewall_rules: {e}") from e
    raise AnsibleFilterError(f"firewall_rules: format must be 'nftables' or 'nixos', got {format!r}")


class FilterModule:
    """The firewall_rules filter."""

    def filters(self):
        return {"firewall_rules": firewall_rules_filter}
