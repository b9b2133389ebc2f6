"""The backup runner's logic (roles/backup/files/homelab_backup.py) without restic.

Configuration validation, restic arguments and environment, error classification (on the messages the real
restic 0.14 prints, captured with LC_ALL=C), metric rendering, the manifest comparison rules, and the order of
restic calls in a backup run, against a scripted stand-in for ``subprocess.run``. The real restic is exercised
in tests/integration/test_backup_runner.py.
"""

import copy
import fcntl
import hashlib
import importlib.util
import json
import os
import random
import re
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SPEC = importlib.util.spec_from_file_location(
    "homelab_backup", os.path.join(ROOT, "roles", "backup", "files", "homelab_backup.py")
)
runner = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(runner)

SFTP_COMMAND = (
    "ssh -i /root/.ssh/homelab_backup_ed25519 -o IdentitiesOnly=yes -o BatchMode=yes"
    " -o UserKnownHostsFile=/etc/homelab/backup/known_hosts -o StrictHostKeyChecking=yes -o ConnectTimeout=10"
    " -o ServerAliveInterval=15 -p 22 restic-samsung@10.89.60.12 -s sftp"
)
# The brief's example, with the canary moved inside `paths` (a canary outside them is a config error).
EXAMPLE = {
    "host": "samsung",
    "restic": "/usr/bin/restic",
    "state_dir": "/var/lib/homelab/backup",
    "cache_dir": "/var/cache/homelab-backup",
    "textfile": "/var/lib/prometheus/node-exporter/homelab_backup.prom",
    "paths": ["/home", "/var/lib/homelab/backup/data"],
    "excludes": ["*.tmp", "/home/*/.cache"],
    "tags": ["homelab"],
    "canary_file": "/var/lib/homelab/backup/data/canary",
    "check_read_data_subset": "10%",
    "drill_sample": 20,
    "drill_dir": "/var/tmp/homelab-backup-drill",
    "lock_timeout_seconds": 3600,
    "repositories": [
        {
            "name": "local",
            "url": "/var/lib/homelab/backup/repo",
            "password_file": "/var/lib/homelab/backup/local.password",
            "retention": {"keep_daily": 7, "keep_weekly": 4, "keep_monthly": 6},
        },
        {
            "name": "p510",
            "url": "sftp:restic-samsung@10.89.60.12:/repo",
            "password_file": "/var/lib/homelab/backup/p510.password",
            "sftp_command": SFTP_COMMAND,
            "from": "local",
            "retention": {"keep_daily": 14, "keep_weekly": 8, "keep_monthly": 12},
        },
    ],
}

# Messages of the real restic 0.14.0 (Debian 12), LC_ALL=C.
MISSING_LOCAL = (
    "Fatal: unable to open config file: stat /srv/repo/config: no such file or directory\n"
    "Is there a repository at the following location?\n/srv/repo\n"
)
MISSING_SFTP = (
    "Fatal: unable to open config file: Lstat: file does not exist\n"
    "Is there a repository at the following location?\nsftp:x:/tmp/repo\n"
)
WRONG_PASSWORD = "Fatal: wrong password or no key found\n"
UNREACHABLE_SSH = (
    "subprocess ssh: ssh: connect to host 127.0.0.1 port 1: Connection refused\n"
    "Fatal: unable to open repository at sftp:nobody@127.0.0.1:/repo: unable to start the sftp session, error: EOF\n"
)
NO_SPACE = (
    "Fatal: unable to save snapshot: write /mnt/small/repo/data/51/51a9d4-tmp-1649186074: no space left on device\n"
)
PASSWORD_FILE_MISSING = "Resolving password failed: Fatal: /etc/nope does not exist\n"
CHECK_ERRORS = (
    "unable to create temporary directory for cache during check, disabling cache: stat /c: no such file or "
    "directory\n"
    "Pack ID does not match, want 79666f549e6fe3ef, got 474dd12dc76aaed5\n"
    "Fatal: repository contains errors\n"
)
RESTORE_ERRORS = (
    "ignoring error for /src/big: ciphertext verification failed\n"
    "ignoring error for /src/big: UtimesNano: no such file or directory\nFatal: There were 2 errors\n"
)
# restic's lock conflict message (format of restic's lock.go; not reproduced against 0.14 here).
LOCKED = (
    "Fatal: unable to create lock in backend: repository is already locked exclusively by PID 34 on samsung "
    "by root (UID 0, GID 0)\nlock was created at 2026-01-02 03:04:05 (3m0s ago)\nstorage ID 405aaee2\n"
)


def _problems(raw):
    with pytest.raises(runner.ConfigError) as caught:
        runner.validate_config(raw)
    return caught.value.problems


def _changed(**top):
    raw = copy.deepcopy(EXAMPLE)
    raw.update(top)
    return raw


def _repo_changed(index, **changes):
    raw = copy.deepcopy(EXAMPLE)
    raw["repositories"][index].update(changes)
    for key, value in changes.items():
        if value is None:
            del raw["repositories"][index][key]
    return raw


# --- configuration ---------------------------------------------------------------------------------------


