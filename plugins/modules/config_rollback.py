#!/usr/bin/python
# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: config_rollback
short_description: List a host's configuration states and go back to a previous one (etckeeper or NixOS generations)
version_added: 0.1.0
description:
  - On Debian a configuration state is a commit of the git repository that etckeeper keeps of C(/etc)
    (O(etc_dir)); on NixOS it is a generation of the system profile C(/nix/var/nix/profiles/system).
  - O(state=listed) returns the newest O(count) states, newest first. On Debian from
    C(git log --format=%H%x09%ct%x09%s -n <count>), on NixOS from C(nix-env --list-generations -p
    /nix/var/nix/profiles/system).
  - O(state=rolled_back) brings the host back to the state O(to).
  - "On Debian: (1) when the files differ from the last commit (changed, removed or new files that are not
    ignored), that state is committed first (C(homelab: before rollback to <target>)), so it is never lost and
    RV(before) names it; (2) paths absent at the target are removed (C(git rm)) and the others get the target's
    content back (C(git checkout <target> -- <paths>), with umask 077, after which each rewritten file gets back
    the owner and mode it had); (3) C(etckeeper init) re-applies the owners, groups and modes etckeeper recorded
    at the target; (4) the result is committed (C(homelab: rollback to <target>)). Nothing changes when the
    files already equal the target's (RV(files) is empty)."
  - On Debian, C(.gitignore) and every path the current ignore rules match are never restored or removed
    (RV(kept)). The repository's rules stay, and files kept out of it, such as secrets, are not brought back
    from older commits. Entries of ignored paths in an older C(.etckeeper) are left out when it is restored, so
    their old owners and modes do not come back either.
  - etckeeper is used only when C(<etc_dir>/.etckeeper), its metadata file, exists. Without it (a plain git
    repository) the same flow runs with C(git add --all) and C(git commit) instead of C(etckeeper commit), and
    no C(etckeeper init) or C(etckeeper pre-commit) runs; files that come back are then mode 0600 (0700 when
    executable), owned by the module's user.
  - "On NixOS: C(nix-env -p /nix/var/nix/profiles/system --rollback) for V(previous), else
    C(--switch-generation <to>), then the target generation's C(bin/switch-to-configuration switch) (the store
    path the generation link C(system-<to>-link) points to). Nothing changes when the profile is at the target
    and C(/run/current-system) is its system already. When the activation fails, the profile and the running
    system go back to the generation before and the task fails. SIGHUP is ignored meanwhile."
