# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: tailscale_acl_allows
short_description: Whether a Tailscale policy lets a source reach a destination port, evaluated offline
version_added: 0.1.0
description:
  - Evaluates the C(acls) of a Tailscale policy file - such as P(homelab.nixos.tailscale_acl#filter) writes - without
    asking Tailscale. Returns true when one rule lets O(src) reach O(dst) on O(port) over O(proto).
  - O(src) and O(dst) are a tag (C(tag:x), a device carrying just that tag), a user login (C(alice@example.com) or
    C(user:alice@example.com), a device of that user), an IP address, or, with O(host_tags), a host name (a device
    carrying all of that host's tags).
  - "Rule entries match as follows: C(*) everything; C(tag:x) devices carrying it; C(autogroup:member) any user's
    device (the user taken to be a member, not a shared-in guest), never a tagged one; C(autogroup:tagged) any
    tagged device; C(group:x) the devices of its users; a login that user's devices; a host alias, IP or CIDR the
    IP addresses inside it, and tags or users only when it covers a whole tailnet range (C(100.64.0.0/10) or
    C(fd7a:115c:a1e0::/48)). Ports may be C(*), single ports, ranges and comma lists. A rule without C(proto)
    covers tcp and udp."
  - Other autogroups, C(grants) and posture conditions are not evaluated; the filter fails rather than guess.
options:
  _input:
    description: The policy, as a dict or as HuJSON text (comments and trailing commas allowed).
    type: raw
    required: true
  src:
    description: Who connects.
    type: str
    required: true
  dst:
    description: The device connected to.
    type: str
    required: true
  port:
    description: Destination port.
    type: int
    required: true
  proto:
    description: Protocol.
    type: str
    choices: [tcp, udp]
    default: tcp
  host_tags:
    description: Host name to its tags (C(host_tags) of P(homelab.nixos.tailscale_acl#filter)), to name hosts.
    type: dict
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: The monitoring server scrapes p620, and only it
  ansible.builtin.assert:
    that:
      - tailnet.policy | homelab.nixos.tailscale_acl_allows('tag:dex5550', 'tag:p620', 9100)
      - not tailnet.policy | homelab.nixos.tailscale_acl_allows('tag:razer', 'tag:p620', 9100)
      - >-
        tailnet.policy | homelab.nixos.tailscale_acl_allows('alice@example.com', 'p510', 22,
                                                             host_tags=tailnet.host_tags)
"""

RETURN = r"""
_value:
  description: Whether a rule allows the connection.
  type: bool
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._tailscale_acl import TailscaleAclError, acl_allows


def tailscale_acl_allows(policy, src, dst, port, proto="tcp", *, host_tags=None):
    """Whether the policy lets ``src`` reach ``dst`` on ``port``/``proto``."""
    try:
        return acl_allows(policy, src, dst, port, proto, host_tags=host_tags)
    except TailscaleAclError as e:
        raise AnsibleFilterError(f"tailscale_acl_allows: {e}") from e


class FilterModule:
    """The tailscale_acl_allows filter."""

    def filters(self):
        return {"tailscale_acl_allows": tailscale_acl_allows}
