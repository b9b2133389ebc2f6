# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: prometheus_scrape_configs
short_description: Build Prometheus scrape_configs from the inventory
version_added: 0.1.0
description:
  - Returns the C(scrape_configs) list of the monitoring server as plain data, for C(to_nice_yaml) on Debian or
    P(homelab.nixos.to_nix#filter) on NixOS. Every target comes from the inventory; no host list is kept by hand.
  - C(node) scrapes every host whose C(monitoring_exporters_enabled) is not false, at
    C(ansible_host|default(inventory_hostname)) and C(monitoring_exporters_node_port) (default O(settings.node_port)).
    The node exporter also serves the systemd collector and the NixOS generation textfile metrics.
  - C(gpu_nvidia) (port 9400) and C(gpu_amd) (port 9401) scrape members of the groups of the same name whose
    C(monitoring_exporters_gpu_exporter) is true.
  - C(tautulli) (port 9104) and C(nzbget) (port 9103) scrape members of group C(media) whose
    C(monitoring_exporters_media.<name>.api_key_set) is true; C(monitoring_exporters_media.<name>.port) overrides
    the port.
  - C(blackbox_http) probes O(settings.web_services) with module C(http_2xx); C(blackbox_icmp) (module C(icmp)) and
    C(blackbox_ssh) (module C(ssh_banner), port O(settings.ssh_port)) probe every host, through the blackbox
    exporter at O(settings.blackbox_address).
  - "Each host's targets carry the labels C(host), C(kind) (C(base_host_kind) or C(unknown)), C(gpu) (C(amd),
    C(nvidia), C(amd,nvidia) or C(none)), C(roles) (its role groups, sorted and joined with commas, or C(none)) and
    C(nixos) (C(true) or C(false), membership of group C(nixos))."
  - Every job sets O(settings.scrape_interval); jobs without targets are left out.
  - Fails with one error listing every problem, such as host names not in O(_input), invalid ports, a web service
    URL that is not http or https, or unknown settings.
  - P(homelab.nixos.prometheus_target_warnings#filter) names the hosts and exporters this leaves out.
options:
  _input:
    description: Mapping of host name to its variables, normally C(hostvars).
    type: dict
    required: true
  hosts:
    description: The hosts to monitor, normally C(groups['all']).
    type: list
    elements: str
    required: true
  settings:
    description: Optional settings; every key is optional and unknown keys are an error.
    type: dict
    required: false
    suboptions:
      scrape_interval:
        description: Prometheus duration set on every job.
        type: str
        default: 15s
      node_port:
        description: Node exporter port of hosts without C(monitoring_exporters_node_port).
        type: int
        default: 9100
      blackbox_address:
        description: "C(host:port) of the blackbox exporter, as seen from Prometheus."
        type: str
        default: 127.0.0.1:9115
      web_services:
        description: Web services to probe with C(http_2xx); each target gets a C(service) label with its name.
        type: list
        elements: dict
        default: []
        suboptions:
          name:
            description: Unique name of the service.
            type: str
            required: true
          url:
            description: An http or https URL.
            type: str
            required: true
      ssh_port:
        description: Port the C(ssh_banner) probe connects to on every host.
        type: int
        default: 22
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Scrape configs for every host of the inventory
  ansible.builtin.set_fact:
    monitoring_server_scrape_configs: >-
      {{ hostvars | homelab.nixos.prometheus_scrape_configs(groups['all'], {
           'scrape_interval': '15s',
           'web_services': [{'name': 'grafana', 'url': 'http://dex5550:3001/api/health'}],
         }) }}

- name: Write them for Prometheus on Debian
  ansible.builtin.copy:
    dest: /etc/prometheus/scrape_configs.yml
    content: "{{ {'scrape_configs': monitoring_server_scrape_configs} | to_nice_yaml }}"
    mode: "0644"

# One of the node targets:
#   - targets: ['p620:9100']
#     labels: {host: p620, kind: workstation, gpu: amd, roles: 'build_host,workstations', nixos: 'true'}
"""

RETURN = r"""
_value:
  description:
    - "Prometheus scrape configs, in the order node, gpu_nvidia, gpu_amd, tautulli, nzbget, blackbox_http,
      blackbox_icmp, blackbox_ssh (jobs without targets left out). Each has C(job_name), C(scrape_interval) and
      C(static_configs) (one C({targets, labels}) per host or web service); blackbox jobs also have C(metrics_path),
      C(params) and C(relabel_configs)."
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._prometheus_targets import TargetError, scrape_configs


def prometheus_scrape_configs(hostvars, hosts, settings=None):
    """The Prometheus scrape configs of ``hosts``, or an error listing every problem."""
    try:
        return scrape_configs(hostvars, hosts, settings)
    except TargetError as e:
        raise AnsibleFilterError(f"prometheus_scrape_configs: {e}") from e


class FilterModule:
    """The prometheus_scrape_configs filter."""

    def filters(self):
        return {"prometheus_scrape_configs": prometheus_scrape_configs}
