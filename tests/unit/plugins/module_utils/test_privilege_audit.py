"""Unit tests of the privilege_audit logic: the passwd/shadow/group/sudoers/authorized_keys parsers, key
fingerprints (checked against ``ssh-keygen -lf`` when it is installed), the audit's findings, the enforcement
plan and its refusal, and reading a host tree below a root directory. Nothing runs a command but ssh-keygen."""

import base64
import json
import os
import shutil
import struct
import subprocess

import pytest

from ansible_collections.homelab.nixos.plugins.module_utils import _privilege_audit
from ansible_collections.homelab.nixos.plugins.module_utils._privilege_audit import (
    Audit,
    AuditError,
    HostFiles,
    check_params,
    fingerprint,
    gpasswd_argv,
    is_login_shell,
    key_files,
    membership_text,
    parse_authorized_keys,
    parse_group,
    parse_passwd,
    parse_public_key,
    parse_shadow,
    parse_sudoers,
    password_state,
    read_file,
    read_host,
    sudoers_d_files,
)

# Public keys made with ssh-keygen (OpenSSH 9.2); the fingerprints are what `ssh-keygen -lf` printed for them.
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBeki62mon5j8X280CX4qqxfV//sOZ+z4cGvT9+umZCJ alice@laptop"
ED25519_FP = "SHA256:wk2GA8vCvoc93sdNehCNaNCH8pzqnhFvZTdE3Bk8GS4"
RSA = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDcXzTCMJoIr2S3x1DKGJiA3D0oRqUN7gIyB8H3V450AbZ8i+gtUkWr8I3KNo94oeMAm8A6"
    "lWGgmnPlLENECxIMpYZk/EzXom61qgxCC4byDTHB49ovYQwvfay0miWAp+o7FwTq6X/raapd8ygmUucJOkiqyFRdIchk74r7AqF1qZpOlrZr"
    "4zfem+ioU6hOycGY/2c91aunZYhtWUCEya6M+JUdwFGC3VHXyUWKbcI5r5BcVaU0de4jgliN6K8l5iDaYU3OJxGqFs4B42DMyRdUoSPzm+C95"
    "yPfCe4Gx/GgpwicS4V5oQdvhBoJknQNk/+FDOWUCSe4l2nc9EDUpVH5 bob@desk"
)
RSA_FP = "SHA256:0bn6ZZMeLUPxtwVQKwS9YD0vDZkk/ECp/k/ARNn6M7Q"
ECDSA = (
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJx0V5IG7Tkhir7MOtOq4PcPja7qo8j2Mq0/"
    "KK6xXe9eovLkbs+jbWNETdsn4LjG92gipAYx991oGVKXH1aDUro= ci"
)
ECDSA_FP = "SHA256:WT+8NsOAaLq6B/bHaOdxK/FUcTYk7ABYEYwyCc0bIpo"

SSH_KEYGEN = shutil.which("ssh-keygen")
needs_ssh_keygen = pytest.mark.skipif(SSH_KEYGEN is None, reason="ssh-keygen is not installed")

PASSWD = """\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
toor:x:0:0::/root:/bin/sh
alice:x:1000:1000:Alice:/home/alice:/bin/bash
bob:x:1001:1001::/home/bob:/bin/zsh
carol:x:1002:1002::/home/carol:/bin/bash
dave:x:1003:27::/home/dave:/bin/bash
guest::1004:1004::/home/guest:
svc:x:999:999::/var/lib/svc:/bin/false
"""
SHADOW = """\
root:$6$salt$roothash:19000:0:99999:7:::
daemon:*:19000:0:99999:7:::
toor:!:19000::::::
alice:$y$j9T$alicehash:19000::::::
bob:!!:19000::::::
carol::19000::::::
dave:!$6$x$locked:19000::::::
guest:!:19000::::::
svc:*:19000::::::
"""
GROUP = """\
root:x:0:
sudo:x:27:alice,bob,root
wheel:x:10:carol,ghost
ops:x:1500:erin
alice:x:1000:
"""


def _files(*, passwd=PASSWD, group=GROUP, shadow=SHADOW, sudoers=(), keys=None, shadow_problem=None):
    return HostFiles(passwd, group, shadow=shadow, shadow_problem=shadow_problem, sudoers=sudoers, keys=keys)


