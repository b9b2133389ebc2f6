# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: agenix_problems
short_description: Every problem of the secret definitions, before any host is contacted
version_added: 0.1.0
description:
  - Checks the definitions the P(homelab.nixos.secrets#role) role deploys and returns one message per problem
    (an empty list when they are fine) - an invalid secret name, unknown keys, an owner, group or mode that is not
    valid, a host or group the inventory does not have, a secret with neither a value nor an existing age file, a
    secret the admins cannot read (C(admins=false)) without a value, values given for undeclared secrets.
  - Host keys are not needed; they are collected from the hosts later.
options:
  _input:
    description: Secret name to C(hosts), C(admins), C(owner), C(group) and C(mode).
    type: dict
    required: true
  groups:
    description: Ansible's C(groups).
    type: dict
    required: true
  values:
    description: Names of the secrets whose plaintext the inventory gives (from Ansible Vault).
    type: list
    elements: str
    default: []
  existing:
    description: Names of the C(.age) files already in the secrets directory.
    type: list
    elements: str
    default: []
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Check the secrets
  ansible.builtin.assert:
    that: _problems | length == 0
    fail_msg: "{{ _problems | join('; ') }}"
  vars:
    _problems: >-
      {{ secrets_definitions | homelab.nixos.agenix_problems(groups, secrets_values | list,
         query('fileglob', secrets_dir ~ '/*.age') | map('basename') | list) }}
"""

RETURN = r"""
_value:
  description: One message per problem, naming the secret; empty when the definitions are fine.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._agenix import definition_problems


def agenix_problems(definitions, groups, values=None, existing=None):
    """The problems of the secret definitions, one message each."""
    try:
        return definition_problems(definitions, groups, values or [], existing or [])
    except (TypeError, AttributeError) as e:
        raise AnsibleFilterError(f"agenix_problems: {e}") from e


class FilterModule:
    """The agenix_problems filter."""

    def filters(self):
        return {"agenix_problems": agenix_problems}
