"""The config_rollback module: listing configuration states and rolling back, on both backends.

Debian (``backend=git``) runs for real: real ``git`` on a temporary repository given as ``etc_dir``, through the
real ``run_command``. etckeeper is not installed here, and the module uses it only when ``<etc_dir>/.etckeeper``
exists, so these repositories take the plain-git path. ``test_real_etckeeper_*`` run the real etckeeper: Debian's
package, which scripts/setup-controller.sh unpacks into .cache/tools, or one whose root is in
``HOMELAB_ETCKEEPER_ROOT`` (``apt-get download etckeeper && dpkg -x etckeeper_*.deb DIR``), or an installed one;
without any of them they are skipped.

NixOS (``backend=nixos``): ``nix-env`` and ``switch-to-configuration`` cannot exist here. ``FakeNixosHostTestDouble``
stands in for both (``AnsibleModule.run_command`` is replaced by it) and keeps the system profile's generations
as symlinks in a temporary directory; it proves the module's flow, never that NixOS switches.
"""

import os
import shutil
import stat
import subprocess

import pytest
from ansible.module_utils import basic

from ansible_collections.homelab.nixos.plugins.module_utils import _config_history
from ansible_collections.homelab.nixos.plugins.modules import config_rollback

REAL_RUN_COMMAND = basic.AnsibleModule.run_command


# --- git --------------------------------------------------------------------------------------------------


def git(repo, *args, env=None):
    full_env = dict(os.environ, LC_ALL="C", **(env or {}))
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=full_env
    ).stdout.strip()


def write(repo, path, text, mode=None):
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    if mode is not None:
        target.chmod(mode)


def commit_all(repo, message):
    git(repo, "add", "--all")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


class Etc:
    """A temporary /etc in git with two commits: ``first`` and ``second``."""

    def __init__(self, root):
        self.path = root / "etc"
        self.path.mkdir()
        git(self.path, "init", "-q")
        git(self.path, "config", "user.name", "Test")
        git(self.path, "config", "user.email", "test@example.invalid")
        write(self.path, "hostname", "p620\n")
        write(self.path, "ssh/sshd_config", "Port 22\n")
        write(self.path, "shadow", "root:*:1::::::\n", mode=0o640)
        self.first = commit_all(self.path, "first")
        write(self.path, "ssh/sshd_config", "Port 2222\n")
        write(self.path, "shadow", "root:$y$new:2::::::\n")
        write(self.path, "nftables.conf", "table inet filter {}\n")
        (self.path / "hostname").unlink()
        self.second = commit_all(self.path, "second")

    def read(self, path):
        return (self.path / path).read_text()

    def exists(self, path):
        return (self.path / path).exists()

    def head(self):
        return git(self.path, "rev-parse", "HEAD")

    def tree(self, rev="HEAD"):
        return git(self.path, "rev-parse", rev + "^{tree}")

    def status(self):
        return git(self.path, "status", "--porcelain", "--untracked-files=all")

    def log(self):
        return git(self.path, "log", "--format=%s").splitlines()

    def args(self, **kw):
        return dict(backend="git", etc_dir=str(self.path), **kw)


@pytest.fixture
def etc(tmp_path):
    return Etc(tmp_path)


def test_list_returns_the_commits_newest_first(run_module, etc):
    failed, result = run_module(config_rollback.main, etc.args())
    assert not failed, result
    assert result["changed"] is False and result["backend"] == "git"
    assert [state["id"] for state in result["states"]] == [etc.second, etc.first]
    assert [state["description"] for state in result["states"]] == ["second", "first"]
    assert [state["current"] for state in result["states"]] == [True, False]
    assert result["current"] == etc.second
    assert result["uncommitted_changes"] is False and result["etckeeper"] is False
    state = result["states"][0]
    assert state["date"].endswith("Z") and isinstance(state["timestamp"], int)


def test_list_honours_count_and_sees_uncommitted_changes(run_module, etc):
    write(etc.path, "new.conf", "x\n")
    failed, result = run_module(config_rollback.main, etc.args(count=1))
    assert not failed
    assert [state["id"] for state in result["states"]] == [etc.second]
    assert result["uncommitted_changes"] is True


