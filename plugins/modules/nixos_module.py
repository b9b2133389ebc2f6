#!/usr/bin/python
# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: nixos_module
short_description: Manage one NixOS module file and the aggregator that imports it
version_added: 0.1.0
description:
  - Writes C(<directory>/<name>.nix) from O(settings) (data rendered like the P(homelab.nixos.to_nix#filter)
    filter, inside C({ config, lib, pkgs, ... }:)) or from literal O(content).
  - Every new file is parsed with C(nix-instantiate --parse) before it replaces the old one; a file Nix cannot
    parse is never written, and the task fails with Nix's one-line reason.
  - Keeps C(<directory>/default.nix) importing every module of the directory, so the host configuration
    imports C(./homelab) once. O(state=absent) removes a module and its import.
  - Two layouts use the same module. On a NixOS host the directory is C(/etc/nixos/homelab). For a flake
    checkout on the controller, delegate to localhost with C(directory=<flake>/hosts/<host>/homelab).
  - The module never runs C(nixos-rebuild); notify the base role's C(homelab nixos rebuild) handler.
options:
  name:
    description: Module name; the file is C(<name>.nix). Lower-case letters, digits, C(-) and C(_); not C(default).
    type: str
    required: true
  directory:
    description: Directory holding the managed modules and their C(default.nix) aggregator.
    type: path
    default: /etc/nixos/homelab
  settings:
    description:
      - NixOS option values as data, for example the nested mapping C(services.openssh.enable=true).
      - Raw Nix expressions use the C(__nix_raw__) marker (filter P(homelab.nixos.nix_raw#filter)).
      - Mutually exclusive with O(content).
    type: dict
  content:
    description: Literal Nix source of the module. Mutually exclusive with O(settings).
    type: str
  header:
    description: Comment written at the top of generated files.
    type: str
    default: Managed by Ansible (homelab.nixos). Local changes will be overwritten.
  state:
    description: Whether the module file should exist.
    type: str
    choices: [present, absent]
    default: present
  validate:
    description: Parse new files with C(nix-instantiate --parse) before installing them.
    type: bool
    default: true
  nix_instantiate:
    description: Path of C(nix-instantiate); found on E(PATH) when not set.
    type: path
  mode:
    description: Permissions of the written files.
    type: raw
    default: "0644"
extends_documentation_fragment: []
attributes:
  check_mode:
    support: full
    description: Computes and validates the new files, writes nothing.
  diff_mode:
    support: full
    description: Shows the module file and the aggregator before and after.
notes:
  - Files are written to a temporary file in the same directory, validated there, then moved into place
    atomically.
seealso:
  - module: homelab.nixos.nixos_rebuild
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Enable OpenSSH through a managed module
  homelab.nixos.nixos_module:
    name: ssh
    settings:
      services:
        openssh:
          enable: true
          settings:
            PasswordAuthentication: false
  notify: homelab nixos rebuild

- name: Write a module into a flake checkout on the controller
  homelab.nixos.nixos_module:
    name: monitoring
    directory: "{{ playbook_dir }}/hosts/{{ inventory_hostname }}/homelab"
    content: |
      { pkgs, ... }:
      { environment.systemPackages = [ pkgs.htop ]; }
  delegate_to: localhost

- name: Remove a module and its import
  homelab.nixos.nixos_module:
    name: old-feature
    state: absent
"""

RETURN = r"""
path:
  description: Path of the module file.
  returned: always
  type: str
  sample: /etc/nixos/homelab/ssh.nix
aggregator:
  description: Path of the aggregator that imports the module.
  returned: always
  type: str
  sample: /etc/nixos/homelab/default.nix
content:
  description: The module source as written (or that would be written in check mode).
  returned: when state=present
  type: str
imports:
  description: The files the aggregator imports after this task.
  returned: always
  type: list
  elements: str
  sample: [monitoring.nix, ssh.nix]
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.nixos.plugins.module_utils._nix import NixRenderError, render_module
from ansible_collections.homelab.nixos.plugins.module_utils._nixos_module import (
    AGGREGATOR,
    DEFAULT_HEADER,
    ModuleFileError,
    check_name,
    module_files,
    parse_error_summary,
    read_text,
    render_aggregator,
)


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            directory=dict(type="path", default="/etc/nixos/homelab"),
            settings=dict(type="dict"),
            content=dict(type="str"),
            header=dict(type="str", default=DEFAULT_HEADER),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            validate=dict(type="bool", default=True),
            nix_instantiate=dict(type="path"),
            mode=dict(type="raw", default="0644"),
        ),
        mutually_exclusive=[("settings", "content")],
        required_if=[("state", "present", ("settings", "content"), True)],
        supports_check_mode=True,
    )


class NixosModuleFile:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.directory = self.params["directory"]
        self.name = check_name(self.params["name"])
        self.filename = self.name + ".nix"
        self.path = os.path.join(self.directory, self.filename)
        self.aggregator = os.path.join(self.directory, AGGREGATOR)
        self._nix_instantiate = None

    def desired_content(self):
        if self.params["settings"] is not None:
            return render_module(self.params["settings"], header=self.params["header"])
        content = self.params["content"]
        return content if content.endswith("\n") else content + "\n"

    def nix_instantiate(self):
        if self._nix_instantiate is None:
            self._nix_instantiate = self.params["nix_instantiate"] or self.module.get_bin_path("nix-instantiate")
            if not self._nix_instantiate:
                self.module.fail_json(
                    msg="nix-instantiate was not found on PATH: install Nix (Debian: nix-bin) "
                    "or set validate=false / nix_instantiate"
                )
        return self._nix_instantiate

    def validate_file(self, path, label):
        if not self.params["validate"]:
            return
        rc, out, err = self.module.run_command(
            [self.nix_instantiate(), "--parse", path], environ_update={"LC_ALL": "C"}
        )
        if rc != 0:
            self.module.fail_json(
                msg="%s does not parse as Nix: %s" % (label, parse_error_summary(err)), rc=rc, stdout=out, stderr=err
            )

    def stage(self, content):
        """Write ``content`` to a temporary file beside its destination."""
        fd, tmp = tempfile.mkstemp(prefix=".ansible-", suffix=".nix", dir=self.directory)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(content)
        return tmp

    def validate_content(self, content, label):
        """Parse ``content`` without touching the managed directory (check mode)."""
        if not self.params["validate"]:
            return
        fd, tmp = tempfile.mkstemp(suffix=".nix")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(content)
            self.validate_file(tmp, label)
        finally:
            os.unlink(tmp)

    def install(self, content, dest, label):
        tmp = self.stage(content)
        try:
            self.validate_file(tmp, label)
            self.module.set_mode_if_different(tmp, self.params["mode"], False)
            self.module.atomic_move(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def run(self):
        state = self.params["state"]
        before = read_text(self.path)
        if state == "present":
            after = self.desired_content()
            imports = module_files(self.directory, extra=self.filename)
        else:
            after = None
            imports = module_files(self.directory, missing=self.filename)
        aggregator_before = read_text(self.aggregator)
        aggregator_after = render_aggregator(imports, header=self.params["header"])

        module_changed = before != after
        aggregator_changed = aggregator_before != aggregator_after
        changed = module_changed or aggregator_changed
        result = dict(changed=changed, path=self.path, aggregator=self.aggregator, imports=imports)
        if after is not None:
            result["content"] = after
        if self.module._diff:
            result["diff"] = [
                dict(before=before or "", after=after or "", before_header=self.path, after_header=self.path),
                dict(
                    before=aggregator_before or "",
                    after=aggregator_after,
                    before_header=self.aggregator,
                    after_header=self.aggregator,
                ),
            ]

        if self.module.check_mode or not changed:
            if after is not None and module_changed:
                self.validate_content(after, "%s (new content)" % self.path)
            return result

        if not os.path.isdir(self.directory):
            os.makedirs(self.directory, mode=0o755)
        # Order keeps default.nix valid at every moment: a new module exists
        # before it is imported, and an import goes before its file does.
        if module_changed and after is not None:
            self.install(after, self.path, "%s (new content)" % self.path)
        if aggregator_changed:
            self.install(aggregator_after, self.aggregator, self.aggregator)
        if module_changed and after is None:
            os.unlink(self.path)
        return result


def main():
    module = build_module()
    try:
        handler = NixosModuleFile(module)
        result = handler.run()
    except (ModuleFileError, NixRenderError) as e:
        module.fail_json(msg=str(e))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