# --- fingerprints and authorized_keys -----------------------------------------------------------------------


@pytest.mark.parametrize(("line", "expected"), [(ED25519, ED25519_FP), (RSA, RSA_FP), (ECDSA, ECDSA_FP)])
def test_fingerprint_of_known_keys(line, expected):
    key_type, blob, comment = parse_public_key(line)
    assert key_type == line.split()[0]
    assert fingerprint(blob) == expected
    assert comment == line.split()[-1]


def _ssh_keygen_fingerprints(path):
    out = subprocess.run([SSH_KEYGEN, "-lf", path], capture_output=True, text=True, check=True).stdout
    return [line.split()[1] for line in out.splitlines()]


@needs_ssh_keygen
def test_fingerprints_match_ssh_keygen_for_fresh_keys(tmp_path):
    lines = []
    for key_type, bits in (("ed25519", None), ("rsa", "3072"), ("ecdsa", "384")):
        path = str(tmp_path / key_type)
        argv = [SSH_KEYGEN, "-q", "-t", key_type, "-N", "", "-C", "%s key" % key_type, "-f", path]
        if bits:
            argv[4:4] = ["-b", bits]
        subprocess.run(argv, check=True)
        with open(path + ".pub") as f:
            lines.append(f.read().strip())
    # ssh-keygen -lf reads authorized_keys files too, options included.
    authorized = tmp_path / "authorized_keys"
    authorized.write_text(
        '%s\nfrom="10.0.0.0/8",no-pty %s\ncommand="echo a b, c" %s\n%s\n%s\n'
        % (lines[0], lines[1], lines[2], RSA, ECDSA)
    )
    entries, invalid = parse_authorized_keys(authorized.read_text())
    assert invalid == []
    assert [entry["fingerprint"] for entry in entries] == _ssh_keygen_fingerprints(str(authorized))
    assert [entry["comment"] for entry in entries] == ["ed25519 key", "rsa key", "ecdsa key", "bob@desk", "ci"]


@needs_ssh_keygen
def test_known_fingerprints_match_ssh_keygen(tmp_path):
    path = tmp_path / "keys"
    path.write_text("\n".join((ED25519, RSA, ECDSA)) + "\n")
    assert _ssh_keygen_fingerprints(str(path)) == [ED25519_FP, RSA_FP, ECDSA_FP]


def test_authorized_keys_with_options_comments_and_blank_lines():
    text = "\n".join(
        (
            "# keys of alice",
            "",
            ED25519,
            'from="100.64.0.0/10,192.168.1.0/24",command="/usr/bin/rrsync -ro /srv",no-pty ' + RSA,
            '  environment="A=\\"b c\\"",restrict ' + ECDSA.rsplit(" ", 1)[0],
        )
    )
    entries, invalid = parse_authorized_keys(text)
    assert invalid == []
    assert entries == [
        dict(type="ssh-ed25519", fingerprint=ED25519_FP, comment="alice@laptop", options=[], line=3),
        dict(
            type="ssh-rsa",
            fingerprint=RSA_FP,
            comment="bob@desk",
            options=['from="100.64.0.0/10,192.168.1.0/24"', 'command="/usr/bin/rrsync -ro /srv"', "no-pty"],
            line=4,
        ),
        dict(
            type="ecdsa-sha2-nistp256",
            fingerprint=ECDSA_FP,
            comment="",
            options=['environment="A=\\"b c\\""', "restrict"],
            line=5,
        ),
    ]


def test_invalid_authorized_keys_lines_are_reported_without_their_text():
    ed_type, ed_data = ED25519.split()[:2]
    rsa_data = RSA.split()[1]
    lines = [
        "root:$6$salt$roothash:19000:0:99999:7:::",  # what a symlink to /etc/shadow would give
        "ssh-ed25519",
        "ssh-ed25519 not*base64 x",
        "ssh-ed25519 %s mislabelled" % rsa_data,
        "ssh-ed25519 %s truncated" % ed_data[:-8],
        'command="unterminated ' + ED25519,
        "no-pty,restrict",
        "ssh-foo %s" % ed_data,
        "%s %s" % (ed_type, ed_data),
    ]
    entries, invalid = parse_authorized_keys("\n".join(lines))
    assert [entry["line"] for entry in entries] == [9]
    assert entries[0]["comment"] == ""
    assert invalid == [
        dict(line=1, reason="no known key type"),
        dict(line=2, reason="no key data after the key type"),
        dict(line=3, reason="the key data is not valid base64"),
        dict(line=4, reason="the key data is not a ssh-ed25519 key"),
        dict(line=5, reason="the key data is truncated"),
        dict(line=6, reason="a double quote in the options is not closed"),
        dict(line=7, reason="no known key type"),
        dict(line=8, reason="no known key type"),
    ]
    assert "roothash" not in json.dumps(invalid)


