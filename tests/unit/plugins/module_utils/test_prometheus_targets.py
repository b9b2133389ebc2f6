"""Unit tests of scrape configs, target warnings and listen ports, on a six-host fleet like the real inventory."""

import copy
import json

import pytest
import yaml

from ansible_collections.homelab.nixos.plugins.module_utils._nix import to_nix
from ansible_collections.homelab.nixos.plugins.module_utils._prometheus_targets import (
    ListenPortsError,
    TargetError,
    listen_ports,
    scrape_configs,
    target_warnings,
)

HOSTS = ["p620", "razer", "p510", "dex5550", "samsung", "nixvm"]
# inventory/hosts.yml
GROUPS = {
    "nixos": HOSTS,
    "workstations": ["p620"],
    "laptops": ["razer", "samsung"],
    "servers": ["p510", "dex5550"],
    "vms": ["nixvm"],
    "gpu_amd": ["p620"],
    "gpu_nvidia": ["razer", "p510"],
    "monitoring_server": ["dex5550"],
    "log_server": ["dex5550"],
    "media": ["p510"],
    "build_host": ["p620"],
    "backup_targets": ["p510", "dex5550"],
}
# inventory/group_vars/*.yml
KINDS = {"workstations": "workstation", "laptops": "laptop", "servers": "server", "vms": "vm"}


def make_fleet():
    """hostvars of the fleet as the exporters role leaves them: the NVIDIA exporter is packaged (razer, p510),
    the AMD one is not (p620); p510's Tautulli has an API key, its NZBGet none."""
    hostvars = {}
    for host in HOSTS:
        group_names = sorted(group for group, members in GROUPS.items() if host in members)
        kind = next(KINDS[group] for group in group_names if group in KINDS)
        hostvars[host] = {
            "group_names": group_names,
            "base_host_kind": kind,
            "monitoring_exporters_gpu_exporter": host in ("razer", "p510"),
            "monitoring_exporters_media": {
                "tautulli": {"port": 9104, "api_key_set": host == "p510"},
                "nzbget": {"port": 9103, "api_key_set": False},
            },
        }
    return hostvars


@pytest.fixture
def fleet():
    return make_fleet()


def _job(configs, name):
    matches = [job for job in configs if job["job_name"] == name]
    assert len(matches) == 1, f"job {name}: {[job['job_name'] for job in configs]}"
    return matches[0]


def _by_host(job):
    """host label -> static config of a job."""
    result = {}
    for entry in job["static_configs"]:
        assert len(entry["targets"]) == 1
        result[entry["labels"]["host"]] = entry
    return result


def _problems(exc):
    return exc.value.problems


# --- node job ----------------------------------------------------------------------------


def test_every_host_is_a_node_target_including_samsung(fleet):
    node = _job(scrape_configs(fleet, HOSTS, {}), "node")
    targets = {host: entry["targets"] for host, entry in _by_host(node).items()}
    assert targets == {host: [f"{host}:9100"] for host in HOSTS}
    assert targets["samsung"] == ["samsung:9100"]
    # one static config per host, sorted by host name
    assert [entry["labels"]["host"] for entry in node["static_configs"]] == sorted(HOSTS)


def test_labels_follow_groups_and_kind(fleet):
    labels = {host: entry["labels"] for host, entry in _by_host(_job(scrape_configs(fleet, HOSTS), "node")).items()}
    assert labels["p620"] == {
        "host": "p620",
        "kind": "workstation",
        "gpu": "amd",
        "roles": "build_host,workstations",
        "nixos": "true",
    }
    assert labels["p510"] == {
        "host": "p510",
        "kind": "server",
        "gpu": "nvidia",
        "roles": "backup_targets,media,servers",
        "nixos": "true",
    }
    assert labels["nixvm"] == {"host": "nixvm", "kind": "vm", "gpu": "none", "roles": "vms", "nixos": "true"}
    assert labels["samsung"] == {
        "host": "samsung",
        "kind": "laptop",
        "gpu": "none",
        "roles": "laptops",
        "nixos": "true",
    }
    assert labels["dex5550"]["roles"] == "backup_targets,log_server,monitoring_server,servers"
    assert labels["razer"]["gpu"] == "nvidia"


