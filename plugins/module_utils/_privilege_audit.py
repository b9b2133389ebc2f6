# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of the privilege_audit module: who can become root on a host, and with which keys accounts log in.

The parsers are pure functions over file texts (``/etc/passwd``, ``/etc/shadow``, ``/etc/group``, sudoers,
``authorized_keys``). :func:`read_host` is the only part that touches the file system: it reads those files
below a ``root`` directory that stands for ``/`` (symlinks, such as NixOS's ``/etc/sudoers`` into
``/etc/static``, are followed inside it). :class:`Audit` turns the texts into the report and the plan of
``enforce``; nothing here runs a command.

Nothing secret leaves this module: password fields are reduced to empty / locked / set, keys to their
type, SHA-256 fingerprint, comment and options, and a line that does not parse is reported by its number
and a reason, never by its text (an ``authorized_keys`` symlink to ``/etc/shadow`` must not leak hashes).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import hashlib
import os
import re
import stat
import struct

from ansible_collections.homelab.nixos.plugins.module_utils._nixos_facts import resolve

PASSWD = "/etc/passwd"
SHADOW = "/etc/shadow"
GROUP = "/etc/group"
SUDOERS = "/etc/sudoers"
SUDOERS_D = "/etc/sudoers.d"
NIXOS_KEYS_DIR = "/etc/ssh/authorized_keys.d"
NIXOS_MARKER = "/etc/NIXOS"
HOME_KEY_FILES = (".ssh/authorized_keys", ".ssh/authorized_keys2")
DEFAULT_ADMIN_GROUPS = ("sudo", "wheel", "admin")
ENV = {"LC_ALL": "C"}
MAX_FILE_SIZE = 4 * 1024 * 1024
# Shells (by base name) that do not give a login: the account may exist, nobody logs in with it.
NO_LOGIN_SHELLS = frozenset(("nologin", "false", "true", "sync", "shutdown", "halt"))
# A user or group name as the argument check accepts it (shadow-utils rules, plus a Samba machine's "$").
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?\Z")

KEY_TYPES = frozenset(
    (
        "ssh-ed25519",
        "ssh-rsa",
        "ssh-dss",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ecdsa-sha2-nistp256@openssh.com",
        "sk-ssh-ed25519@openssh.com",
        "ssh-ed25519-cert-v01@openssh.com",
        "ssh-rsa-cert-v01@openssh.com",
        "ssh-dss-cert-v01@openssh.com",
        "ecdsa-sha2-nistp256-cert-v01@openssh.com",
        "ecdsa-sha2-nistp384-cert-v01@openssh.com",
        "ecdsa-sha2-nistp521-cert-v01@openssh.com",
        "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
        "sk-ssh-ed25519-cert-v01@openssh.com",
    )
)

# sudoers tags before a command (``NOPASSWD: ALL``) and options (``TIMEOUT=5m``).
SUDO_TAGS = frozenset(
    (
        "EXEC",
        "NOEXEC",
        "FOLLOW",
        "NOFOLLOW",
        "LOG_INPUT",
        "NOLOG_INPUT",
        "LOG_OUTPUT",
        "NOLOG_OUTPUT",
        "MAIL",
        "NOMAIL",
        "INTERCEPT",
        "NOINTERCEPT",
        "PASSWD",
        "NOPASSWD",
        "SETENV",
        "NOSETENV",
    )
)
_SUDO_TAG = re.compile(r"([A-Z_]+)\s*:\s*")
_SUDO_OPTION = re.compile(
    r"(?:ROLE|TYPE|TIMEOUT|CWD|CHROOT|NOTBEFORE|NOTAFTER|APPARMOR_PROFILE|PRIVS|LIMITPRIVS)\s*=\s*"
    r'(?:"(?:[^"\\]|\\.)*"|\S+)\s*'
)
_SUDO_ALIAS = re.compile(r"[A-Z][A-Z0-9_]*\Z")
_SUDO_ALIAS_DEFINITION = re.compile(r"(?:User|Runas|Host|Cmnd|Cmd)_Alias\s")
_SUDO_DEFAULTS = re.compile(r"Defaults(?:[:@>!]|\s|\Z)")
_SUDO_INCLUDE = re.compile(r"([#@]include(?:dir)?)\s+(\S.*)\Z")
# " : host = ..." starts the next host specification of a rule.
_SUDO_HOST_SEPARATOR = re.compile(r"\s:\s*(?=[^\s=:(),]+(?:\s*,\s*[^\s=:(),]+)*\s*=)")
_SUDO_HOST_PREFIX = re.compile(r"[^=]*=\s*")