def test_rollback_to_previous_restores_the_files_and_commits(run_module, etc):
    failed, result = run_module(config_rollback.main, etc.args(state="rolled_back", to="previous"))
    assert not failed, result
    assert result["changed"] is True
    assert result["target"] == etc.first and result["before"] == etc.second
    assert result["files"] == [
        {"path": "hostname", "action": "restore"},
        {"path": "nftables.conf", "action": "remove"},
        {"path": "shadow", "action": "restore"},
        {"path": "ssh/sshd_config", "action": "restore"},
    ]
    assert etc.read("ssh/sshd_config") == "Port 22\n" and etc.read("hostname") == "p620\n"
    assert not etc.exists("nftables.conf")
    # One new commit whose tree is the first commit's; nothing left uncommitted.
    assert result["commit"] == etc.head() and [c["id"] for c in result["commits"]] == [etc.head()]
    assert etc.log()[0] == "homelab: rollback to %s (previous)" % etc.first
    assert etc.tree() == etc.tree(etc.first) and etc.status() == ""


def test_rollback_keeps_owner_and_mode_of_rewritten_files(run_module, etc):
    failed, _result = run_module(config_rollback.main, etc.args(state="rolled_back", to=etc.first))
    assert not failed
    assert stat.S_IMODE((etc.path / "shadow").stat().st_mode) == 0o640
    # A file that comes back is private (git wrote it with umask 077; etckeeper would set its recorded mode).
    assert stat.S_IMODE((etc.path / "hostname").stat().st_mode) & 0o077 == 0


def test_rollback_to_the_current_content_changes_nothing(run_module, etc):
    failed, first = run_module(config_rollback.main, etc.args(state="rolled_back", to=etc.first))
    assert not failed and first["changed"] is True
    head = etc.head()
    failed, again = run_module(config_rollback.main, etc.args(state="rolled_back", to=etc.first))
    assert not failed
    assert again["changed"] is False and again["files"] == [] and again["commits"] == []
    assert etc.head() == head


def test_uncommitted_changes_are_committed_first_and_previous_means_head(run_module, etc):
    write(etc.path, "ssh/sshd_config", "Port 2200\n")
    write(etc.path, "local.conf", "mine\n")
    failed, result = run_module(config_rollback.main, etc.args(state="rolled_back", to="previous"))
    assert not failed, result
    # previous = the last commit: the uncommitted state is the current one, and it is kept as a commit.
    assert result["target"] == etc.second
    safety = result["before"]
    assert safety not in (etc.first, etc.second)
    assert [c["message"] for c in result["commits"]] == [
        "homelab: before rollback to %s" % etc.second,
        "homelab: rollback to %s (previous)" % etc.second,
    ]
    assert git(etc.path, "show", safety + ":ssh/sshd_config") == "Port 2200"
    assert git(etc.path, "show", safety + ":local.conf") == "mine"
    assert etc.read("ssh/sshd_config") == "Port 2222\n" and not etc.exists("local.conf")
    assert etc.tree() == etc.tree(etc.second)

    # Rolling forward brings the uncommitted state back.
    failed, forward = run_module(config_rollback.main, etc.args(state="rolled_back", to=safety))
    assert not failed and forward["changed"] is True
    assert etc.read("ssh/sshd_config") == "Port 2200\n" and etc.read("local.conf") == "mine\n"


def test_check_mode_reports_and_changes_nothing(run_module, etc):
    write(etc.path, "local.conf", "mine\n")
    head, status = etc.head(), etc.status()
    failed, result = run_module(config_rollback.main, etc.args(state="rolled_back", to=etc.first), check_mode=True)
    assert not failed
    assert result["changed"] is True and result["uncommitted_changes"] is True
    assert {"path": "local.conf", "action": "remove"} in result["files"]
    assert result["commits"] == [] and "commit" not in result
    assert etc.head() == head and etc.status() == status
    assert etc.read("ssh/sshd_config") == "Port 2222\n"


def test_diff_shows_the_state_ids(run_module, etc):
    failed, result = run_module(
        config_rollback.main, etc.args(state="rolled_back", to="previous"), check_mode=True, diff=True
    )
    assert not failed
    assert result["diff"]["before"] == etc.second + "\n"
    assert result["diff"]["after"] == etc.first + "\n"
    assert result["diff"]["before_header"] == str(etc.path)


