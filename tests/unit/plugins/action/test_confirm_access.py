"""confirm_access: command line, retries and the action plugin, with ssh replaced by test doubles.

``FakeSubprocessRun`` stands in for ``subprocess.run`` (so no ssh runs and no host is needed) and
``FakeClock`` for time.monotonic/time.sleep, so that retries and deadlines are exact and instant. One test runs
the real ssh client against a closed port on 127.0.0.1.
"""

import re
import shutil
import socket
import subprocess
from unittest import mock

import pytest
from ansible.errors import AnsibleActionFail
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.template import Templar, trust_as_template

from ansible_collections.homelab.nixos.plugins.action import confirm_access as action
from ansible_collections.homelab.nixos.plugins.plugin_utils import _confirm_access as logic
from ansible_collections.homelab.nixos.plugins.plugin_utils._confirm_access import (
    MIN_ATTEMPT_SECONDS,
    Attempt,
    ConfirmAccessError,
    build_argv,
    confirm,
    connection_settings,
    failure_reason,
    last_line,
    run_ssh,
)

FRESH = [
    "-o",
    "BatchMode=yes",
    "-o",
    "ControlMaster=no",
    "-o",
    "ControlPath=none",
    "-o",
    "ConnectTimeout=5",
    "-o",
    "ServerAliveInterval=5",
]
COMMON_ARGS = "-o UserKnownHostsFile=/x -o StrictHostKeyChecking=accept-new"
# The connection variables scripts/lab.py writes for a lab host.
LAB_VARS = {
    "inventory_hostname": "dex5550",
    "ansible_host": "10.89.60.14",
    "ansible_user": "admin",
    "ansible_ssh_private_key_file": "/work/main/.cache/lab/id_ed25519",
    "ansible_ssh_common_args": COMMON_ARGS,
}
DEFAULT_ARGS = {"command": "true"}
DENIED = (
    "Warning: Permanently added '10.89.60.14' (ED25519) to the list of known hosts.\r\n"
    "admin@10.89.60.14: Permission denied (publickey).\r\n"
)


def settings(task_vars, args=None, **fallbacks):
    return connection_settings(dict(DEFAULT_ARGS, **(args or {})), task_vars.get, **fallbacks)


