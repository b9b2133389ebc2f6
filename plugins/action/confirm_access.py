# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of homelab.nixos.confirm_access: a fresh ssh login from the controller.

Runs entirely on the controller and never executes a module on the host. The logic is in
plugins/plugin_utils/_confirm_access.py.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.homelab.nixos.plugins.plugin_utils._confirm_access import (
    ConfirmAccessError,
    build_argv,
    confirm,
    connection_settings,
)

display = Display()

ARGUMENT_SPEC = dict(
    timeout=dict(type="float", default=30),
    delay=dict(type="float", default=2),
    command=dict(type="str", default="true"),
    host=dict(type="str"),
    port=dict(type="int"),
    user=dict(type="str"),
    private_key_file=dict(type="path"),
    ssh_args=dict(type="raw"),
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)
    # Nothing goes through Ansible's connection to the host.
    _requires_connection = False

    def _host_var(self, task_vars, name):
        value = task_vars.get(name)
        return None if value is None else self._templar.template(value)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp

        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        if args["timeout"] < 0 or args["delay"] < 0:
            raise AnsibleActionFail("timeout and delay must not be negative")
        try:
            settings = connection_settings(
                args,
                lambda name: self._host_var(task_vars, name),
                fallback_user=self._play_context.remote_user,
                fallback_private_key_file=self._play_context.private_key_file,
            )
        except ConfirmAccessError as e:
            raise AnsibleActionFail(str(e)) from e
        argv = build_argv(settings)
        result.update(changed=False, cmd=argv)
        target = "%s port %d" % (settings["host"], settings["port"])
        if settings["user"]:
            target = "%s@%s" % (settings["user"], target)

        if self._task.check_mode:
            result.update(attempts=0, elapsed=0.0, msg="check mode: a fresh SSH login to %s was not checked" % target)
            return result

        display.vvv("confirm_access: %s" % " ".join(argv), host=settings["host"])
        try:
            outcome = confirm(
                argv,
                args["timeout"],
                args["delay"],
                log=lambda line: display.vvv("confirm_access: " + line, host=settings["host"]),
            )
        except ConfirmAccessError as e:
            raise AnsibleActionFail(str(e)) from e
        result.update(attempts=outcome.attempts, elapsed=round(outcome.elapsed, 3))
        if outcome.ok:
            result.update(stdout=outcome.last.stdout, msg="fresh SSH login to %s works" % target)
            return result
        result.update(
            failed=True,
            rc=outcome.last.rc,
            stderr=outcome.last.stderr,
            msg="no fresh SSH login to %s within %gs (%d attempt%s): %s"
            % (target, args["timeout"], outcome.attempts, "" if outcome.attempts == 1 else "s", outcome.reason),
        )
        return result
