"""The nixos_rebuild module's wiring: argument spec, binaries, results and failures.

The host is ``FakeNixosRebuild``, the test double of test_rebuild.py (it proves the module's flow, never that
NixOS works); ``AnsibleModule.run_command`` is replaced by it, keeping run_command's handling of a command
that cannot be started: fail_json, unless ``handle_exceptions=False``.
"""

import importlib.util
import os
import stat

import pytest
import yaml
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.homelab.nixos.plugins.module_utils import _rebuild
from ansible_collections.homelab.nixos.plugins.modules import nixos_rebuild

_spec = importlib.util.spec_from_file_location(
    "homelab_nixos_rebuild_doubles",
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils", "test_rebuild.py"),
)
doubles = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(doubles)

FLAKE = "/etc/nixos#p620"


@pytest.fixture
def host(tmp_path, monkeypatch):
    """The fake NixOS host, wired into the module: its paths, its run_command, a nixos-rebuild file."""
    fake = doubles.FakeNixosRebuild(tmp_path / "host")
    monkeypatch.setattr(nixos_rebuild, "SystemPaths", lambda: fake.paths)

    def run_command(self, args, handle_exceptions=True, **kwargs):
        try:
            return fake(args, **kwargs)
        except OSError as e:  # what AnsibleModule.run_command does with an OSError
            if handle_exceptions:
                self.fail_json(rc=e.errno, stdout="", stderr="", msg="Error executing command.", cmd=args)
            raise

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    binary = tmp_path / "bin" / "nixos-rebuild"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\nexit 99\n")
    binary.chmod(0o755)
    fake.binary = str(binary)
    return fake


@pytest.fixture
def sshd():
    server = doubles.BannerServer()
    yield server
    server.close()


@pytest.fixture
def args(host, sshd, tmp_path):
    (tmp_path / "remote_tmp").mkdir()

    def make(**kw):
        values = {
            "flake": FLAKE,
            "nixos_rebuild_path": host.binary,
            "confirm_ssh_port": sshd.port,
            "_ansible_remote_tmp": str(tmp_path / "remote_tmp"),
        }
        values.update(kw)
        return values

    return make


def test_switch_changes(run_module, host, args):
    host.config = "beta"
    failed, result = run_module(nixos_rebuild.main, args())
    assert not failed, result
    assert result["changed"] is True and result["confirmed"] is True
    assert (result["old_generation"], result["new_generation"]) == (1, 2)
    assert result["new_system"] == host.system("beta") == host.current
    assert result["cmd"] == [host.binary, "switch", "--flake", FLAKE]


def test_switch_without_change(run_module, host, args):
    failed, result = run_module(nixos_rebuild.main, args())
    assert not failed and result["changed"] is False


def test_check_mode_builds_only(run_module, host, args):
    host.config = "beta"
    failed, result = run_module(nixos_rebuild.main, args(), check_mode=True)
    assert not failed and result["changed"] is True and result["would_change"] is True
    assert [call[1] for call in host.commands("nixos-rebuild")] == ["build"]
    assert host.current == host.system("alpha")


def test_diff_mode_returns_closure_diff(run_module, host, args):
    host.config = "beta"
    failed, result = run_module(nixos_rebuild.main, args(), diff=True)
    assert not failed
    assert result["diff"]["before_header"] == host.system("alpha")
    assert result["closure_diff"]["method"] == "diff-closures"


def test_confirmation_failure_rolls_back_and_fails(run_module, host, args):
    host.config = "beta"
    host.health["false"] = 1
    failed, result = run_module(nixos_rebuild.main, args(health_commands=[["false"]], confirm_timeout=1))
    assert failed
    assert result["msg"].startswith("confirmation of %s failed: health command false exited 1" % host.system("beta"))
    assert result["msg"].endswith("rolled back to generation 1 (%s)" % host.system("alpha"))
    assert result["rolled_back"] is True and result["changed"] is True
    assert host.current == host.system("alpha")


