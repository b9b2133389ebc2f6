"""The grafana_dashboards and grafana_provisioning_problems filters, with the real grafana-foundation-sdk."""

import copy
import json
import os
import subprocess
import sys

import pytest
from ansible.errors import AnsibleFilterError
from ansible.plugins.filter.core import to_nice_json

from ansible_collections.homelab.nixos.plugins.filter.grafana_dashboards import FilterModule as DashboardsModule
from ansible_collections.homelab.nixos.plugins.filter.grafana_datasources import FilterModule as DatasourcesModule
from ansible_collections.homelab.nixos.plugins.filter.grafana_provisioning_problems import (
    FilterModule as ProblemsModule,
)
from ansible_collections.homelab.nixos.plugins.plugin_utils import _grafana
from ansible_collections.homelab.nixos.plugins.plugin_utils._grafana import UID_MAX_LENGTH, provisioning_problems

grafana_dashboards = DashboardsModule().filters()["grafana_dashboards"]
grafana_datasources = DatasourcesModule().filters()["grafana_datasources"]
grafana_provisioning_problems = ProblemsModule().filters()["grafana_provisioning_problems"]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

# The six hosts of the fleet (/work/shared/seed-facts.md), as the monitoring_server role passes them.
FLEET = [
    {"name": "p620", "kind": "workstation", "gpu": "amd", "cpu": "amd", "roles": ["workstations", "build_host"]},
    {"name": "razer", "kind": "laptop", "gpu": "nvidia", "cpu": "intel", "roles": ["laptops"]},
    {"name": "p510", "kind": "server", "gpu": "nvidia", "cpu": "intel", "roles": ["servers", "media"]},
    {
        "name": "dex5550",
        "kind": "server",
        "gpu": "none",
        "cpu": "intel",
        "roles": ["servers", "monitoring_server", "log_server"],
    },
    {"name": "samsung", "kind": "laptop", "gpu": "none", "cpu": "intel", "roles": ["laptops"]},
    {"name": "nixvm", "kind": "vm", "gpu": "none", "cpu": "other", "roles": ["vms"]},
]
HOST_FILES = {f"host-{h['name']}.json" for h in FLEET}

AMD_GPU_METRICS = ("node_drm_gpu_busy_percent", "node_drm_memory_vram_used_bytes")
NVIDIA_METRICS = ("nvidia_smi_utilization_gpu_ratio", "nvidia_smi_memory_used_bytes", "nvidia_smi_temperature_gpu")
INTEL_MARKERS = ("Package id", 'chip_name="coretemp"', "node_rapl_package_joules_total")


@pytest.fixture(scope="module")
def dashboards():
    return grafana_dashboards(FLEET)


@pytest.fixture(scope="module")
def datasources():
    return grafana_datasources("http://127.0.0.1:9090", "http://127.0.0.1:3100")


def panels(board):
    """Every panel, rows' nested panels included."""
    found = []
    for panel in board["panels"]:
        found.append(panel)
        found.extend(panel.get("panels") or [])
    return found


def queries(board):
    return [target["expr"] for panel in panels(board) for target in panel.get("targets") or []]


def all_queries(board):
    return "\n".join(queries(board))


def titles(board):
    return [panel.get("title") for panel in panels(board)]


def variable(board, name="host"):
    (found,) = [v for v in board["templating"]["list"] if v["name"] == name]
    return found


# --- the filters ---------------------------------------------------------------------------------


def test_filters_are_registered():
    assert set(DashboardsModule().filters()) == {"grafana_dashboards"}
    assert set(ProblemsModule().filters()) == {"grafana_provisioning_problems"}


def test_one_dashboard_per_host_plus_fleet_media_and_backups(dashboards):
    assert set(dashboards) == {"fleet-overview.json", "media.json", "backups.json", *HOST_FILES}
    assert len(HOST_FILES) == 6


def test_json_round_trip(dashboards):
    for name, board in dashboards.items():
        assert json.loads(json.dumps(board, allow_nan=False)) == board, name
        assert json.loads(to_nice_json(board)) == board, name


