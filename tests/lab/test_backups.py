"""Backups on the lab: all six hosts back up into their local and remote tiers
with the real restic over real SFTP; verification catches a corrupted pack;
the restore drill, the encryption check and a disaster recovery onto a fresh
container prove the data comes back."""

import concurrent.futures
import json
import os
import re
import time
import urllib.parse
import urllib.request

import pytest
from labtools import HOSTS, ROOT, lab, labchecks, podman_exec, recap, run_site, wait_for

PASSWORD_FILE = "/run/agenix/lab-backup"
# Each host's remote tier (the first backup target that is not the host).
REMOTE = {host: labchecks().backup_target(host) for host in HOSTS}
SAMPLE = "/home/admin/backup-sample"
PROMETHEUS = "http://10.89.60.14:9090"  # on dex5550
METRICS = "/var/lib/prometheus/node-exporter/homelab_backup.prom"
ADDRESSES = {host: "10.89.60.%d" % (11 + i) for i, host in enumerate(HOSTS)}


def _metrics(host):
    """{(name, repository): value} of the host's backup metrics."""
    values = {}
    for line in podman_exec(host, "cat", METRICS).stdout.splitlines():
        match = re.match(r'^(homelab_backup_\w+)\{repository="([^"]+)"\} (\S+)$', line)
        if match:
            values[match[1], match[2]] = float(match[3])
    return values


def _snapshots(host, repository):
    """Snapshots of ``host`` read straight from a repository directory (on the host that keeps it)."""
    keeper, path = (
        (host, "/var/lib/homelab/backup/repo")
        if repository == "local"
        else (
            repository,
            f"/srv/restic/{host}/repo",
        )
    )
    out = podman_exec(
        keeper, "restic", "-r", path, "--password-file", PASSWORD_FILE, "--no-cache", "snapshots", "--json"
    ).stdout
    return [s for s in json.loads(out) if s["hostname"] == host]


def _backup(host):
    started = time.monotonic()
    proc = podman_exec(host, "systemctl", "start", "homelab-backup.service", check=False, timeout=600)
    return proc.returncode, time.monotonic() - started


def _journal(host, unit):
    return podman_exec(host, "journalctl", "-u", unit, "--no-pager", "-n", "50", "-o", "cat").stdout


def _query(expression):
    url = PROMETHEUS + "/api/v1/query?query=" + urllib.parse.quote(expression)
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)["data"]["result"]


def _sample_sums(host):
    return podman_exec(host, "sh", "-c", f"cd {SAMPLE} && sha256sum * | sort").stdout


@pytest.fixture(scope="module")
def backed_up(hardened_lab):
    """Sample data on every host, then one backup run of all six at once."""
    for host in HOSTS:
        podman_exec(
            host,
            "sh",
            "-c",
            f"install -d -o admin -g admin {SAMPLE} && cd {SAMPLE}"
            " && head -c 3000000 /dev/urandom > random.bin && seq 1 20000 > numbers.txt"
            " && printf 'homelab backup sample\\n' > note.txt && chown admin:admin *",
        )
    with concurrent.futures.ThreadPoolExecutor(len(HOSTS)) as pool:
        runs = dict(zip(HOSTS, pool.map(_backup, HOSTS), strict=True))
    return runs


def test_every_host_backs_up_into_the_local_and_the_remote_tier(backed_up):
    failed = [host for host, (rc, _seconds) in backed_up.items() if rc]
    assert not failed, "\n".join(f"{host}:\n{_journal(host, 'homelab-backup.service')[-2000:]}" for host in failed)
    for host in HOSTS:
        metrics = _metrics(host)
        for repository in ("local", REMOTE[host]):
            assert metrics["homelab_backup_last_run_success", repository] == 1, (host, repository)
            assert metrics["homelab_backup_size_bytes", repository] > 3_000_000, (host, repository)
            assert time.time() - metrics["homelab_backup_last_success_timestamp_seconds", repository] < 900
        # Read back without the runner: the local directory, and the target's chroot over there.
        assert _snapshots(host, "local"), host
        assert _snapshots(host, REMOTE[host]), host
    for host, (_rc, seconds) in backed_up.items():  # figures for the closing note (pytest -s)
        metrics = _metrics(host)
        sizes = {tier: metrics["homelab_backup_size_bytes", tier] for tier in ("local", REMOTE[host])}
        print(f"backup {host}: {seconds:.1f} s for both tiers, repository sizes {sizes}")
    # The remote tier is a copy of the local one: the same snapshot, same tree.
    local, remote = _snapshots("samsung", "local")[-1], _snapshots("samsung", "p510")[-1]
    assert local["tree"] == remote["tree"] and local["time"] == remote["time"]


