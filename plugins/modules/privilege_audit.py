#!/usr/bin/python
# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: privilege_audit
short_description: Audit who can become root on a host, and optionally enforce the declared administrators
version_added: 0.1.0
description:
  - Reports, from the host's files, the accounts with UID 0, the members of the admin groups (O(admin_groups)),
    what sudoers grants C(ALL), the accounts with an empty password, the accounts with a login shell, and the
    SSH keys each account accepts, with sentences in RV(problems) for what breaks least privilege.
  - Reads C(/etc/passwd), C(/etc/group), C(/etc/shadow), C(/etc/sudoers), the files of C(/etc/sudoers.d) that
    sudo reads (names without a C(.) and not ending in C(~)), and for each account
    C(<home>/.ssh/authorized_keys), C(<home>/.ssh/authorized_keys2) and C(/etc/ssh/authorized_keys.d/<user>)
    (where NixOS puts C(users.users.<name>.openssh.authorizedKeys)).
  - The members of a group are the users C(/etc/group) lists plus the accounts whose primary group it is.
  - The sudoers parser is simple. It understands rules in the style of "alice ALL=(ALL:ALL) ALL" and
    "%wheel ALL=(ALL) NOPASSWD:ALL" (users, C(%group), C(#uid), C(%#gid), C(ALL); Runas lists; tags), and
    counts a rule as a grant when a command is C(ALL) and it runs as root (no Runas list, or one naming C(ALL),
    C(root) or C(#0)). Comments and C(Defaults) are ignored; alias definitions and rules that use aliases,
    negations or netgroups are listed in RV(unparsed) to be checked by hand. C(#include), C(@include),
    C(#includedir) and C(@includedir) are listed in RV(sudoers_includes) and not followed, apart from
    C(/etc/sudoers.d), which is always read.
  - With O(enforce=true), removes every member that C(/etc/group) lists in an admin group and that is neither in
    O(admins) nor C(root), with C(gpasswd -d <user> <group>). It adds nobody (creating administrators is the job
    of another role) and does not edit sudoers.
  - No password hash, key or file content is returned; keys are shown by their SHA-256 fingerprint, and a line
    that does not parse by its number and a reason.
options:
  admins:
    description:
      - The declared administrators. Members of the admin groups and users granted C(ALL) by sudoers who are not
        listed here (and not C(root)) are reported in RV(unexpected_admins).
      - Those not in the first admin group that exists on the host are reported in RV(missing_admins) (C(root)
        needs no group and is never missing); they are never added to it.
    type: list
    elements: str
    default: []
  admin_groups:
    description:
      - The groups that grant root through sudo, in order of preference. Only those that exist on the host are
        considered; the first of them is the primary admin group that RV(missing_admins) refers to.
    type: list
    elements: str
    default: [sudo, wheel, admin]
  enforce:
    description:
      - Remove the members of the admin groups that are not in O(admins) (C(root) is kept) from those groups.
      - Fails before changing anything when, after the removal, no account of O(admins) would be in an admin
        group or granted C(ALL) by sudoers (directly, through a group it is in, or as every user). An empty
        O(admins) therefore refuses any removal.
      - A group that is the primary group of an account, and sudoers grants, are reported but not changed.
    type: bool
    default: false
  root:
    description:
      - Directory that stands for C(/) when reading files, for testing or for an offline image mounted elsewhere.
        Symlinks are resolved inside it. Paths in the results are as seen inside it.
      - With a root other than C(/), O(enforce) runs C(gpasswd --root <root>), which needs the module to run as
        root.
    type: path
    default: /
attributes:
  check_mode:
    support: full
    description: Runs no command; reports in RV(removed) and C(changed) what O(enforce) would remove.
  diff_mode:
    support: full
    description: Shows the members of the admin groups before and after O(enforce).
notes:
  - Run the module as root (C(become=true)). Without it C(/etc/shadow), C(/etc/sudoers) and home directories are
    usually unreadable; the module then warns, returns RV(shadow_readable=false) and lists the files in
    RV(unreadable_files).
  - On NixOS, C(/etc/group) is rewritten on every activation from C(users.users.<name>.extraGroups) and
    C(users.groups.<name>.members), so a removal lasts until the next switch; the module warns about that. Drop
    the membership from the configuration as well.
  - The C(AuthorizedKeysFile) setting of C(sshd_config) is not read; the files listed above are the defaults of
    Debian and NixOS. C(doas), polkit and C(su) rules are not audited.
  - A grant of C(ALL) is reported whichever host list the rule has.
seealso:
  - module: homelab.nixos.sshd_offer
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Audit privileges
  homelab.nixos.privilege_audit:
    admins: [alice]
  become: true
  register: audit

- name: Show what breaks least privilege
  ansible.builtin.debug:
    var: audit.problems

- name: Only the declared administrators keep sudo
  homelab.nixos.privilege_audit:
    admins: "{{ homelab_admins }}"
    admin_groups: [wheel]
    enforce: true
  become: true

- name: Audit an image mounted on /mnt
  homelab.nixos.privilege_audit:
    root: /mnt
  become: true
"""

RETURN = r"""
uid0:
  description: Accounts with UID 0, C(root) included.
  returned: always
  type: list
  elements: str
  sample: [root, toor]
admin_groups_found:
  description: The groups of O(admin_groups) that exist on the host, in the order of O(admin_groups).
  returned: always
  type: list
  elements: str
  sample: [sudo]
admin_group_members:
  description:
    - Members of each admin group that exists, as found before O(enforce) changed anything, including the
      accounts whose primary group it is.
  returned: always
  type: dict
  sample: {sudo: [alice, bob], wheel: []}
sudoers_grants:
  description: Rules that grant the command C(ALL) as root, one entry per user or group they name.
  returned: always
  type: list
  elements: dict
  contains:
    who:
      description: User, C(%group), C(#uid), C(%#gid) or C(ALL) (every user), as written.
      type: str
      sample: "%sudo"
    source_file:
      description: The sudoers file.
      type: str
      sample: /etc/sudoers
    line:
      description: Number of the (first) line of the rule.
      type: int
      sample: 12
    rule:
      description: The rule, without its comment and with blanks collapsed.
      type: str
      sample: "%sudo ALL=(ALL:ALL) ALL"
    nopasswd:
      description: Whether C(ALL) is granted with C(NOPASSWD).
      type: bool
      sample: false
unparsed:
  description: Sudoers lines the parser does not understand (alias definitions, aliases, negations, ...).
  returned: always
  type: list
  elements: dict
  contains:
    source_file:
      description: The sudoers file.
      type: str
    line:
      description: Number of the (first) line.
      type: int
    rule:
      description: The line, without its comment and with blanks collapsed.
      type: str
    reason:
      description: What the parser did not understand.
      type: str
      sample: uses a User_Alias
sudoers_includes:
  description: The include directives of the sudoers files.
  returned: always
  type: list
  elements: dict
  contains:
    source_file:
      description: The sudoers file.
      type: str
    line:
      description: Number of the line.
      type: int
    directive:
      description: C(#include), C(@include), C(#includedir) or C(@includedir).
      type: str
    path:
      description: The included path, made absolute against the directory of the sudoers file.
      type: str
      sample: /etc/sudoers.d
shadow_readable:
  description: Whether C(/etc/shadow) was read. When false, RV(empty_passwords) only has the accounts whose
    C(/etc/passwd) password field is empty.
  returned: always
  type: bool
empty_passwords:
  description:
    - Accounts whose password field is empty in C(/etc/shadow), or in C(/etc/passwd) (no C(x)). Locked fields
      (C(!), C(*), C(!!), C(!<hash>)) are not empty.
  returned: always
  type: list
  elements: str
  sample: [guest]
login_accounts:
  description: Accounts whose shell lets someone log in (not C(nologin), C(false), C(true), C(sync), C(shutdown)
    or C(halt); an empty shell field is C(/bin/sh)).
  returned: always
  type: list
  elements: str
  sample: [alice, root]
authorized_keys:
  description: The keys each account accepts, by user; accounts without keys are left out.
  returned: always
  type: dict
  sample:
    alice:
      - type: ssh-ed25519
        fingerprint: SHA256:Q7C1c4dI0H8HBj4cHbUZ1U2xM5TRQ5v3Rj3fkP9bVZs
        comment: alice@laptop
        options: ['from="100.64.0.0/10"']
        file: /home/alice/.ssh/authorized_keys
        line: 1
invalid_authorized_keys:
  description: Lines of the authorized keys files that are not a valid key.
  returned: always
  type: list
  elements: dict
  contains:
    user:
      description: The account.
      type: str
    file:
      description: The authorized keys file.
      type: str
    line:
      description: The line number.
      type: int
    reason:
      description: Why the line is not a valid key.
      type: str
      sample: the key data is not valid base64
unexpected_admins:
  description:
    - Members of the admin groups and users granted C(ALL) by sudoers (directly or through another group) who are
      not in O(admins), C(root) left out.
  returned: always
  type: list
  elements: str
  sample: [bob]
missing_admins:
  description: Accounts of O(admins) other than C(root) that are not in the primary admin group (all of them when
    none exists).
  returned: always
  type: list
  elements: str
  sample: [carol]
problems:
  description: One sentence for each finding that breaks least privilege, and for what could not be checked.
  returned: always
  type: list
  elements: str
  sample:
    - UID 0 account toor besides root
    - account guest has an empty password
    - bob is in sudo but not a declared administrator
unreadable_files:
  description: Files that exist but could not be read (C(/etc/shadow) is reported by RV(shadow_readable)).
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file.
      type: str
    reason:
      description: Why it could not be read.
      type: str
      sample: Permission denied
removed:
  description: The memberships O(enforce) removed (in check mode, would remove).
  returned: when enforce=true
  type: list
  elements: dict
  contains:
    user:
      description: The user.
      type: str
    group:
      description: The admin group.
      type: str
  sample: [{user: bob, group: sudo}]
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.nixos.plugins.module_utils._privilege_audit import (
    DEFAULT_ADMIN_GROUPS,
    ENV,
    GROUP,
    SHADOW,
    Audit,
    AuditError,
    check_params,
    gpasswd_argv,
    membership_text,
    read_host,
)

# gpasswd is in sbin on Debian and in the system profile on NixOS.
GPASSWD_DIRS = ["/run/current-system/sw/bin", "/usr/sbin", "/sbin"]


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            admins=dict(type="list", elements="str", default=[]),
            admin_groups=dict(type="list", elements="str", default=list(DEFAULT_ADMIN_GROUPS)),
            enforce=dict(type="bool", default=False),
            root=dict(type="path", default="/"),
        ),
        supports_check_mode=True,
    )


def warn(module, files):
    if files.shadow_problem:
        module.warn(
            "could not read %s (%s): empty passwords were only checked in /etc/passwd; run the module as root "
            "(become: true)" % (SHADOW, files.shadow_problem)
        )
    if files.unreadable:
        module.warn(
            "could not read %s: the results leave them out; run the module as root (become: true)"
            % ", ".join("%s (%s)" % (entry["path"], entry["reason"]) for entry in files.unreadable)
        )


def enforce(module, audit, params, result):
    """Remove the unexpected members of the admin groups; fills ``result`` (changed, removed, diff)."""
    removals = audit.removals()
    refusal = audit.refusal(removals)
    if refusal:
        module.fail_json(msg=refusal, **result)
    result["removed"] = []
    if module._diff:
        result["diff"] = dict(
            before=membership_text(audit.admin_group_members()),
            after=membership_text(audit.admin_group_members(removals)),
            before_header="%s (admin groups)" % GROUP,
            after_header="%s (admin groups)" % GROUP,
        )
    if not removals:
        return
    if audit.files.is_nixos:
        module.warn(
            "NixOS rewrites %s on the next activation from users.users.<name>.extraGroups and "
            "users.groups.<name>.members: remove %s from the configuration too, or the next switch puts them back"
            % (GROUP, ", ".join(sorted({removal["user"] for removal in removals})))
        )
    gpasswd = module.get_bin_path("gpasswd", opt_dirs=GPASSWD_DIRS)
    if not gpasswd:
        module.fail_json(msg="gpasswd was not found: enforce needs it (package shadow or passwd)", **result)
    result["changed"] = True
    if module.check_mode:
        result["removed"] = removals
        return
    for removal in removals:
        argv = gpasswd_argv(gpasswd, removal["user"], removal["group"], params["root"])
        try:
            rc, out, err = module.run_command(argv, environ_update=ENV, handle_exceptions=False)
        except OSError as e:
            rc, out, err = 127, "", str(e)
        if rc != 0:
            result["changed"] = bool(result["removed"])
            module.fail_json(
                msg="gpasswd could not remove %s from %s (rc %d)" % (removal["user"], removal["group"], rc),
                cmd=argv,
                rc=rc,
                stdout=out,
                stderr=err,
                **result,
            )
        result["removed"].append(removal)


def main():
    module = build_module()
    try:
        params = check_params(module.params)
        files = read_host(params["root"])
    except AuditError as e:
        module.fail_json(msg=str(e))
    try:
        audit = Audit(files, params["admins"], params["admin_groups"])
        result = dict(changed=False, **audit.report())
    except Exception as e:
        module.fail_json(
            msg="privilege_audit failed unexpectedly: %s: %s" % (type(e).__name__, e), exception=traceback.format_exc()
        )
    warn(module, files)
    if params["enforce"]:
        enforce(module, audit, params, result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