def test_label_fallbacks_and_both_gpus(fleet):
    fleet["p620"]["group_names"] = ["gpu_amd", "gpu_nvidia"]  # not in nixos, no role group
    del fleet["p620"]["base_host_kind"]
    labels = _by_host(_job(scrape_configs(fleet, HOSTS), "node"))["p620"]["labels"]
    assert labels == {"host": "p620", "kind": "unknown", "gpu": "amd,nvidia", "roles": "none", "nixos": "false"}


def test_addresses_and_ports(fleet):
    fleet["dex5550"]["ansible_host"] = "192.168.1.20"
    fleet["nixvm"]["ansible_host"] = "fd7a:115c:a1e0::7"
    fleet["samsung"]["monitoring_exporters_node_port"] = "9199"  # templated ports may arrive as strings
    configs = scrape_configs(fleet, HOSTS, {"node_port": 9111, "ssh_port": 2222})
    node = {host: entry["targets"][0] for host, entry in _by_host(_job(configs, "node")).items()}
    assert node["dex5550"] == "192.168.1.20:9111"
    assert node["nixvm"] == "[fd7a:115c:a1e0::7]:9111"
    assert node["samsung"] == "samsung:9199"
    assert node["p620"] == "p620:9111"
    ssh = {host: entry["targets"][0] for host, entry in _by_host(_job(configs, "blackbox_ssh")).items()}
    assert ssh["dex5550"] == "192.168.1.20:2222"
    assert ssh["nixvm"] == "[fd7a:115c:a1e0::7]:2222"
    icmp = {host: entry["targets"][0] for host, entry in _by_host(_job(configs, "blackbox_icmp")).items()}
    assert icmp["nixvm"] == "fd7a:115c:a1e0::7"
    assert icmp["p510"] == "p510"


def test_hosts_with_exporters_off_are_only_probed(fleet):
    fleet["nixvm"]["monitoring_exporters_enabled"] = False
    fleet["p510"]["monitoring_exporters_enabled"] = "false"
    configs = scrape_configs(fleet, HOSTS)
    assert set(_by_host(_job(configs, "node"))) == set(HOSTS) - {"nixvm", "p510"}
    assert set(_by_host(_job(configs, "gpu_nvidia"))) == {"razer"}
    assert [job["job_name"] for job in configs if job["job_name"] == "tautulli"] == []
    assert set(_by_host(_job(configs, "blackbox_icmp"))) == set(HOSTS)
    assert set(_by_host(_job(configs, "blackbox_ssh"))) == set(HOSTS)


def test_only_the_given_hosts_are_considered(fleet):
    configs = scrape_configs(fleet, ["samsung", "p620", "samsung"])
    assert [entry["targets"] for entry in _job(configs, "node")["static_configs"]] == [["p620:9100"], ["samsung:9100"]]


# --- GPU and media jobs ------------------------------------------------------------------


def test_gpu_jobs_only_where_an_exporter_is_packaged(fleet):
    configs = scrape_configs(fleet, HOSTS)
    nvidia = _by_host(_job(configs, "gpu_nvidia"))
    assert {host: entry["targets"] for host, entry in nvidia.items()} == {
        "p510": ["p510:9400"],
        "razer": ["razer:9400"],
    }
    assert nvidia["p510"]["labels"]["gpu"] == "nvidia"
    assert "gpu_amd" not in [job["job_name"] for job in configs]

    fleet["p620"]["monitoring_exporters_gpu_exporter"] = True
    fleet["samsung"]["monitoring_exporters_gpu_exporter"] = True  # no GPU group: ignored
    configs = scrape_configs(fleet, HOSTS)
    amd = _job(configs, "gpu_amd")
    assert amd["static_configs"] == [
        {"targets": ["p620:9401"], "labels": _by_host(_job(configs, "node"))["p620"]["labels"]}
    ]
    assert set(_by_host(_job(configs, "gpu_nvidia"))) == {"p510", "razer"}