def test_the_example_config_is_valid():
    cfg = runner.validate_config(copy.deepcopy(EXAMPLE))
    assert cfg.primary.name == "local"
    assert [r.name for r in cfg.replicas] == ["p510"]
    assert cfg.manifest_path == "/var/lib/homelab/backup/manifest.json"
    assert cfg.drill_sample == 20
    assert cfg.lock_timeout_seconds == 3600
    assert cfg.primary.local_path == "/var/lib/homelab/backup/repo"
    assert cfg.replicas[0].local_path is None


def test_optional_keys_have_defaults():
    raw = copy.deepcopy(EXAMPLE)
    for key in ("excludes", "tags", "canary_file", "lock_timeout_seconds"):
        del raw[key]
    cfg = runner.validate_config(raw)
    assert (cfg.excludes, cfg.tags, cfg.canary_file, cfg.lock_timeout_seconds) == ((), (), None, 3600)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (_changed(colour="blue"), "colour: unknown key"),
        (_changed(host=None), "host: must be a non-empty string"),
        (_changed(host="sam sung"), "host: 'sam sung' does not match"),
        (_changed(paths="/home"), "paths: must be a non-empty list of strings"),
        (_changed(paths=[]), "paths: must be a non-empty list of strings"),
        (_changed(paths=["/home", "data"]), "paths[1]: must be an absolute path"),
        (_changed(state_dir="var/lib"), "state_dir: must be an absolute path"),
        (_changed(restic="bin/restic"), "restic: must be an absolute path or a command name"),
        (_changed(tags=["a,b"]), "tags[0]: 'a,b' does not match"),
        (_changed(drill_sample=0), 'drill_sample: must be a positive integer or "all"'),
        (_changed(drill_sample="some"), 'drill_sample: must be a positive integer or "all"'),
        (_changed(drill_sample=True), 'drill_sample: must be a positive integer or "all"'),
        (_changed(lock_timeout_seconds=-1), "lock_timeout_seconds: must be an integer >= 0"),
        (_changed(lock_timeout_seconds="60"), "lock_timeout_seconds: must be an integer >= 0"),
        (_changed(check_read_data_subset="0%"), "check_read_data_subset: '0%' is not"),
        (_changed(check_read_data_subset="150%"), "check_read_data_subset: '150%' is not"),
        (_changed(check_read_data_subset="3/2"), "check_read_data_subset: '3/2' is not"),
        (_changed(check_read_data_subset="lots"), "check_read_data_subset: 'lots' is not"),
        (_changed(repositories=[]), "repositories: must be a non-empty list"),
        (_changed(repositories=["local"]), "repositories[0]: must be an object"),
        (_changed(canary_file="/var/lib/homelab/backup/canary"), "canary_file: /var/lib/homelab/backup/canary is not"),
        (_changed(canary_file="/home/canary.tmp"), "canary_file: /home/canary.tmp matches an exclude pattern"),
        (_changed(excludes=["*.json"]), "excludes: a pattern matches <state_dir>/manifest.json"),
        (_changed(paths=["/var/lib/homelab"]), "repository local: /var/lib/homelab/backup/repo is inside"),
        (_repo_changed(0, name="Local"), "repositories[0].name: 'Local' does not match"),
        (_repo_changed(0, colour="blue"), "repositories[0].colour: unknown key"),
        (_repo_changed(0, password_file=None), "repositories[0].password_file: missing"),
        (_repo_changed(0, password_file="local.password"), "repositories[0].password_file: must be an absolute"),
        (_repo_changed(0, url="repo"), "repositories[0].url: must be an absolute path or start with"),
        (_repo_changed(0, retention=None), "repositories[0].retention: missing"),
        (_repo_changed(0, retention={}), "repositories[0].retention: must be an object with at least one"),
        (_repo_changed(0, retention={"keep_daily": 0}), "repositories[0].retention.keep_daily: must be a positive"),
        (_repo_changed(0, retention={"keep_daily": True}), "repositories[0].retention.keep_daily: must be a positive"),
        (_repo_changed(0, retention={"keep_days": 3}), "repositories[0].retention.keep_days: unknown key"),
        (_repo_changed(0, sftp_command="ssh x"), "repositories[0].sftp_command: only for sftp: repositories"),
        (_repo_changed(1, name="local"), "repositories: name 'local' is used more than once"),
        (
            _repo_changed(1, **{"from": None}),
            "exactly one repository must have no 'from' (the primary); found local, p510",
        ),
        (_repo_changed(1, **{"from": "p510"}), "repository p510: 'from' must name the primary 'local', not 'p510'"),
    ],
)
def test_invalid_configs(raw, expected):
    problems = _problems(raw)
    assert any(expected in p for p in problems), problems


def test_no_primary_is_an_error():
    raw = _repo_changed(0, **{"from": "p510"})
    assert any("found none" in p for p in _problems(raw))


def test_a_replica_of_an_sftp_primary_cannot_have_its_own_sftp_command():
    raw = copy.deepcopy(EXAMPLE)
    raw["repositories"][0].update(url="sftp:a@b:/repo", sftp_command="ssh a@b -s sftp")
    problems = _problems(raw)
    assert any("cannot have its own sftp_command" in p for p in problems), problems