options:
  state:
    description:
      - V(listed) returns the states in RV(states) and changes nothing.
      - V(rolled_back) goes back to O(to).
    type: str
    choices: [listed, rolled_back]
    default: listed
  to:
    description:
      - The state to go back to, required with O(state=rolled_back).
      - V(previous) is the state before the current one. On Debian that is the parent of the last commit, or
        the last commit itself when the files have uncommitted changes (the current state is that of the files,
        and it is committed first). On NixOS it is the newest generation older than the current one.
      - Otherwise a commit (full or abbreviated id, or a revision such as C(HEAD~2)) on Debian, a generation
        number on NixOS.
    type: str
  count:
    description: How many states O(state=listed) returns, 1 to 1000.
    type: int
    default: 20
  backend:
    description:
      - V(git) for the git repository at O(etc_dir) (etckeeper's), V(nixos) for the system generations.
      - V(auto) is V(nixos) when C(/nix/var/nix/profiles/system) exists, else V(git).
    type: str
    choices: [auto, git, nixos]
    default: auto
  etc_dir:
    description:
      - The top of the git repository of the configuration, for the V(git) backend.
      - Tests point it at a temporary repository.
    type: path
    default: /etc
attributes:
  check_mode:
    support: full
    description:
      - Reports what would change (RV(files) on Debian, RV(target) and RV(before)) and runs no command that
        changes anything; the uncommitted state would be committed first when RV(uncommitted_changes) is true.
      - On Debian with etckeeper, changes of owners or modes alone are seen only outside check mode, after
        C(etckeeper pre-commit) recorded them.
  diff_mode:
    support: full
    description: The ids of the state before and the target state.
notes:
  - Run the module as root (C(become=true)).
  - Needs C(git) 2.26 or later on Debian hosts.
  - The module changes files, not services. On Debian, daemons keep running with what they read before, until
    they are reloaded (C(playbooks/ops/config-rollback.yml) checks and reloads C(sshd)); on NixOS
    C(switch-to-configuration) restarts what changed.
  - Rolling back is a new commit on Debian, so V(previous) run twice goes back and forth between two states;
    roll forward with O(to) set to RV(before) of the rollback.
seealso:
  - module: homelab.nixos.nixos_rebuild
  - module: homelab.nixos.nixos_facts
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: The last ten states of the configuration
  homelab.nixos.config_rollback:
    state: listed
    count: 10
  become: true
  register: __history

- name: Go back to the state before the current one
  homelab.nixos.config_rollback:
    state: rolled_back
    to: previous
  become: true
  register: __rollback

- name: Undo that rollback (roll forward)
  homelab.nixos.config_rollback:
    state: rolled_back
    to: "{{ __rollback.before }}"
  become: true

- name: Go back to NixOS generation 41
  homelab.nixos.config_rollback:
    state: rolled_back
    to: "41"
    backend: nixos
  become: true
"""

RETURN = r"""
backend:
  description: The backend that ran, V(git) or V(nixos).
  returned: always
  type: str
  sample: git
states:
  description: The states, newest first.
  returned: when state=listed
  type: list
  elements: dict
  contains:
    id:
      description: The commit id on Debian, the generation number (as a string) on NixOS.
      type: str
    date:
      description:
        - When the state was recorded. On Debian the commit time, ISO 8601 in UTC; on NixOS the host's local
          time as C(nix-env) prints it (C(YYYY-MM-DD HH:MM:SS)).
      type: str
    timestamp:
      description: The commit time in seconds since the epoch (Debian only).
      type: int
    generation:
      description: The generation number (NixOS only).
      type: int
    description:
      description: The commit subject on Debian; the name of the generation's system on NixOS.
      type: str
    current:
      description: Whether this is the last commit (Debian) or the profile's current generation (NixOS).
      type: bool
  sample:
    - id: 3f0c9e2d1b6a4c8e9f7a5b3d1c0e2f4a6b8d0c1e
      date: "2026-11-20T10:11:12Z"
      timestamp: 1795169472
      description: daily autocommit
      current: true
current:
  description: The id of the current state (the last commit, or the profile's current generation).
  returned: when state=listed
  type: str
uncommitted_changes:
  description: Whether the files differ from the last commit (before the task, or in check mode).
  returned: with the git backend
  type: bool
etc_dir:
  description: The repository.
  returned: with the git backend
  type: str
  sample: /etc
etckeeper:
  description: Whether etckeeper was used (C(<etc_dir>/.etckeeper) exists).
  returned: with the git backend
  type: bool
running_system:
  description: What C(/run/current-system) points to (null when it does not exist); after the task.
  returned: with the nixos backend
  type: str
target:
  description: The state O(to) names - the full commit id, or the generation number.
  returned: when state=rolled_back
  type: str
  sample: 3f0c9e2d1b6a4c8e9f7a5b3d1c0e2f4a6b8d0c1e
target_description:
  description: The subject of the target commit.
  returned: when state=rolled_back with the git backend
  type: str
target_system:
  description: The store path of the target generation.
  returned: when state=rolled_back with the nixos backend
  type: str
before:
  description:
    - The state before the task, to roll forward to with O(to). On Debian the commit that holds it (the commit of
      the uncommitted changes when one was made); on NixOS the generation that was current.
  returned: when state=rolled_back
  type: str
files:
  description: The paths (relative to O(etc_dir)) the rollback changes, with C(action) V(restore) or V(remove).
  returned: when state=rolled_back with the git backend
  type: list
  elements: dict
  sample: [{path: ssh/sshd_config, action: restore}, {path: nftables.d/new.conf, action: remove}]
kept:
  description: Paths that differ from the target but are never rolled back (C(.gitignore) and ignored paths).
  returned: when state=rolled_back with the git backend
  type: list
  elements: str
commits:
  description: The commits the task made, each with C(id) and C(message).
  returned: when state=rolled_back with the git backend
  type: list
  elements: dict
commit:
  description: The commit that records the rollback.
  returned: when state=rolled_back changed something with the git backend
  type: str
commands:
  description:
    - The commands that changed the profile or activated a system, each with C(cmd), C(rc), C(stdout) and
      C(stderr).
  returned: when state=rolled_back with the nixos backend
  type: list
  elements: dict
cmd:
  description: The last command that ran.
  returned: when a command ran
  type: list
  elements: str
rc:
  description: Its exit code.
  returned: when a command ran
  type: int
stdout:
  description: Its standard output.
  returned: when a command ran
  type: str
stderr:
  description: Its standard error.
  returned: when a command ran
  type: str
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.nixos.plugins.module_utils._config_history import (
    BACKENDS,
    DEFAULT_ETC_DIR,
    STATES,
    GitHistory,
    HistoryError,
    NixosGenerations,
    NixPaths,
    detect_backend,
)
from ansible_collections.homelab.nixos.plugins.module_utils._rebuild import pin_binary


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=list(STATES), default="listed"),
            to=dict(type="str"),
            count=dict(type="int", default=20),
            backend=dict(type="str", choices=list(BACKENDS), default="auto"),
            etc_dir=dict(type="path", default=DEFAULT_ETC_DIR),
        ),
        required_if=[("state", "rolled_back", ("to",))],
        supports_check_mode=True,
    )


def command_runner(module):
    """``module.run_command`` for the logic: a command that cannot start is rc 127, not fail_json."""

    def run(args, **kwargs):
        try:
            return module.run_command(args, handle_exceptions=False, **kwargs)
        except OSError as e:
            return 127, "", str(e)

    return run


def make_history(module, backend, paths):
    runner = command_runner(module)
    if backend == "nixos":
        # Resolved now: /run/current-system/sw/bin/nix-env points into whatever system gets activated.
        nix_env = pin_binary(module.get_bin_path("nix-env", required=True))
        return NixosGenerations(runner, nix_env=nix_env, paths=paths)
    return GitHistory(
        runner,
        etc_dir=module.params["etc_dir"],
        git=module.get_bin_path("git", required=True),
        etckeeper=module.get_bin_path("etckeeper"),
    )


def main():
    module = build_module()
    params = module.params
    paths = NixPaths()
    backend = params["backend"]
    if backend == "auto":
        backend = detect_backend(paths)
    history = make_history(module, backend, paths)
    try:
        if params["state"] == "listed":
            result = history.list(params["count"])
        else:
            result = history.rollback(params["to"], check_mode=module.check_mode, diff=module._diff)
    except HistoryError as e:
        for warning in history.warnings:
            module.warn(warning)
        module.fail_json(msg=str(e), **e.result)
    except Exception as e:
        module.fail_json(
            msg="config_rollback failed unexpectedly: %s: %s" % (type(e).__name__, e),
            exception=traceback.format_exc(),
        )
    for warning in history.warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
