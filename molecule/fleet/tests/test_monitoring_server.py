"""monitoring_server as site.yml leaves it on the lab (pytest-testinfra): Prometheus
scrapes the fleet, through the firewall, via its real API and talks to Alertmanager."""

import json

import pytest


@pytest.fixture
def server(host):
    if "monitoring_server" not in host.ansible.get_variables().get("group_names", []):
        pytest.skip("not the monitoring server")
    return host


def test_services_run_with_validated_configs(server):
    for service in ("prometheus", "prometheus-alertmanager", "prometheus-blackbox-exporter"):
        assert server.service(service).is_running, service
    with server.sudo():
        server.run_expect([0], "promtool check config /etc/prometheus/prometheus.yml")
        server.run_expect([0], "amtool check-config /etc/prometheus/alertmanager.yml")


def test_prometheus_scrapes_every_host_and_knows_alertmanager(server):
    targets = json.loads(server.check_output("curl -sf http://127.0.0.1:9090/api/v1/targets"))["data"]
    node_hosts = {t["labels"]["host"] for t in targets["activeTargets"] if t["labels"]["job"] == "node"}
    assert node_hosts == {"p620", "razer", "p510", "dex5550", "samsung", "nixvm"}
    managers = json.loads(server.check_output("curl -sf http://127.0.0.1:9090/api/v1/alertmanagers"))["data"]
    assert managers["activeAlertmanagers"]


def test_grafana_provisioning_files_are_json(server):
    for path in (
        "/etc/grafana/provisioning/datasources/homelab.yml",
        "/var/lib/grafana/dashboards/fleet-overview.json",
    ):
        json.loads(server.file(path).content_string)
