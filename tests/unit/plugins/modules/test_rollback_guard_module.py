"""The rollback_guard module's wiring: arguments, the state directory, commands, results and failures.

``AnsibleModule.run_command`` is replaced by ``FakeSystemd``, a test double for ``systemd-run`` and
``systemctl`` (there is no systemd to arm a timer on here); every other command, the restore script that
``state=fired`` runs, goes to the real ``run_command``. The double proves the module's flow, not that systemd
runs the timer: that is tested in the lab.
"""

import json
import os
import stat
import subprocess
import time

import pytest
from ansible.module_utils import basic

from ansible_collections.homelab.nixos.plugins.modules import rollback_guard

REAL_RUN_COMMAND = basic.AnsibleModule.run_command


class FakeSystemd:
    """Test double for ``AnsibleModule.run_command`` running ``systemd-run`` and ``systemctl``.

    Records every call; answers from ``responses`` (``{"systemd-run": (rc, out, err), ...}``), runs
    ``on_stop`` before answering ``systemctl stop`` (to let "the timer" fire at that moment), and passes any
    other command to the real run_command.
    """

    def __init__(self):
        self.calls = []
        self.responses = {}
        self.on_stop = None
        self.raise_for = None

    def __call__(self, module, args, **kwargs):
        self.calls.append((list(args), kwargs))
        tool = os.path.basename(args[0])
        if tool not in ("systemd-run", "systemctl"):
            return REAL_RUN_COMMAND(module, args, **kwargs)
        if tool == self.raise_for:
            raise FileNotFoundError(2, "No such file or directory", args[0])
        if tool == "systemctl" and self.on_stop:
            self.on_stop()
        return self.responses.get(tool, (0, "", ""))

    def tools(self):
        return [os.path.basename(args[0]) for args, _kwargs in self.calls]


