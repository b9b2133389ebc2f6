"""Monitoring on the lab, through the real APIs of Prometheus and Alertmanager
on dex5550: every node exporter scraped, an active Alertmanager, and an alert
that reaches Alertmanager when a node exporter stops."""

import json
import subprocess
import time
import urllib.request

import pytest
from labtools import HOSTS, ROOT, env, lab, run_site

SERVER = "10.89.60.14"
PROMETHEUS = "http://%s:9090" % SERVER
ALERTMANAGER = "http://%s:9093" % SERVER
SCRAPE_INTERVAL = 15
HOST_DOWN_FOR = 60
VICTIM = "samsung"


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def _wait(predicate, timeout, interval=2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@pytest.fixture(scope="module")
def converged_lab():
    lab("up")
    rc, out = run_site()
    assert rc == 0, out[-3000:]
    yield
    lab("down", "--keep-overlay")


def _node_up():
    result = _get(PROMETHEUS + "/api/v1/query?query=up%7Bjob%3D%22node%22%2Chost%21%3D%22%22%7D")["data"]["result"]
    return {r["metric"]["host"]: r["value"][1] for r in result}


def _all_six_up():
    up = _node_up()
    return up if set(up) == set(HOSTS) and set(up.values()) == {"1"} else None


def test_every_node_exporter_is_scraped(converged_lab):
    assert _wait(_all_six_up, 90), "up{job=node}: %s" % _node_up()


def test_prometheus_talks_to_alertmanager(converged_lab):
    active = _get(PROMETHEUS + "/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
    assert [a["url"] for a in active] == ["http://127.0.0.1:9093/api/v2/alerts"]


def _host_down_alert():
    for alert in _get(ALERTMANAGER + "/api/v2/alerts"):
        labels = alert["labels"]
        if labels.get("alertname") == "HostDown" and labels.get("host") == VICTIM:
            return alert
    return None


def test_a_stopped_exporter_raises_host_down_in_alertmanager(converged_lab):
    assert _wait(lambda: _node_up().get(VICTIM) == "1", 90)
    container = "homelab-lab-" + VICTIM
    stopped = time.monotonic()
    subprocess.run(["podman", "exec", container, "systemctl", "stop", "prometheus-node-exporter"], check=True)
    try:
        # for: 1m, plus two scrape intervals, plus one rule evaluation interval.
        limit = HOST_DOWN_FOR + 2 * SCRAPE_INTERVAL + SCRAPE_INTERVAL
        alert = _wait(_host_down_alert, limit + 10)
        elapsed = time.monotonic() - stopped
        assert alert, "HostDown for %s never reached Alertmanager" % VICTIM
        print("HostDown reached Alertmanager %.0f s after the exporter stopped" % elapsed)
        assert elapsed <= limit, elapsed
        assert alert["labels"]["severity"] == "critical"
    finally:
        subprocess.run(["podman", "exec", container, "systemctl", "start", "prometheus-node-exporter"], check=True)


def test_status_playbook_prints_targets_and_alerts(converged_lab):
    proc = subprocess.run(
        [
            env()["PATH"].split(":")[0] + "/ansible-playbook",
            "-i",
            "inventory/lab",
            "playbooks/ops/monitoring-status.yml",
        ],
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    for host in HOSTS:
        assert host in proc.stdout


def test_unreachable_grafana_repository_fails_clearly(converged_lab):
    rc, out = run_site(
        "--limit",
        "dex5550",
        "--tags",
        "monitoring_server",
        "-e",
        "monitoring_server_grafana_install=true",
        "-e",
        "monitoring_server_grafana_apt_repo=http://127.0.0.1:1",
    )
    assert rc != 0
    assert "Grafana's apt repository http://127.0.0.1:1 is unreachable" in out
    assert "monitoring_server_grafana_install=false" in out
