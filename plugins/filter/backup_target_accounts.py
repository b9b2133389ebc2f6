# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: backup_target_accounts
short_description: The SFTP accounts a backup target keeps for its clients
version_added: 0.1.0
description:
  - C(restic-<client>) for every host whose remote backup tier is on this target (see
    P(homelab.nixos.backup_remote_target#filter)), skipping hosts with C(backup_enabled=false).
  - Reads only inventory variables (C(backup_enabled), C(backup_remote_target)), so the answer does not depend on
    which hosts the play runs on (C(--limit)).
options:
  _input:
    description: The target's inventory name.
    type: str
    required: true
  hosts:
    description: Every host that may back up (C(groups['all'])).
    type: list
    elements: str
    required: true
  targets:
    description: The C(backup_targets) group.
    type: list
    elements: str
    required: true
  hostvars:
    description: Ansible's C(hostvars).
    type: dict
    required: true
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: The restic accounts of this target
  ansible.builtin.debug:
    msg: >-
      {{ inventory_hostname | homelab.nixos.backup_target_accounts(groups['all'], groups['backup_targets'],
                                                                   hostvars) }}
  # on p510: [restic-p620, restic-razer, restic-dex5550, restic-samsung, restic-nixvm]
"""

RETURN = r"""
_value:
  description: Account names, in inventory order.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._backup import target_accounts


def backup_target_accounts_filter(target, hosts, targets, hostvars):
    """The restic-<client> accounts ``target`` keeps."""
    try:
        return target_accounts(target, list(hosts or []), list(targets or []), hostvars)
    except (TypeError, ValueError, AttributeError) as e:
        raise AnsibleFilterError(f"backup_target_accounts: {e}") from e


class FilterModule:
    """The backup_target_accounts filter."""

    def filters(self):
        return {"backup_target_accounts": backup_target_accounts_filter}
