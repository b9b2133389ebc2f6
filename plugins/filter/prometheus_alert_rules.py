# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: prometheus_alert_rules
short_description: The fleet's Prometheus alert rules as a rule-file document
version_added: 0.1.0
description:
  - Returns a Prometheus rule-file document, a mapping with one key C(groups), as plain data. Write it with
    C(to_nice_yaml) (or C(to_json)) and check it with C(promtool check rules).
  - "Groups: C(homelab-host) (HostDown, ExporterDown, HighCPUUsage, HighMemoryUsage, LowDiskSpace,
    FilesystemPredictedFull, HighNetworkTraffic, SystemdServiceFailed, SystemdUnitFailed, ClockSkew,
    HighTemperature), C(homelab-nixos) (NixStoreSize, NixosGenerationTooOld, RebootRequired),
    C(homelab-backup) (BackupTooOld, BackupVerificationFailed) and C(homelab-probes) (TLSCertificateExpiring)."
  - Every rule has a C(severity) label (critical or warning) and the annotations C(summary), C(description) and
    C(runbook_url). HostDown, BackupTooOld and BackupVerificationFailed are critical, the others warnings.
  - Fails with one error listing every invalid setting, each on its own line. Unknown setting names are errors
    too, with a did-you-mean suggestion.
options:
  _input:
    description:
      - The alert settings, a mapping; every key is optional and null counts as no settings.
      - "Numbers, all > 0 (percentages at most 100): C(cpu_percent) (80, for 5m), C(memory_percent) (90, 5m),
        C(disk_percent) (85, 10m), C(nix_store_bytes) (50e9, 1h), C(network_bytes_per_second) (100e6, 10m),
        C(generation_max_age_days) (30), C(backup_max_age_hours) (26), C(cert_expiry_days) (14),
        C(clock_skew_seconds) (0.05), C(temperature_celsius) (90)."
      - Durations matching C(^[0-9]+[smhdwy]$), C(host_down_for) (1m) and C(for_override) (unset), which
        replaces the C(for) of every rule, for tests and the lab.
    type: dict
    required: true
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Write the alert rules and let promtool check them
  ansible.builtin.copy:
    content: >-
      {{ monitoring_server_alert_settings | homelab.nixos.prometheus_alert_rules
         | to_nice_yaml(indent=2, sort_keys=false) }}
    dest: /etc/prometheus/rules/homelab.yml
    mode: "0644"
    validate: promtool check rules %s

- name: Shorter alerts in the lab
  ansible.builtin.set_fact:
    lab_rules: "{{ {'for_override': '30s', 'cpu_percent': 50} | homelab.nixos.prometheus_alert_rules }}"

# {'cpu_percent': 180, 'host_down': '1m'} fails with:
#   prometheus_alert_rules: 2 alert setting problems:
#   - unknown setting 'host_down' (did you mean 'host_down_for'?); known: ...
#   - cpu_percent is a percentage and must be at most 100, got 180
"""

RETURN = r"""
_value:
  description: The rule-file document, a mapping with the key C(groups), a list of C({name, rules}).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._alert_rules import AlertRulesError, alert_rules


def prometheus_alert_rules(settings):
    """The Prometheus rule-file document for ``settings``, or an error listing every bad setting."""
    try:
        return alert_rules(settings)
    except AlertRulesError as e:
        raise AnsibleFilterError(f"prometheus_alert_rules: {e}") from e


class FilterModule:
    """The prometheus_alert_rules filter."""

    def filters(self):
        return {"prometheus_alert_rules": prometheus_alert_rules}
