"""The privilege_audit module as Ansible runs it, against host trees built in tmp_path.

Keys are made with ``ssh-keygen`` when it is installed (and their fingerprints compared with ``ssh-keygen -lf``),
otherwise fixed public keys with fingerprints precomputed by ssh-keygen are used.

``AnsibleModule.run_command`` is replaced by ``FakeGpasswd``, a test double for ``gpasswd -d``: the real one would
change this machine's /etc/group (or need root to chroot into the tree). The double records the argv and, like
gpasswd, removes the user from the group in the tree's /etc/group.
"""

import json
import os
import shutil
import subprocess

import pytest
from ansible.module_utils import basic

from ansible_collections.homelab.nixos.plugins.modules import privilege_audit

GPASSWD = "/usr/sbin/gpasswd"
SSH_KEYGEN = shutil.which("ssh-keygen")

# Fallback keys (made with ssh-keygen, OpenSSH 9.2) and what `ssh-keygen -lf` printed for them.
FIXED_KEYS = {
    "ed25519": (
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBeki62mon5j8X280CX4qqxfV//sOZ+z4cGvT9+umZCJ",
        "SHA256:wk2GA8vCvoc93sdNehCNaNCH8pzqnhFvZTdE3Bk8GS4",
    ),
    "rsa": (
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDcXzTCMJoIr2S3x1DKGJiA3D0oRqUN7gIyB8H3V450AbZ8i+gtUkWr8I3KNo94oeMA"
        "m8A6lWGgmnPlLENECxIMpYZk/EzXom61qgxCC4byDTHB49ovYQwvfay0miWAp+o7FwTq6X/raapd8ygmUucJOkiqyFRdIchk74r7AqF1"
        "qZpOlrZr4zfem+ioU6hOycGY/2c91aunZYhtWUCEya6M+JUdwFGC3VHXyUWKbcI5r5BcVaU0de4jgliN6K8l5iDaYU3OJxGqFs4B42DM"
        "yRdUoSPzm+C95yPfCe4Gx/GgpwicS4V5oQdvhBoJknQNk/+FDOWUCSe4l2nc9EDUpVH5",
        "SHA256:0bn6ZZMeLUPxtwVQKwS9YD0vDZkk/ECp/k/ARNn6M7Q",
    ),
}

HASH = "$6$rounds=5000$s4lt$Zm9vYmFyYmF6c2VjcmV0aGFzaA"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """``{"ed25519": (public key without comment, fingerprint), "rsa": (...)}``."""
    if SSH_KEYGEN is None:
        return dict(FIXED_KEYS)
    directory = tmp_path_factory.mktemp("keys")
    made = {}
    for key_type in ("ed25519", "rsa"):
        path = str(directory / key_type)
        argv = [SSH_KEYGEN, "-q", "-t", key_type, "-N", "", "-C", "", "-f", path]
        if key_type == "rsa":
            argv[4:4] = ["-b", "2048"]
        subprocess.run(argv, check=True)
        out = subprocess.run([SSH_KEYGEN, "-lf", path + ".pub"], capture_output=True, text=True, check=True).stdout
        with open(path + ".pub") as f:
            made[key_type] = (" ".join(f.read().split()[:2]), out.split()[1])
    return made


class FakeGpasswd:
    """Test double for ``AnsibleModule.run_command`` running ``gpasswd [--root R] -d USER GROUP``.

    Records every call; answers ``responses[(user, group)]`` (rc, stdout, stderr) when given, else removes
    USER from GROUP in ``<R>/etc/group`` and answers rc 0, as gpasswd does.
    """

    def __init__(self):
        self.calls = []
        self.responses = {}

    def __call__(self, module, args, **kwargs):
        self.calls.append((list(args), kwargs))
        assert os.path.basename(args[0]) == "gpasswd", args
        root = args[2] if args[1] == "--root" else "/"
        assert root != "/", "the tests must not run gpasswd on this machine"
        user, group = args[-2], args[-1]
        if (user, group) in self.responses:
            return self.responses[(user, group)]
        path = os.path.join(root, "etc", "group")
        with open(path) as f:
            lines = f.read().splitlines()
        for index, line in enumerate(lines):
            fields = line.split(":")
            if fields[0] == group:
                members = [member for member in fields[3].split(",") if member and member != user]
                lines[index] = ":".join([*fields[:3], ",".join(members)])
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return 0, "Removing user %s from group %s\n" % (user, group), ""

    def argvs(self):
        return [args for args, _kwargs in self.calls]


