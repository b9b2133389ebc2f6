# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: grafana_provisioning_problems
short_description: Everything that would break Grafana's provisioning of dashboards and data sources
version_added: 0.1.0
description:
  - Checks dashboards against the data source provisioning document and returns one string per problem,
    an empty list when all is well.
  - Finds dashboards that are not JSON data, invalid or duplicate dashboard uids, duplicate titles, panels,
    targets, variables or annotations referencing a data source uid that is not provisioned (or as the
    wrong type), panels without targets, empty queries and duplicate panel ids.
  - Also checks the data source document itself, duplicate uids or names and more than one default.
  - Needs no grafana-foundation-sdk.
options:
  _input:
    description:
      - File name to dashboard JSON data, as returned by P(homelab.nixos.grafana_dashboards#filter).
    type: dict
    required: true
  datasources_doc:
    description:
      - The data source provisioning document, as returned by P(homelab.nixos.grafana_datasources#filter).
    type: dict
    required: true
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Check the dashboards before writing them
  vars:
    problems: "{{ grafana_dashboards | homelab.nixos.grafana_provisioning_problems(grafana_datasources) }}"
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join('; ') }}"
"""

RETURN = r"""
_value:
  description: One string per problem; empty when the provisioning is consistent.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.plugin_utils._grafana import provisioning_problems


def grafana_provisioning_problems_filter(dashboards, datasources_doc):
    """Every problem of ``dashboards`` and ``datasources_doc``, as a list of strings."""
    try:
        return provisioning_problems(dashboards, datasources_doc)
    except (TypeError, ValueError, AttributeError) as e:
        raise AnsibleFilterError(f"grafana_provisioning_problems: {e}") from e


class FilterModule:
    """The grafana_provisioning_problems filter."""

    def filters(self):
        return {"grafana_provisioning_problems": grafana_provisioning_problems_filter}
