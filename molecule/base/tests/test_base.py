"""The base role on a lab host (pytest-testinfra)."""

import re

import labchecks


def test_journal_is_capped(host):
    conf = host.file("/etc/systemd/journald.conf.d/homelab.conf")
    assert conf.exists and conf.user == "root" and conf.mode == 0o644
    assert "SystemMaxUse=1G" in conf.content_string
    assert conf.content_string.startswith("#")  # ansible_managed header


def test_journald_runs_with_the_cap(host):
    assert host.service("systemd-journald").is_running
    with host.sudo():
        out = host.check_output("systemd-analyze cat-config systemd/journald.conf")
    assert "SystemMaxUse=1G" in out


def test_ssh_still_answers(host):
    assert host.socket("tcp://0.0.0.0:22").is_listening


def test_rendered_nix_modules_parse(host):
    labchecks.assert_rendered_modules_parse(host)
    base = [m for m in labchecks.rendered_modules(host) if m.endswith("/base.nix")]
    assert base, "base.nix was not rendered"
    text = open(base[0]).read()
    assert re.search(r'networking\.hostName = "%s";' % labchecks.hostname(host), text)


def test_check_mode_changed_nothing(host):
    labchecks.assert_check_mode_changed_nothing(host)


def test_real_inventory_variables_apply(host):
    labchecks.assert_inventory_applies(host)
