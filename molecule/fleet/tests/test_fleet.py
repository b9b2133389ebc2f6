"""site.yml on the six lab hosts (pytest-testinfra)."""

import labchecks
import pytest


def test_host_is_the_fleet_host_it_claims(host):
    assert host.check_output("hostname") == labchecks.hostname(host)


def test_systemd_is_healthy(host):
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state in {"running", "degraded"}
    failed = host.check_output("systemctl --failed --no-legend --plain")
    assert failed.strip() == "", failed


def test_nixos_backend_rendered_every_module(host):
    labchecks.assert_rendered_modules_parse(host)
    labchecks.assert_rendered_modules_evaluate(host)


def test_check_mode_changed_nothing(host):
    labchecks.assert_check_mode_changed_nothing(host)


def test_real_inventory_variables_apply(host):
    labchecks.assert_inventory_applies(host)


def test_backup_runs_are_scheduled_with_a_valid_configuration(host):
    for unit in ("homelab-backup", "homelab-backup-check", "homelab-backup-drill"):
        timer = host.service(unit + ".timer")
        assert timer.is_enabled and timer.is_running, unit
    with host.sudo():
        check = host.run("/usr/local/sbin/homelab-backup --config /etc/homelab/backup/config.json validate")
        assert check.rc == 0, check.stderr
        key = host.file("/root/.ssh/homelab_backup_ed25519")
        assert key.user == "root" and key.mode == 0o600


def test_backup_targets_confine_each_client_to_its_chroot(host):
    name = labchecks.hostname(host)
    clients = labchecks.backup_clients(name)
    if not clients:
        pytest.skip(f"{name} is not a backup target")
    with host.sudo():
        for client in clients:
            chroot = host.file(f"/srv/restic/{client}")
            assert chroot.user == "root" and chroot.mode == 0o755
            assert host.file(f"/srv/restic/{client}/repo").user == f"restic-{client}"
            assert host.user(f"restic-{client}").home == f"/srv/restic/{client}"
            # sshd -T shows %h as written; it is expanded at login (the home above).
            effective = host.check_output(f"sshd -T -C user=restic-{client},host=lab,addr=10.89.60.99")
            assert "chrootdirectory %h" in effective
            assert "forcecommand internal-sftp" in effective
            assert "permittty no" in effective


def test_etc_is_kept_in_git(host):
    with host.sudo():
        repo = host.file("/etc/.git")
        assert repo.is_directory and repo.mode == 0o700
        assert host.service("etckeeper.timer").is_enabled
        tracked = host.check_output("git -C /etc ls-files")
        assert "ssh/sshd_config" in tracked.split()
        assert "grafana/grafana.ini" not in tracked.split()
