"""alertmanager_config against the real ``amtool check-config`` (Debian 12's
prometheus-alertmanager 0.25), and inside a real ansible-playbook run.

amtool parses a configuration exactly as Alertmanager does (strict YAML:
unknown fields are errors), so a rendered file that passes it loads in the
service. Nothing here starts Alertmanager.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from ansible.plugins.filter.core import to_nice_yaml

from ansible_collections.homelab.nixos.plugins.module_utils._alertmanager import alertmanager_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
SECRET = "hunter2-Sup3r-s3cret"
SMTP = {
    "smarthost": "smtp.example.com:587",
    "from": "Homelab Alertmanager <alertmanager@example.com>",
    "to": ["admin@example.com", "oncall@example.com"],
    "auth_username": "alertmanager@example.com",
    "auth_password_file": "/var/lib/alertmanager/smtp-password",
}


@pytest.fixture(scope="session")
def amtool():
    """The real amtool; missing it fails loudly (apt-get install prometheus-alertmanager),
    unless HOMELAB_ALLOW_NO_AMTOOL=1."""
    path = shutil.which("amtool")
    if path is None:
        if os.environ.get("HOMELAB_ALLOW_NO_AMTOOL") == "1":
            pytest.skip("amtool not installed")
        pytest.fail("amtool is missing: apt-get install -y prometheus-alertmanager (the service need not run)")
    return path


def _check(amtool, tmp_path, config):
    """``amtool check-config`` of ``config`` (data, or YAML text)."""
    path = tmp_path / "alertmanager.yml"
    path.write_text(config if isinstance(config, str) else to_nice_yaml(config, indent=2))
    return subprocess.run(
        [amtool, "check-config", str(path)],
        capture_output=True,
        text=True,
        env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        check=False,
    )


def _routes_test(amtool, path, *labels):
    proc = subprocess.run(
        [amtool, "config", "routes", "test", "--config.file", str(path), "--verify.receivers=email", *labels],
        capture_output=True,
        text=True,
        env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        check=False,
    )
    return proc


def test_amtool_is_at_least_0_25(amtool):
    proc = subprocess.run([amtool, "--version"], capture_output=True, text=True, check=False)
    version = re.search(r"version (\d+)\.(\d+)", proc.stdout + proc.stderr)
    assert version, proc.stdout + proc.stderr
    # smtp_auth_password_file first appeared in Alertmanager 0.25.0.
    assert (int(version.group(1)), int(version.group(2))) >= (0, 25)


@pytest.mark.parametrize(
    "settings",
    [
        {"smtp": SMTP},
        {"smtp": dict(SMTP, to="admin@example.com", require_tls=False)},
        {"smtp": {"smarthost": "[2001:db8::25]:25", "from": "am@example.com", "to": "root@localhost"}},
        {
            "smtp": SMTP,
            "group_by": ["..."],
            "group_wait": "0s",
            "group_interval": "1m",
            "critical_repeat": "1m",
            "warning_repeat": "1h30m",
            "resolve_timeout": "10m",
            "send_resolved": False,
        },
    ],
    ids=["defaults", "one-recipient-no-tls", "no-auth-ipv6", "overrides"],
)
def test_rendered_config_passes_check_config(amtool, tmp_path, settings):
    proc = _check(amtool, tmp_path, alertmanager_config(settings))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout
    assert "1 inhibit rules" in proc.stdout
    assert "1 receivers" in proc.stdout


def test_severity_routes_reach_the_email_receiver(amtool, tmp_path):
    assert _check(amtool, tmp_path, alertmanager_config({"smtp": SMTP})).returncode == 0
    path = tmp_path / "alertmanager.yml"
    for labels in (("severity=critical", "host=p510"), ("severity=warning",), ("alertname=Other",)):
        proc = _routes_test(amtool, path, *labels)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_route_to_an_undefined_receiver_fails(amtool, tmp_path):
    config = alertmanager_config({"smtp": SMTP})
    config["route"]["routes"][0]["receiver"] = "pager"
    proc = _check(amtool, tmp_path, config)
    assert proc.returncode != 0
    assert 'undefined receiver "pager" used in route' in proc.stdout + proc.stderr


def test_alertmanager_0_25_knows_smtp_auth_password_file(amtool, tmp_path):
    """The fact the filter relies on: 0.25 parses smtp_auth_password_file (it
    is no unknown field, unlike a misspelling) and refuses it together with an
    inline smtp_auth_password."""
    config = alertmanager_config({"smtp": SMTP})
    assert _check(amtool, tmp_path, config).returncode == 0

    misspelt = dict(config, **{"global": dict(config["global"])})
    misspelt["global"]["smtp_auth_pasword_file"] = misspelt["global"].pop("smtp_auth_password_file")
    proc = _check(amtool, tmp_path, misspelt)
    assert proc.returncode != 0
    assert "field smtp_auth_pasword_file not found" in proc.stdout + proc.stderr

    both = dict(config, **{"global": dict(config["global"], smtp_auth_password=SECRET)})
    proc = _check(amtool, tmp_path, both)
    assert proc.returncode != 0
    assert "at most one of smtp_auth_password & smtp_auth_password_file" in proc.stdout + proc.stderr


def test_broken_durations_fail_check_config_too(amtool, tmp_path):
    """What the filter refuses, amtool refuses as well."""
    config = alertmanager_config({"smtp": SMTP})
    config["route"]["repeat_interval"] = "30m1h"
    proc = _check(amtool, tmp_path, config)
    assert proc.returncode != 0
    assert 'not a valid duration string: "30m1h"' in proc.stdout + proc.stderr


# --- in ansible-playbook -------------------------------------------------------


def _play(tmp_path, settings, dest):
    """A play writing ``settings | alertmanager_config`` to ``dest``; settings come from an extra-vars file."""
    play = [
        {
            "name": "alertmanager",
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "write alertmanager.yml",
                    "ansible.builtin.copy": {
                        "dest": str(dest),
                        "mode": "0644",
                        "content": "{{ am_settings | homelab.nixos.alertmanager_config"
                        " | ansible.builtin.to_nice_yaml(indent=2) }}",
                    },
                }
            ],
        }
    ]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    (tmp_path / "vars.yml").write_text(yaml.safe_dump({"am_settings": settings}))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_FACT_CACHING="memory")
    return subprocess.run(
        [
            os.path.join(BIN, "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            "ansible_python_interpreter=" + sys.executable,
            "-e",
            "@" + str(tmp_path / "vars.yml"),
            "--diff",
            "-v",
            str(tmp_path / "play.yml"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_playbook_writes_a_config_amtool_accepts(amtool, tmp_path):
    dest = tmp_path / "out" / "alertmanager.yml"
    dest.parent.mkdir()
    proc = _play(tmp_path, {"smtp": SMTP}, dest)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = _check(amtool, tmp_path, dest.read_text())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert yaml.safe_load(dest.read_text())["global"]["smtp_auth_password_file"] == SMTP["auth_password_file"]


@pytest.mark.parametrize(
    "smtp",
    [
        dict(SMTP, auth_password=SECRET, auth_password_file=None),
        dict(SMTP, auth_password=SECRET),
        dict(SMTP, auth_password_file=SECRET),
        dict(SMTP, auth_password=SECRET, auth_password_file=SECRET, smarthost="nope", to=[]),
        dict(SMTP, password=SECRET),
    ],
    ids=["inline", "both-forms", "pasted-into-file", "with-other-problems", "unknown-key"],
)
def test_password_never_appears_in_filter_errors(tmp_path, smtp):
    smtp = {key: value for key, value in smtp.items() if value is not None}
    dest = tmp_path / "alertmanager.yml"
    proc = _play(tmp_path, {"smtp": smtp}, dest)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "alertmanager_config:" in output
    assert SECRET not in output
    assert not dest.exists()