def test_every_problem_is_listed_at_once():
    raw = _changed(colour="blue", host=3, drill_sample=0, paths=["rel"])
    raw["repositories"][1]["retention"] = {"keep_forever": 1}
    problems = _problems(raw)
    assert len(problems) >= 5, problems


def test_bad_config_exits_2_with_one_line_per_problem(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_changed(colour="blue", drill_sample=0)))
    assert runner.main(["--config", str(config), "backup"]) == runner.EXIT_CONFIG
    lines = capsys.readouterr().err.splitlines()
    assert f"homelab-backup: config {config}: colour: unknown key" in lines
    assert len(lines) == 2
    assert all(line.startswith("homelab-backup: config ") for line in lines)


def test_unreadable_or_broken_config_exits_2(tmp_path, capsys):
    assert runner.main(["--config", str(tmp_path / "absent.json"), "check"]) == runner.EXIT_CONFIG
    (tmp_path / "broken.json").write_text("{")
    assert runner.main(["--config", str(tmp_path / "broken.json"), "check"]) == runner.EXIT_CONFIG
    err = capsys.readouterr().err
    assert "cannot read: No such file or directory" in err
    assert "not valid JSON" in err


@pytest.mark.parametrize(
    ("path", "excluded"),
    [
        ("/home/alice/notes.tmp", True),
        ("/home/alice/.cache", True),
        ("/home/alice/.cache/x", False),  # pruned with its directory, never reached
        ("/home/alice/cache", False),
        ("/home/alice/notes.txt", False),
    ],
)
def test_exclude_approximation(path, excluded):
    assert runner.is_excluded(path, ["*.tmp", "/home/*/.cache"]) is excluded


def test_is_inside():
    assert runner.is_inside("/home/a", "/home")
    assert runner.is_inside("/home", "/home")
    assert runner.is_inside("/etc/x", "/")
    assert not runner.is_inside("/homer", "/home")


# --- restic arguments and environment -------------------------------------------------------------------


def test_retention_args_in_a_fixed_order():
    retention = {"keep_monthly": 6, "keep_last": 2, "keep_daily": 7}
    assert runner.retention_args(retention) == ["--keep-last", "2", "--keep-daily", "7", "--keep-monthly", "6"]


def _config(**changes):
    return runner.validate_config(_changed(**changes))


def test_argv_never_holds_a_password(tmp_path):
    raw = copy.deepcopy(EXAMPLE)
    passwords = {}
    for repo in raw["repositories"]:
        path = tmp_path / f"{repo['name']}.password"
        passwords[repo["name"]] = os.urandom(12).hex()
        path.write_text(passwords[repo["name"]])
        repo["password_file"] = str(path)
    cfg = runner.validate_config(raw)
    replica = cfg.replicas[0]
    argvs = [
        runner.restic_argv(cfg, replica, ["copy", *runner.from_args(cfg.primary), "--host", cfg.host]),
        runner.restic_argv(cfg, replica, ["init", "--copy-chunker-params", *runner.from_args(cfg.primary)]),
        runner.restic_argv(cfg, cfg.primary, runner.backup_args(cfg)),
    ]
    for argv in argvs:
        assert all(isinstance(a, str) for a in argv)
        for secret in passwords.values():
            assert not any(secret in a for a in argv)
    assert "--from-password-file" in argvs[0]
    assert argvs[0][argvs[0].index("--from-password-file") + 1] == str(tmp_path / "local.password")
    env = runner.restic_env(replica, base={"PATH": "/bin", "RESTIC_PASSWORD": "leak", "RESTIC_REPOSITORY": "/x"})
    assert env == {"PATH": "/bin", "LC_ALL": "C", "RESTIC_PASSWORD_FILE": str(tmp_path / "p510.password")}


def test_sftp_command_goes_to_every_call_on_the_replica():
    cfg = runner.validate_config(copy.deepcopy(EXAMPLE))
    argv = runner.restic_argv(cfg, cfg.replicas[0], ["cat", "config"])
    assert argv[:7] == [
        "/usr/bin/restic",
        "--repo",
        "sftp:restic-samsung@10.89.60.12:/repo",
        "--cache-dir",
        "/var/cache/homelab-backup",
        "--option",
        f"sftp.command={SFTP_COMMAND}",
    ]
    assert "--option" not in runner.restic_argv(cfg, cfg.primary, ["cat", "config"])


def test_a_local_replica_of_an_sftp_primary_carries_the_primary_command():
    raw = copy.deepcopy(EXAMPLE)
    raw["repositories"][0].update(url="sftp:a@b:/repo", sftp_command="ssh a@b -s sftp")
    raw["repositories"][1].update(url="/srv/replica")
    del raw["repositories"][1]["sftp_command"]
    cfg = runner.validate_config(raw)
    assert "sftp.command=ssh a@b -s sftp" in runner.restic_argv(cfg, cfg.replicas[0], ["copy"])


def test_backup_args():
    cfg = runner.validate_config(copy.deepcopy(EXAMPLE))
    assert runner.backup_args(cfg) == [
        "backup",
        "--json",
        "--host",
        "samsung",
        "--tag",
        "homelab",
        "--exclude",
        "*.tmp",
        "--exclude",
        "/home/*/.cache",
        "/home",
        "/var/lib/homelab/backup/data",
        "/var/lib/homelab/backup/manifest.json",
    ]