def test_prometheus_reads_every_hosts_backup_metrics(backed_up):
    def twelve():
        result = _query("homelab_backup_last_run_success == 1")
        return result if len(result) == 2 * len(HOSTS) else None

    assert wait_for(twelve, 90), _query("homelab_backup_last_run_success")


def test_a_target_account_reaches_only_its_own_chroot_over_sftp(backed_up):
    options = (
        "-i /root/.ssh/homelab_backup_ed25519 -o BatchMode=yes -o UserKnownHostsFile=/etc/homelab/backup/known_hosts"
    )
    p510 = ADDRESSES["p510"]
    # samsung's key opens restic-samsung's chroot: its repository, nothing else.
    listing = podman_exec(
        "samsung", "sh", "-c", f"echo 'ls /' | sftp -b - {options} restic-samsung@{p510}", check=False
    )
    assert listing.returncode == 0, listing.stderr
    assert "/repo" in listing.stdout and "/keys" not in listing.stdout and "samsung" not in listing.stdout
    # No shell: the account runs the SFTP server whatever it is asked.
    shell = podman_exec(
        "samsung", "sh", "-c", f"ssh {options} restic-samsung@{p510} id </dev/null", check=False, timeout=60
    )
    assert "Permission denied" not in shell.stderr and "uid=" not in shell.stdout, shell.stderr
    # Another client's account does not take samsung's key.
    other = podman_exec(
        "samsung", "sh", "-c", f"ssh {options} restic-razer@{p510} true </dev/null", check=False, timeout=60
    )
    assert other.returncode != 0 and "Permission denied" in other.stderr


def test_the_canary_is_in_the_data_and_in_no_repository_file(backed_up):
    canary = podman_exec("samsung", "cat", "/var/lib/homelab/backup/canary/canary.txt").stdout.strip()
    assert canary.startswith("homelab-backup-canary-")
    for keeper, path in (("samsung", "/var/lib/homelab/backup/repo"), ("p510", "/srv/restic/samsung/repo")):
        found = podman_exec(keeper, "grep", "-rlF", canary, path, check=False)
        assert found.returncode == 1 and not found.stdout, f"the canary is readable in {keeper}:{path}"
    # The same search does find it where it is in plain text (the search works).
    assert podman_exec("samsung", "grep", "-rlF", canary, "/var/lib/homelab/backup/canary").returncode == 0


def test_a_corrupted_pack_in_the_remote_tier_is_caught_and_the_metric_flips(backed_up):
    packs = podman_exec("p510", "sh", "-c", "find /srv/restic/samsung/repo/data -type f | sort").stdout.split()
    assert packs
    pack = packs[0]
    podman_exec("p510", "cp", "-p", pack, "/root/pack.orig")
    try:
        podman_exec("p510", "sh", "-c", f"printf 'corrupted' | dd of={pack} bs=1 seek=64 conv=notrunc status=none")
        check = podman_exec(
            "samsung",
            "homelab-backup",
            "--config",
            "/etc/homelab/backup/config.json",
            "check",
            "--read-data-subset",
            "100%",
            check=False,
            timeout=600,
        )
        assert check.returncode == 1, check.stdout + check.stderr
        assert "p510" in check.stderr
        metrics = _metrics("samsung")
        assert metrics["homelab_backup_last_verification_success", "p510"] == 0
        assert metrics["homelab_backup_last_verification_success", "local"] == 1
        flipped = wait_for(
            lambda: _query('homelab_backup_last_verification_success{host="samsung",repository="p510"} == 0'), 60
        )
        assert flipped, "Prometheus did not see the failed verification"
    finally:
        podman_exec("p510", "sh", "-c", f"cp -p /root/pack.orig {pack} && rm /root/pack.orig")
    again = podman_exec("samsung", "systemctl", "start", "homelab-backup-check.service", check=False, timeout=600)
    assert again.returncode == 0, _journal("samsung", "homelab-backup-check.service")[-2000:]
    assert _metrics("samsung")["homelab_backup_last_verification_success", "p510"] == 1


def test_the_restore_drill_finds_every_checksum_equal(backed_up):
    drill = podman_exec("samsung", "systemctl", "start", "homelab-backup-drill.service", check=False, timeout=600)
    journal = _journal("samsung", "homelab-backup-drill.service")
    assert drill.returncode == 0, journal[-2000:]
    assert re.search(r"drill local: [1-9][0-9]* files checked, 0 mismatches", journal), journal[-2000:]
    metrics = _metrics("samsung")
    assert metrics["homelab_backup_last_drill_success", "local"] == 1
    assert metrics["homelab_backup_drill_files_checked", "local"] >= 3


