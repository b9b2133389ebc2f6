"""Unit tests of the alert rules data and the prometheus_alert_rules filter.

When the rules fire is tested with the real promtool in
tests/integration/test_promtool_rules.py; these tests check the data.
"""

import copy
import math
import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.filter.prometheus_alert_rules import FilterModule
from ansible_collections.homelab.nixos.plugins.module_utils._alert_rules import (
    DEFAULTS,
    DURATION_RE,
    EXCLUDED_FSTYPES,
    GROUP_NAMES,
    RUNBOOK_URL,
    SEVERITIES,
    AlertRulesError,
    alert_names,
    alert_rules,
    promql_number,
    resolve_settings,
    settings_problems,
    si_number,
)

prometheus_alert_rules = FilterModule().filters()["prometheus_alert_rules"]

EXPECTED = {
    "HostDown": ("homelab-host", "critical"),
    "ExporterDown": ("homelab-host", "warning"),
    "HighCPUUsage": ("homelab-host", "warning"),
    "HighMemoryUsage": ("homelab-host", "warning"),
    "LowDiskSpace": ("homelab-host", "warning"),
    "FilesystemPredictedFull": ("homelab-host", "warning"),
    "HighNetworkTraffic": ("homelab-host", "warning"),
    "SystemdServiceFailed": ("homelab-host", "warning"),
    "SystemdUnitFailed": ("homelab-host", "warning"),
    "ClockSkew": ("homelab-host", "warning"),
    "HighTemperature": ("homelab-host", "warning"),
    "NixStoreSize": ("homelab-nixos", "warning"),
    "NixosGenerationTooOld": ("homelab-nixos", "warning"),
    "RebootRequired": ("homelab-nixos", "warning"),
    "BackupTooOld": ("homelab-backup", "critical"),
    "BackupVerificationFailed": ("homelab-backup", "critical"),
    "WebServiceDown": ("homelab-probes", "warning"),
    "ProbeFailed": ("homelab-probes", "warning"),
    "TLSCertificateExpiring": ("homelab-probes", "warning"),
}
SEED_RULES = (
    "HighCPUUsage",
    "HighMemoryUsage",
    "LowDiskSpace",
    "NixStoreSize",
    "SystemdServiceFailed",
    "HostDown",
    "HighNetworkTraffic",
)


def _rules(document):
    return {rule["alert"]: rule for group in document["groups"] for rule in group["rules"]}


def _all_strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _all_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _all_strings(item)


def _label_regex(expr, label, op):
    """The regex of ``label op "..."`` in ``expr`` (the first one)."""
    match = re.search(re.escape(label) + r"\s*" + re.escape(op) + r'\s*"([^"]*)"', expr)
    assert match, f"no {label}{op} in {expr}"
    return match.group(1)


# --- the document --------------------------------------------------------------


def test_document_shape():
    document = alert_rules()
    assert list(document) == ["groups"]
    assert [group["name"] for group in document["groups"]] == list(GROUP_NAMES)
    assert GROUP_NAMES == ("homelab-host", "homelab-nixos", "homelab-backup", "homelab-probes")
    for group in document["groups"]:
        assert set(group) == {"name", "rules"}
        assert group["rules"], group["name"]


def test_alerts_groups_and_severities():
    found = {rule["alert"]: (group["name"], rule["labels"]["severity"]) for group in alert_rules()["groups"]
             for rule in group["rules"]}  # fmt: skip
    assert found == EXPECTED


def test_seed_rules_are_kept():
    assert set(SEED_RULES) <= set(alert_names(alert_rules()))


def test_alert_names_are_unique():
    names = alert_names(alert_rules())
    assert len(names) == len(set(names)) == len(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_rule_is_complete(name):
    rule = _rules(alert_rules())[name]
    assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}
    assert rule["labels"]["severity"] in SEVERITIES
    assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
    assert rule["annotations"]["summary"].strip()
    assert rule["annotations"]["description"].strip()
    assert rule["annotations"]["runbook_url"] == RUNBOOK_URL + name.lower()
    assert rule["annotations"]["runbook_url"].startswith("https://github.com/homelab/nixos/blob/main/docs/runbooks.md#")
    assert DURATION_RE.match(rule["for"]), rule["for"]
    assert rule["expr"].strip()
    assert "\n" not in rule["expr"]


def test_every_string_is_plain_and_filled_in():
    """No <placeholder> is left, and the document is plain data (str keys, str/dict/list values)."""
    document = alert_rules()
    for text in _all_strings(document):
        assert not re.search(r"<[a-z_]+>", text), text
    assert {type(text) for text in _all_strings(document)} == {str}