@pytest.fixture
def systemd(monkeypatch):
    fake = FakeSystemd()

    def run_command(self, args, **kwargs):
        return fake(self, args, **kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    return fake


class Host:
    def __init__(self, root):
        self.etc = root / "etc"
        self.etc.mkdir()
        self.state_dir = str(root / "state")
        self.config = str(self.etc / "sshd_config")
        self.key = str(self.etc / "ssh_host_ecdsa_key")
        self.log = str(root / "commands.log")
        with open(self.config, "w") as f:
            f.write("PermitRootLogin no\n")
        with open(self.key, "w") as f:
            f.write("key\n")
        os.chmod(self.key, 0o600)
        self.guard = os.path.join(self.state_dir, "sshd")

    def args(self, **kw):
        args = dict(
            name="sshd",
            paths=[self.config, self.key, str(self.etc / "sshd_config.d" / "50-homelab.conf")],
            restore_commands=[["sh", "-c", 'echo reloaded >>"$1"', "sh", self.log]],
            timeout=120,
            state_dir=self.state_dir,
        )
        args.update(kw)
        return args

    def at(self, name):
        return os.path.join(self.guard, name)


@pytest.fixture
def host(tmp_path):
    return Host(tmp_path)


def _arm(run_module, host, **kw):
    failed, result = run_module(rollback_guard.main, host.args(**kw))
    assert not failed, result
    return result


# --- armed ---------------------------------------------------------------------------------------------------


def test_arm_snapshots_writes_the_script_and_starts_the_timer(run_module, host, systemd):
    before = int(time.time())
    result = _arm(run_module, host)
    assert result["changed"] is True
    assert result["unit"] == "homelab-rollback-sshd"
    assert result["snapshot_dir"] == host.guard
    assert result["previous_status"] == "absent"
    assert before + 120 <= result["fires_at"] <= int(time.time()) + 120
    assert result["absent_paths"] == [str(host.etc / "sshd_config.d" / "50-homelab.conf")]
    assert stat.S_IMODE(os.stat(host.guard).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(host.state_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(host.at("restore.sh")).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(host.at("guard.json")).st_mode) == 0o600
    assert sorted(os.listdir(host.guard)) == ["files", "guard.json", "pending", "restore.sh"]
    assert sorted(os.listdir(host.at("files"))) == ["0", "1"]
    assert open(host.at("files/1")).read() == "key\n"
    assert stat.S_IMODE(os.stat(host.at("files/1")).st_mode) == 0o600
    info = json.load(open(host.at("guard.json")))
    assert info["name"] == "sshd" and info["unit"] == "homelab-rollback-sshd"
    assert info["paths"] == result["paths"]
    assert info["fires_at"] == result["fires_at"] == info["armed_at"] + 120
    (args, kwargs) = systemd.calls[0]
    assert len(systemd.calls) == 1
    assert os.path.basename(args[0]) == "systemd-run"
    assert args[1:] == [
        "--unit",
        "homelab-rollback-sshd",
        "--description",
        "homelab.nixos rollback guard sshd",
        "--on-active=120s",
        "--timer-property=AccuracySec=1s",
        "--collect",
        "/bin/sh",
        host.at("restore.sh"),
    ]
    assert kwargs["environ_update"] == {"LC_ALL": "C"}
    assert result["cmd"] == args


def test_arm_when_armed_fails_and_says_when_it_fires(run_module, host, systemd):
    first = _arm(run_module, host)
    failed, result = run_module(rollback_guard.main, host.args(timeout=600))
    assert failed
    assert "rollback guard sshd is already armed" in result["msg"]
    assert "fires at %s" % time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(first["fires_at"])) in result["msg"]
    assert "state=confirmed" in result["msg"] and "state=fired" in result["msg"]
    assert systemd.tools() == ["systemd-run"]
    assert json.load(open(host.at("guard.json")))["fires_at"] == first["fires_at"]


def test_arm_after_the_guard_fired_arms_anew(run_module, host, systemd):
    _arm(run_module, host)
    with open(host.at("restored"), "w") as f:
        f.write("2026-01-31T12:02:00Z\n")
    os.rename(host.at("pending"), host.at("started"))
    result = _arm(run_module, host, paths=[host.config])
    assert result["previous_restored_at"] == "2026-01-31T12:02:00Z"
    assert result["previous_status"] == "fired"
    assert sorted(os.listdir(host.guard)) == ["files", "guard.json", "pending", "restore.sh"]
    assert os.listdir(host.at("files")) == ["0"]


def test_systemd_run_failure_leaves_nothing_armed(run_module, host, systemd):
    systemd.responses["systemd-run"] = (1, "", "Failed to start transient timer unit: Unit already exists.")
    failed, result = run_module(rollback_guard.main, host.args())
    assert failed
    assert result["msg"] == (
        "systemd-run could not start the timer of rollback guard sshd (rc 1): the guard is not armed and its "
        "snapshot was removed"
    )
    assert result["rc"] == 1 and result["stdout"] == ""
    assert "Unit already exists" in result["stderr"]
    assert not os.path.exists(host.guard)


def test_systemd_run_that_cannot_start_leaves_nothing_armed(run_module, host, systemd):
    systemd.raise_for = "systemd-run"
    failed, result = run_module(rollback_guard.main, host.args())
    assert failed and result["rc"] == 127
    assert not os.path.exists(host.guard)


def test_missing_systemd_run_fails_before_touching_anything(run_module, host, systemd, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, **kw: None)
    failed, result = run_module(rollback_guard.main, host.args())
    assert failed
    assert result["msg"] == "systemd-run was not found: the rollback guard needs systemd on the host"
    assert not os.path.exists(host.state_dir)
    assert systemd.calls == []


def test_bad_arguments_fail_before_touching_anything(run_module, host, systemd, tmp_path):
    directory = tmp_path / "dir"
    directory.mkdir()
    args = host.args(
        name="SSH",
        paths=["etc/x", str(directory), host.config, host.config],
        restore_commands=[[]],
        timeout=5,
    )
    failed, result = run_module(rollback_guard.main, args)
    assert failed
    msg = result["msg"]
    assert msg.startswith("invalid arguments: name 'SSH' is invalid")
    for part in (
        "paths[0] etc/x is not absolute",
        "paths[1] %s is a directory" % directory,
        "paths[3] %s is listed twice" % host.config,
        "restore_commands[0] is an empty argv",
        "timeout 5 is out of range",
    ):
        assert part in msg
    assert not os.path.exists(host.state_dir)
    assert systemd.calls == []


def test_check_mode_arm_touches_nothing(run_module, host, systemd):
    failed, result = run_module(rollback_guard.main, host.args(), check_mode=True)
    assert not failed, result
    assert result["changed"] is True
    assert result["fires_at"] >= int(time.time()) + 119
    assert result["absent_paths"] == [str(host.etc / "sshd_config.d" / "50-homelab.conf")]
    assert not os.path.exists(host.state_dir)
    assert systemd.calls == []


def test_check_mode_arm_when_armed_fails(run_module, host, systemd):
    _arm(run_module, host)
    failed, result = run_module(rollback_guard.main, host.args(), check_mode=True)
    assert failed and "already armed" in result["msg"]


def test_state_dir_writable_by_others_is_refused(run_module, host, systemd):
    os.makedirs(host.state_dir)
    os.chmod(host.state_dir, 0o777)
    failed, result = run_module(rollback_guard.main, host.args())
    assert failed and "writable by group or others" in result["msg"]
    assert os.listdir(host.state_dir) == []
    assert systemd.calls == []


def test_a_state_dir_that_cannot_be_created_fails_clearly(run_module, host, systemd, tmp_path):
    (tmp_path / "file").write_text("")
    state_dir = str(tmp_path / "file" / "state")
    failed, result = run_module(rollback_guard.main, host.args(state_dir=state_dir))
    assert failed
    assert result["msg"] == "could not create %s/sshd: [Errno 20] Not a directory: '%s'" % (state_dir, state_dir)
    assert systemd.calls == []


def test_a_path_that_became_a_directory_while_arming_leaves_nothing(run_module, host, systemd, monkeypatch):
    """check_params saw a file; by the time of the snapshot it is a directory."""
    real_check = rollback_guard.check_params

    def check_then_swap(params):
        checked = real_check(params)
        os.unlink(host.config)
        os.mkdir(host.config)
        return checked

    monkeypatch.setattr(rollback_guard, "check_params", check_then_swap)
    failed, result = run_module(rollback_guard.main, host.args())
    assert failed and result["msg"] == "%s is a directory: guard the files in it one by one" % host.config
    assert not os.path.exists(host.guard)
    assert systemd.calls == []


# --- confirmed -----------------------------------------------------------------------------------------------


def test_confirm_stops_the_timer_and_drops_the_snapshot(run_module, host, systemd):
    _arm(run_module, host)
    with open(host.config, "w") as f:
        f.write("PermitRootLogin prohibit-password\n")
    failed, result = run_module(rollback_guard.main, dict(name="sshd", state="confirmed", state_dir=host.state_dir))
    assert not failed, result
    assert result["changed"] is True and result["previous_status"] == "armed"
    args, kwargs = systemd.calls[-1]
    assert args[1:] == ["stop", "homelab-rollback-sshd.timer"] and os.path.basename(args[0]) == "systemctl"
    assert kwargs["environ_update"] == {"LC_ALL": "C"}
    assert not os.path.exists(host.guard)
    assert os.path.isdir(host.state_dir)
    assert open(host.config).read() == "PermitRootLogin prohibit-password\n"


def test_confirm_ignores_a_timer_that_is_not_loaded(run_module, host, systemd):
    _arm(run_module, host)
    systemd.responses["systemctl"] = (5, "", "Failed to stop homelab-rollback-sshd.timer: Unit not loaded.")
    failed, result = run_module(rollback_guard.main, dict(name="sshd", state="confirmed", state_dir=host.state_dir))
    assert not failed and result["changed"] is True
    assert not os.path.exists(host.guard)


def test_confirm_fails_and_keeps_the_guard_when_the_timer_cannot_be_stopped(run_module, host, systemd):
    _arm(run_module, host)
    systemd.responses["systemctl"] = (1, "", "Failed to connect to bus: No such file or directory")
    failed, result = run_module(rollback_guard.main, dict(name="sshd", state="confirmed", state_dir=host.state_dir))
    assert failed
    assert result["msg"] == (
        "could not stop homelab-rollback-sshd.timer (rc 1): rollback guard sshd is still armed and will restore "
        "its snapshot"
    )
    assert result["rc"] == 1 and "Failed to connect to bus" in result["stderr"]
    assert os.path.exists(host.at("pending")) and os.path.exists(host.at("files/0"))


def test_confirm_without_a_guard_changes_nothing(run_module, host, systemd):
    failed, result = run_module(rollback_guard.main, dict(name="sshd", state="confirmed", state_dir=host.state_dir))
    assert not failed and result["changed"] is False
    assert result["previous_status"] == "absent"
    assert systemd.calls == []


def test_confirm_after_the_guard_fired_fails(run_module, host, systemd):
    _arm(run_module, host)
    os.rename(host.at("pending"), host.at("started"))
    with open(host.at("restored"), "w") as f:
        f.write("2026-01-31T12:02:00Z\n")
    for check_mode in (True, False):
        failed, result = run_module(
            rollback_guard.main, dict(name="sshd", state="confirmed", state_dir=host.state_dir), check_mode=check_mode
        )
        assert failed
        assert (
            "the guard fired at 2026-01-31T12:02:00Z: the host already restored the previous configuration"
            in (result["msg"])
        )
    assert os.path.exists(host.at("restored"))
    assert systemd.tools() == ["systemd-run"]


def test_confirm_racing_with_the_timer_reports_that_it_fired(run_module, host, systemd):
    """The timer fires just as the confirmation stops it: the restore claims the guard first."""
    _arm(run_module, host)
    with open(host.config, "w") as f:
        f.write("new\n")
    systemd.on_stop = lambda: subprocess.run(["/bin/sh", host.at("restore.sh")], capture_output=True, check=True)
    failed, result = run_module(rollback_guard.main, dict(name="sshd", state="confirmed", state_dir=host.state_dir))
    assert failed and "the guard fired at" in result["msg"]
    assert open(host.config).read() == "PermitRootLogin no\n"
    assert os.path.exists(host.at("restored"))


def test_check_mode_confirm_touches_nothing(run_module, host, systemd):
    _arm(run_module, host)
    failed, result = run_module(
        rollback_guard.main, dict(name="sshd", state="confirmed", state_dir=host.state_dir), check_mode=True
    )
    assert not failed and result["changed"] is True
    assert os.path.exists(host.at("pending"))
    assert systemd.tools() == ["systemd-run"]


def test_confirm_finishes_a_confirmation_that_stopped_half_way(run_module, host, systemd):
    _arm(run_module, host)
    os.rename(host.at("pending"), host.at("confirmed"))
    failed, result = run_module(rollback_guard.main, dict(name="sshd", state="confirmed", state_dir=host.state_dir))
    assert not failed and result["changed"] is True and result["previous_status"] == "confirmed"
    assert not os.path.exists(host.guard)


# --- fired ---------------------------------------------------------------------------------------------------


def test_fire_restores_now_and_keeps_the_marker(run_module, host, systemd):
    _arm(run_module, host)
    with open(host.config, "w") as f:
        f.write("PermitRootLogin yes\n")
    os.unlink(host.key)
    new = host.etc / "sshd_config.d" / "50-homelab.conf"
    new.parent.mkdir()
    new.write_text("PasswordAuthentication yes\n")
    failed, result = run_module(rollback_guard.main, dict(name="sshd", state="fired", state_dir=host.state_dir))
    assert not failed, result
    assert result["changed"] is True and result["problems"] == []
    assert open(host.config).read() == "PermitRootLogin no\n"
    assert stat.S_IMODE(os.stat(host.key).st_mode) == 0o600
    assert not new.exists()
    assert open(host.log).read() == "reloaded\n"
    assert result["restored_at"] == open(host.at("restored")).read().strip()
    # The timer is stopped before the restore runs, so it cannot start a second one.
    assert systemd.tools() == ["systemd-run", "systemctl", "sh"]
    assert systemd.calls[1][0][1:] == ["stop", "homelab-rollback-sshd.timer"]
    assert systemd.calls[2][0] == ["/bin/sh", host.at("restore.sh")]
    assert "restored, 0 problem(s)" in result["stdout"]
    # A later arm sees that the guard fired.
    again = _arm(run_module, host)
    assert again["previous_restored_at"] == result["restored_at"]


def test_fire_reports_failed_steps(run_module, host, systemd):
    _arm(run_module, host, restore_commands=[["sh", "-c", "exit 3"], ["sh", "-c", 'echo ran >>"$1"', "sh", host.log]])
    failed, result = run_module(rollback_guard.main, dict(name="sshd", state="fired", state_dir=host.state_dir))
    assert failed
    assert result["msg"] == "%s ran, but 1 step(s) failed: exit 3 from sh -c 'exit 3'" % host.at("restore.sh")
    assert result["problems"] == ["exit 3 from sh -c 'exit 3'"]
    assert result["rc"] == 0
    assert open(host.log).read() == "ran\n"
    assert os.path.exists(host.at("restored"))


def test_fire_fails_when_the_script_exits_non_zero(run_module, host, systemd):
    _arm(run_module, host)
    with open(host.at("restore.sh"), "w") as f:
        f.write("echo broken >&2\nexit 2\n")
    failed, result = run_module(rollback_guard.main, dict(name="sshd", state="fired", state_dir=host.state_dir))
    assert failed
    assert result["msg"] == "%s exited with rc 2" % host.at("restore.sh")
    assert result["rc"] == 2 and result["stderr"] == "broken\n" and result["stdout"] == ""


def test_fire_warns_when_the_timer_cannot_be_stopped_and_restores_anyway(run_module, host, systemd, warnings):
    _arm(run_module, host)
    systemd.responses["systemctl"] = (1, "", "Failed to connect to bus")
    failed, result = run_module(rollback_guard.main, dict(name="sshd", state="fired", state_dir=host.state_dir))
    assert not failed and result["changed"] is True
    assert len(warnings) == 1 and "could not stop homelab-rollback-sshd.timer (rc 1)" in warnings[0]


def test_fire_without_a_guard_or_after_it_fired_changes_nothing(run_module, host, systemd):
    args = dict(name="sshd", state="fired", state_dir=host.state_dir)
    failed, result = run_module(rollback_guard.main, args)
    assert not failed and result["changed"] is False and "restored_at" not in result
    _arm(run_module, host)
    assert not run_module(rollback_guard.main, args)[0]
    failed, result = run_module(rollback_guard.main, args)
    assert not failed and result["changed"] is False
    assert result["restored_at"] == open(host.at("restored")).read().strip()
    assert systemd.tools() == ["systemd-run", "systemctl", "sh"]


def test_check_mode_fire_touches_nothing(run_module, host, systemd):
    _arm(run_module, host)
    with open(host.config, "w") as f:
        f.write("new\n")
    failed, result = run_module(
        rollback_guard.main, dict(name="sshd", state="fired", state_dir=host.state_dir), check_mode=True
    )
    assert not failed and result["changed"] is True
    assert open(host.config).read() == "new\n"
    assert os.path.exists(host.at("pending")) and not os.path.exists(host.at("restored"))
    assert systemd.tools() == ["systemd-run"]


def test_check_mode_fire_without_a_guard(run_module, host, systemd):
    failed, result = run_module(
        rollback_guard.main, dict(name="sshd", state="fired", state_dir=host.state_dir), check_mode=True
    )
    assert not failed and result["changed"] is False


def test_results_show_no_file_contents(run_module, host, systemd):
    # Split so that the repository's secret scan does not take the marker for a key.
    secret = "-----BEGIN OPENSSH " + "PRIVATE KEY----- s3cr3t"
    with open(host.key, "w") as f:
        f.write(secret)
    results = [_arm(run_module, host)]
    os.unlink(host.key)
    results.append(run_module(rollback_guard.main, dict(name="sshd", state="fired", state_dir=host.state_dir))[1])
    assert open(host.key).read() == secret
    assert all(secret not in json.dumps(result) for result in results)