def test_built_with_the_sdk_for_grafana_11(dashboards):
    for board in dashboards.values():
        # grafana-foundation-sdk's Grafana 11.6 schema; a pasted or hand-written dashboard would differ.
        assert board["schemaVersion"] == 41
        assert board["editable"] is True
        assert board["tags"][0] == "homelab"


def test_stable_uids(dashboards):
    uids = {name: board["uid"] for name, board in dashboards.items()}
    assert uids == {
        "fleet-overview.json": "homelab-fleet",
        "media.json": "homelab-media",
        "backups.json": "homelab-backups",
        **{f"host-{h['name']}.json": f"homelab-host-{h['name']}" for h in FLEET},
    }
    assert len(set(uids.values())) == len(uids)


def test_output_is_deterministic(dashboards):
    again = grafana_dashboards(list(reversed(FLEET)))
    assert json.dumps(again, sort_keys=True) == json.dumps(dashboards, sort_keys=True)


def test_every_panel_and_target_uses_the_given_datasource():
    boards = grafana_dashboards(FLEET, "other-prom")
    for name, board in boards.items():
        for panel in panels(board):
            if panel["type"] == "row":
                assert not panel.get("targets"), name
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "other-prom"}, (name, panel["title"])
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"] == {"type": "prometheus", "uid": "other-prom"}, (name, panel["title"])
        for var in board["templating"]["list"]:
            if "datasource" in var:
                assert var["datasource"]["uid"] == "other-prom"


def test_panel_ids_and_ref_ids(dashboards):
    for name, board in dashboards.items():
        ids = [panel["id"] for panel in panels(board)]
        assert len(ids) == len(set(ids)), name
        assert all(isinstance(i, int) and i > 0 for i in ids), name
        for panel in panels(board):
            refs = [t["refId"] for t in panel.get("targets") or []]
            assert refs == [chr(ord("A") + i) for i in range(len(refs))], (name, panel["title"])
            pos = panel["gridPos"]
            assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, (name, panel["title"])


def test_generated_dashboards_provision_cleanly(dashboards, datasources):
    assert grafana_provisioning_problems(dashboards, datasources) == []
    prometheus_only = grafana_datasources("http://127.0.0.1:9090")
    assert grafana_provisioning_problems(dashboards, prometheus_only) == []


# --- fleet overview ------------------------------------------------------------------------------


def test_fleet_overview(dashboards):
    board = dashboards["fleet-overview.json"]
    text = all_queries(board)
    for metric in (
        "up{",
        "node_cpu_seconds_total",
        "node_memory_MemAvailable_bytes",
        "node_filesystem_avail_bytes",
        "node_network_receive_bytes_total",
        "node_network_transmit_bytes_total",
        'ALERTS{alertstate="firing"}',
    ):
        assert metric in text, metric
    assert "Firing alerts" in titles(board)
    host = variable(board)
    assert host["type"] == "custom"
    assert host["query"].split(",") == sorted(h["name"] for h in FLEET)
    assert host["multi"] is True and host["includeAll"] is True
    (up,) = [p for p in panels(board) if p.get("repeat") == "host"]
    assert up["targets"][0]["expr"] == 'min(up{host=~"$host"})'
    assert up["fieldConfig"]["defaults"]["noValue"] == "not scraped"


# --- host dashboards -----------------------------------------------------------------------------


@pytest.mark.parametrize("host", [h["name"] for h in FLEET])
def test_every_host_dashboard_has_the_common_panels(dashboards, host):
    board = dashboards[f"host-{host}.json"]
    text = all_queries(board)
    for metric in (
        "node_cpu_seconds_total",
        "node_memory_MemAvailable_bytes",
        "node_filesystem_avail_bytes",
        "node_network_receive_bytes_total",
        'node_systemd_unit_state{host=~"$host",state="failed"}',
        "homelab_nixos_generation_timestamp_seconds",
        "homelab_nixos_reboot_required",
        "node_hwmon_temp_celsius",
    ):
        assert metric in text, metric
    var = variable(board)
    assert (var["type"], var["query"]) == ("constant", host)
    assert all('host=~"$host"' in expr for expr in queries(board))