def test_truncated_key_blob_is_invalid():
    name = b"ssh-ed25519"
    blob = struct.pack(">I", len(name)) + name + struct.pack(">I", 32) + b"\0" * 16
    entries, invalid = parse_authorized_keys("ssh-ed25519 " + base64.b64encode(blob).decode())
    assert entries == [] and invalid == [dict(line=1, reason="the key data is truncated")]
    blob = struct.pack(">I", len(name)) + name + struct.pack(">I", 16) + b"\0" * 16
    assert parse_authorized_keys("ssh-ed25519 " + base64.b64encode(blob).decode())[1] == [
        dict(line=1, reason="the key data is not a ssh-ed25519 key")
    ]


# --- passwd, shadow, group ----------------------------------------------------------------------------------


def test_parse_passwd():
    accounts, malformed = parse_passwd(PASSWD + "broken:x:1\n+nisuser::::::\n# comment\nbad:x:u:1::/:/bin/sh\n")
    assert [account["name"] for account in accounts][:3] == ["root", "daemon", "toor"]
    assert accounts[0] == dict(name="root", uid=0, gid=0, home="/root", shell="/bin/bash", no_password=False, line=1)
    guest = next(account for account in accounts if account["name"] == "guest")
    assert guest["no_password"] is True and guest["shell"] == ""
    assert malformed == [10, 13]


@pytest.mark.parametrize(
    ("field", "state"),
    [("", "empty"), ("!", "locked"), ("*", "locked"), ("!!", "locked"), ("!$6$x$y", "locked"), ("$y$abc", "set")],
)
def test_password_state(field, state):
    assert password_state(field) == state


def test_parse_shadow_keeps_no_hash():
    states, malformed = parse_shadow(SHADOW + "nofields\ncarol:$6$second:1::::::\n")
    assert states["root"] == "set" and states["carol"] == "empty" and states["bob"] == "locked"
    assert states["dave"] == "locked"
    assert malformed == [10]
    assert "hash" not in json.dumps(states)


def test_parse_group():
    groups, malformed = parse_group(GROUP + "bad:x:notanumber:\nsudo:x:99:mallory\nshort:x\n")
    assert groups["sudo"] == dict(gid=27, members=["alice", "bob", "root"])
    assert groups["root"] == dict(gid=0, members=[])
    assert malformed == [6, 8]


@pytest.mark.parametrize(
    ("shell", "login"),
    [
        ("/bin/bash", True),
        ("", True),
        ("/run/current-system/sw/bin/zsh", True),
        ("/usr/sbin/nologin", False),
        ("/run/current-system/sw/bin/nologin", False),
        ("/nix/store/abc-shadow-4.14/bin/nologin", False),
        ("/bin/false", False),
        ("/bin/sync", False),
    ],
)
def test_is_login_shell(shell, login):
    assert is_login_shell(shell) is login


# --- sudoers ------------------------------------------------------------------------------------------------

DEBIAN_SUDOERS = """\
#
# This file MUST be edited with the 'visudo' command as root.
#
Defaults\tenv_reset
Defaults\tmail_badpass
Defaults\tsecure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
Defaults\tuse_pty

# User privilege specification
root\tALL=(ALL:ALL) ALL

# Allow members of group sudo to execute any command
%sudo\tALL=(ALL:ALL) ALL

# See sudoers(5) for more information on "@include" directives:

@includedir /etc/sudoers.d
"""

NIXOS_SUDOERS = """\
# Don't edit this file. Set the NixOS options \u2018security.sudo.configFile\u2019
# or \u2018security.sudo.extraRules\u2019 instead.

# Keep SSH_AUTH_SOCK so that pam_ssh_agent_auth.so can do its magic.
Defaults env_keep+=SSH_AUTH_SOCK

# "root" is allowed to do anything.
root        ALL=(ALL:ALL) SETENV: ALL

# extraRules
%wheel  ALL=(ALL:ALL)    SETENV: ALL
"""


