"""Bad security input stops playbooks/security.yml before any host is touched:
the preflight of every security role runs first, on the controller.

As in test_base_preflight, the play runs against the controller itself
(connection local, check mode, rendering into a temporary directory), so a
preflight that wrongly passed could still not change this machine.
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
    "base_features": ["networking.tailscale", "security.secrets"],
    "homelab_networks": {"lan": ["192.168.1.0/24"], "tailscale": ["100.64.0.0/10"]},
    "host_security_admins": ["admin"],
    "tailscale_install": False,
}
SECURITY_ROLES = ("ssh_hardening", "firewall", "kernel_hardening", "host_security", "tailscale", "secrets")


def _preflight_task_names():
    """Names of the tasks in the security roles' preflight.yml (all on the controller)."""
    names = set()
    for role in SECURITY_ROLES:
        with open(os.path.join(ROOT, "roles", role, "tasks", "preflight.yml"), encoding="utf-8") as f:
            names.update(f"homelab.nixos.{role} : {task['name']}" for task in yaml.safe_load(f))
    return names


def _context_task_names():
    """The base role's context tasks: they read facts and change nothing."""
    names = set()
    for part in ("context.yml", "facts.yml"):
        with open(os.path.join(ROOT, "roles", "base", "tasks", part), encoding="utf-8") as f:
            names.update(f"homelab.nixos.base : {task['name']}" for task in yaml.safe_load(f))
    return names


def _run(tmp_path, **overrides):
    host_vars = dict(GOOD, base_nixos_render=True, base_nixos_render_dir=str(tmp_path / "render"))
    host_vars.update(overrides)
    return run_playbook(tmp_path, "playbooks/security.yml", "p620", host_vars)


def _tasks_until_failure(data):
    ran = []
    for play in data["plays"]:
        for task in play["tasks"]:
            result = task["hosts"].get("p620", {})
            ran.append(task["task"]["name"])
            if result.get("failed"):
                return ran, result.get("msg", "")
    return ran, None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ssh_hardening_allow_from": ["10.0.0.1/8"]}, "has host bits set: did you mean 10.0.0.0/8"),
        ({"ssh_hardening_allow_from": ["nosuchnet"]}, "'nosuchnet' is neither a network in homelab_networks"),
        ({"host_security_admins": []}, "would leave no administrator"),
        ({"host_security_admins": ["alice"]}, "take sudo from admin, the user Ansible logs in as"),
        (
            {"firewall_extra_ports": [{"name": "ssh", "port": 22, "proto": "tcp", "allow_from": ["192.0.2.0/24"]}]},
            "is declared twice with different sources",
        ),
        (
            {"firewall_extra_ports": [{"name": "web", "port": 80, "proto": "tcp", "allow_from": ["300.1.1.1"]}]},
            "holds '300.1.1.1', which is not a valid IP address or CIDR",
        ),
    ],
)
def test_bad_input_fails_in_the_preflight(tmp_path, overrides, message):
    rc, data = _run(tmp_path, **overrides)
    assert rc != 0
    ran, failure = _tasks_until_failure(data)
    assert failure is not None and message in failure, (ran, failure)
    allowed = _preflight_task_names() | _context_task_names() | {"Preflight of every security role"}
    assert ran[-1] in _preflight_task_names(), ran[-1]
    touched = [name for name in ran if name not in allowed]
    assert touched == [], f"tasks that ran before the failing preflight: {touched}"