def test_ignored_paths_and_gitignore_are_never_rolled_back(run_module, etc):
    # A secret tracked in the first state is kept out of the repository later.
    write(etc.path, "grafana/grafana.ini", "secret_key = old\n")
    with_secret = commit_all(etc.path, "with the secret")
    write(etc.path, ".gitignore", "/grafana/grafana.ini\n")
    git(etc.path, "rm", "-q", "--cached", "grafana/grafana.ini")
    commit_all(etc.path, "secret ignored")
    write(etc.path, "grafana/grafana.ini", "secret_key = new\n")
    failed, result = run_module(config_rollback.main, etc.args(state="rolled_back", to=with_secret))
    assert not failed, result
    assert result["kept"] == [".gitignore", "grafana/grafana.ini"]
    assert all(entry["path"] not in result["kept"] for entry in result["files"])
    assert etc.read("grafana/grafana.ini") == "secret_key = new\n"
    assert etc.read(".gitignore") == "/grafana/grafana.ini\n"
    assert "grafana/grafana.ini" not in git(etc.path, "ls-files")


def test_paths_with_pattern_characters_are_literal(run_module, etc):
    write(etc.path, "weird/[ab]*.conf", "literal\n")
    write(etc.path, "weird/a.conf", "keep me\n")
    base = commit_all(etc.path, "weird names")
    write(etc.path, "weird/[ab]*.conf", "changed\n")
    commit_all(etc.path, "changed the weird one")
    failed, result = run_module(config_rollback.main, etc.args(state="rolled_back", to=base))
    assert not failed, result
    assert result["files"] == [{"path": "weird/[ab]*.conf", "action": "restore"}]
    assert etc.read("weird/[ab]*.conf") == "literal\n" and etc.read("weird/a.conf") == "keep me\n"


def test_a_file_replaced_by_a_directory_comes_back(run_module, etc):
    write(etc.path, "conf.d", "was a file\n")
    base = commit_all(etc.path, "conf.d is a file")
    (etc.path / "conf.d").unlink()
    write(etc.path, "conf.d/10-x.conf", "now a directory\n")
    commit_all(etc.path, "conf.d is a directory")
    failed, result = run_module(config_rollback.main, etc.args(state="rolled_back", to=base))
    assert not failed, result
    assert etc.read("conf.d") == "was a file\n"
    assert etc.tree() == etc.tree(base)


@pytest.mark.parametrize(
    ("to", "message"),
    [
        ("0123456789abcdef0123", "has no commit 0123456789abcdef0123: state=listed shows its commits"),
        ("--all", "to must be 'previous' or a commit of"),
        ("HEAD; rm -rf /", "to must be 'previous' or a commit of"),
    ],
)
def test_unknown_or_bad_commit_fails_and_changes_nothing(run_module, etc, to, message):
    head = etc.head()
    failed, result = run_module(config_rollback.main, etc.args(state="rolled_back", to=to))
    assert failed and message in result["msg"]
    assert etc.head() == head and etc.status() == ""


def test_previous_without_a_previous_state_fails(run_module, tmp_path):
    repo = tmp_path / "single"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.name", "Test")
    git(repo, "config", "user.email", "test@example.invalid")
    write(repo, "hostname", "x\n")
    commit_all(repo, "only")
    failed, result = run_module(
        config_rollback.main, dict(backend="git", etc_dir=str(repo), state="rolled_back", to="previous")
    )
    assert failed and "has a single commit" in result["msg"] and "no previous state" in result["msg"]