@pytest.fixture
def gpasswd(monkeypatch):
    fake = FakeGpasswd()

    def run_command(self, args, **kwargs):
        return fake(self, args, **kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(
        basic.AnsibleModule,
        "get_bin_path",
        lambda self, name, required=False, opt_dirs=None: GPASSWD if name == "gpasswd" else None,
    )
    return fake


class Host:
    """A Debian-like host tree: root, alice (declared admin), bob (unexpected sudo member), carol (sudoers grant),
    dave (wheel through his primary group), toor (UID 0), guest (empty password), svc (no login)."""

    def __init__(self, root, keys):
        self.root = root
        self.keys = keys
        self.write(
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\n"
            "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
            "toor:x:0:0::/root:/bin/sh\n"
            "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"
            "bob:x:1001:1001::/home/bob:/bin/bash\n"
            "carol:x:1002:1002::/home/carol:/bin/bash\n"
            "dave:x:1003:10::/home/dave:/bin/bash\n"
            "guest:x:1004:1004::/home/guest:/bin/bash\n"
            "svc:x:999:999::/var/lib/svc:/usr/sbin/nologin\n",
        )
        self.write(
            "/etc/shadow",
            "root:%s:19000:0:99999:7:::\n"
            "daemon:*:19000:0:99999:7:::\n"
            "toor:!:19000::::::\n"
            "alice:%s:19000::::::\n"
            "bob:!!:19000::::::\n"
            "carol:!%s:19000::::::\n"
            "dave:*:19000::::::\n"
            "guest::19000::::::\n"
            "svc:!:19000::::::\n" % (HASH, HASH, HASH),
        )
        self.write("/etc/group", "root:x:0:\nsudo:x:27:alice,bob\nwheel:x:10:\nusers:x:100:\n")
        self.write(
            "/etc/sudoers",
            "Defaults\tenv_reset\nroot\tALL=(ALL:ALL) ALL\n%sudo\tALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n",
        )
        self.write("/etc/sudoers.d/carol", "carol ALL=(ALL) NOPASSWD: ALL\n")
        self.write("/etc/sudoers.d/aliases", "User_Alias OPS = bob, carol\nOPS ALL=(ALL) ALL\n")
        self.write("/etc/sudoers.d/README.txt", "eve ALL=(ALL) ALL\n")
        self.write("/home/alice/.ssh/authorized_keys", "%s alice@laptop\n" % keys["ed25519"][0])
        self.write(
            "/home/bob/.ssh/authorized_keys",
            'from="100.64.0.0/10",no-agent-forwarding %s bob@desk\nnot a key\n' % keys["rsa"][0],
        )
        self.write("/etc/ssh/authorized_keys.d/root", "%s root@console\n" % keys["ed25519"][0])

    def write(self, logical, text):
        path = self.path(logical)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

    def path(self, logical):
        return os.path.join(self.root, logical.lstrip("/"))

    def read(self, logical):
        with open(self.path(logical), encoding="utf-8") as f:
            return f.read()

    def args(self, **kw):
        args = dict(admins=["alice"], root=self.root)
        args.update(kw)
        return args


@pytest.fixture
def host(tmp_path, keys):
    return Host(str(tmp_path), keys)


def _audit(run_module, host, check_mode=False, diff=False, **kw):
    failed, result = run_module(privilege_audit.main, host.args(**kw), check_mode=check_mode, diff=diff)
    assert not failed, result
    return result


# --- audit -------------------------------------------------------------------------------------------------


def test_audit_reports_every_finding_and_changes_nothing(run_module, host, gpasswd, warnings, keys):
    group_before = host.read("/etc/group")
    result = _audit(run_module, host)
    assert result["changed"] is False
    assert "removed" not in result and "diff" not in result
    assert result["uid0"] == ["root", "toor"]
    assert result["admin_groups_found"] == ["sudo", "wheel"]
    assert result["admin_group_members"] == {"sudo": ["alice", "bob"], "wheel": ["dave"]}
    assert [(g["who"], g["source_file"], g["line"], g["nopasswd"]) for g in result["sudoers_grants"]] == [
        ("root", "/etc/sudoers", 2, False),
        ("%sudo", "/etc/sudoers", 3, False),
        ("carol", "/etc/sudoers.d/carol", 1, True),
    ]
    assert result["sudoers_includes"] == [
        dict(source_file="/etc/sudoers", line=4, directive="@includedir", path="/etc/sudoers.d")
    ]
    assert result["unparsed"] == [
        dict(
            source_file="/etc/sudoers.d/aliases",
            line=1,
            rule="User_Alias OPS = bob, carol",
            reason="an alias definition",
        ),
        dict(source_file="/etc/sudoers.d/aliases", line=2, rule="OPS ALL=(ALL) ALL", reason="uses a User_Alias"),
    ]
    assert result["shadow_readable"] is True
    assert result["empty_passwords"] == ["guest"]
    assert result["login_accounts"] == ["alice", "bob", "carol", "dave", "guest", "root", "toor"]
    assert result["authorized_keys"] == {
        "alice": [
            dict(
                type="ssh-ed25519",
                fingerprint=keys["ed25519"][1],
                comment="alice@laptop",
                options=[],
                file="/home/alice/.ssh/authorized_keys",
                line=1,
            )
        ],
        "bob": [
            dict(
                type="ssh-rsa",
                fingerprint=keys["rsa"][1],
                comment="bob@desk",
                options=['from="100.64.0.0/10"', "no-agent-forwarding"],
                file="/home/bob/.ssh/authorized_keys",
                line=1,
            )
        ],
        "root": [
            dict(
                type="ssh-ed25519",
                fingerprint=keys["ed25519"][1],
                comment="root@console",
                options=[],
                file="/etc/ssh/authorized_keys.d/root",
                line=1,
            )
        ],
    }
    assert result["invalid_authorized_keys"] == [
        dict(user="bob", file="/home/bob/.ssh/authorized_keys", line=2, reason="no known key type")
    ]
    assert result["unexpected_admins"] == ["bob", "carol", "dave"]
    assert result["missing_admins"] == []
    assert result["problems"] == [
        "UID 0 account toor besides root",
        "account guest has an empty password",
        "bob is in sudo but not a declared administrator",
        "dave is in wheel (primary group) but not a declared administrator; enforce cannot remove a primary group",
        "carol is granted ALL by /etc/sudoers.d/carol line 1 but not a declared administrator",
        "line 2 of /home/bob/.ssh/authorized_keys (bob) is not a valid public key: no known key type",
        "2 sudoers lines were not parsed (aliases or unusual syntax): check the unparsed lines by hand",
    ]
    assert result["unreadable_files"] == []
    assert warnings == []
    assert gpasswd.calls == []
    assert host.read("/etc/group") == group_before


def test_results_hold_no_hash_and_no_key_material(run_module, host, gpasswd, keys):
    result = _audit(run_module, host, enforce=True)
    dumped = json.dumps(result)
    assert HASH not in dumped and "s4lt" not in dumped
    for public_key, _fingerprint in keys.values():
        assert public_key.split()[1][:24] not in dumped


def test_missing_admins_are_reported_not_added(run_module, host, gpasswd):
    result = _audit(run_module, host, admins=["alice", "bob", "zed", "dave"], admin_groups=["wheel", "sudo"])
    assert result["missing_admins"] == ["alice", "bob", "zed"]
    assert "declared administrator alice is not in wheel" in result["problems"]
    assert "declared administrator zed has no account" in result["problems"]
    result = _audit(
        run_module, host, admins=["alice", "bob", "zed", "dave"], admin_groups=["wheel", "sudo"], enforce=True
    )
    assert result["changed"] is False and result["removed"] == []
    assert gpasswd.calls == []


def test_unreadable_shadow_is_reported_and_skipped(run_module, host, gpasswd, warnings, monkeypatch):
    """Permission errors are simulated: the tests may run as root, which reads anything."""
    host.write("/etc/passwd", host.read("/etc/passwd") + "nopw::1005:1005::/home/nopw:/bin/sh\n")
    shadow = host.path("/etc/shadow")
    real_open = os.open

    def denying_open(path, flags, *args):
        if path == shadow:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", denying_open)
    result = _audit(run_module, host)
    assert result["shadow_readable"] is False
    assert result["empty_passwords"] == ["nopw"]
    assert warnings == [
        "could not read /etc/shadow (Permission denied): empty passwords were only checked in /etc/passwd; run the "
        "module as root (become: true)"
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_files_for_a_user_without_become(run_module, host, gpasswd, warnings):
    os.chmod(host.path("/etc/shadow"), 0)
    os.chmod(host.path("/etc/sudoers.d/carol"), 0)
    result = _audit(run_module, host)
    assert result["shadow_readable"] is False
    assert result["unreadable_files"] == [dict(path="/etc/sudoers.d/carol", reason="Permission denied")]
    assert len(warnings) == 2


def test_unreadable_files_are_listed_and_warned_about(run_module, host, gpasswd, warnings):
    os.remove(host.path("/home/alice/.ssh/authorized_keys"))
    os.mkfifo(host.path("/home/alice/.ssh/authorized_keys"))
    result = _audit(run_module, host)
    assert result["unreadable_files"] == [dict(path="/home/alice/.ssh/authorized_keys", reason="not a regular file")]
    assert "alice" not in result["authorized_keys"]
    assert warnings == [
        "could not read /home/alice/.ssh/authorized_keys (not a regular file): the results leave them out; run the "
        "module as root (become: true)"
    ]


# --- enforce -------------------------------------------------------------------------------------------------


def test_enforce_removes_unexpected_members(run_module, host, gpasswd, warnings):
    host.write("/etc/group", "root:x:0:\nsudo:x:27:alice,bob,root\nwheel:x:10:bob,eve\nusers:x:100:\n")
    result = _audit(run_module, host, enforce=True, diff=True)
    assert result["changed"] is True
    assert result["removed"] == [
        dict(user="bob", group="sudo"),
        dict(user="bob", group="wheel"),
        dict(user="eve", group="wheel"),
    ]
    assert gpasswd.argvs() == [
        [GPASSWD, "--root", host.root, "-d", "bob", "sudo"],
        [GPASSWD, "--root", host.root, "-d", "bob", "wheel"],
        [GPASSWD, "--root", host.root, "-d", "eve", "wheel"],
    ]
    assert all(kwargs["environ_update"] == {"LC_ALL": "C"} for _args, kwargs in gpasswd.calls)
    assert host.read("/etc/group") == "root:x:0:\nsudo:x:27:alice,root\nwheel:x:10:\nusers:x:100:\n"
    assert result["diff"] == dict(
        before="sudo: alice, bob, root\nwheel: bob, dave, eve\n",
        after="sudo: alice, root\nwheel: dave\n",
        before_header="/etc/group (admin groups)",
        after_header="/etc/group (admin groups)",
    )
    # The report is the audit as found; sudoers grants are reported, not edited.
    assert result["admin_group_members"]["sudo"] == ["alice", "bob", "root"]
    assert "carol ALL=(ALL) NOPASSWD: ALL" in host.read("/etc/sudoers.d/carol")
    assert warnings == []
    again = _audit(run_module, host, enforce=True)
    assert again["changed"] is False and again["removed"] == []
    assert len(gpasswd.calls) == 3


def test_check_mode_reports_without_running(run_module, host, gpasswd):
    before = host.read("/etc/group")
    result = _audit(run_module, host, enforce=True, check_mode=True, diff=True)
    assert result["changed"] is True
    assert result["removed"] == [dict(user="bob", group="sudo")]
    assert result["diff"]["after"] == "sudo: alice\nwheel: dave\n"
    assert gpasswd.calls == []
    assert host.read("/etc/group") == before


def test_enforce_refuses_to_leave_no_administrator(run_module, host, gpasswd):
    before = host.read("/etc/group")
    for check_mode in (False, True):
        failed, result = run_module(
            privilege_audit.main, host.args(admins=["carl"], enforce=True), check_mode=check_mode
        )
        assert failed
        assert result["msg"] == (
            "refusing to enforce: removing alice from sudo and bob from sudo would leave no administrator: none of "
            "the declared admins (carl) would be in sudo or wheel or have a sudoers grant of ALL"
        )
        assert result["unexpected_admins"] == ["alice", "bob", "carol", "dave"]
    failed, result = run_module(privilege_audit.main, host.args(admins=[], enforce=True))
    assert failed and result["msg"].endswith("would leave no administrator: admins is empty")
    assert gpasswd.calls == []
    assert host.read("/etc/group") == before


def test_a_sudoers_grant_keeps_the_administrator(run_module, host, gpasswd):
    """carol is in no admin group, but sudoers grants her ALL: removing alice and bob is allowed."""
    result = _audit(run_module, host, admins=["carol"], enforce=True)
    assert result["removed"] == [dict(user="alice", group="sudo"), dict(user="bob", group="sudo")]
    assert result["missing_admins"] == ["carol"]


def test_gpasswd_failure_stops_and_reports(run_module, host, gpasswd):
    host.write("/etc/group", "root:x:0:\nsudo:x:27:alice,bob,eve\nwheel:x:10:\n")
    gpasswd.responses[("eve", "sudo")] = (3, "", "gpasswd: cannot lock /etc/group; try again later.\n")
    failed, result = run_module(privilege_audit.main, host.args(enforce=True))
    assert failed
    assert result["msg"] == "gpasswd could not remove eve from sudo (rc 3)"
    assert result["rc"] == 3 and "cannot lock" in result["stderr"]
    assert result["cmd"] == [GPASSWD, "--root", host.root, "-d", "eve", "sudo"]
    assert result["removed"] == [dict(user="bob", group="sudo")]
    assert result["changed"] is True


def test_missing_gpasswd_fails_only_when_something_is_to_be_removed(run_module, host, gpasswd, monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: None)
    failed, result = run_module(privilege_audit.main, host.args(enforce=True))
    assert failed and result["msg"] == "gpasswd was not found: enforce needs it (package shadow or passwd)"
    host.write("/etc/group", "root:x:0:\nsudo:x:27:alice\n")
    assert _audit(run_module, host, enforce=True)["changed"] is False
    assert gpasswd.calls == []


def test_enforce_on_nixos_warns_that_activation_restores_membership(run_module, host, gpasswd, warnings):
    host.write("/etc/NIXOS", "")
    result = _audit(run_module, host, enforce=True)
    assert result["changed"] is True
    assert len(warnings) == 1
    assert "NixOS rewrites /etc/group on the next activation" in warnings[0] and "remove bob" in warnings[0]


# --- failures ------------------------------------------------------------------------------------------------


def test_missing_passwd_fails(run_module, host, gpasswd):
    os.remove(host.path("/etc/passwd"))
    failed, result = run_module(privilege_audit.main, host.args())
    assert failed and result["msg"] == "cannot read %s/etc/passwd: it does not exist" % host.root


def test_bad_arguments_fail(run_module, host, gpasswd):
    failed, result = run_module(privilege_audit.main, host.args(admins=["bad name"], admin_groups=[]))
    assert failed
    assert result["msg"] == (
        "invalid arguments: admins[0] 'bad name' is not a user name; admin_groups is empty: name the groups that "
        "grant root through sudo"
    )
    assert gpasswd.calls == []