def test_media_jobs_only_with_an_api_key(fleet):
    configs = scrape_configs(fleet, HOSTS)
    tautulli = _job(configs, "tautulli")
    assert [entry["targets"] for entry in tautulli["static_configs"]] == [["p510:9104"]]
    assert tautulli["static_configs"][0]["labels"]["roles"] == "backup_targets,media,servers"
    assert "nzbget" not in [job["job_name"] for job in configs]

    fleet["p510"]["monitoring_exporters_media"]["nzbget"] = {"port": 9113, "api_key_set": "True"}
    fleet["dex5550"]["monitoring_exporters_media"]["nzbget"]["api_key_set"] = True  # not in group media
    nzbget = _job(scrape_configs(fleet, HOSTS), "nzbget")
    assert [entry["targets"] for entry in nzbget["static_configs"]] == [["p510:9113"]]


def test_media_defaults_when_the_facts_are_missing(fleet):
    for host_vars in fleet.values():
        del host_vars["monitoring_exporters_media"]
    assert {"tautulli", "nzbget"}.isdisjoint(job["job_name"] for job in scrape_configs(fleet, HOSTS))
    fleet["p510"]["monitoring_exporters_media"] = {"nzbget": {"api_key_set": True}}
    assert _job(scrape_configs(fleet, HOSTS), "nzbget")["static_configs"][0]["targets"] == ["p510:9103"]


# --- blackbox, job order, intervals, omission ---------------------------------------------------

RELABEL = [
    {"source_labels": ["__address__"], "target_label": "__param_target"},
    {"source_labels": ["__param_target"], "target_label": "instance"},
    {"target_label": "__address__", "replacement": "127.0.0.1:9115"},
]


def test_blackbox_jobs_relabel_to_the_exporter(fleet):
    services = [
        {"name": "grafana", "url": "http://dex5550:3001/api/health"},
        {"name": "plex", "url": "https://p510:32400/identity"},
    ]
    configs = scrape_configs(fleet, HOSTS, {"web_services": services})
    assert _job(configs, "blackbox_http") == {
        "job_name": "blackbox_http",
        "scrape_interval": "15s",
        "metrics_path": "/probe",
        "params": {"module": ["http_2xx"]},
        "relabel_configs": RELABEL,
        "static_configs": [
            {"targets": ["http://dex5550:3001/api/health"], "labels": {"service": "grafana"}},
            {"targets": ["https://p510:32400/identity"], "labels": {"service": "plex"}},
        ],
    }
    for name, module in (("blackbox_icmp", "icmp"), ("blackbox_ssh", "ssh_banner")):
        job = _job(configs, name)
        assert job["params"] == {"module": [module]}
        assert job["metrics_path"] == "/probe"
        assert job["relabel_configs"] == RELABEL
    icmp = _by_host(_job(configs, "blackbox_icmp"))
    ssh = _by_host(_job(configs, "blackbox_ssh"))
    node = _by_host(_job(configs, "node"))
    for host in HOSTS:
        assert icmp[host] == {"targets": [host], "labels": node[host]["labels"]}
        assert ssh[host] == {"targets": [f"{host}:22"], "labels": node[host]["labels"]}


def test_blackbox_address_setting(fleet):
    configs = scrape_configs(fleet, HOSTS, {"blackbox_address": "[::1]:9115"})
    assert _job(configs, "blackbox_icmp")["relabel_configs"][2] == {
        "target_label": "__address__",
        "replacement": "[::1]:9115",
    }
    configs = scrape_configs(fleet, HOSTS, {"blackbox_address": "dex5550:19115"})
    assert _job(configs, "blackbox_ssh")["relabel_configs"][2]["replacement"] == "dex5550:19115"


def test_job_order_and_interval(fleet):
    fleet["p620"]["monitoring_exporters_gpu_exporter"] = True
    fleet["p510"]["monitoring_exporters_media"]["nzbget"]["api_key_set"] = True
    settings = {"scrape_interval": "30s", "web_services": [{"name": "grafana", "url": "http://dex5550:3001"}]}
    configs = scrape_configs(fleet, HOSTS, settings)
    assert [job["job_name"] for job in configs] == [
        "node",
        "gpu_nvidia",
        "gpu_amd",
        "tautulli",
        "nzbget",
        "blackbox_http",
        "blackbox_icmp",
        "blackbox_ssh",
    ]
    assert {job["scrape_interval"] for job in configs} == {"30s"}