def test_not_a_repository_fails_clearly(run_module, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    failed, result = run_module(config_rollback.main, dict(backend="git", etc_dir=str(plain)))
    assert failed and result["msg"].startswith("%s is not a git repository" % plain)
    assert "config_history role" in result["msg"]


def test_a_subdirectory_of_a_repository_is_refused(run_module, etc):
    failed, result = run_module(config_rollback.main, dict(backend="git", etc_dir=str(etc.path / "ssh")))
    assert failed and "is not the top of a git repository" in result["msg"]


def test_a_repository_without_commits_fails_clearly(run_module, tmp_path):
    repo = tmp_path / "empty"
    repo.mkdir()
    git(repo, "init", "-q")
    failed, result = run_module(config_rollback.main, dict(backend="git", etc_dir=str(repo)))
    assert failed and "has no commit yet" in result["msg"]


def test_commits_without_a_configured_identity(run_module, etc, tmp_path, monkeypatch):
    git(etc.path, "config", "--unset", "user.name")
    git(etc.path, "config", "--unset", "user.email")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.gitconfig either
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    write(etc.path, "local.conf", "mine\n")
    failed, result = run_module(config_rollback.main, etc.args(state="rolled_back", to="previous"))
    assert not failed, result
    assert git(etc.path, "log", "-1", "--format=%an <%ae>") == "homelab.nixos <root@localhost>"


def test_rolled_back_needs_to(run_module, etc):
    failed, result = run_module(config_rollback.main, etc.args(state="rolled_back"))
    assert failed and "to" in result["msg"]


def test_count_out_of_range_fails(run_module, etc):
    failed, result = run_module(config_rollback.main, etc.args(count=0))
    assert failed and "count must be an integer from 1 to 1000" in result["msg"]


def test_a_failing_git_step_names_the_state_to_roll_forward_to(run_module, etc, monkeypatch):
    def run_command(self, args, **kwargs):
        if "checkout" in args:
            return 128, "", "fatal: unable to write new index file"
        return REAL_RUN_COMMAND(self, args, **kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    failed, result = run_module(config_rollback.main, etc.args(state="rolled_back", to="previous"))
    assert failed
    assert result["msg"].startswith("git checkout failed (rc 128): fatal: unable to write new index file")
    assert result["msg"].endswith("(roll forward with to=%s)" % etc.second)
    assert result["rc"] == 128 and result["before"] == etc.second


def test_etckeeper_metadata_without_etckeeper_fails(run_module, etc, monkeypatch):
    write(etc.path, ".etckeeper", "# Generated by etckeeper.  Do not edit.\n")
    commit_all(etc.path, "metadata")
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", _bin_path_without("etckeeper"))
    failed, result = run_module(config_rollback.main, etc.args(state="rolled_back", to="previous"))
    assert failed and "etckeeper is not installed" in result["msg"]


def _bin_path_without(name):
    real = basic.AnsibleModule.get_bin_path

    def get_bin_path(self, arg, required=False, opt_dirs=None):
        if arg == name:
            if required:
                self.fail_json(msg="Failed to find required executable %s" % arg)
            return None
        return real(self, arg, required=required, opt_dirs=opt_dirs)

    return get_bin_path


# --- the real etckeeper, when it is available --------------------------------------------------------------


# scripts/setup-controller.sh unpacks Debian's etckeeper here.
_UNPACKED = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))),
    ".cache",
    "tools",
)
_UNPACKED = _UNPACKED if os.access(os.path.join(_UNPACKED, "usr", "bin", "etckeeper"), os.X_OK) else None


@pytest.fixture
def etckeeper(monkeypatch):
    """PATH (and ETCKEEPER_CONF_DIR for an unpacked package) so that the real etckeeper runs."""
    root = os.environ.get("HOMELAB_ETCKEEPER_ROOT") or _UNPACKED
    if root:
        binary = os.path.join(root, "usr", "bin", "etckeeper")
        if not os.access(binary, os.X_OK):
            pytest.fail("HOMELAB_ETCKEEPER_ROOT=%s has no usr/bin/etckeeper" % root)
        monkeypatch.setenv("PATH", os.path.dirname(binary) + os.pathsep + os.environ["PATH"])
        monkeypatch.setenv("ETCKEEPER_CONF_DIR", os.path.join(root, "etc", "etckeeper"))
        return binary
    binary = shutil.which("etckeeper")
    if binary is None:
        pytest.skip("etckeeper is not available (set HOMELAB_ETCKEEPER_ROOT to an unpacked etckeeper package)")
    return binary


def etckeeper_repo(root, binary):
    etc = root / "etc"
    write(etc, "ssh/sshd_config", "Port 22\n")
    write(etc, "shadow", "root:*:1::::::\n", mode=0o640)
    (etc / "empty.d").mkdir()
    subprocess.run([binary, "init", "-d", str(etc)], check=True, capture_output=True)
    git(etc, "config", "user.name", "Test")
    git(etc, "config", "user.email", "test@example.invalid")
    subprocess.run([binary, "commit", "-d", str(etc), "first"], check=True, capture_output=True)
    return etc