def test_restore_args_escape_glob_characters():
    args = runner.restore_args("abc123", "/t", ["/a/we ird [1]*?.txt", "/a/back\\slash"])
    assert args == [
        "restore",
        "abc123",
        "--target",
        "/t",
        "--include",
        "/a/we ird \\[1\\]\\*\\?.txt",
        "--include",
        "/a/back\\\\slash",
    ]
    assert runner.restore_args("abc123", "/t") == ["restore", "abc123", "--target", "/t"]


# --- classification ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stderr", "kind", "message"),
    [
        (MISSING_LOCAL, runner.MISSING, "no repository at this location"),
        (MISSING_SFTP, runner.MISSING, "no repository at this location"),
        (WRONG_PASSWORD, runner.PASSWORD, "wrong password or no key found"),
        (
            UNREACHABLE_SSH,
            runner.UNREACHABLE,
            "target unreachable (ssh: connect to host 127.0.0.1 port 1: Connection refused)",
        ),
        (NO_SPACE, runner.NO_SPACE, "no space left on device"),
        (PASSWORD_FILE_MISSING, runner.PASSWORD_FILE, "cannot read the password file (/etc/nope does not exist)"),
        (
            CHECK_ERRORS,
            runner.CORRUPT,
            "repository contains errors (Pack ID does not match, want 79666f549e6fe3ef, got",
        ),
        (RESTORE_ERRORS, runner.CORRUPT, "repository contains errors (ignoring error for /src/big: ciphertext"),
        (LOCKED, runner.LOCKED, "locked by another restic process (unable to create lock in backend: repository is"),
        (
            "Fatal: unable to open repository at rest:http://127.0.0.1:1/: "
            "dial tcp 127.0.0.1:1: connect: connection refused\n",
            runner.UNREACHABLE,
            "target unreachable (unable to open repository",
        ),
    ],
)
def test_classify_real_restic_messages(stderr, kind, message):
    failure = runner.classify(stderr, 1, "cat")
    assert failure.kind == kind
    assert failure.message.startswith(message)
    assert "\n" not in failure.message


def test_a_config_that_cannot_be_read_is_not_a_missing_repository():
    stderr = (
        "Fatal: unable to open config file: stat /srv/repo/config: permission denied\n"
        "Is there a repository at the following location?\n/srv/repo\n"
    )
    failure = runner.classify(stderr, 1, "cat config")
    assert failure.kind == runner.OTHER
    assert failure.message == (
        "restic cat config failed (exit 1): unable to open config file: stat /srv/repo/config: permission denied"
    )


def test_unknown_failures_keep_the_last_fatal_line():
    failure = runner.classify("something\nFatal: the sky fell\nmore noise\n", 1, "forget")
    assert failure == runner.ResticFailure(runner.OTHER, "restic forget failed (exit 1): the sky fell")
    assert runner.classify("", 137, "backup").message == "restic backup failed (exit 137): no error message"


def test_parse_backup_output():
    output = "\n".join(
        [
            '{"message_type":"status","percent_done":0.5}',
            '{"message_type":"error","error":{"Op":"open","Path":"/src/locked","Err":13},"during":"archival",'
            '"item":"/src/locked"}',
            "Warning: at least one source file could not be read",
            '{"message_type":"summary","files_new":1,"data_added":1412,"snapshot_id":"d715a0fb"}',
        ]
    )
    summary, errors = runner.parse_backup_output(output)
    assert summary["snapshot_id"] == "d715a0fb"
    assert errors == ["/src/locked: Permission denied"]


# --- metrics ----------------------------------------------------------------------------------------------


def test_render_metrics():
    state = {
        "repositories": {
            "p510": {"last_run_success": 0, "last_success_timestamp": 1700000000.5},
            "local": {"last_run_success": 1, "size_bytes": 2048, "encryption_verified": 1, "last_snapshot": "ab"},
            "gone": {"last_run_success": 1},
        }
    }
    text = runner.render_metrics(state, ["local", "p510"])
    assert text.endswith("\n")
    lines = text.splitlines()
    assert lines[:3] == [
        "# HELP homelab_backup_last_success_timestamp_seconds Unix time of the last successful backup or copy into "
        "the repository.",
        "# TYPE homelab_backup_last_success_timestamp_seconds gauge",
        'homelab_backup_last_success_timestamp_seconds{repository="p510"} 1700000000.5',
    ]
    samples = [line for line in lines if not line.startswith("#")]
    assert samples == [
        'homelab_backup_last_success_timestamp_seconds{repository="p510"} 1700000000.5',
        'homelab_backup_last_run_success{repository="local"} 1',
        'homelab_backup_last_run_success{repository="p510"} 0',
        'homelab_backup_size_bytes{repository="local"} 2048',
        'homelab_backup_encryption_verified{repository="local"} 1',
    ]
    assert sum(line.startswith("# TYPE ") for line in lines) == 4
    assert runner.render_metrics({"repositories": {}}, ["local"]) == ""


def test_every_metric_has_a_unique_name_and_key():
    names = [m[0] for m in runner.METRICS]
    assert len(set(names)) == len(names) == 11
    assert all(name.startswith("homelab_backup_") for name in names)


