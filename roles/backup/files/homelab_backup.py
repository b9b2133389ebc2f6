"""Restic backups, verification and restore drills for one homelab host, standard library only.

    python3 homelab_backup.py [--config /etc/homelab/backup/config.json] backup|check|drill|restore|metrics|validate

backup   writes a manifest (sha256, size, mtime of every file under ``paths``), backs the paths and the
         manifest up into the primary repository and applies its retention, then copies the host's
         snapshots into every replica (a repository with ``from: <primary>``) and applies theirs.
check    ``restic check --read-data-subset`` on every repository and, for local ones, a scan of the raw
         repository files for the canary string, which encryption must hide.
drill    restores the manifest and a random sample of files from the latest snapshot and compares them
         with the manifest inside that snapshot.
restore  restores a whole snapshot (disaster recovery), verifies every file, prints one JSON line.
metrics  re-renders the Prometheus textfile from the state file.
validate checks the configuration only (exit 0, or 2 listing every problem).

Written for restic 0.14 (Debian 12). Passwords reach restic only as file paths (RESTIC_PASSWORD_FILE,
--from-password-file): this script never reads a password file, so no password can end up in its
output, its state or its metrics. Every command but ``metrics`` holds an exclusive lock on
<state_dir>/lock. Exit codes: 0 success, 1 failure, 2 bad configuration or usage.
"""

import argparse
import contextlib
import ctypes
import fcntl
import fnmatch
import hashlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

PROG = "homelab-backup"
DEFAULT_CONFIG = "/etc/homelab/backup/config.json"
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
# restic backup's exit code when the snapshot was saved but some source files could not be read.
RESTIC_INCOMPLETE = 3
CANARY_PREFIX = "homelab-backup-canary-"
DEFAULT_LOCK_TIMEOUT = 3600

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# restic splits --tag values on commas.
TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
SNAPSHOT_RE = re.compile(r"^[0-9a-f]{8,64}$")
# restic 0.14 --read-data-subset: n/t, a percentage, or a size with a unit.
SUBSET_RE = re.compile(r"^(?:(?P<n>\d+)/(?P<t>\d+)|(?P<pct>\d+(?:\.\d+)?)%|\d+(?:\.\d+)?[KMGT])$")
RETENTION_KEYS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
REMOTE_PREFIXES = ("sftp:", "rest:", "s3:", "b2:", "azure:", "gs:", "swift:", "rclone:")

# Top-level and repository keys: True when required.
CONFIG_KEYS = {
    "host": True,
    "restic": True,
    "state_dir": True,
    "cache_dir": True,
    "textfile": True,
    "paths": True,
    "excludes": False,
    "tags": False,
    "canary_file": False,
    "check_read_data_subset": True,
    "drill_sample": True,
    "drill_dir": True,
    "lock_timeout_seconds": False,
    "repositories": True,
}
REPOSITORY_KEYS = {
    "name": True,
    "url": True,
    "password_file": True,
    "retention": True,
    "sftp_command": False,
    "from": False,
}

# Kinds of restic failure; only MISSING may lead to `restic init`.
MISSING = "missing"
PASSWORD = "password"
PASSWORD_FILE = "password-file"
UNREACHABLE = "unreachable"
NO_SPACE = "no-space"
LOCKED = "locked"
CORRUPT = "corrupt"
INCOMPLETE = "incomplete"
OTHER = "other"
# Warnings restic prints before an error, never the reason for one.
RESTIC_NOISE = ("disabling cache", "using temporary cache", "unable to open cache")
# Network errors of the rest/s3 style backends (ssh's come as "subprocess ssh: ..." lines).
NETWORK_ERRORS = ("connection refused", "no route to host", "i/o timeout", "no such host", "network is unreachable")

# (metric, state key, help); every metric is a gauge labelled with the repository only.
METRICS = (
    (
        "homelab_backup_last_success_timestamp_seconds",
        "last_success_timestamp",
        "Unix time of the last successful backup or copy into the repository.",
    ),
    ("homelab_backup_last_run_success", "last_run_success", "1 if the last backup run into the repository succeeded."),
    ("homelab_backup_duration_seconds", "duration_seconds", "Duration of the last backup run into the repository."),
    ("homelab_backup_size_bytes", "size_bytes", "Size of the repository's data (restic stats --mode raw-data)."),
    ("homelab_backup_snapshots", "snapshots", "Number of snapshots in the repository."),
    (
        "homelab_backup_last_verification_success",
        "last_verification_success",
        "1 if the last restic check of the repository passed.",
    ),
    (
        "homelab_backup_last_verification_timestamp_seconds",
        "last_verification_timestamp",
        "Unix time of the last restic check of the repository.",
    ),
    (
        "homelab_backup_encryption_verified",
        "encryption_verified",
        "1 if the canary string was found in no raw file of the repository.",
    ),
    ("homelab_backup_last_drill_success", "last_drill_success", "1 if the last restore drill found no mismatch."),
    (
        "homelab_backup_last_drill_timestamp_seconds",
        "last_drill_timestamp",
        "Unix time of the last restore drill.",
    ),
    ("homelab_backup_drill_files_checked", "drill_files_checked", "Files compared by the last restore drill."),
)