def test_seed_thresholds_and_durations():
    rules = _rules(alert_rules())
    assert rules["HighCPUUsage"]["expr"].endswith("> 80") and rules["HighCPUUsage"]["for"] == "5m"
    assert rules["HighMemoryUsage"]["expr"].endswith("> 90") and rules["HighMemoryUsage"]["for"] == "5m"
    assert "> 85)" in rules["LowDiskSpace"]["expr"] and rules["LowDiskSpace"]["for"] == "10m"
    assert rules["NixStoreSize"]["expr"].endswith("> 50000000000") and rules["NixStoreSize"]["for"] == "1h"
    assert rules["HighNetworkTraffic"]["expr"].count("> 100000000,") == 2
    assert rules["HighNetworkTraffic"]["for"] == "10m"
    assert rules["HostDown"]["expr"] == 'up{job="node"} == 0' and rules["HostDown"]["for"] == "1m"
    assert rules["SystemdServiceFailed"]["expr"].startswith('node_systemd_unit_state{state="failed"')


def test_other_default_thresholds():
    rules = _rules(alert_rules())
    assert rules["NixosGenerationTooOld"]["expr"] == (
        "(time() - homelab_nixos_generation_timestamp_seconds) / 86400 > 30"
    )
    assert rules["BackupTooOld"]["expr"] == "(time() - homelab_backup_last_success_timestamp_seconds) / 3600 > 26"
    assert rules["BackupVerificationFailed"]["expr"] == "homelab_backup_last_verification_success == 0"
    assert rules["TLSCertificateExpiring"]["expr"] == "(probe_ssl_earliest_cert_expiry - time()) / 86400 < 14"
    assert "abs(node_timex_offset_seconds) > 0.05" in rules["ClockSkew"]["expr"]
    assert "node_timex_sync_status == 0" in rules["ClockSkew"]["expr"]
    assert rules["HighTemperature"]["expr"] == "node_hwmon_temp_celsius > 90"
    assert rules["RebootRequired"]["expr"] == "homelab_nixos_reboot_required == 1"
    assert "predict_linear(" in rules["FilesystemPredictedFull"]["expr"]


def test_systemd_rules_split_units_without_overlap():
    """A failed unit raises exactly one of SystemdServiceFailed and SystemdUnitFailed (PromQL anchors regexes)."""
    rules = _rules(alert_rules())
    service = _label_regex(rules["SystemdServiceFailed"]["expr"], "name", "=~")
    other = _label_regex(rules["SystemdUnitFailed"]["expr"], "name", "!~")
    assert service == other
    for unit in ("nginx.service", "systemd-fsck@dev-sda1.service", "getty@tty1.service"):
        assert re.fullmatch(service, unit), unit
    for unit in ("fstrim.timer", "mnt-media.mount", "sshd.socket", "service.slice", "foo.service.d", "x-service"):
        assert not re.fullmatch(service, unit), unit


def test_disk_rules_ignore_virtual_filesystems():
    rules = _rules(alert_rules())
    for name in ("LowDiskSpace", "FilesystemPredictedFull"):
        excluded = _label_regex(rules[name]["expr"], "fstype", "!~")
        assert excluded == "|".join(EXCLUDED_FSTYPES)
        for fstype in ("tmpfs", "devtmpfs", "overlay", "squashfs", "fuse.sshfs", "virtiofs"):
            assert re.fullmatch(excluded, fstype), fstype
        for fstype in ("ext4", "btrfs", "xfs", "zfs", "vfat", "nfs4"):
            assert not re.fullmatch(excluded, fstype), fstype


def test_exporter_down_leaves_the_node_job_to_host_down():
    expr = _rules(alert_rules())["ExporterDown"]["expr"]
    assert 'up{job!="node"} == 0' in expr
    assert 'unless on (address) label_replace(up{job="node"} == 0' in expr


@pytest.mark.parametrize(
    ("instance", "address"),
    [("p620:9100", "p620"), ("10.0.0.5:9400", "10.0.0.5"), ("[fd00::1]:9100", "[fd00::1]"), ("p620", "p620")],
)
def test_exporter_down_address_regex(instance, address):
    """The regex that strips the port (RE2, fully anchored like Python's fullmatch here)."""
    regex = re.search(r'"instance", "([^"]+)"', _rules(alert_rules())["ExporterDown"]["expr"]).group(1)
    assert re.fullmatch(regex, instance).group(1) == address


def test_nix_store_rule_looks_at_the_store_mounts_once():
    expr = _rules(alert_rules())["NixStoreSize"]["expr"]
    assert expr.startswith("max without (mountpoint) (")
    regex = _label_regex(expr, "mountpoint", "=~")
    assert [m for m in ("/nix/store", "/nix", "/", "/nix/var", "/home") if re.fullmatch(regex, m)] == [
        "/nix/store",
        "/nix",
    ]