def test_write_atomic_sets_the_mode_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "homelab_backup.prom"
    runner.write_atomic(str(target), b"one\n", 0o644)
    runner.write_atomic(str(target), b"two\n", 0o644)
    assert target.read_bytes() == b"two\n"
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert os.listdir(tmp_path) == ["homelab_backup.prom"]


def test_an_unreadable_state_starts_afresh(tmp_path, capsys):
    state = tmp_path / "state.json"
    assert runner.load_state(str(state)) == {"repositories": {}}
    state.write_text("[1, 2")
    assert runner.load_state(str(state)) == {"repositories": {}}
    assert "is unreadable, starting afresh" in capsys.readouterr().err


# --- manifest, canary, comparison -------------------------------------------------------------------------


def _write(path, content, mtime_ns=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return str(path)


def test_walk_files_skips_excluded_special_and_the_manifest(tmp_path):
    src = tmp_path / "src"
    keep = _write(src / "a.txt", b"a")
    _write(src / "b.tmp", b"b")
    _write(src / "alice" / ".cache" / "c", b"c")
    nested = _write(src / "alice" / "notes", b"n")
    manifest = _write(src / "state" / "manifest.json", b"{}")
    os.symlink(keep, src / "link")
    os.mkfifo(src / "fifo")
    unreadable = []
    roots = [str(src), str(tmp_path / "absent"), str(src / "link")]
    found = sorted(runner.walk_files(roots, ["*.tmp", f"{src}/*/.cache"], {manifest}, unreadable))
    assert found == [keep, nested]
    assert unreadable == []


def test_a_single_file_path_is_walked(tmp_path):
    single = _write(tmp_path / "one", b"1")
    assert list(runner.walk_files([single], [], set(), [])) == [single]


def test_file_entry(tmp_path):
    path = _write(tmp_path / "f", b"hello\n", mtime_ns=1_600_000_000_123_456_789)
    entry = runner.file_entry(path)
    assert entry == {
        "sha256": "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
        "size": 6,
        "mtime_ns": 1_600_000_000_123_456_789,
        "ctime_ns": os.stat(path).st_ctime_ns,
    }
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError, match="not a regular file"):
        runner.file_entry(str(tmp_path / "fifo"))
    os.symlink(path, tmp_path / "link")
    with pytest.raises(OSError):
        runner.file_entry(str(tmp_path / "link"))


def test_file_entry_reuses_the_last_checksum_only_for_an_untouched_file(tmp_path):
    path = _write(tmp_path / "f", b"hello\n", mtime_ns=1_600_000_000_123_456_789)
    previous = dict(runner.file_entry(path), sha256="0" * 64)  # a recorded sum, recognisable
    assert runner.file_entry(path, previous)["sha256"] == "0" * 64
    # Same size, mtime set back by hand: the ctime gives the rewrite away and the file is read again.
    time.sleep(0.05)  # ctime has the kernel's coarse clock (a few ms)
    _write(tmp_path / "f", b"HELLO\n", mtime_ns=1_600_000_000_123_456_789)
    assert runner.file_entry(path, previous)["sha256"] == hashlib.sha256(b"HELLO\n").hexdigest()


def _manifest_entry(content, mtime_ns):
    return {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content), "mtime_ns": mtime_ns}


def test_compare_restored_rules(tmp_path):
    t = 1_700_000_000_000_000_000
    files = {
        "/src/same": _manifest_entry(b"same", t),
        "/src/corrupt": _manifest_entry(b"original", t),
        "/src/changed": _manifest_entry(b"before", t),
        "/src/missing": _manifest_entry(b"gone", t),
        "/src/dir": _manifest_entry(b"file", t),
        "/src/unchecked": _manifest_entry(b"not in the sample", t),
    }
    root = tmp_path / "restore"
    _write(root / "src" / "same", b"same", t)
    _write(root / "src" / "corrupt", b"0riginal", t)  # same mtime, other content: a real mismatch
    _write(root / "src" / "changed", b"after", t + 5)  # written between the manifest and restic: not a failure
    (root / "src" / "dir").mkdir()
    result = runner.compare_restored(files, str(root), sorted(set(files) - {"/src/unchecked"}))
    assert result.checked == 5
    assert result.bytes == 4 + 8 + 6 + 4 + 4
    assert result.changed == ["/src/changed"]
    assert result.mismatches == [
        ("/src/corrupt", "sha256 differs"),
        ("/src/dir", "unreadable in the restore (Is a directory)"),
        ("/src/missing", "missing from the restore"),
    ]


def test_compare_restored_all_equal(tmp_path):
    t = 1_700_000_000_000_000_000
    files = {"/a/x": _manifest_entry(b"x", t), "/a/y": _manifest_entry(b"y", t)}
    _write(tmp_path / "a" / "x", b"x", t)
    _write(tmp_path / "a" / "y", b"y", t)
    result = runner.compare_restored(files, str(tmp_path), sorted(files))
    assert (result.checked, result.mismatches, result.changed) == (2, [], [])


