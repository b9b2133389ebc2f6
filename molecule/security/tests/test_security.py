"""ssh_hardening and firewall on a lab host (pytest-testinfra)."""

import labchecks


def _effective(host):
    """`sshd -T` as {keyword: value}; repeated keywords (AllowUsers) joined by spaces."""
    effective = {}
    for line in host.check_output("sudo sshd -T").splitlines():
        key, _sep, value = line.partition(" ")
        effective[key] = f"{effective[key]} {value}" if key in effective else value
    return effective


def test_keys_only_no_root_no_forwarding(host):
    effective = _effective(host)
    assert effective["permitrootlogin"] == "no"
    assert effective["passwordauthentication"] == "no"
    assert effective["kbdinteractiveauthentication"] == "no"
    assert effective["authenticationmethods"] == "publickey"
    assert effective["allowtcpforwarding"] == "no"
    assert effective["x11forwarding"] == "no"
    assert effective["maxauthtries"] == "3"


def test_modern_algorithms_and_no_ecdsa_host_key(host):
    effective = _effective(host)
    assert "nistp" not in effective["kexalgorithms"] and "sha1" not in effective["kexalgorithms"]
    assert all(mac.endswith("-etm@openssh.com") for mac in effective["macs"].split(","))
    assert not host.file("/etc/ssh/ssh_host_ecdsa_key").exists
    config = host.file("/etc/ssh/sshd_config").content_string
    assert "HostKey /etc/ssh/ssh_host_ed25519_key" in config and "ecdsa" not in config


def test_sources_are_restricted_and_admit_tailscale(host):
    assert _effective(host)["allowusers"].split() == ["admin@10.89.60.0/24", "admin@100.64.0.0/10"]


def test_no_rollback_guard_is_left_armed(host):
    for name in ("sshd", "firewall"):
        assert not host.file(f"/var/lib/homelab/rollback/{name}").exists
    timers = host.check_output("systemctl list-timers --all --no-legend")
    assert "homelab-rollback" not in timers


def test_the_firewall_drops_by_default_and_is_loaded_at_boot(host):
    table = host.check_output("sudo nft list table inet homelab_filter")
    assert "policy drop;" in table
    assert 'tcp dport 22 accept comment "ssh"' in table
    assert "10.89.60.14" in table  # the node exporter only for the monitoring server
    assert host.service("nftables").is_enabled
    assert host.file("/etc/nftables.conf").content_string.startswith("#!/usr/sbin/nft -f")


def test_rendered_modules_evaluate_with_known_options(host):
    labchecks.assert_rendered_modules_parse(host)
    labchecks.assert_rendered_modules_evaluate(host)


def test_check_mode_changed_nothing(host):
    labchecks.assert_check_mode_changed_nothing(host)
