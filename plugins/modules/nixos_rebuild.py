#!/usr/bin/python
# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: nixos_rebuild
short_description: Run nixos-rebuild, confirm the new system and roll back when it is unhealthy
version_added: 0.1.0
description:
  - Runs C(nixos-rebuild) with O(action) and reports C(changed) from the system links, never from the exit code or
    the output. For V(switch) and V(test) the running system (C(readlink -f /run/current-system)) is compared
    before and after, for V(switch) also the system profile; for V(boot) the system profile
    (C(/nix/var/nix/profiles/system)).
  - After a V(switch) or V(test) that changed the running system, the host must be confirmed within
    O(confirm_timeout) seconds. A fresh SSH connection must succeed (on the host itself a TCP connection to
    C(127.0.0.1:confirm_ssh_port) that answers with an C(SSH-2.0-) banner; with O(target_host) a new
    C(ssh -o BatchMode=yes -o ConnectTimeout=N -o ControlPath=none <target_host> true)), every command of
    O(health_commands) must exit 0 and every URL of O(health_urls) must answer with HTTP 2xx or 3xx.
  - When confirmation fails, or C(nixos-rebuild) exits non-zero after the running system changed, and O(rollback)
    is true, the previous system is restored and the task fails saying what failed and which generation it went
    back to. For V(switch) that is C(nixos-rebuild switch --rollback --fast) (with the same O(flake),
    O(nixos_config), O(target_host), O(build_host) and O(use_remote_sudo)); if that does not bring the old system
    back, C(nix-env --profile /nix/var/nix/profiles/system --set <old system>) and
    C(<old system>/bin/switch-to-configuration switch). For V(test) it is
    C(<old system>/bin/switch-to-configuration test). With O(target_host), C(switch-to-configuration) runs as
    C(systemd-run --wait --collect --quiet -- ...) on the target, so an C(sshd) restart cannot stop it half-way.
  - The tools are looked up, and their paths resolved into the Nix store, before anything runs, so the rollback
    does not use the new system's C(/run/current-system/sw/bin). A tool that cannot be started during the
    rollback counts as a failed step (rc 127) and the rollback goes on with the next one.
  - SIGHUP is ignored while switching, confirming and rolling back, so a dropped SSH session does not kill the
    module half-way.
  - C(nixos-rebuild) runs in a private temporary directory, so no C(./result) link is left behind (V(build),
    and V(test) and V(dry-activate) without a flake, make one). V(build) returns the built system and whether it
    differs from the running one. V(dry-build) and V(dry-activate) return the output of C(nixos-rebuild) and never
    report a change.
  - Returned C(stdout), C(stderr) and the outputs of the rollback commands keep their last 64 KiB each.
    C(user:password@) in URLs and flake references is shown as C(***@) in C(cmd), the outputs and messages.
