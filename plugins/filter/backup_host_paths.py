# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: backup_host_paths
short_description: What one host backs up - common paths, its groups' service state, its own paths
version_added: 0.1.0
description:
  - The common paths, then the paths of every group the host is in (its roles' state, e.g. Grafana's and
    Prometheus' data on the monitoring server, Plex databases on media hosts), then the host's own; each path once,
    in that order.
options:
  _input:
    description: Paths every host backs up (C(backup_paths)).
    type: list
    elements: str
    required: true
  group_paths:
    description: Group name to the paths its members back up (C(backup_group_paths)).
    type: dict
    required: true
  group_names:
    description: The host's groups (Ansible's C(group_names)).
    type: list
    elements: str
    required: true
  extra:
    description: The host's own paths (C(backup_extra_paths)).
    type: list
    elements: str
    default: []
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: What this host backs up
  ansible.builtin.debug:
    msg: "{{ backup_paths | homelab.nixos.backup_host_paths(backup_group_paths, group_names, backup_extra_paths) }}"
  # dex5550: [/home, /root, /var/lib/grafana, /var/lib/prometheus/metrics2, ...]
"""

RETURN = r"""
_value:
  description: The paths, each once.
  type: list
  elements: str
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._backup import host_paths


def backup_host_paths_filter(paths, group_paths, group_names, extra=None):
    """The host's backup paths."""
    if not isinstance(group_paths, Mapping):
        raise AnsibleFilterError(f"backup_host_paths: group_paths must be a mapping, got {group_paths!r}")
    try:
        return host_paths(paths, group_paths, group_names, extra)
    except TypeError as e:
        raise AnsibleFilterError(f"backup_host_paths: {e}") from e


class FilterModule:
    """The backup_host_paths filter."""

    def filters(self):
        return {"backup_host_paths": backup_host_paths_filter}
