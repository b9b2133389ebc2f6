#!/usr/bin/python
# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: monitoring_status
short_description: Report the scrape targets, Alertmanagers and alerts the monitoring server sees
version_added: 0.1.0
description:
  - Reads Prometheus' C(/api/v1/targets) (active targets) and C(/api/v1/alertmanagers) (the Alertmanagers
    Prometheus sends alerts to), and Alertmanager's C(/api/v2/alerts).
  - Returns them as lists, a summary of counts, and a fixed-width text table for a status playbook to print.
  - Run it on the monitoring server, or delegate it to the controller with URLs that reach the server.
  - Fails, naming the URL, when an API cannot be reached or answers something unexpected.
  - Warns when Prometheus has no active Alertmanager, since its alerts then reach nobody.
  - Only reads; it never changes anything.
options:
  prometheus_url:
    description: Base URL of Prometheus.
    type: str
    default: http://127.0.0.1:9090
  alertmanager_url:
    description: Base URL of Alertmanager.
    type: str
    default: http://127.0.0.1:9093
  timeout:
    description: Seconds to wait for each API.
    type: int
    default: 10
  validate_certs:
    description: Verify TLS certificates of C(https) URLs.
    type: bool
    default: true
  use_proxy:
    description: Use the proxy named by the environment (C(http_proxy), C(no_proxy) and so on).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: The module only reads, so check mode runs it unchanged.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
notes:
  - Alerts come from Alertmanager, so silenced or inhibited alerts are listed with the state C(suppressed);
    C(summary.alerts_firing) counts only C(active) ones.
seealso:
  - name: Prometheus HTTP API
    description: The targets and alertmanagers endpoints.
    link: https://prometheus.io/docs/prometheus/latest/querying/api/
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Read the monitoring status on the monitoring server
  homelab.nixos.monitoring_status:
  register: monitoring

- name: Print it
  ansible.builtin.debug:
    msg: "{{ monitoring.table }}"

- name: Fail when a target is down
  ansible.builtin.assert:
    that: monitoring.summary.targets_down == 0
    fail_msg: "{{ monitoring.targets | selectattr('health', 'ne', 'up') | map(attribute='instance') | list }}"

- name: Ask from the controller over the tailnet
  homelab.nixos.monitoring_status:
    prometheus_url: http://dex5550:9090
    alertmanager_url: http://dex5550:9093
    timeout: 5
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
targets:
  description: The active scrape targets, sorted by host, job and instance.
  returned: success
  type: list
  elements: dict
  contains:
    job:
      description: The C(job) label.
      type: str
      sample: node
    instance:
      description: The C(instance) label.
      type: str
      sample: p620:9100
    host:
      description: The C(host) label, or the host part of the instance when there is none.
      type: str
      sample: p620
    health:
      description: C(up), C(down) or C(unknown).
      type: str
      sample: up
    last_error:
      description: The last scrape error, empty when the last scrape worked.
      type: str
      sample: ""
    last_scrape:
      description: When Prometheus last scraped the target (RFC 3339).
      type: str
      sample: "2024-05-01T10:00:00.123456789Z"
    scrape_url:
      description: The URL Prometheus scrapes.
      type: str
      sample: http://p620:9100/metrics
alerts:
  description: Alertmanager's alerts, most severe first, then oldest first.
  returned: success
  type: list
  elements: dict
  contains:
    alertname:
      description: The C(alertname) label.
      type: str
      sample: HostDown
    host:
      description: The C(host) label (or the instance's host); empty when the alert has neither.
      type: str
      sample: p510
    severity:
      description: The C(severity) label.
      type: str
      sample: critical
    state:
      description: C(active), C(suppressed) (silenced or inhibited) or C(unprocessed).
      type: str
      sample: active
    starts_at:
      description: When the alert started (RFC 3339).
      type: str
      sample: "2024-05-01T09:58:00Z"
    summary:
      description: The C(summary) annotation, empty when there is none.
      type: str
      sample: p510 is down
    labels:
      description: All labels of the alert.
      type: dict
      sample:
        alertname: HostDown
        host: p510
        severity: critical
alertmanagers:
  description: The Alertmanagers Prometheus sends alerts to.
  returned: success
  type: list
  elements: dict
  contains:
    url:
      description: The alerts endpoint Prometheus posts to.
      type: str
      sample: http://127.0.0.1:9093/api/v2/alerts
summary:
  description: Counts.
  returned: success
  type: dict
  contains:
    targets_up:
      description: Targets whose health is C(up).
      type: int
      sample: 8
    targets_down:
      description: Targets whose health is C(down).
      type: int
      sample: 1
    targets_unknown:
      description: Targets not scraped yet.
      type: int
      sample: 0
    alerts_firing:
      description: Alerts in state C(active).
      type: int
      sample: 1
    alerts_suppressed:
      description: Alerts silenced or inhibited.
      type: int
      sample: 0
    alertmanagers_active:
      description: Number of Alertmanagers Prometheus sends alerts to.
      type: int
      sample: 1
table:
  description: The status as lines of a fixed-width text table, targets first, then Alertmanagers and alerts.
  returned: success
  type: list
  elements: str
  sample:
    - "TARGETS: 1 up, 1 down, 0 unknown"
    - "HOST    | JOB  | HEALTH | LAST ERROR"
    - "--------+------+--------+-----------------------"
    - "dex5550 | node | up"
    - "p510    | node | down   | connection refused"
    - ""
    - "ALERTMANAGERS: http://127.0.0.1:9093/api/v2/alerts"
    - ""
    - "ALERTS: 1 firing, 0 suppressed"
    - "ALERT    | HOST | SEVERITY | STATE  | SINCE"
    - "---------+------+----------+--------+---------------------"
    - "HostDown | p510 | critical | active | 2024-05-01T09:58:00Z"
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url

from ansible_collections.homelab.nixos.plugins.module_utils._monitoring_status import (
    JsonGetter,
    MonitoringStatusError,
    collect,
)


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            prometheus_url=dict(type="str", default="http://127.0.0.1:9090"),
            alertmanager_url=dict(type="str", default="http://127.0.0.1:9093"),
            timeout=dict(type="int", default=10),
            validate_certs=dict(type="bool", default=True),
            use_proxy=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )


def main():
    module = build_module()
    params = module.params
    if params["timeout"] <= 0:
        module.fail_json(msg="timeout must be a positive number of seconds, got %d" % params["timeout"])
    for key in ("prometheus_url", "alertmanager_url"):
        if not params[key].startswith(("http://", "https://")):
            module.fail_json(msg="%s must be an http:// or https:// URL, got %r" % (key, params[key]))
    get_json = JsonGetter(
        open_url,
        timeout=params["timeout"],
        validate_certs=params["validate_certs"],
        use_proxy=params["use_proxy"],
        errors=(UrlsConnectionError,),
    )
    try:
        result = collect(get_json, params["prometheus_url"], params["alertmanager_url"])
    except MonitoringStatusError as e:
        module.fail_json(msg=str(e))
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
