"""site.yml on the six lab hosts (pytest-testinfra)."""

import labchecks


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


def test_node_exporter_runs_everywhere(host):
    assert host.service("prometheus-node-exporter").is_running