def test_real_etckeeper_rollback_restores_modes(run_module, tmp_path, etckeeper):
    etc = etckeeper_repo(tmp_path, etckeeper)
    first = git(etc, "rev-parse", "HEAD")
    (etc / "shadow").chmod(0o644)
    write(etc, "ssh/sshd_config", "Port 2222\n")
    subprocess.run([etckeeper, "commit", "-d", str(etc), "second"], check=True, capture_output=True)
    (etc / "empty.d").rmdir()

    failed, result = run_module(
        config_rollback.main, dict(backend="git", etc_dir=str(etc), state="rolled_back", to=first)
    )
    assert not failed, result
    assert result["etckeeper"] is True
    assert {"path": ".etckeeper", "action": "restore"} in result["files"]
    assert (etc / "ssh/sshd_config").read_text() == "Port 22\n"
    # etckeeper init applied the first commit's metadata: the mode, and the empty directory.
    assert stat.S_IMODE((etc / "shadow").stat().st_mode) == 0o640
    assert (etc / "empty.d").is_dir()
    assert git(etc, "log", "-1", "--format=%s") == "homelab: rollback to %s" % first
    assert git(etc, "rev-parse", "HEAD^{tree}") == git(etc, "rev-parse", first + "^{tree}")
    assert git(etc, "status", "--porcelain") == ""


def test_real_etckeeper_records_a_mode_change_before_rolling_back(run_module, tmp_path, etckeeper):
    etc = etckeeper_repo(tmp_path, etckeeper)
    write(etc, "ssh/sshd_config", "Port 2222\n")
    subprocess.run([etckeeper, "commit", "-d", str(etc), "second"], check=True, capture_output=True)
    second = git(etc, "rev-parse", "HEAD")
    (etc / "shadow").chmod(0o600)  # a change git alone does not see

    failed, result = run_module(
        config_rollback.main, dict(backend="git", etc_dir=str(etc), state="rolled_back", to="previous")
    )
    assert not failed, result
    # The mode change made the files differ from the last commit: previous is that commit.
    assert result["target"] == second and result["before"] != second
    assert "maybe chmod 0600 './shadow'" in git(etc, "show", result["before"] + ":.etckeeper")
    assert stat.S_IMODE((etc / "shadow").stat().st_mode) == 0o640


def test_real_etckeeper_never_brings_back_an_ignored_secret_or_its_mode(run_module, tmp_path, etckeeper):
    etc = etckeeper_repo(tmp_path, etckeeper)
    write(etc, "secret.pw", "old\n", mode=0o644)
    subprocess.run([etckeeper, "commit", "-d", str(etc), "secret tracked"], check=True, capture_output=True)
    with_secret = git(etc, "rev-parse", "HEAD")
    # What the config_history role does: ignore the secret and untrack it.
    with open(etc / ".gitignore", "a") as f:
        f.write("/secret.pw\n")
    git(etc, "rm", "-q", "--cached", "secret.pw")
    write(etc, "secret.pw", "new\n", mode=0o600)
    write(etc, "ssh/sshd_config", "Port 2222\n")
    subprocess.run([etckeeper, "commit", "-d", str(etc), "secret ignored"], check=True, capture_output=True)

    args = dict(backend="git", etc_dir=str(etc), state="rolled_back", to=with_secret)
    failed, result = run_module(config_rollback.main, args)
    assert not failed, result
    assert result["files"] == [{"path": "ssh/sshd_config", "action": "restore"}]
    assert {".gitignore", "secret.pw"} <= set(result["kept"])
    assert (etc / "secret.pw").read_text() == "new\n"
    assert stat.S_IMODE((etc / "secret.pw").stat().st_mode) == 0o600
    assert "secret.pw" not in git(etc, "ls-files")
    # The old .etckeeper differs only in the secret's entry (and in how etckeeper wrote paths): done.
    failed, again = run_module(config_rollback.main, args)
    assert not failed and again["changed"] is False and again["files"] == []


def test_metadata_entries_normalise_paths():
    assert _config_history.metadata_entry("maybe chmod 0640 './shadow'\n") == ("maybe", "chmod", "0640", "shadow")
    assert _config_history.metadata_entry("maybe chmod 0640 'shadow'") == ("maybe", "chmod", "0640", "shadow")
    assert _config_history.metadata_entry("mkdir -p './it'\"'\"'s'") == ("mkdir", "-p", "it's")
    assert _config_history.metadata_entry("# Generated by etckeeper.  Do not edit.") is None
    assert _config_history.metadata_path(_config_history.metadata_entry("maybe chmod 0755 '.'")) is None


