# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of the rollback_guard module: the host-side half of a commit-confirm safety net.

A guard named ``name`` lives in ``<state_dir>/<name>/`` (mode 0700)::

    guard.json   name, paths, armed_at, fires_at, unit (written when armed)
    files/<i>    copy of the i-th guarded path (owner, mode, timestamps kept; symlinks as symlinks)
    restore.sh   the restore script (POSIX sh) that the transient timer homelab-rollback-<name> runs
    pending      token: the guard is armed and nobody has claimed it yet
    started      the restore script claimed the guard (renamed ``pending``); holds its start time
    restored     marker: the restore script finished; holds the time (UTC)
    confirmed    ``state=confirmed`` claimed the guard (renamed ``pending``); the directory goes next

``pending`` is renamed exactly once, by whoever comes first: the restore script (timer or
``state=fired``) or ``state=confirmed``. So a confirmation racing with the timer either stops the
restore before it touches anything, or learns that the guard fired; it never removes the snapshot
under a running restore.

Everything here is plain functions on paths and argument values: nothing runs a command, so the
script text, the ``systemd-run`` argv and the argument checks are unit-testable, and the snapshot
code works on any directory.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import re
import shlex
import shutil
import stat
import time

NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
STATES = ("armed", "confirmed", "fired")
MIN_TIMEOUT = 10
MAX_TIMEOUT = 3600
DEFAULT_TIMEOUT = 120
DEFAULT_STATE_DIR = "/var/lib/homelab/rollback"
UNIT_PREFIX = "homelab-rollback-"
LOG_TAG = "homelab-rollback"
SHELL = "/bin/sh"
ENV = {"LC_ALL": "C"}
# Appended to the PATH the restore script runs with: the transient unit gets systemd's default PATH,
# which on NixOS holds neither cp nor systemctl.
FALLBACK_PATH = (
    "/run/wrappers/bin",
    "/run/current-system/sw/bin",
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
)

# What read_guard finds.
ABSENT = "absent"  # no snapshot directory
ARMED = "armed"  # snapshot directory, nothing claimed it yet
RESTORING = "restoring"  # the restore script started and has not finished (or was interrupted)
FIRED = "fired"  # the restore script finished: ``restored`` marker
CONFIRMED = "confirmed"  # a confirmation claimed the guard and did not finish removing the directory

KIND_FILE = "file"
KIND_SYMLINK = "symlink"
KIND_ABSENT = "absent"

FAILED_PREFIX = "failed: "


class GuardError(Exception):
    """The guard cannot do what was asked; the message says why."""


class GuardInputError(GuardError):
    """Bad module arguments; nothing was touched."""


def unit_name(name):
    """The transient unit name given to ``systemd-run --unit`` (systemd adds .timer and .service)."""
    return UNIT_PREFIX + name


def timer_unit(name):
    return unit_name(name) + ".timer"