class ConfigError(Exception):
    """The configuration is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems):
        super().__init__("; ".join(problems))
        self.problems = problems


class Failure(Exception):
    """A failure reported as one line on stderr; the run exits 1."""


@dataclass(frozen=True)
class ResticFailure:
    kind: str
    message: str


class ResticError(Exception):
    """restic failed; the message is the classified one-line reason."""

    def __init__(self, failure):
        super().__init__(failure.message)
        self.kind = failure.kind


@dataclass(frozen=True)
class Repository:
    name: str
    url: str
    password_file: str
    retention: dict
    sftp_command: str | None = None
    source: str | None = None

    @property
    def local_path(self):
        """The directory of a plain local repository, else None."""
        if self.url.startswith(REMOTE_PREFIXES):
            return None
        return self.url.removeprefix("local:")


@dataclass(frozen=True)
class Config:
    host: str
    restic: str
    state_dir: str
    cache_dir: str
    textfile: str
    paths: tuple
    check_read_data_subset: str
    drill_sample: object
    drill_dir: str
    repositories: tuple
    excludes: tuple = ()
    tags: tuple = ()
    canary_file: str | None = None
    lock_timeout_seconds: int = DEFAULT_LOCK_TIMEOUT

    @property
    def primary(self):
        return next(r for r in self.repositories if r.source is None)

    @property
    def replicas(self):
        return [r for r in self.repositories if r.source is not None]

    @property
    def manifest_path(self):
        return os.path.join(self.state_dir, "manifest.json")

    @property
    def state_path(self):
        return os.path.join(self.state_dir, "state.json")

    @property
    def lock_path(self):
        return os.path.join(self.state_dir, "lock")

    def repository(self, name):
        return next((r for r in self.repositories if r.name == name), None)

    def sftp_command(self, repo):
        """The sftp.command for every restic call on ``repo``.

        restic 0.14's copy and init --from-repo apply one set of -o options to both repositories, so a
        replica's calls carry the primary's command when the replica has none (validation forbids two).
        """
        if repo.sftp_command or repo.source is None:
            return repo.sftp_command
        return self.primary.sftp_command


# --- configuration ---------------------------------------------------------------------------------------


def _check_keys(obj, allowed, where, problems):
    for key in sorted(set(obj) - set(allowed)):
        problems.append(f"{where}{key}: unknown key")
    for key, required in allowed.items():
        if required and key not in obj:
            problems.append(f"{where}{key}: missing")


def _valid_string(value, label, problems, *, absolute=False, pattern=None):
    """``value`` (normalised when a path) when it is a valid string, else None and a problem."""
    if not isinstance(value, str) or not value:
        problems.append(f"{label}: must be a non-empty string")
        return None
    if absolute and not os.path.isabs(value):
        problems.append(f"{label}: must be an absolute path, not {value!r}")
        return None
    if pattern and not pattern.match(value):
        problems.append(f"{label}: {value!r} does not match {pattern.pattern}")
        return None
    return os.path.normpath(value) if absolute else value


def _string(obj, key, where, problems, **checks):
    """obj[key] checked by _valid_string; None when absent (a missing required key is reported elsewhere)."""
    if key not in obj:
        return None
    return _valid_string(obj[key], f"{where}{key}", problems, **checks)


def _string_list(obj, key, problems, *, non_empty=False, **checks):
    if key not in obj:
        return ()
    value = obj[key]
    if not isinstance(value, list) or (non_empty and not value):
        problems.append(f"{key}: must be a {'non-empty ' if non_empty else ''}list of strings")
        return ()
    items = [_valid_string(v, f"{key}[{i}]", problems, **checks) for i, v in enumerate(value)]
    return tuple(items) if None not in items else ()


def _restic_binary(obj, problems):
    """An absolute path, or a bare command name found on PATH at run time."""
    value = _string(obj, "restic", "", problems)
    if value and "/" in value and not os.path.isabs(value):
        problems.append(f"restic: must be an absolute path or a command name, not {value!r}")
        return None
    return value


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _subset(obj, problems):
    value = _string(obj, "check_read_data_subset", "", problems)
    if value is None:
        return None
    match = SUBSET_RE.match(value)
    valid = bool(match)
    if match and match["n"] is not None:
        valid = 1 <= int(match["n"]) <= int(match["t"])
    elif match and match["pct"] is not None:
        valid = 0 < float(match["pct"]) <= 100
    if not valid:
        problems.append(
            f"check_read_data_subset: {value!r} is not n/t (1 <= n <= t), a percentage up to 100% or a size like 500M"
        )
        return None
    return value


def _drill_sample(obj, problems):
    value = obj.get("drill_sample")
    if "drill_sample" in obj and value != "all" and not (_is_int(value) and value > 0):
        problems.append('drill_sample: must be a positive integer or "all"')
        return None
    return value


def _lock_timeout(obj, problems):
    value = obj.get("lock_timeout_seconds", DEFAULT_LOCK_TIMEOUT)
    if not (_is_int(value) and value >= 0):
        problems.append("lock_timeout_seconds: must be an integer >= 0")
        return DEFAULT_LOCK_TIMEOUT
    return value


def _retention(obj, where, problems):
    value = obj.get("retention")
    if "retention" not in obj:
        return {}
    if not isinstance(value, dict) or not value:
        problems.append(f"{where}retention: must be an object with at least one of {', '.join(RETENTION_KEYS)}")
        return {}
    for key in sorted(set(value) - set(RETENTION_KEYS)):
        problems.append(f"{where}retention.{key}: unknown key (use {', '.join(RETENTION_KEYS)})")
    for key in RETENTION_KEYS:
        if key in value and not (_is_int(value[key]) and value[key] > 0):
            problems.append(f"{where}retention.{key}: must be a positive integer")
    return {k: value[k] for k in RETENTION_KEYS if k in value}


def _repository_url(obj, where, problems):
    url = _string(obj, "url", where, problems)
    if url is None or url.startswith(REMOTE_PREFIXES):
        return url
    path = url.removeprefix("local:")
    if not os.path.isabs(path):
        problems.append(f"{where}url: must be an absolute path or start with one of {', '.join(REMOTE_PREFIXES)}")
        return None
    return url


def _repository(obj, where, problems):
    if not isinstance(obj, dict):
        problems.append(f"{where[:-1]}: must be an object")
        return None
    _check_keys(obj, REPOSITORY_KEYS, where, problems)
    repo = Repository(
        name=_string(obj, "name", where, problems, pattern=NAME_RE),
        url=_repository_url(obj, where, problems),
        password_file=_string(obj, "password_file", where, problems, absolute=True),
        retention=_retention(obj, where, problems),
        sftp_command=_string(obj, "sftp_command", where, problems),
        source=_string(obj, "from", where, problems),
    )
    if repo.sftp_command and repo.url and not repo.url.startswith("sftp:"):
        problems.append(f"{where}sftp_command: only for sftp: repositories")
    return repo


def _repositories(obj, problems):
    value = obj.get("repositories")
    if "repositories" in obj and (not isinstance(value, list) or not value):
        problems.append("repositories: must be a non-empty list")
        return ()
    repos = [_repository(r, f"repositories[{i}].", problems) for i, r in enumerate(value or [])]
    return tuple(r for r in repos if r is not None)


def _check_topology(repos, problems):
    """Unique names, exactly one primary, every replica copying from it."""
    names = [r.name for r in repos if r.name]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"repositories: name {name!r} is used more than once")
    primaries = [r for r in repos if r.source is None]
    if len(primaries) != 1:
        found = ", ".join(r.name or "?" for r in primaries) or "none"
        problems.append(f"repositories: exactly one repository must have no 'from' (the primary); found {found}")
        return
    primary = primaries[0]
    for repo in repos:
        if repo.source is not None and repo.source != primary.name:
            problems.append(
                f"repository {repo.name}: 'from' must name the primary {primary.name!r}, not {repo.source!r}"
            )
        if repo.source is not None and primary.sftp_command and repo.sftp_command:
            problems.append(
                f"repository {repo.name}: cannot have its own sftp_command when the primary has one "
                "(restic 0.14's copy passes one sftp.command to both repositories)"
            )


def is_inside(path, parent):
    """True when ``path`` is ``parent`` or below it (both normalised absolute paths)."""
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def is_excluded(path, patterns):
    """Approximates restic's --exclude: a glob matching the file's name or its whole path.

    restic matches patterns component by component (``*`` never crosses ``/``, a pattern without a leading
    ``/`` may match at any depth); fnmatch on the basename and on the full path agrees for the usual
    ``*.tmp`` and ``/home/*/.cache`` patterns, which is what the manifest needs.
    """
    name = os.path.basename(path)
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(path, p) for p in patterns)


def _check_layout(values, repos, problems):
    """Where files are: the canary and the manifest backed up, no repository inside the backed-up paths."""
    paths, excludes, canary, state_dir = values["paths"], values["excludes"], values["canary_file"], values["state_dir"]
    if canary and paths and not any(is_inside(canary, p) for p in paths):
        problems.append(f"canary_file: {canary} is not inside any of paths, so it would not be backed up")
    if canary and is_excluded(canary, excludes):
        problems.append(f"canary_file: {canary} matches an exclude pattern, so it would not be backed up")
    if state_dir and is_excluded(os.path.join(state_dir, "manifest.json"), excludes):
        problems.append("excludes: a pattern matches <state_dir>/manifest.json, which every snapshot must hold")
    for repo in repos:
        local = repo.local_path if repo.url else None
        if local and any(is_inside(os.path.normpath(local), p) for p in paths):
            problems.append(f"repository {repo.name}: {local} is inside the backed-up paths")


def validate_config(raw):
    """A Config from the parsed JSON, or ConfigError listing every problem."""
    if not isinstance(raw, dict):
        raise ConfigError(["the top level must be a JSON object"])
    problems = []
    _check_keys(raw, CONFIG_KEYS, "", problems)
    values = {
        "host": _string(raw, "host", "", problems, pattern=HOST_RE),
        "restic": _restic_binary(raw, problems),
        "state_dir": _string(raw, "state_dir", "", problems, absolute=True),
        "cache_dir": _string(raw, "cache_dir", "", problems, absolute=True),
        "textfile": _string(raw, "textfile", "", problems, absolute=True),
        "paths": _string_list(raw, "paths", problems, absolute=True, non_empty=True),
        "excludes": _string_list(raw, "excludes", problems),
        "tags": _string_list(raw, "tags", problems, pattern=TAG_RE),
        "canary_file": _string(raw, "canary_file", "", problems, absolute=True),
        "check_read_data_subset": _subset(raw, problems),
        "drill_sample": _drill_sample(raw, problems),
        "drill_dir": _string(raw, "drill_dir", "", problems, absolute=True),
        "lock_timeout_seconds": _lock_timeout(raw, problems),
        "repositories": _repositories(raw, problems),
    }
    _check_topology(values["repositories"], problems)
    _check_layout(values, values["repositories"], problems)
    if problems:
        raise ConfigError(problems)
    return Config(**values)


def load_config(path):
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except OSError as e:
        raise ConfigError([f"cannot read: {e.strerror}"]) from e
    except ValueError as e:
        raise ConfigError([f"not valid JSON: {e}"]) from e
    return validate_config(raw)


# --- restic ----------------------------------------------------------------------------------------------


def retention_args(retention):
    """``--keep-daily 7 ...`` in a fixed order."""
    args = []
    for key in RETENTION_KEYS:
        if key in retention:
            args += ["--" + key.replace("_", "-"), str(retention[key])]
    return args


def from_args(source):
    """The source-repository flags of restic 0.14's copy and init --copy-chunker-params."""
    return ["--from-repo", source.url, "--from-password-file", source.password_file]


def restic_argv(cfg, repo, args, options_from=None):
    """The argument list for one restic call on ``repo``: passwords appear only as file paths.

    ``options_from``: the repository whose sftp.command the call carries (the --from-repo one, when
    only it is remote: restic 0.14 applies one set of -o options to both).
    """
    argv = [cfg.restic, "--repo", repo.url, "--cache-dir", cfg.cache_dir]
    command = cfg.sftp_command(options_from or repo)
    if command:
        argv += ["--option", f"sftp.command={command}"]
    return argv + list(args)


def restic_env(repo, base=None):
    """The environment for restic: C messages (they are classified), the password as a file path.

    Inherited RESTIC_* variables are dropped: a RESTIC_PASSWORD or RESTIC_REPOSITORY of the caller must
    not override the configuration.
    """
    base = os.environ if base is None else base
    env = {k: v for k, v in base.items() if not k.startswith("RESTIC_")}
    env.update(LC_ALL="C", RESTIC_PASSWORD_FILE=repo.password_file)
    return env


def _is_noise(line):
    """restic's warnings about its cache, which precede the real error."""
    return any(noise in line for noise in RESTIC_NOISE)


def _last_fatal(lines):
    fatal = [line.removeprefix("Fatal: ") for line in lines if line.startswith("Fatal: ")]
    return (fatal or lines or ["no error message"])[-1][:300]


def classify(stderr, returncode, action):
    """The kind of a restic failure and a one-line reason, from restic 0.14's (LC_ALL=C) stderr."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and not _is_noise(line)]
    text = "\n".join(lines)
    lower = text.lower()
    ssh = [line.removeprefix("subprocess ssh: ") for line in lines if line.startswith("subprocess ssh: ")]
    if ssh or "unable to start the sftp session" in text or any(e in lower for e in NETWORK_ERRORS):
        return ResticFailure(UNREACHABLE, f"target unreachable ({(ssh[-1] if ssh else _last_fatal(lines))[:300]})")
    if "wrong password or no key found" in text:
        return ResticFailure(PASSWORD, "wrong password or no key found")
    if "no space left on device" in lower:
        return ResticFailure(NO_SPACE, "no space left on device")
    # restic prints this for any failure to stat the config file; only "does not exist" means no repository.
    if "Is there a repository at the following location?" in text and (
        "no such file or directory" in lower or "file does not exist" in lower
    ):
        return ResticFailure(MISSING, "no repository at this location")
    if "Resolving password failed" in text:
        detail = text.split("Resolving password failed: ", 1)[1].splitlines()[0].removeprefix("Fatal: ")
        return ResticFailure(PASSWORD_FILE, f"cannot read the password file ({detail[:300]})")
    if "repository is already locked" in text:
        detail = next(line for line in lines if "repository is already locked" in line)
        return ResticFailure(LOCKED, f"locked by another restic process ({_last_fatal([detail])})")
    if "repository contains errors" in text or "ciphertext verification failed" in text:
        first = next(line for line in lines if not line.startswith("Fatal: ") or "contains errors" in line)
        return ResticFailure(CORRUPT, f"repository contains errors ({first[:300]})")
    return ResticFailure(OTHER, f"restic {action} failed (exit {returncode}): {_last_fatal(lines)}")


# prctl(2) options: orphans of our descendants are re-parented to us instead of PID 1.
PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37


def _prctl(*args):
    """prctl(2) through the C library; None where there is none (not Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(*args)
    except (OSError, AttributeError):
        return None


def is_subreaper():
    """Whether this process adopts its descendants' orphans (only adopt_orphans() makes it one)."""
    flag = ctypes.c_int(0)
    return _prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) == 0 and flag.value == 1


def adopt_orphans():
    """Become the subreaper of every process restic starts; True when the kernel agreed.

    restic 0.14 exits without waiting for the ``ssh`` of its sftp backend, which then exits a few
    milliseconds later. Left to PID 1, that straggler is still in the unit's cgroup when the runner
    exits, so systemd sends it SIGTERM and waits for the cgroup to empty; where that notification is
    lost (systemd in a container on cgroup v1) the unit hangs in stop-sigterm and fails after 90 s with
    result 'timeout'. Adopted, the straggler is reaped by reap_orphans() before the runner goes on.
    """
    return _prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def _children():
    """PIDs whose parent is this process (adopted orphans once subprocess.run has reaped its own)."""
    me, pids = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                # pid (comm) state ppid ...; comm may hold spaces and parentheses.
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited meanwhile
        if fields and int(fields[1]) == me:
            pids.append(int(entry))
    return pids


def reap_orphans(grace=5.0, poll=0.01):
    """Reap adopted orphans: wait ``grace`` seconds, then SIGTERM, SIGKILL a second later; returns how many.

    A process that survives SIGKILL for five more seconds (uninterruptible sleep) is left to systemd.
    Only a subreaper reaps: a process that merely imports this module keeps its children to itself.
    """
    if not is_subreaper():
        return 0
    reaped, started = 0, time.monotonic()
    # (seconds after start, signal sent to the remaining children then; None: give up).
    steps = [(grace, signal.SIGTERM), (grace + 1.0, signal.SIGKILL), (grace + 6.0, None)]
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped  # no child left
        if pid:
            reaped += 1
            continue
        if time.monotonic() - started >= steps[0][0]:
            sig = steps.pop(0)[1]
            if sig is None:
                return reaped
            for child in _children():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, sig)
        time.sleep(poll)


def run_restic(cfg, repo, args, check=True, options_from=None):
    """Run restic on ``repo``; a failure raises ResticError unless ``check`` is false."""
    try:
        result = subprocess.run(
            restic_argv(cfg, repo, args, options_from),
            env=restic_env(repo),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            check=False,
        )
    except OSError as e:
        raise ResticError(ResticFailure(OTHER, f"cannot run {cfg.restic}: {e.strerror}")) from e
    finally:
        reap_orphans()
    if check and result.returncode != 0:
        raise ResticError(classify(result.stderr, result.returncode, args[0]))
    return result


def _json(result, what, shape):
    """restic's JSON output, which must be a ``shape`` (dict or list)."""
    try:
        value = json.loads(result.stdout)
    except ValueError:
        value = None
    if not isinstance(value, shape):
        raise ResticError(ResticFailure(OTHER, f"restic {what} printed no JSON {shape.__name__}"))
    return value


def ensure_repository(cfg, repo, init=None):
    """Initialise ``repo`` if, and only if, restic says there is no repository there.

    ``init(cfg)``, called only when an init is needed, gives (extra init arguments, the repository
    whose options the call carries or None).
    """
    result = run_restic(cfg, repo, ["cat", "config"], check=False)
    if result.returncode == 0:
        return
    failure = classify(result.stderr, result.returncode, "cat config")
    if failure.kind != MISSING:
        raise ResticError(failure)
    args, options_from = init(cfg) if init else ([], None)
    run_restic(cfg, repo, ["init", *args], options_from=options_from)
    print(f"repository {repo.name}: initialised")


def parse_backup_output(output):
    """(summary or None, unreadable items) from ``restic backup --json`` output.

    restic 0.14 prints the summary on stdout and the per-file errors, also JSON, on stderr.
    """
    summary, errors = None, []
    for line in output.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        if message.get("message_type") == "summary":
            summary = message
        elif message.get("message_type") == "error":
            error = message.get("error") or {}
            reason = os.strerror(error["Err"]) if _is_int(error.get("Err")) else str(error.get("Err", "error"))
            errors.append(f"{message.get('item', '?')}: {reason}")
    return summary, errors


def backup_args(cfg):
    args = ["backup", "--json", "--host", cfg.host]
    for tag in cfg.tags:
        args += ["--tag", tag]
    for pattern in cfg.excludes:
        args += ["--exclude", pattern]
    return [*args, *cfg.paths, cfg.manifest_path]


def run_backup(cfg, repo):
    """``restic backup`` of the paths and the manifest; the JSON summary, or ResticError."""
    result = run_restic(cfg, repo, backup_args(cfg), check=False)
    summary, errors = parse_backup_output(result.stdout + "\n" + result.stderr)
    if result.returncode == RESTIC_INCOMPLETE:
        snapshot = (summary or {}).get("snapshot_id", "?")
        first = f" (first: {errors[0]})" if errors else ""
        raise ResticError(
            ResticFailure(
                INCOMPLETE,
                f"backup incomplete: {len(errors) or 'some'} source files could not be read{first}; "
                f"snapshot {snapshot} kept, retention not applied",
            )
        )
    if result.returncode != 0:
        raise ResticError(classify(result.stderr, result.returncode, "backup"))
    if summary is None:
        raise ResticError(ResticFailure(OTHER, "restic backup printed no summary"))
    return summary


def apply_retention(cfg, repo):
    # Grouped by host only, so a change of `paths` does not leave the old path group's snapshots forever.
    args = ["forget", "--prune", "--host", cfg.host, "--group-by", "host", *retention_args(repo.retention)]
    run_restic(cfg, repo, args)


def repository_stats(cfg, repo):
    stats = _json(run_restic(cfg, repo, ["stats", "--json", "--mode", "raw-data"]), "stats", dict)
    return {"size_bytes": int(stats.get("total_size", 0)), "snapshots": int(stats.get("snapshots_count", 0))}


def snapshot_time(snapshot):
    return datetime.fromisoformat(snapshot["time"])


def find_snapshot(cfg, repo, host, which="latest"):
    """The snapshot ``which`` (an ID or "latest" of ``host``) as restic's JSON describes it."""
    if which == "latest":
        args = ["snapshots", "--json", "--host", host, "--latest", "1"]
    else:
        args = ["snapshots", "--json", which]
    snapshots = _json(run_restic(cfg, repo, args), "snapshots", list)
    if not all(
        isinstance(s, dict) and isinstance(s.get("id"), str) and isinstance(s.get("time"), str) for s in snapshots
    ):
        raise ResticError(ResticFailure(OTHER, "restic snapshots printed snapshots without id or time"))
    if not snapshots:
        wanted = f"of host {host}" if which == "latest" else which
        raise Failure(f"repository {repo.name}: no snapshot {wanted}")
    # --latest 1 answers one snapshot per group of paths.
    return max(snapshots, key=snapshot_time)


def snapshot_manifest_path(cfg, snapshot):
    """Where the manifest is in ``snapshot``: this host's path, else the one manifest.json it was given."""
    paths = snapshot.get("paths") or []
    if cfg.manifest_path in paths:
        return cfg.manifest_path
    candidates = [p for p in paths if os.path.basename(p) == "manifest.json"]
    if len(candidates) != 1:
        raise Failure(f"snapshot {snapshot.get('short_id', '?')}: no manifest.json among its paths")
    return candidates[0]


def include_pattern(path):
    """A restic --include pattern matching exactly ``path`` (glob characters escaped)."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", path)


def restore_args(snapshot_id, target, files=None):
    args = ["restore", snapshot_id, "--target", target]
    for path in files or ():
        args += ["--include", include_pattern(path)]
    return args


def restore(cfg, repo, snapshot_id, target, files=None):
    """Restore ``files`` (all when None); the ResticFailure, or None when restic succeeded."""
    result = run_restic(cfg, repo, restore_args(snapshot_id, target, files), check=False)
    return None if result.returncode == 0 else classify(result.stderr, result.returncode, "restore")


# --- manifest, canary, comparison ------------------------------------------------------------------------


def file_entry(path, previous=None):
    """sha256, size, mtime_ns and ctime_ns of a regular file; OSError for anything else.

    ``previous`` is the file's entry in the last manifest: when size, mtime and ctime are unchanged
    its sha256 is reused instead of reading the file again (ctime cannot be set back by hand).
    """
    # O_NONBLOCK: a FIFO put in place of the file must not hang the run; O_NOFOLLOW: no symlinks.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "not a regular file", path)
        entry = {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "ctime_ns": info.st_ctime_ns}
        unchanged = isinstance(previous, dict) and all(previous.get(k) == v for k, v in entry.items())
        if unchanged and previous.get("sha256"):
            return dict(entry, sha256=previous["sha256"])
        return dict(entry, sha256=hashlib.file_digest(f, "sha256").hexdigest())


def previous_manifest_files(path):
    """The files of the last manifest written on this host ({} when there is none or it is unreadable)."""
    try:
        with open(path, encoding="utf-8") as f:
            files = json.load(f).get("files", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return files if isinstance(files, dict) else {}


def _is_candidate(path):
    """A regular file, or one lstat cannot see (file_entry then tells why); not a symlink or special file."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False  # removed while we walked
    except OSError:
        return True


def walk_files(paths, excludes, skip, unreadable):
    """Yield the regular files below ``paths`` (or being one), minus excluded ones and ``skip``.

    Directories that cannot be listed are added to ``unreadable``.
    """

    def onerror(error):
        unreadable.append(f"{error.filename}: {error.strerror}")

    for root in paths:
        if is_excluded(root, excludes) or not os.path.lexists(root):
            continue
        if not os.path.isdir(root) or os.path.islink(root):
            if root not in skip and _is_candidate(root):
                yield root
            continue
        for dirpath, dirnames, filenames in os.walk(root, onerror=onerror):
            dirnames[:] = [d for d in dirnames if not is_excluded(os.path.join(dirpath, d), excludes)]
            for name in filenames:
                path = os.path.join(dirpath, name)
                if path not in skip and not is_excluded(path, excludes) and _is_candidate(path):
                    yield path


def build_manifest(cfg):
    """(manifest, unreadable) for the configured paths; unreadable lists "path: reason"."""
    files, unreadable = {}, []
    previous = previous_manifest_files(cfg.manifest_path)
    for path in walk_files(cfg.paths, cfg.excludes, {cfg.manifest_path}, unreadable):
        try:
            files[path] = file_entry(path, previous.get(path))
        except FileNotFoundError:
            continue  # removed since the walk saw it
        except OSError as e:
            unreadable.append(f"{path}: {e.strerror}")
    manifest = {"host": cfg.host, "created": datetime.now(UTC).isoformat(), "files": files}
    return manifest, unreadable


def write_atomic(path, data, mode):
    """Replace ``path`` with ``data`` at once (a temporary file in the same directory, then rename)."""
    # The temporary name ends in random letters, not ".prom": node-exporter never reads a half-written file.
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=f".{os.path.basename(path)}.")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def make_private_dirs(path):
    """Create ``path`` and its missing parents with mode 0700 (os.makedirs' mode only reaches the last one)."""
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for directory in reversed(missing):
        os.mkdir(directory, 0o700)
        os.chmod(directory, 0o700)  # whatever the umask


def ensure_canary(path):
    """Create the canary file (0600, new parents 0700) unless it exists."""
    if os.path.lexists(path):
        return
    make_private_dirs(os.path.dirname(path))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(CANARY_PREFIX + secrets.token_hex(16))


def read_canary(path):
    with open(path, "rb") as f:
        canary = f.read().strip()
    if len(canary) < 16:
        raise Failure(f"canary file {path} holds fewer than 16 bytes: too short to prove anything")
    return canary


def file_contains(path, needle, chunk_size=1 << 20):
    """True when the bytes ``needle`` occur in the file, read in chunks; the last len(needle) - 1 bytes
    seen are carried over so a needle across two chunks is found."""
    keep = len(needle) - 1
    tail = b""
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            window = tail + chunk
            if needle in window:
                return True
            tail = window[-keep:] if keep else b""
    return False


def files_containing(root, needle):
    """Every file below ``root`` whose raw bytes contain ``needle``."""
    found = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if file_contains(path, needle):
                found.append(path)
    return found


@dataclass
class Comparison:
    checked: int = 0
    bytes: int = 0
    mismatches: list = field(default_factory=list)
    changed: list = field(default_factory=list)


def compare_restored(files, root, paths):
    """Compare the restored copies under ``root`` of ``paths`` with their manifest entries ``files``.

    A restored mtime other than the manifest's means the file changed between the manifest and restic
    reading it: counted as changed, not as a mismatch. Otherwise a missing file or another sha256 is one.
    """
    result = Comparison()
    for path in paths:
        entry = files[path]
        result.checked += 1
        result.bytes += entry["size"]
        try:
            restored = file_entry(os.path.join(root, path.lstrip("/")))
        except FileNotFoundError:
            result.mismatches.append((path, "missing from the restore"))
            continue
        except OSError as e:
            result.mismatches.append((path, f"unreadable in the restore ({e.strerror})"))
            continue
        if restored["mtime_ns"] != entry["mtime_ns"]:
            result.changed.append(path)
        elif restored["sha256"] != entry["sha256"]:
            result.mismatches.append((path, "sha256 differs"))
    return result


def load_restored_manifest(root, manifest_path):
    """The manifest restored under ``root``; Failure when it is missing or malformed."""
    path = os.path.join(root, manifest_path.lstrip("/"))
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise Failure(f"the restored manifest {manifest_path} is unreadable: {e}") from e
    files = manifest.get("files") if isinstance(manifest, dict) else None
    valid = isinstance(files, dict) and all(
        isinstance(e, dict)
        and isinstance(e.get("sha256"), str)
        and _is_int(e.get("size"))
        and _is_int(e.get("mtime_ns"))
        for e in files.values()
    )
    if not valid:
        raise Failure(f"the restored manifest {manifest_path} is malformed")
    return manifest


def choose_sample(paths, sample, rng=random):
    """``sample`` paths at random (sorted), or all of them for "all" or a sample at least as large."""
    paths = sorted(paths)
    if sample == "all" or sample >= len(paths):
        return paths
    return sorted(rng.sample(paths, sample))


def remove_tree(path):
    """Delete a restored scratch tree, including directories restored without write permission."""
    if not os.path.lexists(path):
        return
    for dirpath, dirnames, _filenames in os.walk(path):
        for name in dirnames:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(dirpath, name), 0o700, follow_symlinks=False)
    shutil.rmtree(path)


# --- state and metrics -----------------------------------------------------------------------------------


def load_state(path):
    """The persisted state; an unreadable one is reported and replaced by an empty one."""
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
    except FileNotFoundError:
        return {"repositories": {}}
    except (OSError, ValueError) as e:
        report(f"state {path} is unreadable, starting afresh: {e}")
        return {"repositories": {}}
    if not isinstance(state, dict) or not isinstance(state.get("repositories"), dict):
        report(f"state {path} is malformed, starting afresh")
        return {"repositories": {}}
    return state


def save_state(path, state):
    write_atomic(path, (json.dumps(state, indent=2, sort_keys=True) + "\n").encode(), 0o600)


def repo_record(state, name):
    return state.setdefault("repositories", {}).setdefault(name, {})


def finish_run(record, ok, started):
    record["last_run_success"] = int(ok)
    record["duration_seconds"] = round(time.monotonic() - started, 3)


def _format_value(value):
    return str(value) if _is_int(value) else repr(float(value))


def render_metrics(state, names):
    """The textfile for the repositories ``names`` (config order): only metrics with a value."""
    records = state.get("repositories", {})
    lines = []
    for metric, key, help_text in METRICS:
        samples = [(name, records[name][key]) for name in names if key in records.get(name, {})]
        if not samples:
            continue
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge"]
        # Repository names match NAME_RE, so they need no escaping as label values.
        lines += [f'{metric}{{repository="{name}"}} {_format_value(value)}' for name, value in samples]
    return "".join(line + "\n" for line in lines)


def write_metrics(cfg, state):
    os.makedirs(os.path.dirname(cfg.textfile), mode=0o755, exist_ok=True)
    text = render_metrics(state, [r.name for r in cfg.repositories])
    write_atomic(cfg.textfile, text.encode(), 0o644)


# --- commands --------------------------------------------------------------------------------------------


def report(message):
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def describe(error):
    if isinstance(error, OSError) and error.filename:
        return f"{error.filename}: {error.strerror}"
    return str(error)


def prepare_sources(cfg):
    """Canary and manifest, written before restic reads the paths."""
    if cfg.canary_file:
        ensure_canary(cfg.canary_file)
    manifest, unreadable = build_manifest(cfg)
    if unreadable:
        report(f"manifest: {len(unreadable)} unreadable files skipped (first: {unreadable[0]})")
    write_atomic(cfg.manifest_path, json.dumps(manifest, sort_keys=True).encode(), 0o600)
    return manifest


def primary_init(cfg):
    """How to initialise a missing primary: with a replica's chunker parameters when one exists.

    After a disaster the local repository is new while the remote one holds the history; with
    the same chunker parameters the copies into the remote one deduplicate against it.
    """
    for replica in cfg.replicas:
        if run_restic(cfg, replica, ["cat", "config"], check=False).returncode == 0:
            return ["--copy-chunker-params", *from_args(replica)], replica
    return [], None


def backup_primary(cfg, state, started):
    """Back up into the primary, then apply its retention.

    Returns "ok", "incomplete" (a snapshot was saved without some unreadable files: it is
    kept and copied, but no retention runs) or "failed".
    """
    repo = cfg.primary
    record = repo_record(state, repo.name)
    try:
        ensure_repository(cfg, repo, primary_init)
        summary = run_backup(cfg, repo)
        record["last_success_timestamp"] = time.time()
        record["last_snapshot"] = summary.get("snapshot_id")
        apply_retention(cfg, repo)
        record.update(repository_stats(cfg, repo))
    except ResticError as e:
        report(f"repository {repo.name}: {e}")
        finish_run(record, False, started)
        return "incomplete" if e.kind == INCOMPLETE else "failed"
    finish_run(record, True, started)
    print(
        f"backup {repo.name}: snapshot {summary.get('snapshot_id')}, {summary.get('total_files_processed', 0)} files, "
        f"{summary.get('total_bytes_processed', 0)} bytes processed, {summary.get('data_added', 0)} bytes added, "
        f"{record['duration_seconds']}s"
    )
    return "ok"


def copy_to_replica(cfg, state, replica, retention=True):
    """Copy the host's snapshots from the primary into ``replica``, then apply its retention
    (unless ``retention`` is false: after an incomplete backup nothing is pruned anywhere)."""
    started = time.monotonic()
    record = repo_record(state, replica.name)
    source = from_args(cfg.primary)
    try:
        # Copied chunker parameters make the replica deduplicate exactly like the primary.
        ensure_repository(cfg, replica, lambda _cfg: (["--copy-chunker-params", *source], None))
        run_restic(cfg, replica, ["copy", *source, "--host", cfg.host])
        record["last_success_timestamp"] = time.time()
        if retention:
            apply_retention(cfg, replica)
        record.update(repository_stats(cfg, replica))
    except ResticError as e:
        report(f"repository {replica.name}: {e}")
        finish_run(record, False, started)
        return False
    finish_run(record, True, started)
    print(f"copy {replica.name}: {record['snapshots']} snapshots, {record['duration_seconds']}s")
    return True


def cmd_backup(cfg, state, _args):
    started = time.monotonic()
    try:
        prepare_sources(cfg)
    except (OSError, Failure) as e:
        report(f"backup: {describe(e)}")
        for repo in cfg.repositories:
            finish_run(repo_record(state, repo.name), False, started)
        return False
    primary = backup_primary(cfg, state, started)
    if primary == "failed":
        # Nothing new to copy; the replicas count as failed so the run shows up in their metrics too.
        for replica in cfg.replicas:
            report(f"repository {replica.name}: skipped, the backup into {cfg.primary.name} failed")
            repo_record(state, replica.name)["last_run_success"] = 0
        return False
    # An incomplete snapshot still goes off the host: one unreadable file must not stop the copies.
    results = [copy_to_replica(cfg, state, replica, retention=primary == "ok") for replica in cfg.replicas]
    return primary == "ok" and all(results)


def verify_encryption(cfg, repo, record):
    """Search the raw files of a local repository for the canary; True when it is nowhere."""
    root = repo.local_path
    try:
        canary = read_canary(cfg.canary_file)
        if not os.path.isfile(os.path.join(root, "config")):
            raise Failure(f"no repository at {root} to scan")
        found = files_containing(root, canary)
    except (OSError, Failure) as e:
        report(f"repository {repo.name}: encryption check: {describe(e)}")
        return False
    record["encryption_verified"] = int(not found)
    if found:
        report(
            f"repository {repo.name}: encryption check failed: the canary is readable in "
            f"{len(found)} files, e.g. {found[0]}"
        )
    return not found


def check_repository(cfg, state, repo, subset=None):
    """restic check (``subset`` of the data, default the configured one), plus the canary scan of a
    local repository; True when both pass."""
    record = repo_record(state, repo.name)
    ok = True
    try:
        run_restic(cfg, repo, ["check", f"--read-data-subset={subset or cfg.check_read_data_subset}"])
    except ResticError as e:
        report(f"repository {repo.name}: {e}")
        ok = False
    record["last_verification_success"] = int(ok)
    record["last_verification_timestamp"] = time.time()
    encrypted = None
    if repo.local_path and cfg.canary_file:
        encrypted = verify_encryption(cfg, repo, record)
    scan = "" if encrypted is None else f", encryption check {'ok' if encrypted else 'FAILED'}"
    print(f"check {repo.name}: {'ok' if ok else 'FAILED'}{scan}")
    return ok and encrypted is not False


def cmd_check(cfg, state, args):
    subset = getattr(args, "read_data_subset", None)
    results = [check_repository(cfg, state, repo, subset) for repo in cfg.repositories]
    return all(results)


def run_drill(cfg, repo, scratch):
    """Restore the manifest and a sample from the latest snapshot into ``scratch`` and compare them."""
    snapshot = find_snapshot(cfg, repo, cfg.host)
    manifest_path = snapshot_manifest_path(cfg, snapshot)
    failure = restore(cfg, repo, snapshot["id"], scratch, [manifest_path])
    if failure:
        raise ResticError(failure)
    files = load_restored_manifest(scratch, manifest_path)["files"]
    sample = choose_sample(files, cfg.drill_sample)
    failure = None
    if sample:
        failure = restore(cfg, repo, snapshot["id"], scratch, None if len(sample) == len(files) else sample)
    if failure:
        report(f"repository {repo.name}: {failure.message}")
    return compare_restored(files, scratch, sample), failure is None


def cmd_drill(cfg, state, args):
    repo = cfg.repository(args.repository) if args.repository else cfg.primary
    started = time.monotonic()
    record = repo_record(state, repo.name)
    os.makedirs(cfg.drill_dir, mode=0o700, exist_ok=True)
    scratch = os.path.join(cfg.drill_dir, f"{repo.name}-{int(time.time())}-{os.getpid()}")
    try:
        comparison, restored = run_drill(cfg, repo, scratch)
    except (ResticError, Failure) as e:
        report(f"repository {repo.name}: drill: {e}")
        comparison, restored = Comparison(), False
    finally:
        remove_tree(scratch)
    for path, reason in comparison.mismatches:
        report(f"drill {repo.name}: {path}: {reason}")
    ok = restored and not comparison.mismatches
    record.update(last_drill_success=int(ok), last_drill_timestamp=time.time(), drill_files_checked=comparison.checked)
    print(
        f"drill {repo.name}: {comparison.checked} files checked, {len(comparison.mismatches)} mismatches, "
        f"{len(comparison.changed)} changed during backup, {time.monotonic() - started:.1f}s"
    )
    return ok


def cmd_restore(cfg, _state, args):
    repo = cfg.repository(args.repository)
    started = time.monotonic()
    try:
        snapshot = find_snapshot(cfg, repo, args.from_host or cfg.host, args.snapshot)
        manifest_path = snapshot_manifest_path(cfg, snapshot)
        failure = restore(cfg, repo, snapshot["id"], args.target)
        if failure:
            report(f"repository {repo.name}: {failure.message}")
        files = load_restored_manifest(args.target, manifest_path)["files"]
    except (ResticError, Failure) as e:
        report(f"repository {repo.name}: restore: {e}")
        return False
    comparison = compare_restored(files, args.target, sorted(files))
    for path, reason in comparison.mismatches:
        report(f"restore {repo.name}: {path}: {reason}")
    summary = {
        "repository": repo.name,
        "snapshot": snapshot["id"],
        "files": comparison.checked,
        "bytes": comparison.bytes,
        "mismatches": [path for path, _reason in comparison.mismatches],
        "changed": len(comparison.changed),
        "seconds": round(time.monotonic() - started, 3),
    }
    print(json.dumps(summary, sort_keys=True))
    return failure is None and not comparison.mismatches


COMMANDS = {"backup": cmd_backup, "check": cmd_check, "drill": cmd_drill, "restore": cmd_restore}


@contextlib.contextmanager
def exclusive_lock(path, timeout, poll=1.0):
    """Hold an exclusive flock on ``path``, waiting at most ``timeout`` seconds for it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Failure(
                        f"another backup, check, drill or restore holds {path}; gave up after {timeout}s"
                    ) from None
                time.sleep(min(poll, remaining))
        yield
    finally:
        os.close(fd)


def _snapshot_id(value):
    if value != "latest" and not SNAPSHOT_RE.match(value):
        raise argparse.ArgumentTypeError("a snapshot ID (8 to 64 hex digits) or 'latest'")
    return value


def _read_data_subset(value):
    problems = []
    if _subset({"check_read_data_subset": value}, problems) is None:
        raise argparse.ArgumentTypeError(problems[0].split(": ", 1)[1] if problems else "invalid subset")
    return value


def _hostname(value):
    if not HOST_RE.match(value):
        raise argparse.ArgumentTypeError(f"not a host name: {value!r}")
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=PROG, description="restic backups of this host")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"JSON configuration (default {DEFAULT_CONFIG})")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("backup", help="manifest, backup into the primary, copy into the replicas")
    check = commands.add_parser("check", help="restic check and the encryption canary scan")
    check.add_argument(
        "--read-data-subset", type=_read_data_subset, help="this time, e.g. 100%% (default: check_read_data_subset)"
    )
    drill = commands.add_parser("drill", help="restore a sample of the latest snapshot and compare it")
    drill.add_argument("--repository", help="repository name (default: the primary)")
    restore_parser = commands.add_parser("restore", help="restore a whole snapshot and verify every file")
    restore_parser.add_argument("--repository", required=True)
    restore_parser.add_argument("--target", required=True, type=os.path.abspath)
    restore_parser.add_argument("--snapshot", default="latest", type=_snapshot_id)
    restore_parser.add_argument("--from-host", type=_hostname, help="whose latest snapshot (default: this host)")
    commands.add_parser("metrics", help="re-render the metrics textfile from the state")
    commands.add_parser("validate", help="check the configuration and nothing else (Ansible's validate:)")
    return parser.parse_args(argv)


def run_locked(cfg, args):
    """Run the command under the lock; state and metrics are written whatever happens."""
    os.makedirs(cfg.state_dir, mode=0o700, exist_ok=True)
    # restic check only uses a cache directory that exists.
    os.makedirs(cfg.cache_dir, mode=0o700, exist_ok=True)
    with exclusive_lock(cfg.lock_path, cfg.lock_timeout_seconds):
        state = load_state(cfg.state_path)
        try:
            return COMMANDS[args.command](cfg, state, args)
        finally:
            save_state(cfg.state_path, state)
            write_metrics(cfg, state)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        for problem in e.problems:
            report(f"config {args.config}: {problem}")
        return EXIT_CONFIG
    if getattr(args, "repository", None) and cfg.repository(args.repository) is None:
        report(f"unknown repository {args.repository!r} (configured: {', '.join(r.name for r in cfg.repositories)})")
        return EXIT_CONFIG
    if args.command == "validate":
        print(f"config {args.config}: ok")
        return EXIT_OK
    try:
        if args.command == "metrics":
            write_metrics(cfg, load_state(cfg.state_path))
            return EXIT_OK
        ok = run_locked(cfg, args)
    except (OSError, Failure) as e:
        report(describe(e))
        return EXIT_FAILED
    return EXIT_OK if ok else EXIT_FAILED


if __name__ == "__main__":
    # Only the runner's own process adopts orphans; main() called from elsewhere (tests) must not.
    adopt_orphans()
    sys.exit(main())
