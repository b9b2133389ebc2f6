# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: agenix_recipients
short_description: Who may read which agenix secret, as data or as secrets.nix
version_added: 0.1.0
description:
  - Maps each secret to the age recipients allowed to decrypt it, in the shape of agenix's C(secrets.nix)
    (file name to C(publicKeys)) - the admin keys (unless the secret sets C(admins=false)) and the SSH host keys of
    the hosts it names, directly or through inventory groups.
  - Admin keys may be ssh-ed25519 or ssh-rsa public keys (RSA of at least 2048 bits) or age X25519 recipients
    (C(age1...)). Host keys must be ssh-ed25519, as in C(/etc/ssh/ssh_host_ed25519_key.pub); the bare base64 blob
    of the C(ssh_host_key_ed25519_public) fact is accepted too. Every key's base64 is decoded and its embedded type
    checked; comments are dropped, leaving C(type base64).
  - Fails with one error listing every problem - an invalid key, an unknown host or group, a host without a host
    key, a secret nobody can read. A secret only admins can read is fine.
  - The result is sorted (files, and the keys of each file) and does not depend on the order of the input.
options:
  _input:
    description:
      - Secret name (the file name without C(.age); a relative path with C(/) is fine) to a dict with
        C(hosts) (host and group names, default none) and C(admins) (boolean, default V(true)).
    type: dict
    required: true
  admin_keys:
    description: Public keys of the admins (ssh-ed25519, ssh-rsa or C(age1...)).
    type: list
    elements: str
    default: []
  host_keys:
    description: Host name to its ssh-ed25519 host public key.
    type: dict
    default: {}
  groups:
    description: C(groups), to resolve group names. A name that is both a host with a key and a group is the host.
    type: dict
    default: {}
  format:
    description: V(dict) returns the mapping, V(nix) the text of C(secrets.nix) with a header saying it is generated.
    type: str
    choices: [dict, nix]
    default: dict
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Write agenix's secrets.nix next to the encrypted files
  ansible.builtin.copy:
    dest: "{{ playbook_dir }}/secrets/secrets.nix"
    mode: "0644"
    content: >-
      {{ agenix_secrets
         | homelab.nixos.agenix_recipients(agenix_admin_keys, agenix_host_keys, groups, format='nix') }}
  delegate_to: localhost
  run_once: true
  vars:
    agenix_secrets:
      p620-wifi: {hosts: [p620]}
      tailscale-authkey: {hosts: [all]}
      restic-password: {hosts: [workstations], admins: false}
    # ssh_host_key_ed25519_public is gathered by ansible.builtin.setup (the bare base64 blob).
    agenix_host_keys: >-
      {{ dict(groups['all'] | zip(groups['all']
         | map('extract', hostvars, ['ansible_facts', 'ssh_host_key_ed25519_public']))) }}
  # {"p620-wifi.age".publicKeys = [ "age1..." "ssh-ed25519 AAAA..." ]; ...}
"""

RETURN = r"""
_value:
  description:
    - With O(format=dict), C(<name>.age) to a dict whose only key C(publicKeys) lists the keys that can decrypt
      it (sorted, without duplicates).
    - With O(format=nix), the text of C(secrets.nix).
  type: raw
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._agenix import AgenixError, recipients_map, secrets_nix

FORMATS = ("dict", "nix")


def agenix_recipients(secrets, admin_keys=None, host_keys=None, groups=None, format="dict"):
    """agenix's rules: each secret file and the public keys that can decrypt it."""
    if format not in FORMATS:
        raise AnsibleFilterError(f"agenix_recipients: format must be one of {', '.join(FORMATS)}, got {format!r}")
    try:
        rules = recipients_map(secrets, admin_keys, host_keys, groups)
        return secrets_nix(rules) if format == "nix" else rules
    except AgenixError as e:
        raise AnsibleFilterError(f"agenix_recipients: {e}") from e


class FilterModule:
    """The agenix_recipients filter."""

    def filters(self):
        return {"agenix_recipients": agenix_recipients}
