"""Unit tests of the rollback_guard logic: argument checks, the restore script text, the systemd argv,
the state directory and the snapshot, on tmp directories. Nothing runs a command here; the script itself is
run by tests/integration/test_rollback_guard_script.py."""

import os
import shlex
import stat

import pytest

from ansible_collections.homelab.nixos.plugins.module_utils._rollback_guard import (
    ABSENT,
    ARMED,
    CONFIRMED,
    FALLBACK_PATH,
    FIRED,
    RESTORING,
    GuardError,
    GuardInputError,
    GuardLayout,
    GuardStatus,
    already_armed_message,
    check_commands,
    check_params,
    check_paths,
    command_text,
    fired_message,
    format_time,
    guard_info,
    preview,
    read_guard,
    render_script,
    restore_argv,
    restoring_message,
    script_failures,
    search_path,
    snapshot,
    stop_timer_argv,
    systemd_run_argv,
    timer_not_loaded,
    timer_unit,
    unit_name,
    unsafe_state_dir,
)

STATE_DIR = "/var/lib/homelab/rollback"


def _params(**kw):
    params = dict(name="sshd", state="armed", paths=[], restore_commands=[["systemctl", "reload", "ssh"]])
    params.update(timeout=120, state_dir=STATE_DIR)
    params.update(kw)
    return params


def _problems(excinfo):
    message = str(excinfo.value)
    assert message.startswith("invalid arguments: ")
    return message[len("invalid arguments: ") :].split("; ")


# --- arguments -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sshd", "a", "0", "fw-nft", "a" * 40, "x-1-"])
def test_good_names(name):
    assert check_params(_params(name=name))["name"] == name


@pytest.mark.parametrize("name", ["", "-sshd", "SSHD", "ssh_d", "a" * 41, "sshd\n", "../x", "a b", None, 3])
def test_bad_names(name):
    with pytest.raises(GuardInputError, match=r"name .* is invalid"):
        check_params(_params(name=name, state="confirmed"))


@pytest.mark.parametrize(("timeout", "ok"), [(9, False), (10, True), (120, True), (3600, True), (3601, False)])
def test_timeout_range(timeout, ok):
    if ok:
        assert check_params(_params(timeout=timeout))["timeout"] == timeout
    else:
        with pytest.raises(GuardInputError, match="timeout %d is out of range: use 10 to 3600 seconds" % timeout):
            check_params(_params(timeout=timeout))


def test_timeout_defaults_and_rejects_bool():
    assert check_params(_params(timeout=None))["timeout"] == 120
    with pytest.raises(GuardInputError, match="timeout True"):
        check_params(_params(timeout=True))


def test_paths_are_normalised_and_may_be_absent(tmp_path):
    existing = tmp_path / "sshd_config"
    existing.write_text("x")
    checked = check_params(_params(paths=[str(tmp_path) + "/./sshd_config", str(tmp_path / "new" / "file")]))
    assert checked["paths"] == [str(existing), str(tmp_path / "new" / "file")]


def test_every_problem_in_one_message(tmp_path):
    directory = tmp_path / "dir"
    directory.mkdir()
    with pytest.raises(GuardInputError) as excinfo:
        check_params(
            _params(
                name="Bad",
                timeout=5,
                paths=["etc/relative", str(directory), "/etc/x", "/etc/./x", STATE_DIR + "/sshd/restore.sh"],
                restore_commands=[[], "systemctl reload ssh", ["ok"], ["echo", {"a": 1}], [""]],
            )
        )
    assert _problems(excinfo) == [
        "name 'Bad' is invalid: use 1-40 of [a-z0-9-], starting with a letter or digit",
        "timeout 5 is out of range: use 10 to 3600 seconds",
        "paths[0] etc/relative is not absolute",
        "paths[1] %s is a directory: guard the files in it one by one" % directory,
        "paths[3] /etc/x is listed twice",
        "paths[4] %s/sshd/restore.sh lies inside state_dir %s" % (STATE_DIR, STATE_DIR),
        "restore_commands[0] is an empty argv",
        "restore_commands[1] is a string: write it as a list of words, for example [systemctl, reload, ssh]",
        "restore_commands[3] has a word that is not a string: {'a': 1}",
        "restore_commands[4] starts with an empty word",
    ]


