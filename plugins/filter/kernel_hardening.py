# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: kernel_hardening
short_description: The kernel hardening of one host - sysctl values, module blacklist, router exception
version_added: 0.1.0
description:
  - sysctl values common to every host (kernel pointers, dmesg, BPF, ptrace, kexec, protected links and FIFOs, no
    ICMP redirects or source routing, SYN cookies, martians logged) plus C(kernel.sysrq) per host kind (176 on
    workstations and laptops, 0 on servers and VMs).
  - Hosts that forward packets keep C(net.ipv4.ip_forward) and C(net.ipv6.conf.all.forwarding) on and use loose
    reverse-path filtering (C(rp_filter=2), as Tailscale exit nodes and subnet routers need). O(forwarding=null)
    decides from the host's features (Tailscale exit node, subnet router, Docker, Podman, MicroVM, containers).
  - Modules for rare filesystems and network protocols (cramfs, hfs, dccp, sctp, tipc, ...) are blacklisted unless
    listed in O(allow_modules).
  - With O(in_container=true) only the network namespace's settings (C(net.ipv4.*), C(net.ipv6.*)) are kept; the
    others are listed in C(skipped) and no module is blacklisted.
  - Fails with one error listing every problem.
options:
  _input:
    description: Host kind - C(workstation), C(laptop), C(server) or C(vm).
    type: str
    required: true
  features:
    description: The host's enabled feature flags.
    type: list
    elements: str
    default: []
  forwarding:
    description: Whether the host forwards packets; null decides from O(features).
    type: bool
  in_container:
    description: Whether the host is a container sharing another host's kernel.
    type: bool
    default: false
  extra_sysctl:
    description: Further sysctl values, which also override the hardened ones.
    type: dict
    default: {}
  allow_modules:
    description: Modules to keep loadable although blacklisted by default.
    type: list
    elements: str
    default: []
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Plan the kernel hardening
  ansible.builtin.set_fact:
    plan: "{{ 'server' | homelab.nixos.kernel_hardening(base_features_enabled, in_container=false) }}"
  # {sysctl: {kernel.kptr_restrict: 2, ..., net.ipv4.ip_forward: 1}, skipped: [], blacklist: [cramfs, ...],
  #  forwarding: true}
"""

RETURN = r"""
_value:
  description: C(sysctl) (name to value), C(skipped) (names not applied), C(blacklist) (modules), C(forwarding).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._kernel_hardening import (
    KernelHardeningError,
    kernel_hardening,
)


def kernel_hardening_filter(
    kind, features=None, forwarding=None, *, in_container=False, extra_sysctl=None, allow_modules=None
):
    """The kernel hardening plan of one host."""
    try:
        return kernel_hardening(
            kind,
            features or (),
            forwarding,
            in_container=in_container,
            extra_sysctl=extra_sysctl,
            allow_modules=allow_modules or (),
        )
    except KernelHardeningError as e:
        raise AnsibleFilterError(f"kernel_hardening: {e}") from e


class FilterModule:
    """The kernel_hardening filter."""

    def filters(self):
        return {"kernel_hardening": kernel_hardening_filter}
