"""The alert rules against the real promtool.

``promtool check rules`` must accept the rules as the monitoring_server role
writes them (``to_nice_yaml`` on Debian, JSON on NixOS) and must reject a
broken one, which shows that the check is real. ``promtool test rules`` then
runs the rule unit tests in ``tests/data/promtool/``: each test file is
copied into a temporary directory next to freshly rendered rule files, which
it names in ``rule_files``:

- ``rules.yml``: the default rules exactly as the role writes them;
- ``rules_labels.yml``: the same without annotations, so that tests of when
  an alert fires check its labels without repeating its text (promtool
  compares annotations whenever it compares alerts);
- ``rules_custom_labels.yml``: CUSTOM_SETTINGS, without annotations.

Every alert must have a test where it fires and one where it stays quiet,
with the default thresholds, and its annotations must be checked once.

promtool comes from Debian's ``prometheus`` package; without it these tests
fail, unless HOMELAB_ALLOW_NO_PROMTOOL=1 (then they are skipped).
"""

import copy
import glob
import json
import os
import shutil
import subprocess

import pytest
import yaml
from ansible.plugins.filter.core import to_nice_yaml

from ansible_collections.homelab.nixos.plugins.module_utils._alert_rules import alert_names, alert_rules

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "promtool")
TEST_FILES = sorted(glob.glob(os.path.join(DATA, "*.yml")))
CUSTOM_SETTINGS = {
    "for_override": "30s",
    "cpu_percent": 50,
    "backup_max_age_hours": 2,
    "temperature_celsius": 70.5,
    "clock_skew_seconds": 0.001,
}
ALL_ALERTS = alert_names(alert_rules())


def _without_annotations(document):
    document = copy.deepcopy(document)
    for group in document["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    return document


def _as_the_role_writes_it(document):
    """YAML as roles/monitoring_server writes it: ``to_nice_yaml(indent=2, sort_keys=false)``."""
    return to_nice_yaml(document, indent=2, sort_keys=False)


RULE_FILES = {
    "rules.yml": alert_rules,
    "rules_labels.yml": lambda: _without_annotations(alert_rules()),
    "rules_custom_labels.yml": lambda: _without_annotations(alert_rules(CUSTOM_SETTINGS)),
}


def render_rule_files(directory):
    for name, build in RULE_FILES.items():
        with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
            f.write(_as_the_role_writes_it(build()))


def _run(promtool, *args, cwd):
    return subprocess.run(
        [promtool, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin", "HOME": str(cwd)},
        timeout=300,
        check=False,
    )


def _output(proc):
    return f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


def _load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="session")
def promtool():
    """The real promtool; missing, it fails the tests unless HOMELAB_ALLOW_NO_PROMTOOL=1."""
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("HOMELAB_ALLOW_NO_PROMTOOL") == "1":
            pytest.skip("promtool not installed")
        pytest.fail("promtool is missing: apt-get install prometheus (Debian's package provides /usr/bin/promtool)")
    return path


@pytest.fixture
def rules_dir(tmp_path):
    """A directory holding the rendered rule files of RULE_FILES."""
    render_rule_files(tmp_path)
    return tmp_path


# --- promtool check rules ------------------------------------------------------


def test_check_rules_accepts_the_default_rules(promtool, rules_dir):
    proc = _run(promtool, "check", "rules", "rules.yml", cwd=rules_dir)
    assert proc.returncode == 0, _output(proc)
    assert f"SUCCESS: {len(ALL_ALERTS)} rules found" in proc.stdout + proc.stderr, _output(proc)


def test_check_rules_accepts_json_as_written_for_nixos(promtool, tmp_path):
    (tmp_path / "rules.json").write_text(json.dumps(alert_rules()), encoding="utf-8")
    proc = _run(promtool, "check", "rules", "rules.json", cwd=tmp_path)
    assert proc.returncode == 0, _output(proc)


@pytest.mark.parametrize(
    "settings",
    [
        CUSTOM_SETTINGS,
        {"nix_store_bytes": 1e20, "network_bytes_per_second": 12.5e6, "clock_skew_seconds": 1e-5},
        {"disk_percent": 99.5, "host_down_for": "2h", "for_override": "0s"},
    ],
    ids=["custom", "extreme-numbers", "durations"],
)
def test_check_rules_accepts_custom_settings(promtool, tmp_path, settings):
    (tmp_path / "rules.yml").write_text(_as_the_role_writes_it(alert_rules(settings)), encoding="utf-8")
    proc = _run(promtool, "check", "rules", "rules.yml", cwd=tmp_path)
    assert proc.returncode == 0, _output(proc)


@pytest.mark.parametrize(
    ("field", "broken"),
    [("expr", 'up{job="node" == 0'), ("annotation", "{{ $labels.instance ")],
)
def test_check_rules_rejects_a_broken_rule(promtool, tmp_path, field, broken):
    """The check is real: one broken expression or template fails it, naming the rule."""
    document = alert_rules()
    rule = document["groups"][0]["rules"][0]
    if field == "expr":
        rule["expr"] = broken
    else:
        rule["annotations"]["summary"] = broken
    (tmp_path / "rules.yml").write_text(_as_the_role_writes_it(document), encoding="utf-8")
    proc = _run(promtool, "check", "rules", "rules.yml", cwd=tmp_path)
    assert proc.returncode != 0, _output(proc)
    assert rule["alert"] in proc.stdout + proc.stderr, _output(proc)


# --- promtool test rules -------------------------------------------------------


def test_there_are_rule_test_files():
    assert len(TEST_FILES) >= 5, DATA


@pytest.mark.parametrize("path", TEST_FILES, ids=os.path.basename)
def test_promtool_rule_tests_pass(promtool, rules_dir, path):
    shutil.copy(path, rules_dir)
    proc = _run(promtool, "test", "rules", os.path.basename(path), cwd=rules_dir)
    assert proc.returncode == 0, f"promtool test rules {os.path.basename(path)} failed:\n{_output(proc)}"
    assert "SUCCESS" in proc.stdout + proc.stderr, _output(proc)


def test_a_wrong_expectation_fails_promtool(promtool, rules_dir):
    """The rule tests are real: a test expecting HostDown after 30s of up == 0 (not 1m) fails."""
    wrong = {
        "rule_files": ["rules_labels.yml"],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [{"series": 'up{job="node", instance="p620:9100"}', "values": "0x10"}],
                "alert_rule_test": [
                    {
                        "eval_time": "30s",
                        "alertname": "HostDown",
                        "exp_alerts": [
                            {"exp_labels": {"severity": "critical", "job": "node", "instance": "p620:9100"}}
                        ],
                    }
                ],
            }
        ],
    }
    (rules_dir / "wrong.yml").write_text(yaml.safe_dump(wrong), encoding="utf-8")
    proc = _run(promtool, "test", "rules", "wrong.yml", cwd=rules_dir)
    assert proc.returncode != 0, _output(proc)
    assert "FAILED" in proc.stdout + proc.stderr, _output(proc)


