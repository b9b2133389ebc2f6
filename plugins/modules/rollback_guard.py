#!/usr/bin/python
# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: rollback_guard
short_description: Arm, confirm or fire a host-side rollback guard for changes that can cut SSH access
version_added: 0.1.0
description:
  - The host-side half of a commit-confirm safety net for changes that can lock Ansible out (C(sshd) settings,
    firewall rules, users). (1) O(state=armed) snapshots the files about to change and schedules their restore
    after O(timeout) seconds with a transient systemd timer; (2) the play applies the change; (3) the controller
    proves that a fresh SSH login works; (4) O(state=confirmed) cancels the timer and drops the snapshot.
    When the login fails the play does not confirm, and the host restores the old files and runs
    O(restore_commands) by itself when the timer fires, also when Ansible cannot reach it any more.
  - The guard lives in C(<state_dir>/<name>/) (mode C(0700)), with C(guard.json) (name, paths, armed_at,
    fires_at, unit), the snapshot copies in C(files/0), C(files/1), ... (named by position in O(paths)),
    and C(restore.sh), which the timer C(homelab-rollback-<name>.timer) runs as
    C(/bin/sh <state_dir>/<name>/restore.sh).
  - C(restore.sh) is POSIX C(sh) with C(set -u). For each snapshotted path it runs C(rm -f) and C(cp -a) from the
    snapshot copy, removes each path that did not exist when the guard was armed, then runs every command of
    O(restore_commands) in order. A failing step is logged (on standard error, and to syslog with
    C(logger -t homelab-rollback) when C(logger) exists) and the script goes on. It finally writes the marker
    C(<state_dir>/<name>/restored) with the time (UTC) and exits 0. A second run does nothing, and neither
    does a run after O(state=confirmed).
  - A guard is armed while its directory exists without the C(restored) marker. Arming an armed guard fails and
    says when it fires; arming a guard that fired removes the old directory and arms anew.
  - The restore script and O(state=confirmed) both claim the guard by renaming one token file, so a confirmation
    that races with the timer either stops the restore before it touches anything or fails saying that the guard
    fired. It never removes the snapshot under a running restore.
  - Only paths and commands are shown in results, messages and logs, never file contents.
options:
  name:
    description:
      - Name of the guard, 1-40 of C([a-z0-9-]) starting with a letter or digit. The transient systemd units are
        C(homelab-rollback-<name>.timer) and C(homelab-rollback-<name>.service).
    type: str
    required: true
  state:
    description:
      - V(armed) snapshots O(paths) and starts the timer. Fails when a guard of this name is armed already.
      - V(confirmed) stops the timer (a timer that is not loaded any more is fine) and removes the snapshot.
        Fails when the guard fired already, since the host went back to the previous configuration then.
      - V(fired) stops the timer (when stopping fails, it warns and goes on), runs C(restore.sh) now and keeps the
        directory with its C(restored) marker, so the next V(armed) reports when it was restored. Fails when the
        script exits non-zero or reports a failed step.
    type: str
    choices: [armed, confirmed, fired]
    default: armed
  paths:
    description:
      - Absolute paths of the regular files or symlinks about to change (symlinks are kept as symlinks, not
        followed). A path that does not exist yet is removed by the restore. Directories are rejected, and so are
        paths listed twice and paths inside O(state_dir).
      - Copies keep owner, group, mode, timestamps and extended attributes.
      - Only used with O(state=armed).
    type: list
    elements: path
    default: []
  restore_commands:
    description:
      - Commands run in order after the files are restored, each a list of words (no shell, and no string
        splitting), for example V([systemctl, reload, ssh]). A failing command does not stop the next one.
      - Only used with O(state=armed). At least one of O(paths) and O(restore_commands) is needed then.
    type: list
    elements: raw
    default: []
  timeout:
    description:
      - Seconds from arming until the restore fires, 10 to 3600. Only used with O(state=armed).
    type: int
    default: 120
  state_dir:
    description:
      - Directory of the guards; created with mode C(0700) when missing. It must not be writable by group or
        others, since root runs C(restore.sh) from it.
    type: path
    default: /var/lib/homelab/rollback
attributes:
  check_mode:
    support: full
    description:
      - Nothing is touched and no command runs. V(armed) reports C(changed) (and fails when the guard is armed
        already); V(confirmed) and V(fired) report C(changed) when a guard is armed.
  diff_mode:
    support: none
    description: The module copies and restores files without comparing them.
