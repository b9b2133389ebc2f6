# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: to_nix
short_description: Render data as canonical, readable Nix
version_added: 0.1.0
description:
  - Converts any YAML/JSON value (mappings, lists, strings, numbers, booleans, null) into a Nix expression.
  - Attribute names are sorted and quoted only when Nix needs it; chains of single-key attrsets become
    attribute paths (C(services.openssh.enable = true;)).
  - Strings are escaped, including C(${), so data can never become an interpolation. Multi-line strings
    are written as indented C('') strings when that round-trips exactly.
  - Negative numbers are parenthesised inside lists. Floats are written in valid Nix float syntax.
  - A raw Nix expression is written with the escape hatch, a mapping whose only key is C(__nix_raw__) (see the
    P(homelab.nixos.nix_raw#filter) filter). A plain string never becomes code.
  - NaN, infinity, integers beyond 64 bits, non-string attribute names and other unrepresentable values
    fail with an error naming the path of the offending value.
options:
  _input:
    description: The value to render.
    type: raw
    required: true
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Render SSH settings as Nix
  ansible.builtin.debug:
    msg: "{{ {'services': {'openssh': {'enable': true, 'ports': [22]}}} | homelab.nixos.to_nix }}"
  # services.openssh = {
  #   enable = true;
  #   ports = [ 22 ];
  # };

- name: Mix data and a raw expression
  vars:
    settings:
      services:
        prometheus:
          package: "{{ 'pkgs.prometheus' | homelab.nixos.nix_raw }}"
  ansible.builtin.debug:
    msg: "{{ settings | homelab.nixos.to_nix }}"
"""

RETURN = r"""
_value:
  description: The Nix expression, without a trailing newline.
  type: string
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._nix import NixRenderError, to_nix


def to_nix_filter(value):
    """Render ``value`` as a Nix expression."""
    try:
        return to_nix(value)
    except NixRenderError as e:
        raise AnsibleFilterError("to_nix: %s" % e) from e


class FilterModule:
    """The to_nix filter."""

    def filters(self):
        return {"to_nix": to_nix_filter}