# --- the test files cover every alert ------------------------------------------


def _alert_tests(rule_file=None):
    """Every alert_rule_test, optionally only those of the test files that use ``rule_file``."""
    found = []
    for path in TEST_FILES:
        data = _load(path)
        if rule_file is not None and data.get("rule_files") != [rule_file]:
            continue
        for test in data.get("tests") or []:
            for alert_test in test.get("alert_rule_test") or []:
                found.append(alert_test)
    return found


def test_test_files_use_the_rendered_rule_files():
    for path in TEST_FILES:
        rule_files = _load(path).get("rule_files")
        assert rule_files and set(rule_files) <= set(RULE_FILES), f"{path}: rule_files {rule_files!r}"


def test_test_files_name_only_real_alerts():
    unknown = sorted({t["alertname"] for t in _alert_tests()} - set(ALL_ALERTS))
    assert not unknown, f"tests of alerts that do not exist: {unknown}"


@pytest.mark.parametrize("alert", ALL_ALERTS)
def test_every_alert_fires_and_stays_quiet_with_default_settings(alert):
    tests = [t for t in _alert_tests("rules_labels.yml") + _alert_tests("rules.yml") if t["alertname"] == alert]
    firing = [t for t in tests if t.get("exp_alerts")]
    quiet = [t for t in tests if not t.get("exp_alerts")]
    assert firing, f"no test where {alert} fires"
    assert quiet, f"no test where {alert} stays quiet"
    for t in firing:
        for expected in t["exp_alerts"]:
            assert expected.get("exp_labels", {}).get("severity"), f"{alert}: expected alert without severity"


@pytest.mark.parametrize("alert", ALL_ALERTS)
def test_every_alert_annotation_is_checked(alert):
    checked = [
        expected
        for t in _alert_tests("rules.yml")
        if t["alertname"] == alert
        for expected in t.get("exp_alerts") or []
        if expected.get("exp_annotations")
    ]
    assert checked, f"no test checks the annotations of {alert}"
    for expected in checked:
        assert set(expected["exp_annotations"]) == {"summary", "description", "runbook_url"}