def test_filter_metadata_drops_only_the_ignored_paths():
    text = "# Generated by etckeeper.\n\nmaybe chmod 0755 './grafana'\nmaybe chmod 0640 './grafana/grafana.ini'\n"
    assert _config_history.filter_metadata(text, {"grafana/grafana.ini"}) == (
        "# Generated by etckeeper.\n\nmaybe chmod 0755 './grafana'\n"
    )


# --- NixOS ------------------------------------------------------------------------------------------------


class FakeNixosHostTestDouble:
    """TEST DOUBLE for ``nix-env`` and ``switch-to-configuration``, which cannot exist on this controller.

    The system profile lives in ``root``: ``profiles/system`` -> ``system-N-link`` -> ``store/<hash>-nixos-system-
    p620-N``, and ``run/current-system`` is the running system. It answers ``nix-env --list-generations``
    (``(current)`` on the profile's generation), ``--rollback`` and ``--switch-generation N`` by moving the
    profile link, and ``<system>/bin/switch-to-configuration switch`` by pointing ``current-system`` at
    ``<system>``, unless ``fail_switch`` holds that generation number (then it exits 1, after activating half
    of it when ``half_activate`` is true). Every call is recorded.
    """

    def __init__(self, root, generations=(39, 40, 41), current=41):
        self.root = root
        self.store = root / "store"
        self.profiles = root / "profiles"
        self.store.mkdir(parents=True)
        self.profiles.mkdir()
        (root / "run").mkdir()
        self.paths = _config_history.NixPaths(
            system_profile=str(self.profiles / "system"), current_system=str(root / "run" / "current-system")
        )
        self.calls = []
        self.fail_switch = set()
        self.half_activate = False
        for number in generations:
            system = self.system(number)
            os.makedirs(os.path.join(system, "bin"))
            os.symlink(system, self.paths.generation_link(number))
        os.symlink("system-%d-link" % current, self.paths.system_profile)
        os.symlink(self.system(current), self.paths.current_system)

    def system(self, number):
        return str(self.store / ("%032d-nixos-system-p620-%d" % (number, number)))

    @property
    def profile_generation(self):
        return int(os.readlink(self.paths.system_profile).split("-")[1])

    @property
    def running(self):
        return os.path.realpath(self.paths.current_system)

    def generations(self):
        return sorted(int(name.split("-")[1]) for name in os.listdir(self.profiles) if name.startswith("system-"))

    def _set_profile(self, number):
        os.unlink(self.paths.system_profile)
        os.symlink("system-%d-link" % number, self.paths.system_profile)

    def __call__(self, args, **kwargs):
        self.calls.append(list(args))
        tool = os.path.basename(args[0])
        if tool == "nix-env":
            return self._nix_env(args[1:])
        if tool == "switch-to-configuration":
            return self._switch(os.path.dirname(os.path.dirname(args[0])), args[1:])
        raise AssertionError("unexpected command %r" % (args,))

    def _nix_env(self, args):
        current = self.profile_generation
        if args == ["--list-generations", "-p", self.paths.system_profile]:
            lines = [
                "  %d   2026-11-%02d 10:11:12   %s" % (n, n - 20, "(current)" if n == current else "")
                for n in self.generations()
            ]
            return 0, "\n".join(lines) + "\n", ""
        if args == ["-p", self.paths.system_profile, "--rollback"]:
            older = [n for n in self.generations() if n < current]
            if not older:
                return 1, "", "error: no generation older than the current (%d) exists\n" % current
            self._set_profile(max(older))
            return 0, "", "switching profile from version %d to %d\n" % (current, max(older))
        if args[:3] == ["-p", self.paths.system_profile, "--switch-generation"]:
            number = int(args[3])
            if number not in self.generations():
                return 1, "", "error: generation %d does not exist\n" % number
            self._set_profile(number)
            return 0, "", "switching profile from version %d to %d\n" % (current, number)
        raise AssertionError("unexpected nix-env arguments %r" % (args,))

    def _switch(self, system, args):
        assert args == ["switch"]
        number = int(system.rsplit("-", 1)[1])
        if number in self.fail_switch:
            if self.half_activate:
                os.unlink(self.paths.current_system)
                os.symlink(system, self.paths.current_system)
            return 1, "activating the configuration...\n", "Failed to start unit sshd.service\n"
        os.unlink(self.paths.current_system)
        os.symlink(system, self.paths.current_system)
        return 0, "activating the configuration...\n", ""

    def mutating_calls(self):
        return [call for call in self.calls if "--list-generations" not in call]