def test_rebuild_failure_is_fail_json_with_rc_and_stderr(run_module, host, args):
    host.fail = (1, "error: undefined variable 'ngnix'")
    failed, result = run_module(nixos_rebuild.main, args())
    assert failed
    assert result["msg"] == "nixos-rebuild switch failed (rc 1): error: undefined variable 'ngnix'"
    assert result["rc"] == 1 and "ngnix" in result["stderr"] and result["changed"] is False


def test_unknown_action_is_rejected_by_choices(run_module, args):
    failed, result = run_module(nixos_rebuild.main, args(action="rollback"))
    assert (
        failed and "value of action must be one of: switch, boot, test, build, dry-build, dry-activate" in result["msg"]
    )


def test_flake_and_nixos_config_are_mutually_exclusive(run_module, args):
    failed, result = run_module(nixos_rebuild.main, args(nixos_config="/etc/nixos/configuration.nix"))
    assert failed and "mutually exclusive" in result["msg"]


def test_bad_input_fails_before_looking_for_binaries(run_module, host, args, monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda *a, **kw: pytest.fail("looked up %r" % (a,)))
    failed, result = run_module(nixos_rebuild.main, args(confirm_timeout=0, nixos_rebuild_path=None))
    assert failed and result["msg"] == "confirm_timeout must be an integer from 1 to 86400, got 0"
    failed, result = run_module(nixos_rebuild.main, args(health_urls=["file:///etc/passwd"]))
    assert failed and "must be an http:// or https:// URL" in result["msg"]
    assert host.calls == []


def test_missing_nixos_rebuild_fails_clearly(run_module, host, args, monkeypatch, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    failed, result = run_module(nixos_rebuild.main, args(nixos_rebuild_path=None))
    assert failed and 'Failed to find required executable "nixos-rebuild"' in result["msg"]
    assert host.calls == []


def test_nixos_rebuild_path_must_be_executable(run_module, host, args, tmp_path):
    plain = tmp_path / "nixos-rebuild.txt"
    plain.write_text("")
    plain.chmod(stat.S_IRUSR | stat.S_IWUSR)
    failed, result = run_module(nixos_rebuild.main, args(nixos_rebuild_path=str(plain)))
    assert failed and result["msg"] == "nixos_rebuild_path %s is not an executable file" % plain
    assert host.calls == []


def test_warnings_reach_ansible(run_module, host, args, monkeypatch):
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, warning: warnings.append(warning))
    host.config = "beta"
    host.diff_closures_ok = host.requisites_ok = False
    failed, result = run_module(nixos_rebuild.main, args(), diff=True)
    assert not failed and result["closure_diff"] is None
    assert len(warnings) == 1 and warnings[0].startswith("no closure diff: nix store diff-closures (rc 1)")


def test_documentation_matches_the_argument_spec():
    doc = yaml.safe_load(nixos_rebuild.DOCUMENTATION)
    yaml.safe_load(nixos_rebuild.EXAMPLES)
    yaml.safe_load(nixos_rebuild.RETURN)
    with patch_module_args({}):
        spec = nixos_rebuild.build_module().argument_spec
    assert set(spec) == set(doc["options"])
    for name, option in spec.items():
        documented = doc["options"][name]
        assert documented["type"] == option["type"], name
        assert documented.get("default") == option.get("default"), name
        assert documented.get("choices") == option.get("choices"), name
        assert documented.get("elements") == option.get("elements"), name


def test_missing_binary_during_rollback_does_not_end_the_module_half_way(run_module, host, args):
    host.config = "beta"
    host.health["false"] = 1
    host.missing_on_rollback = True
    failed, result = run_module(nixos_rebuild.main, args(health_commands=[["false"]], confirm_timeout=1))
    alpha = host.system("alpha")
    assert failed and result["msg"].endswith("rolled back to generation 3 (%s)" % alpha)
    steps = result["rollback"]
    assert steps[0]["rc"] == 127 and "No such file or directory" in steps[0]["stderr"]
    assert [os.path.basename(step["cmd"][0]) for step in steps[1:]] == ["nix-env", "switch-to-configuration"]
    assert result["rolled_back"] is True and host.current == alpha