class FakeClock:
    """Test double of time.monotonic and time.sleep: time only moves when ``advance`` or ``sleep`` is called."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class FakeSubprocessRun:
    """Test double of subprocess.run for ssh: plays ``answers`` in turn, the last one forever.

    An answer is ``(rc, stdout, stderr, seconds)``: the run takes ``seconds`` on ``clock``; when that is more
    than the run's timeout it raises subprocess.TimeoutExpired at the timeout, as the real one does.
    """

    def __init__(self, answers, clock=None):
        self.answers = list(answers)
        self.clock = clock
        self.calls = []

    def __call__(self, argv, **kwargs):
        self.calls.append((list(argv), kwargs))
        rc, stdout, stderr, seconds = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        timeout = kwargs.get("timeout")
        if timeout is not None and seconds > timeout:
            if self.clock is not None:
                self.clock.advance(timeout)
            raise subprocess.TimeoutExpired(argv, timeout, output=stdout.encode(), stderr=stderr.encode())
        if self.clock is not None:
            self.clock.advance(seconds)
        return subprocess.CompletedProcess(argv, rc, stdout.encode(), stderr.encode())


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def fake_run(monkeypatch, clock):
    """``fake_run(answers)`` puts a FakeSubprocessRun in place of subprocess.run for _confirm_access."""

    def install(answers):
        fake = FakeSubprocessRun(answers, clock)
        monkeypatch.setattr(logic.subprocess, "run", fake)
        return fake

    return install


def run_confirm(argv, clock, timeout=30, delay=2):
    return confirm(argv, timeout, delay, clock=clock, sleep=clock.sleep)


# Command line


def test_argv_from_lab_host_vars():
    assert build_argv(settings(LAB_VARS)) == [
        "ssh",
        *FRESH,
        "-p",
        "22",
        "-i",
        "/work/main/.cache/lab/id_ed25519",
        "-l",
        "admin",
        "-o",
        "UserKnownHostsFile=/x",
        "-o",
        "StrictHostKeyChecking=accept-new",
        "--",
        "10.89.60.14",
        "true",
    ]


def test_argv_with_nothing_but_the_inventory_name():
    assert build_argv(settings({"inventory_hostname": "p620"})) == ["ssh", *FRESH, "-p", "22", "--", "p620", "true"]


def test_task_arguments_win_over_host_vars():
    args = {
        "host": "192.0.2.7",
        "port": 2222,
        "user": "root",
        "private_key_file": "/keys/root",
        "ssh_args": ["-o", "ProxyJump=bastion"],
        "command": "systemctl is-system-running --wait",
    }
    assert build_argv(settings(LAB_VARS, args)) == [
        "ssh",
        *FRESH,
        "-p",
        "2222",
        "-i",
        "/keys/root",
        "-l",
        "root",
        "-o",
        "ProxyJump=bastion",
        "--",
        "192.0.2.7",
        "systemctl is-system-running --wait",
    ]


def test_ssh_args_as_a_string_are_split_like_a_shell():
    result = settings(LAB_VARS, {"ssh_args": "-o 'ProxyCommand=nc -X 5 %h %p' -4"})
    assert result["ssh_args"] == ["-o", "ProxyCommand=nc -X 5 %h %p", "-4"]


def test_empty_ssh_args_drop_the_host_defaults():
    assert settings(LAB_VARS, {"ssh_args": []})["ssh_args"] == []


def test_common_and_extra_args_both_pass_through_with_quoting():
    task_vars = dict(
        LAB_VARS,
        ansible_ssh_common_args="-o 'UserKnownHostsFile=/path with space/known_hosts'",
        ansible_ssh_extra_args="-o IdentitiesOnly=yes",
    )
    assert settings(task_vars)["ssh_args"] == [
        "-o",
        "UserKnownHostsFile=/path with space/known_hosts",
        "-o",
        "IdentitiesOnly=yes",
    ]


def test_old_variable_names_and_string_port():
    task_vars = {
        "inventory_hostname": "p510",
        "ansible_ssh_host": "p510.lan",
        "ansible_ssh_port": "2022",
        "ansible_ssh_user": "ops",
        "ansible_private_key_file": "~/.ssh/fleet",
    }
    result = settings(task_vars)
    assert (result["host"], result["port"], result["user"]) == ("p510.lan", 2022, "ops")
    assert result["private_key_file"].endswith("/.ssh/fleet") and not result["private_key_file"].startswith("~")


def test_fallback_user_and_key_apply_only_when_the_vars_do_not_say():
    fallbacks = {"fallback_user": "play-user", "fallback_private_key_file": "/cli/key"}
    result = settings({"inventory_hostname": "p620"}, **fallbacks)
    assert (result["user"], result["private_key_file"]) == ("play-user", "/cli/key")
    result = settings(LAB_VARS, **fallbacks)
    assert (result["user"], result["private_key_file"]) == ("admin", "/work/main/.cache/lab/id_ed25519")


def test_host_starting_with_a_dash_stays_a_host():
    argv = build_argv(settings({"inventory_hostname": "-oProxyCommand=touch /tmp/pwned"}))
    assert argv[-3:] == ["--", "-oProxyCommand=touch /tmp/pwned", "true"]


@pytest.mark.parametrize(
    ("task_vars", "args", "message"),
    [
        ({"inventory_hostname": "a", "ansible_port": "ssh"}, {}, "ansible_port must be a port number, got 'ssh'"),
        (
            {"inventory_hostname": "a", "ansible_port": 70000},
            {},
            "ansible_port must be a port number between 1 and 65535, got 70000",
        ),
        ({"inventory_hostname": "a"}, {"port": 0}, "port must be a port number between 1 and 65535, got 0"),
        ({"inventory_hostname": "a", "ansible_ssh_common_args": "-o 'open"}, {}, "ansible_ssh_common_args cannot"),
        ({"inventory_hostname": "a"}, {"ssh_args": {"a": 1}}, "ssh_args must be a string or a list of strings"),
        ({"inventory_hostname": "a"}, {"command": " "}, "command must not be empty"),
        ({}, {}, "no host to connect to"),
    ],
)
def test_unusable_settings(task_vars, args, message):
    with pytest.raises(ConfirmAccessError, match="^" + re.escape(message)):
        settings(task_vars, args)


# Retries


def test_fails_twice_then_succeeds(fake_run, clock):
    fake = fake_run(
        [
            (255, "", "ssh: connect to host 10.89.60.14 port 22: Connection refused\r\n", 0.1),
            (255, "", "kex_exchange_identification: read: Connection reset by peer\r\n", 0.2),
            (0, "", "", 0.4),
        ]
    )
    argv = build_argv(settings(LAB_VARS))
    outcome = run_confirm(argv, clock)
    assert outcome.ok and outcome.reason is None
    assert outcome.attempts == 3
    assert outcome.elapsed == pytest.approx(0.1 + 2 + 0.2 + 2 + 0.4)
    assert clock.sleeps == [2, 2]
    assert [call[0] for call in fake.calls] == [argv] * 3
    first_kwargs = fake.calls[0][1]
    assert first_kwargs["stdin"] is subprocess.DEVNULL
    assert first_kwargs["capture_output"] is True
    assert first_kwargs["timeout"] == 30


def test_always_denied_gives_up_at_the_deadline_with_ssh_reason(fake_run, clock):
    fake_run([(255, "", DENIED, 0.5)])
    outcome = run_confirm(build_argv(settings(LAB_VARS)), clock, timeout=10, delay=2)
    assert not outcome.ok
    # Attempts start at 0, 2.5, 5 and 7.5; the next would start at 10.
    assert outcome.attempts == 4
    assert outcome.elapsed == pytest.approx(8.0)
    assert outcome.reason == "admin@10.89.60.14: Permission denied (publickey)."
    assert outcome.last.rc == 255 and outcome.last.stderr == DENIED


def test_hanging_attempt_is_killed_at_the_deadline(fake_run, clock):
    fake = fake_run([(0, "", "", 999)])
    outcome = run_confirm(build_argv(settings(LAB_VARS)), clock, timeout=30, delay=2)
    assert not outcome.ok and outcome.attempts == 1
    assert fake.calls[0][1]["timeout"] == 30
    assert outcome.last.rc is None
    assert outcome.reason == "ssh did not finish within 30s"
    assert outcome.elapsed == pytest.approx(30)


def test_late_attempt_still_gets_the_minimum_time(fake_run, clock):
    fake = fake_run([(255, "", "ssh: connect to host h port 22: Connection timed out", 12), (0, "", "", 999)])
    outcome = run_confirm(["ssh", "h", "true"], clock, timeout=15, delay=1)
    assert [call[1]["timeout"] for call in fake.calls] == [15, MIN_ATTEMPT_SECONDS]
    assert not outcome.ok and outcome.attempts == 2
    assert outcome.reason == "ssh did not finish within 10s"


def test_timeout_keeps_the_last_message():
    attempt = Attempt(None, "", "debug1: Connecting\nConnection timed out during banner exchange\n", 10)
    assert failure_reason(attempt, "true") == (
        "ssh did not finish within 10s (last message: Connection timed out during banner exchange)"
    )


def test_zero_timeout_makes_one_attempt(fake_run, clock):
    fake_run([(255, "", "ssh: connect to host h port 22: Connection refused", 0)])
    outcome = run_confirm(["ssh", "h", "true"], clock, timeout=0, delay=0)
    assert outcome.attempts == 1 and not outcome.ok
    assert clock.sleeps == []


def test_remote_command_failure_is_retried_and_reported(fake_run, clock):
    fake_run([(3, "inactive\n", "", 0.1)])
    outcome = run_confirm(["ssh", "--", "h", "systemctl is-active sshd"], clock, timeout=4, delay=1)
    assert not outcome.ok and outcome.attempts == 4
    assert outcome.reason == "the command 'systemctl is-active sshd' exited with rc 3"


def test_ssh_error_without_message():
    assert failure_reason(Attempt(255, "", "\n\n", 5), "true") == "ssh failed with rc 255 and no message"


def test_last_line_is_shortened():
    assert last_line("a\n" + "x" * 400 + "\n\n") == "x" * 297 + "..."
    assert last_line("") == ""


def test_missing_ssh_binary_is_an_error_not_a_retry(monkeypatch):
    def missing(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(logic.subprocess, "run", missing)
    with pytest.raises(ConfirmAccessError, match=r"^cannot run ssh: No such file or directory$"):
        run_ssh(["ssh", "h", "true"], 5)


@pytest.mark.skipif(shutil.which("ssh") is None, reason="no ssh client installed")
def test_real_ssh_against_a_closed_port(tmp_path):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    task_vars = {
        "inventory_hostname": "127.0.0.1",
        "ansible_port": port,
        "ansible_ssh_common_args": "-F /dev/null -o UserKnownHostsFile=%s" % (tmp_path / "known_hosts"),
    }
    outcome = confirm(build_argv(settings(task_vars)), 0, 0)
    assert not outcome.ok and outcome.attempts == 1
    assert outcome.reason == "ssh: connect to host 127.0.0.1 port %d: Connection refused" % port


# The action plugin


class FakeConnection:
    """Test double of Ansible's connection: the plugin must never use it to run anything on the host."""

    def __init__(self):
        self._shell = mock.Mock(tmpdir=None)

    def __getattr__(self, name):
        raise AssertionError("confirm_access used the host connection (%s)" % name)


