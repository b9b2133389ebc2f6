# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: grafana_dashboards
short_description: The fleet's Grafana dashboards, generated with grafana-foundation-sdk
version_added: 0.1.0
description:
  - Builds every dashboard of the fleet in code with Grafana's grafana-foundation-sdk and returns them as
    a mapping of file name to dashboard JSON data, ready for C(to_nice_json).
  - C(fleet-overview.json) (uid C(homelab-fleet)) shows every host, up or down or not scraped at all, firing
    alerts, hosts needing a reboot, CPU, memory, disk and network.
  - One C(host-<name>.json) (uid C(homelab-host-<name>)) per host with status (up, uptime, failed systemd units,
    NixOS generation, its age and whether a reboot is required), CPU, memory, disk, network and temperatures,
    plus AMD GPU panels (node exporter's drm collector) when the host has an AMD GPU, NVIDIA GPU panels
    (nvidia_gpu_exporter) when it has an NVIDIA GPU, and Intel or AMD CPU panels after its CPU vendor.
  - C(media.json) (uid C(homelab-media)), Plex through Tautulli, NZBGet and the media services, only when
    a host has the C(media) role.
  - C(backups.json) (uid C(homelab-backups)) from the C(homelab_backup_*) metrics.
  - Every panel and query uses the data source O(datasource_uid); every dashboard has a C(host) variable
    (hidden and fixed on a host's own dashboard). Series are selected by their C(host) label.
  - Needs grafana-foundation-sdk on the controller (see the collection's requirements); fails naming the
    pip pin without it. Fails with every problem of the host list at once.
options:
  _input:
    description:
      - The hosts, a list of mappings.
      - C(name) (required) the inventory name; C(kind) (required) workstation, laptop, server or vm.
      - C(gpu) amd, nvidia or none, or a list or comma-separated string of vendors (default none).
      - C(cpu) amd, intel or other (default other).
      - C(roles) the host's role groups, a list or a comma-separated string (default none).
    type: list
    elements: dict
    required: true
  datasource_uid:
    description: Uid of the Prometheus data source the panels query.
    type: str
    default: homelab-prometheus
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Write the dashboards
  ansible.builtin.copy:
    content: "{{ item.value | to_nice_json }}"
    dest: "/var/lib/grafana/dashboards/{{ item.key }}"
    mode: "0644"
  loop: "{{ monitoring_server_hosts | homelab.nixos.grafana_dashboards | dict2items }}"
  loop_control:
    label: "{{ item.key }}"
  vars:
    monitoring_server_hosts:
      - {name: p620, kind: workstation, gpu: amd, cpu: amd, roles: [workstations, build_host]}
      - {name: p510, kind: server, gpu: nvidia, cpu: intel, roles: [servers, media]}
"""

RETURN = r"""
_value:
  description: File name to dashboard JSON data (mappings, lists, strings, numbers, booleans).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.plugin_utils._grafana import (
    PROMETHEUS_UID,
    GrafanaError,
    build_dashboards,
)


def grafana_dashboards_filter(hosts, datasource_uid=PROMETHEUS_UID):
    """Every dashboard of the fleet, as ``{file name: dashboard}``."""
    try:
        return build_dashboards(hosts, datasource_uid)
    except GrafanaError as e:
        raise AnsibleFilterError(f"grafana_dashboards: {e}") from e


class FilterModule:
    """The grafana_dashboards filter."""

    def filters(self):
        return {"grafana_dashboards": grafana_dashboards_filter}