def test_binaries_are_pinned_before_the_switch(run_module, host, args, monkeypatch, tmp_path):
    """Found in /run/current-system/sw/bin, the tools are run from the store paths the old system links to."""
    store = tmp_path / "store"
    tools = store / "tools" / "bin"
    tools.mkdir(parents=True)
    for name in ("nixos-rebuild", "nix"):
        (tools / name).write_text("#!/bin/sh\nexit 99\n")
        (tools / name).chmod(0o755)
    os.symlink("nix", str(tools / "nix-env"))
    sw = store / "system" / "sw" / "bin"
    sw.mkdir(parents=True)
    for name in ("nixos-rebuild", "nix", "nix-env"):
        os.symlink(str(tools / name), str(sw / name))
    current = tmp_path / "current-system"
    os.symlink(str(store / "system"), str(current))
    monkeypatch.setenv("PATH", os.path.join(str(current), "sw", "bin"))
    host.config = "beta"
    failed, result = run_module(nixos_rebuild.main, args(nixos_rebuild_path=None))
    assert not failed and result["cmd"][0] == str(tools / "nixos-rebuild")
    with patch_module_args(args(nixos_rebuild_path=None)):
        binaries = nixos_rebuild.find_binaries(nixos_rebuild.build_module())
    assert binaries["nixos-rebuild"] == str(tools / "nixos-rebuild")
    assert binaries["nix-env"] == str(tools / "nix-env")  # not .../nix: nix-env is nix started under that name


@pytest.mark.parametrize("action", ["switch", "build"])
def test_build_host_in_check_mode_and_for_build(run_module, host, args, action):
    host.config = "beta"
    failed, result = run_module(nixos_rebuild.main, args(action=action, build_host="builder"), check_mode=True)
    assert not failed, result
    assert result["built_system"] == host.system("beta") and result["would_change"] is True
    assert host.current == host.system("alpha")


def test_unexpected_exception_is_fail_json_with_the_traceback(run_module, host, args, monkeypatch):
    def mkdtemp(**kwargs):
        raise PermissionError(13, "Permission denied", kwargs.get("dir"))

    monkeypatch.setattr(_rebuild, "tempfile", type("TempfileDouble", (), {"mkdtemp": staticmethod(mkdtemp)}))
    host.config = "beta"
    failed, result = run_module(nixos_rebuild.main, args(), check_mode=True)
    assert failed
    assert result["msg"].startswith("nixos_rebuild failed unexpectedly: PermissionError: [Errno 13] Permission denied")
    assert "Traceback (most recent call last)" in result["exception"] and "mkdtemp" in result["exception"]


def test_check_mode_rejects_changing_extra_args_before_anything_runs(run_module, host, args, monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda *a, **kw: pytest.fail("looked up %r" % (a,)))
    failed, result = run_module(
        nixos_rebuild.main, args(extra_args=["--recreate-lock-file"], nixos_rebuild_path=None), check_mode=True
    )
    assert failed and result["msg"] == (
        "extra_args must not contain --recreate-lock-file in check mode: it rewrites the flake lock file"
    )
    assert host.calls == []


def test_credentials_never_reach_the_result(run_module, host, args):
    flake = "git+https://deploy:s3cr3t@git.example.org/nixos#p620"
    host.fail = (1, "error: cannot fetch git+https://deploy:s3cr3t@git.example.org/nixos")
    failed, result = run_module(nixos_rebuild.main, args(flake=flake))
    assert failed and result["cmd"][3] == "git+https://***@git.example.org/nixos#p620"
    assert result["msg"].endswith("error: cannot fetch git+https://***@git.example.org/nixos")
    assert "s3cr3t" not in repr(result)
