# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: source_address
short_description: The controller's address that a host sees connections come from
version_added: 0.1.0
description:
  - For each host name or address, the local IP address the controller's routing table picks to reach it (a UDP
    socket is connected, which sends nothing). Without NAT in between, that is the address the host sees Ansible
    connect from, so a role can refuse a firewall or sshd source restriction that would lock the controller out.
options:
  _terms:
    description: Host names or IP addresses.
    required: true
  port:
    description: Port used for the route lookup (no packet is sent).
    type: int
    default: 22
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Where Ansible connects from
  ansible.builtin.debug:
    msg: "{{ lookup('homelab.nixos.source_address', ansible_host | default(inventory_hostname)) }}"
"""

RETURN = r"""
_raw:
  description: One local IP address per term.
  type: list
  elements: str
"""

import socket

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase


def source_address(host, port=22):
    """The local address the kernel would use to reach ``host``."""
    try:
        family, kind, proto, _canon, address = socket.getaddrinfo(host, port, proto=socket.IPPROTO_UDP)[0]
    except (socket.gaierror, IndexError) as e:
        raise AnsibleLookupError(f"source_address: cannot resolve {host!r}: {e}") from e
    with socket.socket(family, kind, proto) as sock:
        try:
            sock.connect(address)
        except OSError as e:
            raise AnsibleLookupError(f"source_address: no route to {host!r}: {e}") from e
        return sock.getsockname()[0]


class LookupModule(LookupBase):
    """The source_address lookup."""

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        port = self.get_option("port")
        return [source_address(str(term), port) for term in terms]
