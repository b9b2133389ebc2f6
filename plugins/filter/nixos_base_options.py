# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: nixos_base_options
short_description: Map the base role's desired host state to NixOS options
version_added: 0.1.0
description:
  - Takes the backend-neutral desired state the base role computes (host name, kernel parameters, CPU governor,
    zram, thermald, microcode, Nix garbage collection and store optimisation, trusted users, journald size,
    fstrim schedule, extra settings) and returns NixOS option values for P(homelab.nixos.to_nix#filter).
  - Only option names that nixpkgs declares are produced.
options:
  _input:
    description: The desired state mapping built in C(roles/base/vars/main.yml).
    type: dict
    required: true
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Write the base module
  homelab.nixos.nixos_module:
    name: base
    settings: "{{ _base_desired | homelab.nixos.nixos_base_options }}"
"""

RETURN = r"""
_value:
  description: NixOS option values.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._base_options import BaseOptionsError, nixos_options


def nixos_base_options(desired):
    """NixOS options for the base role's desired state."""
    try:
        return nixos_options(desired)
    except (BaseOptionsError, KeyError, TypeError, ValueError) as e:
        raise AnsibleFilterError("nixos_base_options: %s" % e) from e


class FilterModule:
    """The nixos_base_options filter."""

    def filters(self):
        return {"nixos_base_options": nixos_base_options}