def _who(parsed):
    return [(grant["who"], grant["line"], grant["nopasswd"]) for grant in parsed["grants"]]


def test_debian_default_sudoers():
    parsed = parse_sudoers(DEBIAN_SUDOERS, "/etc/sudoers")
    assert _who(parsed) == [("root", 10, False), ("%sudo", 13, False)]
    assert parsed["grants"][1] == dict(
        who="%sudo", source_file="/etc/sudoers", line=13, rule="%sudo ALL=(ALL:ALL) ALL", nopasswd=False
    )
    assert parsed["unparsed"] == []
    assert parsed["includes"] == [
        dict(source_file="/etc/sudoers", line=17, directive="@includedir", path="/etc/sudoers.d")
    ]


def test_nixos_default_sudoers():
    parsed = parse_sudoers(NIXOS_SUDOERS, "/etc/sudoers")
    assert _who(parsed) == [("root", 8, False), ("%wheel", 11, False)]
    assert parsed["unparsed"] == [] and parsed["includes"] == []


def test_sudoers_rule_forms():
    text = "\n".join(
        (
            "alice, bob ALL = (ALL) NOPASSWD: ALL  # admins",
            "%ops ALL=(root) NOPASSWD:ALL",
            "#1005 ALL=ALL",
            "%#1500 host1 = (ALL:ALL) TIMEOUT=5m ALL",
            "erin ALL=(postgres) ALL",
            "frank ALL=(:ALL) ALL",
            "grace ALL=() ALL",
            "heidi ALL=(root) /usr/bin/systemctl restart nginx, /usr/bin/journalctl",
            "ivan ALL=(root) /usr/bin/ls, NOPASSWD: ALL",
            "judy ALL=(postgres) /usr/bin/psql, (root) ALL",
            "ken ALL=(www-data) ALL : otherhost = (root) \\",
            "    PASSWD: ALL",
            "ALL ALL=(ALL) ALL",
            "mallory ALL=(#0) LOG_INPUT: NOPASSWD: ALL",
            "oscar ALL=(ALL) !ALL",
        )
    )
    parsed = parse_sudoers(text, "/etc/sudoers.d/rules")
    assert _who(parsed) == [
        ("alice", 1, True),
        ("bob", 1, True),
        ("%ops", 2, True),
        ("#1005", 3, False),
        ("%#1500", 4, False),
        ("ivan", 9, True),
        ("judy", 10, False),
        ("ken", 11, False),
        ("ALL", 13, False),
        ("mallory", 14, True),
    ]
    assert parsed["grants"][0]["rule"] == "alice, bob ALL = (ALL) NOPASSWD: ALL"
    assert parsed["grants"][7]["rule"] == "ken ALL=(www-data) ALL : otherhost = (root) PASSWD: ALL"
    assert parsed["unparsed"] == []


def test_sudoers_aliases_and_unusual_syntax_are_unparsed():
    text = "\n".join(
        (
            "User_Alias ADMINS = alice, bob",
            "Cmnd_Alias SHELLS = /bin/sh, /bin/bash",
            "ADMINS ALL=(ALL) ALL",
            "carol ALL=(ALL) SHELLS",
            "dave ALL=(OPERATORS) ALL",
            "ALL, !eve ALL=(ALL) ALL",
            "+admins ALL=(ALL) ALL",
            "%:AdminGroup ALL=(ALL) ALL",
            "frank ALL=(ALL) FANCY: ALL",
            "this is not a rule",
            "Defaults:alice !requiretty",
            "Defaults>root !set_logname",
        )
    )
    parsed = parse_sudoers(text, "/etc/sudoers.d/x")
    assert parsed["grants"] == []
    assert [(entry["line"], entry["reason"]) for entry in parsed["unparsed"]] == [
        (1, "an alias definition"),
        (2, "an alias definition"),
        (3, "uses a User_Alias"),
        (4, "uses a Cmnd_Alias"),
        (5, "uses a Runas_Alias"),
        (6, "uses a negated user"),
        (7, "uses a non-Unix group, netgroup or quoted name"),
        (8, "uses a non-Unix group, netgroup or quoted name"),
        (9, "uses an unknown tag"),
        (10, "not a user specification"),
    ]
    assert parsed["unparsed"][0] == dict(
        source_file="/etc/sudoers.d/x", line=1, rule="User_Alias ADMINS = alice, bob", reason="an alias definition"
    )


