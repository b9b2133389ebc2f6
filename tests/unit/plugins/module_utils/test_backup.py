"""The fleet's backups as data (plugins/module_utils/_backup.py)."""

import json

import pytest

from ansible_collections.homelab.nixos.plugins.module_utils._backup import (
    BackupError,
    host_paths,
    nixos_options,
    remote_target,
    runner_config,
    target_accounts,
)

TARGETS = ["p510", "dex5550"]
HOSTS = ["p620", "razer", "p510", "dex5550", "samsung", "nixvm"]


def _settings(**changes):
    settings = {
        "host": "samsung",
        "restic": "/usr/bin/restic",
        "paths": ["/home", "/var/lib/homelab/backup/canary"],
        "excludes": ["/home/*/.cache", "*.tmp"],
        "tags": ["homelab"],
        "state_dir": "/var/lib/homelab/backup",
        "cache_dir": "/var/cache/homelab-backup",
        "textfile": "/var/lib/prometheus/node-exporter/homelab_backup.prom",
        "canary_file": "/var/lib/homelab/backup/canary/canary.txt",
        "password_file": "/run/agenix/backup",
        "check_read_data_subset": "10%",
        "drill_sample": 50,
        "drill_dir": "/var/tmp/homelab-backup-drill",
        "local": {"path": "/var/lib/homelab/backup/repo", "retention": {"keep_daily": 7}},
        "remote": {
            "target": "p510",
            "address": "10.89.60.12",
            "port": 22,
            "path": "/repo",
            "identity": "/root/.ssh/homelab_backup_ed25519",
            "known_hosts": "/etc/homelab/backup/known_hosts",
            "retention": {"keep_daily": 14, "keep_monthly": 12},
        },
    }
    settings.update(changes)
    return settings


def test_a_host_never_holds_its_own_remote_tier():
    assert remote_target("p620", TARGETS) == "p510"
    assert remote_target("p510", TARGETS) == "dex5550"
    assert remote_target("dex5550", TARGETS) == "p510"
    assert remote_target("p510", ["p510"]) is None
    assert remote_target("p620", TARGETS, "dex5550") == "dex5550"
    assert remote_target("p620", TARGETS, False) is None


def test_each_target_keeps_an_account_for_exactly_its_clients():
    hostvars = {"razer": {"backup_remote_target": "dex5550"}, "nixvm": {"backup_enabled": False}}
    p510 = target_accounts("p510", HOSTS, TARGETS, hostvars)
    dex = target_accounts("dex5550", HOSTS, TARGETS, hostvars)
    assert p510 == ["restic-p620", "restic-dex5550", "restic-samsung"]
    assert dex == ["restic-razer", "restic-p510"]
    # Every enabled host has exactly one account somewhere.
    assert sorted(p510 + dex) == sorted("restic-" + h for h in HOSTS if h != "nixvm")


def test_paths_come_from_the_groups_then_the_host_each_once():
    groups = {"monitoring_server": ["/var/lib/grafana", "/home"], "media": ["/var/lib/tautulli"]}
    assert host_paths(["/home", "/root"], groups, ["servers", "monitoring_server"], ["/srv/data"]) == [
        "/home",
        "/root",
        "/var/lib/grafana",
        "/srv/data",
    ]


def test_the_runner_config_has_the_local_tier_first_and_the_remote_copied_from_it():
    config = runner_config(_settings())
    local, remote = config["repositories"]
    assert local == {
        "name": "local",
        "url": "/var/lib/homelab/backup/repo",
        "password_file": "/run/agenix/backup",
        "retention": {"keep_daily": 7},
    }
    assert remote["name"] == "p510" and remote["from"] == "local"
    assert remote["url"] == "sftp:restic-samsung@10.89.60.12:/repo"
    assert remote["retention"] == {"keep_daily": 14, "keep_monthly": 12}
    command = remote["sftp_command"].split()
    assert command[:3] == ["ssh", "-i", "/root/.ssh/homelab_backup_ed25519"]
    assert "StrictHostKeyChecking=yes" in command and "BatchMode=yes" in command
    assert command[-4:] == ["22", "restic-samsung@10.89.60.12", "-s", "sftp"]
    assert "password" not in remote["sftp_command"]
    json.dumps(config)  # plain data


def test_no_remote_tier_gives_one_repository():
    assert [r["name"] for r in runner_config(_settings(remote=None))["repositories"]] == ["local"]


def test_every_problem_at_once():
    with pytest.raises(BackupError) as error:
        runner_config(
            _settings(
                paths=["home", "/srv"],
                excludes="*.tmp",
                canary_file="/elsewhere/canary",
                check_read_data_subset="lots",
                drill_sample=0,
                local={"path": "/repo", "retention": {"keep_daily": 0, "keep_forever": 1}},
                remote=dict(_settings()["remote"], target="samsung", port=70000),
            )
        )
    problems = "\n".join(error.value.problems)
    for expected in (
        "paths must hold absolute paths, got 'home'",
        "excludes must be a list",
        "canary_file /elsewhere/canary is not inside any backed-up path",
        "check_read_data_subset must be like 10%",
        "drill_sample must be a number of files",
        "local retention has unknown keys keep_forever",
        "local retention: keep_daily must be whole numbers of at least 1",
        "samsung cannot be its own remote backup target",
        "SSH port must be 1-65535, got 70000",
    ):
        assert expected in problems


def test_nixos_runs_the_same_runner_with_timers(known_options):
    config = runner_config(_settings())
    unit = {"name": "backup", "description": "restic backup", "command": "backup", "schedule": "daily", "delay": "1h"}
    units = [unit]
    options = nixos_options(config, units, "print('runner')\n", known_hosts="10.89.60.12 ssh-ed25519 AAAA\n")
    service = options["systemd"]["services"]["homelab-backup"]
    assert service["script"].endswith("--config /etc/homelab/backup/config.json backup")
    assert service["serviceConfig"]["Type"] == "oneshot"
    assert options["systemd"]["timers"]["homelab-backup"]["timerConfig"]["OnCalendar"] == "daily"
    assert json.loads(options["environment"]["etc"]["homelab/backup/config.json"]["text"]) == config
    assert "users" not in options
    known_options(options)


def test_nixos_targets_declare_their_chrooted_accounts(known_options):
    options = nixos_options(runner_config(_settings(host="p620")), [], "", accounts=["restic-samsung"])
    user = options["users"]["users"]["restic-samsung"]
    assert user["isSystemUser"] is True and user["home"] == "/srv/restic/samsung" and user["group"] == "restic"
    rules = options["systemd"]["tmpfiles"]["rules"]
    assert "d /srv/restic/samsung 0755 root root -" in rules
    assert "d /srv/restic/samsung/repo 0700 restic-samsung restic -" in rules
    known_options(options)
