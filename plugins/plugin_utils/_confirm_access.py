# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller side of a commit-confirm safety net: does a fresh SSH login still work?

Controller-only logic of the ``homelab.nixos.confirm_access`` action plugin, testable without Ansible:

- ``connection_settings(args, lookup, ...)`` decides host, port, user, key, extra ssh arguments and command
  from the task's arguments and the host's connection variables (``lookup(name)`` returns a variable's
  templated value, or None when it is not set).
- ``build_argv(settings)`` is the ssh command line. It always opens a new connection: Ansible's own
  multiplexed ControlMaster connection would keep working through a broken sshd or firewall.
- ``confirm(argv, timeout, delay, runner, clock, sleep)`` runs it until it succeeds or the deadline passes;
  ``run_ssh(argv, timeout)`` is the real runner (subprocess with a hard timeout).

Nothing here reads a private key: its path is handed to ssh with ``-i``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

CONNECT_TIMEOUT = 5
# First on the command line, so they win over the same options in ssh_args (ssh keeps the first value).
SSH_OPTIONS = (
    "-o",
    "BatchMode=yes",
    "-o",
    "ControlMaster=no",
    "-o",
    "ControlPath=none",
    "-o",
    "ConnectTimeout=%d" % CONNECT_TIMEOUT,
    "-o",
    "ServerAliveInterval=5",
)
# An attempt is killed at the deadline, but never before it has had this many seconds.
MIN_ATTEMPT_SECONDS = 10
# ssh exits 255 on its own errors; anything else is the remote command's status.
SSH_ERROR_RC = 255
DEFAULT_PORT = 22
MAX_REASON = 300


class ConfirmAccessError(Exception):
    """The settings are unusable or ssh cannot be run at all; retrying would not help."""


@dataclass(frozen=True)
class Attempt:
    """One ssh run: ``rc`` is None when it was killed after ``timeout`` seconds."""

    rc: int | None
    stdout: str
    stderr: str
    timeout: float


@dataclass(frozen=True)
class Outcome:
    ok: bool
    attempts: int
    elapsed: float
    last: Attempt
    reason: str | None


def _text(data):
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return str(data)


def _split(value, name):
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as e:
            raise ConfirmAccessError("%s cannot be split into arguments: %s (%r)" % (name, e, value)) from e
    if isinstance(value, Sequence) and not isinstance(value, bytes):
        return [str(item) for item in value]
    raise ConfirmAccessError("%s must be a string or a list of strings, got %r" % (name, value))


def _first(*values):
    for value in values:
        if value is not None and value != "":
            return value
    return None


def _port(value, name):
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ConfirmAccessError("%s must be a port number, got %r" % (name, value)) from None
    if isinstance(value, bool) or not 0 < port < 65536:
        raise ConfirmAccessError("%s must be a port number between 1 and 65535, got %r" % (name, value))
    return port


def connection_settings(args, lookup, fallback_user=None, fallback_private_key_file=None):
    """Host, port, user, private_key_file, ssh_args and command for the check.

    ``args`` are the task's arguments (None: not given); ``lookup(name)`` returns the templated value of the
    host variable ``name`` or None. A task argument wins over the host's variables: ``ansible_host`` (or
    ``ansible_ssh_host``, else ``inventory_hostname``), ``ansible_port`` (or ``ansible_ssh_port``, else 22),
    ``ansible_user`` (or ``ansible_ssh_user``, else ``fallback_user``), ``ansible_ssh_private_key_file``
    (or ``ansible_private_key_file``, else ``fallback_private_key_file``), ``ansible_ssh_common_args``
    followed by ``ansible_ssh_extra_args``, both split like a shell would.
    """
    host = _first(args.get("host"), lookup("ansible_host"), lookup("ansible_ssh_host"), lookup("inventory_hostname"))
    if host is None or not str(host).strip():
        raise ConfirmAccessError("no host to connect to: set host, ansible_host or inventory_hostname")
    host = str(host).strip()
    if args.get("port") is not None:
        port = _port(args["port"], "port")
    else:
        name, value = "ansible_port", lookup("ansible_port")
        if value is None or value == "":
            name, value = "ansible_ssh_port", lookup("ansible_ssh_port")
        port = DEFAULT_PORT if value is None or value == "" else _port(value, name)
    user = _first(args.get("user"), lookup("ansible_user"), lookup("ansible_ssh_user"), fallback_user)
    key = _first(
        args.get("private_key_file"),
        lookup("ansible_ssh_private_key_file"),
        lookup("ansible_private_key_file"),
        fallback_private_key_file,
    )
    if args.get("ssh_args") is not None:
        ssh_args = _split(args["ssh_args"], "ssh_args")
    else:
        ssh_args = _split(lookup("ansible_ssh_common_args"), "ansible_ssh_common_args") + _split(
            lookup("ansible_ssh_extra_args"), "ansible_ssh_extra_args"
        )
    command = args.get("command")
    if command is None or not str(command).strip():
        raise ConfirmAccessError("command must not be empty")
    return {
        "host": host,
        "port": port,
        "user": None if user is None else str(user),
        "private_key_file": None if key is None else os.path.expanduser(str(key)),
        "ssh_args": ssh_args,
        "command": str(command),
    }