# --- settings ------------------------------------------------------------------


@pytest.mark.parametrize("settings", [None, {}])
def test_no_settings_means_defaults(settings):
    assert alert_rules(settings) == alert_rules()
    assert resolve_settings(settings) == DEFAULTS


def test_defaults():
    assert DEFAULTS == {
        "cpu_percent": 80,
        "memory_percent": 90,
        "disk_percent": 85,
        "nix_store_bytes": 50e9,
        "network_bytes_per_second": 100e6,
        "host_down_for": "1m",
        "generation_max_age_days": 30,
        "backup_max_age_hours": 26,
        "cert_expiry_days": 14,
        "clock_skew_seconds": 0.05,
        "temperature_celsius": 90,
        "for_override": None,
    }


def test_for_override_replaces_every_for():
    document = alert_rules({"for_override": "30s", "host_down_for": "5m"})
    assert {rule["for"] for rule in _rules(document).values()} == {"30s"}
    # The texts name the duration that applies.
    assert "for 30s" in _rules(document)["HostDown"]["annotations"]["description"]
    assert "for 30s" in _rules(document)["HighCPUUsage"]["annotations"]["description"]
    # Only `for` changes.
    plain = alert_rules()
    for rules in (_rules(document), _rules(plain)):
        for rule in rules.values():
            rule.pop("for")
            rule["annotations"].pop("description")
    assert document == plain


def test_for_override_null_changes_nothing():
    assert alert_rules({"for_override": None}) == alert_rules()


def test_host_down_for():
    rules = _rules(alert_rules({"host_down_for": "3m"}))
    assert rules["HostDown"]["for"] == "3m"
    assert "for 3m" in rules["HostDown"]["annotations"]["description"]
    assert rules["ExporterDown"]["for"] == "5m"


def test_custom_thresholds_reach_expressions_and_texts():
    settings = {
        "cpu_percent": 95,
        "memory_percent": 75.5,
        "disk_percent": 70,
        "nix_store_bytes": 120e9,
        "network_bytes_per_second": 12.5e6,
        "generation_max_age_days": 7,
        "backup_max_age_hours": 48,
        "cert_expiry_days": 21,
        "clock_skew_seconds": 0.5,
        "temperature_celsius": 80,
    }
    rules = _rules(alert_rules(settings))
    assert rules["HighCPUUsage"]["expr"].endswith("> 95")
    assert "above 95%" in rules["HighCPUUsage"]["annotations"]["description"]
    assert rules["HighMemoryUsage"]["expr"].endswith("> 75.5")
    assert "> 70)" in rules["LowDiskSpace"]["expr"]
    assert "<= 70)" in rules["FilesystemPredictedFull"]["expr"]
    assert rules["NixStoreSize"]["expr"].endswith("> 120000000000")
    assert "above 120GB" in rules["NixStoreSize"]["annotations"]["description"]
    assert rules["HighNetworkTraffic"]["expr"].count("> 12500000,") == 2
    assert "above 12.5MB/s" in rules["HighNetworkTraffic"]["annotations"]["description"]
    assert rules["NixosGenerationTooOld"]["expr"].endswith("> 7")
    assert rules["BackupTooOld"]["expr"].endswith("> 48")
    assert rules["TLSCertificateExpiring"]["expr"].endswith("< 21")
    assert "> 0.5," in rules["ClockSkew"]["expr"]
    assert rules["HighTemperature"]["expr"].endswith("> 80")


def test_settings_are_not_changed_and_results_are_independent():
    settings = {"cpu_percent": 70, "for_override": "1m"}
    before = copy.deepcopy(settings)
    first = alert_rules(settings)
    first["groups"][0]["rules"][0]["labels"]["severity"] = "changed"
    first["groups"].clear()
    assert settings == before
    assert alert_rules(settings)["groups"][0]["rules"][0]["labels"]["severity"] == "critical"


def test_percentages_up_to_100_are_accepted():
    rules = _rules(alert_rules({"cpu_percent": 100, "memory_percent": 0.5, "disk_percent": 99.9}))
    assert rules["HighCPUUsage"]["expr"].endswith("> 100")


