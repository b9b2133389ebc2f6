# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: confirm_access
short_description: Prove from the controller that a fresh SSH login to the host works
version_added: 0.1.0
description:
  - The controller-side half of a commit-confirm safety net. After a change that can cut access (sshd, PAM,
    firewall), run this task; if it fails, the change is rolled back (for example by a timer on the host that
    only a successful confirmation cancels).
  - Runs the system C(ssh) client on the controller with a new connection (C(ControlMaster=no),
    C(ControlPath=none), C(BatchMode=yes)) and runs O(command) on the host. Ansible's own persistent
    connection is neither used nor needed, so it cannot hide a broken sshd.
  - Retries every O(delay) seconds until the login works or O(timeout) seconds have passed. Each attempt is
    killed at the deadline, but not before it has run 10 seconds.
  - Nothing is executed on the host through Ansible; the task runs entirely on the controller (it is an action
    plugin) and changes nothing.
  - Connection details default to the host's connection variables, so the check uses the same address, port,
    user, key and C(ansible_ssh_common_args) as Ansible.
  - Authentication must work without a prompt (key or agent); C(ansible_password) is not used.
options:
  timeout:
    description: Seconds to keep trying. At least one attempt is made.
    type: float
    default: 30
  delay:
    description: Seconds to wait between attempts.
    type: float
    default: 2
  command:
    description:
      - Command run on the host; it must exit 0. Passed to ssh as one argument, so the remote login shell
        interprets it.
    type: str
    default: "true"
  host:
    description:
      - Address to connect to. Defaults to C(ansible_host) (or C(ansible_ssh_host)), else C(inventory_hostname).
    type: str
  port:
    description: SSH port. Defaults to C(ansible_port) (or C(ansible_ssh_port)), else C(22).
    type: int
  user:
    description:
      - Login user, passed as C(-l). Defaults to C(ansible_user) (or C(ansible_ssh_user)), else the play's
        C(remote_user). Without any, ssh picks the user (its configuration or the local user name).
    type: str
  private_key_file:
    description:
      - Private key passed as C(-i). Defaults to C(ansible_ssh_private_key_file) (or C(ansible_private_key_file)),
        else the key given to Ansible (C(--private-key), C(private_key_file) in C(ansible.cfg)).
      - Only the path is passed to ssh; the key is never read by this plugin.
    type: path
  ssh_args:
    description:
      - Extra arguments for ssh, placed before the host, as a list or as one string split like a shell would.
      - Defaults to the host's C(ansible_ssh_common_args) followed by C(ansible_ssh_extra_args).
      - The options that make the connection fresh come first and cannot be overridden
        (ssh keeps the first value of an option).
    type: raw
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
    details: Everything runs on the controller.
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: In check mode nothing is run; the result says that access was not checked.
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Needs the OpenSSH C(ssh) client on the controller.
notes:
  - The host's key must already be trusted (or C(ansible_ssh_common_args) must say how to trust it), as
    C(BatchMode=yes) never asks.
  - Variables of the inventory host are used even when the task is delegated.
seealso:
  - module: ansible.builtin.wait_for_connection
  - module: homelab.nixos.sshd_offer
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Prove that a new SSH login still works after the sshd change
  homelab.nixos.confirm_access:
    timeout: 60

- name: Check a login as root on the new port, with the host's own key options
  homelab.nixos.confirm_access:
    port: 2222
    user: root
    command: systemctl is-system-running --wait
    timeout: 120
    delay: 5

- name: Check through a jump host
  homelab.nixos.confirm_access:
    ssh_args: -o ProxyJump=bastion.example.org -o StrictHostKeyChecking=yes
"""

RETURN = r"""
elapsed:
  description: Seconds from the first attempt until success or until giving up.
  returned: always
  type: float
  sample: 0.41
attempts:
  description: Number of ssh runs (0 in check mode).
  returned: always
  type: int
  sample: 3
cmd:
  description: The ssh command line used.
  returned: always
  type: list
  elements: str
  sample:
    - ssh
    - -o
    - BatchMode=yes
    - -o
    - ControlMaster=no
    - -o
    - ControlPath=none
    - -o
    - ConnectTimeout=5
    - -o
    - ServerAliveInterval=5
    - -p
    - "22"
    - -l
    - admin
    - --
    - 10.89.60.14
    - "true"
stdout:
  description: Output of O(command) on success.
  returned: success
  type: str
  sample: ""
rc:
  description: Exit status of the last attempt (null when it was killed at the timeout).
  returned: failure
  type: int
  sample: 255
stderr:
  description: Standard error of the last attempt.
  returned: failure
  type: str
  sample: "admin@10.89.60.14: Permission denied (publickey)."
"""
