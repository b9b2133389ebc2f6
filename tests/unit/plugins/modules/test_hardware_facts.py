"""Unit tests of the hardware_facts module: main() with module args and
exit_json/fail_json patched, the probe pointed at fixture trees and
systemd-detect-virt replaced by a test double returning captured output."""

import contextlib
import json
import os
from unittest import mock

import pytest
from ansible.module_utils import basic
from hardware_fixtures import FIXTURES

from ansible_collections.homelab.nixos.plugins.module_utils._hardware import probe
from ansible_collections.homelab.nixos.plugins.modules import hardware_facts

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19

    @contextlib.contextmanager
    def patch_module_args(args=None):
        serialized = json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}).encode()
        with mock.patch.object(basic, "_ANSIBLE_ARGS", serialized):
            yield


DETECT_VIRT = "/usr/bin/systemd-detect-virt"
PROFILE_NAMES = {
    "p620": "amd-workstation-gpu-amd",
    "razer": "intel-laptop-gpu-nvidia-intel",
    "p510": "intel-workstation-gpu-nvidia",
    "dex5550": "intel-workstation-gpu-intel",
    "samsung": "intel-laptop-gpu-intel",
    "nixvm": "vm",
}


class AnsibleExitJson(Exception):
    pass


class AnsibleFailJson(Exception):
    pass


def exit_json(module, **kwargs):
    raise AnsibleExitJson(kwargs)


def fail_json(module, **kwargs):
    kwargs["failed"] = True
    raise AnsibleFailJson(kwargs)


def captured(host):
    with open(os.path.join(FIXTURES, host, "detect-virt")) as f:
        return f.read()


class FakeDetectVirt:
    """Test double for ``AnsibleModule.run_command`` running systemd-detect-virt:
    returns output captured on a fleet host and records how it was called."""

    def __init__(self, stdout, stderr=""):
        self.stdout = stdout
        self.stderr = stderr
        self.calls = []

    def __call__(self, args, **kwargs):
        # Set on the class as an instance, so it is not bound: no ``module`` argument.
        self.calls.append((args, kwargs))
        # Like the real tool: exit 1 and print "none" on bare metal.
        rc = 1 if self.stdout.strip() in ("none", "") else 0
        return rc, self.stdout, self.stderr


@pytest.fixture
def run(monkeypatch):
    """Run main() against a fixture host; returns (result, fake, warnings)."""
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda module, msg: warnings.append(msg))

    def run_main(host, args=None, stdout=None, tool=DETECT_VIRT, root=None):
        fake = FakeDetectVirt(captured(host) if stdout is None else stdout)
        monkeypatch.setattr(basic.AnsibleModule, "run_command", fake)
        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda module, name, *a, **kw: tool)
        fixture = root or os.path.join(FIXTURES, host)

        def probe_fixture(probe_root, detect_virt=None, kind=None):
            assert probe_root == "/"
            return probe(fixture, detect_virt=detect_virt, kind=kind)

        monkeypatch.setattr(hardware_facts, "probe", probe_fixture)
        with patch_module_args(args or {}), pytest.raises((AnsibleExitJson, AnsibleFailJson)) as exc:
            hardware_facts.main()
        return exc.value.args[0], fake, warnings

    return run_main


@pytest.mark.parametrize("host", sorted(PROFILE_NAMES))
def test_fleet_host(run, host):
    result, fake, warnings = run(host)
    assert result["changed"] is False
    assert "failed" not in result
    facts = result["ansible_facts"]["homelab_hardware"]
    assert facts == probe(os.path.join(FIXTURES, host), detect_virt=captured(host))
    assert facts["profile"]["name"] == PROFILE_NAMES[host]
    assert facts["virtualization"]["source"] == "systemd-detect-virt"
    assert fake.calls == [([DETECT_VIRT], {"environ_update": {"LC_ALL": "C"}})]
    assert warnings == []


def test_check_mode_returns_the_same_facts(run):
    normal, _fake, _warnings = run("p620")
    checked, _fake, _warnings = run("p620", {"_ansible_check_mode": True})
    assert checked["changed"] is False
    assert checked["ansible_facts"] == normal["ansible_facts"]


def test_build_module_supports_check_mode():
    with patch_module_args({}):
        module = hardware_facts.build_module()
    assert module.supports_check_mode is True
    assert module.params == {"kind": None}


def test_kind_from_inventory(run):
    result, _fake, warnings = run("p510", {"kind": "server"})
    profile = result["ansible_facts"]["homelab_hardware"]["profile"]
    assert (profile["name"], profile["kind"], profile["suggested_kind"]) == (
        "intel-server-gpu-nvidia",
        "server",
        "workstation",
    )
    assert profile["thermald"] is True
    assert warnings == []


def test_kind_is_ignored_with_a_warning_in_a_vm(run):
    result, _fake, warnings = run("nixvm", {"kind": "server"})
    assert result["ansible_facts"]["homelab_hardware"]["profile"]["name"] == "vm"
    assert warnings == ["kind=server ignored: this host is a kvm guest"]


def test_kind_vm_needs_no_warning_in_a_vm(run):
    result, _fake, warnings = run("nixvm", {"kind": "vm"})
    assert result["ansible_facts"]["homelab_hardware"]["profile"]["name"] == "vm"
    assert warnings == []


def test_kind_vm_on_metal(run):
    result, _fake, warnings = run("p620", {"kind": "vm"})
    profile = result["ansible_facts"]["homelab_hardware"]["profile"]
    assert (profile["name"], profile["kind"], profile["suggested_kind"]) == ("vm", "vm", "workstation")
    assert profile["kernel_params"] == []
    assert warnings == []


def test_invalid_kind_fails(run):
    result, fake, _warnings = run("p620", {"kind": "desktop"})
    assert result["failed"] is True
    assert "kind" in result["msg"]
    assert fake.calls == []


def test_without_systemd_detect_virt_the_probe_decides(run):
    result, fake, _warnings = run("nixvm", tool=None)
    virt = result["ansible_facts"]["homelab_hardware"]["virtualization"]
    assert virt == {"type": "qemu", "is_vm": True, "is_container": False, "source": "probe"}
    assert fake.calls == []


def test_silent_systemd_detect_virt_warns_and_probes(run):
    result, _fake, warnings = run("samsung", stdout="", tool=DETECT_VIRT)
    virt = result["ansible_facts"]["homelab_hardware"]["virtualization"]
    assert virt == {"type": "none", "is_vm": False, "is_container": False, "source": "probe"}
    assert len(warnings) == 1 and "printed nothing" in warnings[0]


def test_container(run):
    result, _fake, _warnings = run("p620", stdout="podman\n")
    facts = result["ansible_facts"]["homelab_hardware"]
    assert facts["chassis"]["kind"] == "container"
    assert facts["profile"]["name"] == "container"
    assert facts["profile"]["kernel_params"] == []


def test_probe_failure_fails_the_module(run, tmp_path):
    result, _fake, _warnings = run("p620", root=str(tmp_path))
    assert result["failed"] is True
    assert result["msg"].startswith("cannot probe the hardware: cannot read ")
    assert "cpuinfo" in result["msg"]
