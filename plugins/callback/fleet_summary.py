# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_summary
type: aggregate
short_description: A short per-host fleet summary at the end of a run
version_added: 0.1.0
description:
  - At the end of a playbook run, prints one line per host with the roles that converged on it, its ok, changed,
    failed and unreachable counts, and the service URLs its roles published.
  - Roles publish URLs by setting a fact whose name ends in C(_service_urls) (a list of strings).
  - Unreachable and failed hosts are listed with the first reason, so a stopped host is reported clearly.
  - Enable with C(callbacks_enabled = homelab.nixos.fleet_summary) next to any stdout callback.
requirements:
  - enable in configuration
author: homelab.nixos maintainers (@homelab-nixos)
"""

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    """Collects per-host results and prints a fleet table at the end."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "homelab.nixos.fleet_summary"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._hosts = {}

    def _host(self, result):
        name = result._host.get_name()
        return self._hosts.setdefault(
            name,
            {"roles": set(), "ok": 0, "changed": 0, "failed": 0, "unreachable": 0, "urls": [], "reason": None},
        )

    def _role(self, result):
        role = getattr(result._task, "_role", None)
        return role.get_name(include_role_fqcn=False) if role else None

    def v2_runner_on_ok(self, result):
        host = self._host(result)
        host["ok"] += 1
        if result._result.get("changed"):
            host["changed"] += 1
        role = self._role(result)
        if role:
            host["roles"].add(role)
        for key, value in (result._result.get("ansible_facts") or {}).items():
            if key.endswith("_service_urls") and isinstance(value, list):
                host["urls"].extend(str(v) for v in value if str(v) not in host["urls"])

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if ignore_errors:
            return
        host = self._host(result)
        host["failed"] += 1
        host["reason"] = host["reason"] or "%s: %s" % (result._task.get_name(), result._result.get("msg", "failed"))

    def v2_runner_on_unreachable(self, result):
        host = self._host(result)
        host["unreachable"] += 1
        host["reason"] = host["reason"] or "unreachable: %s" % result._result.get("msg", "").strip()

    def v2_playbook_on_stats(self, stats):
        if not self._hosts:
            return
        self._display.banner("FLEET SUMMARY")
        width = max(len(name) for name in self._hosts)
        for name in sorted(self._hosts):
            host = self._hosts[name]
            state = "UNREACHABLE" if host["unreachable"] else "FAILED" if host["failed"] else "converged"
            roles = ",".join(sorted(host["roles"])) or "-"
            counts = "ok={:<3} changed={:<3} failed={:<2} unreachable={:<2}".format(
                host["ok"], host["changed"], host["failed"], host["unreachable"]
            )
            line = f"{name.ljust(width)}  {state:<11} {counts} roles={roles}"
            color = "red" if state != "converged" else ("yellow" if host["changed"] else "green")
            self._display.display(line, color=color)
            if host["reason"]:
                self._display.display(" " * width + "  -> " + host["reason"].splitlines()[0], color="red")
            for url in host["urls"]:
                self._display.display(" " * width + "  " + url)