def build_argv(settings, ssh="ssh"):
    """``ssh <fresh-connection options> -p PORT [-i KEY] [-l USER] <ssh_args> -- HOST COMMAND``.

    ``--`` ends ssh's options, so a host name starting with ``-`` cannot be read as one.
    """
    argv = [ssh, *SSH_OPTIONS, "-p", str(settings["port"])]
    if settings.get("private_key_file"):
        argv += ["-i", settings["private_key_file"]]
    if settings.get("user"):
        argv += ["-l", settings["user"]]
    argv += list(settings.get("ssh_args") or [])
    argv += ["--", settings["host"], settings["command"]]
    return argv


def run_ssh(argv, timeout):
    """Run ``argv`` without standard input, killing it after ``timeout`` seconds."""
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        return Attempt(None, _text(e.stdout), _text(e.stderr), timeout)
    except OSError as e:
        raise ConfirmAccessError("cannot run %s: %s" % (argv[0], e.strerror or e)) from e
    return Attempt(done.returncode, _text(done.stdout), _text(done.stderr), timeout)


def last_line(text):
    """The last non-empty line of ``text``, shortened to MAX_REASON characters ("" if none)."""
    for raw in reversed(text.splitlines()):
        line = raw.strip()
        if line:
            return line if len(line) <= MAX_REASON else line[: MAX_REASON - 3] + "..."
    return ""


def failure_reason(attempt, command):
    """Why ``attempt`` failed, in one line: ssh's last message, or what ran out of time."""
    message = last_line(attempt.stderr)
    if attempt.rc is None:
        reason = "ssh did not finish within %gs" % attempt.timeout
        return reason + " (last message: %s)" % message if message else reason
    if attempt.rc == SSH_ERROR_RC:
        return message or "ssh failed with rc %d and no message" % attempt.rc
    reason = "the command %r exited with rc %d" % (command, attempt.rc)
    return reason + ": %s" % message if message else reason


def confirm(
    argv: list[str],
    timeout: float,
    delay: float,
    *,
    runner: Callable[[list[str], float], Attempt] | None = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> Outcome:
    """Run ``argv`` until it exits 0, at least once, retrying every ``delay`` seconds until ``timeout``.

    No attempt starts after the deadline. Each attempt is killed at the deadline, but not before it has run
    MIN_ATTEMPT_SECONDS, so the whole may take up to that much longer than ``timeout``. ``runner``, ``clock``
    and ``sleep`` default to run_ssh, time.monotonic and time.sleep.
    """
    runner = runner or run_ssh
    clock = clock or time.monotonic
    sleep = sleep or time.sleep
    start = clock()
    deadline = start + timeout
    attempts = 0
    command = argv[-1]
    while True:
        attempts += 1
        attempt = runner(argv, max(deadline - clock(), MIN_ATTEMPT_SECONDS))
        if attempt.rc == 0:
            return Outcome(True, attempts, clock() - start, attempt, None)
        reason = failure_reason(attempt, command)
        if log is not None:
            log("attempt %d failed: %s" % (attempts, reason))
        if clock() + delay >= deadline:
            return Outcome(False, attempts, clock() - start, attempt, reason)
        sleep(delay)
