# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: prometheus_target_warnings
short_description: Name what the inventory promises but Prometheus will not scrape
version_added: 0.1.0
description:
  - The companion of P(homelab.nixos.prometheus_scrape_configs#filter). Returns one sentence per gap, empty when
    every promised exporter is scraped.
  - Reports members of C(gpu_amd) or C(gpu_nvidia) whose C(monitoring_exporters_gpu_exporter) is not true (no
    GPU exporter is packaged for their platform), members of C(media) whose C(tautulli) or C(nzbget) exporter has no
    API key, media API keys on hosts outside group C(media), and hosts with C(monitoring_exporters_enabled) false
    (watched by the blackbox probes only).
  - Fails on the same invalid input as P(homelab.nixos.prometheus_scrape_configs#filter).
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
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Tell what will not be scraped
  ansible.builtin.debug:
    msg: "{{ item }}"
  loop: "{{ hostvars | homelab.nixos.prometheus_target_warnings(groups['all']) }}"
  # p620 is in gpu_amd but no AMD GPU exporter is packaged for its platform
  # (monitoring_exporters_gpu_exporter is not true): its GPU is not scraped
"""

RETURN = r"""
_value:
  description: One sentence per gap, in host name order; empty when there is none.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._prometheus_targets import TargetError, target_warnings


def prometheus_target_warnings(hostvars, hosts):
    """Sentences naming the exporters of ``hosts`` that will not be scraped."""
    try:
        return target_warnings(hostvars, hosts)
    except TargetError as e:
        raise AnsibleFilterError(f"prometheus_target_warnings: {e}") from e


class FilterModule:
    """The prometheus_target_warnings filter."""

    def filters(self):
        return {"prometheus_target_warnings": prometheus_target_warnings}
