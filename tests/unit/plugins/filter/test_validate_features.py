"""The validate_features filter, and the real registry in roles/base/vars/feature_registry.yml."""

import os

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.filter.validate_features import FilterModule
from ansible_collections.homelab.nixos.plugins.module_utils._features import (
    CATEGORIES,
    HOST_KINDS,
    registry_problems,
)

validate_features = FilterModule().filters()["validate_features"]


@pytest.fixture(scope="module")
def registry(repo_root):
    path = os.path.join(repo_root, "roles", "base", "vars", "feature_registry.yml")
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    assert list(data) == ["base_feature_registry"]
    return data["base_feature_registry"]


# --- the filter ------------------------------------------------------------------


def test_filter_is_registered():
    assert set(FilterModule().filters()) == {"validate_features"}


def test_filter_returns_sorted_enabled_features(registry):
    features = {
        "security.secrets": True,
        "networking.tailscale": True,
        "networking.tailscale_exit_node": True,
        "networking.subnet_router": True,
        "monitoring.exporters": True,
        "monitoring.server": True,
        "ai.ollama": False,
    }
    assert validate_features(features, registry, "server") == sorted(name for name, on in features.items() if on)


def test_filter_raises_one_error_with_every_problem(registry):
    features = ["ai.olama", "ai.ollama_rocm", "ai.ollama_cuda", "networking.tailscale_exit_node"]
    with pytest.raises(AnsibleFilterError) as exc:
        validate_features(features, registry, "laptop")
    message = str(exc.value)
    assert message.startswith("validate_features: 6 feature problems:\n")
    for expected in (
        "- unknown feature 'ai.olama' (did you mean 'ai.ollama'?)",
        "- 'ai.ollama_rocm' requires 'ai.ollama', which is not enabled",
        "- 'ai.ollama_cuda' requires 'ai.ollama', which is not enabled",
        "- 'ai.ollama_cuda' conflicts with 'ai.ollama_rocm': enable only one",
        "- 'networking.tailscale_exit_node' requires 'networking.tailscale', which is not enabled",
        "- 'networking.tailscale_exit_node' is not meant for laptop hosts (allowed on: server)",
    ):
        assert expected in message
    assert exc.value.__cause__ is not None


def test_filter_rejects_an_invalid_host_kind(registry):
    with pytest.raises(AnsibleFilterError, match="host kind 'desktop' is not one of workstation, laptop, server, vm"):
        validate_features([], registry, "desktop")


def test_filter_reports_a_broken_registry():
    with pytest.raises(AnsibleFilterError, match="registry: must be a mapping"):
        validate_features([], "not a registry", "vm")


# --- the fleet, as the seed describes it, passes ------------------------------------

FLEET = {
    "p620": (
        "workstation",
        [
            "security.secrets",
            "security.firewall",
            "security.hardening",
            "networking.tailscale",
            "networking.nfs_server",
            "programs.desktop.gnome",
            "operations.remote_desktop",
            "operations.nix_serve",
            "operations.build_host",
            "ai.ollama",
            "ai.ollama_rocm",
            "monitoring.exporters",
            "monitoring.gpu_amd",
            "monitoring.ollama",
            "monitoring.logging.client",
            "virtualization.microvm",
            "development.nix",
            "backup.client",
        ],
    ),
    "razer": (
        "laptop",
        [
            "security.secrets",
            "networking.tailscale",
            "networking.wireless",
            "ai.ollama",
            "ai.ollama_cuda",
            "monitoring.exporters",
            "monitoring.gpu_nvidia",
            "operations.binary_cache_client",
        ],
    ),
    "p510": (
        "server",
        [
            "security.secrets",
            "security.firewall",
            "networking.tailscale",
            "networking.nfs_server",
            "media.plex",
            "media.tautulli",
            "media.nzbget",
            "media.sonarr",
            "media.radarr",
            "media.lidarr",
            "media.prowlarr",
            "ai.ollama",
            "ai.ollama_cuda",
            "backup.target",
            "monitoring.exporters",
        ],
    ),
    "dex5550": (
        "server",
        [
            "security.secrets",
            "security.firewall",
            "security.fail2ban",
            "networking.tailscale",
            "networking.tailscale_exit_node",
            "networking.subnet_router",
            "networking.dns",
            "networking.reverse_proxy",
            "monitoring.exporters",
            "monitoring.server",
            "monitoring.logging.server",
            "monitoring.logging.client",
            "backup.target",
        ],
    ),
    "samsung": ("laptop", ["security.secrets", "networking.tailscale", "operations.laptop_power"]),
    "nixvm": ("vm", ["virtualization.guest", "development.python", "development.nix", "programs.direnv"]),
}


@pytest.mark.parametrize("host", sorted(FLEET))
def test_seed_fleet_features_are_valid(registry, host):
    kind, features = FLEET[host]
    assert validate_features(features, registry, kind) == sorted(features)


# --- the real registry is self-consistent -------------------------------------------


def test_registry_has_no_problems(registry):
    assert registry_problems(registry) == []


def test_registry_size_and_categories(registry):
    assert 40 <= len(registry) <= 70
    used = {entry["category"] for entry in registry.values()}
    assert used == set(CATEGORIES)


def test_registry_entries_are_complete(registry):
    for name, entry in registry.items():
        assert set(entry) == {"category", "description", "requires", "conflicts", "host_kinds"}, name
        assert name.split(".")[0] == entry["category"], name
        assert entry["category"] in CATEGORIES, name
        assert entry["description"].strip(), name
        assert entry["host_kinds"], name
        assert set(entry["host_kinds"]) <= set(HOST_KINDS), name
        assert len(set(entry["host_kinds"])) == len(entry["host_kinds"]), name


def test_registry_references_exist(registry):
    for name, entry in registry.items():
        for target in entry["requires"] + entry["conflicts"]:
            assert target in registry, f"{name} -> {target}"
            assert target != name


def test_registry_conflicts_hold_both_ways(registry):
    """Each conflict is declared once, and the check sees it whichever feature is listed first."""
    for name, entry in registry.items():
        for other in entry["conflicts"]:
            assert name not in registry[other]["conflicts"], f"{name} <-> {other} declared twice"
            for order in ([name, other], [other, name]):
                features = set(order) | set(entry["requires"]) | set(registry[other]["requires"])
                kind = next(k for k in HOST_KINDS if k in entry["host_kinds"] and k in registry[other]["host_kinds"])
                with pytest.raises(AnsibleFilterError, match="conflicts with"):
                    validate_features(list(features), registry, kind)


def test_registry_rules_from_the_seed(registry):
    assert registry["ai.ollama_rocm"]["requires"] == ["ai.ollama"]
    assert "ai.ollama_cuda" in registry["ai.ollama_rocm"]["conflicts"]
    assert registry["networking.tailscale_exit_node"]["requires"] == ["networking.tailscale"]
    assert registry["networking.tailscale_exit_node"]["host_kinds"] == ["server"]
    for name, entry in registry.items():
        if name.startswith("programs.desktop."):
            assert not {"server", "vm"} & set(entry["host_kinds"]), name


def test_every_feature_can_be_enabled_with_its_requirements(registry):
    """Each feature plus everything it requires, transitively, validates on each allowed kind."""
    for name, entry in registry.items():
        needed = {name}
        pending = [name]
        while pending:
            for target in registry[pending.pop()]["requires"]:
                if target not in needed:
                    needed.add(target)
                    pending.append(target)
        for kind in entry["host_kinds"]:
            assert validate_features(sorted(needed), registry, kind) == sorted(needed)