options:
  action:
    description: The C(nixos-rebuild) action.
    type: str
    choices: [switch, boot, test, build, dry-build, dry-activate]
    default: switch
  flake:
    description:
      - Flake reference of the configuration, passed as C(--flake), for example C(/etc/nixos#p620) or
        C(path:/srv/nixos#p620). A relative path (C(.#p620), C(./nixos)) is made absolute.
      - With O(target_host) and no C(#attr), the target's hostname (C(cat /proc/sys/kernel/hostname) over
        C(ssh)) is appended as C(#<hostname>) for every command, check mode and V(build) included.
      - Mutually exclusive with O(nixos_config).
    type: str
  nixos_config:
    description:
      - Classic (non-flake) configuration file or directory, passed as C(-I nixos-config=<nixos_config> --no-flake)
        (without C(--no-flake), C(nixos-rebuild) would use C(/etc/nixos/flake.nix) when it exists).
      - Mutually exclusive with O(flake). Without both, C(nixos-rebuild) uses its own default.
    type: path
  target_host:
    description:
      - Activate on this SSH destination (C(--target-host)). The module then runs where C(nixos-rebuild) should
        run, usually the controller (C(delegate_to) V(localhost)), reads the target's system links over C(ssh)
        and runs O(health_commands) there. C(NIX_SSHOPTS) applies to the module's own C(ssh) commands too, which
        also use C(-o ServerAliveInterval=5 -o ServerAliveCountMax=3).
    type: str
  build_host:
    description:
      - Build on this SSH destination (C(--build-host)).
      - C(nixos-rebuild build) leaves no C(./result) link then; check mode and V(build) take the built system
        from the last line of its output, which C(nixos-rebuild-ng) prints. With a C(nixos-rebuild) that does
        not, they fail and say so.
    type: str
  use_remote_sudo:
    description:
      - Pass C(--use-remote-sudo), and run the module's own rollback commands (C(nix-env --set),
        C(switch-to-configuration)) with C(sudo -n --), on O(target_host) or, without it, locally.
    type: bool
    default: false
  extra_args:
    description:
      - More arguments for C(nixos-rebuild), for example C([--show-trace, --option, cores, "4"]).
      - Options the module controls itself (C(--rollback), C(--flake), C(--no-flake), C(--target-host),
        C(--build-host), C(--use-remote-sudo), C(--sudo), C(--profile-name)) are rejected.
      - In check mode, options that change channels or a flake lock file (C(--upgrade), C(--upgrade-all),
        C(--recreate-lock-file), C(--update-input), C(--commit-lock-file)) are rejected.
      - C(--specialisation) (C(-c)) is rejected in check mode and with V(build), since C(nixos-rebuild) accepts
        it only with V(switch) and V(test).
    type: list
    elements: str
    default: []
  confirm:
    description:
      - Confirm the new system after a V(switch) or V(test) and roll back when it fails.
      - Defaults to true for V(switch) and V(test); true with any other action is rejected.
    type: bool
  confirm_timeout:
    description: Seconds the new system has to pass every confirmation check. Must be positive.
    type: int
    default: 60
  confirm_ssh_port:
    description:
      - Port of the fresh SSH connection. With O(target_host) it is passed as C(-p) unless it is V(22), so
        C(~/.ssh/config) and C(NIX_SSHOPTS) decide then.
    type: int
    default: 22
  health_commands:
    description:
      - Commands that must exit 0 on the host after the switch, each a list of words or a string split like a
        shell would (no shell runs it; use V([sh, -c, "..."]) for pipes). Retried until O(confirm_timeout).
      - With O(target_host) they run over C(ssh) on the target. When C(timeout) is installed where the module runs,
        each try is stopped when the confirmation time is up.
    type: list
    elements: raw
    default: []
  health_urls:
    description:
      - C(http://) or C(https://) URLs that must answer 2xx or 3xx (redirects are not followed) after the switch,
        fetched from where the module runs. Retried until O(confirm_timeout). Certificates are validated.
    type: list
    elements: str
    default: []
  rollback:
    description: Restore the previous system when confirmation fails or the activation failed.
    type: bool
    default: true
  nixos_rebuild_path:
    description: Path of C(nixos-rebuild); found on E(PATH) when not set.
    type: path
extends_documentation_fragment: []
attributes:
  check_mode:
    support: full
    description:
      - V(switch), V(boot) and V(test) run C(nixos-rebuild build) instead and report whether the built system
        differs from the running one (for V(boot), from the system profile). Nothing is activated.
      - O(extra_args) that would change channels or a lock file are rejected in check mode.
  diff_mode:
    support: full
    description:
      - Shows the closure difference between the old and the new system, from
        C(nix store diff-closures) or, when that fails, from the store paths of C(nix-store -q --requisites).
notes:
  - A rollback with O(target_host) needs a working SSH connection to the target. When the new system broke SSH
    itself, the rollback fails too and the task reports both reasons; run the module on the host itself (no
    O(target_host)) when that risk matters, or reboot into the previous generation.
  - Health commands cannot be stopped at the deadline when C(timeout) (coreutils) is missing where the module runs.
  - Without O(target_host) the fresh connection goes to C(127.0.0.1). An C(sshd) that listens only on other
    addresses (C(services.openssh.listenAddresses)) fails it every time; set O(confirm=false) there.
  - In check mode with O(target_host) the closure diff runs where the module runs and needs the target's
    current system in that store; otherwise the module warns and shows only the two system paths.
seealso:
  - module: homelab.nixos.nixos_module
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Switch to the flake configuration and make sure the host still answers
  homelab.nixos.nixos_rebuild:
    flake: /etc/nixos#{{ inventory_hostname }}
    health_commands:
      - [systemctl, is-system-running, --wait]
      - systemctl is-active nginx.service
    health_urls:
      - http://127.0.0.1/healthz
    confirm_timeout: 120

- name: Deploy from the controller, building on a builder
  homelab.nixos.nixos_rebuild:
    flake: "{{ playbook_dir }}#{{ inventory_hostname }}"
    target_host: root@{{ ansible_host }}
    build_host: builder.lan
  delegate_to: localhost

- name: What would change (check mode builds, activates nothing)
  homelab.nixos.nixos_rebuild:
    flake: /etc/nixos#p620
  check_mode: true
  diff: true

- name: Make the new configuration the boot default only
  homelab.nixos.nixos_rebuild:
    action: boot
    nixos_config: /etc/nixos/configuration.nix
"""

RETURN = r"""
action:
  description: The action that ran.
  returned: always
  type: str
  sample: switch
old_system:
  description: System before the task (the running system; the system profile for V(boot)).
  returned: when the system was read
  type: str
  sample: /nix/store/7l3m6...-nixos-system-p620-24.11.20250101.abcdef
new_system:
  description: System after the task, or what it would be in check mode and for V(build).
  returned: when the system was read
  type: str
old_generation:
  description: Generation of the system profile before the task (from its C(system-N-link)).
  returned: when the system was read
  type: int
  sample: 41
new_generation:
  description: Generation of the system profile after the task; null when not known yet (check mode, V(build)).
  returned: when the system was read
  type: int
  sample: 42
booted_system:
  description: The system the host booted (C(/run/booted-system)).
  returned: when the system was read
  type: str
built_system:
  description: The system C(nixos-rebuild build) produced.
  returned: for V(build), and in check mode
  type: str
would_change:
  description: Whether the built system differs from the running one (from the system profile for V(boot)).
  returned: for V(build), and in check mode
  type: bool
confirmed:
  description: Whether the new system passed confirmation.
  returned: for V(switch), V(boot) and V(test)
  type: bool
rolled_back:
  description: Whether the previous system was restored.
  returned: for V(switch), V(boot) and V(test)
  type: bool
rollback_failed:
  description: The rollback was tried and did not restore the previous system.
  returned: when the rollback failed
  type: bool
rollback_generation:
  description: Generation of the system profile after a successful rollback.
  returned: when rolled back
  type: int
rollback:
  description:
    - The commands of the rollback, each with C(cmd), C(rc), C(stdout) and C(stderr) (the last 64 KiB of each).
  returned: when a rollback was tried
  type: list
  elements: dict
closure_diff:
  description:
    - How the closure difference in C(diff) was made. C(method) is V(diff-closures) (C(diff.after) holds the
      output of C(nix store diff-closures) after the new system path) or V(requisites) (C(diff.before) and
      C(diff.after) list the removed and added store path names); null when neither command worked.
  returned: in diff mode, when the system changed or would change
  type: dict
cmd:
  description: The C(nixos-rebuild) command.
  returned: when nixos-rebuild ran
  type: list
  elements: str
rc:
  description: Exit code of C(nixos-rebuild).
  returned: when nixos-rebuild ran
  type: int
stdout:
  description: Standard output of C(nixos-rebuild), its last 64 KiB.
  returned: when nixos-rebuild ran
  type: str
stderr:
  description: Standard error of C(nixos-rebuild) (its build log), its last 64 KiB.
  returned: when nixos-rebuild ran
  type: str
"""

import os
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.nixos.plugins.module_utils._rebuild import (
    ACTIONS,
    NixosRebuild,
    RebuildError,
    RebuildInputError,
    SystemPaths,
    pin_binary,
    redact,
    validate_params,
)


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", choices=list(ACTIONS), default="switch"),
            flake=dict(type="str"),
            nixos_config=dict(type="path"),
            target_host=dict(type="str"),
            build_host=dict(type="str"),
            use_remote_sudo=dict(type="bool", default=False),
            extra_args=dict(type="list", elements="str", default=[]),
            confirm=dict(type="bool"),
            confirm_timeout=dict(type="int", default=60),
            confirm_ssh_port=dict(type="int", default=22),
            health_commands=dict(type="list", elements="raw", default=[]),
            health_urls=dict(type="list", elements="str", default=[]),
            rollback=dict(type="bool", default=True),
            nixos_rebuild_path=dict(type="path"),
        ),
        mutually_exclusive=[("flake", "nixos_config")],
        supports_check_mode=True,
    )


def find_binaries(module):
    """Local paths of the tools; nixos-rebuild (and ssh with target_host) must exist.

    Paths are pinned (see ``pin_binary``) before anything runs: ``/run/current-system/sw/bin/...`` would
    point into the new system after a switch, and a rollback must not depend on that.
    """
    path = module.params["nixos_rebuild_path"]
    if path:
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            module.fail_json(msg=f"nixos_rebuild_path {path} is not an executable file")
    else:
        path = module.get_bin_path("nixos-rebuild", required=True)
    binaries = {"nixos-rebuild": path, "timeout": module.get_bin_path("timeout")}
    if module.params["target_host"]:
        binaries["ssh"] = module.get_bin_path("ssh", required=True)
    for name in ("nix", "nix-store", "nix-env"):
        binaries[name] = module.get_bin_path(name) or name
    binaries = {name: pin_binary(found) for name, found in binaries.items()}
    # Not pinned: on NixOS sudo is the setuid wrapper /run/wrappers/bin/sudo, whose target every activation
    # replaces; the wrapper path itself stays valid.
    binaries["sudo"] = module.get_bin_path("sudo") or "sudo"
    return binaries


def command_runner(module):
    """``module.run_command`` for the logic: an OSError (a missing binary) is rc 127, not fail_json.

    run_command's own handling calls fail_json, which exits the module, in the middle of a rollback too.
    """

    def run(args, **kwargs):
        try:
            return module.run_command(args, handle_exceptions=False, **kwargs)
        except OSError as e:
            return 127, "", str(e)

    return run


def _fail_unexpected(module, error):
    module.fail_json(
        msg=redact(f"nixos_rebuild failed unexpectedly: {type(error).__name__}: {error}"),
        exception=redact(traceback.format_exc()),
    )


def main():
    module = build_module()
    try:
        # Bad input fails here, before any binary is looked up or any command runs.
        validate_params(module.params, check_mode=module.check_mode)
    except RebuildInputError as e:
        module.fail_json(msg=redact(str(e)))
    # find_binaries and module.tmpdir end the module with fail_json themselves when they fail.
    binaries, tmpdir = find_binaries(module), module.tmpdir
    try:
        rebuild = NixosRebuild(
            module.params, command_runner(module), paths=SystemPaths(), binaries=binaries, tmpdir=tmpdir
        )
    except RebuildInputError as e:
        module.fail_json(msg=redact(str(e)))
    try:
        result = rebuild.run(check_mode=module.check_mode, diff=module._diff)
    except RebuildError as e:
        for warning in rebuild.warnings:
            module.warn(warning)
        module.fail_json(msg=str(e), **e.result)
    except Exception as e:
        for warning in rebuild.warnings:
            module.warn(redact(warning))
        _fail_unexpected(module, e)
    for warning in rebuild.warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
