"""The security roles as site.yml leaves them on a lab host (pytest-testinfra):
ssh_hardening, firewall, kernel_hardening, host_security and secrets."""

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
    # Backup targets also admit their clients' SFTP-only accounts (role backup).
    users = ["admin"] + [f"restic-{client}" for client in labchecks.backup_clients(labchecks.hostname(host))]
    expected = [f"{user}@{net}" for user in users for net in ("10.89.60.0/24", "100.64.0.0/10")]
    # (in the order of the inventory's hosts, which molecule's inventory sorts)
    assert sorted(_effective(host)["allowusers"].split()) == sorted(expected)


def test_no_rollback_guard_is_left_armed(host):
    with host.sudo():  # /var/lib/homelab/rollback is root-only
        for name in ("sshd", "firewall"):
            assert not host.file(f"/var/lib/homelab/rollback/{name}").exists
    timers = host.check_output("systemctl list-timers --all --no-legend")
    assert "homelab-rollback" not in timers


def test_the_firewall_drops_by_default_and_is_loaded_at_boot(host):
    table = host.check_output("sudo nft list table inet homelab_filter")
    assert "policy drop;" in table
    assert 'tcp dport 22 accept comment "ssh"' in table
    # The node exporter is declared on every host, open only to the monitoring server's addresses.
    exporter = [line.strip() for line in table.splitlines() if "dport 9100 " in line]
    assert exporter and all(line.startswith(("ip saddr ", "ip6 saddr ")) for line in exporter), exporter
    # Every accept names the declaration it comes from (no anonymous holes).
    accepts = [line.strip() for line in table.splitlines() if " dport " in line and " accept" in line]
    assert all(' accept comment "' in line for line in accepts), accepts
    assert host.service("nftables").is_enabled
    assert host.file("/etc/nftables.conf").content_string.startswith("#!/usr/sbin/nft -f")


# Hosts whose features make them forward packets (exit node, subnet router, VM host).
FORWARDING_HOSTS = {"dex5550", "p620"}


def test_network_sysctls_are_hardened_and_routers_keep_forwarding(host):
    assert host.sysctl("net.ipv4.conf.all.accept_redirects") == 0
    assert host.sysctl("net.ipv4.conf.all.send_redirects") == 0
    assert host.sysctl("net.ipv4.tcp_syncookies") == 1
    forwarding = labchecks.hostname(host) in FORWARDING_HOSTS
    assert host.sysctl("net.ipv4.ip_forward") == int(forwarding)
    assert host.sysctl("net.ipv4.conf.all.rp_filter") == (2 if forwarding else 1)


def test_a_container_writes_only_network_namespace_settings(host):
    lines = host.file("/etc/sysctl.d/90-homelab-hardening.conf").content_string.splitlines()
    keys = [line.split(" = ")[0] for line in lines if " = " in line]
    assert keys and all(key.startswith(("net.ipv4.", "net.ipv6.")) for key in keys)
    assert not host.file("/etc/modprobe.d/homelab-hardening.conf").exists


def test_fail2ban_guards_sshd(host):
    assert host.service("fail2ban").is_running
    status = host.check_output("sudo fail2ban-client status sshd")
    assert "Currently banned" in status
    jail = host.file("/etc/fail2ban/jail.d/homelab.local").content_string
    assert "maxretry = 3" in jail and "findtime = 10m" in jail and "bantime = 1h" in jail
    assert "10.89.60.1" in jail  # the controller is never banned


def test_aide_has_a_baseline_and_a_daily_check(host):
    with host.sudo():  # /var/lib/homelab/aide is root-only
        assert host.file("/var/lib/homelab/aide/aide.db").exists
    assert host.service("homelab-aide-check.timer").is_enabled


def test_security_updates_policy(host):
    policy = host.file("/etc/apt/apt.conf.d/52homelab-unattended-upgrades").content_string
    assert 'APT::Periodic::Unattended-Upgrade "1";' in policy
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in policy


def test_agenix_secrets_are_decrypted_with_the_host_key(host):
    with host.sudo():  # /run/agenix/<secret> is root-only
        canary = host.file("/run/agenix/lab-canary")
        assert canary.is_file and canary.user == "root" and canary.mode == 0o400 and canary.size > 0
        assert host.file("/var/lib/homelab/agenix/lab-canary.age").content_string.startswith(
            "-----BEGIN AGE ENCRYPTED FILE-----"
        )
        monitoring = host.file("/run/agenix/lab-monitoring")
        if host.backend.get_hostname() == "dex5550":
            assert monitoring.group == "adm" and monitoring.mode == 0o440
        else:
            assert not monitoring.exists
    unit = host.service("homelab-agenix")
    assert unit.is_enabled
    assert host.run("systemctl show -p Result --value homelab-agenix").stdout.strip() == "success"
