"""Unit tests of feature-flag validation against a small registry."""

import pytest

from ansible_collections.homelab.nixos.plugins.module_utils._features import (
    HOST_KINDS,
    FeatureError,
    enabled_features,
    feature_problems,
    registry_problems,
    suggestions,
    validate_features,
)

ALL = tuple(HOST_KINDS)


def _entry(category, requires=(), conflicts=(), host_kinds=ALL, description="A feature."):
    return {
        "category": category,
        "description": description,
        "requires": list(requires),
        "conflicts": list(conflicts),
        "host_kinds": list(host_kinds),
    }


REGISTRY = {
    "ai.ollama": _entry("ai", host_kinds=["workstation", "laptop", "server"]),
    "ai.ollama_rocm": _entry(
        "ai", requires=["ai.ollama"], conflicts=["ai.ollama_cuda"], host_kinds=["workstation", "laptop", "server"]
    ),
    "ai.ollama_cuda": _entry("ai", requires=["ai.ollama"], host_kinds=["workstation", "laptop", "server"]),
    "security.secrets": _entry("security"),
    "networking.tailscale": _entry("networking", requires=["security.secrets"]),
    "networking.tailscale_exit_node": _entry("networking", requires=["networking.tailscale"], host_kinds=["server"]),
    "programs.desktop.gnome": _entry("programs", host_kinds=["workstation", "laptop"]),
    "operations.laptop_power": _entry("operations", conflicts=["programs.desktop.gnome"], host_kinds=["laptop"]),
    "virtualization.guest": _entry("virtualization", host_kinds=["vm"]),
}


# --- success -----------------------------------------------------------------


def test_valid_list_returns_sorted_features():
    features = ["networking.tailscale", "security.secrets", "ai.ollama_rocm", "ai.ollama"]
    assert validate_features(features, REGISTRY, "workstation") == [
        "ai.ollama",
        "ai.ollama_rocm",
        "networking.tailscale",
        "security.secrets",
    ]
    assert feature_problems(features, REGISTRY, "workstation") == []


def test_mapping_counts_only_true_values():
    features = {"ai.ollama": True, "ai.ollama_cuda": True, "ai.ollama_rocm": False}
    assert validate_features(features, REGISTRY, "server") == ["ai.ollama", "ai.ollama_cuda"]


def test_requirements_are_not_added():
    with pytest.raises(FeatureError):
        validate_features(["ai.ollama_rocm"], REGISTRY, "workstation")


@pytest.mark.parametrize("empty", [None, [], {}, (), {"ai.ollama": False}])
def test_no_features(empty):
    assert validate_features(empty, REGISTRY, "vm") == []


def test_duplicates_collapse():
    assert validate_features(["security.secrets", "security.secrets"], REGISTRY, "vm") == ["security.secrets"]


def test_entries_may_omit_optional_keys():
    registry = {"programs.zsh": {"category": "programs", "description": "Zsh."}}
    assert registry_problems(registry) == []
    assert validate_features(["programs.zsh"], registry, "laptop") == ["programs.zsh"]


# --- each kind of problem ------------------------------------------------------


def test_unknown_feature_with_suggestion():
    assert feature_problems(["ai.olama"], REGISTRY, "server") == [
        "unknown feature 'ai.olama' (did you mean 'ai.ollama'?)"
    ]


def test_unknown_feature_without_category_suggests_the_full_name():
    problems = feature_problems(["tailscale"], REGISTRY, "server")
    assert problems == ["unknown feature 'tailscale' (did you mean 'networking.tailscale'?)"]


def test_unknown_feature_without_any_close_name():
    assert feature_problems(["zzzzzz"], REGISTRY, "server") == ["unknown feature 'zzzzzz'"]


def test_unknown_feature_set_to_false_is_still_reported():
    assert feature_problems({"ai.olama": False}, REGISTRY, "server") == [
        "unknown feature 'ai.olama' (did you mean 'ai.ollama'?)"
    ]


def test_missing_requirements():
    assert feature_problems(["ai.ollama_rocm"], REGISTRY, "workstation") == [
        "'ai.ollama_rocm' requires 'ai.ollama', which is not enabled"
    ]


def test_requirement_set_to_false_is_missing():
    features = {"networking.tailscale": True, "security.secrets": False}
    assert feature_problems(features, REGISTRY, "laptop") == [
        "'networking.tailscale' requires 'security.secrets', which is not enabled"
    ]


