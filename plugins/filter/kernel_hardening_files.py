# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: kernel_hardening_files
short_description: Render a kernel hardening plan as sysctl.d/modprobe.d text or NixOS boot options
version_added: 0.1.0
description:
  - O(format=sysctl) - a sysctl.d file (C(name = value) lines).
  - O(format=modprobe) - a modprobe.d file that blacklists each module and makes loading it on request fail
    (C(install <module> /bin/false)).
  - O(format=nixos) - C(boot) options - C(kernel.sysctl), C(blacklistedKernelModules) and C(extraModprobeConfig).
options:
  _input:
    description: The plan from P(homelab.nixos.kernel_hardening#filter).
    type: dict
    required: true
  format:
    description: What to produce.
    type: str
    choices: [sysctl, modprobe, nixos]
    required: true
  header:
    description: Comment lines at the top of a file.
    type: str
    default: ""
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Write the sysctl file
  ansible.builtin.copy:
    content: "{{ plan | homelab.nixos.kernel_hardening_files('sysctl', header='# managed') }}"
    dest: /etc/sysctl.d/90-homelab-hardening.conf
    mode: "0644"
"""

RETURN = r"""
_value:
  description: File text, or the C(boot) options for O(format=nixos).
  type: raw
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._kernel_hardening import (
    modprobe_conf,
    nixos_kernel_hardening,
    sysctl_conf,
)


def kernel_hardening_files_filter(plan, format, header=""):
    """The plan as a sysctl.d file, a modprobe.d file or NixOS boot options."""
    if not isinstance(plan, dict) or "sysctl" not in plan:
        raise AnsibleFilterError("kernel_hardening_files: expects the plan from homelab.nixos.kernel_hardening")
    if format == "sysctl":
        return sysctl_conf(plan["sysctl"], header)
    if format == "modprobe":
        return modprobe_conf(plan["blacklist"], header=header)
    if format == "nixos":
        return nixos_kernel_hardening(plan)
    raise AnsibleFilterError(f"kernel_hardening_files: format must be sysctl, modprobe or nixos, got {format!r}")


class FilterModule:
    """The kernel_hardening_files filter."""

    def filters(self):
        return {"kernel_hardening_files": kernel_hardening_files_filter}
