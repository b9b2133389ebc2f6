#!/usr/bin/python
# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: nixos_facts
short_description: Gather facts about a NixOS host's systems, generations and configuration
version_added: 0.1.0
description:
  - Sets C(ansible_facts.homelab_nixos) with what the host runs and how it is configured, read from its files
    (C(/etc/os-release), C(/run/current-system), C(/run/booted-system), C(/nix/var/nix/profiles),
    C(/etc/nixos), C(/root/.nix-channels)). Runs no command and changes nothing.
  - On a host that is not NixOS it returns C(is_nixos=false) with the other facts null or empty, and does not fail,
    so it can run on a mixed fleet.
  - C(reboot_required) is the stock NixOS check, whether the booted and the current system differ in their
    C(kernel), C(initrd) or C(kernel-modules).
options:
  config_dir:
    description:
      - Directory of the host's NixOS configuration. A C(flake.nix) there makes it a flake configuration,
        a C(configuration.nix) a classic one.
    type: path
    default: /etc/nixos
  hostname:
    description:
      - Attribute name of the host in the flake's C(nixosConfigurations), used for C(flake_uri).
      - Defaults to the host name, as C(nixos-rebuild) does.
    type: str
  root:
    description:
      - Directory that stands for C(/) when reading files, for a system mounted elsewhere (for example C(/mnt)
        during installation, where C(/run) links are usually absent). Symlinks are resolved inside it.
    type: path
    default: /
extends_documentation_fragment: []
attributes:
  check_mode:
    support: full
    description: Only reads files; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
  facts:
    support: full
    description: Sets C(ansible_facts.homelab_nixos).
notes:
  - Generation dates are the modification times of the C(system-N-link) symlinks, as C(nix-env --list-generations)
    shows them, in UTC.
seealso:
  - module: homelab.nixos.nixos_module
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Gather NixOS facts
  homelab.nixos.nixos_facts:

- name: Reboot when the kernel, initrd or kernel modules changed
  ansible.builtin.reboot:
  when: ansible_facts.homelab_nixos.reboot_required

- name: Show the flake the host is built from
  ansible.builtin.debug:
    msg: "{{ ansible_facts.homelab_nixos.flake_uri }}"
  when: ansible_facts.homelab_nixos.configuration_type == 'flake'

- name: Facts of a configuration in a non-default directory
  homelab.nixos.nixos_facts:
    config_dir: /home/admin/nixos-config
    hostname: p620
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to ansible_facts.
  returned: always
  type: dict
  contains:
    homelab_nixos:
      description: Facts about the NixOS host.
      returned: always
      type: dict
      contains:
        is_nixos:
          description: Whether os-release says C(ID=nixos).
          type: bool
          sample: true
        version:
          description: C(VERSION_ID) of os-release.
          type: str
          sample: "24.11"
        version_codename:
          description: C(VERSION_CODENAME) of os-release.
          type: str
          sample: vicuna
        build_id:
          description: C(BUILD_ID) of os-release.
          type: str
          sample: 24.11.20241231.edf04b7
        current_system:
          description: Store path of the running configuration (C(/run/current-system)); null when missing.
          type: str
          sample: /nix/store/0b1k...-nixos-system-p620-24.11.20241231.edf04b7
        booted_system:
          description: Store path of the booted configuration (C(/run/booted-system)); null when missing.
          type: str
        reboot_required:
          description:
            - Whether the booted and the current system differ in C(kernel), C(initrd) or C(kernel-modules).
            - False when it cannot be told (no booted or current system).
          type: bool
          sample: false
        reboot_reasons:
          description: One line per differing entry.
          type: list
          elements: str
          sample: ["kernel changed: /nix/store/...-linux-6.6.63/bzImage -> /nix/store/...-linux-6.12.6/bzImage"]
        current_generation:
          description: Number of the generation the system profile points to; null without a profile.
          type: int
          sample: 42
        generations:
          description: System generations, oldest first.
          type: list
          elements: dict
          contains:
            number:
              description: Generation number.
              type: int
            path:
              description: Store path of the generation.
              type: str
            date:
              description: When the generation was created, ISO 8601 in UTC.
              type: str
              sample: "2025-01-04T10:12:00Z"
            current:
              description: Whether it is the current generation.
              type: bool
        configuration_type:
          description: C(flake), C(classic) or C(none); null on a host that is not NixOS.
          type: str
          sample: flake
        config_dir:
          description: The configuration directory that was inspected.
          type: str
          sample: /etc/nixos
        flake_uri:
          description: Flake reference C(nixos-rebuild --flake) would use; null for a classic configuration.
          type: str
          sample: /etc/nixos#p620
        channels:
          description: Root's channels from C(/root/.nix-channels), sorted by name.
          type: list
          elements: dict
          sample: [{name: nixos, url: "https://nixos.org/channels/nixos-24.11"}]
        nixpkgs_version:
          description: Content of C(<current_system>/nixos-version).
          type: str
          sample: 24.11.20241231.edf04b7
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.nixos.plugins.module_utils._nixos_facts import DEFAULT_CONFIG_DIR, gather


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            config_dir=dict(type="path", default=DEFAULT_CONFIG_DIR),
            hostname=dict(type="str"),
            root=dict(type="path", default="/"),
        ),
        supports_check_mode=True,
    )


def main():
    module = build_module()
    params = module.params
    facts = gather(root=params["root"], config_dir=params["config_dir"], host=params["hostname"])
    module.exit_json(changed=False, ansible_facts={"homelab_nixos": facts})


if __name__ == "__main__":
    main()