def test_several_missing_requirements_in_one_line():
    stack = _entry("ai", requires=["ai.ollama", "security.secrets"], host_kinds=["server"])
    registry = dict(REGISTRY, **{"ai.stack": stack})
    assert feature_problems(["ai.stack"], registry, "server") == [
        "'ai.stack' requires 'ai.ollama', 'security.secrets', which are not enabled"
    ]


def test_conflict_declared_on_the_first_side():
    problems = feature_problems(["ai.ollama", "ai.ollama_rocm", "ai.ollama_cuda"], REGISTRY, "server")
    assert problems == ["'ai.ollama_cuda' conflicts with 'ai.ollama_rocm': enable only one"]


def test_conflict_declared_only_on_the_other_side_is_found():
    # Only operations.laptop_power declares the conflict; enabling gnome first changes nothing.
    problems = feature_problems({"programs.desktop.gnome": True, "operations.laptop_power": True}, REGISTRY, "laptop")
    assert problems == ["'operations.laptop_power' conflicts with 'programs.desktop.gnome': enable only one"]


def test_conflict_declared_on_both_sides_is_reported_once():
    registry = dict(REGISTRY)
    registry["ai.ollama_cuda"] = _entry(
        "ai", requires=["ai.ollama"], conflicts=["ai.ollama_rocm"], host_kinds=["workstation", "laptop", "server"]
    )
    problems = feature_problems(["ai.ollama", "ai.ollama_rocm", "ai.ollama_cuda"], registry, "server")
    assert problems == ["'ai.ollama_cuda' conflicts with 'ai.ollama_rocm': enable only one"]


def test_feature_not_allowed_on_host_kind():
    features = ["security.secrets", "networking.tailscale", "networking.tailscale_exit_node"]
    assert feature_problems(features, REGISTRY, "laptop") == [
        "'networking.tailscale_exit_node' is not meant for laptop hosts (allowed on: server)"
    ]
    assert validate_features(features, REGISTRY, "server") == sorted(features)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("desktop", "host kind 'desktop' is not one of workstation, laptop, server, vm"),
        ("sever", "host kind 'sever' is not one of workstation, laptop, server, vm (did you mean 'server'?)"),
        (None, "host kind None is not one of workstation, laptop, server, vm"),
        (3, "host kind 3 is not one of workstation, laptop, server, vm"),
    ],
)
def test_invalid_host_kind(kind, expected):
    assert feature_problems(["security.secrets"], REGISTRY, kind) == [expected]


def test_malformed_host_features():
    assert feature_problems("ai.ollama", REGISTRY, "server") == [
        "host features must be a list of names or a mapping of name to true/false, got str"
    ]
    assert feature_problems({"ai.ollama": "yes"}, REGISTRY, "server") == [
        "feature 'ai.ollama' must be set to true or false, got 'yes'"
    ]
    assert feature_problems([1, "ai.ollama"], REGISTRY, "server") == ["feature name 1 is not a string"]
    assert feature_problems({2: True}, REGISTRY, "server") == ["feature name 2 is not a string"]


def test_enabled_features_rejects_malformed_input():
    assert enabled_features({"b": True, "a": True, "c": False}) == ["a", "b"]
    with pytest.raises(FeatureError, match="got int"):
        enabled_features(5)


# --- all at once -----------------------------------------------------------------


def test_all_problems_are_reported_at_once():
    features = {
        "ai.olama": True,  # unknown
        "ai.ollama_rocm": True,  # needs ai.ollama; conflicts with cuda
        "ai.ollama_cuda": True,  # needs ai.ollama
        "networking.tailscale_exit_node": True,  # needs tailscale; server only
        "virtualization.guest": True,  # vm only
    }
    problems = feature_problems(features, REGISTRY, "laptop")
    assert problems == [
        "unknown feature 'ai.olama' (did you mean 'ai.ollama'?)",
        "'ai.ollama_cuda' requires 'ai.ollama', which is not enabled",
        "'ai.ollama_rocm' requires 'ai.ollama', which is not enabled",
        "'networking.tailscale_exit_node' requires 'networking.tailscale', which is not enabled",
        "'ai.ollama_cuda' conflicts with 'ai.ollama_rocm': enable only one",
        "'networking.tailscale_exit_node' is not meant for laptop hosts (allowed on: server)",
        "'virtualization.guest' is not meant for laptop hosts (allowed on: vm)",
    ]
    with pytest.raises(FeatureError) as exc:
        validate_features(features, REGISTRY, "laptop")
    assert exc.value.problems == problems
    message = str(exc.value)
    assert message.startswith("7 feature problems:\n- unknown feature 'ai.olama'")
    assert all("- " + problem in message for problem in problems)


