"""The restore script that rollback_guard generates, run for real by /bin/sh against files in a tmp directory.

The guard is armed the way the module arms it (snapshot, guard.json, restore.sh, the ``pending`` token) with
the module_utils functions; only the systemd timer is left out: these tests run the script as the timer would.
The real timer is tested in the lab.
"""

import json
import os
import re
import shutil
import stat
import subprocess

import pytest

from ansible_collections.homelab.nixos.plugins.module_utils._rollback_guard import (
    GuardLayout,
    guard_info,
    render_script,
    script_failures,
    search_path,
    snapshot,
)

OLD_TIME = 1_600_000_000
IS_ROOT = os.geteuid() == 0


class Host:
    """A tmp directory standing in for the host's files, and the guard armed over them."""

    def __init__(self, root):
        self.root = root
        self.etc = root / "etc"
        self.etc.mkdir()
        self.layout = GuardLayout(str(root / "state"), "sshd")
        self.path_env = search_path(os.environ.get("PATH"))

    def file(self, name, text, mode=0o644, mtime=OLD_TIME):
        path = self.etc / name
        path.write_text(text)
        path.chmod(mode)
        os.utime(path, (mtime, mtime))
        return str(path)

    def arm(self, paths, commands=()):
        layout = self.layout
        os.makedirs(layout.files, mode=0o700)
        entries = snapshot(paths, layout)
        with open(layout.info, "w", encoding="utf-8") as f:
            json.dump(guard_info(layout, entries, 1_700_000_000, 120), f)
        with open(layout.script, "w", encoding="utf-8") as f:
            f.write(render_script(layout, entries, [list(c) for c in commands], self.path_env))
        os.chmod(layout.script, 0o700)
        open(layout.pending, "w").close()
        return entries

    def restore(self, env_path=None):
        env = dict(os.environ, LC_ALL="C")
        if env_path is not None:
            env["PATH"] = env_path
        return subprocess.run(
            ["/bin/sh", self.layout.script], capture_output=True, text=True, env=env, check=False, timeout=60
        )


@pytest.fixture
def host(tmp_path):
    return Host(tmp_path)


def test_script_is_valid_posix_sh(host):
    config = host.file("sshd_config", "Port 22\n")
    host.arm([config, str(host.etc / "new")], [["true"]])
    checked = subprocess.run(["/bin/sh", "-n", host.layout.script], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr


def test_changed_file_comes_back_with_content_mode_and_times(host):
    config = host.file("sshd_config", "PermitRootLogin no\n", mode=0o640)
    host.arm([config])
    with open(config, "w") as f:
        f.write("PermitRootLogin yes\n")
    os.chmod(config, 0o666)
    done = host.restore()
    assert done.returncode == 0, done.stderr
    assert open(config).read() == "PermitRootLogin no\n"
    st = os.lstat(config)
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert int(st.st_mtime) == OLD_TIME


@pytest.mark.skipif(not IS_ROOT, reason="changing a file's owner needs root")
def test_owner_and_group_come_back(host):
    key = host.file("ssh_host_ecdsa_key", "not really a key\n", mode=0o600)
    os.chown(key, 1234, 2345)
    host.arm([key])
    os.chown(key, 0, 0)
    assert host.restore().returncode == 0
    st = os.lstat(key)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 2345, 0o600)


def test_file_created_after_arming_is_removed(host):
    new = str(host.etc / "sshd_config.d" / "50-homelab.conf")
    entries = host.arm([new])
    assert entries == [dict(path=new, kind="absent")]
    assert os.listdir(host.layout.files) == []
    os.makedirs(os.path.dirname(new))
    with open(new, "w") as f:
        f.write("PasswordAuthentication no\n")
    done = host.restore()
    assert done.returncode == 0 and not script_failures("sshd", done.stderr), done.stderr
    assert not os.path.lexists(new)


def test_file_deleted_after_arming_comes_back_with_its_mode(host):
    secret = host.file("secret", "s3cr3t\n", mode=0o4750)
    host.arm([secret])
    os.unlink(secret)
    assert host.restore().returncode == 0
    assert open(secret).read() == "s3cr3t\n"
    assert stat.S_IMODE(os.lstat(secret).st_mode) == 0o4750


