"""Monitoring on the lab, through the real APIs of Prometheus and Alertmanager
on dex5550: every node exporter scraped, an active Alertmanager, and an alert
that reaches Alertmanager when a node exporter stops."""

import json
import os
import secrets
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
from labtools import HOSTS, ROOT, env, labchecks, recap, run_site, wait_for

SERVER = "10.89.60.14"
PROMETHEUS = "http://%s:9090" % SERVER
ALERTMANAGER = "http://%s:9093" % SERVER
SCRAPE_INTERVAL = 15
HOST_DOWN_FOR = 60
VICTIM = "samsung"


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


@pytest.fixture
def converged_lab(hardened_lab):
    """The session's converged lab (tests/lab/conftest.py): every test here leaves it converged."""


def _node_up():
    result = _get(PROMETHEUS + "/api/v1/query?query=up%7Bjob%3D%22node%22%2Chost%21%3D%22%22%7D")["data"]["result"]
    return {r["metric"]["host"]: r["value"][1] for r in result}


def _all_six_up():
    up = _node_up()
    return up if set(up) == set(HOSTS) and set(up.values()) == {"1"} else None


def test_every_node_exporter_is_scraped(converged_lab):
    assert wait_for(_all_six_up, 90), "up{job=node}: %s" % _node_up()


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
    assert wait_for(lambda: _node_up().get(VICTIM) == "1", 90)
    container = "homelab-lab-" + VICTIM
    stopped = time.monotonic()
    subprocess.run(["podman", "exec", container, "systemctl", "stop", "prometheus-node-exporter"], check=True)
    try:
        # for: 1m, plus two scrape intervals, plus one rule evaluation interval.
        limit = HOST_DOWN_FOR + 2 * SCRAPE_INTERVAL + SCRAPE_INTERVAL
        alert = wait_for(_host_down_alert, limit + 10)
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
        # Installing Grafana needs its secrets (preflight); throwaway values.
        "-e",
        json.dumps(
            {
                "monitoring_server_grafana_admin_password": secrets.token_hex(8),
                "monitoring_server_grafana_secret_key": secrets.token_hex(16),
            }
        ),
    )
    assert rc != 0
    assert "Grafana's apt repository http://127.0.0.1:1 is unreachable" in out
    assert "monitoring_server_grafana_install=false" in out


MEDIA_HOST = "p510"
MEDIA_CONTAINER = "homelab-lab-" + MEDIA_HOST
DOUBLE = os.path.join(ROOT, "tests", "doubles", "media_api_double.py")


def _podman_exec(*command, check=True, **kwargs):
    return subprocess.run(["podman", "exec", "-i", MEDIA_CONTAINER, *command], check=check, **kwargs)


def _media_values():
    query = urllib.parse.quote('{__name__=~"tautulli_up|nzbget_up|tautulli_streams|nzbget_post_jobs"}')
    result = _get(PROMETHEUS + "/api/v1/query?query=" + query)["data"]["result"]
    return {r["metric"]["__name__"]: r["value"][1] for r in result if r["metric"].get("host") == MEDIA_HOST}


def _assert_rendered_media_module(*secret_values):
    """The NixOS rendering of the same run: the exporters as systemd services
    loading their secret as a credential, no secret in the module, and only
    option paths nixpkgs declares."""
    checks = labchecks()
    path = os.path.join(ROOT, "build", "nixos", MEDIA_HOST, "monitoring-exporters.nix")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert not any(value in text for value in secret_values), "a media secret is in the Nix module"
    settings = checks.evaluate_module(path)
    checks._option_checker()(settings)
    for name in ("tautulli", "nzbget"):
        unit = settings["systemd"]["services"][f"homelab-{name}-exporter"]
        credential = f"secret:/var/lib/homelab/secrets/homelab-{name}-exporter"
        assert unit["serviceConfig"]["LoadCredential"] == credential
        assert unit["serviceConfig"]["DynamicUser"] is True
        assert f"--service {name}" in unit["script"]
    assert "homelab/homelab_media_exporter.py" in settings["environment"]["etc"]