def test_invalid_kind_and_unknown_feature_together():
    problems = feature_problems(["ai.ollama", "nope"], REGISTRY, "lapto")
    assert problems == [
        "host kind 'lapto' is not one of workstation, laptop, server, vm (did you mean 'laptop'?)",
        "unknown feature 'nope'",
    ]


def test_single_problem_message_is_singular():
    with pytest.raises(FeatureError, match=r"^1 feature problem:\n- unknown feature 'x'$"):
        validate_features(["x"], REGISTRY, "vm")


# --- registry consistency --------------------------------------------------------


def test_suggestions_prefer_a_matching_last_part():
    assert suggestions("ollama", REGISTRY)[0] == "ai.ollama"
    assert suggestions(None, REGISTRY) == []


def test_registry_must_be_a_mapping():
    assert registry_problems(["ai.ollama"]) == ["registry: must be a mapping of feature name to entry, got list"]
    assert feature_problems([], None, "vm") == ["registry: must be a mapping of feature name to entry, got NoneType"]


def test_registry_entry_problems_are_all_listed():
    registry = {
        "ai.a": {
            "category": "ai",
            "description": "",
            "requires": ["ai.missng", "ai.a"],
            "conflicts": "ai.b",
            "host_kinds": ["desktop"],
            "extra": 1,
        },
        "ai.b": {"category": "gaming", "description": "B.", "requires": [3]},
        "cloud.c": {"category": "ai", "description": "C.", "host_kinds": []},
        "cloud.d": "not a mapping",
        "ai.missing": _entry("ai"),
    }
    assert registry_problems(registry) == [
        "registry: 'ai.a' has unknown keys 'extra'",
        "registry: 'ai.a' needs a description",
        "registry: 'ai.a' has unknown host kinds 'desktop' (known: workstation, laptop, server, vm)",
        "registry: 'ai.a'.conflicts must be a list of names, got 'ai.b'",
        "registry: 'ai.a' requires unknown feature 'ai.missng' (did you mean 'ai.missing'?)",
        "registry: 'ai.a' requires itself",
        "registry: 'ai.b' has category 'gaming', not one of ai, backup, cloud, development, media, monitoring, "
        "networking, operations, programs, security, virtualization",
        "registry: 'ai.b'.requires holds 3, which is not a feature name",
        "registry: 'cloud.c' is in category 'ai' but not named 'ai.*'",
        "registry: 'cloud.c' has an empty host_kinds list: it could never be enabled",
        "registry: 'cloud.d' must be a mapping, got str",
    ]


def test_registry_requires_and_conflicts_the_same_feature():
    registry = {"ai.a": _entry("ai", requires=["ai.b"], conflicts=["ai.b"]), "ai.b": _entry("ai")}
    assert registry_problems(registry) == ["registry: 'ai.a' both requires and conflicts with 'ai.b'"]


def test_registry_requirement_on_a_narrower_host_kind():
    registry = {
        "ai.a": _entry("ai", requires=["ai.b"], host_kinds=["server", "vm", "laptop"]),
        "ai.b": _entry("ai", host_kinds=["server"]),
    }
    assert registry_problems(registry) == [
        "registry: 'ai.a' is allowed on laptop, vm but requires 'ai.b', which is not"
    ]


def test_registry_feature_that_can_never_be_enabled():
    registry = {
        "ai.a": _entry("ai", requires=["ai.b", "ai.c"]),
        "ai.b": _entry("ai", requires=["ai.d"]),
        "ai.c": _entry("ai"),
        "ai.d": _entry("ai", conflicts=["ai.c"]),
    }
    assert registry_problems(registry) == [
        "registry: 'ai.a' can never be enabled: it needs both 'ai.c' and 'ai.d', which conflict"
    ]


def test_broken_registry_is_reported_instead_of_host_problems():
    registry = dict(REGISTRY, **{"ai.bad": _entry("ai", requires=["ai.nothing"])})
    problems = feature_problems(["unknown.feature"], registry, "server")
    assert problems == ["registry: 'ai.bad' requires unknown feature 'ai.nothing'"]


def test_small_registry_is_consistent():
    assert registry_problems(REGISTRY) == []
