# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of the config_rollback module: a host's configuration states, and going back to one.

Two backends:

``git`` (Debian)
    ``etc_dir`` (``/etc``) is a git repository, as etckeeper keeps it. A state is a commit. Going back to
    a commit restores the tracked files to that commit's content and records the result as a new commit,
    after recording any uncommitted change first, so no state is ever lost. etckeeper itself is used only
    when ``<etc_dir>/.etckeeper`` (its metadata file) exists: ``etckeeper pre-commit``, ``init`` (which
    re-applies the recorded owners and modes) and ``commit``. Without it the same flow runs with plain
    ``git`` - that is how the unit tests run it on a temporary repository.
``nixos``
    A state is a generation of the system profile (``nix-env --list-generations``). Going back switches
    the profile (``nix-env --rollback`` or ``--switch-generation N``) and activates that generation with
    its ``bin/switch-to-configuration switch``.

Everything that runs a command goes through ``runner``, shaped like ``AnsibleModule.run_command``;
NixOS paths come from a :class:`NixPaths`, so tests point them at a temporary directory.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import shlex
import stat
import tempfile
import time

from ansible_collections.homelab.nixos.plugins.module_utils._rebuild import (
    _sighup_ignored,
    error_summary,
    store_name,
)

BACKENDS = ("auto", "git", "nixos")
STATES = ("listed", "rolled_back")
PREVIOUS = "previous"
DEFAULT_ETC_DIR = "/etc"
SYSTEM_PROFILE = "/nix/var/nix/profiles/system"
CURRENT_SYSTEM = "/run/current-system"
MAX_COUNT = 1000

ENV = {"LC_ALL": "C"}
# Paths handed to git are file names, never patterns.
GIT_ENV = {"LC_ALL": "C", "GIT_LITERAL_PATHSPECS": "1", "GIT_TERMINAL_PROMPT": "0"}
# Files git writes during a rollback are private until their recorded owner and mode are back.
RESTORE_UMASK = 0o077
# The repository's own ignore rules are policy, not configuration: never rolled back.
KEPT_ALWAYS = (".gitignore",)
# Used for a commit only when git has no user.name / user.email configured.
FALLBACK_IDENTITY = (("user.name", "homelab.nixos"), ("user.email", "root@localhost"))

RESTORE = "restore"
REMOVE = "remove"
# etckeeper's metadata file: owners, groups, modes and empty directories, as shell commands.
METADATA = ".etckeeper"

_REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/~^@{}-]*")
_GENERATION_LINE = re.compile(
    r"\s*([0-9]+)\s+([0-9]{4}-[0-9]{2}-[0-9]{2})\s+([0-9]{2}:[0-9]{2}:[0-9]{2})\s*(\(current\))?\s*"
)


class HistoryError(Exception):
    """A failure; ``result`` holds what the module returns with it (cmd, rc, stdout, stderr, ...)."""

    def __init__(self, msg, **result):
        super().__init__(msg)
        self.result = result


class NixPaths:
    """Where NixOS keeps the system profile and the running system; tests point them at a tmp directory."""

    def __init__(self, system_profile=SYSTEM_PROFILE, current_system=CURRENT_SYSTEM):
        self.system_profile = system_profile
        self.current_system = current_system

    def generation_link(self, number):
        """``/nix/var/nix/profiles/system-41-link`` for generation 41."""
        return "%s-%d-link" % (self.system_profile, number)


def detect_backend(paths):
    """``nixos`` when the system profile exists, else ``git``."""
    return "nixos" if os.path.lexists(paths.system_profile) else "git"


def check_count(count):
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise HistoryError("count must be an integer from 1 to %d, got %r" % (MAX_COUNT, count))
    return count


