# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: sshd_config
short_description: Render sshd settings as a whole sshd_config file, or as NixOS services.openssh options
version_added: 0.1.0
description:
  - With O(format=file) (default), the text of C(/etc/ssh/sshd_config) for settings from
    P(homelab.nixos.sshd_settings#filter), followed by C(UsePAM yes), C(PrintMotd no), C(AcceptEnv LANG LC_*) and
    the SFTP subsystem. The file is the whole configuration - it includes no drop-in directory.
  - With O(format=nixos), C(services.openssh) options in nixpkgs' RFC 42 C(settings) form (C(Macs), C(UseDns),
    booleans where nixpkgs types them so), C(ports), C(hostKeys) (ed25519 and 4096-bit RSA only) and
    C(openFirewall=false) (the firewall role opens the port).
options:
  _input:
    description: The settings.
    type: dict
    required: true
  format:
    description: What to produce.
    type: str
    choices: [file, nixos]
    default: file
  header:
    description: First line(s) of the file, e.g. C(ansible_managed) as a comment.
    type: str
    default: ""
  sftp_server:
    description: SFTP server path for C(Subsystem sftp); empty for none.
    type: str
    default: /usr/lib/openssh/sftp-server
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Write sshd_config
  ansible.builtin.copy:
    content: "{{ sshd | homelab.nixos.sshd_config(header=ansible_managed | comment) }}"
    dest: /etc/ssh/sshd_config
    mode: "0644"
    validate: /usr/sbin/sshd -t -f %s
"""

RETURN = r"""
_value:
  description: The file text (O(format=file)) or the C(services.openssh) options (O(format=nixos)).
  type: raw
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._sshd import nixos_openssh, render_sshd_config


def sshd_config_filter(settings, format="file", header="", sftp_server="/usr/lib/openssh/sftp-server"):
    """sshd settings as a file or as NixOS options."""
    if not isinstance(settings, dict) or "Port" not in settings:
        raise AnsibleFilterError("sshd_config: expects the settings from homelab.nixos.sshd_settings")
    if format == "file":
        return render_sshd_config(settings, header, sftp_server)
    if format == "nixos":
        return nixos_openssh(settings)
    raise AnsibleFilterError(f"sshd_config: format must be 'file' or 'nixos', got {format!r}")


class FilterModule:
    """The sshd_config filter."""

    def filters(self):
        return {"sshd_config": sshd_config_filter}