class AuditError(Exception):
    """The audit cannot run, or refuses to enforce; the message says why."""


class Unreadable(Exception):
    """A file exists but cannot be read; the message is the reason."""


# --- reading the host ---------------------------------------------------------------------------------------


def host_path(root, path):
    """Where the logical absolute ``path`` (as seen inside ``root``) lives on this machine."""
    return os.path.join(root, path.lstrip("/"))


def read_file(root, path, limit=MAX_FILE_SIZE):
    """Text of the regular file at logical ``path``, symlinks followed inside ``root``; None when it is absent.

    Raises Unreadable for a file that cannot be opened, is not a regular file (a FIFO is opened without
    blocking and refused) or is larger than ``limit`` bytes.
    """
    target = resolve(root, path)
    if target is None:
        raise Unreadable("too many levels of symbolic links")
    try:
        fd = os.open(host_path(root, target), os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise Unreadable(e.strerror or str(e)) from e
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise Unreadable("not a regular file")
        with os.fdopen(fd, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise Unreadable(e.strerror or str(e)) from e
    if len(data) > limit:
        raise Unreadable("larger than %d bytes" % limit)
    return data.decode("utf-8", errors="replace")


def sudoers_d_files(root):
    """Logical paths of the files that ``@includedir /etc/sudoers.d`` reads, in sudo's order.

    sudo skips names that end in ``~`` or contain a ``.`` (editor backups, package manager leftovers), and
    anything that is not a regular file. Raises Unreadable when the directory cannot be listed.
    """
    target = resolve(root, SUDOERS_D)
    if target is None:
        raise Unreadable("too many levels of symbolic links")
    try:
        names = os.listdir(host_path(root, target))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as e:
        raise Unreadable(e.strerror or str(e)) from e
    paths = []
    for name in sorted(names):
        if name.endswith("~") or "." in name:
            continue
        try:
            if not stat.S_ISREG(os.stat(host_path(root, target + "/" + name)).st_mode):
                continue
        except OSError:
            pass  # read_file reports it
        paths.append(SUDOERS_D + "/" + name)
    return paths


def key_files(account):
    """Logical paths of the authorized keys files of ``account`` (a dict from :func:`parse_passwd`)."""
    name = account["name"]
    if "/" in name or name in (".", ".."):
        return []
    paths = []
    home = account["home"]
    if home.startswith("/"):
        home = os.path.normpath(home)
        paths.extend(os.path.join(home, relative) for relative in HOME_KEY_FILES)
    paths.append(NIXOS_KEYS_DIR + "/" + name)
    return paths


class HostFiles:
    """The texts the audit reads, by logical path. ``shadow`` is None when ``shadow_problem`` says why;
    ``sudoers`` is a list of ``(path, text)``; ``keys`` maps a user to a list of ``(path, text)``;
    ``unreadable`` lists ``{path, reason}`` of files that exist but could not be read."""

    def __init__(self, passwd, group, *, shadow=None, shadow_problem=None, sudoers=(), keys=None, is_nixos=False):
        self.passwd = passwd
        self.group = group
        self.shadow = shadow
        self.shadow_problem = shadow_problem
        self.sudoers = list(sudoers)
        self.keys = dict(keys or {})
        self.unreadable = []
        self.is_nixos = is_nixos


def _required(root, path):
    try:
        text = read_file(root, path)
    except Unreadable as e:
        raise AuditError("cannot read %s: %s" % (host_path(root, path), e)) from e
    if text is None:
        raise AuditError("cannot read %s: it does not exist" % host_path(root, path))
    return text


def read_host(root):
    """Read every file the audit needs below ``root``; raises AuditError when passwd or group is missing."""
    files = HostFiles(_required(root, PASSWD), _required(root, GROUP))
    files.is_nixos = os.path.lexists(host_path(root, NIXOS_MARKER))
    try:
        files.shadow = read_file(root, SHADOW)
        if files.shadow is None:
            files.shadow_problem = "it does not exist"
    except Unreadable as e:
        files.shadow_problem = str(e)

    def optional(path):
        try:
            return read_file(root, path)
        except Unreadable as e:
            files.unreadable.append(dict(path=path, reason=str(e)))
            return None

    sudoers = [SUDOERS]
    try:
        sudoers.extend(sudoers_d_files(root))
    except Unreadable as e:
        files.unreadable.append(dict(path=SUDOERS_D, reason=str(e)))
    for path in sudoers:
        text = optional(path)
        if text is not None:
            files.sudoers.append((path, text))

    accounts = parse_passwd(files.passwd)[0]
    seen = set()
    for account in accounts:
        if account["name"] in seen:
            continue
        seen.add(account["name"])
        for path in key_files(account):
            text = optional(path)
            if text is not None:
                files.keys.setdefault(account["name"], []).append((path, text))
    return files


# --- passwd, shadow, group ----------------------------------------------------------------------------------


def _entries(text):
    """``(number, line)`` of the lines of an /etc database that are not empty, comments or NIS ``+``/``-``."""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped[0] in "+-":
            continue
        yield number, line


def parse_passwd(text):
    """``(accounts, malformed)``: accounts (dicts name, uid, gid, home, shell, no_password, line) in file
    order; malformed are the numbers of lines without 7 fields, a name and numeric IDs.

    ``no_password`` is True when the password field itself is empty (no ``x``): the account then has no
    password whatever the shadow file says. The field is not kept otherwise.
    """
    accounts, malformed = [], []
    for number, line in _entries(text):
        fields = line.split(":")
        if len(fields) != 7 or not fields[0] or not fields[2].isdigit() or not fields[3].isdigit():
            malformed.append(number)
            continue
        accounts.append(
            dict(
                name=fields[0],
                uid=int(fields[2]),
                gid=int(fields[3]),
                home=fields[5],
                shell=fields[6].strip(),
                no_password=fields[1] == "",
                line=number,
            )
        )
    return accounts, malformed


EMPTY = "empty"
LOCKED = "locked"
SET = "set"


def password_state(field):
    """``empty``, ``locked`` (``!``, ``*``, ``!!``, ``!<hash>``) or ``set`` for a shadow password field."""
    if field == "":
        return EMPTY
    if field.startswith(("!", "*")):
        return LOCKED
    return SET


def parse_shadow(text):
    """``(states, malformed)``: the :func:`password_state` of each account (first entry wins), and the numbers
    of lines without a name and a password field."""
    states, malformed = {}, []
    for number, line in _entries(text):
        fields = line.split(":")
        if len(fields) < 2 or not fields[0]:
            malformed.append(number)
            continue
        states.setdefault(fields[0], password_state(fields[1]))
    return states, malformed


def parse_group(text):
    """``(groups, malformed)``: ``{name: {gid, members}}`` (first entry wins; members as listed, without
    empty names) and the numbers of lines without 4 fields, a name and a numeric GID."""
    groups, malformed = {}, []
    for number, line in _entries(text):
        fields = line.split(":")
        if len(fields) != 4 or not fields[0] or not fields[2].isdigit():
            malformed.append(number)
            continue
        members = [member.strip() for member in fields[3].split(",") if member.strip()]
        groups.setdefault(fields[0], dict(gid=int(fields[2]), members=members))
    return groups, malformed


def is_login_shell(shell):
    """Whether ``shell`` lets someone log in; an empty field means ``/bin/sh``."""
    return os.path.basename(shell.rstrip("/")) not in NO_LOGIN_SHELLS if shell else True


# --- sudoers ------------------------------------------------------------------------------------------------


class _Unparsed(Exception):
    """A sudoers line this parser does not understand; the message says what it met."""


def _logical_lines(text):
    """``(first line number, text)`` of each line, with backslash continuations joined."""
    start, parts = None, []
    for number, line in enumerate(text.splitlines(), 1):
        if start is None:
            start = number
        if line.endswith("\\"):
            parts.append(line[:-1])
            continue
        parts.append(line)
        yield start, " ".join(parts)
        start, parts = None, []
    if parts:
        yield start, " ".join(parts)


def _strip_comment(line):
    """``line`` without its comment. ``#`` starts a comment unless it starts an include directive or is
    followed by a digit (``#1000`` is a UID, ``%#1000`` a GID)."""
    line = line.strip()
    if _SUDO_INCLUDE.match(line):
        return line
    match = re.search(r"#(?!\d)", line)
    if match:
        line = line[: match.start()]
    return line.strip()


def _split_top_level(text, separator=","):
    """``text`` split at ``separator`` outside parentheses and double quotes."""
    parts, depth, quoted, current = [], 0, False, []
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth = max(depth - 1, 0)
        elif not quoted and depth == 0 and char == separator:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _runas_is_root(text):
    """Whether a Runas specification (the text inside the parentheses) lets the command run as root."""
    users, _colon, _groups = text.partition(":")
    names = [name.strip() for name in users.split(",") if name.strip()]
    for name in names:
        if name.startswith("!"):
            raise _Unparsed("uses a negated Runas user")
        if name != "ALL" and _SUDO_ALIAS.match(name):
            raise _Unparsed("uses a Runas_Alias")
    # An empty user list (``()``, ``(:group)``) runs the command as the invoking user.
    return any(name in ("ALL", "root", "#0") for name in names)


def _grants_all(spec):
    """``(grants, nopasswd)`` for one host specification's command list: whether a command is ``ALL`` run as
    root, and whether that needs no password. Runas and tags carry over to the following commands."""
    runas_root, nopasswd = True, False  # no Runas list: root
    grants, grants_nopasswd = False, False
    for item in _split_top_level(spec):
        rest = item.strip()
        if rest.startswith("("):
            end = rest.find(")")
            if end < 0:
                raise _Unparsed("has an unterminated Runas list")
            runas_root = _runas_is_root(rest[1:end])
            rest = rest[end + 1 :].strip()
        while True:
            match = _SUDO_OPTION.match(rest)
            if match:
                rest = rest[match.end() :]
                continue
            match = _SUDO_TAG.match(rest)
            if not match:
                break
            if match.group(1) not in SUDO_TAGS:
                raise _Unparsed("uses an unknown tag")
            if match.group(1) in ("PASSWD", "NOPASSWD"):
                nopasswd = match.group(1) == "NOPASSWD"
            rest = rest[match.end() :]
        command = rest.strip()
        if not command:
            raise _Unparsed("has an empty command")
        if command == "ALL":
            if runas_root:
                grants = True
                grants_nopasswd = grants_nopasswd or nopasswd
        elif _SUDO_ALIAS.match(command):
            raise _Unparsed("uses a Cmnd_Alias")
    return grants, grants_nopasswd


def _rule_users(left):
    """The users of a rule's left side (``alice, %wheel ALL``); raises _Unparsed."""
    words = re.sub(r"\s*,\s*", ",", left.strip()).split()
    if len(words) != 2:
        raise _Unparsed("has no user list and host list before =")
    users = words[0].split(",")
    for user in users:
        if not user:
            raise _Unparsed("has an empty user")
        if user == "ALL":
            continue
        if user.startswith("!"):
            raise _Unparsed("uses a negated user")
        if user.startswith(("%:", "+", '"')):
            raise _Unparsed("uses a non-Unix group, netgroup or quoted name")
        if _SUDO_ALIAS.match(user):
            raise _Unparsed("uses a User_Alias")
    return users


def _parse_rule(line):
    """``(users, grants, nopasswd)`` of a user specification; raises _Unparsed."""
    left, equals, right = line.partition("=")
    if not equals:
        raise _Unparsed("not a user specification")
    users = _rule_users(left)
    grants, nopasswd = False, False
    for index, spec in enumerate(_SUDO_HOST_SEPARATOR.split(right)):
        commands = _SUDO_HOST_PREFIX.sub("", spec, count=1) if index else spec
        spec_grants, spec_nopasswd = _grants_all(commands)
        grants = grants or spec_grants
        nopasswd = nopasswd or spec_nopasswd
    return users, grants, nopasswd


def parse_sudoers(text, source_file):
    """What one sudoers file grants: a dict of

    - ``grants``: ``{who, source_file, line, rule, nopasswd}`` for each user, ``%group``, ``#uid`` or ``ALL``
      granted the command ``ALL`` as root (no Runas list, or one naming ``ALL``, ``root`` or ``#0``);
    - ``unparsed``: ``{source_file, line, rule, reason}`` of alias definitions and of lines this simple parser
      does not understand (aliases, negations, netgroups, ...): check those by hand;
    - ``includes``: ``{source_file, line, directive, path}`` of ``#include``/``@include``/``...dir`` lines,
      the path made absolute against the directory of ``source_file``.

    Comments and ``Defaults`` lines are ignored. ``line`` is the number of the first physical line.
    """
    grants, unparsed, includes = [], [], []
    for number, raw in _logical_lines(text):
        line = _strip_comment(raw)
        if not line or _SUDO_DEFAULTS.match(line):
            continue
        rule = " ".join(line.split())
        include = _SUDO_INCLUDE.match(line)
        if include:
            path = include.group(2).strip()
            if len(path) > 1 and path[0] == path[-1] == '"':
                path = path[1:-1]
            path = os.path.normpath(os.path.join(os.path.dirname(source_file), path))
            includes.append(dict(source_file=source_file, line=number, directive=include.group(1), path=path))
            continue
        if _SUDO_ALIAS_DEFINITION.match(line):
            unparsed.append(dict(source_file=source_file, line=number, rule=rule, reason="an alias definition"))
            continue
        try:
            users, granted, nopasswd = _parse_rule(line)
        except _Unparsed as e:
            unparsed.append(dict(source_file=source_file, line=number, rule=rule, reason=str(e)))
            continue
        if granted:
            for who in users:
                grants.append(dict(who=who, source_file=source_file, line=number, rule=rule, nopasswd=nopasswd))
    return dict(grants=grants, unparsed=unparsed, includes=includes)


# --- authorized_keys ----------------------------------------------------------------------------------------


class KeyProblem(Exception):
    """A public key that does not parse; the message is the reason (never the key text)."""


def fingerprint(blob):
    """The SHA-256 fingerprint of a decoded key blob as OpenSSH prints it (``SHA256:`` + unpadded base64)."""
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def _ssh_strings(blob):
    """The length-prefixed strings a key blob is made of; raises KeyProblem when they do not fill it."""
    strings, offset = [], 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            raise KeyProblem("the key data is truncated")
        (length,) = struct.unpack(">I", blob[offset : offset + 4])
        offset += 4
        if offset + length > len(blob):
            raise KeyProblem("the key data is truncated")
        strings.append(blob[offset : offset + length])
        offset += length
    return strings


def parse_public_key(text):
    """``(type, blob, comment)`` of ``<type> <base64> [comment]``; raises KeyProblem.

    The blob must be valid base64 and start with the same type name; a plain key (not a certificate) must be
    a sequence of length-prefixed fields, an ed25519 key 32 bytes.
    """
    parts = text.split(None, 2)
    if not parts:
        raise KeyProblem("no key")
    if parts[0] not in KEY_TYPES:
        raise KeyProblem("no known key type")
    if len(parts) < 2:
        raise KeyProblem("no key data after the key type")
    key_type, data = parts[0], parts[1]
    try:
        blob = base64.b64decode(data.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as e:
        raise KeyProblem("the key data is not valid base64") from e
    if len(blob) < 4:
        raise KeyProblem("the key data is truncated")
    (length,) = struct.unpack(">I", blob[:4])
    if blob[4 : 4 + length] != key_type.encode("ascii"):
        raise KeyProblem("the key data is not a %s key" % key_type)
    if "-cert-" not in key_type:
        fields = _ssh_strings(blob)
        if key_type in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com") and (len(fields) < 2 or len(fields[1]) != 32):
            raise KeyProblem("the key data is not a %s key" % key_type)
        if len(fields) < 2:
            raise KeyProblem("the key data is truncated")
    comment = parts[2].strip() if len(parts) > 2 else ""
    return key_type, blob, comment


def _options_end(line):
    """Index where the options before a key end (the first blank outside double quotes); None when a quote
    is not closed."""
    quoted, index = False, 0
    while index < len(line):
        char = line[index]
        if quoted and char == "\\" and line[index + 1 : index + 2] == '"':
            index += 2
            continue
        if char == '"':
            quoted = not quoted
        elif not quoted and char in " \t":
            return index
        index += 1
    return None if quoted else index


def parse_authorized_keys(text):
    """``(entries, invalid)`` of one authorized keys file.

    Entries are ``{type, fingerprint, comment, options, line}``, ``options`` the list of options before the
    key as written (``from="10.0.0.0/8"``, ``no-pty``, ``command="..."``); invalid are ``{line, reason}``.
    Empty lines and ``#`` comments are skipped, as sshd does.
    """
    entries, invalid = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        options = []
        rest = line
        if line.split(None, 1)[0] not in KEY_TYPES:
            end = _options_end(line)
            if end is None:
                invalid.append(dict(line=number, reason="a double quote in the options is not closed"))
                continue
            options = [option for option in _split_top_level(line[:end]) if option]
            rest = line[end:].strip()
            if not rest:
                invalid.append(dict(line=number, reason="no known key type"))
                continue
        try:
            key_type, blob, comment = parse_public_key(rest)
        except KeyProblem as e:
            invalid.append(dict(line=number, reason=str(e)))
            continue
        entries.append(
            dict(type=key_type, fingerprint=fingerprint(blob), comment=comment, options=options, line=number)
        )
    return entries, invalid


# --- the audit ----------------------------------------------------------------------------------------------


def _plural(count, word):
    return "%d %s%s" % (count, word, "" if count == 1 else "s")


def _and(words):
    words = list(words)
    if len(words) < 2:
        return "".join(words)
    return "%s and %s" % (", ".join(words[:-1]), words[-1])


class Audit:
    """The audit of one host from its :class:`HostFiles`.

    ``admin_groups`` are the groups that grant root through sudo; only those in ``/etc/group`` count, the first
    of them is the primary admin group (where ``missing_admins`` looks). A group's members are the users it
    lists plus the accounts whose primary GID it is; ``enforce`` can only remove the listed ones.
    """

    def __init__(self, files, admins=(), admin_groups=DEFAULT_ADMIN_GROUPS):
        self.files = files
        self.admins = sorted(set(admins))
        passwd, self.passwd_malformed = parse_passwd(files.passwd)
        self.accounts = {}
        self.duplicate_accounts = set()
        for account in passwd:
            if account["name"] in self.accounts:
                self.duplicate_accounts.add(account["name"])
            else:
                self.accounts[account["name"]] = account
        self.uid0 = sorted({account["name"] for account in passwd if account["uid"] == 0})
        self.groups, self.group_malformed = parse_group(files.group)
        self.shadow_readable = files.shadow is not None
        self.shadow, self.shadow_malformed = parse_shadow(files.shadow) if self.shadow_readable else ({}, [])
        self.requested_admin_groups = list(admin_groups)
        self.admin_groups = []
        for group in admin_groups:
            if group in self.groups and group not in self.admin_groups:
                self.admin_groups.append(group)
        self.grants, self.unparsed, self.includes = [], [], []
        for path, text in files.sudoers:
            parsed = parse_sudoers(text, path)
            self.grants.extend(parsed["grants"])
            self.unparsed.extend(parsed["unparsed"])
            self.includes.extend(parsed["includes"])
        self.keys, self.invalid_keys = {}, []
        for user, texts in sorted(files.keys.items()):
            for path, text in texts:
                entries, invalid = parse_authorized_keys(text)
                for entry in entries:
                    entry["file"] = path
                    self.keys.setdefault(user, []).append(entry)
                for problem in invalid:
                    self.invalid_keys.append(dict(user=user, file=path, line=problem["line"], reason=problem["reason"]))

    # --- membership --------------------------------------------------------------------------------------

    def listed_members(self, group, removals=()):
        """Users ``group`` lists in /etc/group, without those in ``removals`` (``{user, group}`` dicts)."""
        removed = {removal["user"] for removal in removals if removal["group"] == group}
        return sorted(set(self.groups[group]["members"]) - removed) if group in self.groups else []

    def primary_members(self, group):
        """Accounts whose primary GID is the GID of ``group``."""
        if group not in self.groups:
            return []
        gid = self.groups[group]["gid"]
        return sorted(name for name, account in self.accounts.items() if account["gid"] == gid)

    def members(self, group, removals=()):
        return sorted(set(self.listed_members(group, removals)) | set(self.primary_members(group)))

    def admin_group_members(self, removals=()):
        return {group: self.members(group, removals) for group in self.admin_groups}

    def grant_groups(self, who):
        """The groups a ``%group`` or ``%#gid`` grant names (those in /etc/group); [] for a user grant."""
        if who.startswith("%#"):
            gid = int(who[2:]) if who[2:].isdigit() else None
            return sorted(name for name, group in self.groups.items() if group["gid"] == gid)
        if who.startswith("%"):
            return [who[1:]] if who[1:] in self.groups else []
        return []

    def grant_users(self, who, removals=()):
        """The users a sudoers grant names: a user, ``#uid``, ``%group``, ``%#gid``; ``ALL`` is not expanded."""
        if who == "ALL":
            return []
        if who.startswith("%"):
            return sorted({user for group in self.grant_groups(who) for user in self.members(group, removals)})
        if who.startswith("#"):
            uid = int(who[1:]) if who[1:].isdigit() else None
            return sorted(name for name, account in self.accounts.items() if account["uid"] == uid)
        return [who]

    def grant_everyone(self):
        return [grant for grant in self.grants if grant["who"] == "ALL"]

    # --- findings ----------------------------------------------------------------------------------------

    def empty_passwords(self):
        names = {name for name, account in self.accounts.items() if account["no_password"]}
        names.update(name for name, state in self.shadow.items() if state == EMPTY and name in self.accounts)
        return sorted(names)

    def login_accounts(self):
        return sorted(name for name, account in self.accounts.items() if is_login_shell(account["shell"]))

    def _granted_by_sudoers(self):
        """``{user: [grant]}`` for grants that do not come through an admin group (those count as membership)."""
        users = {}
        for grant in self.grants:
            who = grant["who"]
            if any(group in self.admin_groups for group in self.grant_groups(who)):
                continue
            for user in self.grant_users(who):
                users.setdefault(user, []).append(grant)
        return users

    def unexpected_admins(self):
        names = set()
        for members in self.admin_group_members().values():
            names.update(members)
        names.update(self._granted_by_sudoers())
        return sorted(names - set(self.admins) - {"root"})

    def primary_admin_group(self):
        return self.admin_groups[0] if self.admin_groups else None

    def missing_admins(self):
        group = self.primary_admin_group()
        members = set(self.members(group)) if group else set()
        return [admin for admin in self.admins if admin not in members and admin != "root"]

    def problems(self):
        problems = []
        for name in self.uid0:
            if name != "root":
                problems.append("UID 0 account %s besides root" % name)
        for name in sorted(self.duplicate_accounts):
            problems.append("account %s is listed more than once in %s" % (name, PASSWD))
        for name in self.empty_passwords():
            problems.append("account %s has an empty password" % name)
        declared = set(self.admins) | {"root"}
        for group in self.admin_groups:
            primary = set(self.primary_members(group))
            for user in self.members(group):
                if user in declared:
                    continue
                if user in primary:
                    problems.append(
                        "%s is in %s (primary group) but not a declared administrator; enforce cannot remove a "
                        "primary group" % (user, group)
                    )
                else:
                    problems.append("%s is in %s but not a declared administrator" % (user, group))
            for user in self.listed_members(group):
                if user not in self.accounts:
                    problems.append("%s lists %s, who has no account" % (group, user))
        for user, grants in sorted(self._granted_by_sudoers().items()):
            if user in declared:
                continue
            for grant in grants:
                via = "" if grant["who"] == user else " through %s" % grant["who"]
                problems.append(
                    "%s is granted ALL%s by %s line %d but not a declared administrator"
                    % (user, via, grant["source_file"], grant["line"])
                )
        for grant in self.grant_everyone():
            problems.append("%s line %d grants ALL to every user" % (grant["source_file"], grant["line"]))
        group = self.primary_admin_group()
        for admin in self.missing_admins():
            if admin not in self.accounts:
                problems.append("declared administrator %s has no account" % admin)
            elif group is None:
                problems.append(
                    "declared administrator %s is in no admin group: none of %s exists"
                    % (admin, ", ".join(self.requested_admin_groups))
                )
            else:
                problems.append("declared administrator %s is not in %s" % (admin, group))
        for invalid in self.invalid_keys:
            problems.append(
                "line %d of %s (%s) is not a valid public key: %s"
                % (invalid["line"], invalid["file"], invalid["user"], invalid["reason"])
            )
        read = {path for path, _text in self.files.sudoers}
        for include in self.includes:
            path = include["path"]
            covered = path in read if include["directive"].endswith("include") else path == SUDOERS_D
            if not covered:
                problems.append(
                    "%s line %d includes %s, which this audit does not read: check it by hand"
                    % (include["source_file"], include["line"], path)
                )
        if self.unparsed:
            problems.append(
                "%s %s not parsed (aliases or unusual syntax): check the unparsed lines by hand"
                % (_plural(len(self.unparsed), "sudoers line"), "was" if len(self.unparsed) == 1 else "were")
            )
        for path, numbers in ((PASSWD, self.passwd_malformed), (GROUP, self.group_malformed)):
            for number in numbers:
                problems.append("line %d of %s is malformed" % (number, path))
        for number in self.shadow_malformed:
            problems.append("line %d of %s is malformed" % (number, SHADOW))
        return problems

    def report(self):
        """The audit as plain, sorted lists and dicts."""
        return dict(
            uid0=list(self.uid0),
            admin_groups_found=list(self.admin_groups),
            admin_group_members=self.admin_group_members(),
            sudoers_grants=sorted(self.grants, key=lambda g: (g["source_file"], g["line"], g["who"])),
            unparsed=sorted(self.unparsed, key=lambda u: (u["source_file"], u["line"])),
            sudoers_includes=sorted(self.includes, key=lambda i: (i["source_file"], i["line"])),
            shadow_readable=self.shadow_readable,
            empty_passwords=self.empty_passwords(),
            login_accounts=self.login_accounts(),
            authorized_keys={
                user: sorted(entries, key=lambda e: (e["file"], e["line"])) for user, entries in self.keys.items()
            },
            invalid_authorized_keys=sorted(self.invalid_keys, key=lambda k: (k["user"], k["file"], k["line"])),
            unexpected_admins=self.unexpected_admins(),
            missing_admins=self.missing_admins(),
            problems=self.problems(),
            unreadable_files=sorted(self.files.unreadable, key=lambda u: u["path"]),
        )

    # --- enforcement -------------------------------------------------------------------------------------

    def removals(self):
        """``[{user, group}]``: every listed member of an admin group who is neither declared nor root."""
        keep = set(self.admins) | {"root"}
        removals = [
            dict(user=user, group=group)
            for group in self.admin_groups
            for user in self.listed_members(group)
            if user not in keep
        ]
        return sorted(removals, key=lambda r: (r["user"], r["group"]))

    def administrators_after(self, removals):
        """Declared administrators with an account who still reach root after ``removals``: through an admin
        group, or a sudoers grant of ALL (to them, their ``#uid``, a group they are in, or everyone)."""
        found = set()
        for group in self.admin_groups:
            found.update(self.members(group, removals))
        for grant in self.grants:
            if grant["who"] == "ALL":
                found.update(self.accounts)
            else:
                found.update(self.grant_users(grant["who"], removals))
        return sorted(admin for admin in self.admins if admin in found and admin in self.accounts)

    def refusal(self, removals):
        """Why enforcing ``removals`` must not happen (it would leave no administrator), or None."""
        if not removals or self.administrators_after(removals):
            return None
        what = _and("%s from %s" % (r["user"], r["group"]) for r in removals)
        if not self.admins:
            why = "admins is empty"
        else:
            why = "none of the declared admins (%s) would be in %s or have a sudoers grant of ALL" % (
                ", ".join(self.admins),
                " or ".join(self.admin_groups),
            )
        return "refusing to enforce: removing %s would leave no administrator: %s" % (what, why)


def membership_text(members):
    """``group: a, b`` lines of ``{group: [members]}``, for the diff."""
    return "".join(("%s: %s" % (group, ", ".join(names))).rstrip() + "\n" for group, names in sorted(members.items()))


def gpasswd_argv(gpasswd, user, group, root="/"):
    """``gpasswd -d user group``; with ``--root`` (chroot) when the audit reads a root other than ``/``."""
    chroot = ["--root", root] if os.path.normpath(root) != "/" else []
    return [gpasswd, *chroot, "-d", user, group]


def check_params(params):
    """The module arguments, checked and normalised (deduplicated, order kept); raises AuditError."""
    problems = []
    admins = []
    for index, name in enumerate(params.get("admins") or []):
        if not isinstance(name, str) or not NAME.match(name):
            problems.append("admins[%d] %r is not a user name" % (index, name))
        elif name not in admins:
            admins.append(name)
    groups = []
    admin_groups = params.get("admin_groups")
    if admin_groups is None:
        admin_groups = list(DEFAULT_ADMIN_GROUPS)
    for index, name in enumerate(admin_groups):
        if not isinstance(name, str) or not NAME.match(name):
            problems.append("admin_groups[%d] %r is not a group name" % (index, name))
        elif name not in groups:
            groups.append(name)
    if not admin_groups:
        problems.append("admin_groups is empty: name the groups that grant root through sudo")
    root = params.get("root") or "/"
    if not os.path.isabs(root):
        problems.append("root %s is not absolute" % root)
    elif not os.path.isdir(root):
        problems.append("root %s is not a directory" % root)
    if problems:
        raise AuditError("invalid arguments: " + "; ".join(problems))
    return dict(admins=admins, admin_groups=groups, enforce=bool(params.get("enforce")), root=os.path.normpath(root))
