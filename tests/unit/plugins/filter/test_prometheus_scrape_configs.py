"""The prometheus_scrape_configs, prometheus_target_warnings and listen_ports filters, and the real inventory."""

import json
import os
import subprocess
import sys

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.filter import listen_ports as listen_ports_plugin
from ansible_collections.homelab.nixos.plugins.filter import prometheus_scrape_configs as scrape_plugin
from ansible_collections.homelab.nixos.plugins.filter import prometheus_target_warnings as warnings_plugin
from ansible_collections.homelab.nixos.plugins.module_utils._prometheus_targets import scrape_configs

# The venv's ansible-inventory, next to the Python running the tests.
BIN = os.path.dirname(sys.executable)
HOSTS = ["p620", "razer", "p510", "dex5550", "samsung", "nixvm"]

prometheus_scrape_configs = scrape_plugin.FilterModule().filters()["prometheus_scrape_configs"]
prometheus_target_warnings = warnings_plugin.FilterModule().filters()["prometheus_target_warnings"]
listen_ports = listen_ports_plugin.FilterModule().filters()["listen_ports"]


def _fleet():
    groups = {
        "p620": ["build_host", "gpu_amd", "nixos", "workstations"],
        "razer": ["gpu_nvidia", "laptops", "nixos"],
        "p510": ["backup_targets", "gpu_nvidia", "media", "nixos", "servers"],
        "dex5550": ["backup_targets", "log_server", "monitoring_server", "nixos", "servers"],
        "samsung": ["laptops", "nixos"],
        "nixvm": ["nixos", "vms"],
    }
    kinds = {"p620": "workstation", "razer": "laptop", "p510": "server", "dex5550": "server", "samsung": "laptop"}
    return {
        host: {
            "group_names": group_names,
            "base_host_kind": kinds.get(host, "vm"),
            "monitoring_exporters_gpu_exporter": host in ("razer", "p510"),
            "monitoring_exporters_media": {"tautulli": {"api_key_set": host == "p510"}},
        }
        for host, group_names in groups.items()
    }


def _node_targets(configs):
    node = next(job for job in configs if job["job_name"] == "node")
    return {entry["labels"]["host"]: entry for entry in node["static_configs"]}


# --- the filters -------------------------------------------------------------------------


def test_one_filter_per_plugin():
    assert set(scrape_plugin.FilterModule().filters()) == {"prometheus_scrape_configs"}
    assert set(warnings_plugin.FilterModule().filters()) == {"prometheus_target_warnings"}
    assert set(listen_ports_plugin.FilterModule().filters()) == {"listen_ports"}


def test_documentation_is_valid_yaml():
    yaml = pytest.importorskip("yaml")
    for plugin, name in (
        (scrape_plugin, "prometheus_scrape_configs"),
        (warnings_plugin, "prometheus_target_warnings"),
        (listen_ports_plugin, "listen_ports"),
    ):
        doc = yaml.safe_load(plugin.DOCUMENTATION)
        assert doc["name"] == name
        assert doc["author"] == "homelab.nixos maintainers (@homelab-nixos)"
        assert yaml.safe_load(plugin.EXAMPLES)
        assert yaml.safe_load(plugin.RETURN)["_value"]["type"] == "list"


def test_scrape_configs_filter_returns_the_configs():
    fleet = _fleet()
    settings = {"web_services": [{"name": "grafana", "url": "http://dex5550:3001/api/health"}]}
    configs = prometheus_scrape_configs(fleet, HOSTS, settings)
    assert configs == scrape_configs(fleet, HOSTS, settings)
    assert [job["job_name"] for job in configs] == [
        "node",
        "gpu_nvidia",
        "tautulli",
        "blackbox_http",
        "blackbox_icmp",
        "blackbox_ssh",
    ]
    assert set(_node_targets(configs)) == set(HOSTS)
    assert prometheus_scrape_configs(fleet, HOSTS) == [job for job in configs if job["job_name"] != "blackbox_http"]


def test_scrape_configs_filter_errors_name_the_unknown_hosts():
    with pytest.raises(AnsibleFilterError) as exc:
        prometheus_scrape_configs(_fleet(), [*HOSTS, "oldbox"], {"node_port": "nine"})
    message = str(exc.value)
    assert message.startswith("prometheus_scrape_configs: 2 scrape target problems:\n")
    assert "- unknown host 'oldbox': not in hostvars" in message
    assert "- settings.node_port must be a port number (an integer 1-65535), got str 'nine'" in message


