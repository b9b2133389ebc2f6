"""Named sources resolved to CIDRs (plugins/module_utils/_sources.py)."""

import pytest

from ansible_collections.homelab.nixos.plugins.module_utils._sources import SourceError, cidr, contains, resolve_sources

NETWORKS = {"lan": ["192.168.1.0/24"], "tailscale": ["100.64.0.0/10"]}
HOSTVARS = {
    "dex5550": {"ansible_host": "10.89.60.14"},
    "p510": {"homelab_addresses": ["192.168.1.10", "100.100.1.2"]},
    "razer": {},
}
GROUPS = {
    "all": ["dex5550", "p510", "razer"],
    "monitoring_server": ["dex5550"],
    "media": ["p510"],
    "laptops": ["razer"],
}


def test_cidrs_networks_and_groups():
    result = resolve_sources(
        ["lan", "monitoring_server", "media", "2001:db8::/32", "192.0.2.7"], NETWORKS, HOSTVARS, GROUPS
    )
    assert result == [
        "10.89.60.14/32",
        "100.100.1.2/32",
        "192.0.2.7/32",
        "192.168.1.0/24",
        "192.168.1.10/32",
        "2001:db8::/32",
    ]


def test_duplicates_collapse():
    assert resolve_sources(["lan", "192.168.1.0/24", "lan"], NETWORKS) == ["192.168.1.0/24"]


def test_every_problem_is_listed():
    with pytest.raises(SourceError) as e:
        resolve_sources(["10.0.0.1/24", "300.1.1.1", "laptops", "nosuch", "bad name!"], NETWORKS, HOSTVARS, GROUPS)
    problems = e.value.problems
    assert any("host bits set: did you mean 10.0.0.0/24" in p for p in problems)
    assert any("'300.1.1.1' is not an IP address or CIDR" in p for p in problems)
    assert any("razer has no IP address" in p for p in problems)
    assert any("'nosuch' is neither a network in homelab_networks nor an inventory group" in p for p in problems)
    assert any("'bad name!'" in p for p in problems)
    assert len(problems) == 5


@pytest.mark.parametrize("entries", ["lan", {"lan": 1}, None])
def test_entries_must_be_a_list(entries):
    with pytest.raises(SourceError, match="must be a list"):
        resolve_sources(entries, NETWORKS)


def test_bad_network_definition():
    with pytest.raises(SourceError, match=r"homelab_networks\.lan must be a non-empty list"):
        resolve_sources(["lan"], {"lan": "192.168.1.0/24"})


def test_cidr_and_contains():
    assert cidr(" 192.0.2.7 ") == "192.0.2.7/32"
    assert cidr("2001:db8::1") == "2001:db8::1/128"
    assert contains(["100.64.0.0/10"], "100.100.1.2")
    assert not contains(["100.64.0.0/10", "10.0.0.0/8"], "192.168.1.5")
