# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: backup_nixos
short_description: The NixOS options that run the backup runner, and a backup target's accounts
version_added: 0.1.0
description:
  - The runner (C(/etc/homelab/backup/homelab_backup.py)), its configuration and the pinned host key of the remote
    target in C(environment.etc); one C(systemd.services) oneshot and one C(systemd.timers) entry per unit (backup,
    check, drill) with C(pkgs.python3), C(pkgs.restic) and C(pkgs.openssh) on their path; the state directories as
    C(systemd.tmpfiles.rules).
  - On a backup target, C(users.users.restic-<client>) system accounts (group C(restic)) with their root-owned
    chroots and C(repo) directories. sshd's C(Match) block comes from the P(homelab.nixos.ssh_hardening#role) role.
  - The same runner as on Debian, rather than C(services.restic.backups), so that the two tiers, replication,
    verification and metrics behave the same on both backends.
options:
  _input:
    description: The runner configuration (P(homelab.nixos.backup_runner_config#filter)).
    type: dict
    required: true
  units:
    description: C(name), C(description), C(command), C(schedule) and C(delay) of each unit.
    type: list
    elements: dict
    required: true
  runner:
    description: The runner's source text.
    type: str
    required: true
  known_hosts:
    description: The C(known_hosts) line of the remote target.
    type: str
    default: ""
  accounts:
    description: The target's client accounts (P(homelab.nixos.backup_target_accounts#filter)); empty on clients.
    type: list
    elements: str
    default: []
  target_root:
    description: Where a target keeps the chroots.
    type: str
    default: /srv/restic
  after:
    description: Units the runs wait for (e.g. C(homelab-agenix.service)).
    type: list
    elements: str
    default: []
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Write the backup NixOS module
  homelab.nixos.nixos_module:
    name: backup
    directory: /etc/nixos/homelab
    settings: "{{ _config | homelab.nixos.backup_nixos(_backup_units, lookup('file', 'homelab_backup.py')) }}"
"""

RETURN = r"""
_value:
  description: NixOS options (to_nix data).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._backup import nixos_options


def backup_nixos_filter(config, units, runner, *, known_hosts="", accounts=None, target_root="/srv/restic", after=None):
    """NixOS options for the backup runner and a target's accounts."""
    try:
        return nixos_options(
            config,
            list(units),
            runner,
            known_hosts=known_hosts,
            accounts=list(accounts or []),
            target_root=target_root,
            after=list(after or []),
        )
    except (KeyError, TypeError) as e:
        raise AnsibleFilterError(f"backup_nixos: {e}") from e


class FilterModule:
    """The backup_nixos filter."""

    def filters(self):
        return {"backup_nixos": backup_nixos_filter}