@pytest.fixture
def nixos(tmp_path, monkeypatch):
    """The test double wired into the module: its paths, its run_command, a placeholder nix-env on PATH."""
    fake = FakeNixosHostTestDouble(tmp_path / "host")
    monkeypatch.setattr(config_rollback, "NixPaths", lambda: fake.paths)

    def run_command(self, args, **kwargs):
        return fake(args, **kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    placeholder = bindir / "nix-env"
    placeholder.write_text("#!/bin/sh\n# placeholder: the test double answers instead\nexit 99\n")
    placeholder.chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir) + os.pathsep + os.environ["PATH"])
    return fake


def test_nixos_list_returns_the_generations_newest_first(run_module, nixos):
    failed, result = run_module(config_rollback.main, dict(backend="nixos", count=2))
    assert not failed, result
    assert result["backend"] == "nixos" and result["changed"] is False
    assert [state["id"] for state in result["states"]] == ["41", "40"]
    assert result["states"][0] == dict(
        id="41", generation=41, date="2026-11-21 10:11:12", description="nixos-system-p620-41", current=True
    )
    assert result["current"] == "41" and result["running_system"] == nixos.system(41)


def test_auto_backend_is_nixos_when_the_system_profile_exists(run_module, nixos):
    failed, result = run_module(config_rollback.main, {})
    assert not failed and result["backend"] == "nixos"


def test_auto_backend_is_git_without_a_system_profile(run_module, etc, monkeypatch, tmp_path):
    monkeypatch.setattr(config_rollback, "NixPaths", lambda: _config_history.NixPaths(str(tmp_path / "none")))
    failed, result = run_module(config_rollback.main, dict(etc_dir=str(etc.path)))
    assert not failed and result["backend"] == "git"


def test_nixos_previous_rolls_back_and_activates(run_module, nixos):
    failed, result = run_module(config_rollback.main, dict(backend="nixos", state="rolled_back", to="previous"))
    assert not failed, result
    assert result["changed"] is True
    assert (result["before"], result["target"]) == ("41", "40")
    assert nixos.mutating_calls() == [
        [nixos.calls[0][0], "-p", nixos.paths.system_profile, "--rollback"],
        [os.path.join(nixos.system(40), "bin", "switch-to-configuration"), "switch"],
    ]
    assert nixos.profile_generation == 40 and nixos.running == nixos.system(40)
    assert result["running_system"] == nixos.system(40)
    assert [step["rc"] for step in result["commands"]] == [0, 0]


def test_nixos_rollback_to_a_generation_number(run_module, nixos):
    failed, result = run_module(config_rollback.main, dict(backend="nixos", state="rolled_back", to="39"))
    assert not failed, result
    assert nixos.mutating_calls()[0][1:] == ["-p", nixos.paths.system_profile, "--switch-generation", "39"]
    assert nixos.profile_generation == 39 and nixos.running == nixos.system(39)


def test_nixos_current_generation_changes_nothing(run_module, nixos):
    failed, result = run_module(config_rollback.main, dict(backend="nixos", state="rolled_back", to="41"))
    assert not failed and result["changed"] is False
    assert nixos.mutating_calls() == []


def test_nixos_profile_at_target_but_another_system_running_is_activated(run_module, nixos):
    os.unlink(nixos.paths.current_system)
    os.symlink(nixos.system(40), nixos.paths.current_system)  # e.g. after nixos-rebuild test
    failed, result = run_module(config_rollback.main, dict(backend="nixos", state="rolled_back", to="41"))
    assert not failed and result["changed"] is True
    assert nixos.mutating_calls() == [[os.path.join(nixos.system(41), "bin", "switch-to-configuration"), "switch"]]
    assert nixos.running == nixos.system(41)


