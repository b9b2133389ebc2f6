# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_hosts
short_description: Describe fleet hosts as plain data from their inventory variables
version_added: 0.1.0
description:
  - For each host name, returns its address (C(ansible_host) or the name), kind (C(base_host_kind)), CPU vendor
    (from C(amd_pstate)/C(intel_pstate) kernel parameters, else the hardware probe), GPU vendors (groups
    C(gpu_amd)/C(gpu_nvidia)), role groups and whether it is in the C(nixos) group.
  - Dashboards and scrape targets are generated from this, never from a hand-kept list.
options:
  _input:
    description: C(hostvars).
    type: dict
    required: true
  hosts:
    description: Host names to describe, normally C(groups['all']).
    type: list
    elements: str
    required: true
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Describe the fleet
  ansible.builtin.debug:
    msg: "{{ hostvars | homelab.nixos.fleet_hosts(groups['all']) }}"
"""

RETURN = r"""
_value:
  description: One mapping per host with name, address, kind, cpu, gpu, roles and nixos.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._fleet import FleetError, fleet_hosts


def fleet_hosts_filter(hostvars, hosts):
    """Plain descriptions of ``hosts``."""
    try:
        return fleet_hosts(hostvars, hosts)
    except FleetError as e:
        raise AnsibleFilterError("fleet_hosts: %s" % e) from e


class FilterModule:
    """The fleet_hosts filter."""

    def filters(self):
        return {"fleet_hosts": fleet_hosts_filter}