def test_sudoers_includes():
    text = '#include /etc/sudoers.local\n@include "local rules"\n#includedir /etc/sudoers.d\n# include nothing\n'
    parsed = parse_sudoers(text, "/etc/sudoers")
    assert parsed["includes"] == [
        dict(source_file="/etc/sudoers", line=1, directive="#include", path="/etc/sudoers.local"),
        dict(source_file="/etc/sudoers", line=2, directive="@include", path="/etc/local rules"),
        dict(source_file="/etc/sudoers", line=3, directive="#includedir", path="/etc/sudoers.d"),
    ]
    assert parsed["grants"] == [] and parsed["unparsed"] == []


# --- the audit ----------------------------------------------------------------------------------------------


def _audit(admins=("alice",), admin_groups=("sudo", "wheel", "admin"), **kw):
    return Audit(_files(**kw), admins, admin_groups)


def test_audit_findings():
    sudoers = [
        ("/etc/sudoers", DEBIAN_SUDOERS),
        ("/etc/sudoers.d/ops", "%ops ALL=(ALL) NOPASSWD: ALL\nfrank ALL=(ALL) ALL\nUser_Alias X = y\n"),
        ("/etc/sudoers.d/local", "#include /etc/sudoers.local\n"),
    ]
    keys = {
        "alice": [("/home/alice/.ssh/authorized_keys", ED25519 + "\nbroken line\n")],
        "root": [("/etc/ssh/authorized_keys.d/root", RSA + "\n")],
    }
    passwd = PASSWD + "erin:x:1005:1005::/home/erin:/bin/bash\nalice:x:2000:2000::/:/bin/sh\n"
    report = _audit(admins=("alice", "zed"), passwd=passwd, sudoers=sudoers, keys=keys).report()
    assert report["uid0"] == ["root", "toor"]
    assert report["admin_groups_found"] == ["sudo", "wheel"]
    assert report["admin_group_members"] == {"sudo": ["alice", "bob", "dave", "root"], "wheel": ["carol", "ghost"]}
    assert [(g["who"], g["source_file"], g["line"]) for g in report["sudoers_grants"]] == [
        ("root", "/etc/sudoers", 10),
        ("%sudo", "/etc/sudoers", 13),
        ("%ops", "/etc/sudoers.d/ops", 1),
        ("frank", "/etc/sudoers.d/ops", 2),
    ]
    assert report["empty_passwords"] == ["carol", "guest"]
    assert report["shadow_readable"] is True
    assert report["login_accounts"] == ["alice", "bob", "carol", "dave", "erin", "guest", "root", "toor"]
    assert report["authorized_keys"] == {
        "alice": [
            dict(
                type="ssh-ed25519",
                fingerprint=ED25519_FP,
                comment="alice@laptop",
                options=[],
                line=1,
                file="/home/alice/.ssh/authorized_keys",
            )
        ],
        "root": [
            dict(
                type="ssh-rsa",
                fingerprint=RSA_FP,
                comment="bob@desk",
                options=[],
                line=1,
                file="/etc/ssh/authorized_keys.d/root",
            )
        ],
    }
    assert report["invalid_authorized_keys"] == [
        dict(user="alice", file="/home/alice/.ssh/authorized_keys", line=2, reason="no known key type")
    ]
    assert report["unexpected_admins"] == ["bob", "carol", "dave", "erin", "frank", "ghost"]
    assert report["missing_admins"] == ["zed"]
    assert report["problems"] == [
        "UID 0 account toor besides root",
        "account alice is listed more than once in /etc/passwd",
        "account carol has an empty password",
        "account guest has an empty password",
        "bob is in sudo but not a declared administrator",
        "dave is in sudo (primary group) but not a declared administrator; enforce cannot remove a primary group",
        "carol is in wheel but not a declared administrator",
        "ghost is in wheel but not a declared administrator",
        "wheel lists ghost, who has no account",
        "erin is granted ALL through %ops by /etc/sudoers.d/ops line 1 but not a declared administrator",
        "frank is granted ALL by /etc/sudoers.d/ops line 2 but not a declared administrator",
        "declared administrator zed has no account",
        "line 2 of /home/alice/.ssh/authorized_keys (alice) is not a valid public key: no known key type",
        "/etc/sudoers.d/local line 1 includes /etc/sudoers.local, which this audit does not read: check it by hand",
        "1 sudoers line was not parsed (aliases or unusual syntax): check the unparsed lines by hand",
    ]
    assert [u["rule"] for u in report["unparsed"]] == ["User_Alias X = y"]
    assert len(report["sudoers_includes"]) == 2
    assert report["unreadable_files"] == []
    # Plain JSON data, and nothing secret in it.
    dumped = json.dumps(report)
    for secret in ("roothash", "alicehash", ED25519.split()[1], RSA.split()[1][:40]):
        assert secret not in dumped


