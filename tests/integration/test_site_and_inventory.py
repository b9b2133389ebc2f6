"""site.yml and the inventory, through the real ansible-playbook / ansible-inventory."""

import glob
import ipaddress
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
HOSTS = {"p620", "razer", "p510", "dex5550", "samsung", "nixvm"}
GROUPS = {
    "workstations": {"p620"},
    "laptops": {"razer", "samsung"},
    "servers": {"p510", "dex5550"},
    "vms": {"nixvm"},
    "gpu_amd": {"p620"},
    "gpu_nvidia": {"razer", "p510"},
    "monitoring_server": {"dex5550"},
    "log_server": {"dex5550"},
    "media": {"p510"},
    "build_host": {"p620"},
    "backup_targets": {"p510", "dex5550"},
    "nixos": HOSTS,
}


def _ansible(tool, *args):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_FACT_CACHING="memory")
    return subprocess.run(
        [os.path.join(BIN, tool), *args], cwd=ROOT, capture_output=True, text=True, env=env, check=False
    )


@pytest.fixture(scope="module")
def inventory():
    proc = _ansible("ansible-inventory", "--list")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _members(inventory, group):
    return set(inventory.get(group, {}).get("hosts", []))


def test_groups_follow_the_seed_facts(inventory):
    assert set(inventory["_meta"]["hostvars"]) == HOSTS
    for group, hosts in GROUPS.items():
        assert _members(inventory, group) == hosts, group


def test_hosts_are_reached_by_name_and_nixos_python(inventory):
    for host, hostvars in inventory["_meta"]["hostvars"].items():
        assert "ansible_host" not in hostvars, host
        assert hostvars["ansible_python_interpreter"] == "/run/current-system/sw/bin/python3"


def test_no_ip_addresses_in_the_inventory():
    """Hosts are reached by name; only networks (CIDRs such as the LAN) are written as numbers."""
    for path in glob.glob(os.path.join(ROOT, "inventory", "**", "*.yml"), recursive=True):
        if os.sep + "lab" + os.sep in path:
            continue
        for token in re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b(?!/)", open(path).read()):
            with pytest.raises(ValueError):
                ipaddress.ip_address(token)
                raise AssertionError("%s: IP address %s" % (path, token))


def test_every_host_declares_a_kind_and_valid_features(inventory):
    for host, hostvars in inventory["_meta"]["hostvars"].items():
        assert hostvars["base_host_kind"] in {"workstation", "laptop", "server", "vm"}, host
        assert hostvars["base_features"], host


def test_site_syntax():
    proc = _ansible("ansible-playbook", "--syntax-check", "site.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_site_imports_every_playbook():
    site = yaml.safe_load(open(os.path.join(ROOT, "site.yml")))
    imported = {entry["ansible.builtin.import_playbook"] for entry in site}
    present = {os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "playbooks", "*.yml"))}
    assert imported == present


def test_every_role_in_a_play_has_a_tag():
    for path in glob.glob(os.path.join(ROOT, "playbooks", "*.yml")):
        for play in yaml.safe_load(open(path)):
            for role in play.get("roles", []):
                assert role.get("tags"), "%s: role %s has no tag" % (path, role.get("role"))


def test_tags_and_limit_select_work():
    proc = _ansible("ansible-playbook", "site.yml", "--list-tasks", "--tags", "base", "--limit", "p620")
    assert proc.returncode == 0, proc.stderr
    assert "homelab.nixos.base : Validate feature flags" in proc.stdout
    proc = _ansible("ansible-playbook", "site.yml", "--list-hosts", "--limit", "p620")
    assert proc.returncode == 0, proc.stderr
    hosts = {line.strip() for line in proc.stdout.splitlines()} & HOSTS
    assert hosts == {"p620"}
    proc = _ansible("ansible-playbook", "site.yml", "--list-tasks", "--tags", "no-such-tag")
    assert proc.returncode == 0
    assert "Validate feature flags" not in proc.stdout
