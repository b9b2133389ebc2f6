# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet's backups as plain data: which host backs up where, and the runner's configuration.

Every host backs up into two tiers: a local restic repository (fast restores) and a
repository on another member of ``backup_targets`` reached over SFTP as a dedicated,
chrooted account ``restic-<host>`` (``remote_target``, ``target_accounts``). The remote
tier is filled with ``restic copy`` from the local one, so each snapshot is taken once.
``runner_config`` turns the role's variables into the JSON the runner
(roles/backup/files/homelab_backup.py) reads, and lists every problem at once.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
from collections.abc import Mapping

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.homelab.nixos.plugins.module_utils._nix import raw

ACCOUNT_PREFIX = "restic-"
CONFIG = "/etc/homelab/backup/config.json"
RETENTION_KEYS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
_SUBSET = re.compile(r"^(?:[1-9][0-9]?(?:\.[0-9]+)?%|100%|[0-9]+/[0-9]+|[0-9]+[KMGT]?)$")
_HOST = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class BackupError(ValueError):
    """Backup settings that cannot work; ``problems`` lists every reason."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def remote_target(host, targets, override=None):
    """The backup target holding ``host``'s remote tier, or None.

    ``override`` (the host's ``backup_remote_target``) wins; ``False`` or ``""``
    turns the remote tier off. Otherwise the first target that is not the host.
    """
    if override is False or override == "":
        return None
    if override is not None:
        return override
    for target in targets or []:
        if target != host:
            return target
    return None


def target_accounts(target, hosts, targets, hostvars):
    """The SFTP accounts ``target`` keeps: ``restic-<client>`` for every client whose remote tier it is.

    Only inventory variables are read (``backup_enabled``, ``backup_remote_target``), so the
    answer is the same whichever hosts the play runs on.
    """
    accounts = []
    for host in hosts:
        variables = hostvars.get(host, {}) if isinstance(hostvars, Mapping) else {}
        # Ansible's own reading of yes/no/true/1, as `| bool` in the role.
        if not boolean(variables.get("backup_enabled", True), strict=False):
            continue
        if remote_target(host, targets, variables.get("backup_remote_target")) == target:
            accounts.append(ACCOUNT_PREFIX + host)
    return accounts


def _paths(value, name, problems):
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        problems.append(f"{name} must be a list of absolute paths, got {value!r}")
        return []
    bad = [p for p in value if not isinstance(p, str) or not p.startswith("/") or "\n" in p]
    if bad:
        problems.append(f"{name} must hold absolute paths, got {', '.join(map(repr, bad))}")
    return [p.rstrip("/") or "/" for p in value if p not in bad]


def _retention(value, name, problems):
    if not isinstance(value, Mapping) or not value:
        problems.append(f"{name} must be a mapping of {'/'.join(RETENTION_KEYS)} to counts, got {value!r}")
        return {}
    unknown = sorted(set(value) - set(RETENTION_KEYS))
    if unknown:
        problems.append(f"{name} has unknown keys {', '.join(unknown)} (known: {', '.join(RETENTION_KEYS)})")
    bad = [k for k in RETENTION_KEYS if k in value and not _count(value[k])]
    if bad:
        problems.append(f"{name}: {', '.join(bad)} must be whole numbers of at least 1")
    return {k: value[k] for k in RETENTION_KEYS if k in value and k not in bad}


def _count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _pattern(value):
    return isinstance(value, str) and value and "\n" not in value


def _inside(path, parents):
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in parents)


def host_paths(base, group_paths, group_names, extra):
    """What a host backs up: the common paths, those of its groups (its roles), then its own, without repeats."""
    chosen = list(base or [])
    for group in group_names or []:
        chosen += list((group_paths or {}).get(group, []))
    chosen += list(extra or [])
    return list(dict.fromkeys(chosen))


def runner_config(settings):
    """The runner's JSON configuration for one host, from the role's desired state.

    ``settings`` keys: host, paths, excludes, tags, state_dir, cache_dir, textfile,
    canary_file, password_file, check_read_data_subset, drill_sample, drill_dir,
    local (dict: path, retention), remote (None or dict: target, address, port, path,
    identity, known_hosts, retention). Raises BackupError listing every problem.
    """
    problems = []
    host = settings.get("host")
    if not isinstance(host, str) or not _HOST.match(host):
        problems.append(f"host must be a lower-case host name, got {host!r}")
    paths = _paths(settings.get("paths"), "paths", problems)
    if not paths and "paths" not in " ".join(problems):
        problems.append("paths is empty: there is nothing to back up")
    excludes = settings.get("excludes") or []
    if isinstance(excludes, str) or not isinstance(excludes, (list, tuple)) or not all(map(_pattern, excludes)):
        problems.append(f"excludes must be a list of restic exclude patterns, got {excludes!r}")
        excludes = []
    for name in ("state_dir", "cache_dir", "textfile", "password_file", "drill_dir"):
        _paths([settings.get(name)], name, problems)
    canary = settings.get("canary_file")
    if canary:
        _paths([canary], "canary_file", problems)
        if isinstance(canary, str) and paths and not _inside(canary, paths):
            problems.append(f"canary_file {canary} is not inside any backed-up path")
    subset = str(settings.get("check_read_data_subset", ""))
    if not _SUBSET.match(subset):
        problems.append(f"check_read_data_subset must be like 10%, 1/5 or 500M (restic's), got {subset!r}")
    sample = settings.get("drill_sample")
    if not (sample == "all" or _count(sample)):
        problems.append(f"drill_sample must be a number of files (at least 1) or 'all', got {sample!r}")
    local = settings.get("local") or {}
    local_path = _paths([local.get("path")], "local repository path", problems)
    repositories = [
        {
            "name": "local",
            "url": local_path[0] if local_path else "",
            "password_file": settings.get("password_file"),
            "retention": _retention(local.get("retention"), "local retention", problems),
        }
    ]
    remote = settings.get("remote")
    if remote:
        repositories.append(_remote_repository(host, remote, settings.get("password_file"), problems))
    if problems:
        raise BackupError(problems)
    return {
        "host": host,
        "restic": settings.get("restic", "restic"),
        "state_dir": settings["state_dir"],
        "cache_dir": settings["cache_dir"],
        "textfile": settings["textfile"],
        "paths": paths,
        "excludes": list(excludes),
        "tags": list(settings.get("tags") or []),
        **({"canary_file": canary} if canary else {}),
        "check_read_data_subset": subset,
        "drill_sample": sample,
        "drill_dir": settings["drill_dir"],
        "repositories": repositories,
    }


def _remote_repository(host, remote, password_file, problems):
    """The remote tier: SFTP into the target's chroot as restic-<host>, copied from the local tier."""
    target = remote.get("target")
    address = remote.get("address")
    port = remote.get("port", 22)
    if not isinstance(target, str) or not target:
        problems.append(f"the remote tier needs a backup target, got {target!r}")
    if target == host:
        problems.append(f"{host} cannot be its own remote backup target")
    if not isinstance(address, str) or not address or any(c.isspace() for c in address):
        problems.append(f"the remote target's address must be a host name or IP, got {address!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        problems.append(f"the remote target's SSH port must be 1-65535, got {port!r}")
    identity = _paths([remote.get("identity")], "remote identity", problems)
    known_hosts = _paths([remote.get("known_hosts")], "remote known_hosts", problems)
    user = ACCOUNT_PREFIX + str(host)
    # sshd ForceCommand internal-sftp ignores the command; `-s sftp` asks for the subsystem.
    command = " ".join(
        [
            "ssh",
            "-i",
            identity[0] if identity else "",
            "-o IdentitiesOnly=yes -o BatchMode=yes",
            "-o UserKnownHostsFile=" + (known_hosts[0] if known_hosts else ""),
            "-o StrictHostKeyChecking=yes -o ConnectTimeout=10 -o ServerAliveInterval=15 -o ServerAliveCountMax=4",
            f"-p {port} {user}@{address} -s sftp",
        ]
    )
    return {
        "name": str(target),
        "url": f"sftp:{user}@{address}:{remote.get('path', '/repo')}",
        "password_file": password_file,
        "sftp_command": command,
        "from": "local",
        "retention": _retention(remote.get("retention"), "remote retention", problems),
    }


def nixos_options(config, units, runner_text, *, known_hosts="", accounts=(), target_root="/srv/restic", after=()):
    """The NixOS realisation: the same runner and units as on Debian, plus a target's accounts.

    ``config`` is ``runner_config``'s result, ``units`` the role's list of
    {name, description, command, schedule, delay}, ``after`` extra units the
    runs wait for (the agenix decryption).
    """
    pkgs = {name: raw("pkgs." + name) for name in ("python3", "restic", "openssh", "coreutils")}
    etc = {
        "homelab/backup/config.json": {"text": json.dumps(config, indent=2) + "\n"},
        "homelab/backup/homelab_backup.py": {"text": _line_ended(runner_text)},
    }
    if known_hosts:
        etc["homelab/backup/known_hosts"] = {"text": _line_ended(known_hosts)}
    services, timers = {}, {}
    for unit in units:
        name = "homelab-" + unit["name"]
        services[name] = {
            "description": unit["description"] + " (homelab.nixos)",
            "wants": ["network-online.target"],
            "after": ["network-online.target", *after],
            "path": [pkgs["python3"], pkgs["restic"], pkgs["openssh"], pkgs["coreutils"]],
            "serviceConfig": {"Type": "oneshot", "Nice": 10, "IOSchedulingClass": "idle"},
            "script": f"exec python3 /etc/homelab/backup/homelab_backup.py --config {CONFIG} {unit['command']}",
        }
        timers[name] = {
            "wantedBy": ["timers.target"],
            "timerConfig": {"OnCalendar": unit["schedule"], "RandomizedDelaySec": unit["delay"], "Persistent": True},
        }
    rules = [f"d {config['state_dir']} 0700 root root -"]
    if config.get("canary_file"):
        rules.append(f"d {config['canary_file'].rsplit('/', 1)[0]} 0700 root root -")
    # The same `homelab-backup` command as on Debian, for admins and the restore playbook.
    command = raw(
        'pkgs.writeShellScriptBin "homelab-backup" '
        "''PATH=${pkgs.restic}/bin:${pkgs.openssh}/bin:$PATH "
        "exec ${pkgs.python3}/bin/python3 /etc/homelab/backup/homelab_backup.py \"$@\"''"
    )
    options = {
        "environment": {"systemPackages": [pkgs["restic"], command], "etc": etc},
        "systemd": {"services": services, "timers": timers, "tmpfiles": {"rules": rules}},
    }
    if accounts:
        _target_accounts_nixos(options, accounts, target_root)
    return options


def _line_ended(text):
    return text if text.endswith("\n") else text + "\n"


def _target_accounts_nixos(options, accounts, target_root):
    """A backup target's chrooted SFTP accounts, declared (sshd's Match block comes from ssh_hardening)."""
    rules = options["systemd"]["tmpfiles"]["rules"]
    rules += [f"d {target_root} 0755 root root -", f"d {target_root}/keys 0755 root root -"]
    users = {}
    for account in accounts:
        home = f"{target_root}/{account[len(ACCOUNT_PREFIX) :]}"
        users[account] = {
            "isSystemUser": True,
            "group": "restic",
            "home": home,
            "createHome": False,
            "shell": "/run/current-system/sw/bin/nologin",
        }
        rules += [f"d {home} 0755 root root -", f"d {home}/repo 0700 {account} restic -"]
    options["users"] = {"users": users, "groups": {"restic": {}}}