notes:
  - Run the module as root (C(become=true)); C(systemd-run) and C(systemctl) must be on the host.
  - The timer is transient. A reboot before O(state=confirmed) loses it, and the restore does not happen; the
    guard stays armed (arming it again fails and says it was due) until O(state=confirmed) or O(state=fired).
  - The restore replaces each file with a new copy, so hard links to it are not kept.
  - O(restore_commands) and C(cp) run with the E(PATH) the module had when the guard was armed, followed by
    C(/run/wrappers/bin), C(/run/current-system/sw/bin) and the usual C(sbin) and C(bin) directories.
seealso:
  - module: homelab.nixos.nixos_rebuild
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Arm a guard before changing sshd
  homelab.nixos.rollback_guard:
    name: sshd
    paths:
      - /etc/ssh/sshd_config
      - /etc/ssh/sshd_config.d/50-homelab.conf
    restore_commands:
      - [systemctl, reload, ssh]
    timeout: 120
  become: true

- name: Change the sshd configuration
  ansible.builtin.template:
    src: sshd_config.j2
    dest: /etc/ssh/sshd_config
    mode: "0644"
  become: true

- name: Reload sshd
  ansible.builtin.systemd_service:
    name: ssh
    state: reloaded
  become: true

- name: A fresh SSH login still works (no shared connection)
  ansible.builtin.command:
    argv: [ssh, -o, BatchMode=yes, -o, ControlPath=none, -o, ConnectTimeout=10, "{{ ansible_host }}", "true"]
  delegate_to: localhost
  changed_when: false

- name: Keep the change
  homelab.nixos.rollback_guard:
    name: sshd
    state: confirmed
  become: true

- name: Go back to the snapshot now instead of waiting for the timer
  homelab.nixos.rollback_guard:
    name: sshd
    state: fired
  become: true
"""

RETURN = r"""
name:
  description: Name of the guard.
  returned: always
  type: str
  sample: sshd
unit:
  description: Name of the transient units, without the C(.timer) and C(.service) suffixes.
  returned: always
  type: str
  sample: homelab-rollback-sshd
snapshot_dir:
  description: Directory of the guard.
  returned: always
  type: str
  sample: /var/lib/homelab/rollback/sshd
previous_status:
  description:
    - What the guard was before the task. V(absent) (no directory), V(armed), V(restoring) (the restore started
      and has not finished, or was interrupted), V(fired) (the C(restored) marker exists) or V(confirmed) (a
      confirmation did not finish removing the directory).
  returned: always
  type: str
  sample: armed
fires_at:
  description: When the timer fires (epoch seconds); in check mode when it would.
  returned: when state=armed
  type: int
  sample: 1767225720
paths:
  description: The guarded paths, normalised.
  returned: when state=armed
  type: list
  elements: str
  sample: [/etc/ssh/sshd_config]
absent_paths:
  description: Guarded paths that do not exist now; the restore removes them.
  returned: when state=armed
  type: list
  elements: str
  sample: [/etc/ssh/sshd_config.d/50-homelab.conf]
previous_restored_at:
  description: When the previous guard of this name restored its snapshot (the C(restored) marker, UTC).
  returned: when state=armed and the previous guard had fired
  type: str
  sample: "2026-01-31T12:02:00Z"
restored_at:
  description: When the guard restored its snapshot (the C(restored) marker, UTC).
  returned: when state=fired and the guard has fired
  type: str
  sample: "2026-01-31T12:02:00Z"
cmd:
  description: The last command the module ran (C(systemd-run), C(systemctl stop) or C(/bin/sh restore.sh)).
  returned: when a command ran
  type: list
  elements: str
rc:
  description: Exit code of the command in RV(cmd).
  returned: when a command ran
  type: int
stdout:
  description: Standard output of the command in RV(cmd).
  returned: when a command ran
  type: str
stderr:
  description: Standard error of the command in RV(cmd).
  returned: when a command ran
  type: str
problems:
  description: Steps of C(restore.sh) that failed, as the script reported them.
  returned: when state=fired ran the restore
  type: list
  elements: str
