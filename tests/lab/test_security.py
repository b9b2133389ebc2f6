"""Security hardening on the lab: sshd audited from the controller with the
real ssh-audit, and a change that locks Ansible out rolled back by the host
itself (commit-confirm), leaving its previous configuration."""

import json
import os
import subprocess
import time

import json5
import pytest
from labtools import BIN, HOSTS, ROOT, run_site

from ansible_collections.homelab.nixos.plugins.module_utils import _tailscale_acl as acl

ADDRESSES = {host: "10.89.60.%d" % (11 + i) for i, host in enumerate(HOSTS)}
VICTIM = "samsung"
KEY = os.path.join(ROOT, ".cache", "lab", "id_ed25519")
KNOWN_HOSTS = os.path.join(ROOT, ".cache", "lab", "known_hosts")


def _ssh(host, *command, timeout=20):
    return subprocess.run(
        [
            "ssh",
            "-i",
            KEY,
            "-o",
            "BatchMode=yes",
            "-o",
            "UserKnownHostsFile=" + KNOWN_HOSTS,
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "ControlPath=none",
            "-o",
            "ConnectTimeout=5",
            "admin@" + ADDRESSES[host],
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _effective(host):
    """`sshd -T` as {keyword: [values]} (AllowUsers prints one line per entry)."""
    proc = _ssh(host, "sudo", "sshd", "-T")
    assert proc.returncode == 0, proc.stderr
    effective = {}
    for line in proc.stdout.splitlines():
        key, _sep, value = line.partition(" ")
        effective.setdefault(key, []).append(value)
    return effective


def _ssh_audit(host):
    proc = subprocess.run(
        [os.path.join(BIN, "ssh-audit"), "-j", "--skip-rate-test", ADDRESSES[host]],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return proc.returncode, json.loads(proc.stdout)


def _failures(report):
    """Every algorithm or key ssh-audit marks as a failure."""
    failed = []
    for section in ("kex", "key", "enc", "mac"):
        for entry in report.get(section, []):
            if entry.get("notes", {}).get("fail"):
                failed.append((section, entry["algorithm"], entry["notes"]["fail"]))
    return failed


@pytest.mark.parametrize("host", HOSTS)
def test_ssh_audit_finds_no_failure(hardened_lab, host):
    rc, report = _ssh_audit(host)
    assert _failures(report) == [], report
    assert "critical" not in report.get("recommendations", {}), report["recommendations"]
    assert report.get("cves") == [], report["cves"]
    assert not [a for a in report.get("key", []) if a["algorithm"].startswith("ecdsa")]
    assert rc in (0, 2), f"ssh-audit exit code {rc} (3 = failures)"


def test_the_daemon_runs_the_hardened_configuration(hardened_lab):
    effective = _effective(VICTIM)
    assert effective["permitrootlogin"] == ["no"]
    assert effective["passwordauthentication"] == ["no"]
    assert effective["kbdinteractiveauthentication"] == ["no"]
    assert effective["maxauthtries"] == ["3"]
    assert effective["allowtcpforwarding"] == ["no"]
    assert effective["allowusers"] == ["admin@10.89.60.0/24", "admin@100.64.0.0/10"]


def _lock_out_and_expect_rollback(tag, variables, state_command, what):
    """Apply ``variables`` (a change that locks Ansible out) to VICTIM with role
    ``tag``; the play must fail, the host must roll back by itself, and
    ``state_command`` must print the same before and after."""
    before = _ssh(VICTIM, "sudo", *state_command)
    assert before.returncode == 0, before.stderr
    started = time.monotonic()
    rc, out = run_site("--limit", VICTIM, "--tags", tag, "-e", json.dumps(variables))
    elapsed = time.monotonic() - started
    assert rc != 0, out[-3000:]
    assert f"the new {what} was rolled back" in out, out[-3000:]
    assert "accepts logins again" in out, out[-3000:]
    print(f"{tag}: lockout rolled back by the host in {elapsed:.0f} s")
    after = _ssh(VICTIM, "sudo", *state_command)
    assert after.returncode == 0, after.stderr
    assert after.stdout == before.stdout, f"the previous {what} was not restored"
    return after.stdout


def test_a_change_that_locks_ansible_out_rolls_itself_back(hardened_lab):
    # Sources that exclude the controller (TEST-NET-1), with the preflight
    # check that would refuse them turned off, and a short confirm timeout.
    _lock_out_and_expect_rollback(
        "ssh_hardening",
        {
            "ssh_hardening_allow_from": ["192.0.2.0/24"],
            "ssh_hardening_check_controller_access": False,
            # The firewall's preflight (run with every security role's) would refuse these sources too.
            "firewall_check_controller_access": False,
            "ssh_hardening_confirm_timeout": 30,
        },
        ["sha256sum", "/etc/ssh/sshd_config"],
        "sshd configuration",
    )
    assert _effective(VICTIM)["allowusers"] == ["admin@10.89.60.0/24", "admin@100.64.0.0/10"]


def test_the_preflight_refuses_settings_that_exclude_the_controller(hardened_lab):
    rc, out = run_site(
        "--limit", VICTIM, "--tags", "ssh_hardening", "-e", json.dumps({"ssh_hardening_allow_from": ["192.0.2.0/24"]})
    )
    assert rc != 0
    assert "these SSH settings would lock Ansible out" in out
    assert "from 10.89.60.1" in out


_CONNECT_SCRIPT = (
    "import socket,sys\n"
    "for p in map(int, sys.argv[2:]):\n"
    "    s = socket.socket(); s.settimeout(1)\n"
    "    print(p, s.connect_ex((sys.argv[1], p)) == 0); s.close()\n"
)


# What each probe source may reach (ssh from the LAN; exporters from the
# monitoring server; the server's UIs from the LAN and Tailscale).
PROBE_PORTS = (22, 80, 443, 631, 3001, 8080, 9090, 9093, 9100, 9103, 9104, 9115)


def _open_ports(source, target):
    """Ports of ``target`` that accept a TCP connection from lab host ``source`` (1 s per port)."""
    proc = subprocess.run(
        [
            "podman",
            "exec",
            "homelab-lab-" + source,
            "python3",
            "-c",
            _CONNECT_SCRIPT,
            ADDRESSES[target],
            *map(str, PROBE_PORTS),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return {int(p) for p, ok in (line.split() for line in proc.stdout.splitlines()) if ok == "True"}


@pytest.mark.parametrize("target", [h for h in HOSTS if h != "dex5550"])
def test_the_monitoring_server_reaches_only_ssh_and_exporters(hardened_lab, target):
    assert _open_ports("dex5550", target) == {22, 9100}


def test_another_host_reaches_only_ssh_and_the_uis_of_the_monitoring_server(hardened_lab):
    # Grafana is not installed in the lab: 3001 is open in the firewall but nothing listens.
    assert _open_ports("p620", "dex5550") == {22, 9090, 9093}


def test_a_firewall_that_drops_ssh_rolls_itself_back(hardened_lab):
    table = _lock_out_and_expect_rollback(
        "firewall",
        {"firewall_extra_rules": ["tcp dport 22 drop"], "firewall_confirm_timeout": 30},
        ["nft", "list", "table", "inet", "homelab_filter"],
        "firewall ruleset",
    )
    assert "dport 22 drop" not in table


def _sysctl(host, key):
    proc = subprocess.run(
        ["podman", "exec", "homelab-lab-" + host, "sysctl", "-n", key], capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


def test_the_exit_node_keeps_forwarding_and_the_others_do_not(hardened_lab):
    assert _sysctl("dex5550", "net.ipv4.ip_forward") == "1"
    assert _sysctl("dex5550", "net.ipv4.conf.all.rp_filter") == "2"
    assert _sysctl("samsung", "net.ipv4.ip_forward") == "0"
    assert _sysctl("samsung", "net.ipv4.conf.all.accept_redirects") == "0"


def _exec(host, *command, check=True):
    return subprocess.run(
        ["podman", "exec", "homelab-lab-" + host, *command], capture_output=True, text=True, check=check, timeout=60
    )


def test_fail2ban_bans_a_host_after_three_failed_logins(hardened_lab):
    attacker, address = "p620", ADDRESSES["p620"]
    attempts = 0
    try:
        deadline = time.monotonic() + 60
        while address not in _exec(VICTIM, "fail2ban-client", "status", "sshd").stdout:
            assert time.monotonic() < deadline, _exec(VICTIM, "fail2ban-client", "status", "sshd").stdout
            # `nobody` is not in AllowUsers: sshd logs the refusal fail2ban counts.
            # The ban can land while an attempt is connected, and then drops
            # that connection's packets: `timeout` and ServerAlive end it.
            _exec(
                attacker,
                "timeout",
                "15",
                "ssh",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "ConnectTimeout=5",
                "-o",
                "ServerAliveInterval=2",
                "-o",
                "ServerAliveCountMax=2",
                "nobody@" + ADDRESSES[VICTIM],
                "true",
                check=False,
            )
            attempts += 1
            time.sleep(1)
        # maxretry is 3; fail2ban reads the log asynchronously, so one more
        # attempt may start before the ban lands.
        assert attempts <= 4, f"banned only after {attempts} failed logins"
        banned = _exec(attacker, "python3", "-c", _CONNECT_SCRIPT, ADDRESSES[VICTIM], "22", check=False)
        assert banned.stdout.strip() == "22 False", "the banned host still reaches sshd"
        # The controller is never banned.
        assert _ssh(VICTIM, "true").returncode == 0
    finally:
        _exec(VICTIM, "fail2ban-client", "set", "sshd", "unbanip", address, check=False)


def test_aide_reports_a_changed_file_and_exports_it(hardened_lab):
    _exec(VICTIM, "sh", "-c", "echo 'homelab aide test' >> /etc/issue")
    _exec(VICTIM, "systemctl", "start", "homelab-aide-check.service")
    report = _exec(VICTIM, "cat", "/var/lib/homelab/aide/last-report.txt").stdout
    assert "/etc/issue" in report, report
    metrics = _exec(VICTIM, "cat", "/var/lib/prometheus/node-exporter/homelab_aide.prom").stdout
    assert "homelab_aide_check_success 1" in metrics
    changed = [line for line in metrics.splitlines() if line.startswith('homelab_aide_entries{kind="changed"}')]
    assert changed and int(changed[0].split()[-1]) >= 1, metrics


def test_containers_skip_auditd_and_say_so(hardened_lab):
    rc, out = run_site("--limit", VICTIM, "--tags", "host_security")
    assert rc == 0, out[-3000:]
    # (Ansible folds long messages, so only the start of it is matched.)
    assert f"{VICTIM} is a container: auditd belongs to the container host" in out
    assert _exec(VICTIM, "sh", "-c", "command -v auditctl", check=False).returncode != 0


def test_security_updates_are_installed_automatically_on_debian(hardened_lab):
    config = _exec(VICTIM, "apt-config", "dump").stdout
    assert 'APT::Periodic::Unattended-Upgrade "1";' in config
    assert "label=Debian-Security" in config
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in config


def test_the_tailscale_acl_follows_the_declared_ports(hardened_lab):
    with open(os.path.join(ROOT, "build", "tailscale", "policy.hujson"), encoding="utf-8") as f:
        text = f.read()
    policy = json5.loads(text)
    assert text.startswith("// Tailscale policy file generated by homelab.nixos")
    assert acl.acl_allows(policy, "tag:dex5550", "tag:p620", 9100)
    assert not acl.acl_allows(policy, "tag:p510", "tag:p620", 9100)
    assert acl.acl_allows(policy, "tag:dex5550", "tag:p510", 9115) is False
    assert acl.acl_allows(policy, "admin@homelab.invalid", "tag:samsung", 22)
    assert not acl.acl_allows(policy, "tag:razer", "tag:samsung", 8080)
    assert acl.policy_test_failures(policy) == []