def test_audit_without_shadow_only_checks_passwd():
    report = _audit(shadow=None, shadow_problem="Permission denied").report()
    assert report["shadow_readable"] is False
    assert report["empty_passwords"] == ["guest"]


def test_grant_to_every_user_is_a_problem():
    problems = _audit(sudoers=[("/etc/sudoers", "ALL ALL=(ALL) ALL\n")]).problems()
    assert "/etc/sudoers line 1 grants ALL to every user" in problems


def test_missing_admins_in_the_primary_admin_group():
    audit = _audit(admins=("alice", "bob", "carol", "root"), admin_groups=("wheel", "sudo"))
    assert audit.primary_admin_group() == "wheel"
    assert audit.missing_admins() == ["alice", "bob"]
    assert "declared administrator alice is not in wheel" in audit.problems()


def test_no_admin_group_exists():
    audit = _audit(admin_groups=("admin", "staff"))
    report = audit.report()
    assert report["admin_groups_found"] == [] and report["admin_group_members"] == {}
    assert report["missing_admins"] == ["alice"]
    assert "declared administrator alice is in no admin group: none of admin, staff exists" in report["problems"]


def test_a_sudo_grant_by_gid_of_an_admin_group_counts_as_membership():
    audit = _audit(sudoers=[("/etc/sudoers", "%#27 ALL=(ALL) ALL\n#1001 ALL=(ALL) ALL\n")])
    problems = audit.problems()
    assert not [p for p in problems if "%#27" in p]
    assert "bob is granted ALL through #1001 by /etc/sudoers line 2 but not a declared administrator" in problems


# --- enforcement plan ---------------------------------------------------------------------------------------


def test_removals_keep_declared_admins_root_and_primary_members():
    audit = _audit()
    assert audit.removals() == [
        dict(user="bob", group="sudo"),
        dict(user="carol", group="wheel"),
        dict(user="ghost", group="wheel"),
    ]
    assert audit.admin_group_members(audit.removals()) == {"sudo": ["alice", "dave", "root"], "wheel": []}
    assert audit.administrators_after(audit.removals()) == ["alice"]
    assert audit.refusal(audit.removals()) is None


def test_refusal_when_no_declared_admin_would_remain():
    audit = _audit(admins=("zed",))
    message = audit.refusal(audit.removals())
    assert message == (
        "refusing to enforce: removing alice from sudo, bob from sudo, carol from wheel and ghost from wheel would "
        "leave no administrator: none of the declared admins (zed) would be in sudo or wheel or have a sudoers "
        "grant of ALL"
    )
    empty = _audit(admins=())
    assert empty.refusal(empty.removals()).endswith("would leave no administrator: admins is empty")


def test_an_admin_group_member_without_an_account_does_not_count():
    audit = _audit(admins=("ghost",))
    assert audit.administrators_after(audit.removals()) == []
    assert audit.refusal(audit.removals()) is not None


@pytest.mark.parametrize(
    "sudoers",
    [
        "zed ALL=(ALL) ALL\n",
        "#1006 ALL=(ALL) ALL\n",
        "%ops ALL=(ALL) ALL\n",
        "ALL ALL=(ALL) ALL\n",
    ],
)
def test_a_sudoers_grant_keeps_an_administrator(sudoers):
    passwd = PASSWD + "zed:x:1006:1006::/home/zed:/bin/bash\n"
    group = GROUP.replace("ops:x:1500:erin", "ops:x:1500:erin,zed")
    audit = _audit(admins=("zed",), passwd=passwd, group=group, sudoers=[("/etc/sudoers", sudoers)])
    assert audit.administrators_after(audit.removals()) == ["zed"]
    assert audit.refusal(audit.removals()) is None


