# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: backup_runner_config
short_description: The backup runner's configuration for one host, checked
version_added: 0.1.0
description:
  - Turns the P(homelab.nixos.backup#role) role's desired state into the JSON configuration of
    C(homelab-backup) (the restic runner) - the local repository, then the remote one on a backup target, reached
    over SFTP as C(restic-<host>) with the host's own key and pinned host key, and filled by C(restic copy) from the
    local tier.
  - Fails with one error listing every problem (paths that are not absolute, bad retention, a canary outside the
    backed-up paths, a target that is the host itself...).
options:
  _input:
    description:
      - C(host), C(paths), C(excludes), C(tags), C(state_dir), C(cache_dir), C(textfile), C(canary_file),
        C(password_file), C(check_read_data_subset), C(drill_sample), C(drill_dir), C(restic), C(local) (C(path),
        C(retention)) and C(remote) (null, or C(target), C(address), C(port), C(path), C(identity),
        C(known_hosts), C(retention)).
    type: dict
    required: true
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Write the runner's configuration
  ansible.builtin.copy:
    content: "{{ _backup_settings | homelab.nixos.backup_runner_config | to_nice_json }}"
    dest: /etc/homelab/backup/config.json
    mode: "0644"
"""

RETURN = r"""
_value:
  description: >-
    The runner configuration (C(repositories) lists C(local) first, then the remote tier named after its target).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._backup import BackupError, runner_config


def backup_runner_config_filter(settings):
    """The checked runner configuration."""
    if not isinstance(settings, dict):
        raise AnsibleFilterError(f"backup_runner_config: expects a mapping, got {type(settings).__name__}")
    try:
        return runner_config(settings)
    except BackupError as e:
        raise AnsibleFilterError("backup settings: " + "; ".join(e.problems)) from e


class FilterModule:
    """The backup_runner_config filter."""

    def filters(self):
        return {"backup_runner_config": backup_runner_config_filter}