@pytest.mark.parametrize(
    "content",
    [b"not json", b"[]", b'{"files": []}', b'{"files": {"/a": {"sha256": "x", "size": "1", "mtime_ns": 1}}}'],
)
def test_a_bad_restored_manifest_fails(tmp_path, content):
    _write(tmp_path / "state" / "manifest.json", content)
    with pytest.raises(runner.Failure, match=re.escape("restored manifest /state/manifest.json")):
        runner.load_restored_manifest(str(tmp_path), "/state/manifest.json")


def test_choose_sample():
    paths = [f"/f{i}" for i in range(10)]
    assert runner.choose_sample(paths, "all") == sorted(paths)
    assert runner.choose_sample(paths, 10) == sorted(paths)
    sample = runner.choose_sample(paths, 3, random.Random(1))
    assert len(sample) == 3
    assert sample == sorted(sample)
    assert set(sample) <= set(paths)


def test_snapshot_selection_and_manifest_path():
    cfg = runner.validate_config(copy.deepcopy(EXAMPLE))
    snapshots = [
        {"time": "2026-11-26T09:23:54.9Z", "id": "old", "paths": ["/home"]},
        {"time": "2026-11-26T10:23:54.91+01:00", "id": "newer", "paths": ["/home"]},
        {"time": "2026-11-26T09:23:54.95Z", "id": "newest", "paths": ["/home"]},
    ]
    assert max(snapshots, key=runner.snapshot_time)["id"] == "newest"
    own = {"paths": ["/home", cfg.manifest_path, "/x/manifest.json"]}
    assert runner.snapshot_manifest_path(cfg, own) == cfg.manifest_path
    other_host = {"paths": ["/srv", "/var/lib/other/manifest.json"]}
    assert runner.snapshot_manifest_path(cfg, other_host) == "/var/lib/other/manifest.json"
    with pytest.raises(runner.Failure, match=re.escape("no manifest.json among its paths")):
        runner.snapshot_manifest_path(cfg, {"paths": ["/srv"], "short_id": "abcd1234"})


def test_canary_is_created_once_with_private_modes(tmp_path):
    canary = tmp_path / "data" / "deep" / "canary"
    runner.ensure_canary(str(canary))
    content = canary.read_text()
    assert content.startswith("homelab-backup-canary-")
    assert len(content) == len("homelab-backup-canary-") + 32
    int(content.removeprefix("homelab-backup-canary-"), 16)
    assert oct(canary.stat().st_mode & 0o777) == "0o600"
    assert oct(canary.parent.stat().st_mode & 0o777) == "0o700"
    assert oct((tmp_path / "data").stat().st_mode & 0o777) == "0o700"
    runner.ensure_canary(str(canary))
    assert canary.read_text() == content


def test_file_contains_finds_a_needle_across_chunks(tmp_path):
    needle = b"homelab-backup-canary-0123456789abcdef"
    for offset in range(0, 80, 7):
        path = _write(tmp_path / f"f{offset}", b"x" * offset + needle + b"y" * 20)
        assert runner.file_contains(path, needle, chunk_size=16)
    assert not runner.file_contains(_write(tmp_path / "none", b"x" * 100 + needle[:-1]), needle, chunk_size=16)


def test_remove_tree_removes_read_only_directories(tmp_path):
    scratch = tmp_path / "scratch"
    _write(scratch / "a" / "b" / "f", b"f")
    os.chmod(scratch / "a" / "b", 0o500)
    os.chmod(scratch / "a", 0o500)
    runner.remove_tree(str(scratch))
    assert not scratch.exists()
    runner.remove_tree(str(scratch))


# --- the lock ---------------------------------------------------------------------------------------------