def test_jobs_without_targets_are_left_out(fleet):
    names = [job["job_name"] for job in scrape_configs(fleet, HOSTS)]
    assert names == ["node", "gpu_nvidia", "tautulli", "blackbox_icmp", "blackbox_ssh"]
    for host_vars in fleet.values():
        host_vars["monitoring_exporters_enabled"] = False
    assert [job["job_name"] for job in scrape_configs(fleet, HOSTS)] == ["blackbox_icmp", "blackbox_ssh"]
    assert scrape_configs(fleet, []) == []


def test_result_is_plain_data_for_yaml_and_nix(fleet):
    settings = {"web_services": [{"name": "grafana", "url": "http://dex5550:3001"}]}
    configs = scrape_configs(fleet, HOSTS, settings)
    assert yaml.safe_load(yaml.safe_dump(configs)) == configs
    assert json.loads(json.dumps(configs)) == configs
    nix = to_nix(configs)
    assert 'job_name = "node";' in nix
    assert "targets = [\n" in nix or 'targets = [ "' in nix


def test_input_is_not_modified(fleet):
    before = copy.deepcopy(fleet)
    scrape_configs(fleet, HOSTS, {"web_services": [{"name": "grafana", "url": "http://dex5550:3001"}]})
    target_warnings(fleet, HOSTS)
    assert fleet == before


# --- warnings ----------------------------------------------------------------------------


def test_warnings_name_gpu_and_media_gaps(fleet):
    assert target_warnings(fleet, HOSTS) == [
        "p510 is in media but its nzbget exporter has no API key"
        " (monitoring_exporters_media.nzbget.api_key_set is not true): nzbget is not scraped",
        "p620 is in gpu_amd but no AMD GPU exporter is packaged for its platform"
        " (monitoring_exporters_gpu_exporter is not true): its GPU is not scraped",
    ]


def test_warnings_for_missing_facts_outside_media_and_exporters_off(fleet):
    fleet["razer"]["monitoring_exporters_gpu_exporter"] = False
    fleet["dex5550"]["monitoring_exporters_media"]["tautulli"]["api_key_set"] = True
    fleet["nixvm"]["monitoring_exporters_enabled"] = False
    fleet["p620"]["monitoring_exporters_enabled"] = False  # no GPU warning when nothing runs there
    warnings = target_warnings(fleet, HOSTS)
    assert warnings[0] == (
        "dex5550 sets monitoring_exporters_media.tautulli.api_key_set but is not in group media:"
        " tautulli is not scraped"
    )
    assert "nixvm has monitoring_exporters_enabled false: only the blackbox probes (ping, SSH) watch it" in warnings
    assert "p620 has monitoring_exporters_enabled false: only the blackbox probes (ping, SSH) watch it" in warnings
    assert not any(w.startswith("p620 is in gpu_amd") for w in warnings)
    assert any(w.startswith("razer is in gpu_nvidia but no NVIDIA GPU exporter is packaged") for w in warnings)


def test_no_warnings_when_everything_is_scraped(fleet):
    fleet["p620"]["monitoring_exporters_gpu_exporter"] = True
    fleet["p510"]["monitoring_exporters_media"]["nzbget"]["api_key_set"] = True
    assert target_warnings(fleet, HOSTS) == []


# --- invalid input -----------------------------------------------------------------------


