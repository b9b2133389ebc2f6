#!/usr/bin/python
# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: hardware_facts
short_description: Probe the real hardware of a Linux host and suggest a tuning profile
version_added: 0.1.0
description:
  - Reads the kernel's view of the host (C(/proc/cpuinfo), C(/proc/meminfo), DMI, PCI display controllers,
    block devices, power supplies) and runs C(systemd-detect-virt). It never reads Nix files.
  - Returns the result as the fact C(homelab_hardware), including a suggested C(profile) (kernel parameters,
    CPU governor, microcode, GPU drivers, zram size, thermald) that roles can turn into NixOS settings.
  - The profile C(kind) follows the DMI chassis type, so it is only a suggestion. A tower server (for example a
    Xeon in a DMI "Tower" case, type 7) or a headless small-form-factor PC is suggested as a workstation; set
    O(kind) from the inventory to override it.
  - Without C(systemd-detect-virt), containers are recognised by C(/run/.containerenv), C(/.dockerenv) or
    C(/run/systemd/container), and VMs by the CPU's C(hypervisor) flag.
  - Changes nothing.
options:
  kind:
    description:
      - Profile kind to use instead of the one suggested by the chassis, normally the inventory's
        C(base_host_kind) (C(p510) and C(dex5550) are servers by role although their chassis say otherwise).
      - On bare metal, V(vm) gives the vm profile (no hardware tuning).
      - Ignored, with a warning, on virtual machines and containers, which always get the vm profile.
    type: str
    choices: [workstation, laptop, server, vm]
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: linux
notes:
  - Profile choices. Kernel parameters are C(amd_pstate=active) for AMD CPUs (plus C(amd_iommu=on) when the CPU has
    svm and the kind is workstation or server), C(intel_pstate=active) for Intel CPUs, C(amdgpu.gpu_recovery=1) for
    AMD GPUs, C(i915.enable_guc=2) for Intel GPUs on laptops and C(nvidia-drm.modeset=1) for NVIDIA GPUs; none in
    guests.
  - The governor is C(performance) on workstations and servers and C(powersave) on laptops (with the pstate drivers
    in active mode powersave is the dynamic, EPP-driven governor; laptops with other CPUs get C(schedutil)).
  - zram is 25% on workstations and servers, 50% on laptops and 0 in guests. thermald is suggested for Intel laptops
    and servers.
  - Host-specific quirks such as C(pcie_aspm=off) cannot be seen in the hardware and belong in the inventory.
requirements:
  - Linux with C(/proc) and C(/sys) mounted.
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Probe the hardware
  homelab.nixos.hardware_facts:

- name: Probe, with the kind the inventory gives the host
  homelab.nixos.hardware_facts:
    kind: "{{ base_host_kind | default(omit, true) }}"

- name: Show the suggested kernel parameters
  ansible.builtin.debug:
    msg: "{{ ansible_facts.homelab_hardware.profile.kernel_params | join(' ') }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    homelab_hardware:
      description: What the host is made of, and the suggested profile.
      returned: always
      type: dict
      contains:
        cpu:
          description: >-
            C(vendor) (amd, intel, other), C(model), C(sockets), physical C(cores), C(threads) and
            C(flags_virtualization) (svm, vmx or null).
          type: dict
          sample: {"vendor": "amd", "model": "AMD Ryzen Threadripper PRO 3955WX 16-Cores", "sockets": 1,
                   "cores": 16, "threads": 32, "flags_virtualization": "svm"}
        gpus:
          description: >-
            PCI display controllers (class 0x03xxxx): C(vendor) (amd, nvidia, intel, other), C(pci_id),
            C(slot) and C(class).
          type: list
          elements: dict
          sample: [{"vendor": "amd", "pci_id": "1002:744c", "slot": "0000:2d:00.0", "class": "0x030000"}]
        chassis:
          description: >-
            C(kind) (desktop, laptop, server, vm, container, unknown), the DMI chassis C(dmi_type) it came from
            (null without DMI), C(vendor) and C(product).
          type: dict
          sample: {"kind": "desktop", "dmi_type": 3, "vendor": "LENOVO", "product": "30E0CTO1WW"}
        virtualization:
          description: >-
            C(type) as systemd-detect-virt names it (none, kvm, qemu, docker, podman, lxc, ...), C(is_vm),
            C(is_container) and C(source) (systemd-detect-virt or probe).
          type: dict
          sample: {"type": "none", "is_vm": false, "is_container": false, "source": "systemd-detect-virt"}
        memory_mb:
          description: MemTotal in MiB.
          type: int
          sample: 128730
        disks:
          description: >-
            Whole disks (no loop, ram, zram, dm, md, optical or empty drives): C(name), C(type) (nvme, ssd, hdd,
            virtual), C(size_gb) in decimal GB and C(removable).
          type: list
          elements: dict
          sample: [{"name": "nvme0n1", "type": "nvme", "size_gb": 2000.4, "removable": false}]
        battery:
          description: Whether a system battery is present (peripheral batteries do not count).
          type: bool
          sample: false
        profile:
          description: >-
            The suggested profile: C(name), C(kind) (workstation, laptop, server, vm), C(suggested_kind),
            C(kernel_params), C(cpu_governor), C(microcode), C(gpu_drivers), C(zram_percent), C(thermald).
          type: dict
          sample: {"name": "amd-workstation-gpu-amd", "kind": "workstation", "suggested_kind": "workstation",
                   "kernel_params": ["amd_pstate=active", "amd_iommu=on", "amdgpu.gpu_recovery=1"],
                   "cpu_governor": "performance", "microcode": "amd", "gpu_drivers": ["amdgpu"],
                   "zram_percent": 25, "thermald": false}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.nixos.plugins.module_utils._hardware import (
    OVERRIDE_KINDS,
    HardwareProbeError,
    probe,
)


def build_module():
    return AnsibleModule(
        argument_spec={"kind": {"type": "str", "choices": list(OVERRIDE_KINDS)}},
        supports_check_mode=True,
    )


def _detect_virt(module):
    """What systemd-detect-virt prints, or None when it cannot tell us."""
    path = module.get_bin_path("systemd-detect-virt")
    if path is None:
        return None
    # It prints "none" and exits 1 on bare metal, so the output decides, not rc.
    rc, stdout, stderr = module.run_command([path], environ_update={"LC_ALL": "C"})
    if stdout.strip():
        return stdout
    module.warn(f"systemd-detect-virt printed nothing (rc={rc}, stderr={stderr.strip()!r}); probing instead")
    return None


def main():
    module = build_module()
    kind = module.params["kind"]
    try:
        facts = probe("/", detect_virt=_detect_virt(module), kind=kind)
    except HardwareProbeError as e:
        module.fail_json(msg=f"cannot probe the hardware: {e}")
    if kind and kind != "vm" and facts["virtualization"]["type"] != "none":
        module.warn(f"kind={kind} ignored: this host is a {facts['virtualization']['type']} guest")
    module.exit_json(changed=False, ansible_facts={"homelab_hardware": facts})


if __name__ == "__main__":
    main()