def test_symlinks_come_back_as_symlinks(host):
    target = host.file("sshd_config.real", "Port 22\n")
    link = str(host.etc / "sshd_config")
    os.symlink(target, link)
    dangling = str(host.etc / "dangling")
    os.symlink("/nonexistent/target", dangling)
    entries = host.arm([link, dangling])
    assert [entry["kind"] for entry in entries] == ["symlink", "symlink"]
    assert os.readlink(host.layout.copy(0)) == target
    # The link becomes a regular file; the dangling one points elsewhere.
    os.unlink(link)
    with open(link, "w") as f:
        f.write("Port 2222\n")
    os.unlink(dangling)
    os.symlink(target, dangling)
    done = host.restore()
    assert done.returncode == 0 and not script_failures("sshd", done.stderr), done.stderr
    assert os.path.islink(link) and os.readlink(link) == target
    assert os.path.islink(dangling) and os.readlink(dangling) == "/nonexistent/target"
    # The target was never written through the link.
    assert open(target).read() == "Port 22\n"


def test_a_path_that_is_now_a_symlink_is_replaced_not_written_through(host):
    config = host.file("sshd_config", "old\n")
    victim = host.file("victim", "untouched\n")
    host.arm([config])
    os.unlink(config)
    os.symlink(victim, config)
    assert host.restore().returncode == 0
    assert not os.path.islink(config)
    assert open(config).read() == "old\n"
    assert open(victim).read() == "untouched\n"


def test_restore_commands_run_in_order_and_a_failure_does_not_stop_the_rest(host):
    config = host.file("sshd_config", "old\n")
    log = str(host.root / "commands.log")
    host.arm(
        [config],
        [
            ["sh", "-c", 'echo "first $(cat "$1")" >>"$2"', "sh", config, log],
            ["sh", "-c", 'echo second >>"$1"; exit 3', "sh", log],
            ["/nonexistent/tool", "--flag"],
            ["sh", "-c", 'echo third >>"$1"', "sh", log],
        ],
    )
    with open(config, "w") as f:
        f.write("new\n")
    done = host.restore()
    assert done.returncode == 0
    # The files are restored before the first command runs.
    assert open(log).read().splitlines() == ["first old", "second", "third"]
    failures = script_failures("sshd", done.stderr)
    assert len(failures) == 2
    assert failures[0].startswith("exit 3 from sh -c ")
    assert failures[1] == "exit 127 from /nonexistent/tool --flag"
    assert os.path.exists(host.layout.restored)


def test_argv_words_are_not_shell_code(host):
    """Each restore command is an argv: no word is taken for an assignment, keyword, builtin or expansion."""
    out = str(host.root / "args")
    pwned = str(host.root / "pwned")
    printer = ["sh", "-c", 'for a; do printf "%s\\n" "$a"; done >"$0"', out]
    words = ["$(touch %s)" % pwned, "a b", "it's", "`touch %s`" % pwned, ";", "*", "FOO=bar", "-n", ""]
    host.arm([], [printer + words, ["exit", "0"], ["FOO=bar"]])
    done = host.restore()
    assert done.returncode == 0
    assert open(out).read().split("\n")[:-1] == words
    assert not os.path.exists(pwned)
    # `exit` and `FOO=bar` are looked up as programs, not run as shell builtins or assignments.
    assert script_failures("sshd", done.stderr) == ["exit 127 from exit 0", "exit 127 from FOO=bar"]
    assert os.path.exists(host.layout.restored)


def test_odd_path_names_are_quoted(host):
    names = ["with space", "it's", "$(touch pwned)", "new\nline", "-rf", "*"]
    paths = [host.file(name, "old %d\n" % i) for i, name in enumerate(names)]
    host.arm(paths)
    for path in paths:
        with open(path, "w") as f:
            f.write("changed\n")
    done = host.restore()
    assert done.returncode == 0 and not script_failures("sshd", done.stderr), done.stderr
    assert [open(p).read() for p in paths] == ["old %d\n" % i for i in range(len(names))]
    assert sorted(os.listdir(host.etc)) == sorted(names)
    assert not os.path.exists(os.path.join(os.getcwd(), "pwned"))


def test_a_directory_in_place_of_a_file_is_left_alone_and_reported(host):
    config = host.file("sshd_config", "old\n")
    new = str(host.etc / "new")
    host.arm([config, new])
    os.unlink(config)
    os.mkdir(config)
    os.mkdir(new)
    done = host.restore()
    assert done.returncode == 0
    assert os.path.isdir(config) and os.listdir(config) == []
    assert os.path.isdir(new)
    assert script_failures("sshd", done.stderr) == [
        "not restored, it is a directory now: %s" % config,
        "not removed, it is a directory now: %s" % new,
    ]