def test_p620_has_amd_gpu_panels_and_no_nvidia_panels(dashboards):
    board = dashboards["host-p620.json"]
    text = all_queries(board)
    assert all(metric in text for metric in AMD_GPU_METRICS)
    assert "nvidia_smi" not in text
    assert "AMD GPU busy" in titles(board)
    assert not any("NVIDIA" in t or "Intel" in t for t in titles(board))
    assert not any(marker in text for marker in INTEL_MARKERS)
    assert 'chip_name="k10temp"' in text


def test_razer_has_nvidia_and_intel_panels_and_no_amd_gpu_panels(dashboards):
    board = dashboards["host-razer.json"]
    text = all_queries(board)
    assert all(metric in text for metric in NVIDIA_METRICS)
    assert "node_drm_" not in text
    assert all(marker in text for marker in INTEL_MARKERS)
    assert {"NVIDIA GPU", "Intel CPU"} <= set(titles(board))
    assert not any(t.startswith("AMD") for t in titles(board))


def test_p510_nvidia_server_with_intel_cpu(dashboards):
    text = all_queries(dashboards["host-p510.json"])
    assert all(metric in text for metric in NVIDIA_METRICS)
    assert all(marker in text for marker in INTEL_MARKERS)
    assert "node_drm_" not in text


@pytest.mark.parametrize("host", ["dex5550", "samsung"])
def test_intel_hosts_without_gpu(dashboards, host):
    text = all_queries(dashboards[f"host-{host}.json"])
    assert all(marker in text for marker in INTEL_MARKERS)
    assert "node_drm_" not in text
    assert "nvidia_smi" not in text


def test_the_vm_has_no_hardware_panels(dashboards):
    board = dashboards["host-nixvm.json"]
    text = all_queries(board)
    assert "node_drm_" not in text
    assert "nvidia_smi" not in text
    assert not any(marker in text for marker in INTEL_MARKERS)
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == ["Status", "CPU and memory", "Disk and network", "Temperatures"]


def test_both_gpu_vendors_as_a_comma_list():
    boards = grafana_dashboards([{"name": "both", "kind": "workstation", "gpu": "amd,nvidia", "cpu": "intel"}])
    text = all_queries(boards["host-both.json"])
    assert all(metric in text for metric in AMD_GPU_METRICS + NVIDIA_METRICS)
    boards = grafana_dashboards([{"name": "both", "kind": "workstation", "gpu": ["nvidia", "amd"]}])
    assert all(metric in all_queries(boards["host-both.json"]) for metric in AMD_GPU_METRICS + NVIDIA_METRICS)


# --- media and backups ---------------------------------------------------------------------------


def test_media_dashboard(dashboards):
    board = dashboards["media.json"]
    text = all_queries(board)
    for metric in ("tautulli_streams", "tautulli_bandwidth_bytes_per_second", "nzbget_downloaded_bytes_total"):
        assert metric in text, metric
    assert variable(board)["query"] == "p510"


def test_media_dashboard_only_with_a_media_host():
    without = [h for h in FLEET if "media" not in h["roles"]]
    assert "media.json" not in grafana_dashboards(without)
    as_label = [{"name": "box", "kind": "server", "roles": "servers,media"}]
    assert "media.json" in grafana_dashboards(as_label)
    assert "media.json" not in grafana_dashboards([{"name": "box", "kind": "server", "roles": "none"}])


def test_backups_dashboard(dashboards):
    board = dashboards["backups.json"]
    text = all_queries(board)
    for metric in (
        "homelab_backup_last_success_timestamp_seconds",
        "homelab_backup_last_verification_success",
        "homelab_backup_size_bytes",
        "homelab_backup_duration_seconds",
    ):
        assert metric in text, metric
    host = variable(board)
    assert host["type"] == "query"
    assert host["datasource"] == {"type": "prometheus", "uid": "homelab-prometheus"}


# --- host names and bad input --------------------------------------------------------------------


