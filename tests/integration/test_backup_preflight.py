"""Bad backup input stops playbooks/backup.yml before the host is touched.

As in test_security_preflight, the play runs against the controller itself
(connection local, check mode, rendering into a temporary directory).
"""

import os
import sys

import pytest
import yaml
from controller_play import ROOT, run_playbook

GOOD = {
    "ansible_connection": "local",
    "ansible_python_interpreter": sys.executable,
    "ansible_user": "admin",
    "base_host_kind": "server",
    "backup_password": "a-vault-value-of-24-chars",
}


def _task_names(role, part):
    with open(os.path.join(ROOT, "roles", role, "tasks", part), encoding="utf-8") as f:
        return {f"homelab.nixos.{role} : {task['name']}" for task in yaml.safe_load(f)}


def _run(tmp_path, **overrides):
    host_vars = dict(GOOD, base_nixos_render=True, base_nixos_render_dir=str(tmp_path / "render"))
    host_vars.update(overrides)
    return run_playbook(tmp_path, "playbooks/backup.yml", "p620", host_vars)


def _results(data):
    """[(task name, failed, message)] in the order the tasks ran on p620."""
    return [
        (task["task"]["name"], task["hosts"]["p620"].get("failed", False), task["hosts"]["p620"].get("msg", ""))
        for play in data["plays"]
        for task in play["tasks"]
        if "p620" in task["hosts"]
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"backup_password": ""}, "exactly one of backup_password"),
        ({"backup_password_file": "/run/agenix/backup"}, "exactly one of backup_password"),
        ({"backup_password": "short"}, "16 characters or more"),
        ({"backup_password": "", "backup_password_file": "/run/agenix/undeclared"}, "declared in secrets_definitions"),
        ({"backup_paths": ["home"]}, "paths must hold absolute paths, got 'home'"),
        ({"backup_retention_local": {"keep_daily": 0}}, "keep_daily must be whole numbers of at least 1"),
        ({"backup_check_read_data_subset": "lots"}, "check_read_data_subset must be like 10%"),
        ({"backup_remote_target": "nosuchhost"}, "a remote target that is in the inventory (got nosuchhost)"),
    ],
)
def test_bad_input_fails_in_the_preflight(tmp_path, overrides, message):
    rc, data = _run(tmp_path, **overrides)
    assert rc != 0
    results = _results(data)
    failed = [(name, msg) for name, bad, msg in results if bad]
    assert failed and message in failed[0][1], results
    allowed = (
        _task_names("backup", "preflight.yml") | _task_names("base", "context.yml") | _task_names("base", "facts.yml")
    )
    # (argument_specs validation runs on the controller too)
    touched = [name for name, _bad, _msg in results if name not in allowed and "Validating arguments" not in name]
    assert touched == [], f"tasks that ran before the failing preflight: {touched}"


def test_a_host_without_a_remote_tier_passes_the_preflight(tmp_path):
    # No backup_targets group in this inventory: the local tier only.
    _rc, data = _run(tmp_path, backup_remote_target=False)
    preflight = [r for r in _results(data) if r[0] in _task_names("backup", "preflight.yml")]
    assert len(preflight) == 2 and not any(bad for _name, bad, _msg in preflight), preflight