def test_other_file_types_are_rejected(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    paths, problems = check_paths([str(fifo)], STATE_DIR)
    assert paths == []
    assert problems == ["paths[0] %s is not a regular file or a symlink" % fifo]


def test_symlink_to_a_directory_is_a_symlink(tmp_path):
    (tmp_path / "dir").mkdir()
    os.symlink(tmp_path / "dir", tmp_path / "link")
    assert check_paths([str(tmp_path / "link")], STATE_DIR) == ([str(tmp_path / "link")], [])


def test_nul_bytes_are_rejected():
    assert check_paths(["/etc/a\0b"], STATE_DIR)[1] == ["paths[0] contains a NUL byte"]
    assert check_commands([["echo", "a\0b"]])[1] == ["restore_commands[0] has a word with a NUL byte"]


def test_command_words_become_strings_but_not_bools():
    assert check_commands([["sleep", 1], ["echo", 1.5]]) == ([["sleep", "1"], ["echo", "1.5"]], [])
    assert check_commands([["echo", True]])[1] == ["restore_commands[0] has a word that is not a string: True"]
    assert check_commands([{"argv": ["x"]}])[1] == ["restore_commands[0] must be a list of words"]


def test_armed_needs_something_to_guard():
    with pytest.raises(GuardInputError, match="state=armed needs paths or restore_commands"):
        check_params(_params(restore_commands=[]))


@pytest.mark.parametrize("state", ["confirmed", "fired"])
def test_arm_options_are_ignored_for_other_states(state):
    checked = check_params(_params(state=state, paths=["relative"], restore_commands=[[]], timeout=1))
    assert checked["paths"] == [] and checked["restore_commands"] == [] and checked["timeout"] is None


def test_state_dir_must_be_absolute_and_is_normalised():
    with pytest.raises(GuardInputError, match="state_dir var/lib is not absolute"):
        check_params(_params(state_dir="var/lib"))
    assert check_params(_params(state_dir="/var/lib/homelab/rollback/"))["state_dir"] == STATE_DIR
    assert check_params(_params(state_dir=None))["state_dir"] == STATE_DIR


def test_unknown_state():
    with pytest.raises(GuardInputError, match="state 'gone' is not one of armed, confirmed, fired"):
        check_params(_params(state="gone"))


# --- script --------------------------------------------------------------------------------------------------


def _entries(layout):
    return [
        dict(path="/etc/ssh/sshd_config", kind="file", copy=layout.copy(0)),
        dict(path="/etc/ssh/sshd_config.d/50-homelab.conf", kind="absent"),
        dict(path="/etc/ssh/it's here", kind="symlink", copy=layout.copy(2)),
    ]


def test_script_restores_each_path_then_runs_the_commands_then_writes_the_marker():
    layout = GuardLayout(STATE_DIR, "sshd")
    commands = [["systemctl", "reload", "ssh"], ["nft", "-f", "/etc/nftables.conf"]]
    script = render_script(layout, _entries(layout), commands, "/usr/bin:/bin")
    lines = script.splitlines()
    assert lines[0] == "#!/bin/sh"
    assert "set -u" in lines
    assert not any(line.startswith("set -e") or line == "set -eu" for line in lines)
    assert "PATH=/usr/bin:/bin" in lines
    assert "dir=/var/lib/homelab/rollback/sshd" in lines
    order = [
        "    rm -f -- /etc/ssh/sshd_config || failed 'could not remove /etc/ssh/sshd_config'",
        "    cp -a -- /var/lib/homelab/rollback/sshd/files/0 /etc/ssh/sshd_config || failed 'could not restore "
        "/etc/ssh/sshd_config from /var/lib/homelab/rollback/sshd/files/0'",
        "    rm -f -- /etc/ssh/sshd_config.d/50-homelab.conf || failed 'could not remove "
        "/etc/ssh/sshd_config.d/50-homelab.conf'",
        "    rm -f -- '/etc/ssh/it'\"'\"'s here' || failed 'could not remove /etc/ssh/it'\"'\"'s here'",
        "    cp -a -- /var/lib/homelab/rollback/sshd/files/2 '/etc/ssh/it'\"'\"'s here' || failed 'could not restore "
        "/etc/ssh/it'\"'\"'s here from /var/lib/homelab/rollback/sshd/files/2'",
        "(exec systemctl reload ssh) </dev/null || failed \"exit $? from \"'systemctl reload ssh'",
        "(exec nft -f /etc/nftables.conf) </dev/null || failed \"exit $? from \"'nft -f /etc/nftables.conf'",
        'if date -u +%Y-%m-%dT%H:%M:%SZ >"$dir/restored.tmp" && mv -f -- "$dir/restored.tmp" "$dir/restored"; then',
        "exit 0",
    ]
    assert [lines.index(line) for line in order] == sorted(lines.index(line) for line in order)
    assert lines[-1] == "exit 0"
    # Never a cp for the absent path, and the copies are named by index.
    assert "files/1" not in script
    assert "command -v logger >/dev/null 2>&1" in script
    assert "logger -t homelab-rollback" in script


def test_script_quotes_every_path():
    nasty = "/etc/$(touch /pwned) `x` \"q\" 'a'\nb;c"
    layout = GuardLayout("/var/lib/with space", "sshd")
    script = render_script(layout, [dict(path=nasty, kind="file", copy=layout.copy(0))], [], "/bin")
    assert "dir='/var/lib/with space/sshd'" in script

    def command_at(prefix):
        start = script.index(prefix)
        return shlex.split(script[start : script.index(" || failed", start)])

    assert command_at("rm -f -- ") == ["rm", "-f", "--", nasty]
    assert command_at("cp -a -- ") == ["cp", "-a", "--", layout.copy(0), nasty]
    # A newline in a path cannot end a comment line and start a command.
    assert "# /etc/$(touch /pwned) `x` \"q\" 'a'\\nb;c (file when the guard was armed)" in script.splitlines()


def test_script_claims_the_guard_and_does_nothing_twice():
    layout = GuardLayout(STATE_DIR, "sshd")
    script = render_script(layout, [], [["true"]], "/bin")
    assert 'if [ -e "$dir/restored" ]; then' in script
    assert 'mv -- "$dir/pending" "$dir/started"' in script
    assert script.index('restored" ]; then') < script.index('"$dir/pending"') < script.index("(exec true)")


def test_command_text_quotes_words():
    assert command_text(["systemctl", "reload", "ssh"]) == "systemctl reload ssh"
    assert shlex.split(command_text(["sh", "-c", "a; b", "it's", ""])) == ["sh", "-c", "a; b", "it's", ""]


def test_search_path_keeps_absolute_entries_then_the_fallback():
    path = search_path("/home/u/bin:relative::/usr/bin:/home/u/bin")
    assert path.split(":") == ["/home/u/bin", "/usr/bin"] + [p for p in FALLBACK_PATH if p != "/usr/bin"]
    assert search_path(None).split(":") == list(FALLBACK_PATH)


def test_script_failures_reads_only_this_guards_failure_lines():
    stderr = (
        "homelab-rollback sshd: failed: exit 3 from false\n"
        "cp: cannot stat 'x'\n"
        "homelab-rollback other: failed: not this guard\n"
        "homelab-rollback sshd: failed: could not remove /etc/x\n"
    )
    assert script_failures("sshd", stderr) == ["exit 3 from false", "could not remove /etc/x"]
    assert script_failures("sshd", None) == []


# --- commands ------------------------------------------------------------------------------------------------


def test_systemd_run_argv():
    layout = GuardLayout(STATE_DIR, "sshd")
    assert systemd_run_argv(layout, 120, "/usr/bin/systemd-run") == [
        "/usr/bin/systemd-run",
        "--unit",
        "homelab-rollback-sshd",
        "--description",
        "homelab.nixos rollback guard sshd",
        "--on-active=120s",
        "--timer-property=AccuracySec=1s",
        "--collect",
        "/bin/sh",
        "/var/lib/homelab/rollback/sshd/restore.sh",
    ]


def test_unit_names_and_other_argv():
    layout = GuardLayout(STATE_DIR, "fw")
    assert unit_name("fw") == "homelab-rollback-fw"
    assert timer_unit("fw") == "homelab-rollback-fw.timer"
    assert stop_timer_argv("fw", "/bin/systemctl") == ["/bin/systemctl", "stop", "homelab-rollback-fw.timer"]
    assert restore_argv(layout) == ["/bin/sh", "/var/lib/homelab/rollback/fw/restore.sh"]


def test_timer_not_loaded():
    assert timer_not_loaded(
        5, "Failed to stop homelab-rollback-sshd.timer: Unit homelab-rollback-sshd.timer not loaded."
    )
    assert not timer_not_loaded(0, "")
    assert not timer_not_loaded(1, "Failed to connect to bus: No such file or directory")


# --- state directory -----------------------------------------------------------------------------------------


def _layout(tmp_path):
    layout = GuardLayout(str(tmp_path / "state"), "sshd")
    os.makedirs(layout.files)
    return layout


def _write(path, text=""):
    with open(path, "w") as f:
        f.write(text)


def test_read_guard_statuses(tmp_path):
    layout = GuardLayout(str(tmp_path / "state"), "sshd")
    assert read_guard(layout).status == ABSENT
    os.makedirs(layout.files)
    _write(layout.info, '{"fires_at": 1700000120}')
    _write(layout.pending)
    status = read_guard(layout)
    assert (status.status, status.armed, status.info) == (ARMED, True, {"fires_at": 1700000120})
    os.rename(layout.pending, layout.started)
    _write(layout.started, "2026-01-31T12:02:00Z\n")
    status = read_guard(layout)
    assert (status.status, status.armed, status.started_at) == (RESTORING, True, "2026-01-31T12:02:00Z")
    _write(layout.restored, "2026-01-31T12:02:01Z\n")
    status = read_guard(layout)
    assert (status.status, status.armed, status.restored_at) == (FIRED, False, "2026-01-31T12:02:01Z")


def test_read_guard_confirmed_leftover_and_bad_json(tmp_path):
    layout = _layout(tmp_path)
    _write(layout.info, "{not json")
    _write(layout.confirmed)
    status = read_guard(layout)
    assert (status.status, status.info, status.armed, status.exists) == (CONFIRMED, None, False, True)


def test_empty_marker_is_an_unknown_time(tmp_path):
    layout = _layout(tmp_path)
    _write(layout.restored)
    assert read_guard(layout).restored_at == "an unknown time"


def test_already_armed_message_says_when_it_fires():
    layout = GuardLayout(STATE_DIR, "sshd")
    status = GuardStatus(ARMED, {"fires_at": 1_700_000_120})
    message = already_armed_message(layout, status, 1_700_000_030)
    assert message == (
        "rollback guard sshd is already armed (snapshot /var/lib/homelab/rollback/sshd): its timer fires at "
        "2023-11-14T22:15:20Z (in 90 s). Run state=confirmed to keep the current configuration, or state=fired "
        "to restore the snapshot now, then arm it again"
    )


def test_already_armed_message_when_overdue_unknown_or_restoring():
    layout = GuardLayout(STATE_DIR, "sshd")
    overdue = already_armed_message(layout, GuardStatus(ARMED, {"fires_at": 1_700_000_000}), 1_700_000_600)
    assert "it was due at 2023-11-14T22:13:20Z (600 s ago)" in overdue and "reboot" in overdue
    unknown = already_armed_message(layout, GuardStatus(ARMED, None), 0)
    assert "its firing time is unknown" in unknown
    restoring = already_armed_message(layout, GuardStatus(RESTORING, None, "2026-01-31T12:00:00Z"), 0)
    assert "its restore started at 2026-01-31T12:00:00Z and has not finished" in restoring
    for message in (overdue, unknown, restoring):
        assert "state=confirmed" in message and "state=fired" in message


def test_fired_and_restoring_messages():
    layout = GuardLayout(STATE_DIR, "sshd")
    fired = fired_message(layout, GuardStatus(FIRED, None, None, "2026-01-31T12:02:01Z"))
    assert "the guard fired at 2026-01-31T12:02:01Z: the host already restored the previous configuration" in fired
    restoring = restoring_message(layout, GuardStatus(RESTORING, None, "2026-01-31T12:02:00Z"))
    assert "fired at 2026-01-31T12:02:00Z and its restore has not finished" in restoring


def test_format_time():
    assert format_time(0) == "1970-01-01T00:00:00Z"
    assert format_time(1_700_000_000.7) == "2023-11-14T22:13:20Z"


def test_guard_info():
    layout = GuardLayout(STATE_DIR, "sshd")
    entries = [dict(path="/a", kind="file", copy="x"), dict(path="/b", kind="absent")]
    assert guard_info(layout, entries, 1_700_000_000.5, 120) == {
        "name": "sshd",
        "paths": ["/a", "/b"],
        "absent_paths": ["/b"],
        "armed_at": 1_700_000_000,
        "fires_at": 1_700_000_120,
        "unit": "homelab-rollback-sshd",
    }


def test_snapshot_copies_files_and_symlinks_and_records_absent_paths(tmp_path):
    layout = _layout(tmp_path)
    config = tmp_path / "sshd_config"
    config.write_text("Port 22\n")
    config.chmod(0o2640)
    os.utime(config, (1_600_000_000, 1_600_000_000))
    link = tmp_path / "link"
    os.symlink("sshd_config", link)
    absent = tmp_path / "absent"
    entries = snapshot([str(config), str(absent), str(link)], layout)
    assert entries == [
        dict(path=str(config), kind="file", copy=layout.copy(0)),
        dict(path=str(absent), kind="absent"),
        dict(path=str(link), kind="symlink", copy=layout.copy(2)),
    ]
    assert sorted(os.listdir(layout.files)) == ["0", "2"]
    copy = os.lstat(layout.copy(0))
    original = os.lstat(config)
    assert open(layout.copy(0)).read() == "Port 22\n"
    assert stat.S_IMODE(copy.st_mode) == 0o2640
    assert (copy.st_uid, copy.st_gid, int(copy.st_mtime)) == (original.st_uid, original.st_gid, 1_600_000_000)
    assert os.readlink(layout.copy(2)) == "sshd_config"


def test_snapshot_refuses_a_directory(tmp_path):
    layout = _layout(tmp_path)
    (tmp_path / "dir").mkdir()
    with pytest.raises(GuardError, match="is a directory"):
        snapshot([str(tmp_path / "dir")], layout)


def test_snapshot_of_an_unreadable_file_fails_clearly(tmp_path, monkeypatch):
    layout = _layout(tmp_path)
    config = tmp_path / "sshd_config"
    config.write_text("x")

    def refuse(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "lchown", refuse)
    with pytest.raises(GuardError, match=r"cannot snapshot .*: Operation not permitted \(the module must run as root"):
        snapshot([str(config)], layout)


def test_preview_does_not_copy(tmp_path):
    (tmp_path / "a").write_text("x")
    assert preview([str(tmp_path / "a"), str(tmp_path / "b")]) == [
        dict(path=str(tmp_path / "a"), kind="file"),
        dict(path=str(tmp_path / "b"), kind="absent"),
    ]


def test_unsafe_state_dir(tmp_path):
    assert unsafe_state_dir(str(tmp_path / "missing")) is None
    safe = tmp_path / "safe"
    safe.mkdir(mode=0o700)
    assert unsafe_state_dir(str(safe)) is None
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    assert "writable by group or others" in unsafe_state_dir(str(shared))
    (tmp_path / "file").write_text("")
    assert "is not a directory" in unsafe_state_dir(str(tmp_path / "file"))
