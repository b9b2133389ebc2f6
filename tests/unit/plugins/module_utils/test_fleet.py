import pytest

from ansible_collections.homelab.nixos.plugins.module_utils._fleet import FleetError, fleet_hosts

HOSTVARS = {
    "p620": {
        "group_names": ["build_host", "gpu_amd", "nixos", "workstations"],
        "base_host_kind": "workstation",
        "base_kernel_params": ["amd_pstate=active"],
    },
    "razer": {
        "group_names": ["gpu_nvidia", "laptops", "nixos"],
        "base_host_kind": "laptop",
        "base_kernel_params": ["intel_pstate=active"],
        "ansible_host": "10.89.60.12",
    },
    "nixvm": {
        "group_names": ["nixos", "vms"],
        "base_host_kind": "vm",
        "ansible_facts": {"homelab_hardware": {"cpu": {"vendor": "amd"}}},
    },
    "bare": {},
}


def test_describes_hosts_from_groups_and_vars():
    p620, razer, nixvm, bare = fleet_hosts(HOSTVARS, ["p620", "razer", "nixvm", "bare"])
    assert p620 == {
        "name": "p620",
        "address": "p620",
        "kind": "workstation",
        "cpu": "amd",
        "gpu": "amd",
        "roles": ["build_host", "workstations"],
        "nixos": True,
    }
    assert razer["address"] == "10.89.60.12" and razer["cpu"] == "intel" and razer["gpu"] == "nvidia"
    assert nixvm["cpu"] == "amd" and nixvm["gpu"] == "none" and nixvm["roles"] == ["vms"]
    assert bare == {
        "name": "bare",
        "address": "bare",
        "kind": "unknown",
        "cpu": "other",
        "gpu": "none",
        "roles": [],
        "nixos": False,
    }


def test_unknown_hosts_are_named():
    with pytest.raises(FleetError, match="ghost, phantom"):
        fleet_hosts(HOSTVARS, ["p620", "phantom", "ghost"])
