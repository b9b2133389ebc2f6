# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: validate_features
short_description: Check a host's feature flags against the feature registry
version_added: 0.1.0
description:
  - Returns the sorted list of the host's enabled features when they are valid.
  - Fails with one error listing every problem at once, each on its own line. Unknown feature names (with a
    did-you-mean suggestion, also for names set to false), features whose requirements are not enabled,
    pairs of conflicting features (a conflict declared on either side counts), features not meant for the
    host's kind, an invalid host kind, and inconsistencies of the registry itself.
  - Requirements are never added automatically; the host must declare them.
options:
  _input:
    description:
      - The host's features, a list of names or a mapping of name to boolean (only true ones are enabled).
      - Null counts as no features.
    type: raw
    required: true
  registry:
    description:
      - Mapping of feature name to C({category, description, requires, conflicts, host_kinds}), normally
        C(base_feature_registry) from C(roles/base/vars/feature_registry.yml).
    type: dict
    required: true
  host_kind:
    description: Kind of the host.
    type: str
    choices: [workstation, laptop, server, vm]
    required: true
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Validate this host's features
  ansible.builtin.set_fact:
    base_features_enabled: "{{ base_features | homelab.nixos.validate_features(base_feature_registry, 'server') }}"

- name: Features as a mapping; only true ones are enabled
  ansible.builtin.debug:
    msg: >-
      {{ {'ai.ollama': true, 'ai.ollama_rocm': true, 'ai.ollama_cuda': false}
         | homelab.nixos.validate_features(base_feature_registry, 'workstation') }}
  # ['ai.ollama', 'ai.ollama_rocm']

# ['ai.olama', 'networking.tailscale_exit_node'] on a laptop fails with:
#   validate_features: 3 feature problems:
#   - unknown feature 'ai.olama' (did you mean 'ai.ollama'?)
#   - 'networking.tailscale_exit_node' requires 'networking.tailscale', which is not enabled
#   - 'networking.tailscale_exit_node' is not meant for laptop hosts (allowed on: server)
"""

RETURN = r"""
_value:
  description: The enabled features, sorted.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._features import FeatureError, validate_features


def validate_features_filter(host_features, registry, host_kind):
    """The sorted enabled features of a host, or an error listing every problem."""
    try:
        return validate_features(host_features, registry, host_kind)
    except FeatureError as e:
        raise AnsibleFilterError(f"validate_features: {e}") from e


class FilterModule:
    """The validate_features filter."""

    def filters(self):
        return {"validate_features": validate_features_filter}
