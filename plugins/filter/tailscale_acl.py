# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: tailscale_acl
short_description: Build the tailnet's Tailscale policy file from the ports the roles declare
version_added: 0.1.0
description:
  - Returns a Tailscale policy file (classic C(acls) form) that opens, over Tailscale, exactly the ports the roles
    on each tailnet host declare in their C(<role>_listen_ports) facts (merged with
    P(homelab.nixos.listen_ports#filter)), each to the tailnet identities its C(allow_from) stands for.
    Everything else is denied.
  - Every tailnet host is tagged C(tag:<host>) plus C(tag:<name>) for each entry of its C(tailscale_tags) host
    variable (e.g. C([server, media])). Rules address hosts by their own tag only; C(tagOwners) lists every tag,
    owned by O(settings.tag_owners).
  - "C(allow_from) maps as follows: an inventory group becomes the tags of its members in the tailnet; C(any), the
    C(tailscale) network and any CIDR covering a whole tailnet range (C(100.64.0.0/10), C(fd7a:115c:a1e0::/48))
    become C(autogroup:member), the devices of the tailnet's users (tagged hosts are not members - host-to-host
    traffic needs a group); on the SSH port (entries named C(ssh), or tcp on O(settings.ssh_port)) they become
    C(group:admins) instead; a CIDR inside a tailnet range stays that CIDR; the LAN and other CIDRs outside the
    tailnet give no rule, since that traffic never passes through Tailscale."
  - C(group:admins) (O(settings.admins)) always reaches every tailnet host's SSH port, declared or not, because
    Ansible connects through Tailscale.
  - Rules with the same sources and protocol are merged, and everything is sorted, so the same inventory gives the
    same text. The C(tests) section asserts, for every host tag and the first admin, which declared ports it
    reaches and which not; Tailscale refuses a policy whose tests fail.
  - Fails with one error listing every problem, such as unknown hosts in groups or O(settings.tailnet_hosts),
    invalid ports, tags that do not match C(^[a-z0-9][a-z0-9-]*$), unknown sources or settings.
  - P(homelab.nixos.tailscale_acl_allows#filter) evaluates the result offline.
options:
  _input:
    description: Mapping of host name to its variables, normally C(hostvars).
    type: dict
    required: true
  groups:
    description: The inventory groups, normally C(groups).
    type: dict
    required: true
  settings:
    description: Optional settings; unknown keys are an error.
    type: dict
    required: false
    suboptions:
      admins:
        description: Tailnet logins of C(group:admins), e.g. C(alice@example.com). Must not be empty.
        type: list
        elements: str
        required: true
      tag_owners:
        description: Who may apply each tag (logins, C(group:admins), autogroups or tags).
        type: list
        elements: str
        default: ["autogroup:admin"]
      hosts:
        description: Host aliases (name to IP address or CIDR) passed through to the policy's C(hosts) section.
        type: dict
        default: {}
      tailnet_hosts:
        description: The hosts in the tailnet. Defaults to C(groups['all']).
        type: list
        elements: str
      networks:
        description: Named networks (C(homelab_networks)). Defaults to each host's own C(homelab_networks).
        type: dict
      ssh_port:
        description: SSH port of hosts that declare none; tcp declarations on it count as SSH.
        type: int
        default: 22
  format:
    description: C(dict) for the policy as data, C(hujson) for the policy file text (JSON with a comment header).
    type: str
    choices: [dict, hujson]
    default: dict
  with_host_tags:
    description: Return C({policy, host_tags}) instead of the policy alone; C(host_tags) maps each host to its tags.
    type: bool
    default: false
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Write the tailnet policy file
  ansible.builtin.copy:
    dest: "{{ playbook_dir }}/build/tailscale/policy.hujson"
    content: >-
      {{ hostvars | homelab.nixos.tailscale_acl(groups, {'admins': ['alice@example.com']}, format='hujson') }}
    mode: "0644"
  delegate_to: localhost
  run_once: true

- name: Policy and tags, to tag the hosts with tailscale up --advertise-tags
  ansible.builtin.set_fact:
    tailnet: "{{ hostvars | homelab.nixos.tailscale_acl(groups, tailnet_settings, with_host_tags=true) }}"
  # tailnet.host_tags.p510: [tag:media, tag:p510, tag:server]
  # tailnet.policy.acls[2]:
  #   {action: accept, src: [tag:dex5550], proto: tcp, dst: [tag:p510:9100,9104, tag:p620:9100, ...]}
"""

RETURN = r"""
_value:
  description:
    - The policy as a dict with C(groups), C(tagOwners), C(hosts) (only when O(settings.hosts) is set), C(acls) and
      C(tests), or its HuJSON text with O(format=hujson).
    - With O(with_host_tags=true), a dict with C(policy) (as above) and C(host_tags) (host to sorted tags).
  type: raw
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._tailscale_acl import (
    TailscaleAclError,
    tailscale_acl,
    to_hujson,
)


def tailscale_acl_filter(hostvars, groups, settings=None, format="dict", with_host_tags=False):
    """The tailnet policy derived from the inventory, or an error listing every problem."""
    if format not in ("dict", "hujson"):
        raise AnsibleFilterError(f"tailscale_acl: format must be dict or hujson, got {format!r}")
    if not isinstance(with_host_tags, bool):
        raise AnsibleFilterError(f"tailscale_acl: with_host_tags must be true or false, got {with_host_tags!r}")
    try:
        result = tailscale_acl(hostvars, groups, settings)
        policy = to_hujson(result["policy"]) if format == "hujson" else result["policy"]
    except TailscaleAclError as e:
        raise AnsibleFilterError(f"tailscale_acl: {e}") from e
    if with_host_tags:
        return {"policy": policy, "host_tags": result["host_tags"]}
    return policy


class FilterModule:
    """The tailscale_acl filter."""

    def filters(self):
        return {"tailscale_acl": tailscale_acl_filter}
