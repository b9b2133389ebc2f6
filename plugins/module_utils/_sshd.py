# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hardened sshd configuration as plain data, for one host.

``sshd_settings`` turns the role's options, what the host's OpenSSH supports
(``ssh -Q``) and the resolved source networks into an ordered mapping of
sshd_config keywords. Algorithms are the modern ones the host's OpenSSH
knows: no NIST-curve key exchange or host keys, no SHA-1, MACs only in
encrypt-then-MAC mode. ``render_sshd_config`` writes Debian's
/etc/ssh/sshd_config; ``nixos_openssh`` the ``services.openssh`` options.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping

from ansible_collections.homelab.nixos.plugins.module_utils._sources import TAILSCALE_CIDR

# Preference order; each list is cut down to what the host's OpenSSH supports.
KEX = (
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group16-sha512",
)
CIPHERS = (
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
)
MACS = ("hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "umac-128-etm@openssh.com")
HOST_KEY_ALGORITHMS = (
    "ssh-ed25519",
    "ssh-ed25519-cert-v01@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-512-cert-v01@openssh.com",
    "rsa-sha2-256",
    "rsa-sha2-256-cert-v01@openssh.com",
)
# Client keys: also FIDO (sk-) ed25519 keys.
PUBKEY_ALGORITHMS = (
    "ssh-ed25519",
    "ssh-ed25519-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-512-cert-v01@openssh.com",
    "rsa-sha2-256",
    "rsa-sha2-256-cert-v01@openssh.com",
)
HOST_KEYS = (
    {"type": "ed25519", "path": "/etc/ssh/ssh_host_ed25519_key"},
    {"type": "rsa", "bits": 4096, "path": "/etc/ssh/ssh_host_rsa_key"},
)
# Host keys the hardened daemon must not offer (NIST curves, DSA).
REMOVED_HOST_KEYS = ("/etc/ssh/ssh_host_ecdsa_key", "/etc/ssh/ssh_host_dsa_key")

DEFAULTS = {
    "port": 22,
    "allow_users": [],
    "allow_sources": [],
    "max_auth_tries": 3,
    "max_sessions": 10,
    "login_grace_time": 30,
    "client_alive_interval": 300,
    "client_alive_count_max": 2,
    "max_startups": "10:30:60",
    "tcp_forwarding": False,
    "agent_forwarding": False,
    "x11_forwarding": False,
    "sftp": True,
    # Accounts that may only use SFTP inside their chroot (backup targets'
    # restic accounts): admitted from the same sources, in one Match block.
    "sftp_only_users": [],
    "sftp_chroot_directory": "%h",
    "sftp_authorized_keys_file": "",
    "extra_settings": {},
}
_USER = re.compile(r"^[a-z_][a-z0-9_.-]*[$]?$")
_KEYWORD = re.compile(r"^[A-Z][A-Za-z0-9]+$")
_MAX_STARTUPS = re.compile(r"^[0-9]+(:[0-9]+:[0-9]+)?$")
# Settings a host may not override through extra_settings: they would undo the hardening.
PROTECTED = frozenset(
    {
        "PermitRootLogin",
        "PasswordAuthentication",
        "KbdInteractiveAuthentication",
        "PermitEmptyPasswords",
        "AuthenticationMethods",
        "KexAlgorithms",
        "Ciphers",
        "MACs",
        "HostKeyAlgorithms",
        "PubkeyAcceptedAlgorithms",
        "HostKey",
        "AllowUsers",
        "Port",
    }
)


class SshdError(ValueError):
    """Options that cannot make a safe sshd configuration; ``problems`` lists every reason."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def supported_algorithms(wanted, available, what, problems):
    """``wanted`` in order, cut down to ``available`` (the host's ``ssh -Q`` list)."""
    if not isinstance(available, (list, tuple)) or not available:
        problems.append(f"the host's OpenSSH reported no {what} (ssh -Q)")
        return []
    chosen = [name for name in wanted if name in available]
    if not chosen:
        problems.append(f"the host's OpenSSH supports none of the modern {what}: {', '.join(wanted)}")
    return chosen


def _int(options, key, low, high, problems):
    value = options[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        problems.append(f"{key} must be an integer from {low} to {high}, got {value!r}")
        return None
    return value


def _bool(options, key, problems):
    value = options[key]
    if not isinstance(value, bool):
        problems.append(f"{key} must be true or false, got {value!r}")
        return False
    return value


def _yes_no(value):
    return "yes" if value else "no"


def _allow_users(users, sources, problems):
    """AllowUsers patterns: each user from each source; the Tailscale range is always among them."""
    if isinstance(users, str) or not isinstance(users, (list, tuple)):
        problems.append(f"allow_users must be a list of user names, got {users!r}")
        return None
    for user in users:
        if not isinstance(user, str) or not _USER.match(user):
            problems.append(f"allow_users holds {user!r}, which is not a user name")
    if isinstance(sources, str) or not isinstance(sources, (list, tuple)):
        problems.append(f"allow_sources must be a list of CIDRs, got {sources!r}")
        return None
    if not sources:
        return list(users) or None
    networks = list(dict.fromkeys([*sources, TAILSCALE_CIDR]))
    return [f"{user}@{network}" for user in (users or ["*"]) for network in networks]


def _sftp_only_block(opts, problems):
    """The Match block that confines the SFTP-only accounts, or None."""
    users = opts["sftp_only_users"]
    if isinstance(users, str) or not isinstance(users, (list, tuple)):
        problems.append(f"sftp_only_users must be a list of user names, got {users!r}")
        return None
    bad = [user for user in users if not isinstance(user, str) or not _USER.match(user)]
    if bad:
        problems.append(f"sftp_only_users holds {', '.join(map(repr, bad))}, which is not a user name")
        return None
    if not users:
        return None
    chroot = opts["sftp_chroot_directory"]
    keys = opts["sftp_authorized_keys_file"]
    for name, value in (("sftp_chroot_directory", chroot), ("sftp_authorized_keys_file", keys)):
        if not isinstance(value, str) or any(c.isspace() for c in value):
            problems.append(f"{name} must be a path without spaces, got {value!r}")
            return None
    if not chroot.startswith(("/", "%h")):
        problems.append(f"sftp_chroot_directory must be absolute or start with %h, got {chroot!r}")
    block = OrderedDict()
    block["ChrootDirectory"] = chroot
    # The session lands in the chroot; restic's sftp backend needs nothing else.
    block["ForceCommand"] = "internal-sftp"
    if keys:
        block["AuthorizedKeysFile"] = keys
    for key in ("AllowTcpForwarding", "AllowAgentForwarding", "AllowStreamLocalForwarding", "X11Forwarding"):
        block[key] = "no"
    block["PermitTTY"] = "no"
    return {"criteria": "User " + ",".join(users), "settings": block}


def sshd_settings(options, algorithms=None):
    """Ordered sshd_config keywords for ``options`` (DEFAULTS' keys) and ``algorithms``
    (the host's ``ssh -Q`` lists: kex, cipher, mac, key-sig)."""
    problems = []
    if not isinstance(options, Mapping):
        raise SshdError([f"options must be a mapping, got {type(options).__name__}"])
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        problems.append(f"unknown options: {', '.join(unknown)}")
    opts = dict(DEFAULTS, **{k: v for k, v in options.items() if k in DEFAULTS})
    if algorithms is None:
        # Validation before any host is reached: assume a current OpenSSH.
        every = [*KEX, *CIPHERS, *MACS, *HOST_KEY_ALGORITHMS, *PUBKEY_ALGORITHMS]
        algorithms = {"kex": every, "cipher": every, "mac": every, "key-sig": every}
    algorithms = algorithms if isinstance(algorithms, Mapping) else {}
    settings = OrderedDict()
    settings["Port"] = _int(opts, "port", 1, 65535, problems)
    settings["HostKey"] = [key["path"] for key in HOST_KEYS]
    settings["KexAlgorithms"] = supported_algorithms(KEX, algorithms.get("kex"), "key exchange algorithms", problems)
    settings["Ciphers"] = supported_algorithms(CIPHERS, algorithms.get("cipher"), "ciphers", problems)
    settings["MACs"] = supported_algorithms(MACS, algorithms.get("mac"), "MACs", problems)
    settings["HostKeyAlgorithms"] = supported_algorithms(
        HOST_KEY_ALGORITHMS, algorithms.get("key-sig"), "host key algorithms", problems
    )
    settings["PubkeyAcceptedAlgorithms"] = supported_algorithms(
        PUBKEY_ALGORITHMS, algorithms.get("key-sig"), "public key algorithms", problems
    )
    settings["PermitRootLogin"] = "no"
    settings["PasswordAuthentication"] = "no"
    settings["KbdInteractiveAuthentication"] = "no"
    settings["PermitEmptyPasswords"] = "no"
    settings["PubkeyAuthentication"] = "yes"
    settings["AuthenticationMethods"] = "publickey"
    settings["MaxAuthTries"] = _int(opts, "max_auth_tries", 1, 10, problems)
    settings["MaxSessions"] = _int(opts, "max_sessions", 1, 100, problems)
    settings["LoginGraceTime"] = _int(opts, "login_grace_time", 5, 600, problems)
    settings["ClientAliveInterval"] = _int(opts, "client_alive_interval", 0, 3600, problems)
    settings["ClientAliveCountMax"] = _int(opts, "client_alive_count_max", 0, 100, problems)
    max_startups = str(opts["max_startups"])
    if not _MAX_STARTUPS.match(max_startups):
        problems.append(f"max_startups must look like 10:30:60 (start:rate:full), got {opts['max_startups']!r}")
    settings["MaxStartups"] = max_startups
    tcp = _bool(opts, "tcp_forwarding", problems)
    settings["AllowTcpForwarding"] = _yes_no(tcp)
    settings["AllowAgentForwarding"] = _yes_no(_bool(opts, "agent_forwarding", problems))
    settings["AllowStreamLocalForwarding"] = _yes_no(tcp)
    settings["X11Forwarding"] = _yes_no(_bool(opts, "x11_forwarding", problems))
    settings["PermitTunnel"] = "no"
    settings["GatewayPorts"] = "no"
    settings["PermitUserEnvironment"] = "no"
    settings["UseDNS"] = "no"
    settings["LogLevel"] = "VERBOSE"
    sftp_only = _sftp_only_block(opts, problems)
    allow_users = opts["allow_users"]
    if sftp_only and isinstance(allow_users, (list, tuple)) and allow_users:
        allow_users = [*allow_users, *opts["sftp_only_users"]]
    allow = _allow_users(allow_users, opts["allow_sources"], problems)
    if allow:
        settings["AllowUsers"] = allow
    extra = opts["extra_settings"]
    if not isinstance(extra, Mapping):
        problems.append(f"extra_settings must be a mapping of sshd_config keywords, got {extra!r}")
        extra = {}
    for key, value in extra.items():
        if not isinstance(key, str) or not _KEYWORD.match(key):
            problems.append(f"extra_settings: {key!r} is not an sshd_config keyword")
        elif key in PROTECTED:
            problems.append(f"extra_settings may not change {key}: it is part of the hardening")
        elif isinstance(value, bool):
            settings[key] = _yes_no(value)
        elif isinstance(value, (int, str)) and str(value).strip() and "\n" not in str(value):
            settings[key] = str(value)
        else:
            problems.append(f"extra_settings.{key} must be a one-line string, number or boolean, got {value!r}")
    if sftp_only:
        # Last: a Match block runs to the end of the file.
        settings["Match"] = [sftp_only]
    if problems:
        raise SshdError(problems)
    return settings


def _line_value(key, value):
    if isinstance(value, list):
        return (" " if key == "AllowUsers" else ",").join(str(v) for v in value)
    return str(value)


def render_sshd_config(settings, header="", sftp_server="/usr/lib/openssh/sftp-server", use_pam=True):
    """The whole /etc/ssh/sshd_config (Debian) for ``settings``."""
    lines = [header.rstrip("\n")] if header else []
    for key, value in settings.items():
        if key == "HostKey":
            lines += [f"HostKey {path}" for path in value]
        elif key != "Match":
            lines.append(f"{key} {_line_value(key, value)}")
    lines.append(f"UsePAM {_yes_no(use_pam)}")
    lines.append("PrintMotd no")
    lines.append("AcceptEnv LANG LC_*")
    if sftp_server:
        lines.append(f"Subsystem sftp {sftp_server}")
    lines += match_lines(settings.get("Match", []))
    return "\n".join(lines) + "\n"


def match_lines(blocks):
    """sshd_config lines of the Match blocks (each keyword indented under its Match)."""
    lines = []
    for block in blocks:
        lines.append(f"Match {block['criteria']}")
        lines += [f"    {key} {value}" for key, value in block["settings"].items()]
    return lines


# nixpkgs' settings format only accepts lists for these keywords (sshd.nix).
_NIXOS_LISTS = {"Ciphers", "KexAlgorithms", "Macs", "AllowUsers"}


def _nixos_value(name, value):
    if isinstance(value, list):
        return value if name in _NIXOS_LISTS else ",".join(value)
    if value in ("yes", "no") and name in _NIXOS_BOOLS:
        return value == "yes"
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def nixos_openssh(settings):
    """``services.openssh`` options for ``settings`` (nixpkgs' RFC 42 ``settings``)."""
    nix_settings = {}
    for key, value in settings.items():
        if key in ("Port", "HostKey", "Match"):
            continue
        name = "Macs" if key == "MACs" else "UseDns" if key == "UseDNS" else key
        nix_settings[name] = _nixos_value(name, value)
    return {
        "enable": True,
        "ports": [settings["Port"]],
        # The firewall role opens the port, to the allowed sources only.
        "openFirewall": False,
        "hostKeys": [dict(key) for key in HOST_KEYS],
        "settings": nix_settings,
        # nixpkgs' settings cannot express Match blocks; extraConfig is appended last.
        **({"extraConfig": "\n".join(match_lines(settings["Match"])) + "\n"} if settings.get("Match") else {}),
    }


# Keywords nixpkgs types as booleans (the rest stay yes/no strings).
_NIXOS_BOOLS = {
    "PasswordAuthentication",
    "KbdInteractiveAuthentication",
    "X11Forwarding",
    "UseDns",
    "PermitEmptyPasswords",
    "PubkeyAuthentication",
    "AllowAgentForwarding",
    "AllowTcpForwarding",
    "AllowStreamLocalForwarding",
    "PermitTunnel",
    "PermitUserEnvironment",
}