def test_a_missing_snapshot_copy_never_deletes_the_file(host):
    config = host.file("sshd_config", "old\n")
    host.arm([config])
    with open(config, "w") as f:
        f.write("new\n")
    os.unlink(host.layout.copy(0))
    done = host.restore()
    assert done.returncode == 0
    assert open(config).read() == "new\n"
    assert script_failures("sshd", done.stderr)[0].startswith("not restored, its snapshot copy")


def test_marker_is_written_and_the_claim_taken(host):
    config = host.file("sshd_config", "old\n")
    host.arm([config])
    done = host.restore()
    assert done.returncode == 0
    restored = open(host.layout.restored).read().strip()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", restored)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", open(host.layout.started).read().strip())
    assert not os.path.exists(host.layout.pending)
    assert not os.path.exists(host.layout.restored + ".tmp")
    assert "homelab-rollback sshd: restored, 0 problem(s)" in done.stdout


def test_running_twice_is_harmless(host):
    config = host.file("sshd_config", "old\n")
    log = str(host.root / "commands.log")
    host.arm([config], [["sh", "-c", 'echo ran >>"$1"', "sh", log]])
    assert host.restore().returncode == 0
    marker = open(host.layout.restored).read()
    # The operator fixes things by hand after the restore; a second run (a stale timer) must not undo that.
    with open(config, "w") as f:
        f.write("fixed by hand\n")
    again = host.restore()
    assert again.returncode == 0
    assert "already restored at %s: nothing to do" % marker.strip() in again.stdout
    assert not script_failures("sshd", again.stderr)
    assert open(config).read() == "fixed by hand\n"
    assert open(log).read() == "ran\n"
    assert open(host.layout.restored).read() == marker


def test_an_interrupted_restore_runs_again(host):
    config = host.file("sshd_config", "old\n")
    host.arm([config])
    # A restore that claimed the guard and died (a reboot) before writing its marker.
    os.rename(host.layout.pending, host.layout.started)
    with open(config, "w") as f:
        f.write("new\n")
    assert host.restore().returncode == 0
    assert open(config).read() == "old\n"
    assert os.path.exists(host.layout.restored)


def test_a_confirmed_guard_restores_nothing(host):
    config = host.file("sshd_config", "old\n")
    log = str(host.root / "commands.log")
    host.arm([config], [["sh", "-c", 'echo ran >>"$1"', "sh", log]])
    # What state=confirmed does before removing the directory: it claims the guard.
    os.rename(host.layout.pending, host.layout.confirmed)
    with open(config, "w") as f:
        f.write("new\n")
    done = host.restore()
    assert done.returncode == 0
    assert "nothing to do" in done.stdout
    assert open(config).read() == "new\n"
    assert not os.path.exists(log)
    assert not os.path.exists(host.layout.restored)


def _tool_dir(root, tools):
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for tool in tools:
        os.symlink(shutil.which(tool), bin_dir / tool)
    return bin_dir


def test_works_without_logger(host):
    bin_dir = _tool_dir(host.root, ["rm", "cp", "mv", "date", "cat", "sh"])
    host.path_env = str(bin_dir)
    config = host.file("sshd_config", "old\n")
    host.arm([config], [["sh", "-c", "exit 4"]])
    with open(config, "w") as f:
        f.write("new\n")
    done = host.restore(env_path=str(bin_dir))
    assert done.returncode == 0
    assert open(config).read() == "old\n"
    assert script_failures("sshd", done.stderr) == ["exit 4 from sh -c 'exit 4'"]
    assert "logger" not in done.stderr
    assert os.path.exists(host.layout.restored)


def test_failures_go_to_logger(host):
    """``logger`` here is a test double (FakeLogger): a script recording its arguments."""
    bin_dir = _tool_dir(host.root, ["rm", "cp", "mv", "date", "cat", "sh"])
    calls = host.root / "logger.calls"
    fake_logger = bin_dir / "logger"
    fake_logger.write_text('#!/bin/sh\n# FakeLogger test double\nprintf "%%s|" "$@" >>%s\necho >>%s\n' % (calls, calls))
    fake_logger.chmod(0o755)
    host.path_env = str(bin_dir)
    host.arm([], [["sh", "-c", "exit 4"]])
    assert host.restore(env_path=str(bin_dir)).returncode == 0
    lines = calls.read_text().splitlines()
    assert "-t|homelab-rollback|-p|user.err|sshd: failed: exit 4 from sh -c 'exit 4'|" in lines
    assert lines[-1] == "-t|homelab-rollback|sshd: restored, 1 problem(s)|"
