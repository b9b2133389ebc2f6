# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of the nixos_rebuild module: nixos-rebuild with a confirmed switch.

The flow for ``switch`` and ``test``:

1. read the system links (``/run/current-system``, the system profile and its
   ``system-N-link`` generation);
2. run ``nixos-rebuild`` with SIGHUP ignored;
3. read the links again: ``changed`` comes from comparing them, never from
   the exit code or the output;
4. confirm the new system within ``confirm_timeout`` seconds: a fresh SSH
   connection, every health command, every health URL;
5. when confirmation fails (or nixos-rebuild failed after activating),
   switch back to the previous system and report the failure.

What the module returns is cleaned on the way out: ``user:password@`` in
URLs is redacted and command outputs are cut to their last 64 KiB.

Everything that touches the host goes through a ``runner`` callable shaped
like ``AnsibleModule.run_command`` and a :class:`SystemPaths` object, and
time goes through ``clock``/``sleep``, so the flow is unit-testable with a
test double for nixos-rebuild.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import math
import os
import re
import shlex
import shutil
import signal
import socket
import tempfile
import time
from urllib.error import HTTPError
from urllib.parse import urlsplit

from ansible.module_utils.urls import open_url

ACTIONS = ("switch", "boot", "test", "build", "dry-build", "dry-activate")
# Actions that change the running system and can therefore be confirmed.
ACTIVATING = ("switch", "test")

SYSTEM_PROFILE = "/nix/var/nix/profiles/system"
CURRENT_SYSTEM = "/run/current-system"
BOOTED_SYSTEM = "/run/booted-system"

ENV = {"LC_ALL": "C"}

DEFAULT_BINARIES = {
    "nixos-rebuild": "nixos-rebuild",
    "ssh": "ssh",
    "nix": "nix",
    "nix-store": "nix-store",
    "nix-env": "nix-env",
    # sudo for the module's own privileged commands with use_remote_sudo and no target_host.
    "sudo": "sudo",
    # coreutils timeout(1), used to bound health commands; None: unbounded.
    "timeout": None,
}

DEFAULTS = {
    "action": "switch",
    "flake": None,
    "nixos_config": None,
    "target_host": None,
    "build_host": None,
    "use_remote_sudo": False,
    "extra_args": [],
    "confirm": None,
    "confirm_timeout": 60,
    "confirm_ssh_port": 22,
    "health_commands": [],
    "health_urls": [],
    "rollback": True,
}

# extra_args the module must control itself, and the option to use instead.
_RESERVED_ARGS = {
    "--rollback": "the rollback option",
    "--flake": "the flake option",
    "--no-flake": "the nixos_config option",
    "--target-host": "the target_host option",
    "--build-host": "the build_host option",
    "--use-remote-sudo": "the use_remote_sudo option",
    "--sudo": "the use_remote_sudo option",
    "--profile-name": "nothing: the module reads the default system profile",
    "-p": "nothing: the module reads the default system profile",
}

# extra_args that change channels or a flake lock file: check mode must not pass them on.
_CHANGING_ARGS = {
    "--upgrade": "updates the root user's channels",
    "--upgrade-all": "updates all of the root user's channels",
    "--recreate-lock-file": "rewrites the flake lock file",
    "--update-input": "updates a flake input in the lock file",
    "--commit-lock-file": "commits the flake lock file",
}
# nixos-rebuild accepts --specialisation (-c) only with switch and test, never with build.
_SPECIALISATION_ARGS = ("--specialisation", "-c")