def test_a_sudoers_grant_through_an_emptied_admin_group_does_not_keep_an_administrator():
    audit = _audit(admins=("bob",), sudoers=[("/etc/sudoers", "%wheel ALL=(ALL) ALL\n")], group=GROUP)
    # bob stays in sudo, so he remains; carol would be removed from wheel.
    assert audit.administrators_after(audit.removals()) == ["bob"]
    audit = _audit(admins=("carol",), sudoers=[("/etc/sudoers", "%sudo ALL=(ALL) ALL\n")])
    assert audit.administrators_after(audit.removals()) == ["carol"]
    group = GROUP.replace("wheel:x:10:carol,ghost", "wheel:x:10:ghost")
    audit = _audit(admins=("carol",), group=group, sudoers=[("/etc/sudoers", "%sudo ALL=(ALL) ALL\n")])
    assert audit.administrators_after(audit.removals()) == []


def test_no_refusal_when_nothing_is_removed():
    group = "root:x:0:\nsudo:x:27:root\n"
    audit = _audit(admins=("zed",), group=group)
    assert audit.removals() == [] and audit.refusal([]) is None


def test_membership_text_and_gpasswd_argv():
    assert membership_text({"wheel": [], "sudo": ["alice", "bob"]}) == "sudo: alice, bob\nwheel:\n"
    assert gpasswd_argv("/usr/sbin/gpasswd", "bob", "sudo") == ["/usr/sbin/gpasswd", "-d", "bob", "sudo"]
    assert gpasswd_argv("gpasswd", "bob", "sudo", "/mnt") == ["gpasswd", "--root", "/mnt", "-d", "bob", "sudo"]


def test_check_params(tmp_path):
    params = check_params(dict(admins=["alice", "alice", "bob"], admin_groups=["wheel"], enforce=True, root="/"))
    assert params == dict(admins=["alice", "bob"], admin_groups=["wheel"], enforce=True, root="/")
    with pytest.raises(AuditError) as excinfo:
        check_params(dict(admins=["al ice", "x:y"], admin_groups=[], root="relative"))
    assert str(excinfo.value) == (
        "invalid arguments: admins[0] 'al ice' is not a user name; admins[1] 'x:y' is not a user name; "
        "admin_groups is empty: name the groups that grant root through sudo; root relative is not absolute"
    )
    with pytest.raises(AuditError, match=r"root .*/missing is not a directory"):
        check_params(dict(root=str(tmp_path / "missing")))


# --- reading a host tree ------------------------------------------------------------------------------------