def test_unknown_hosts_are_named(fleet):
    with pytest.raises(TargetError) as exc:
        scrape_configs(fleet, [*HOSTS, "p6200", "oldbox"])
    assert _problems(exc) == ["unknown hosts 'oldbox', 'p6200': not in hostvars"]
    assert str(exc.value) == "1 scrape target problem:\n- unknown hosts 'oldbox', 'p6200': not in hostvars"
    with pytest.raises(TargetError, match="unknown host 'ghost': not in hostvars"):
        target_warnings(fleet, ["ghost"])


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"node_port": "ninety"}, "settings.node_port must be a port number (an integer 1-65535), got str 'ninety'"),
        ({"node_port": True}, "settings.node_port must be a port number (an integer 1-65535), got bool True"),
        ({"node_port": 9100.0}, "settings.node_port must be a port number (an integer 1-65535), got float 9100.0"),
        ({"ssh_port": 0}, "settings.ssh_port must be a port number 1-65535, got 0"),
        ({"ssh_port": 65536}, "settings.ssh_port must be a port number 1-65535, got 65536"),
        ({"scrape_interval": "15"}, "settings.scrape_interval must be a Prometheus duration"),
        ({"scrape_interval": "0s"}, "settings.scrape_interval must be a Prometheus duration"),
        ({"blackbox_address": "127.0.0.1"}, "settings.blackbox_address must be 'host:port'"),
        ({"blackbox_address": "127.0.0.1:x"}, "settings.blackbox_address must be 'host:port'"),
        ({"scrape_intervall": "15s"}, "settings has unknown key 'scrape_intervall' (did you mean 'scrape_interval'?)"),
        ({"web_services": {"name": "x"}}, "settings.web_services must be a list of {name, url} mappings, got dict"),
        ({"web_services": ["grafana"]}, "settings.web_services[0] must be a mapping with name and url"),
        (
            {"web_services": [{"name": "files", "url": "ftp://p620/"}]},
            "settings.web_services[0].url (files) must be an http:// or https:// URL with a host, got 'ftp://p620/'",
        ),
        (
            {"web_services": [{"name": "grafana", "url": "dex5550:3001"}]},
            "settings.web_services[0].url (grafana) must be an http:// or https:// URL",
        ),
        (
            {"web_services": [{"name": "grafana", "url": "http://dex5550:99999/"}]},
            "settings.web_services[0].url (grafana) must be an http:// or https:// URL",
        ),
        (
            {"web_services": [{"name": "grafana", "url": "http:///health"}]},
            "settings.web_services[0].url (grafana) must be an http:// or https:// URL",
        ),
        ({"web_services": [{"url": "http://dex5550:3001"}]}, "settings.web_services[0].name must be a non-empty"),
        (
            {"web_services": [{"name": "g", "url": "http://a"}, {"name": "g", "url": "http://b"}]},
            "settings.web_services[1]: web service name 'g' is used twice",
        ),
        (
            {"web_services": [{"name": "g", "url": "http://a", "module": "http_2xx"}]},
            "settings.web_services[0] has unknown key 'module'",
        ),
        ("15s", "settings must be a mapping, got str"),
    ],
)
def test_invalid_settings(fleet, settings, expected):
    with pytest.raises(TargetError) as exc:
        scrape_configs(fleet, HOSTS, settings)
    assert any(problem.startswith(expected) for problem in _problems(exc)), _problems(exc)


@pytest.mark.parametrize(
    ("host_vars", "expected"),
    [
        ({"monitoring_exporters_node_port": "9100x"}, "p620: monitoring_exporters_node_port must be a port number"),
        (
            {"monitoring_exporters_node_port": 70000},
            "p620: monitoring_exporters_node_port must be a port number 1-65535",
        ),
        ({"monitoring_exporters_enabled": "maybe"}, "p620: monitoring_exporters_enabled must be true or false"),
        ({"monitoring_exporters_gpu_exporter": None}, "p620: monitoring_exporters_gpu_exporter must be true or false"),
        ({"ansible_host": "p620 local"}, "p620: ansible_host must be a host name or an IP address"),
        ({"ansible_host": ""}, "p620: ansible_host must be a host name or an IP address"),
        ({"group_names": "workstations"}, "p620: group_names must be a list of group names"),
        ({"base_host_kind": 3}, "p620: base_host_kind must be a string"),
        (
            {"monitoring_exporters_media": {"tautuli": {"api_key_set": True}}},
            "p620: monitoring_exporters_media has unknown key 'tautuli' (did you mean 'tautulli'?)",
        ),
        (
            {"monitoring_exporters_media": {"tautulli": {"port": "web"}}},
            "p620: monitoring_exporters_media.tautulli.port must be a port number",
        ),
        (
            {"monitoring_exporters_media": {"nzbget": {"api_key_set": "set"}}},
            "p620: monitoring_exporters_media.nzbget.api_key_set must be true or false",
        ),
        ({"monitoring_exporters_media": ["tautulli"]}, "p620: monitoring_exporters_media must be a mapping"),
    ],
)
def test_invalid_host_vars(fleet, host_vars, expected):
    fleet["p620"].update(host_vars)
    for function in (lambda: scrape_configs(fleet, HOSTS), lambda: target_warnings(fleet, HOSTS)):
        with pytest.raises(TargetError) as exc:
            function()
        assert any(problem.startswith(expected) for problem in _problems(exc)), _problems(exc)