# Connect timeout of the module's own ssh commands (state reads, rollback).
_SSH_CONNECT_TIMEOUT = 30
# Keepalives of the module's own ssh commands: a dead connection fails within ~15s instead of hanging.
_SSH_KEEPALIVE = ["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]
# Upper bound of one probe inside the confirmation loop.
_PROBE_TIMEOUT = 10
# Returned command outputs keep their last this many bytes.
OUTPUT_LIMIT = 64 * 1024
# userinfo with a password in a URL or flake reference: git+https://user:token@host/...
_URL_CREDENTIALS = re.compile(r"(?<=://)[^\s/?#@]*:[^\s/?#@]*@")
_HOSTNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_STORE_HASH = re.compile(r"[0-9a-z]{32}-")
_BANNERS = (b"SSH-2.0-", b"SSH-1.99-")  # 1.99 announces 2.0 compatibility (RFC 4253, 5.1)


class RebuildError(Exception):
    """A failure; ``result`` holds what the module returns with it."""

    def __init__(self, msg, **result):
        super().__init__(msg)
        self.result = result


class RebuildInputError(RebuildError):
    """Bad parameters, found before anything runs."""


class SystemPaths:
    """Where NixOS keeps its system links; tests point them at a tmp directory."""

    def __init__(
        self,
        system_profile=SYSTEM_PROFILE,
        current_system=CURRENT_SYSTEM,
        booted_system=BOOTED_SYSTEM,
        store="/nix/store",
    ):
        self.system_profile = system_profile
        self.current_system = current_system
        self.booted_system = booted_system
        self.store = store


class SystemState:
    """Resolved system links at one moment; any of them may be None."""

    def __init__(self, current, profile, generation, booted):
        self.current = current
        self.profile = profile
        self.generation = generation
        self.booted = booted

    def describe(self):
        """``generation N (/nix/store/...)`` when the profile matches the running system."""
        if self.generation is not None and self.profile == self.current:
            return f"generation {self.generation} ({self.current})"
        return str(self.current)


def parse_generation(link, profile=SYSTEM_PROFILE):
    """Generation number of a profile link target such as ``system-42-link``, or None."""
    if not link:
        return None
    pattern = re.escape(os.path.basename(profile)) + r"-([0-9]+)-link"
    match = re.fullmatch(pattern, os.path.basename(link.strip()))
    return int(match.group(1)) if match else None


def store_name(path):
    """``/nix/store/<hash>-firefox-121.0`` -> ``firefox-121.0``."""
    name = os.path.basename(path.rstrip("/"))
    return name[33:] if _STORE_HASH.match(name) else name


def error_summary(stderr, stdout=""):
    """One line out of a command's output: the first ``error:`` line, else the last line."""
    for text in (stderr, stdout):
        lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
        if lines:
            line = next((line for line in lines if line.startswith("error:")), lines[-1])
            return line if len(line) <= 300 else line[:297] + "..."
    return "no output"


def redact(text):
    """``git+https://user:token@host/x`` -> ``git+https://***@host/x``, anywhere in ``text``."""
    return _URL_CREDENTIALS.sub("***@", text)


def tail(text, limit=OUTPUT_LIMIT):
    """The last ``limit`` bytes of ``text`` (UTF-8), after a line saying how much was cut."""
    data = text.encode("utf-8", "surrogateescape")
    if len(data) <= limit:
        return text
    kept = data[-limit:].decode("utf-8", "ignore")
    return f"[... first {len(data) - limit} bytes cut ...]\n{kept}"


# Result keys whose text is a command's output (or made from one) and gets cut to OUTPUT_LIMIT.
_OUTPUT_KEYS = ("stdout", "stderr", "before", "after")


def clean_result(value, key=None):
    """``value`` (a module result) with credentials redacted and command outputs cut to their tail."""
    if isinstance(value, dict):
        return {k: clean_result(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_result(item) for item in value]
    if isinstance(value, str):
        return redact(tail(value) if key in _OUTPUT_KEYS else value)
    return value


def pin_binary(path):
    """``path`` with the directories resolved, so it keeps working after a switch.

    ``get_bin_path`` finds tools as ``/run/current-system/sw/bin/<name>``,
    which points into the new system as soon as it is activated: a rollback
    must not depend on it. Links that keep the program name are followed
    (``sw/bin/nixos-rebuild`` -> ``/nix/store/...-nixos-rebuild/bin/nixos-rebuild``),
    one that renames it is not: ``nix-env`` -> ``nix`` is a multi-call binary
    that acts on the name it was started as.
    """
    if not path or not os.path.isabs(path):
        return path
    name = os.path.basename(path)
    pinned = os.path.join(os.path.realpath(os.path.dirname(path)), name)
    for _unused in range(40):  # a link loop stops here
        try:
            target = os.readlink(pinned)
        except OSError:
            break  # not a link (or gone): done
        if os.path.basename(target) != name:
            break
        directory = os.path.join(os.path.dirname(pinned), os.path.dirname(target))
        pinned = os.path.join(os.path.realpath(directory), name)
    return pinned


def _socket_failure(error, timeout_message):
    # socket.timeout is an alias of TimeoutError only from Python 3.10 on.
    if isinstance(error, socket.timeout):
        return timeout_message
    return error.strerror or str(error)


def ssh_banner(host, port, timeout):
    """Open a TCP connection and wait for an SSH version banner.

    Returns ``(True, banner)`` or ``(False, reason)``; never takes much longer
    than ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        return False, _socket_failure(e, f"no connection within {timeout:g}s")
    data = b""
    try:
        # RFC 4253 lets a server send other lines before its version line.
        while len(data) < 4096:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False, f"no SSH banner within {timeout:g}s"
            sock.settimeout(remaining)
            chunk = sock.recv(1024)
            if not chunk:
                return False, "connection closed without an SSH banner"
            data += chunk
            for line in data.split(b"\n")[:-1]:
                if line.startswith(_BANNERS):
                    return True, line.rstrip(b"\r").decode("ascii", "replace")
        return False, "no SSH banner in the first 4 KiB"
    except OSError as e:
        return False, _socket_failure(e, f"no SSH banner within {timeout:g}s")
    finally:
        sock.close()


def _host_name(value, name):
    if value is None:
        return None
    if not isinstance(value, str) or not value or value.startswith("-") or len(value.split()) != 1:
        raise RebuildInputError(f"{name} must be one ssh destination such as root@host, got {value!r}")
    return value


def _health_command(index, command):
    if isinstance(command, str):
        try:
            argv = shlex.split(command)
        except ValueError as e:
            raise RebuildInputError(f"health_commands[{index}] {command!r} cannot be split into words: {e}") from e
    elif isinstance(command, (list, tuple)):
        argv = []
        for word in command:
            if isinstance(word, bool) or not isinstance(word, (str, int, float)):
                raise RebuildInputError(f"health_commands[{index}]: every word must be a string, got {word!r}")
            argv.append(str(word))
    else:
        raise RebuildInputError(f"health_commands[{index}] must be a list of words or a string, got {command!r}")
    if not argv or not argv[0]:
        raise RebuildInputError(f"health_commands[{index}] is empty")
    return argv


def _health_url(index, url):
    if not isinstance(url, str):
        raise RebuildInputError(f"health_urls[{index}] must be a string, got {url!r}")
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise RebuildInputError(f"health_urls[{index}] {url!r} is not a URL: {e}") from e
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RebuildInputError(f"health_urls[{index}] {url!r} must be an http:// or https:// URL with a host")
    return url


def _int(params, name, low, high):
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RebuildInputError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return value


def _check_mode_args(p, check_mode):
    """Reject extra_args that change things in check mode, and --specialisation where nixos-rebuild builds."""
    for arg in p["extra_args"]:
        option = arg.split("=", 1)[0]
        if check_mode and option in _CHANGING_ARGS:
            raise RebuildInputError(f"extra_args must not contain {option} in check mode: it {_CHANGING_ARGS[option]}")
        if option in _SPECIALISATION_ARGS and (check_mode or p["action"] == "build"):
            raise RebuildInputError(
                f"extra_args must not contain {option} in check mode or with action=build: "
                "nixos-rebuild accepts it only with switch and test, and check mode runs nixos-rebuild build"
            )


def validate_params(params, check_mode=False):
    """Module parameters, checked and normalised; RebuildInputError with a one-line reason otherwise."""
    p = dict(DEFAULTS)
    p.update((key, value) for key, value in params.items() if key in DEFAULTS and value is not None)
    if p["action"] not in ACTIONS:
        raise RebuildInputError(f"action must be one of {', '.join(ACTIONS)}, got {p['action']!r}")
    for name in ("flake", "nixos_config"):
        if p[name] is not None and (not isinstance(p[name], str) or not p[name].strip()):
            raise RebuildInputError(f"{name} must be a non-empty string, got {p[name]!r}")
    if p["flake"] is not None and p["nixos_config"] is not None:
        raise RebuildInputError(
            "flake and nixos_config are mutually exclusive: flake for a flake, nixos_config for configuration.nix"
        )
    p["target_host"] = _host_name(p["target_host"], "target_host")
    p["build_host"] = _host_name(p["build_host"], "build_host")
    p["confirm_timeout"] = _int(p, "confirm_timeout", 1, 24 * 3600)
    p["confirm_ssh_port"] = _int(p, "confirm_ssh_port", 1, 65535)

    extra = p["extra_args"]
    if not isinstance(extra, (list, tuple)) or not all(isinstance(arg, str) for arg in extra):
        raise RebuildInputError(f"extra_args must be a list of strings, got {extra!r}")
    for arg in extra:
        option = arg.split("=", 1)[0]
        if option in _RESERVED_ARGS:
            raise RebuildInputError(f"extra_args must not contain {option}: use {_RESERVED_ARGS[option]}")
    p["extra_args"] = list(extra)
    _check_mode_args(p, check_mode)

    if not isinstance(p["health_commands"], (list, tuple)) or not isinstance(p["health_urls"], (list, tuple)):
        raise RebuildInputError("health_commands and health_urls must be lists")
    p["health_commands"] = [_health_command(i, c) for i, c in enumerate(p["health_commands"])]
    p["health_urls"] = [_health_url(i, u) for i, u in enumerate(p["health_urls"])]

    activating = p["action"] in ACTIVATING
    if p["confirm"] is None:
        p["confirm"] = activating
    elif p["confirm"] and not activating:
        raise RebuildInputError(f"confirm applies only to action=switch or action=test, not {p['action']}")
    if p["health_commands"] or p["health_urls"]:
        if not activating:
            raise RebuildInputError(
                "health_commands and health_urls confirm an activation: they need action=switch or action=test"
            )
        if not p["confirm"]:
            raise RebuildInputError("health_commands and health_urls are checked only when confirm=true")
    for name in ("use_remote_sudo", "rollback", "confirm"):
        p[name] = bool(p[name])
    return p


def _absolute_flake(flake):
    """A flake reference with a relative path (``.#x``, ``./nixos``, ``path:../x``) made absolute.

    nixos-rebuild runs in a private temporary directory for some actions, where relative paths mean nothing.
    """
    if flake is None:
        return None
    ref, sep, attr = flake.partition("#")
    scheme = "path:" if ref.startswith("path:") else ""
    path = ref[len(scheme) :]
    if path in (".", "..") or path.startswith(("./", "../")) or (scheme and path and not path.startswith("/")):
        ref = scheme + os.path.abspath(path)
    return ref + sep + attr


@contextlib.contextmanager
def _sighup_ignored():
    """Ignore SIGHUP for the duration of the block.

    Activating a configuration can restart sshd or the network. When the SSH
    session that runs this module drops, its processes get SIGHUP, and by
    default that kills the module between the switch and the confirmation:
    the host is left on a possibly broken system with nobody to roll it back.
    With SIGHUP ignored the module, and the nixos-rebuild and
    switch-to-configuration it starts (an ignored signal stays ignored across
    fork and exec), finish the switch, the confirmation and the rollback.
    """
    unset = object()
    previous = unset
    try:
        previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    except ValueError:
        pass  # not the main thread: signal dispositions cannot be changed here
    try:
        yield
    finally:
        if previous is not unset:
            signal.signal(signal.SIGHUP, signal.SIG_DFL if previous is None else previous)


class NixosRebuild:
    """Run one nixos-rebuild action; :meth:`run` returns the module result or raises RebuildError.

    ``runner(args, environ_update=..., check_rc=False[, cwd=...]) -> (rc, stdout, stderr)``
    runs commands, ``paths`` says where the system links are, ``clock``/``sleep``
    measure and spend the confirmation time, ``binaries`` maps tool names to
    local paths, ``url_opener`` is ``open_url``-compatible.
    """

    def __init__(
        self,
        params,
        runner,
        *,
        paths=None,
        clock=time.monotonic,
        sleep=time.sleep,
        binaries=None,
        tmpdir=None,
        environ=None,
        url_opener=open_url,
        interval=2.0,
    ):
        self.params = validate_params(params)
        self.runner = runner
        self.paths = paths or SystemPaths()
        self.clock = clock
        self.sleep = sleep
        self.bins = dict(DEFAULT_BINARIES)
        self.bins.update(binaries or {})
        self.tmpdir = tmpdir
        self.url_opener = url_opener
        self.interval = interval
        self.warnings = []
        self.flake = _absolute_flake(self.params["flake"])
        config = self.params["nixos_config"]
        self.nixos_config = None if config is None else os.path.abspath(config)
        environ = os.environ if environ is None else environ
        try:
            # nixos-rebuild reads its ssh options from NIX_SSHOPTS; the module's own ssh commands use them too.
            self.ssh_opts = shlex.split(environ.get("NIX_SSHOPTS", ""))
        except ValueError as e:
            raise RebuildInputError(f"NIX_SSHOPTS cannot be split into words: {e}") from e

    # -- running commands -------------------------------------------------

    def _run(self, args, cwd=None):
        kwargs = {"environ_update": dict(ENV), "check_rc": False}
        if cwd is not None:
            kwargs["cwd"] = cwd
        try:
            return self.runner(list(args), **kwargs)
        except OSError as e:  # a missing binary must not stop a rollback half-way
            return 127, "", str(e)

    @contextlib.contextmanager
    def _workdir(self):
        """A private working directory: nixos-rebuild build, test and dry-activate can leave ./result there."""
        workdir = tempfile.mkdtemp(prefix="nixos-rebuild-", dir=self.tmpdir)
        try:
            yield workdir
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    @property
    def _remote(self):
        return self.params["target_host"] is not None

    def _tool(self, name):
        """A tool on the host: the resolved local path, or the bare name for the target's PATH."""
        return name if self._remote else self.bins[name]

    def _ssh(self, connect_timeout):
        return [self.bins["ssh"], "-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}", *_SSH_KEEPALIVE]

    def _host_argv(self, argv, privileged=False, timeout=None, connect_timeout=_SSH_CONNECT_TIMEOUT):
        """``argv`` as a command that runs on the host: directly, or through ssh with target_host.

        ``privileged`` commands get ``sudo -n --`` with use_remote_sudo, on the target or locally.
        """
        sudo = privileged and self.params["use_remote_sudo"]
        if self._remote:
            words = ["sudo", "-n", "--"] if sudo else []
            words += ["env", "LC_ALL=C", *argv]
            cmd = self._ssh(connect_timeout) + self.ssh_opts + [self.params["target_host"], shlex.join(words)]
        else:
            cmd = ([self.bins["sudo"], "-n", "--"] if sudo else []) + list(argv)
        return self._bounded(cmd, timeout)

    def _bounded(self, cmd, timeout):
        if timeout is None or not self.bins.get("timeout"):
            return cmd
        return [self.bins["timeout"], "-k", "5", f"{max(1, math.ceil(timeout))}s", *cmd]

    def _rebuild_cmd(self, action, activation=True, rollback=False, extra=True):
        p = self.params
        cmd = [self.bins["nixos-rebuild"], action]
        if rollback:
            # --fast: no rebuilding of nixos-rebuild itself (nor of nix) on the way back.
            cmd += ["--rollback", "--fast"]
        if self.flake is not None:
            cmd += ["--flake", self.flake]
        elif self.nixos_config is not None:
            # Without --no-flake, nixos-rebuild prefers /etc/nixos/flake.nix when it exists.
            cmd += ["-I", f"nixos-config={self.nixos_config}", "--no-flake"]
        if activation and p["target_host"]:
            cmd += ["--target-host", p["target_host"]]
        if p["build_host"]:
            cmd += ["--build-host", p["build_host"]]
        if activation and p["use_remote_sudo"]:
            cmd.append("--use-remote-sudo")
        if extra:
            cmd += p["extra_args"]
        return cmd

    # -- reading the system -----------------------------------------------

    def read_state(self):
        """The system links now; RebuildError when they cannot be read."""
        paths = self.paths
        links = [paths.current_system, paths.system_profile, paths.booted_system]
        if self._remote:
            target = self.params["target_host"]
            rc, out, err = self._run(self._host_argv(["readlink", "-f", *links]))
            lines = [line.strip() for line in out.splitlines()]
            if rc != 0 or len(lines) != len(links):
                raise RebuildError(
                    f"cannot read the system links on {target}: {error_summary(err, out)}",
                    rc=rc,
                    stdout=out,
                    stderr=err,
                )
            # readlink -f prints a path that is not a symlink unchanged.
            resolved = [None if lines[i] == link else lines[i] for i, link in enumerate(links)]
            rc, out, err = self._run(self._host_argv(["readlink", paths.system_profile]))
            profile_link = out.strip() if rc == 0 else None
        else:
            resolved = [
                os.path.realpath(link) if os.path.islink(link) and os.path.exists(link) else None for link in links
            ]
            profile_link = os.readlink(paths.system_profile) if os.path.islink(paths.system_profile) else None
        current, profile, booted = resolved
        return SystemState(current, profile, parse_generation(profile_link, paths.system_profile), booted)

    def _resolve_flake_attr(self):
        """With target_host, ``flake`` without ``#attr`` means the target's hostname, as nixos-rebuild does.

        Check mode and action=build run nixos-rebuild without --target-host, where it would pick the
        attribute of the machine the module runs on: name the target's attribute for every command.
        """
        if not self._remote or self.flake is None or "#" in self.flake:
            return
        target = self.params["target_host"]
        rc, out, err = self._run(self._host_argv(["cat", "/proc/sys/kernel/hostname"]))
        hostname = out.strip()
        if rc != 0 or not _HOSTNAME.fullmatch(hostname):
            why = error_summary(err, out) if rc != 0 else f"got {hostname!r}"
            raise RebuildError(
                f"cannot read the hostname of {target} for the flake attribute (rc {rc}): {why}; "
                "name it in flake as <flake>#<name>",
                rc=rc,
                stdout=out,
                stderr=err,
            )
        self.flake = f"{self.flake}#{hostname}"

    def _require_nixos(self, state):
        if state.current is None:
            where = f" on {self.params['target_host']}" if self._remote else ""
            raise RebuildError(f"{self.paths.current_system} does not exist{where}: not a NixOS system")

    def _key(self, state):
        """The system path an action changes: the profile for boot, the running system otherwise."""
        return state.profile if self.params["action"] == "boot" else state.current

    def _changed(self, before, after):
        action = self.params["action"]
        if action == "boot":
            return after.profile != before.profile
        if action == "test":
            return after.current != before.current
        return after.current != before.current or after.profile != before.profile

    # -- actions -----------------------------------------------------------

    def run(self, check_mode=False, diff=False):
        """The module result, or RebuildError; either way with credentials redacted and outputs cut."""
        try:
            _check_mode_args(self.params, check_mode)
            self._resolve_flake_attr()
            result = self._run_action(check_mode, diff)
        except RebuildError as e:
            e.args = (redact(str(e)),)
            e.result = clean_result(e.result)
            raise
        finally:
            self.warnings = [redact(warning) for warning in self.warnings]
        return clean_result(result)

    def _run_action(self, check_mode, diff):
        action = self.params["action"]
        if action in ("dry-build", "dry-activate"):
            return self._dry()
        if action == "build":
            return self._build_action(diff)
        if check_mode:
            return self._check(diff)
        return self._activate(diff)

    def _result(self, before, **extra):
        key = self._key(before) if before else None
        generation = before.generation if before else None
        result = dict(
            changed=False,
            action=self.params["action"],
            old_system=key,
            new_system=key,
            old_generation=generation,
            new_generation=generation,
            booted_system=before.booted if before else None,
            confirmed=False,
            rolled_back=False,
        )
        result.update(extra)
        return result

    def _dry(self):
        cmd = self._rebuild_cmd(self.params["action"])
        with self._workdir() as workdir:  # a classic dry-activate leaves ./result
            rc, out, err = self._run(cmd, cwd=workdir)
        result = dict(changed=False, action=self.params["action"], cmd=cmd, rc=rc, stdout=out, stderr=err)
        if rc != 0:
            raise RebuildError(
                f"nixos-rebuild {self.params['action']} failed (rc {rc}): {error_summary(err, out)}", **result
            )
        return result

    def build(self):
        """Build the configuration without activating it; returns ``(system_path, cmd, rc, stdout, stderr)``.

        The built system is ``./result`` in a private working directory; with build_host there is none, and
        nixos-rebuild-ng prints the path as the last line of its output instead.
        """
        cmd = self._rebuild_cmd("build", activation=False)
        with self._workdir() as workdir:
            rc, out, err = self._run(cmd, cwd=workdir)
            details = dict(changed=False, cmd=cmd, rc=rc, stdout=out, stderr=err)
            if rc != 0:
                raise RebuildError(f"nixos-rebuild build failed (rc {rc}): {error_summary(err, out)}", **details)
            link = os.path.join(workdir, "result")
            if os.path.islink(link):
                return os.path.realpath(link), cmd, rc, out, err
        built = self._printed_store_path(out)
        if built is not None:
            return built, cmd, rc, out, err
        msg = (
            "nixos-rebuild build exited 0 but left no ./result link and did not print the built system "
            "as the last line of its output"
        )
        if self.params["build_host"]:
            msg += (
                "; older nixos-rebuild versions do that with build_host: point nixos_rebuild_path at "
                "nixos-rebuild-ng, which prints the path, or leave build_host out for check mode and action=build"
            )
        raise RebuildError(msg, **details)

    def _printed_store_path(self, out):
        """The last line of ``out`` when it is a store path such as ``/nix/store/<hash>-nixos-system-...``."""
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        if not lines or len(lines[-1].split()) != 1:
            return None
        last = lines[-1].rstrip("/")
        if os.path.dirname(last) == self.paths.store.rstrip("/") and _STORE_HASH.match(os.path.basename(last)):
            return last
        return None

    def _build_action(self, diff):
        before = self.read_state()
        built, cmd, rc, out, err = self.build()
        would_change = None if before.current is None else built != before.current
        result = self._result(before, new_system=built, built_system=built, would_change=would_change)
        result.update(cmd=cmd, rc=rc, stdout=out, stderr=err)
        result["new_generation"] = None
        if diff and would_change:
            self._add_diff(result, before.current, built, remote=False)
        return result

    def _check(self, diff):
        """Check mode of switch/boot/test: build, compare, activate nothing."""
        before = self.read_state()
        self._require_nixos(before)
        built, cmd, rc, out, err = self.build()
        after = SystemState(before.current, before.profile, before.generation, before.booted)
        if self.params["action"] in ("switch", "test"):
            after.current = built
        if self.params["action"] in ("switch", "boot"):
            after.profile = built
        changed = self._changed(before, after)
        result = self._result(before, changed=changed, would_change=changed, built_system=built)
        result.update(new_system=built, cmd=cmd, rc=rc, stdout=out, stderr=err)
        if changed:
            result["new_generation"] = None  # unknown until the profile really gets one
        if diff and self._key(before) != built:
            self._add_diff(result, self._key(before), built, remote=False)
        return result

    def _activate(self, diff):
        action = self.params["action"]
        before = self.read_state()
        self._require_nixos(before)
        result = self._result(before)
        cmd = self._rebuild_cmd(action)
        with _sighup_ignored():
            with self._workdir() as workdir:  # a classic test leaves ./result
                rc, out, err = self._run(cmd, cwd=workdir)
            result.update(cmd=cmd, rc=rc, stdout=out, stderr=err)
            try:
                after = self.read_state()
            except RebuildError as e:
                result.update(new_system=None, new_generation=None)
                reason = f"nixos-rebuild {action} exited {rc}, then reading the system state failed: {e}"
                if action in ACTIVATING:
                    self._fail_with_rollback(reason, before, result)
                raise RebuildError(reason, **result) from e
            changed = self._changed(before, after)
            activated = after.current != before.current
            result.update(changed=changed, new_system=self._key(after), new_generation=after.generation)

            if rc != 0:
                reason = f"nixos-rebuild {action} failed (rc {rc}): {error_summary(err, out)}"
                if activated and action in ACTIVATING:
                    self._fail_with_rollback(f"{reason}; the running system changed to {after.current}", before, result)
                if changed:
                    link = self.paths.system_profile if action == "boot" else self.paths.current_system
                    reason += f"; {link} now points to {self._key(after)}"
                raise RebuildError(reason, **result)

            if activated and self.params["confirm"]:
                try:
                    failure = self.confirm()
                except Exception as e:  # whatever goes wrong, an unconfirmed system must be rolled back
                    failure = f"confirmation raised {type(e).__name__}: {e}"
                if failure:
                    self._fail_with_rollback(f"confirmation of {after.current} failed: {failure}", before, result)
                result["confirmed"] = True
        if diff and self._key(before) != self._key(after):
            self._add_diff(result, self._key(before), self._key(after), remote=self._remote)
        return result

    # -- confirmation ----------------------------------------------------

    def confirm(self):
        """None when the host passes every check within confirm_timeout, else why it does not.

        Checks run in order (fresh connection, health commands, health URLs);
        a check that passed once is not repeated, a failing one is retried
        every ``interval`` seconds until the deadline.
        """
        timeout = self.params["confirm_timeout"]
        deadline = self.clock() + timeout
        checks = [self._fresh_connection]
        checks += [self._command_check(argv) for argv in self.params["health_commands"]]
        checks += [self._url_check(url) for url in self.params["health_urls"]]
        while True:
            failure = None
            while checks:
                failure = checks[0](max(deadline - self.clock(), 1.0))
                if failure:
                    break
                checks.pop(0)
            if not checks:
                return None
            now = self.clock()
            if now >= deadline:
                return f"{failure} (still failing after {timeout}s)"
            self.sleep(min(self.interval, deadline - now))

    def _fresh_connection(self, remaining):
        port = self.params["confirm_ssh_port"]
        probe_timeout = min(remaining, _PROBE_TIMEOUT)
        if not self._remote:
            ok, why = ssh_banner("127.0.0.1", port, probe_timeout)
            return None if ok else f"fresh SSH connection to 127.0.0.1:{port}: {why}"
        target = self.params["target_host"]
        # ControlPath=none: a multiplexed master connection would not prove that new logins work.
        cmd = [*self._ssh(max(1, math.ceil(probe_timeout))), "-o", "ControlPath=none", *self.ssh_opts]
        if port != 22:
            cmd += ["-p", str(port)]
        cmd += [target, "true"]
        rc, out, err = self._run(self._bounded(cmd, probe_timeout + 5))
        return None if rc == 0 else f"fresh SSH connection to {target} (rc {rc}): {error_summary(err, out)}"

    def _command_check(self, argv):
        def check(remaining):
            rc, out, err = self._run(self._host_argv(argv, timeout=remaining, connect_timeout=_PROBE_TIMEOUT))
            if rc == 0:
                return None
            return f"health command {shlex.join(argv)} exited {rc}: {error_summary(err, out)}"

        return check

    def _url_check(self, url):
        def check(remaining):
            try:
                response = self.url_opener(
                    url, method="GET", timeout=min(remaining, _PROBE_TIMEOUT), follow_redirects="none"
                )
                try:
                    status = response.getcode()
                finally:
                    response.close()
            except HTTPError as e:  # follow_redirects=none reports a redirect as HTTPError too
                status = e.code
            except Exception as e:
                reason = getattr(e, "reason", None) or e
                return f"health URL {url}: {reason}"
            if status is not None and 200 <= status < 400:
                return None
            return f"health URL {url} answered HTTP {status}"

        return check

    # -- rollback --------------------------------------------------------

    def _fail_with_rollback(self, reason, before, result):
        """Switch back to ``before`` (when rollback=true) and raise RebuildError saying what happened."""
        result["changed"] = True
        if not self.params["rollback"]:
            raise RebuildError(
                f"{reason}; rollback=false, so the system stays at {result.get('new_system') or 'that state'}",
                **result,
            )
        ok, detail, steps, state = self.rollback(before)
        result["rollback"] = steps
        if ok:
            result["rolled_back"] = True
            result["rollback_generation"] = state.generation
            raise RebuildError(f"{reason}; rolled back to {state.describe()}", **result)
        result["rollback_failed"] = True
        raise RebuildError(f"{reason}; rollback to {before.current} failed too: {detail}", **result)

    def _try_state(self):
        try:
            return self.read_state()
        except RebuildError as e:
            self.warnings.append(str(e))
            return None

    def _step(self, steps, cmd):
        rc, out, err = self._run(cmd)
        steps.append(dict(cmd=cmd, rc=rc, stdout=out, stderr=err))
        return rc, out, err

    def rollback(self, before):
        """Make ``before.current`` the running system again.

        Returns ``(ok, reason, steps, state)``. For switch: ``nixos-rebuild
        switch --rollback``, and if that does not bring back the old system,
        ``nix-env --set`` the profile to it and run its switch-to-configuration.
        For test (the profile never moved): the old system's
        ``switch-to-configuration test``. With target_host, switch-to-configuration
        runs in a transient systemd unit (``systemd-run --wait``), so an sshd
        restart that drops the session cannot SIGHUP it half-way.
        """
        old = before.current
        steps = []
        reasons = []
        profile_set = True
        if self.params["action"] == "switch":
            cmd = self._rebuild_cmd("switch", rollback=True, extra=False)
            rc, out, err = self._step(steps, cmd)
            state = self._try_state()
            if state is not None and state.current == old:
                return True, None, steps, state
            reasons.append(self._step_failure("nixos-rebuild switch --rollback", rc, out, err, state))
            nix_env = [self._tool("nix-env"), "--profile", self.paths.system_profile, "--set", old]
            rc, out, err = self._step(steps, self._host_argv(nix_env, privileged=True))
            if rc != 0:
                profile_set = False
                reasons.append(f"nix-env --set (rc {rc}): {error_summary(err, out)}")
            mode = "switch"
        else:
            mode = "test"
        switch = [os.path.join(old, "bin", "switch-to-configuration"), mode]
        if self._remote:
            switch = ["systemd-run", "--wait", "--collect", "--quiet", "--", *switch]
        rc, out, err = self._step(steps, self._host_argv(switch, privileged=True))
        state = self._try_state()
        if rc == 0 and profile_set and state is not None and state.current == old:
            return True, None, steps, state
        if rc != 0 or state is None or state.current != old:
            reasons.append(self._step_failure(f"switch-to-configuration {mode}", rc, out, err, state))
        return False, "; ".join(reasons), steps, state

    @staticmethod
    def _step_failure(name, rc, out, err, state):
        if rc != 0:
            return f"{name} (rc {rc}): {error_summary(err, out)}"
        if state is None:
            return f"{name}: the system state could not be read afterwards"
        return f"{name} exited 0 but the running system is {state.current}"

    # -- diff ------------------------------------------------------------

    def _add_diff(self, result, old, new, remote):
        """Ansible's ``diff`` between two system closures, and in ``closure_diff`` how it was made."""
        run = self._host_argv if remote else list
        nix = "nix" if remote else self.bins["nix"]
        cmd = [nix, "--extra-experimental-features", "nix-command", "store", "diff-closures", old, new]
        rc, out, err = self._run(run(cmd))
        header = dict(before_header=old, after_header=new)
        if rc == 0:
            result["closure_diff"] = dict(method="diff-closures")
            result["diff"] = dict(before=old + "\n", after=new + "\n" + out, **header)
            return
        first = f"nix store diff-closures (rc {rc}): {error_summary(err, out)}"
        closures = []
        for path in (old, new):
            nix_store = "nix-store" if remote else self.bins["nix-store"]
            rc, out, err = self._run(run([nix_store, "-q", "--requisites", path]))
            if rc != 0:
                self.warnings.append(
                    f"no closure diff: {first}; nix-store -q --requisites {path} (rc {rc}): {error_summary(err, out)}"
                )
                result["closure_diff"] = None
                result["diff"] = dict(before=old + "\n", after=new + "\n", **header)
                return
            closures.append({line.strip() for line in out.splitlines() if line.strip()})
        removed = sorted(store_name(path) for path in closures[0] - closures[1])
        added = sorted(store_name(path) for path in closures[1] - closures[0])
        result["closure_diff"] = dict(method="requisites")
        result["diff"] = dict(
            before="".join(name + "\n" for name in removed), after="".join(name + "\n" for name in added), **header
        )