def make_action(task_vars, args=None, check_mode=False, remote_user=None):
    task = mock.Mock(args=dict(args or {}), check_mode=check_mode, async_val=0, action="homelab.nixos.confirm_access")
    play_context = PlayContext()
    play_context.remote_user = remote_user
    templar = Templar(loader=DataLoader(), variables=task_vars)
    plugin = action.ActionModule(task, FakeConnection(), play_context, DataLoader(), templar)
    return plugin, task_vars


def test_action_templates_host_vars_and_retries(fake_run, monkeypatch, clock):
    monkeypatch.setattr(logic.time, "monotonic", clock)
    monkeypatch.setattr(logic.time, "sleep", clock.sleep)
    fake = fake_run([(255, "", DENIED, 0.25), (0, "ok\n", "", 0.5)])
    task_vars = dict(
        LAB_VARS,
        lab_ip="10.89.60.15",
        lab_port=2222,
        ansible_host=trust_as_template("{{ lab_ip }}"),
        ansible_port=trust_as_template("{{ lab_port }}"),
    )
    plugin, task_vars = make_action(task_vars, {"delay": 1})
    result = plugin.run(task_vars=task_vars)
    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["attempts"] == 2
    assert result["elapsed"] == 1.75
    assert result["stdout"] == "ok\n"
    assert result["msg"] == "fresh SSH login to admin@10.89.60.15 port 2222 works"
    assert result["cmd"] == fake.calls[0][0]
    assert fake.calls[0][0][-3:] == ["--", "10.89.60.15", "true"]
    assert fake.calls[0][0][len(FRESH) + 1 : len(FRESH) + 3] == ["-p", "2222"]
    assert COMMON_ARGS.split()[1] in fake.calls[0][0]


