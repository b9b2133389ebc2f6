"""Bad inventory input stops the base role before any host is touched.

The play runs against the controller itself (connection local, check mode,
rendering into a temporary directory), so a preflight that wrongly passed
could still not change this machine.
"""

import json
import os
import subprocess
import sys

import pytest
from controller_play import run_playbook

GOOD = {
    "ansible_connection": "local",
    "ansible_python_interpreter": sys.executable,
    "base_host_kind": "server",
    "base_features": ["networking.tailscale", "security.secrets"],
}


def _run(tmp_path, host="p620", check=True, **overrides):
    host_vars = dict(GOOD, base_nixos_render=True, base_nixos_render_dir=str(tmp_path / "render"))
    host_vars.update(overrides)
    return run_playbook(tmp_path, "playbooks/base.yml", host, host_vars, check=check)


def _failure(data, host):
    for play in data["plays"]:
        for task in play["tasks"]:
            result = task["hosts"].get(host, {})
            if result.get("failed"):
                return task["task"]["name"], result["msg"]
    raise AssertionError("no task failed")


@pytest.mark.parametrize(
    ("host", "overrides", "task", "reason"),
    [
        (
            "p620",
            {"base_features": ["networking.tailscal", "security.secrets"]},
            "Validate feature flags",
            "p620: unknown feature 'networking.tailscal' (did you mean 'networking.tailscale'",
        ),
        (
            "p620",
            {"base_features": ["networking.tailscale_exit_node", "security.secrets"], "base_host_kind": "laptop"},
            "Validate feature flags",
            "networking.tailscale_exit_node",
        ),
        ("Bad_Host", {}, "Check host name, host kind and rebuild settings", "host name must be a lower-case DNS label"),
        ("p620", {"base_host_kind": "mainframe"}, "Check host name, host kind and rebuild settings", "mainframe"),
        (
            "p620",
            {"base_nixos_rebuild_action": "rollforward"},
            "Validating arguments against arg spec 'main' - Foundation of every homelab.nixos play",
            "value of base_nixos_rebuild_action must be one of: switch, boot, test, build, dry-build, dry-activate,",
        ),
    ],
)
def test_bad_input_fails_before_touching_the_host(tmp_path, host, overrides, task, reason):
    rc, data = _run(tmp_path, host=host, **overrides)
    assert rc != 0
    failed_task, message = _failure(data, host)
    assert failed_task.endswith(task), failed_task
    assert reason in message
    # One line of reason (ansible-core prefixes argument-spec failures with a header line).
    lines = [line for line in message.splitlines() if line.strip() and line != "Validation of arguments failed:"]
    assert len(lines) == 1, message
    stats = data["stats"][host]
    assert stats["changed"] == 0 and stats["failures"] == 1
    assert not (tmp_path / "render").exists()


def test_feature_problems_are_reported_all_at_once(tmp_path):
    rc, data = _run(
        tmp_path,
        base_features=["ai.ollama_rocm", "ai.ollama_cuda", "media.tautulli", "bogus.flag"],
    )
    assert rc != 0
    _task, message = _failure(data, "p620")
    for fragment in ("bogus.flag", "ai.ollama_rocm", "ai.ollama_cuda", "media.tautulli"):
        assert fragment in message


def test_good_input_writes_parsable_modules(tmp_path, nix_instantiate):
    """The NixOS backend on a flake checkout, with the rebuild left to the user."""
    flake = tmp_path / "flake"
    settings = {
        "base_backend_override": "nixos",
        "base_nixos_target": "flake",
        "base_nixos_flake_dir": str(flake),
        "base_nixos_rebuild_action": "none",
        "base_kernel_params": ["amd_pstate=active"],
        # playbooks/base.yml also runs config_history, which checks the NixOS system profile this
        # controller does not have (tests/lab/test_config_rollback_lab.py covers it on Debian).
        "config_history_enabled": False,
    }
    rc, data = _run(tmp_path, check=False, **settings)
    assert rc == 0, json.dumps(data["stats"])
    moddir = flake / "hosts" / "p620" / "homelab"
    assert sorted(os.listdir(moddir)) == ["base.nix", "default.nix"]
    base = (moddir / "base.nix").read_text()
    assert 'boot.kernelParams = [ "amd_pstate=active" ];' in base
    assert 'networking.hostName = "p620";' in base
    for name in ("base.nix", "default.nix"):
        subprocess.run([nix_instantiate, "--parse", str(moddir / name)], check=True, capture_output=True)
    # a second run changes nothing
    rc, data = _run(tmp_path, check=False, **settings)
    assert rc == 0 and data["stats"]["p620"]["changed"] == 0, json.dumps(data["stats"])