def iso_utc(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class _Commands:
    """Runs commands through ``runner`` and remembers them for the result."""

    def __init__(self, runner):
        self.runner = runner
        self.last = {}
        self.steps = []

    def run(self, args, *, env=None, data=None, umask=None, what=None, check=True):
        """``(rc, stdout, stderr)``; with ``check`` a non-zero exit raises HistoryError naming ``what``."""
        kwargs = dict(environ_update=dict(env or ENV), check_rc=False, expand_user_and_vars=False)
        if data is not None:
            kwargs.update(data=data, binary_data=True)
        if umask is not None:
            kwargs["umask"] = umask
        try:
            rc, out, err = self.runner(list(args), **kwargs)
        except OSError as e:  # a missing binary is a failed step, not a crash
            rc, out, err = 127, "", str(e)
        self.last = dict(cmd=list(args), rc=rc, stdout=out, stderr=err)
        if check and rc != 0:
            raise HistoryError(
                "%s failed (rc %d): %s" % (what or " ".join(args), rc, error_summary(err, out)), **self.last
            )
        return rc, out, err


def _split_nul(text):
    return [part for part in (text or "").split("\0") if part]


def metadata_entry(line):
    """A line of ``.etckeeper`` as a tuple of words with its path (the last word) normalised, or None.

    etckeeper writes ``maybe chmod 0640 './shadow'``, or ``'shadow'`` when its ignore filter is active:
    both give ``("maybe", "chmod", "0640", "shadow")``. Comments and blank lines give None.
    """
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return (line.strip(),) if line.strip() else None
    if not words:
        return None
    path = words[-1]
    while path.startswith("./") and len(path) > 2:
        path = path[2:]
    return (*words[:-1], path)


def metadata_path(entry):
    """The path an entry of :func:`metadata_entry` is about (None for the top directory ``.``)."""
    if entry is None or len(entry) < 2 or entry[-1] in (".", "./"):
        return None
    return entry[-1]


def filter_metadata(text, ignored):
    """``.etckeeper`` text without the lines about ``ignored`` paths."""
    return "".join(line for line in (text or "").splitlines(True) if metadata_path(metadata_entry(line)) not in ignored)


# --- git (etckeeper) -------------------------------------------------------------------------------------


class GitHistory:
    """The commits of the git repository at ``etc_dir``; see the module docstring."""

    def __init__(self, runner, etc_dir=DEFAULT_ETC_DIR, git="git", etckeeper=None):
        self.commands = _Commands(runner)
        self.etc_dir = etc_dir
        self.git_bin = git
        self.etckeeper_bin = etckeeper
        self.warnings = []

    # -- commands ---------------------------------------------------------

    def git(self, *args, **kwargs):
        kwargs.setdefault("env", GIT_ENV)
        kwargs.setdefault("what", "git " + args[0])
        return self.commands.run([self.git_bin, "-C", self.etc_dir, *args], **kwargs)

    @property
    def uses_etckeeper(self):
        """etckeeper runs only where it keeps its metadata (``.etckeeper``) - never in a plain repository."""
        return os.path.exists(os.path.join(self.etc_dir, ".etckeeper"))

    def etckeeper(self, command, *args, check=True):
        if not self.etckeeper_bin:
            raise HistoryError(
                "%s has etckeeper metadata (.etckeeper) but etckeeper is not installed: install it (the "
                "homelab.nixos.config_history role does), or owners and modes would not be restored" % self.etc_dir
            )
        return self.commands.run(
            [self.etckeeper_bin, command, "-d", self.etc_dir, *args], what="etckeeper " + command, check=check
        )

    # -- reading ----------------------------------------------------------

    def check_repository(self):
        if not os.path.isdir(self.etc_dir):
            raise HistoryError("etc_dir %s is not a directory" % self.etc_dir)
        rc, out, _err = self.git("rev-parse", "--show-toplevel", check=False)
        hint = "put it under version control first (the homelab.nixos.config_history role runs etckeeper init)"
        if rc != 0:
            raise HistoryError("%s is not a git repository: %s" % (self.etc_dir, hint), **self.commands.last)
        top = out.strip()
        if os.path.realpath(top) != os.path.realpath(self.etc_dir):
            raise HistoryError("%s is not the top of a git repository (that is %s): %s" % (self.etc_dir, top, hint))

    def head(self):
        rc, out, _err = self.git("rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
        if rc != 0:
            raise HistoryError(
                "%s has no commit yet: record its first state (etckeeper commit) before a rollback" % self.etc_dir
            )
        return out.strip()

    def dirty(self):
        """Whether the files differ from HEAD (changed, removed or new files that are not ignored)."""
        _rc, out, _err = self.git("status", "--porcelain", "-z", "--untracked-files=all")
        return bool(out)

    def subject(self, commit):
        _rc, out, _err = self.git("log", "-1", "--format=%s", commit)
        return out.strip()

    def list(self, count):
        check_count(count)
        self.check_repository()
        head = self.head()
        _rc, out, _err = self.git("log", "--format=%H%x09%ct%x09%s", "-n", str(count), "HEAD")
        states = []
        for line in out.splitlines():
            parts = line.split("\t", 2)
            if len(parts) < 2 or not parts[1].isdigit():
                continue
            commit, epoch = parts[0], int(parts[1])
            states.append(
                dict(
                    id=commit,
                    date=iso_utc(epoch),
                    timestamp=epoch,
                    description=parts[2] if len(parts) > 2 else "",
                    current=commit == head,
                )
            )
        return dict(
            changed=False,
            backend="git",
            etc_dir=self.etc_dir,
            etckeeper=self.uses_etckeeper,
            current=head,
            uncommitted_changes=self.dirty(),
            states=states,
        )

    def resolve(self, to, head, dirty):
        """The full commit id ``to`` names. ``previous`` is the state before the current one: HEAD when there
        are uncommitted changes (they become the newest commit first), else HEAD's first parent."""
        if to == PREVIOUS:
            if dirty:
                return head
            rc, out, _err = self.git("rev-parse", "--verify", "--quiet", "HEAD~1^{commit}", check=False)
            if rc != 0:
                raise HistoryError(
                    "%s has a single commit (%s) and no uncommitted change: there is no previous state"
                    % (self.etc_dir, head[:12])
                )
            return out.strip()
        if not isinstance(to, str) or not _REVISION.fullmatch(to):
            raise HistoryError("to must be 'previous' or a commit of %s (its id), got %r" % (self.etc_dir, to))
        rc, out, _err = self.git("rev-parse", "--verify", "--quiet", to + "^{commit}", check=False)
        if rc != 0:
            raise HistoryError(
                "%s has no commit %s: state=listed shows its commits (git -C %s log)" % (self.etc_dir, to, self.etc_dir)
            )
        return out.strip()

    def ignored(self, paths):
        """Which of ``paths`` the current ignore rules match, tracked or not."""
        if not paths:
            return set()
        data = "".join(path + "\0" for path in paths)
        # check-ignore takes paths, never patterns, and refuses GIT_LITERAL_PATHSPECS.
        rc, out, err = self.git("check-ignore", "-z", "--no-index", "--stdin", data=data, check=False, env=ENV)
        if rc not in (0, 1):
            raise HistoryError(
                "git check-ignore failed (rc %d): %s" % (rc, error_summary(err, out)), **self.commands.last
            )
        return set(_split_nul(out))

    def changes(self, target):
        """What going to ``target`` changes: ``(files, kept)``.

        ``files`` lists ``{path, action}`` sorted by path, with action ``restore`` (the path gets the target's
        content back, or comes back) or ``remove`` (the path is absent at the target: tracked now, or new and
        not ignored). ``kept`` lists paths that differ but stay as they are: ``.gitignore`` and whatever the
        current ignore rules match (files the repository must not hold, such as secrets).
        """
        _rc, out, _err = self.git("diff", "--name-status", "-z", "--no-renames", "--no-ext-diff", target, "--")
        words = _split_nul(out)
        actions = {}
        for index in range(0, len(words) - 1, 2):  # status, path, status, path, ...
            actions[words[index + 1]] = REMOVE if words[index] == "A" else RESTORE
        _rc, out, _err = self.git("ls-files", "-z", "--others", "--exclude-standard")
        for path in _split_nul(out):
            actions[path] = REMOVE
        candidates = sorted(path for path in actions if path not in KEPT_ALWAYS)
        ignored = self.ignored(candidates)
        if actions.get(METADATA) == RESTORE and self.uses_etckeeper and not self.metadata_differs(target):
            ignored.add(METADATA)  # it differs only in entries of ignored paths, or in how they are written
        files = [dict(path=path, action=actions[path]) for path in candidates if path not in ignored]
        kept = sorted(path for path in actions if path in KEPT_ALWAYS or path in ignored)
        return files, kept

    def _ignored_in_metadata(self, text):
        entries = [metadata_entry(line) for line in (text or "").splitlines()]
        return self.ignored(sorted({metadata_path(entry) for entry in entries} - {None}))

    def _entries(self, text):
        """The entries of ``.etckeeper`` text that are not about ignored paths, for comparing."""
        ignored = self._ignored_in_metadata(text)
        entries = [metadata_entry(line) for line in (text or "").splitlines()]
        return [entry for entry in entries if entry is not None and metadata_path(entry) not in ignored]

    def _current_metadata_text(self):
        try:
            with open(os.path.join(self.etc_dir, METADATA), encoding="utf-8", errors="surrogateescape") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def _target_metadata_text(self, target):
        rc, out, _err = self.git("show", "%s:%s" % (target, METADATA), check=False)
        return out if rc == 0 else ""

    def metadata_differs(self, target):
        """Whether ``.etckeeper`` of ``target`` and the current one differ in more than ignored paths (and in
        how etckeeper wrote the paths)."""
        return self._entries(self._target_metadata_text(target)) != self._entries(self._current_metadata_text())

    def target_metadata(self, target):
        """``.etckeeper`` of ``target`` without the lines about paths ignored now: restoring it must not give
        files kept out of the repository (secrets) the owners and modes of an older commit."""
        text = self._target_metadata_text(target)
        return filter_metadata(text, self._ignored_in_metadata(text))

    # -- changing ---------------------------------------------------------

    def identity_args(self):
        args = []
        for key, fallback in FALLBACK_IDENTITY:
            rc, out, _err = self.git("config", "--get", key, check=False)
            if rc != 0 or not out.strip():
                args += ["-c", "%s=%s" % (key, fallback)]
        return args

    def commit(self, message):
        """Record every change of the files as a commit; returns its id, or None when nothing changed."""
        if self.uses_etckeeper:
            rc, out, err = self.etckeeper("commit", message, check=False)
            if rc != 0:
                if "nothing to commit" in out + err:
                    return None
                raise HistoryError(
                    "etckeeper commit failed (rc %d): %s" % (rc, error_summary(err, out)), **self.commands.last
                )
        else:
            self.git("add", "--all")
            if self.git("diff", "--cached", "--quiet", check=False)[0] == 0:
                return None
            self.git(*self.identity_args(), "commit", "--quiet", "--no-verify", "-m", message, what="git commit")
        return self.head()

    def rollback(self, to, check_mode=False, diff=False):
        self.check_repository()
        head = self.head()
        etckeeper = self.uses_etckeeper
        if etckeeper and not check_mode:
            # Records the current owners and modes in .etckeeper, so a change of modes alone counts too.
            self.etckeeper("pre-commit")
        dirty = self.dirty()
        target = self.resolve(to, head, dirty)
        files, kept = self.changes(target)
        result = dict(
            changed=bool(files),
            backend="git",
            etc_dir=self.etc_dir,
            etckeeper=etckeeper,
            target=target,
            target_description=self.subject(target),
            before=head,
            uncommitted_changes=dirty,
            files=files,
            kept=kept,
            commits=[],
        )
        if diff:
            before = head + (" with uncommitted changes" if dirty else "")
            result["diff"] = dict(
                before_header=self.etc_dir, after_header=self.etc_dir, before=before + "\n", after=target + "\n"
            )
        if not files or check_mode:
            return result

        if dirty:
            message = "homelab: before rollback to %s" % target
            safety = self.commit(message)
            if safety is not None:
                result["commits"].append(dict(id=safety, message=message))
                result["before"] = safety
            result["uncommitted_changes"] = False
            # The same changes, now all of them tracked (and etckeeper's metadata current).
            files, kept = self.changes(target)
            result.update(files=files, kept=kept)
        try:
            self._restore(target, files)
        except HistoryError as e:
            e.result.update(result)
            raise HistoryError(
                "%s; the state before the rollback is commit %s (roll forward with to=%s)"
                % (e, result["before"], result["before"]),
                **e.result,
            ) from e
        message = "homelab: rollback to %s" % target + ("" if to == target else " (%s)" % to)
        commit = self.commit(message)
        if commit is None:
            # etckeeper's pre-commit recorded the same metadata again: applying the target's changed nothing.
            self.warnings.append("the rollback to %s left every file as it was: nothing to commit" % target[:12])
            result["changed"] = bool(result["commits"])
        else:
            result["commits"].append(dict(id=commit, message=message))
            result["commit"] = commit
        remaining, _kept = self.changes(target)
        if remaining:
            self.warnings.append(
                "after the rollback these paths of %s still differ from %s: %s"
                % (self.etc_dir, target[:12], ", ".join(entry["path"] for entry in remaining))
            )
        return result

    def _restore(self, target, files):
        removing = [entry["path"] for entry in files if entry["action"] == REMOVE]
        restoring = [entry["path"] for entry in files if entry["action"] == RESTORE]
        previous = {}
        for path in restoring:
            try:
                previous[path] = os.lstat(os.path.join(self.etc_dir, path))
            except OSError:
                pass
        # Removals first: a path that is a file now may be a directory at the target, or the reverse.
        if removing:
            data = "".join(path + "\0" for path in removing)
            self.git("rm", "--quiet", "--force", "--pathspec-from-file=-", "--pathspec-file-nul", data=data)
        if METADATA in restoring and self.uses_etckeeper:
            restoring.remove(METADATA)
            self._write_private(os.path.join(self.etc_dir, METADATA), self.target_metadata(target))
        if restoring:
            data = "".join(path + "\0" for path in restoring)
            self.git(
                "checkout", target, "--pathspec-from-file=-", "--pathspec-file-nul", data=data, umask=RESTORE_UMASK
            )
        for path, st in previous.items():
            self._restore_owner_and_mode(os.path.join(self.etc_dir, path), st)
        if self.uses_etckeeper:
            # Runs the target's .etckeeper: its owners, groups, modes and empty directories.
            self.etckeeper("init")

    @staticmethod
    def _write_private(path, text):
        fd, tmp = tempfile.mkstemp(prefix=".homelab-", dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write(text)
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)

    def _restore_owner_and_mode(self, path, old):
        """Give a file git rewrote the owner, group and mode it had (git writes new files as the module's user
        with the umask). With etckeeper, ``etckeeper init`` then applies the target's recorded metadata."""
        try:
            new = os.lstat(path)
            if stat.S_IFMT(new.st_mode) != stat.S_IFMT(old.st_mode):
                return
            if (new.st_uid, new.st_gid) != (old.st_uid, old.st_gid):
                os.lchown(path, old.st_uid, old.st_gid)
            if not stat.S_ISLNK(new.st_mode) and stat.S_IMODE(new.st_mode) != stat.S_IMODE(old.st_mode):
                os.chmod(path, stat.S_IMODE(old.st_mode))
        except OSError as e:
            self.warnings.append("could not give %s its owner and mode back: %s" % (path, e.strerror or e))


# --- NixOS generations -----------------------------------------------------------------------------------


def parse_generations(text):
    """``nix-env --list-generations`` output -> ``[{number, date, current}]``, oldest first."""
    generations = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        match = _GENERATION_LINE.fullmatch(line)
        if not match:
            raise HistoryError("cannot read this line of nix-env --list-generations: %r" % line.strip())
        generations.append(
            dict(
                number=int(match.group(1)),
                date="%s %s" % (match.group(2), match.group(3)),
                current=bool(match.group(4)),
            )
        )
    generations.sort(key=lambda generation: generation["number"])
    return generations


class NixosGenerations:
    """The generations of the NixOS system profile; see the module docstring."""

    def __init__(self, runner, nix_env="nix-env", paths=None):
        self.commands = _Commands(runner)
        self.nix_env = nix_env
        self.paths = paths or NixPaths()
        self.warnings = []

    def step(self, args, what):
        rc, out, err = self.commands.run(args, what=what, check=False)
        self.commands.steps.append(dict(self.commands.last))
        return rc, out, err

    def generations(self):
        profile = self.paths.system_profile
        if not os.path.lexists(profile):
            raise HistoryError("%s does not exist: this is not a NixOS host (use backend=git)" % profile)
        self.commands.run([self.nix_env, "--list-generations", "-p", profile], what="nix-env --list-generations")
        generations = parse_generations(self.commands.last["stdout"])
        if not generations:
            raise HistoryError("nix-env lists no generation of %s" % profile, **self.commands.last)
        return generations

    def current(self, generations):
        current = [generation["number"] for generation in generations if generation["current"]]
        if not current:
            raise HistoryError(
                "nix-env marks no generation of %s as current" % self.paths.system_profile, **self.commands.last
            )
        return current[0]

    def system(self, number):
        """The store path of generation ``number``."""
        return os.path.realpath(self.paths.generation_link(number))

    def running(self):
        if not os.path.lexists(self.paths.current_system):
            return None
        return os.path.realpath(self.paths.current_system)

    def list(self, count):
        check_count(count)
        generations = self.generations()
        current = self.current(generations)
        states = []
        for generation in reversed(generations[-count:]):
            link = self.paths.generation_link(generation["number"])
            states.append(
                dict(
                    id=str(generation["number"]),
                    generation=generation["number"],
                    date=generation["date"],
                    description=store_name(os.readlink(link)) if os.path.islink(link) else "",
                    current=generation["current"],
                )
            )
        return dict(
            changed=False,
            backend="nixos",
            current=str(current),
            running_system=self.running(),
            states=states,
        )

    def resolve(self, to, generations, current):
        numbers = [generation["number"] for generation in generations]
        if to == PREVIOUS:
            older = [number for number in numbers if number < current]
            if not older:
                raise HistoryError("generation %d is the oldest system generation: there is no previous one" % current)
            return max(older)
        if not isinstance(to, str) or not to.isdigit():
            raise HistoryError("to must be 'previous' or a generation number on NixOS, got %r" % (to,))
        number = int(to)
        if number not in numbers:
            raise HistoryError(
                "there is no system generation %d; the host has %s" % (number, ", ".join(str(n) for n in numbers))
            )
        return number

    def rollback(self, to, check_mode=False, diff=False):
        generations = self.generations()
        current = self.current(generations)
        target = self.resolve(to, generations, current)
        target_system = self.system(target)
        running = self.running()
        switch_profile = target != current
        activate = switch_profile or running != target_system
        result = dict(
            changed=activate,
            backend="nixos",
            target=str(target),
            before=str(current),
            target_system=target_system,
            running_system=running,
            commands=self.commands.steps,
        )
        if diff:
            result["diff"] = dict(
                before_header=self.paths.system_profile,
                after_header=self.paths.system_profile,
                before="generation %d (running %s)\n" % (current, running),
                after="generation %d (running %s)\n" % (target, target_system),
            )
        if not activate or check_mode:
            return result
        old_system = self.system(current)
        with _sighup_ignored():
            if switch_profile:
                profile_cmd = [self.nix_env, "-p", self.paths.system_profile]
                profile_cmd += ["--rollback"] if to == PREVIOUS else ["--switch-generation", str(target)]
                rc, out, err = self.step(profile_cmd, "nix-env")
                if rc != 0:
                    raise HistoryError(
                        "nix-env could not switch %s to generation %d (rc %d): %s"
                        % (self.paths.system_profile, target, rc, error_summary(err, out)),
                        **dict(result, **self.commands.last),
                    )
                now = self.current(self.generations())
                if now != target:
                    raise HistoryError(
                        "after %s the system profile is at generation %d, not %d: nothing was activated"
                        % (" ".join(profile_cmd[1:]), now, target),
                        **dict(result, **self.commands.last),
                    )
            switch = [os.path.join(target_system, "bin", "switch-to-configuration"), "switch"]
            rc, out, err = self.step(switch, "switch-to-configuration")
            last = dict(self.commands.last)
            if rc == 0:
                result["running_system"] = self.running()
                result.update(last)
                return result
            reason = "switch-to-configuration switch of generation %d failed (rc %d): %s" % (
                target,
                rc,
                error_summary(err, out),
            )
            problems = self._undo(current, old_system, switch_profile)
        result["running_system"] = self.running()
        if problems:
            reason += "; going back to generation %d failed too: %s" % (current, "; ".join(problems))
        else:
            reason += "; went back to generation %d (%s)" % (current, old_system)
        raise HistoryError(reason, **dict(result, **last))

    def _undo(self, current, old_system, switch_profile):
        """Profile and running system back to generation ``current``; the problems, if any."""
        problems = []
        if switch_profile:
            undo = [self.nix_env, "-p", self.paths.system_profile, "--switch-generation", str(current)]
            rc, out, err = self.step(undo, "nix-env")
            if rc != 0:
                problems.append("nix-env --switch-generation %d (rc %d): %s" % (current, rc, error_summary(err, out)))
        switch = [os.path.join(old_system, "bin", "switch-to-configuration"), "switch"]
        rc, out, err = self.step(switch, "switch-to-configuration")
        if rc != 0:
            problems.append("its switch-to-configuration switch (rc %d): %s" % (rc, error_summary(err, out)))
        return problems
