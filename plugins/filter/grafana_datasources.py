# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: grafana_datasources
short_description: Grafana's data source provisioning document for the fleet
version_added: 0.1.0
description:
  - Returns the document Grafana reads from C(provisioning/datasources/), as data for C(to_nice_yaml).
  - Prometheus, with uid C(homelab-prometheus), is always there and is the default data source.
  - Loki, with uid C(homelab-loki), is added only when O(loki_url) is given.
  - Both are read-only in Grafana's UI (C(editable=false)); the files are the truth.
  - Fails on URLs that are not http(s) URLs with a host.
options:
  _input:
    description: URL of Prometheus as Grafana reaches it, for example C(http://127.0.0.1:9090).
    type: str
    required: true
  loki_url:
    description: URL of Loki; null or an empty string leaves Loki out.
    type: str
    required: false
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Provision Grafana's data sources
  ansible.builtin.copy:
    content: "{{ 'http://127.0.0.1:9090' | homelab.nixos.grafana_datasources('http://127.0.0.1:3100') | to_nice_yaml }}"
    dest: /etc/grafana/provisioning/datasources/homelab.yaml
    mode: "0644"
"""

RETURN = r"""
_value:
  description: The provisioning document, C(apiVersion=1) and the list of C(datasources).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.plugin_utils._grafana import GrafanaError, datasources_document


def grafana_datasources_filter(prometheus_url, loki_url=None):
    """The data source provisioning document: Prometheus, and Loki when ``loki_url`` is given."""
    try:
        return datasources_document(prometheus_url, loki_url)
    except GrafanaError as e:
        raise AnsibleFilterError(f"grafana_datasources: {e}") from e


class FilterModule:
    """The grafana_datasources filter."""

    def filters(self):
        return {"grafana_datasources": grafana_datasources_filter}