def test_invalid_hostvars_and_hosts(fleet):
    with pytest.raises(TargetError, match="hostvars must be a mapping"):
        scrape_configs(["p620"], HOSTS)
    with pytest.raises(TargetError, match=r"hosts must be a list of host names, such as groups\['all'\], got str"):
        scrape_configs(fleet, "p620")
    with pytest.raises(TargetError, match="hosts holds 3, which is not a host name"):
        scrape_configs(fleet, ["p620", 3])
    fleet["p620"] = "workstation"
    with pytest.raises(TargetError, match="p620: hostvars must be a mapping, got str"):
        scrape_configs(fleet, HOSTS)


def test_every_problem_is_reported_at_once(fleet):
    fleet["razer"]["monitoring_exporters_node_port"] = "x"
    settings = {"ssh_port": "ssh", "web_services": [{"name": "g", "url": "gopher://x"}]}
    with pytest.raises(TargetError) as exc:
        scrape_configs(fleet, [*HOSTS, "ghost"], settings)
    assert len(_problems(exc)) == 4
    assert str(exc.value).startswith("4 scrape target problems:\n- ")


# --- listen ports ------------------------------------------------------------------------

TAILSCALE = "100.64.0.0/10"


def test_listen_ports_merges_sorts_and_ignores_other_vars():
    host_vars = {
        "monitoring_server_listen_ports": [
            {"name": "prometheus", "port": 9090, "proto": "tcp", "allow_from": [TAILSCALE]},
            {"name": "grafana", "port": "3001", "proto": "tcp", "allow_from": ["any"]},
        ],
        "monitoring_exporters_listen_ports": [
            {"name": "node-exporter", "port": 9100, "proto": "tcp", "allow_from": ["monitoring_server"]},
        ],
        "dns_listen_ports": [
            {"name": "dns", "port": 53, "proto": "udp", "allow_from": ["192.168.1.0/24", TAILSCALE]},
            {"name": "dns", "port": 53, "proto": "tcp", "allow_from": ["192.168.1.0/24"]},
        ],
        "backup_listen_ports": None,
        "listen_ports_extra": "not a declaration",
        "base_host_kind": "server",
    }
    assert listen_ports(host_vars) == [
        {"name": "dns", "port": 53, "proto": "tcp", "allow_from": ["192.168.1.0/24"]},
        {"name": "dns", "port": 53, "proto": "udp", "allow_from": [TAILSCALE, "192.168.1.0/24"]},
        {"name": "grafana", "port": 3001, "proto": "tcp", "allow_from": ["any"]},
        {"name": "prometheus", "port": 9090, "proto": "tcp", "allow_from": [TAILSCALE]},
        {"name": "node-exporter", "port": 9100, "proto": "tcp", "allow_from": ["monitoring_server"]},
    ]


def test_listen_ports_counts_identical_declarations_once():
    ssh = {"name": "ssh", "port": 22, "proto": "tcp", "allow_from": ["192.168.1.0/24", TAILSCALE]}
    host_vars = {
        "security_listen_ports": [ssh, dict(ssh)],
        # The same sources, written differently: still the same declaration.
        "tailscale_listen_ports": [{**ssh, "allow_from": [TAILSCALE, "192.168.1.0/24", TAILSCALE]}],
    }
    assert listen_ports(host_vars) == [
        {"name": "ssh", "port": 22, "proto": "tcp", "allow_from": [TAILSCALE, "192.168.1.0/24"]}
    ]
    assert listen_ports({"x_listen_ports": [{**ssh, "allow_from": ["servers", "any"]}]})[0]["allow_from"] == ["any"]
    assert listen_ports({}) == []


def test_listen_ports_refuses_a_port_declared_twice_with_different_sources():
    ssh = {"name": "ssh", "port": 22, "proto": "tcp", "allow_from": ["192.168.1.0/24"]}
    host_vars = {
        "ssh_hardening_listen_ports": [ssh],
        "firewall_listen_ports": [{**ssh, "allow_from": ["any"]}],
    }
    with pytest.raises(ListenPortsError) as exc:
        listen_ports(host_vars)
    assert exc.value.problems == [
        "port 22/tcp (ssh) is declared twice with different sources (ssh_hardening_listen_ports allows"
        " 192.168.1.0/24; firewall_listen_ports allows any): declare it once, with every source"
    ]