"""

import json
import os
import shutil
import tempfile
import time
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.nixos.plugins.module_utils._rollback_guard import (
    ABSENT,
    ARMED,
    CONFIRMED,
    DEFAULT_STATE_DIR,
    DEFAULT_TIMEOUT,
    ENV,
    FIRED,
    KIND_ABSENT,
    RESTORING,
    STATES,
    GuardError,
    GuardLayout,
    already_armed_message,
    check_params,
    fired_message,
    guard_info,
    preview,
    read_guard,
    render_script,
    restore_argv,
    restoring_message,
    script_failures,
    search_path,
    snapshot,
    stop_timer_argv,
    systemd_run_argv,
    timer_not_loaded,
    timer_unit,
    unit_name,
    unsafe_state_dir,
)


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", choices=list(STATES), default="armed"),
            paths=dict(type="list", elements="path", default=[]),
            restore_commands=dict(type="list", elements="raw", default=[]),
            timeout=dict(type="int", default=DEFAULT_TIMEOUT),
            state_dir=dict(type="path", default=DEFAULT_STATE_DIR),
        ),
        supports_check_mode=True,
    )


class RollbackGuard:
    def __init__(self, module, params, clock=time.time):
        self.module = module
        self.params = params
        self.clock = clock
        self.layout = GuardLayout(params["state_dir"], params["name"])
        self.result = dict(
            changed=False,
            name=self.layout.name,
            unit=unit_name(self.layout.name),
            snapshot_dir=self.layout.directory,
        )

    def run(self):
        status = read_guard(self.layout)
        self.result["previous_status"] = status.status
        return getattr(self, self.params["state"])(status)

    # --- helpers ---------------------------------------------------------------------------------------------

    def fail(self, msg):
        """End the task: main() turns this into fail_json with the result so far (cmd, rc, stdout, stderr)."""
        raise GuardError(msg)

    def failure(self):
        """What fail_json returns besides ``msg``."""
        result = dict(self.result)
        result.pop("changed", None)
        return result

    def binary(self, name):
        path = self.module.get_bin_path(name)
        if not path:
            self.fail("%s was not found: the rollback guard needs systemd on the host" % name)
        return path

    def command(self, args):
        """``(rc, stderr)`` of ``run_command`` with an argument list; all its output goes into the result.

        A command that cannot start is rc 127, not fail_json: run_command's own handling of that would end the
        module at once, before ``armed`` removes a snapshot that no timer will ever restore.
        """
        try:
            rc, out, err = self.module.run_command(args, environ_update=ENV, handle_exceptions=False)
        except OSError as e:
            rc, out, err = 127, "", str(e)
        self.result.update(cmd=list(args), rc=rc, stdout=out, stderr=err)
        return rc, err

    def stop_timer(self):
        """``(ok, rc, stderr)``; a timer that is not loaded (elapsed and collected) is ok."""
        systemctl = self.binary("systemctl")
        rc, err = self.command(stop_timer_argv(self.layout.name, systemctl))
        return rc == 0 or timer_not_loaded(rc, err), rc, err

    def write_private(self, path, text, mode):
        """Write ``text`` to ``path`` with atomic_move, then set ``mode`` (atomic_move applies the umask)."""
        fd, tmp = tempfile.mkstemp(prefix=".ansible-", dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            self.module.atomic_move(tmp, path)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
        os.chmod(path, mode)

    def prepare_state_dir(self):
        state_dir = self.layout.state_dir
        if not os.path.isdir(state_dir):
            os.makedirs(state_dir, mode=0o700)
            os.chmod(state_dir, 0o700)

    # --- states ----------------------------------------------------------------------------------------------

    def armed(self, status):
        layout, params = self.layout, self.params
        if status.armed:
            self.fail(already_armed_message(layout, status, self.clock()))
        problem = unsafe_state_dir(layout.state_dir)
        if problem:
            self.fail(problem)
        entries = preview(params["paths"])
        self.result.update(
            changed=True,
            fires_at=int(self.clock()) + params["timeout"],
            paths=[entry["path"] for entry in entries],
            absent_paths=[entry["path"] for entry in entries if entry["kind"] == KIND_ABSENT],
        )
        if status.status == FIRED:
            self.result["previous_restored_at"] = status.restored_at
        systemd_run = self.binary("systemd-run")
        if self.module.check_mode:
            return self.result

        try:
            if status.exists:
                # A guard that fired, or the leftover of a confirmation that did not finish.
                shutil.rmtree(layout.directory)
            self.prepare_state_dir()
            os.mkdir(layout.directory, 0o700)
        except FileExistsError:
            self.fail("%s appeared while arming: is another task arming guard %s?" % (layout.directory, layout.name))
        except OSError as e:
            self.fail("could not create %s: %s" % (layout.directory, e))
        try:
            os.chmod(layout.directory, 0o700)
            os.mkdir(layout.files, 0o700)
            entries = snapshot(params["paths"], layout)
            armed_at = int(self.clock())
            info = guard_info(layout, entries, armed_at, params["timeout"])
            self.write_private(layout.info, json.dumps(info, indent=2, sort_keys=True) + "\n", 0o600)
            script = render_script(layout, entries, params["restore_commands"], search_path(os.environ.get("PATH")))
            self.write_private(layout.script, script, 0o700)
            with open(layout.pending, "w", encoding="utf-8"):
                pass
            rc = self.command(systemd_run_argv(layout, params["timeout"], systemd_run))[0]
        except OSError as e:
            shutil.rmtree(layout.directory, ignore_errors=True)
            self.fail("could not arm rollback guard %s, nothing is armed: %s" % (layout.name, e))
        except BaseException:
            # Nothing may stay armed without a timer.
            shutil.rmtree(layout.directory, ignore_errors=True)
            raise
        if rc != 0:
            shutil.rmtree(layout.directory, ignore_errors=True)
            self.fail(
                "systemd-run could not start the timer of rollback guard %s (rc %d): the guard is not armed and its "
                "snapshot was removed" % (layout.name, rc)
            )
        self.result.update(
            fires_at=info["fires_at"],
            paths=info["paths"],
            absent_paths=info["absent_paths"],
        )
        return self.result

    def confirmed(self, status):
        layout = self.layout
        if status.status == FIRED:
            self.fail(fired_message(layout, status))
        if status.status == RESTORING:
            self.fail(restoring_message(layout, status))
        if status.status == ABSENT:
            return self.result
        self.result["changed"] = True
        if self.module.check_mode:
            return self.result
        if status.status == ARMED:
            ok, rc = self.stop_timer()[:2]
            if not ok:
                self.fail(
                    "could not stop %s (rc %d): rollback guard %s is still armed and will restore its snapshot"
                    % (timer_unit(layout.name), rc, layout.name)
                )
            try:
                # The claim: from here on the restore script does nothing.
                os.rename(layout.pending, layout.confirmed)
            except FileNotFoundError:
                now = read_guard(layout)
                if now.status == FIRED:
                    self.fail(fired_message(layout, now))
                if now.status == RESTORING:
                    self.fail(restoring_message(layout, now))
                # No pending token: an arm that stopped before starting its timer. Nothing can fire.
        shutil.rmtree(layout.directory)
        return self.result

    def fired(self, status):
        layout = self.layout
        if status.status == FIRED:
            self.result["restored_at"] = status.restored_at
            return self.result
        if status.status in (ABSENT, CONFIRMED):
            return self.result
        self.result["changed"] = True
        if self.module.check_mode:
            return self.result
        # Stop the timer first, so it does not start a second restore while this one runs.
        ok, rc, err = self.stop_timer()
        if not ok:
            self.module.warn(
                "could not stop %s (rc %d): %s; restoring now anyway, the timer's run will find the guard "
                "restored and do nothing" % (timer_unit(layout.name), rc, err.strip())
            )
        rc, err = self.command(restore_argv(layout))
        problems = script_failures(layout.name, err)
        self.result["problems"] = problems
        after = read_guard(layout)
        if after.status == FIRED:
            self.result["restored_at"] = after.restored_at
        if rc != 0:
            self.fail("%s exited with rc %d" % (layout.script, rc))
        if problems:
            self.fail(
                "%s ran, but %d step(s) failed: %s" % (layout.script, len(problems), "; ".join(problems)),
            )
        if after.status != FIRED:
            self.fail("%s exited 0 but wrote no marker %s" % (layout.script, layout.restored))
        return self.result


def main():
    module = build_module()
    try:
        # Bad input fails here, before anything is touched or run.
        params = check_params(module.params)
    except GuardError as e:
        module.fail_json(msg=str(e))
    guard = RollbackGuard(module, params)
    try:
        result = guard.run()
    except GuardError as e:
        module.fail_json(msg=str(e), **guard.failure())
    except Exception as e:
        module.fail_json(
            msg="rollback_guard failed unexpectedly: %s: %s" % (type(e).__name__, e),
            exception=traceback.format_exc(),
            **guard.failure(),
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
