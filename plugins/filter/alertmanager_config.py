# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: alertmanager_config
short_description: Build the homelab's Alertmanager configuration from a few settings
version_added: 0.1.0
description:
  - Returns the Alertmanager configuration as plain data, to be written as YAML (for example with
    P(ansible.builtin.to_nice_yaml#filter)) to C(alertmanager.yml).
  - Every alert goes to one receiver, C(email). Alerts are grouped by O(_input.group_by).
    C(severity="critical") repeats every O(_input.critical_repeat), C(severity="warning") and everything
    else every O(_input.warning_repeat).
  - "A critical alert that carries a C(host) label inhibits the warnings of the same host (C(equal: [host])):
    when HostDown fires, that host's HighCPUUsage or LowDiskSpace warnings are noise. Requiring an equal
    C(alertname) as well would never inhibit across different alerts."
  - The SMTP password never enters the configuration. Alertmanager 0.25.0 and later read it from
    C(smtp_auth_password_file); the role writes that file with C(no_log). An inline C(smtp.auth_password) is
    refused, and neither password setting's value ever appears in an error message.
  - Fails with one error listing every problem at once, for example no recipients, a smarthost without a
    port, malformed durations, unknown keys, or a password given in both forms.
options:
  _input:
    description: The settings.
    type: dict
    required: true
    suboptions:
      smtp:
        description: How to send mail.
        type: dict
        required: true
        suboptions:
          smarthost:
            description: SMTP server as C(host:port) (C([v6address]:port) for IPv6).
            type: str
            required: true
          from:
            description: Sender address, C(user@domain) or C(Name <user@domain>).
            type: str
            required: true
          to:
            description: Recipient address or list of addresses (at least one).
            type: raw
            required: true
          auth_username:
            description: SMTP user name; needs O(_input.smtp.auth_password_file).
            type: str
          auth_password_file:
            description:
              - Absolute path, on the monitoring server, of the file that holds the SMTP password (never the
                password itself). It must be readable by the Alertmanager service user.
            type: path
          require_tls:
            description: Require STARTTLS.
            type: bool
            default: true
      group_by:
        description: Labels to group alerts by, or C(['...']) to group by all labels.
        type: list
        elements: str
        default: [alertname, cluster, service]
      group_wait:
        description: How long to wait to send the first notification of a new group.
        type: str
        default: 30s
      group_interval:
        description: How long to wait before notifying about new alerts in a group already notified.
        type: str
        default: 5m
      critical_repeat:
        description: Repeat interval of critical alerts (not shorter than O(_input.group_interval)).
        type: str
        default: 5m
      warning_repeat:
        description: Repeat interval of warnings and all other alerts (not shorter than O(_input.group_interval)).
        type: str
        default: 30m
      resolve_timeout:
        description: How long an alert without an end time stays firing after its last update.
        type: str
        default: 5m
      send_resolved:
        description: Also mail when an alert resolves.
        type: bool
        default: true
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Write the SMTP password file (never logged)
  ansible.builtin.copy:
    content: "{{ vault_alertmanager_smtp_password }}"
    dest: /var/lib/alertmanager/smtp-password
    owner: alertmanager
    mode: "0400"
  no_log: true

- name: Write alertmanager.yml
  ansible.builtin.copy:
    dest: /etc/alertmanager/alertmanager.yml
    content: "{{ settings | homelab.nixos.alertmanager_config | ansible.builtin.to_nice_yaml(indent=2) }}"
    mode: "0644"
  vars:
    settings:
      smtp:
        smarthost: smtp.example.com:587
        from: alertmanager@example.com
        to: [admin@example.com]
        auth_username: alertmanager@example.com
        auth_password_file: /var/lib/alertmanager/smtp-password
"""

RETURN = r"""
_value:
  description:
    - The Alertmanager configuration with C(global), C(route), C(inhibit_rules) and C(receivers).
    - It holds the password file's path as C(global.smtp_auth_password_file), never the password.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._alertmanager import (
    AlertmanagerConfigError,
    alertmanager_config,
)


def alertmanager_config_filter(settings):
    """The Alertmanager configuration for ``settings``, or an error listing every problem."""
    try:
        return alertmanager_config(settings)
    except AlertmanagerConfigError as e:
        raise AnsibleFilterError(f"alertmanager_config: {e}") from e


class FilterModule:
    """The alertmanager_config filter."""

    def filters(self):
        return {"alertmanager_config": alertmanager_config_filter}
