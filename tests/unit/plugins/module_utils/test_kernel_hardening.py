"""Kernel hardening as data (plugins/module_utils/_kernel_hardening.py)."""

import pytest

from ansible_collections.homelab.nixos.plugins.module_utils._kernel_hardening import (
    KernelHardeningError,
    kernel_hardening,
    live_differences,
    modprobe_conf,
    nixos_kernel_hardening,
    sysctl_conf,
)
from ansible_collections.homelab.nixos.plugins.module_utils._nix import to_nix


def test_a_plain_server_does_not_forward():
    plan = kernel_hardening("server", ["monitoring.exporters"])
    sysctl = plan["sysctl"]
    assert plan["forwarding"] is False
    assert sysctl["net.ipv4.ip_forward"] == 0 and sysctl["net.ipv6.conf.all.forwarding"] == 0
    assert sysctl["net.ipv4.conf.all.rp_filter"] == 1
    assert sysctl["kernel.kptr_restrict"] == 2 and sysctl["kernel.sysrq"] == 0
    assert "sctp" in plan["blacklist"] and "squashfs" not in plan["blacklist"]
    assert plan["skipped"] == []


def test_forwarding_comes_first_because_it_resets_redirects():
    keys = list(kernel_hardening("server")["sysctl"])
    assert keys[:2] == ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"]
    assert keys[2:] == sorted(keys[2:])


@pytest.mark.parametrize(
    "feature", ["networking.tailscale_exit_node", "networking.subnet_router", "virtualization.podman"]
)
def test_routers_keep_forwarding_with_loose_reverse_path_filtering(feature):
    plan = kernel_hardening("server", [feature])
    assert plan["forwarding"] is True
    assert plan["sysctl"]["net.ipv4.ip_forward"] == 1
    assert plan["sysctl"]["net.ipv6.conf.all.forwarding"] == 1
    assert plan["sysctl"]["net.ipv4.conf.all.rp_filter"] == 2


def test_the_inventory_can_decide_forwarding():
    assert kernel_hardening("server", ["networking.subnet_router"], False)["sysctl"]["net.ipv4.ip_forward"] == 0
    assert kernel_hardening("vm", [], True)["forwarding"] is True


def test_desktops_keep_a_safe_sysrq():
    assert kernel_hardening("laptop")["sysctl"]["kernel.sysrq"] == 176
    assert kernel_hardening("workstation")["sysctl"]["kernel.sysrq"] == 176


def test_a_container_applies_only_its_network_namespace():
    plan = kernel_hardening("vm", ["networking.tailscale_exit_node"], in_container=True)
    assert all(key.startswith(("net.ipv4.", "net.ipv6.")) for key in plan["sysctl"])
    assert plan["sysctl"]["net.ipv4.ip_forward"] == 1
    assert "kernel.kptr_restrict" in plan["skipped"] and "net.core.bpf_jit_harden" in plan["skipped"]
    assert plan["blacklist"] == []


def test_extra_values_override_and_modules_can_be_allowed():
    plan = kernel_hardening("server", extra_sysctl={"kernel.sysrq": 1, "vm.swappiness": 10}, allow_modules=["sctp"])
    assert plan["sysctl"]["kernel.sysrq"] == 1 and plan["sysctl"]["vm.swappiness"] == 10
    assert "sctp" not in plan["blacklist"]


def test_bad_input_lists_every_problem():
    with pytest.raises(KernelHardeningError) as e:
        kernel_hardening(
            "router", forwarding="yes", extra_sysctl={"Bad Key": 1, "vm.x": [1]}, allow_modules=["bad module"]
        )
    assert len(e.value.problems) == 5


def test_files_and_nixos_options(known_options):
    plan = kernel_hardening("server")
    text = sysctl_conf(plan["sysctl"], header="# managed")
    assert text.startswith("# managed\n") and "kernel.kptr_restrict = 2\n" in text
    modprobe = modprobe_conf(["cramfs"])
    assert modprobe == "blacklist cramfs\ninstall cramfs /bin/false\n"
    boot = nixos_kernel_hardening(plan)
    assert boot["kernel"]["sysctl"]["net.ipv4.tcp_syncookies"] == 1
    assert "install sctp /run/current-system/sw/bin/false\n" in boot["extraModprobeConfig"]
    assert '"kernel.kptr_restrict" = 2;' in to_nix({"boot": boot})
    known_options({"boot": boot})


def test_live_differences():
    live = "kernel.kptr_restrict = 2\nnet.ipv4.ip_forward = 1\n"
    assert live_differences({"kernel.kptr_restrict": 2, "net.ipv4.ip_forward": 0, "fs.suid_dumpable": 0}, live) == {
        "net.ipv4.ip_forward": {"want": "0", "live": "1"},
        "fs.suid_dumpable": {"want": "0", "live": None},
    }
