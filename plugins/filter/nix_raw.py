# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: nix_raw
short_description: Mark a string as a raw Nix expression for to_nix
version_added: 0.1.0
description:
  - Wraps a string in the marker mapping whose only key is C(__nix_raw__), that P(homelab.nixos.to_nix#filter) and
    M(homelab.nixos.nixos_module) write verbatim, for expressions such as C(pkgs.prometheus) or
    C(lib.mkForce false).
  - This is the only way a value becomes code; plain strings are always quoted.
options:
  _input:
    description: A non-empty Nix expression.
    type: string
    required: true
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Use a package from pkgs
  ansible.builtin.set_fact:
    settings:
      services:
        prometheus:
          package: "{{ 'pkgs.prometheus' | homelab.nixos.nix_raw }}"
"""

RETURN = r"""
_value:
  description: The marker mapping with the single key C(__nix_raw__).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._nix import NixRenderError, raw


def nix_raw_filter(expression):
    """Mark ``expression`` as raw Nix."""
    try:
        return raw(expression)
    except NixRenderError as e:
        raise AnsibleFilterError("nix_raw: %s" % e) from e


class FilterModule:
    """The nix_raw filter."""

    def filters(self):
        return {"nix_raw": nix_raw_filter}