def test_nixos_check_mode_changes_nothing(run_module, nixos):
    failed, result = run_module(
        config_rollback.main, dict(backend="nixos", state="rolled_back", to="previous"), check_mode=True, diff=True
    )
    assert not failed and result["changed"] is True
    assert nixos.mutating_calls() == []
    assert nixos.profile_generation == 41
    assert result["diff"]["before"].startswith("generation 41 ")
    assert result["diff"]["after"] == "generation 40 (running %s)\n" % nixos.system(40)


@pytest.mark.parametrize(
    ("to", "message"),
    [
        ("42", "there is no system generation 42; the host has 39, 40, 41"),
        ("abc", "to must be 'previous' or a generation number on NixOS, got 'abc'"),
        ("-1", "to must be 'previous' or a generation number on NixOS"),
    ],
)
def test_nixos_unknown_generation_fails(run_module, nixos, to, message):
    failed, result = run_module(config_rollback.main, dict(backend="nixos", state="rolled_back", to=to))
    assert failed and message in result["msg"]
    assert nixos.mutating_calls() == []


def test_nixos_previous_of_the_oldest_fails(run_module, tmp_path, monkeypatch, nixos):
    nixos._set_profile(39)
    failed, result = run_module(config_rollback.main, dict(backend="nixos", state="rolled_back", to="previous"))
    assert failed and result["msg"] == "generation 39 is the oldest system generation: there is no previous one"
    assert nixos.mutating_calls() == []


@pytest.mark.parametrize("half_activate", [False, True])
def test_nixos_failed_activation_goes_back(run_module, nixos, half_activate):
    nixos.fail_switch = {40}
    nixos.half_activate = half_activate
    failed, result = run_module(config_rollback.main, dict(backend="nixos", state="rolled_back", to="previous"))
    assert failed
    assert result["msg"] == (
        "switch-to-configuration switch of generation 40 failed (rc 1): Failed to start unit sshd.service; "
        "went back to generation 41 (%s)" % nixos.system(41)
    )
    assert result["rc"] == 1 and "Failed to start unit" in result["stderr"]
    assert nixos.profile_generation == 41 and nixos.running == nixos.system(41)
    assert [call[-1] for call in nixos.mutating_calls()] == ["--rollback", "switch", "41", "switch"]


def test_nixos_failed_activation_and_failed_way_back_says_both(run_module, nixos):
    nixos.fail_switch = {40, 41}
    failed, result = run_module(config_rollback.main, dict(backend="nixos", state="rolled_back", to="40"))
    assert failed
    assert "switch-to-configuration switch of generation 40 failed (rc 1)" in result["msg"]
    assert "going back to generation 41 failed too: its switch-to-configuration switch (rc 1)" in result["msg"]


def test_nixos_list_failure_is_fail_json_with_rc_and_stderr(run_module, nixos, monkeypatch):
    def broken(self, args, **kwargs):
        return 1, "", "error: opening lock file '/nix/var/nix/profiles/system.lock': Permission denied\n"

    monkeypatch.setattr(basic.AnsibleModule, "run_command", broken)
    failed, result = run_module(config_rollback.main, dict(backend="nixos"))
    assert failed and result["msg"].startswith("nix-env --list-generations failed (rc 1): error: opening lock file")
    assert result["rc"] == 1 and "Permission denied" in result["stderr"]


def test_nixos_without_the_system_profile_fails(run_module, tmp_path, monkeypatch, nixos):
    monkeypatch.setattr(config_rollback, "NixPaths", lambda: _config_history.NixPaths(str(tmp_path / "missing")))
    failed, result = run_module(config_rollback.main, dict(backend="nixos"))
    assert failed and "does not exist: this is not a NixOS host" in result["msg"]


# --- parsing ----------------------------------------------------------------------------------------------


def test_parse_generations():
    text = "  40   2026-11-19 09:00:00   \n  41   2026-11-20 10:11:12   (current)\n\n"
    assert _config_history.parse_generations(text) == [
        dict(number=40, date="2026-11-19 09:00:00", current=False),
        dict(number=41, date="2026-11-20 10:11:12", current=True),
    ]


def test_parse_generations_refuses_what_it_does_not_know():
    with pytest.raises(_config_history.HistoryError, match="cannot read this line"):
        _config_history.parse_generations("  41   yesterday   (current)\n")