def test_listen_ports_conflict_names_both():
    host_vars = {
        "monitoring_exporters_listen_ports": [
            {"name": "node-exporter", "port": 9100, "proto": "tcp", "allow_from": ["monitoring_server"]}
        ],
        "other_listen_ports": [{"name": "cockpit", "port": 9100, "proto": "tcp", "allow_from": ["any"]}],
        "udp_listen_ports": [{"name": "something", "port": 9100, "proto": "udp", "allow_from": ["any"]}],
    }
    with pytest.raises(ListenPortsError) as exc:
        listen_ports(host_vars)
    assert exc.value.problems == [
        "port 9100/tcp is declared twice, as 'cockpit' (other_listen_ports) and 'node-exporter'"
        " (monitoring_exporters_listen_ports): one port, one service"
    ]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"port": 0}, "x_listen_ports[0].port must be a port number 1-65535, got 0"),
        ({"port": 65536}, "x_listen_ports[0].port must be a port number 1-65535, got 65536"),
        ({"port": "ssh"}, "x_listen_ports[0].port must be a port number (an integer 1-65535), got str 'ssh'"),
        ({"port": True}, "x_listen_ports[0].port must be a port number (an integer 1-65535), got bool True"),
        ({"proto": "sctp"}, "x_listen_ports[0].proto must be one of tcp, udp, got 'sctp'"),
        ({"proto": "TCP"}, "x_listen_ports[0].proto must be one of tcp, udp, got 'TCP'"),
        ({"name": ""}, "x_listen_ports[0].name must be a non-empty string"),
        ({"allow_from": []}, "x_listen_ports[0].allow_from is empty"),
        ({"allow_from": "any"}, "x_listen_ports[0].allow_from must be a list of group names, CIDRs or 'any'"),
        ({"allow_from": [None]}, "x_listen_ports[0].allow_from holds None, which is not a group name"),
        (
            {"allow_from": ["10.0.0.1/8"]},
            "x_listen_ports[0].allow_from holds '10.0.0.1/8', which is not a valid IP address or CIDR"
            " (10.0.0.1/8 has host bits set)",
        ),
        ({"allow_from": ["300.1.1.1"]}, "x_listen_ports[0].allow_from holds '300.1.1.1', which is not a valid IP"),
        ({"allow_from": ["fd7a::zz/48"]}, "x_listen_ports[0].allow_from holds 'fd7a::zz/48', which is not a valid IP"),
        (
            {"allow_from": ["web servers"]},
            "x_listen_ports[0].allow_from holds 'web servers', which is not a group name",
        ),
        ({"allow_from": ["gpu-amd"]}, "x_listen_ports[0].allow_from holds 'gpu-amd', which is not a group name"),
        ({"descr": "x"}, "x_listen_ports[0] has unknown key 'descr'"),
    ],
)
def test_listen_ports_invalid_entries(entry, expected):
    base = {"name": "ssh", "port": 22, "proto": "tcp", "allow_from": ["servers"]}
    with pytest.raises(ListenPortsError) as exc:
        listen_ports({"x_listen_ports": [{**base, **entry}]})
    assert any(problem.startswith(expected) for problem in exc.value.problems), exc.value.problems


def test_listen_ports_invalid_shapes():
    with pytest.raises(ListenPortsError, match="host variables must be a mapping, got list"):
        listen_ports([])
    with pytest.raises(ListenPortsError) as exc:
        listen_ports(
            {
                "a_listen_ports": {"name": "ssh", "port": 22},
                "b_listen_ports": ["ssh"],
                "c_listen_ports": [{"name": "ssh", "port": 22}],
            }
        )
    assert exc.value.problems == [
        "a_listen_ports must be a list of {name, port, proto, allow_from}, got {'name': 'ssh', 'port': 22}",
        "b_listen_ports[0] must be a mapping with name, port, proto, allow_from, got 'ssh'",
        "c_listen_ports[0] lacks proto, allow_from",
    ]
    assert str(exc.value).startswith("3 listen port problems:\n- a_listen_ports")
