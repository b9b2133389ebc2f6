# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: sshd_settings
short_description: The hardened sshd configuration of one host, as ordered keywords
version_added: 0.1.0
description:
  - Keys only (C(AuthenticationMethods publickey)), no root login, no keyboard-interactive or password login,
    C(MaxAuthTries), C(LoginGraceTime), C(ClientAlive*), C(MaxStartups), no forwarding unless the host needs it,
    C(LogLevel VERBOSE).
  - Algorithms are modern and cut down to what the host's OpenSSH supports (O(algorithms), from
    M(homelab.nixos.sshd_capabilities)) - no NIST-curve key exchange or host keys, no SHA-1, encrypt-then-MAC MACs
    only; ed25519 and RSA (rsa-sha2) host keys.
  - When O(_input.allow_sources) is set, C(AllowUsers) admits each user only from those CIDRs, and always also from the
    Tailscale range 100.64.0.0/10.
  - Fails with one error listing every problem.
options:
  _input:
    description:
      - Options C(port), C(allow_users), C(allow_sources) (CIDRs, see P(homelab.nixos.sources#filter)),
        C(max_auth_tries), C(max_sessions), C(login_grace_time), C(client_alive_interval), C(client_alive_count_max),
        C(max_startups), C(tcp_forwarding), C(agent_forwarding), C(x11_forwarding), C(extra_settings)
        (further keywords; the hardened ones cannot be overridden).
      - C(sftp_only_users) (accounts confined to SFTP, admitted from the same sources), C(sftp_chroot_directory) and
        C(sftp_authorized_keys_file) give a last C(Match User) block (key C(Match) of the result).
    type: dict
    required: true
  algorithms:
    description:
      - C(ssh -Q) lists of the host (C(kex), C(cipher), C(mac), C(key-sig)).
      - Omitted (null), every modern algorithm is assumed supported; preflight checks use this before any host is
        reached.
    type: dict
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Compute the sshd settings
  ansible.builtin.set_fact:
    sshd: "{{ {'allow_users': ['admin'], 'allow_sources': ['192.168.1.0/24']}
              | homelab.nixos.sshd_settings(__caps.algorithms) }}"
  # AllowUsers: [admin@192.168.1.0/24, admin@100.64.0.0/10], KexAlgorithms: [sntrup761x25519-sha512@openssh.com, ...]
"""

RETURN = r"""
_value:
  description: sshd_config keywords in file order; list values for multi-valued keywords.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._sshd import SshdError, sshd_settings


def sshd_settings_filter(options, algorithms=None):
    """The hardened sshd keywords for one host."""
    try:
        return dict(sshd_settings(options, algorithms))
    except SshdError as e:
        raise AnsibleFilterError(f"sshd_settings: {e}") from e


class FilterModule:
    """The sshd_settings filter."""

    def filters(self):
        return {"sshd_settings": sshd_settings_filter}
