"""The nixos_rebuild module's wiring: argument spec, binaries, results and failures.

The host is ``FakeNixosRebuild``, the test double of test_rebuild.py (it proves the module's flow, never that
NixOS works); ``AnsibleModule.run_command`` is replaced by it.
"""

import importlib.util
import os
import stat

import pytest
import yaml
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

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
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, args, **kwargs: fake(args, **kwargs))
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
