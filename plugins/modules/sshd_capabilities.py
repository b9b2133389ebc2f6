#!/usr/bin/python
# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: sshd_capabilities
short_description: What the host's OpenSSH supports
version_added: 0.1.0
description:
  - Runs C(ssh -V) and C(ssh -Q) for key exchange algorithms, ciphers, MACs and key/signature algorithms, so a
    hardened sshd configuration lists only algorithms this OpenSSH build knows (an unknown name makes sshd refuse
    to start).
  - Also reports where C(sshd) and the SFTP server are.
  - Changes nothing.
options: {}
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - OpenSSH (C(ssh) and C(sshd)) on the host.
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Read what OpenSSH supports
  homelab.nixos.sshd_capabilities:
  register: __ssh_hardening_capabilities
"""

RETURN = r"""
version:
  description: OpenSSH version as C(ssh -V) prints it.
  returned: always
  type: str
  sample: OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024
algorithms:
  description: C(ssh -Q) lists by query name.
  returned: always
  type: dict
  contains:
    kex:
      description: Key exchange algorithms.
      type: list
      elements: str
    cipher:
      description: Ciphers.
      type: list
      elements: str
    mac:
      description: MACs.
      type: list
      elements: str
    key-sig:
      description: Key types and signature algorithms.
      type: list
      elements: str
sshd:
  description: Path of the sshd binary.
  returned: always
  type: str
  sample: /usr/sbin/sshd
sftp_server:
  description: Path of the SFTP server, empty when none was found.
  returned: always
  type: str
  sample: /usr/lib/openssh/sftp-server
"""

import os

from ansible.module_utils.basic import AnsibleModule

QUERIES = ("kex", "cipher", "mac", "key-sig")
SFTP_SERVERS = ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server", "/usr/libexec/sftp-server")


def build_module():
    return AnsibleModule(argument_spec={}, supports_check_mode=True)


def _run(module, args):
    rc, out, err = module.run_command(args, environ_update={"LC_ALL": "C"})
    if rc != 0:
        module.fail_json(msg="%s failed" % " ".join(args), rc=rc, stdout=out, stderr=err)
    return out, err


def main():
    module = build_module()
    ssh = module.get_bin_path("ssh", required=True)
    sshd = module.get_bin_path("sshd", required=True, opt_dirs=["/usr/sbin", "/sbin"])
    out, err = _run(module, [ssh, "-V"])
    version = (err or out).strip().splitlines()[0] if (err or out).strip() else ""
    algorithms = {}
    for query in QUERIES:
        out, _err = _run(module, [ssh, "-Q", query])
        algorithms[query] = [line.strip() for line in out.splitlines() if line.strip()]
    sftp = next((path for path in SFTP_SERVERS if os.access(path, os.X_OK)), "")
    module.exit_json(changed=False, version=version, algorithms=algorithms, sshd=sshd, sftp_server=sftp)


if __name__ == "__main__":
    main()
