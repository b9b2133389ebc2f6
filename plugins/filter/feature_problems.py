# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: feature_problems
short_description: List every problem with a host's feature flags
version_added: 0.1.0
description:
  - The non-failing twin of P(homelab.nixos.validate_features#filter) for preflight assertions that report all
    problems in one line. Returns an empty list when the features are valid.
  - Reports unknown feature names (with a did-you-mean), missing requirements, conflicts, features not meant for
    the host's kind, an invalid host kind, and inconsistencies of the registry itself.
options:
  _input:
    description: The host's features, a list of names or a mapping of name to boolean.
    type: raw
    required: true
  registry:
    description: Mapping of feature name to its registry entry (C(base_feature_registry)).
    type: dict
    required: true
  host_kind:
    description: Kind of the host (workstation, laptop, server or vm).
    type: str
    required: true
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Fail with every feature problem on one line
  vars:
    problems: "{{ base_features | homelab.nixos.feature_problems(base_feature_registry, 'laptop') }}"
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join('; ') }}"
"""

RETURN = r"""
_value:
  description: One string per problem; empty when the features are valid.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._features import feature_problems


def feature_problems_filter(host_features, registry, host_kind):
    """Every problem with ``host_features``, as a list of strings."""
    try:
        return feature_problems(host_features, registry, host_kind)
    except (TypeError, ValueError, AttributeError) as e:
        raise AnsibleFilterError(f"feature_problems: {e}") from e


class FilterModule:
    """The feature_problems filter."""

    def filters(self):
        return {"feature_problems": feature_problems_filter}
