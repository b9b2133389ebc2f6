#!/usr/bin/python
# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: sshd_offer
short_description: Read the algorithms a running SSH server really offers
version_added: 0.1.0
description:
  - Connects to an SSH server, sends an SSH identification and reads the server's identification line and its
    first key exchange message (C(SSH_MSG_KEXINIT), RFC 4253). These are sent in clear text before any
    negotiation, so the module needs no credentials and no SSH client.
  - Returns the key exchange, host key, cipher, MAC and compression algorithms the live daemon offers. A
    hardening role can assert on them instead of trusting the daemon's configuration file, which may not be the
    one the running process loaded.
  - The connection is closed right after the C(SSH_MSG_KEXINIT); no key exchange takes place. The server
    may log a connection closed before authentication.
  - Fails, naming the host, the port and the reason, when nothing listens, the peer is not an SSH server, or its
    answer is malformed or incomplete within O(timeout).
  - The connection is made from the managed host; the default O(host) checks its own SSH daemon.
options:
  host:
    description: Address or name of the SSH server (IPv4 or IPv6).
    type: str
    default: 127.0.0.1
  port:
    description: TCP port of the SSH server.
    type: int
    default: 22
  timeout:
    description: Seconds to wait for the connection and the server's answer, in total.
    type: int
    default: 10
attributes:
  check_mode:
    support: full
    description: Only reads; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to show.
notes:
  - C(strict_kex) tells whether the server offers OpenSSH's strict key exchange, the countermeasure against the
    Terrapin attack (CVE-2023-48795).
seealso:
  - name: RFC 4253, The Secure Shell (SSH) Transport Layer Protocol
    description: Sections 4.2 (identification), 6 (binary packets) and 7.1 (SSH_MSG_KEXINIT).
    link: https://www.rfc-editor.org/rfc/rfc4253
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Read what the running sshd offers
  homelab.nixos.sshd_offer:
  register: sshd_offer

- name: The live daemon offers only the hardened algorithms
  ansible.builtin.assert:
    that:
      - sshd_offer.strict_kex
      - sshd_offer.ciphers | difference(['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com']) == []
      - "'diffie-hellman-group14-sha1' not in sshd_offer.kex_algorithms_real"
    fail_msg: "sshd offers {{ sshd_offer.kex_algorithms_real }} / {{ sshd_offer.ciphers }}"

- name: Check another host's sshd from the controller
  homelab.nixos.sshd_offer:
    host: "{{ ansible_host | default(inventory_hostname) }}"
    port: 2222
    timeout: 5
  delegate_to: localhost
"""

RETURN = r"""
banner:
  description: The server's identification line, without CR LF.
  returned: success
  type: str
  sample: SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3
software:
  description: The part of RV(banner) after C(SSH-2.0-), comments included.
  returned: success
  type: str
  sample: OpenSSH_9.2p1 Debian-2+deb12u3
kex_algorithms:
  description: Key exchange algorithms offered, in the server's order of preference, pseudo-algorithms included.
  returned: success
  type: list
  elements: str
  sample: [sntrup761x25519-sha512@openssh.com, curve25519-sha256, ext-info-s, kex-strict-s-v00@openssh.com]
kex_algorithms_real:
  description:
    - RV(kex_algorithms) without the pseudo-algorithms that only signal extensions
      (C(ext-info-s), C(ext-info-c), C(kex-strict-s-v00@openssh.com), C(kex-strict-c-v00@openssh.com)).
  returned: success
  type: list
  elements: str
  sample: [sntrup761x25519-sha512@openssh.com, curve25519-sha256]
strict_kex:
  description: Whether RV(kex_algorithms) contains C(kex-strict-s-v00@openssh.com) (the Terrapin countermeasure).
  returned: success
  type: bool
  sample: true
server_host_key_algorithms:
  description: Host key (signature) algorithms the server can prove its identity with.
  returned: success
  type: list
  elements: str
  sample: [rsa-sha2-512, rsa-sha2-256, ecdsa-sha2-nistp256, ssh-ed25519]
ciphers:
  description: Encryption algorithms offered from client to server.
  returned: success
  type: list
  elements: str
  sample: [chacha20-poly1305@openssh.com, aes128-ctr, aes256-gcm@openssh.com]
ciphers_s2c:
  description: Encryption algorithms offered from server to client.
  returned: success
  type: list
  elements: str
  sample: [chacha20-poly1305@openssh.com, aes128-ctr, aes256-gcm@openssh.com]
macs:
  description: MAC algorithms offered from client to server.
  returned: success
  type: list
  elements: str
  sample: [hmac-sha2-256-etm@openssh.com, hmac-sha2-512-etm@openssh.com]
macs_s2c:
  description: MAC algorithms offered from server to client.
  returned: success
  type: list
  elements: str
  sample: [hmac-sha2-256-etm@openssh.com, hmac-sha2-512-etm@openssh.com]
compression:
  description: Compression algorithms offered from client to server.
  returned: success
  type: list
  elements: str
  sample: [none, zlib@openssh.com]
"""

import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.nixos.plugins.module_utils._ssh_kexinit import (
    KexinitError,
    probe,
    real_kex_algorithms,
    strict_kex,
)


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", default="127.0.0.1"),
            port=dict(type="int", default=22),
            timeout=dict(type="int", default=10),
        ),
        supports_check_mode=True,
    )


def _connect_failure(error, timeout):
    # socket.timeout is an alias of TimeoutError only from Python 3.10 on.
    if isinstance(error, socket.timeout):
        return "no connection within %ds" % timeout
    return error.strerror or str(error) or type(error).__name__


def main():
    module = build_module()
    host = module.params["host"]
    port = module.params["port"]
    timeout = module.params["timeout"]
    if not host:
        module.fail_json(msg="host must not be empty")
    if not 0 < port < 65536:
        module.fail_json(msg="port must be between 1 and 65535, got %d" % port, host=host, port=port)
    if timeout <= 0:
        module.fail_json(msg="timeout must be a positive number of seconds, got %d" % timeout, host=host, port=port)
    try:
        offer = probe(host, port, timeout)
    except KexinitError as e:
        module.fail_json(msg="SSH server %s port %d: %s" % (host, port, e), host=host, port=port)
    except OSError as e:
        module.fail_json(
            msg="cannot connect to %s port %d: %s" % (host, port, _connect_failure(e, timeout)), host=host, port=port
        )
    offer["strict_kex"] = strict_kex(offer["kex_algorithms"])
    offer["kex_algorithms_real"] = real_kex_algorithms(offer["kex_algorithms"])
    module.exit_json(changed=False, **offer)


if __name__ == "__main__":
    main()