@pytest.mark.parametrize("duration", ["0s", "30s", "5m", "2h", "1d", "1w", "1y", "90m"])
def test_valid_durations(duration):
    assert settings_problems({"host_down_for": duration, "for_override": duration}) == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"cpu_percent": 0}, "cpu_percent must be a number > 0, got 0"),
        ({"cpu_percent": -5}, "cpu_percent must be a number > 0, got -5"),
        ({"cpu_percent": 101}, "cpu_percent is a percentage and must be at most 100, got 101"),
        ({"disk_percent": 150.0}, "disk_percent is a percentage and must be at most 100, got 150.0"),
        ({"memory_percent": "90"}, "memory_percent must be a number > 0, got '90'"),
        ({"nix_store_bytes": True}, "nix_store_bytes must be a number > 0, got True"),
        ({"nix_store_bytes": None}, "nix_store_bytes must be a number > 0, got None"),
        ({"network_bytes_per_second": math.inf}, "network_bytes_per_second must be a number > 0, got inf"),
        ({"clock_skew_seconds": math.nan}, "clock_skew_seconds must be a number > 0, got nan"),
        ({"backup_max_age_hours": [26]}, "backup_max_age_hours must be a number > 0, got [26]"),
        ({"host_down_for": "1 minute"}, "host_down_for must be a Prometheus duration like 30s"),
        ({"host_down_for": "1.5m"}, "host_down_for must be a Prometheus duration"),
        ({"host_down_for": "1m30s"}, "host_down_for must be a Prometheus duration"),
        (
            {"host_down_for": 60},
            "host_down_for must be a Prometheus duration like 30s, 5m or 1h (^[0-9]+[smhdwy]$), got 60",
        ),
        ({"host_down_for": None}, "host_down_for must be a Prometheus duration"),
        ({"for_override": ""}, "for_override must be a Prometheus duration"),
        ({"for_override": "30"}, "for_override must be a Prometheus duration"),
        ({"for_override": "30S"}, "for_override must be a Prometheus duration"),
        ({"for_override": "30s\n"}, "for_override must be a Prometheus duration"),
        (
            {"cpu_precent": 80},
            "unknown setting 'cpu_precent' (did you mean 'cpu_percent'?); known: backup_max_age_hours",
        ),
        ({"frobnicate": 1}, "unknown setting 'frobnicate'; known: "),
        ({7: 1}, "unknown setting 7; known: "),
    ],
)
def test_bad_settings_are_rejected(settings, message):
    with pytest.raises(AlertRulesError) as caught:
        alert_rules(settings)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(message), caught.value.problems[0]
    assert str(caught.value).startswith("1 alert setting problem:\n- ")


@pytest.mark.parametrize("settings", [["cpu_percent"], "cpu_percent=80", 80])
def test_settings_must_be_a_mapping(settings):
    with pytest.raises(AlertRulesError, match="settings must be a mapping, got"):
        alert_rules(settings)


def test_every_problem_is_reported_at_once():
    problems = settings_problems({"cpu_percent": 0, "host_down": "1m", "for_override": "soon", "cert_expiry_days": -1})
    assert problems == [
        "unknown setting 'host_down' (did you mean 'host_down_for'?); known: " + ", ".join(sorted(DEFAULTS)),
        "cpu_percent must be a number > 0, got 0",
        "cert_expiry_days must be a number > 0, got -1",
        "for_override must be a Prometheus duration like 30s, 5m or 1h (^[0-9]+[smhdwy]$), got 'soon'",
    ]
    with pytest.raises(AlertRulesError) as caught:
        resolve_settings({"cpu_percent": 0, "host_down": "1m", "for_override": "soon", "cert_expiry_days": -1})
    assert caught.value.problems == problems
    assert str(caught.value).startswith("4 alert setting problems:\n- unknown setting 'host_down'")


# --- number formatting -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "promql", "si"),
    [
        (80, "80", "80"),
        (80.0, "80", "80"),
        (75.5, "75.5", "75.5"),
        (0.05, "0.05", "0.05"),
        (50e9, "50000000000", "50G"),
        (100e6, "100000000", "100M"),
        (12.5e6, "12500000", "12.5M"),
        (1500, "1500", "1.5k"),
        (1e-5, "1e-05", "0"),
        (1e20, "1e+20", "100E"),
        (1e24, "1e+24", "1000000E"),
    ],
)
def test_numbers(value, promql, si):
    assert promql_number(value) == promql
    assert si_number(value) == si


# --- the filter ----------------------------------------------------------------------


def test_filter_is_registered():
    assert set(FilterModule().filters()) == {"prometheus_alert_rules"}


def test_filter_returns_the_document():
    assert prometheus_alert_rules({"cpu_percent": 70}) == alert_rules({"cpu_percent": 70})
    assert prometheus_alert_rules(None) == alert_rules()


def test_filter_error_lists_every_problem():
    with pytest.raises(AnsibleFilterError) as caught:
        prometheus_alert_rules({"cpu_percent": 180, "host_down": "1m"})
    message = str(caught.value)
    assert message.startswith("prometheus_alert_rules: 2 alert setting problems:")
    assert "- unknown setting 'host_down' (did you mean 'host_down_for'?)" in message
    assert "- cpu_percent is a percentage and must be at most 100, got 180" in message
    assert isinstance(caught.value.__cause__, AlertRulesError)