def test_host_names_become_safe_uids_and_file_names():
    long_a = "a" * 30 + "-first"
    long_b = "a" * 30 + "-second"
    boards = grafana_dashboards(
        [{"name": "web.lan", "kind": "server"}, {"name": long_a, "kind": "vm"}, {"name": long_b, "kind": "vm"}]
    )
    assert boards["host-web-lan.json"]["uid"] == "homelab-host-web-lan"
    long_uids = [boards[f"host-{n}.json"]["uid"] for n in (long_a, long_b)]
    assert all(len(uid) <= UID_MAX_LENGTH for uid in long_uids)
    assert long_uids[0] != long_uids[1]
    assert variable(boards["host-web-lan.json"])["query"] == "web.lan"


def test_every_input_problem_is_reported_at_once():
    hosts = [
        {"name": "a", "kind": "desktop", "gpu": "intel", "cpu": "arm", "roles": "media"},
        {"name": "b", "kind": "vm", "gpus": "amd"},
        {"name": "c", "kind": "vm", "gpu": "none,amd", "roles": [1]},
        {"name": "d", "kind": "vm"},
        {"name": "d", "kind": "vm"},
        {"kind": "vm"},
        "e",
    ]
    with pytest.raises(AnsibleFilterError) as exc:
        grafana_dashboards(hosts)
    message = str(exc.value)
    assert message.startswith("grafana_dashboards: 9 problems:\n")
    for expected in (
        "- host 'a': kind 'desktop' is not one of workstation, laptop, server, vm",
        "- host 'a': gpu intel is not amd, nvidia or none",
        "- host 'a': cpu 'arm' is not one of amd, intel, other",
        "- host 'b' has unknown keys gpus (known: name, kind, gpu, cpu, roles)",
        "- host 'c': gpu 'none' cannot be combined with a GPU vendor",
        "- host 'c': roles must be a list of names or a comma-separated string, got [1]",
        "- hosts[5] needs a name, got None",
        "- hosts[6] must be a mapping, got str",
        "- hosts 'd', 'd' would share the dashboard uid 'homelab-host-d'",
    ):
        assert expected in message, expected


@pytest.mark.parametrize(
    ("hosts", "uid", "message"),
    [
        ({"name": "a"}, "homelab-prometheus", "hosts must be a list of mappings, got dict"),
        ([], "homelab-prometheus", "hosts is empty"),
        ([{"name": "a", "kind": "vm"}], "", "datasource_uid must be a non-empty string"),
        ([{"name": "a", "kind": "vm"}], "bad uid", "datasource_uid 'bad uid' may only hold"),
        ([{"name": "a", "kind": "vm"}], "x" * 41, "is longer than 40 characters"),
    ],
)
def test_bad_arguments(hosts, uid, message):
    with pytest.raises(AnsibleFilterError, match=message):
        grafana_dashboards(hosts, uid)


def test_bad_datasource_uid_and_hosts_are_reported_together():
    with pytest.raises(AnsibleFilterError) as exc:
        grafana_dashboards([{"name": "a", "kind": "pc"}], "a b")
    assert str(exc.value) == (
        "grafana_dashboards: 2 problems:\n"
        "- datasource_uid 'a b' may only hold letters, digits, '-' and '_'\n"
        "- host 'a': kind 'pc' is not one of workstation, laptop, server, vm"
    )


def test_missing_sdk_names_the_pin(monkeypatch):
    monkeypatch.setattr(_grafana, "SDK_IMPORT_ERROR", ImportError("No module named 'grafana_foundation_sdk'"))
    with pytest.raises(AnsibleFilterError) as exc:
        grafana_dashboards(FLEET)
    assert "grafana-foundation-sdk is required on the controller: pip install " in str(exc.value)
    assert _grafana.SDK_PIN in str(exc.value)