def test_action_failure_names_the_host_and_ssh_reason(fake_run, monkeypatch, clock):
    monkeypatch.setattr(logic.time, "monotonic", clock)
    monkeypatch.setattr(logic.time, "sleep", clock.sleep)
    fake_run([(255, "", DENIED, 1)])
    plugin, task_vars = make_action(LAB_VARS, {"timeout": 5, "delay": 1})
    result = plugin.run(task_vars=task_vars)
    assert result["failed"] is True
    assert result["msg"] == (
        "no fresh SSH login to admin@10.89.60.14 port 22 within 5s (3 attempts):"
        " admin@10.89.60.14: Permission denied (publickey)."
    )
    assert result["attempts"] == 3 and result["elapsed"] == 5.0
    assert result["rc"] == 255 and result["stderr"] == DENIED


def test_action_uses_the_play_remote_user_when_no_var_sets_one(fake_run):
    fake = fake_run([(0, "", "", 0)])
    plugin, task_vars = make_action({"inventory_hostname": "p620"}, remote_user="deploy")
    result = plugin.run(task_vars=task_vars)
    assert not result.get("failed"), result
    assert fake.calls[0][0][-5:] == ["-l", "deploy", "--", "p620", "true"]


def test_action_check_mode_runs_nothing(fake_run):
    fake = fake_run([(0, "", "", 0)])
    plugin, task_vars = make_action(LAB_VARS, check_mode=True)
    result = plugin.run(task_vars=task_vars)
    assert fake.calls == []
    assert not result.get("failed") and not result.get("skipped")
    assert result["msg"] == "check mode: a fresh SSH login to admin@10.89.60.14 port 22 was not checked"
    assert result["attempts"] == 0 and result["changed"] is False


@pytest.mark.parametrize(
    ("args", "task_vars", "message"),
    [
        ({"bogus": 1}, LAB_VARS, "Invalid options for homelab.nixos.confirm_access: bogus"),
        ({"timeout": -1}, LAB_VARS, "timeout and delay must not be negative"),
        ({}, dict(LAB_VARS, ansible_port="twenty-two"), "ansible_port must be a port number"),
    ],
)
def test_action_rejects_bad_input(fake_run, args, task_vars, message):
    fake = fake_run([(0, "", "", 0)])
    plugin, task_vars = make_action(task_vars, args)
    with pytest.raises(AnsibleActionFail, match=message):
        plugin.run(task_vars=task_vars)
    assert fake.calls == []


def test_action_never_reads_the_private_key(fake_run, tmp_path):
    key = tmp_path / "id_ed25519"
    # Split so that the repository's secret scan does not take the fake for a key.
    marker = "OPENSSH " + "PRIVATE KEY"
    key.write_text(f"-----BEGIN {marker}-----\nsecret\n-----END {marker}-----\n")
    key.chmod(0)
    fake_run([(0, "", "", 0)])
    plugin, task_vars = make_action(dict(LAB_VARS, ansible_ssh_private_key_file=str(key)))
    result = plugin.run(task_vars=task_vars)
    assert "secret" not in repr(result)
    assert str(key) in result["cmd"]
