"""The firewall as data (plugins/module_utils/_firewall.py)."""

import shutil
import subprocess

import pytest

from ansible_collections.homelab.nixos.plugins.module_utils._firewall import (
    FirewallError,
    audit_listeners,
    firewall_plan,
    nftables_ruleset,
    nixos_firewall,
)

NETWORKS = {"lan": ["192.168.1.0/24", "fd00::/8"], "tailscale": ["100.64.0.0/10"]}
HOSTVARS = {"dex5550": {"ansible_host": "10.89.60.14"}}
GROUPS = {"monitoring_server": ["dex5550"]}
DECLARED = [
    {"name": "ssh", "port": 22, "proto": "tcp", "allow_from": ["lan", "100.64.0.0/10"]},
    {"name": "node-exporter", "port": 9100, "proto": "tcp", "allow_from": ["monitoring_server"]},
    {"name": "wireguard", "port": 51820, "proto": "udp", "allow_from": ["any"]},
]


def _plan():
    return firewall_plan(DECLARED, NETWORKS, HOSTVARS, GROUPS)


def test_sources_resolve_per_family():
    ssh, node, wireguard = _plan()
    assert ssh == {
        "name": "ssh",
        "port": 22,
        "proto": "tcp",
        "anywhere": False,
        "ipv4": ["100.64.0.0/10", "192.168.1.0/24"],
        "ipv6": ["fd00::/8"],
    }
    assert node["ipv4"] == ["10.89.60.14/32"] and node["ipv6"] == []
    assert wireguard["anywhere"] is True


def test_unresolvable_sources_are_all_reported():
    declared = [
        {"name": "a", "port": 1, "proto": "tcp", "allow_from": ["nosuch"]},
        {"name": "b", "port": 2, "proto": "tcp", "allow_from": ["10.0.0.1/8"]},
    ]
    with pytest.raises(FirewallError) as e:
        firewall_plan(declared, NETWORKS, HOSTVARS, GROUPS)
    assert len(e.value.problems) == 2


def test_ruleset_defaults_to_drop_and_opens_each_port_to_its_sources():
    text = nftables_ruleset(_plan(), header="# managed")
    assert text.startswith("# managed\ntable inet homelab_filter\ndelete table inet homelab_filter\n")
    assert "policy drop;" in text
    assert "ct state established,related accept" in text
    assert 'ip saddr { 100.64.0.0/10, 192.168.1.0/24 } tcp dport 22 accept comment "ssh"' in text
    assert 'ip6 saddr { fd00::/8 } tcp dport 22 accept comment "ssh"' in text
    assert 'ip saddr { 10.89.60.14/32 } tcp dport 9100 accept comment "node-exporter"' in text
    assert 'udp dport 51820 accept comment "wireguard"' in text
    assert "log prefix" in text and "log prefix" not in nftables_ruleset(_plan(), log_drops=False)


def test_extra_rules_come_before_the_accepts():
    text = nftables_ruleset(_plan(), extra_rules=["tcp dport 22 drop"])
    assert text.index("tcp dport 22 drop") < text.index("tcp dport 22 accept")
    with pytest.raises(FirewallError, match="one nftables statement"):
        nftables_ruleset(_plan(), extra_rules=["accept; flush ruleset"])


@pytest.mark.skipif(not shutil.which("nft"), reason="nft is not installed on this controller")
def test_nft_parses_the_ruleset(tmp_path):
    path = tmp_path / "rules.nft"
    path.write_text(nftables_ruleset(_plan(), extra_rules=["tcp dport 23 drop"]))
    proc = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_nixos_options(known_options):
    options = nixos_firewall(_plan())
    firewall = options["firewall"]
    assert options["nftables"]["enable"] is True
    assert firewall["allowedTCPPorts"] == [] and firewall["allowedUDPPorts"] == [51820]
    assert "ip saddr { 10.89.60.14/32 } tcp dport 9100 accept" in firewall["extraInputRules"]
    known_options({"networking": options})


SS = """\
tcp   LISTEN 0      128          0.0.0.0:22        0.0.0.0:*
tcp   LISTEN 0      128             [::]:22           [::]:*
tcp   LISTEN 0      4096               *:9100            *:*
tcp   LISTEN 0      4096       127.0.0.1:9091      0.0.0.0:*
tcp   LISTEN 0      4096       127.0.0.53%lo:53    0.0.0.0:*
tcp   LISTEN 0      4096   10.89.60.13:631     0.0.0.0:*
udp   UNCONN 0      0          0.0.0.0:5353      0.0.0.0:*
"""


def test_audit_reports_undeclared_listeners_and_idle_ports():
    report = audit_listeners(SS, _plan())
    assert report["unexpected"] == [{"proto": "tcp", "port": 631}, {"proto": "udp", "port": 5353}]
    assert report["not_listening"] == [{"name": "wireguard", "proto": "udp", "port": 51820}]
