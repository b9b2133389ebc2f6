# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: agenix_host_secrets
short_description: The agenix secrets one host receives, and where they go
version_added: 0.1.0
description:
  - From the secret definitions, the secrets whose C(hosts) name the host directly or through one of its groups,
    sorted by name. Each carries where its age file is kept on the host (C(/var/lib/homelab/agenix/<name>.age)),
    where the host decrypts it (C(/run/agenix/<name>), a tmpfs, as agenix does) and the owner, group and mode of
    the plaintext (default C(root), C(root), C(0400)).
  - Fails, listing every problem, on definitions that P(homelab.nixos.agenix_problems#filter) rejects.
options:
  _input:
    description: Secret name to C(hosts), C(admins), C(owner), C(group) and C(mode).
    type: dict
    required: true
  host:
    description: The host (C(inventory_hostname)).
    type: str
    required: true
  groups:
    description: Ansible's C(groups).
    type: dict
    required: true
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Copy this host's age files
  ansible.builtin.copy:
    src: "{{ secrets_dir }}/{{ item.file }}"
    dest: "{{ item.source }}"
    mode: "0400"
  loop: "{{ secrets_definitions | homelab.nixos.agenix_host_secrets(inventory_hostname, groups) }}"
"""

RETURN = r"""
_value:
  description: C(name), C(file), C(source), C(dest), C(owner), C(group), C(mode) of each secret.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._agenix import AgenixError, host_secrets


def agenix_host_secrets(definitions, host, groups):
    """The secrets ``host`` receives, with their paths and permissions."""
    try:
        return host_secrets(definitions, host, groups)
    except AgenixError as e:
        raise AnsibleFilterError(f"agenix_host_secrets: {e}") from e


class FilterModule:
    """The agenix_host_secrets filter."""

    def filters(self):
        return {"agenix_host_secrets": agenix_host_secrets}
