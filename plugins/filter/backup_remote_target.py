# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: backup_remote_target
short_description: The backup target that holds a host's remote backup tier
version_added: 0.1.0
description:
  - The host's own choice (O(override), its C(backup_remote_target)) wins; C(false) or an empty string turns the
    remote tier off.
  - Otherwise the first member of O(targets) (the C(backup_targets) group) that is not the host itself; none when
    the host is the only target.
options:
  _input:
    description: The host's inventory name.
    type: str
    required: true
  targets:
    description: The C(backup_targets) group, in inventory order.
    type: list
    elements: str
    required: true
  override:
    description: The host's C(backup_remote_target), if set.
    type: raw
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Where this host's remote tier lives
  ansible.builtin.debug:
    msg: "{{ inventory_hostname | homelab.nixos.backup_remote_target(groups['backup_targets'], backup_remote_target) }}"
  # p620 -> p510; p510 -> dex5550 (a target never holds its own remote tier)
"""

RETURN = r"""
_value:
  description: The target's inventory name, or an empty string when the host has no remote tier.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._backup import remote_target


def backup_remote_target_filter(host, targets, override=None):
    """The inventory name of the host's remote backup target, or ""."""
    try:
        # "" rather than None: templating keeps it a string, so `| length` works.
        return remote_target(host, list(targets or []), override) or ""
    except (TypeError, ValueError) as e:
        raise AnsibleFilterError(f"backup_remote_target: {e}") from e


class FilterModule:
    """The backup_remote_target filter."""

    def filters(self):
        return {"backup_remote_target": backup_remote_target_filter}