def format_time(epoch):
    """``2025-01-31T12:00:00Z`` for epoch seconds; the format of the ``restored`` marker."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


class GuardLayout:
    """Paths of guard ``name`` below ``state_dir``."""

    def __init__(self, state_dir, name):
        self.state_dir = state_dir
        self.name = name
        self.directory = os.path.join(state_dir, name)
        self.files = os.path.join(self.directory, "files")
        self.script = os.path.join(self.directory, "restore.sh")
        self.info = os.path.join(self.directory, "guard.json")
        self.pending = os.path.join(self.directory, "pending")
        self.started = os.path.join(self.directory, "started")
        self.restored = os.path.join(self.directory, "restored")
        self.confirmed = os.path.join(self.directory, "confirmed")

    def copy(self, index):
        """Snapshot copy of the ``index``-th path: named by position, never by path."""
        return os.path.join(self.files, str(index))


# --- arguments ----------------------------------------------------------------------------------------------


def _check_name(name):
    if isinstance(name, str) and NAME.fullmatch(name):
        return None
    return "name %r is invalid: use 1-40 of [a-z0-9-], starting with a letter or digit" % (name,)


def _path_kind(path, lstat=os.lstat):
    """KIND_* of what is at ``path`` now, or a problem string for what cannot be guarded."""
    try:
        st = lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return KIND_ABSENT
    except OSError as e:
        return "cannot inspect %s: %s" % (path, e.strerror or e)
    if stat.S_ISLNK(st.st_mode):
        return KIND_SYMLINK
    if stat.S_ISREG(st.st_mode):
        return KIND_FILE
    if stat.S_ISDIR(st.st_mode):
        return "%s is a directory: guard the files in it one by one" % path
    return "%s is not a regular file or a symlink" % path


def check_paths(paths, state_dir, lstat=os.lstat):
    """``(normalised paths, problems)``. Paths may be absent; directories and duplicates are problems."""
    problems = []
    normalised = []
    seen = set()
    for index, given in enumerate(paths):
        if not isinstance(given, str) or not given:
            problems.append("paths[%d] must be a non-empty string" % index)
            continue
        if "\0" in given:
            problems.append("paths[%d] contains a NUL byte" % index)
            continue
        if not os.path.isabs(given):
            problems.append("paths[%d] %s is not absolute" % (index, given))
            continue
        path = os.path.normpath(given)
        if path in seen:
            problems.append("paths[%d] %s is listed twice" % (index, path))
            continue
        seen.add(path)
        if path == state_dir or path.startswith(state_dir.rstrip("/") + "/"):
            problems.append("paths[%d] %s lies inside state_dir %s" % (index, path, state_dir))
            continue
        kind = _path_kind(path, lstat)
        if kind not in (KIND_FILE, KIND_SYMLINK, KIND_ABSENT):
            problems.append("paths[%d] %s" % (index, kind))
            continue
        normalised.append(path)
    return normalised, problems


def check_commands(commands):
    """``(argv lists of strings, problems)``. Each command is a non-empty list of words; no shell runs it."""
    problems = []
    checked = []
    for index, command in enumerate(commands):
        if isinstance(command, str):
            problems.append(
                "restore_commands[%d] is a string: write it as a list of words, for example [systemctl, reload, ssh]"
                % index
            )
            continue
        if not isinstance(command, (list, tuple)):
            problems.append("restore_commands[%d] must be a list of words" % index)
            continue
        if not command:
            problems.append("restore_commands[%d] is an empty argv" % index)
            continue
        argv = []
        for value in command:
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                problems.append("restore_commands[%d] has a word that is not a string: %r" % (index, value))
                break
            word = str(value)
            if "\0" in word:
                problems.append("restore_commands[%d] has a word with a NUL byte" % index)
                break
            argv.append(word)
        else:
            if not argv[0]:
                problems.append("restore_commands[%d] starts with an empty word" % index)
                continue
            checked.append(argv)
    return checked, problems


def check_params(params, lstat=os.lstat):
    """The module arguments, checked and normalised; raises GuardInputError listing every problem.

    ``paths``, ``restore_commands`` and ``timeout`` only matter for ``state=armed`` and are not
    checked otherwise.
    """
    problems = []
    name = params.get("name")
    problem = _check_name(name)
    if problem:
        problems.append(problem)
    state = params.get("state") or "armed"
    if state not in STATES:
        problems.append("state %r is not one of %s" % (state, ", ".join(STATES)))
    state_dir = params.get("state_dir") or DEFAULT_STATE_DIR
    if not os.path.isabs(state_dir):
        problems.append("state_dir %s is not absolute" % state_dir)
    else:
        state_dir = os.path.normpath(state_dir)
    checked = dict(name=name, state=state, state_dir=state_dir, paths=[], restore_commands=[], timeout=None)
    if state == "armed":
        timeout = params.get("timeout")
        if timeout is None:
            timeout = DEFAULT_TIMEOUT
        if isinstance(timeout, bool) or not isinstance(timeout, int) or not MIN_TIMEOUT <= timeout <= MAX_TIMEOUT:
            problems.append("timeout %r is out of range: use %d to %d seconds" % (timeout, MIN_TIMEOUT, MAX_TIMEOUT))
        paths, path_problems = check_paths(params.get("paths") or [], state_dir, lstat)
        commands, command_problems = check_commands(params.get("restore_commands") or [])
        problems.extend(path_problems + command_problems)
        if not params.get("paths") and not params.get("restore_commands"):
            problems.append("state=armed needs paths or restore_commands: there is nothing to guard")
        checked.update(paths=paths, restore_commands=commands, timeout=timeout)
    if problems:
        raise GuardInputError("invalid arguments: " + "; ".join(problems))
    return checked


# --- the restore script ------------------------------------------------------------------------------------


def search_path(environ_path):
    """PATH of the restore script: the absolute entries of ``environ_path``, then FALLBACK_PATH."""
    entries = []
    for entry in (environ_path or "").split(os.pathsep) + list(FALLBACK_PATH):
        if os.path.isabs(entry) and entry not in entries:
            entries.append(entry)
    return os.pathsep.join(entries)


def command_text(argv):
    """One command as a shell would read it."""
    return " ".join(shlex.quote(word) for word in argv)


def _plural(count, word):
    return "%d %s%s" % (count, word, "" if count == 1 else "s")


def render_script(layout, entries, commands, path_env):
    """Text of restore.sh for ``entries`` (from :func:`snapshot`) and the restore ``commands``.

    POSIX sh with ``set -u`` but not ``-e``: a failing step is logged (stderr, and syslog through
    ``logger -t homelab-rollback`` when it exists) and the script goes on. It always ends with the
    ``restored`` marker and exit 0; ``state=fired`` finds failures as ``homelab-rollback <name>: failed:``
    lines on stderr (see :func:`script_failures`).
    """
    q = shlex.quote
    name = layout.name
    restoring = [entry for entry in entries if entry["kind"] != KIND_ABSENT]
    removing = [entry for entry in entries if entry["kind"] == KIND_ABSENT]
    lines = [
        "#!/bin/sh",
        "# homelab.nixos rollback guard %s, written by the homelab.nixos.rollback_guard module." % name,
        "# Restores the paths snapshotted when the guard was armed, then runs the restore commands.",
        "# Run by the transient timer %s, or by state=fired. Running it again does nothing." % timer_unit(name),
        "set -u",
        "umask 077",
        "PATH=%s" % q(path_env),
        "LC_ALL=C",
        "export PATH LC_ALL",
        "dir=%s" % q(layout.directory),
        "problems=0",
        "",
        "note() {",
        "    printf '%%s\\n' %s\"$1\"" % q("%s %s: " % (LOG_TAG, name)),
        "    if command -v logger >/dev/null 2>&1; then",
        '        logger -t %s %s"$1" || :' % (LOG_TAG, q(name + ": ")),
        "    fi",
        "}",
        "",
        "failed() {",
        "    problems=$((problems + 1))",
        "    printf '%%s\\n' %s\"$1\" >&2" % q("%s %s: %s" % (LOG_TAG, name, FAILED_PREFIX)),
        "    if command -v logger >/dev/null 2>&1; then",
        '        logger -t %s -p user.err %s"$1" || :' % (LOG_TAG, q(name + ": " + FAILED_PREFIX)),
        "    fi",
        "}",
        "",
        'if [ -e "$dir/restored" ]; then',
        '    note "already restored at $(cat "$dir/restored" 2>/dev/null): nothing to do"',
        "    exit 0",
        "fi",
        "# Claim the guard: whoever renames pending first wins, this script or state=confirmed.",
        'if [ ! -e "$dir/started" ] && ! mv -- "$dir/pending" "$dir/started" 2>/dev/null; then',
        "    note 'not armed (confirmed, or being restored already): nothing to do'",
        "    exit 0",
        "fi",
        'date -u +%Y-%m-%dT%H:%M:%SZ >"$dir/started" 2>/dev/null || :',
        "note %s"
        % q(
            "restoring %s, removing %s, then %s"
            % (_plural(len(restoring), "path"), _plural(len(removing), "path"), _plural(len(commands), "command"))
        ),
    ]
    for entry in entries:
        path = entry["path"]
        lines.append("")
        if entry["kind"] == KIND_ABSENT:
            lines += [
                "# %s did not exist when the guard was armed" % _comment(path),
                "if [ -d %s ] && [ ! -L %s ]; then" % (q(path), q(path)),
                "    failed %s" % q("not removed, it is a directory now: %s" % path),
                "else",
                "    rm -f -- %s || failed %s" % (q(path), q("could not remove %s" % path)),
                "fi",
            ]
            continue
        copy = entry["copy"]
        lines += [
            "# %s (%s when the guard was armed)" % (_comment(path), entry["kind"]),
            "if [ ! -e %s ] && [ ! -L %s ]; then" % (q(copy), q(copy)),
            "    failed %s" % q("not restored, its snapshot copy %s is missing: %s" % (copy, path)),
            "elif [ -d %s ] && [ ! -L %s ]; then" % (q(path), q(path)),
            "    failed %s" % q("not restored, it is a directory now: %s" % path),
            "else",
            "    rm -f -- %s || failed %s" % (q(path), q("could not remove %s" % path)),
            "    cp -a -- %s %s || failed %s" % (q(copy), q(path), q("could not restore %s from %s" % (path, copy))),
            "fi",
        ]
    for index, argv in enumerate(commands):
        # exec runs exactly this argv: no shell function, builtin, keyword or assignment is taken for it.
        text = command_text(argv)
        lines += [
            "",
            "# restore command %d" % (index + 1),
            '(exec %s) </dev/null || failed "exit $? from "%s' % (text, q(text)),
        ]
    lines += [
        "",
        'if date -u +%Y-%m-%dT%H:%M:%SZ >"$dir/restored.tmp" && mv -f -- "$dir/restored.tmp" "$dir/restored"; then',
        '    note "restored, $problems problem(s)"',
        "else",
        '    failed "could not write the marker $dir/restored"',
        "fi",
        "exit 0",
    ]
    return "\n".join(lines) + "\n"


def _comment(path):
    """``path`` for a comment line: a newline in it must not end the comment."""
    return path.replace("\n", "\\n").replace("\r", "\\r")


def script_failures(name, stderr):
    """The failures restore.sh reported on stderr, without their prefix."""
    prefix = "%s %s: %s" % (LOG_TAG, name, FAILED_PREFIX)
    return [line[len(prefix) :] for line in (stderr or "").splitlines() if line.startswith(prefix)]


# --- commands ----------------------------------------------------------------------------------------------


def systemd_run_argv(layout, timeout, systemd_run="systemd-run"):
    """The transient timer that runs restore.sh after ``timeout`` seconds."""
    return [
        systemd_run,
        "--unit",
        unit_name(layout.name),
        "--description",
        "homelab.nixos rollback guard %s" % layout.name,
        "--on-active=%ds" % timeout,
        "--timer-property=AccuracySec=1s",
        "--collect",
        SHELL,
        layout.script,
    ]


def stop_timer_argv(name, systemctl="systemctl"):
    return [systemctl, "stop", timer_unit(name)]


def restore_argv(layout):
    return [SHELL, layout.script]


def timer_not_loaded(rc, stderr):
    """``systemctl stop`` failed only because the timer is gone (elapsed and collected, or never there)."""
    return rc != 0 and "not loaded" in (stderr or "")


# --- the state directory ------------------------------------------------------------------------------------


def _read_marker(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip() or "an unknown time"
    except FileNotFoundError:
        return None


def read_info(layout):
    """guard.json as a dict, or None when it is missing or unreadable."""
    try:
        with open(layout.info, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


class GuardStatus:
    """What is in the snapshot directory of a guard: ``status`` is one of ABSENT, ARMED, RESTORING, FIRED,
    CONFIRMED; ``info`` is guard.json (or None); ``started_at``/``restored_at`` are the marker texts."""

    def __init__(self, status, info=None, started_at=None, restored_at=None):
        self.status = status
        self.info = info
        self.started_at = started_at
        self.restored_at = restored_at

    @property
    def exists(self):
        return self.status != ABSENT

    @property
    def armed(self):
        """A guard is armed while its directory exists without the ``restored`` marker."""
        return self.status in (ARMED, RESTORING)


def read_guard(layout):
    if not os.path.lexists(layout.directory):
        return GuardStatus(ABSENT)
    info = read_info(layout)
    restored_at = _read_marker(layout.restored)
    if restored_at is not None:
        return GuardStatus(FIRED, info, _read_marker(layout.started), restored_at)
    if os.path.lexists(layout.confirmed):
        return GuardStatus(CONFIRMED, info)
    started_at = _read_marker(layout.started)
    if started_at is not None:
        return GuardStatus(RESTORING, info, started_at)
    return GuardStatus(ARMED, info)


def _due(info, now):
    fires_at = (info or {}).get("fires_at")
    if isinstance(fires_at, bool) or not isinstance(fires_at, (int, float)):
        return "its firing time is unknown (guard.json is missing or unreadable)"
    if fires_at >= now:
        return "its timer fires at %s (in %d s)" % (format_time(fires_at), int(fires_at - now))
    return "it was due at %s (%d s ago) and has not restored: the timer may be gone (a reboot loses it)" % (
        format_time(fires_at),
        int(now - fires_at),
    )


def already_armed_message(layout, status, now):
    what = "rollback guard %s is already armed (snapshot %s)" % (layout.name, layout.directory)
    if status.status == RESTORING:
        detail = "its restore started at %s and has not finished, or was interrupted" % status.started_at
    else:
        detail = _due(status.info, now)
    return (
        "%s: %s. Run state=confirmed to keep the current configuration, or state=fired to restore the snapshot "
        "now, then arm it again" % (what, detail)
    )


def fired_message(layout, status):
    return (
        "rollback guard %s: the guard fired at %s: the host already restored the previous configuration "
        "(snapshot %s); arm the guard again before retrying the change"
        % (layout.name, status.restored_at, layout.directory)
    )


def restoring_message(layout, status):
    return (
        "rollback guard %s: the guard fired at %s and its restore has not finished, or was interrupted "
        "(snapshot %s): the host is going back to the previous configuration; run state=fired to run the "
        "restore again" % (layout.name, status.started_at, layout.directory)
    )


def guard_info(layout, entries, armed_at, timeout):
    """The content of guard.json."""
    return {
        "name": layout.name,
        "paths": [entry["path"] for entry in entries],
        "absent_paths": [entry["path"] for entry in entries if entry["kind"] == KIND_ABSENT],
        "armed_at": int(armed_at),
        "fires_at": int(armed_at) + int(timeout),
        "unit": unit_name(layout.name),
    }


def preview(paths, lstat=os.lstat):
    """Entries as :func:`snapshot` would make them, without copying anything (check mode)."""
    return [dict(path=path, kind=_path_kind(path, lstat)) for path in paths]


def snapshot(paths, layout):
    """Copy each path into ``layout.files`` (which must exist) and return the entries for the script.

    A regular file is copied with its owner, group, mode, timestamps and extended attributes, a symlink
    is recreated as a symlink (its owner and timestamps kept), an absent path is only recorded. The
    owner is set before the mode, since chown clears set-user-ID bits.
    """
    entries = []
    for index, path in enumerate(paths):
        kind = _path_kind(path)
        if kind not in (KIND_FILE, KIND_SYMLINK, KIND_ABSENT):
            raise GuardError(kind)
        entry = dict(path=path, kind=kind)
        if kind != KIND_ABSENT:
            copy = layout.copy(index)
            try:
                st = os.lstat(path)
                if kind == KIND_SYMLINK:
                    os.symlink(os.readlink(path), copy)
                else:
                    shutil.copyfile(path, copy, follow_symlinks=False)
                os.lchown(copy, st.st_uid, st.st_gid)
                shutil.copystat(path, copy, follow_symlinks=False)
            except OSError as e:
                hint = " (the module must run as root: become: true)" if e.errno == errno.EPERM else ""
                raise GuardError("cannot snapshot %s: %s%s" % (path, e.strerror or e, hint)) from e
            entry["copy"] = copy
        entries.append(entry)
    return entries


def unsafe_state_dir(state_dir):
    """A problem string when ``state_dir`` exists and others could replace what root runs from it."""
    try:
        st = os.stat(state_dir)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not stat.S_ISDIR(st.st_mode):
        return "state_dir %s is not a directory" % state_dir
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "state_dir %s is writable by group or others: restore.sh runs as root from it" % state_dir
    return None