def test_an_unreachable_target_fails_the_remote_tier_and_deletes_nothing(backed_up):
    before = _metrics("razer")
    local_before = _snapshots("razer", "local")[-1]
    remote_before = [s["id"] for s in _snapshots("razer", "p510")]
    podman_exec("p510", "systemctl", "stop", "ssh.service")
    try:
        rc = _backup("razer")[0]
    finally:
        podman_exec("p510", "systemctl", "start", "ssh.service")
    assert rc != 0
    assert re.search(r"p510: .*(unreachable|Connection refused)", _journal("razer", "homelab-backup.service"))
    after = _metrics("razer")
    assert after["homelab_backup_last_run_success", "local"] == 1
    assert after["homelab_backup_last_run_success", "p510"] == 0
    # The failed tier keeps its last success and every snapshot; the local tier has a newer one.
    assert (
        after["homelab_backup_last_success_timestamp_seconds", "p510"]
        == before["homelab_backup_last_success_timestamp_seconds", "p510"]
    )
    assert [s["id"] for s in _snapshots("razer", "p510")] == remote_before
    local_after = _snapshots("razer", "local")[-1]
    assert local_after["id"] != local_before["id"] and local_after["time"][:19] >= local_before["time"][:19]


def test_a_rerun_changes_nothing_and_check_mode_neither(backed_up):
    for extra in ((), ("--check",)):
        rc, out = run_site("--tags", "backup", *extra)
        assert rc == 0, out[-3000:]
        assert {host: r[1] for host, r in recap(out).items()} == dict.fromkeys(HOSTS, 0), (extra, out[-3000:])


def test_disaster_recovery_restores_a_destroyed_host_onto_a_fresh_one(backed_up):
    """Last in this module: samsung is destroyed and rebuilt."""
    before = _sample_sums("samsung")
    assert "random.bin" in before
    lab("destroy", "samsung")
    lab("up")
    assert podman_exec("samsung", "test", "-e", SAMPLE, check=False).returncode == 1, "not a fresh container"
    rc, out = run_site("--limit", "samsung", playbook="playbooks/ops/restore-host.yml", timeout=1800)
    assert rc == 0, out[-5000:]
    assert re.search(r"samsung restored from p510 .* every checksum equal\. RTO [0-9.]+ s", " ".join(out.split()))
    assert _sample_sums("samsung") == before
    reports = sorted(f for f in os.listdir(os.path.join(ROOT, "build", "dr")) if f.startswith("samsung-"))
    with open(os.path.join(ROOT, "build", "dr", reports[-1]), encoding="utf-8") as f:
        report = json.load(f)
    assert report["repository"] == "p510" and report["files"] >= 3
    assert 0 < report["rto_seconds"] <= report["rto_target_seconds"] == 4 * 3600
    # The rebuilt host backs up again with its new key.
    rc = _backup("samsung")[0]
    assert rc == 0, _journal("samsung", "homelab-backup.service")[-2000:]


def test_the_nixos_rendering_runs_the_same_runner_and_confines_the_targets_accounts(backed_up):
    checks = labchecks()
    with open(os.path.join(ROOT, "roles", "backup", "files", "homelab_backup.py"), encoding="utf-8") as f:
        runner = f.read()
    client = checks.evaluate_module(os.path.join(ROOT, "build", "nixos", "samsung", "backup.nix"))
    checks._option_checker()(client)
    etc = client["environment"]["etc"]
    # Nix reads back the runner byte for byte (to_nix escaped it right).
    assert etc["homelab/backup/homelab_backup.py"]["text"] == runner
    assert re.fullmatch(r"10\.89\.60\.13 ssh-ed25519 \S+\n", etc["homelab/backup/known_hosts"]["text"])
    config = json.loads(etc["homelab/backup/config.json"]["text"])
    assert [r["name"] for r in config["repositories"]] == ["local", "p510"]
    assert set(client["systemd"]["timers"]) == {"homelab-backup", "homelab-backup-check", "homelab-backup-drill"}
    target = checks.evaluate_module(os.path.join(ROOT, "build", "nixos", "p510", "backup.nix"))
    checks._option_checker()(target)
    assert sorted(target["users"]["users"]) == sorted(f"restic-{h}" for h in checks.backup_clients("p510"))
    sshd = checks.evaluate_module(os.path.join(ROOT, "build", "nixos", "p510", "ssh-hardening.nix"))
    match = sshd["services"]["openssh"]["extraConfig"].splitlines()
    assert match[0].startswith("Match User restic-") and "    ForceCommand internal-sftp" in match