@pytest.fixture
def media_double():
    """The Tautulli/NZBGet TEST DOUBLE on the media host (the real services cannot be installed here)."""
    api_key, password = secrets.token_hex(16), secrets.token_hex(16)
    subprocess.run(["podman", "cp", DOUBLE, MEDIA_CONTAINER + ":/root/media_api_double.py"], check=True)
    _podman_exec("sh", "-c", "umask 077; cat > /root/media-double-secret", input=f"{api_key}\n{password}\n", text=True)
    _podman_exec("systemctl", "reset-failed", "homelab-test-media-double", stderr=subprocess.DEVNULL, check=False)
    _podman_exec(
        "systemd-run",
        "--unit",
        "homelab-test-media-double",
        "python3",
        "/root/media_api_double.py",
        "--tautulli",
        "127.0.0.1:8181",
        "--nzbget",
        "127.0.0.1:6789",
        "--secret-file",
        "/root/media-double-secret",
    )
    yield api_key, password
    _podman_exec("systemctl", "stop", "homelab-test-media-double", check=False)


def test_media_exporters_run_where_their_keys_are_set(converged_lab, media_double, tmp_path):
    api_key, password = media_double
    keys = tmp_path / "media-keys.json"
    keys.write_text(
        json.dumps({"monitoring_exporters_tautulli_api_key": api_key, "monitoring_exporters_nzbget_password": password})
    )
    keys.chmod(0o600)
    try:
        rc, out = run_site("-e", "@" + str(keys), "--diff", "-v")
        assert rc == 0, out[-3000:]
        assert api_key not in out and password not in out, "a media secret is in the play's output"
        # Prometheus scrapes both exporters and sees the double's figures.
        values = wait_for(lambda: _media_values() if len(_media_values()) == 4 else None, 60)
        values = _media_values()
        assert values == {"tautulli_up": "1", "nzbget_up": "1", "tautulli_streams": "3", "nzbget_post_jobs": "2"}
        # The secrets are in no process's command line or environment.
        processes = _podman_exec("ps", "-eo", "user:32,args", capture_output=True, text=True).stdout
        exporters = [line for line in processes.splitlines() if "homelab_media_exporter.py" in line]
        assert len(exporters) == 2 and all(line.startswith("homelab-exporter ") for line in exporters), processes
        assert api_key not in processes and password not in processes
        shown = _podman_exec(
            "systemctl", "show", "homelab-tautulli-exporter", "homelab-nzbget-exporter", capture_output=True, text=True
        ).stdout
        assert api_key not in shown and password not in shown
        _assert_rendered_media_module(api_key, password)
        rc, out = run_site("-e", "@" + str(keys))
        assert rc == 0, out[-3000:]
        assert {host: r[1] for host, r in recap(out).items()} == dict.fromkeys(HOSTS, 0), "not idempotent"
    finally:
        # Without the keys the exporters are removed again, and so are their targets.
        rc, out = run_site()
    assert rc == 0, out[-3000:]
    units = _podman_exec("sh", "-c", "ls /etc/systemd/system", capture_output=True, text=True).stdout
    assert "homelab-tautulli-exporter" not in units and "homelab-nzbget-exporter" not in units
    jobs = {t["labels"]["job"] for t in _get(PROMETHEUS + "/api/v1/targets")["data"]["activeTargets"]}
    assert not jobs & {"tautulli", "nzbget"}, jobs


def test_installing_grafana_without_its_secrets_fails_before_touching_the_host(converged_lab):
    rc, out = run_site(
        "--limit", "dex5550", "--tags", "monitoring_server", "-e", "monitoring_server_grafana_install=true"
    )
    assert rc != 0
    assert "monitoring_server_grafana_admin_password (8 or more" in out
    assert "Grafana's apt repository" not in out
