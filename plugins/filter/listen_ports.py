# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: listen_ports
short_description: Merge a host's *_listen_ports declarations into the ports to open
version_added: 0.1.0
description:
  - "Every role declares what it listens on in a variable named C(<role>_listen_ports), a list of
    C({name, port, proto, allow_from}). This filter merges all variables of one host whose names end with
    C(_listen_ports) into one list sorted by port and protocol, which the security role opens in the firewall."
  - Identical declarations count once (the same name, port, protocol and sources, in any order). The same port and
    protocol declared with different sources, or under two names, is an error naming the variables involved - a
    port is declared once, with every source.
  - C(port) must be 1-65535 and C(proto) C(tcp) or C(udp). C(allow_from) is a non-empty list of C(any), IP addresses
    or CIDRs (written back normalised, e.g. C(100.64.0.0/10), C(192.0.2.7/32)) and group names; C(any) covers the
    rest and stands alone in the result.
  - Fails with one error listing every problem.
  - C(hostvars[inventory_hostname]) holds inventory variables and facts, not role defaults; roles publish their
    declarations with C(set_fact), or pass C(vars) to also see the defaults of the play's roles.
options:
  _input:
    description: The variables of one host, e.g. C(hostvars[inventory_hostname]).
    type: dict
    required: true
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
# monitoring_exporters_listen_ports:
#   - {name: node_exporter, port: 9100, proto: tcp, allow_from: [monitoring_server]}
# security_listen_ports:
#   - {name: ssh, port: 22, proto: tcp, allow_from: [192.168.1.0/24, 100.64.0.0/10]}
- name: Ports this host opens
  ansible.builtin.set_fact:
    security_open_ports: "{{ hostvars[inventory_hostname] | homelab.nixos.listen_ports }}"
  # - {name: ssh, port: 22, proto: tcp, allow_from: [100.64.0.0/10, 192.168.1.0/24]}
  # - {name: node_exporter, port: 9100, proto: tcp, allow_from: [monitoring_server]}
"""

RETURN = r"""
_value:
  description: The merged declarations, sorted by port then protocol.
  type: list
  elements: dict
  contains:
    name:
      description: What listens.
      type: str
    port:
      description: Port number.
      type: int
    proto:
      description: C(tcp) or C(udp).
      type: str
    allow_from:
      description: Sorted sources; C([any]) alone when anyone may connect.
      type: list
      elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._prometheus_targets import (
    ListenPortsError,
    listen_ports,
)


def listen_ports_filter(host_vars):
    """The merged ``*_listen_ports`` declarations of one host, or an error listing every problem."""
    try:
        return listen_ports(host_vars)
    except ListenPortsError as e:
        raise AnsibleFilterError(f"listen_ports: {e}") from e


class FilterModule:
    """The listen_ports filter."""

    def filters(self):
        return {"listen_ports": listen_ports_filter}
