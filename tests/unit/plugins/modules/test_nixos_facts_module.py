"""nixos_facts as Ansible runs it, against fake root trees."""

import os

from ansible_collections.homelab.nixos.plugins.modules import nixos_facts

NIXOS_RELEASE = 'ID=nixos\nVERSION_ID="24.11"\nVERSION_CODENAME=vicuna\nBUILD_ID="24.11.20241231.edf04b7"\n'
SYSTEM = "/nix/store/bbbb-nixos-system-p620-24.11"


def _write(root, logical, text=""):
    path = os.path.join(str(root), logical.lstrip("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _link(root, logical, target):
    path = os.path.join(str(root), logical.lstrip("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)


def _nixos_root(tmp_path):
    _write(tmp_path, "/etc/os-release", NIXOS_RELEASE)
    _write(tmp_path, SYSTEM + "/nixos-version", "24.11.20241231.edf04b7")
    _write(tmp_path, "/nix/store/kkkk-linux/bzImage")
    _link(tmp_path, SYSTEM + "/kernel", "/nix/store/kkkk-linux/bzImage")
    _link(tmp_path, "/nix/var/nix/profiles/system-7-link", SYSTEM)
    _link(tmp_path, "/nix/var/nix/profiles/system", "system-7-link")
    _link(tmp_path, "/run/current-system", SYSTEM)
    _link(tmp_path, "/run/booted-system", SYSTEM)
    _write(tmp_path, "/etc/nixos/flake.nix", "{ }")
    return str(tmp_path)


def _snapshot(root):
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        found.extend(os.path.join(dirpath, name) for name in dirnames + filenames)
    return sorted(found)


def test_facts_of_a_nixos_root(run_module, tmp_path):
    root = _nixos_root(tmp_path)
    before = _snapshot(root)
    failed, result = run_module(nixos_facts.main, {"root": root, "hostname": "p620"})
    assert not failed
    assert result["changed"] is False
    facts = result["ansible_facts"]["homelab_nixos"]
    assert facts["is_nixos"] is True
    assert facts["version"] == "24.11"
    assert facts["current_system"] == SYSTEM
    assert facts["current_generation"] == 7
    assert [g["number"] for g in facts["generations"]] == [7]
    assert facts["generations"][0]["current"] is True
    assert facts["reboot_required"] is False
    assert facts["configuration_type"] == "flake"
    assert facts["flake_uri"] == "/etc/nixos#p620"
    assert facts["nixpkgs_version"] == "24.11.20241231.edf04b7"
    assert _snapshot(root) == before


def test_check_mode_gives_the_same_facts(run_module, tmp_path):
    root = _nixos_root(tmp_path)
    _failed, normal = run_module(nixos_facts.main, {"root": root, "hostname": "p620"})
    failed, checked = run_module(nixos_facts.main, {"root": root, "hostname": "p620"}, check_mode=True)
    assert not failed
    assert checked["changed"] is False
    assert checked["ansible_facts"] == normal["ansible_facts"]


def test_config_dir_parameter(run_module, tmp_path):
    root = _nixos_root(tmp_path)
    _write(root, "/srv/classic/configuration.nix", "{ }")
    _failed, result = run_module(nixos_facts.main, {"root": root, "config_dir": "/srv/classic"})
    facts = result["ansible_facts"]["homelab_nixos"]
    assert (facts["config_dir"], facts["configuration_type"], facts["flake_uri"]) == ("/srv/classic", "classic", None)


def test_non_nixos_host_does_not_fail(run_module, tmp_path):
    _write(tmp_path, "/etc/os-release", "ID=debian\nVERSION_ID=12\n")
    failed, result = run_module(nixos_facts.main, {"root": str(tmp_path)})
    assert not failed
    assert result["changed"] is False
    facts = result["ansible_facts"]["homelab_nixos"]
    assert facts["is_nixos"] is False
    assert facts["version"] is None
    assert facts["current_system"] is None
    assert facts["generations"] == []


def test_this_machine_does_not_fail(run_module):
    """The real / of the test machine: NixOS or not, the module only reports."""
    failed, result = run_module(nixos_facts.main, {})
    assert not failed
    assert isinstance(result["ansible_facts"]["homelab_nixos"]["is_nixos"], bool)


def test_unknown_parameter_fails(run_module):
    failed, result = run_module(nixos_facts.main, {"bogus": 1})
    assert failed
    assert "bogus" in result["msg"]