def test_scrape_configs_filter_rejects_non_http_urls():
    with pytest.raises(AnsibleFilterError, match=r"web_services\[0\]\.url \(nas\) must be an http:// or https:// URL"):
        prometheus_scrape_configs(_fleet(), HOSTS, {"web_services": [{"name": "nas", "url": "smb://p510/media"}]})


def test_target_warnings_filter():
    assert prometheus_target_warnings(_fleet(), HOSTS) == [
        "p510 is in media but its nzbget exporter has no API key"
        " (monitoring_exporters_media.nzbget.api_key_set is not true): nzbget is not scraped",
        "p620 is in gpu_amd but no AMD GPU exporter is packaged for its platform"
        " (monitoring_exporters_gpu_exporter is not true): its GPU is not scraped",
    ]
    with pytest.raises(AnsibleFilterError, match=r"^prometheus_target_warnings: 1 scrape target problem:\n- unknown"):
        prometheus_target_warnings(_fleet(), ["ghost"])


def test_listen_ports_filter():
    host_vars = {
        "monitoring_exporters_listen_ports": [
            {"name": "node-exporter", "port": 9100, "proto": "tcp", "allow_from": ["monitoring_server"]}
        ],
        "security_listen_ports": [{"name": "ssh", "port": 22, "proto": "tcp", "allow_from": ["100.64.0.0/10"]}],
    }
    assert listen_ports(host_vars) == [
        {"name": "ssh", "port": 22, "proto": "tcp", "allow_from": ["100.64.0.0/10"]},
        {"name": "node-exporter", "port": 9100, "proto": "tcp", "allow_from": ["monitoring_server"]},
    ]
    host_vars["grafana_listen_ports"] = [{"name": "grafana", "port": 9100, "proto": "tcp", "allow_from": ["any"]}]
    with pytest.raises(AnsibleFilterError) as exc:
        listen_ports(host_vars)
    assert str(exc.value) == (
        "listen_ports: 1 listen port problem:\n- port 9100/tcp is declared twice, as 'grafana' (grafana_listen_ports)"
        " and 'node-exporter' (monitoring_exporters_listen_ports): one port, one service"
    )


# --- the real inventory ------------------------------------------------------------------


def _members(inventory, group, seen=None):
    """Every host of ``group``, its children included, from `ansible-inventory --list` output."""
    seen = set() if seen is None else seen
    if group in seen:
        return set()
    seen.add(group)
    entry = inventory.get(group, {})
    hosts = set(entry.get("hosts", []))
    for child in entry.get("children", []):
        hosts |= _members(inventory, child, seen)
    return hosts


@pytest.fixture(scope="module")
def real_hostvars(repo_root):
    """hostvars of inventory/hosts.yml, with group_names computed the way Ansible does (all groups but 'all')."""
    # Memory fact caching: facts cached by earlier runs must not leak into the inventory.
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(repo_root, "ansible.cfg"), ANSIBLE_FACT_CACHING="memory")
    proc = subprocess.run(
        [os.path.join(BIN, "ansible-inventory"), "-i", os.path.join(repo_root, "inventory", "hosts.yml"), "--list"],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    inventory = json.loads(proc.stdout)
    hostvars = inventory["_meta"]["hostvars"]
    groups = [name for name in inventory if name not in ("_meta", "all")]
    for host, host_vars in hostvars.items():
        host_vars["group_names"] = sorted(group for group in groups if host in _members(inventory, group))
    return hostvars


def test_real_inventory_every_host_is_a_node_target(real_hostvars):
    assert sorted(real_hostvars) == sorted(HOSTS)
    configs = prometheus_scrape_configs(real_hostvars, list(real_hostvars))
    node = _node_targets(configs)
    assert {host: entry["targets"] for host, entry in node.items()} == {host: [f"{host}:9100"] for host in HOSTS}
    assert node["p620"]["labels"] == {
        "host": "p620",
        "kind": "workstation",
        "gpu": "amd",
        "roles": "build_host,workstations",
        "nixos": "true",
    }
    assert node["p510"]["labels"]["roles"] == "backup_targets,media,servers"
    assert node["nixvm"]["labels"]["kind"] == "vm"
    # Before the exporters role has run, nothing but node and the probes is promised.
    assert [job["job_name"] for job in configs] == ["node", "blackbox_icmp", "blackbox_ssh"]