def test_the_lock_times_out_while_held_and_is_taken_once_free(tmp_path):
    path = str(tmp_path / "lock")
    holder = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)
    with pytest.raises(runner.Failure, match=r"holds .*/lock; gave up after 0\.2s"):
        with runner.exclusive_lock(path, 0.2, poll=0.05):
            pass
    os.close(holder)
    with runner.exclusive_lock(path, 0.2, poll=0.05):
        probe = os.open(path, os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(probe)


# --- a backup run against a scripted restic ----------------------------------------------------------------


class ScriptedRestic:
    """Stands in for subprocess.run: answers restic calls from a script keyed by (repository, command)."""

    SUMMARY = json.dumps(
        {"message_type": "summary", "snapshot_id": "abcd1234", "total_files_processed": 2, "data_added": 10}
    )

    def __init__(self, answers=None):
        self.answers = answers or {}
        self.calls = []

    def __call__(self, argv, **kwargs):
        repo = argv[argv.index("--repo") + 1]
        args = argv[argv.index("--cache-dir") + 2 :]
        if args[0] == "--option":
            args = args[2:]
        command = " ".join(args[:2]) if args[0] == "cat" else args[0]
        self.calls.append((repo, command, argv, kwargs["env"]))
        default = {
            "backup": (0, self.SUMMARY, ""),
            "stats": (0, '{"total_size": 4096, "snapshots_count": 1}', ""),
        }.get(command, (0, "", ""))
        rc, stdout, stderr = self.answers.get((repo, command), default)
        return subprocess.CompletedProcess(argv, rc, stdout, stderr)

    def commands(self, repo):
        return [command for r, command, _argv, _env in self.calls if r == repo]


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A config with a primary and two replicas in tmp_path, and the scripted restic in place."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "file").write_text("data")
    raw = _changed(
        state_dir=str(tmp_path / "state"),
        cache_dir=str(tmp_path / "cache"),
        textfile=str(tmp_path / "prom" / "homelab_backup.prom"),
        paths=[str(tmp_path / "src")],
        canary_file=str(tmp_path / "src" / "canary"),
        drill_dir=str(tmp_path / "drill"),
    )
    raw["repositories"][0]["url"] = "/primary"
    raw["repositories"][0]["password_file"] = str(tmp_path / "primary.password")
    raw["repositories"].append(dict(raw["repositories"][1], name="offsite", url="sftp:o@offsite:/repo"))
    config = tmp_path / "config.json"
    config.write_text(json.dumps(raw))
    restic = ScriptedRestic()
    monkeypatch.setattr(runner.subprocess, "run", restic)

    def run(*command):
        return runner.main(["--config", str(config), *command])

    return run, restic, tmp_path


def _state(tmp_path):
    return json.loads((tmp_path / "state" / "state.json").read_text())["repositories"]


def test_a_good_run_calls_restic_in_order(site, capsys):
    run, restic, tmp_path = site
    assert run("backup") == 0
    assert restic.commands("/primary") == ["cat config", "backup", "forget", "stats"]
    assert restic.commands("sftp:restic-samsung@10.89.60.12:/repo") == ["cat config", "copy", "forget", "stats"]
    forget = next(argv for _r, c, argv, _e in restic.calls if c == "forget")
    assert forget[forget.index("forget") :] == [
        "forget", "--prune", "--host", "samsung", "--group-by", "host",
        "--keep-daily", "7", "--keep-weekly", "4", "--keep-monthly", "6",
    ]  # fmt: skip
    for _repo, _command, _argv, env in restic.calls:
        assert env["LC_ALL"] == "C"
        assert "RESTIC_PASSWORD" not in env
    state = _state(tmp_path)
    assert {name: record["last_run_success"] for name, record in state.items()} == {
        "local": 1,
        "p510": 1,
        "offsite": 1,
    }
    assert state["local"]["size_bytes"] == 4096
    manifest = json.loads((tmp_path / "state" / "manifest.json").read_text())
    assert sorted(manifest["files"]) == [str(tmp_path / "src" / "canary"), str(tmp_path / "src" / "file")]
    assert "backup local: snapshot abcd1234" in capsys.readouterr().out


def test_a_missing_replica_is_initialised_with_the_primary_chunker_params(site):
    run, restic, _tmp_path = site
    replica = "sftp:restic-samsung@10.89.60.12:/repo"
    restic.answers[(replica, "cat config")] = (1, "", MISSING_SFTP)
    assert run("backup") == 0
    assert restic.commands(replica) == ["cat config", "init", "copy", "forget", "stats"]
    init = next(argv for r, c, argv, _e in restic.calls if r == replica and c == "init")
    assert init[init.index("init") :] == [
        "init",
        "--copy-chunker-params",
        "--from-repo",
        "/primary",
        "--from-password-file",
        restic.calls[0][3]["RESTIC_PASSWORD_FILE"],
    ]


def test_a_new_primary_takes_the_chunker_params_of_an_existing_replica(site):
    """After a disaster the local repository is new and the remote one holds the history."""
    run, restic, _tmp_path = site
    replica = "sftp:restic-samsung@10.89.60.12:/repo"
    restic.answers[("/primary", "cat config")] = (1, "", MISSING_LOCAL)
    assert run("backup") == 0
    init = next(argv for r, c, argv, _e in restic.calls if r == "/primary" and c == "init")
    assert init[init.index("init") :][:4] == ["init", "--copy-chunker-params", "--from-repo", replica]
    # restic applies one sftp.command to both repositories: the remote one's, which pins its host key.
    command = next(argv for r, c, argv, _e in restic.calls if r == replica and c == "cat config")
    assert init[init.index("--option") + 1] == command[command.index("--option") + 1]
    # The replica was only asked whether it exists before the init.
    assert restic.commands(replica)[0] == "cat config"


def test_a_new_primary_without_any_replica_repository_gets_a_plain_init(site):
    run, restic, _tmp_path = site
    restic.answers[("/primary", "cat config")] = (1, "", MISSING_LOCAL)
    for replica in ("sftp:restic-samsung@10.89.60.12:/repo", "sftp:o@offsite:/repo"):
        restic.answers[(replica, "cat config")] = (1, "", MISSING_SFTP)
    run("backup")
    init = next(argv for r, c, argv, _e in restic.calls if r == "/primary" and c == "init")
    assert init[init.index("init") :] == ["init"]


def test_a_wrong_password_never_leads_to_init_or_forget(site, capsys):
    run, restic, tmp_path = site
    assert run("backup") == 0
    first = _state(tmp_path)["local"]["last_success_timestamp"]
    restic.calls.clear()
    restic.answers[("/primary", "cat config")] = (1, "", WRONG_PASSWORD)
    assert run("backup") == 1
    assert [c for _r, c, _a, _e in restic.calls] == ["cat config"]
    err = capsys.readouterr().err
    assert "homelab-backup: repository local: wrong password or no key found\n" in err
    assert "homelab-backup: repository p510: skipped, the backup into local failed" in err
    state = _state(tmp_path)
    assert state["local"]["last_success_timestamp"] == first
    assert [state[name]["last_run_success"] for name in ("local", "p510", "offsite")] == [0, 0, 0]


def test_an_incomplete_backup_is_copied_off_the_host_but_prunes_nothing(site, capsys):
    run, restic, tmp_path = site
    error = '{"message_type":"error","error":{"Op":"open","Path":"/s/f","Err":13},"item":"/s/f"}'
    restic.answers[("/primary", "backup")] = (3, ScriptedRestic.SUMMARY, error + "\nWarning: at least one...\n")
    assert run("backup") == 1
    assert restic.commands("/primary") == ["cat config", "backup"]
    # One unreadable file must not keep the snapshot on this host only.
    assert "copy" in restic.commands("sftp:restic-samsung@10.89.60.12:/repo")
    assert "forget" not in [c for _r, c, _a, _e in restic.calls]
    err = capsys.readouterr().err
    assert (
        "repository local: backup incomplete: 1 source files could not be read (first: /s/f: Permission denied); "
        "snapshot abcd1234 kept, retention not applied"
    ) in err
    assert "last_success_timestamp" not in _state(tmp_path)["local"]


def test_a_failing_replica_does_not_stop_the_next(site, capsys):
    run, restic, tmp_path = site
    replica = "sftp:restic-samsung@10.89.60.12:/repo"
    restic.answers[(replica, "copy")] = (1, "", UNREACHABLE_SSH)
    assert run("backup") == 1
    assert restic.commands(replica) == ["cat config", "copy"]
    assert restic.commands("sftp:o@offsite:/repo") == ["cat config", "copy", "forget", "stats"]
    assert "repository p510: target unreachable (ssh: connect to host" in capsys.readouterr().err
    state = _state(tmp_path)
    assert (state["local"]["last_run_success"], state["p510"]["last_run_success"]) == (1, 0)
    assert state["offsite"]["last_run_success"] == 1


def test_an_unreachable_primary_is_not_initialised(site):
    run, restic, _tmp_path = site
    restic.answers[("/primary", "cat config")] = (1, "", UNREACHABLE_SSH)
    assert run("backup") == 1
    assert restic.commands("/primary") == ["cat config"]


def test_unknown_repository_is_a_usage_error(site, capsys):
    run, _restic, _tmp_path = site
    assert run("drill", "--repository", "nope") == 2
    assert "unknown repository 'nope' (configured: local, p510, offsite)" in capsys.readouterr().err


def test_the_metrics_command_renders_the_state(site):
    run, _restic, tmp_path = site
    assert run("backup") == 0
    prom = tmp_path / "prom" / "homelab_backup.prom"
    prom.unlink()
    assert run("metrics") == 0
    assert 'homelab_backup_last_run_success{repository="offsite"} 1' in prom.read_text()
    assert oct(prom.stat().st_mode & 0o777) == "0o644"


def _snapshot(snapshot_id, when):
    return {"id": snapshot_id, "short_id": snapshot_id[:8], "time": when, "paths": ["/home"]}


def test_find_snapshot_takes_the_newest_of_the_path_groups(monkeypatch):
    cfg = runner.validate_config(copy.deepcopy(EXAMPLE))
    # `--latest 1` answers the latest snapshot of each group of paths.
    answer = json.dumps([_snapshot("a" * 64, "2026-01-02T03:04:05.9Z"), _snapshot("b" * 64, "2026-01-02T03:04:05.95Z")])
    restic = ScriptedRestic({("/var/lib/homelab/backup/repo", "snapshots"): (0, answer, "")})
    monkeypatch.setattr(runner.subprocess, "run", restic)
    assert runner.find_snapshot(cfg, cfg.primary, "samsung")["id"] == "b" * 64
    argv = restic.calls[0][2]
    assert argv[argv.index("snapshots") :] == ["snapshots", "--json", "--host", "samsung", "--latest", "1"]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ("[]", "repository local: no snapshot of host samsung"),
        ('{"id": "x"}', "restic snapshots printed no JSON list"),
        ('[{"id": "x"}]', "restic snapshots printed snapshots without id or time"),
    ],
)
def test_find_snapshot_errors(monkeypatch, answer, error):
    cfg = runner.validate_config(copy.deepcopy(EXAMPLE))
    restic = ScriptedRestic({("/var/lib/homelab/backup/repo", "snapshots"): (0, answer, "")})
    monkeypatch.setattr(runner.subprocess, "run", restic)
    with pytest.raises((runner.Failure, runner.ResticError), match=re.escape(error)):
        runner.find_snapshot(cfg, cfg.primary, "samsung")


def test_a_missing_restic_binary_is_one_clear_error():
    cfg = runner.validate_config(_changed(restic="/nonexistent/restic"))
    with pytest.raises(runner.ResticError, match="cannot run /nonexistent/restic: No such file or directory"):
        runner.run_restic(cfg, cfg.primary, ["cat", "config"])