def test_plugins_import_without_the_sdk():
    """ansible-test's sanity environments lack the SDK: importing must work, building must fail clearly."""
    code = """
import sys
sys.modules["grafana_foundation_sdk"] = None  # makes every import of it fail
sys.path.insert(0, sys.argv[1])
from ansible.errors import AnsibleFilterError
from ansible_collections.homelab.nixos.plugins.filter import grafana_dashboards, grafana_datasources
from ansible_collections.homelab.nixos.plugins.filter import grafana_provisioning_problems
doc = grafana_datasources.grafana_datasources_filter("http://127.0.0.1:9090")
assert grafana_provisioning_problems.grafana_provisioning_problems_filter({}, doc) == []
try:
    grafana_dashboards.grafana_dashboards_filter([{"name": "a", "kind": "vm"}])
except AnsibleFilterError as e:
    print(e)
"""
    proc = subprocess.run(
        [sys.executable, "-c", code, os.path.join(ROOT, ".collections")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "grafana-foundation-sdk is required on the controller" in proc.stdout


def test_filters_in_a_playbook(tmp_path):
    """Through Ansible's collection loader: plugin_utils resolves and the output survives to_nice_json."""
    tasks = [
        {
            "name": "build",
            "ansible.builtin.set_fact": {
                "boards": "{{ hosts | homelab.nixos.grafana_dashboards }}",
                "sources": "{{ 'http://127.0.0.1:9090' | homelab.nixos.grafana_datasources }}",
            },
        },
        {
            "name": "check",
            "ansible.builtin.assert": {
                "that": [
                    "boards | homelab.nixos.grafana_provisioning_problems(sources) | length == 0",
                    "(boards['host-p620.json'] | to_nice_json | from_json).uid == 'homelab-host-p620'",
                ]
            },
        },
    ]
    play = [{"name": "t", "hosts": "localhost", "gather_facts": False, "vars": {"hosts": FLEET}, "tasks": tasks}]
    path = tmp_path / "play.yml"
    path.write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    proc = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            str(path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- the problems filter -------------------------------------------------------------------------


def test_problems_catch_a_wrong_datasource_uid(datasources):
    boards = grafana_dashboards(FLEET, "wrong-uid")
    problems = grafana_provisioning_problems(boards, datasources)
    assert problems
    assert all("wrong-uid" in p for p in problems)
    assert (
        "host-p620.json: panel 'Up' (id 2) references data source uid 'wrong-uid', which is not provisioned "
        "(provisioned: homelab-loki, homelab-prometheus)" in problems
    )
    assert any(p.startswith("host-p620.json: panel 'Up' (id 2) target A references data source uid") for p in problems)
    assert any(p.startswith("backups.json: variable 'host' references data source uid 'wrong-uid'") for p in problems)


def test_problems_catch_one_wrong_target(dashboards, datasources):
    boards = copy.deepcopy(dashboards)
    target = boards["host-razer.json"]["panels"][1]["targets"][0]
    target["datasource"] = {"type": "prometheus", "uid": "typo-prometheus"}
    assert grafana_provisioning_problems(boards, datasources) == [
        "host-razer.json: panel 'Up' (id 2) target A references data source uid 'typo-prometheus', which is not "
        "provisioned (provisioned: homelab-loki, homelab-prometheus)"
    ]


def test_problems_catch_a_datasource_of_the_wrong_type(dashboards, datasources):
    boards = copy.deepcopy(dashboards)
    boards["media.json"]["panels"][1]["datasource"] = {"type": "loki", "uid": "homelab-prometheus"}
    assert grafana_provisioning_problems(boards, datasources) == [
        "media.json: panel 'Tautulli reachable' (id 2) references data source uid 'homelab-prometheus' as type "
        "'loki', but it is a 'prometheus' data source"
    ]


def test_problems_catch_loki_when_it_is_not_provisioned(dashboards):
    boards = copy.deepcopy(dashboards)
    for target in boards["backups.json"]["panels"][1]["targets"]:
        target["datasource"] = {"type": "loki", "uid": "homelab-loki"}
    with_loki = grafana_datasources("http://127.0.0.1:9090", "http://127.0.0.1:3100")
    assert grafana_provisioning_problems(boards, with_loki) == []
    problems = grafana_provisioning_problems(boards, grafana_datasources("http://127.0.0.1:9090"))
    assert problems == [
        "backups.json: panel 'Time since the last successful backup' (id 2) target A references data source uid "
        "'homelab-loki', which is not provisioned (provisioned: homelab-prometheus)"
    ]


def test_problems_catch_duplicate_uids_and_titles(dashboards, datasources):
    boards = dict(dashboards)
    boards["host-copy.json"] = dashboards["host-p620.json"]
    boards["other.json"] = dict(dashboards["backups.json"], uid="homelab-fleet", title="Other")
    assert grafana_provisioning_problems(boards, datasources) == [
        "duplicate dashboard uid 'homelab-fleet' in fleet-overview.json, other.json",
        "duplicate dashboard uid 'homelab-host-p620' in host-copy.json, host-p620.json",
        "duplicate dashboard title 'Host p620' in host-copy.json, host-p620.json",
    ]


def test_problems_catch_panels_without_targets_and_empty_queries(dashboards, datasources):
    boards = copy.deepcopy(dashboards)
    fleet = boards["fleet-overview.json"]["panels"]
    fleet[3]["targets"] = []
    del fleet[4]["targets"]
    fleet[5]["targets"][0]["expr"] = " "
    assert grafana_provisioning_problems(boards, datasources) == [
        "fleet-overview.json: panel 'Firing alerts' (id 4) has no targets",
        "fleet-overview.json: panel 'Hosts needing a reboot' (id 5) has no targets",
        "fleet-overview.json: panel 'Firing alerts' (id 6) target A has an empty query",
    ]


def test_problems_look_inside_collapsed_rows(dashboards, datasources):
    boards = copy.deepcopy(dashboards)
    board = boards["backups.json"]
    row = board["panels"][0]
    nested = board["panels"].pop(1)
    nested["datasource"] = {"type": "prometheus", "uid": "gone"}
    row["collapsed"] = True
    row["panels"] = [nested, copy.deepcopy(board["panels"][1])]
    problems = grafana_provisioning_problems(boards, datasources)
    assert problems == [
        "backups.json: panel 'Time since the last successful backup' (id 2) references data source uid 'gone', "
        "which is not provisioned (provisioned: homelab-loki, homelab-prometheus)",
        "backups.json: panel 'Last verification' (id 3) shares its id with another panel",
    ]


def test_problems_resolve_datasource_variables(dashboards, datasources):
    boards = copy.deepcopy(dashboards)
    board = boards["backups.json"]
    board["panels"][1]["datasource"] = {"type": "prometheus", "uid": "${ds}"}
    assert grafana_provisioning_problems(boards, datasources) == [
        "backups.json: panel 'Time since the last successful backup' (id 2) references data source variable "
        "'${ds}', but the dashboard has no data source variable 'ds'"
    ]
    board["templating"]["list"].append({"type": "datasource", "name": "ds", "query": "prometheus"})
    assert grafana_provisioning_problems(boards, datasources) == []


def test_problems_catch_data_that_is_not_json(dashboards, datasources):
    boards = dict(dashboards)
    boards["bad.json"] = {"uid": "bad", "title": "Bad", "panels": [], "refresh": {1, 2}}
    boards["nan.json"] = {
        "uid": "nan",
        "title": "NaN",
        "panels": [{"id": 1, "type": "stat", "maxPerRow": float("nan")}],
    }
    problems = grafana_provisioning_problems(boards, datasources)
    assert problems == [
        "bad.json: not JSON serialisable: Object of type set is not JSON serializable",
        "nan.json: not JSON serialisable: Out of range float values are not JSON compliant",
    ]


def test_problems_of_malformed_dashboards(datasources):
    boards = {
        "no-uid.json": {"title": "No uid", "panels": []},
        "list.json": [],
        "dir/x.json": {"uid": "x", "title": "X", "panels": [{"id": 1, "type": "text"}, "junk"]},
    }
    assert provisioning_problems(boards, datasources) == [
        "'dir/x.json': the file name must be a plain '<name>.json'",
        "dir/x.json: panel #1 must be a mapping, got str",
        "list.json: a dashboard must be a mapping, got list",
        "no-uid.json: dashboard uid must be a non-empty string, got None",
    ]
    assert provisioning_problems([], datasources) == ["dashboards: must map file names to dashboards, got list"]