def _write(root, logical, text):
    path = os.path.join(str(root), logical.lstrip("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def _link(root, logical, target):
    path = os.path.join(str(root), logical.lstrip("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)


def test_read_host_follows_nixos_links_inside_root(tmp_path):
    _write(tmp_path, "/etc/passwd", PASSWD)
    _write(tmp_path, "/etc/group", GROUP)
    _write(tmp_path, "/etc/shadow", SHADOW)
    _write(tmp_path, "/etc/NIXOS", "")
    _write(tmp_path, "/nix/store/aaaa-sudoers", NIXOS_SUDOERS)
    _link(tmp_path, "/etc/static", "/nix/store/bbbb-etc/etc")
    _link(tmp_path, "/nix/store/bbbb-etc/etc/sudoers", "/nix/store/aaaa-sudoers")
    _link(tmp_path, "/etc/sudoers", "/etc/static/sudoers")
    _write(tmp_path, "/nix/store/cccc-alice-keys", ED25519 + "\n")
    _link(tmp_path, "/etc/ssh/authorized_keys.d/alice", "/etc/static/ssh/authorized_keys.d/alice")
    _link(tmp_path, "/nix/store/bbbb-etc/etc/ssh/authorized_keys.d/alice", "/nix/store/cccc-alice-keys")
    _write(tmp_path, "/home/bob/.ssh/authorized_keys2", RSA + "\n")
    files = read_host(str(tmp_path))
    assert files.is_nixos is True
    assert files.sudoers == [("/etc/sudoers", NIXOS_SUDOERS)]
    assert files.keys == {
        "alice": [("/etc/ssh/authorized_keys.d/alice", ED25519 + "\n")],
        "bob": [("/home/bob/.ssh/authorized_keys2", RSA + "\n")],
    }
    assert files.shadow == SHADOW and files.shadow_problem is None
    assert files.unreadable == []


def test_read_host_sudoers_d_order_and_skipped_names(tmp_path):
    _write(tmp_path, "/etc/passwd", "root:x:0:0::/root:/bin/sh\n")
    _write(tmp_path, "/etc/group", "root:x:0:\n")
    for name in ("b-rule", "a-rule", "README", "old~", "x.dpkg-old", "rule.bak"):
        _write(tmp_path, "/etc/sudoers.d/" + name, "%s ALL=(ALL) ALL\n" % name)
    os.mkdir(str(tmp_path / "etc" / "sudoers.d" / "subdir"))
    assert sudoers_d_files(str(tmp_path)) == ["/etc/sudoers.d/README", "/etc/sudoers.d/a-rule", "/etc/sudoers.d/b-rule"]
    files = read_host(str(tmp_path))
    assert [path for path, _text in files.sudoers] == [
        "/etc/sudoers.d/README",
        "/etc/sudoers.d/a-rule",
        "/etc/sudoers.d/b-rule",
    ]
    assert files.shadow is None and files.shadow_problem == "it does not exist"


def test_read_host_reports_unreadable_files_without_blocking(tmp_path):
    _write(tmp_path, "/etc/passwd", "root:x:0:0::/root:/bin/sh\nbob:x:1:1::/home/bob:/bin/sh\n")
    _write(tmp_path, "/etc/group", "root:x:0:\n")
    os.makedirs(str(tmp_path / "home" / "bob" / ".ssh"))
    os.mkfifo(str(tmp_path / "home" / "bob" / ".ssh" / "authorized_keys"))
    _link(tmp_path, "/home/bob/.ssh/authorized_keys2", "/home/bob/.ssh/authorized_keys2")
    files = read_host(str(tmp_path))
    assert files.unreadable == [
        dict(path="/home/bob/.ssh/authorized_keys", reason="not a regular file"),
        dict(path="/home/bob/.ssh/authorized_keys2", reason="too many levels of symbolic links"),
    ]
    assert files.keys == {}


def test_read_file_refuses_large_files(tmp_path):
    _write(tmp_path, "/big", "x" * 20)
    with pytest.raises(_privilege_audit.Unreadable, match="larger than 10 bytes"):
        read_file(str(tmp_path), "/big", limit=10)
    assert read_file(str(tmp_path), "/missing") is None
    assert read_file(str(tmp_path), "/big/below") is None


def test_unreadable_shadow(tmp_path, monkeypatch):
    """Permission errors are simulated: these tests may run as root, which reads anything."""
    _write(tmp_path, "/etc/passwd", PASSWD)
    _write(tmp_path, "/etc/group", GROUP)
    shadow = _write(tmp_path, "/etc/shadow", SHADOW)
    real_open = os.open

    def denying_open(path, flags, *args):
        if path == shadow:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(_privilege_audit.os, "open", denying_open)
    files = read_host(str(tmp_path))
    assert files.shadow is None and files.shadow_problem == "Permission denied"


def test_read_host_fails_without_passwd_or_group(tmp_path):
    with pytest.raises(AuditError, match=r"cannot read .*/etc/passwd: it does not exist"):
        read_host(str(tmp_path))
    _write(tmp_path, "/etc/passwd", PASSWD)
    os.mkdir(str(tmp_path / "etc" / "group"))
    with pytest.raises(AuditError, match=r"cannot read .*/etc/group: not a regular file"):
        read_host(str(tmp_path))


def test_key_files():
    account = dict(name="alice", home="/home/alice/", shell="/bin/sh")
    assert key_files(account) == [
        "/home/alice/.ssh/authorized_keys",
        "/home/alice/.ssh/authorized_keys2",
        "/etc/ssh/authorized_keys.d/alice",
    ]
    assert key_files(dict(name="svc", home="", shell="")) == ["/etc/ssh/authorized_keys.d/svc"]
    assert key_files(dict(name="../x", home="/", shell="")) == []
