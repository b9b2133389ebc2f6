# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: sysctl_differences
short_description: sysctl values whose live value differs from the wanted one
version_added: 0.1.0
description:
  - Compares wanted sysctl values with the output of C(sysctl name ...) (C(name = value) lines) and returns the ones
    that differ or are missing, so a role can prove its settings took effect.
options:
  _input:
    description: Wanted values, name to value.
    type: dict
    required: true
  live:
    description: Output of C(sysctl name ...).
    type: str
    required: true
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Check the live values
  ansible.builtin.assert:
    that: "{{ {'kernel.kptr_restrict': 2} | homelab.nixos.sysctl_differences(__live.stdout) | length == 0 }}"
"""

RETURN = r"""
_value:
  description: Name to C({want, live}) for each difference; C(live) is null when the name was not printed.
  type: dict
"""

from ansible_collections.homelab.nixos.plugins.module_utils._kernel_hardening import live_differences


def sysctl_differences_filter(wanted, live):
    """Wanted sysctl values that are not live."""
    return live_differences(wanted or {}, live or "")


class FilterModule:
    """The sysctl_differences filter."""

    def filters(self):
        return {"sysctl_differences": sysctl_differences_filter}
