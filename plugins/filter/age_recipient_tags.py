# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: age_recipient_tags
short_description: Which SSH keys an age file is encrypted to, without decrypting it
version_added: 0.1.0
description:
  - With O(of=ciphertext) (the default), reads the header of an age file (ASCII armored text, or bytes) and returns
    one tag per recipient stanza, sorted. An C(ssh-ed25519) or C(ssh-rsa) stanza carries the tag of its key, the
    first 4 bytes of the SHA-256 of the key in SSH wire format, base64 without padding. Every other stanza
    (C(X25519) for C(age1...) recipients, C(scrypt), plugins) is V(unknown), since it cannot be matched without the
    private key. Grease stanzas are left out.
  - With O(of=recipients), the input is one public key or a list of them, and the result the tag of the key
    (V(unknown) for an C(age1...) recipient), or the tags of the list, sorted in the same way as a ciphertext's.
    Use C(map) for one tag per key in the list's order.
  - The two compare directly - equal lists mean that a secret is encrypted to exactly the current recipients,
    except that C(age1...) recipients cannot be told apart. Both lists are sorted case-sensitively; Jinja's C(sort)
    filter ignores case by default, so do not re-sort them with it.
  - Fails on input that is not an age file or not a valid public key. Nothing here decrypts anything.
options:
  _input:
    description: An age file's content, or (O(of=recipients)) one public key or a list of them.
    type: raw
    required: true
  of:
    description: What the input is.
    type: str
    choices: [ciphertext, recipients]
    default: ciphertext
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Secrets not encrypted to exactly their current recipients
  ansible.builtin.debug:
    msg: "{{ item.key }} must be encrypted again"
  when: >-
    (lookup('ansible.builtin.file', 'secrets/' ~ item.key) | homelab.nixos.age_recipient_tags)
    != (item.value.publicKeys | homelab.nixos.age_recipient_tags(of='recipients'))
  loop: "{{ agenix_rules | dict2items }}"
  vars:
    agenix_rules: "{{ agenix_secrets | homelab.nixos.agenix_recipients(agenix_admin_keys, agenix_host_keys, groups) }}"

- name: The tag of an admin key
  ansible.builtin.debug:
    msg: "{{ agenix_admin_keys | map('homelab.nixos.age_recipient_tags', of='recipients') }}"
"""

RETURN = r"""
_value:
  description:
    - O(of=ciphertext) - the sorted tags of the file's recipient stanzas.
    - O(of=recipients) - the tag of a single key, or the sorted tags of a list of keys.
  type: raw
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._agenix import (
    AgenixError,
    recipient_tag,
    recipient_tags,
)

KINDS = ("ciphertext", "recipients")


def age_recipient_tags(value, of="ciphertext"):
    """The recipient tags of an age file, or of public keys."""
    if of not in KINDS:
        raise AnsibleFilterError(f"age_recipient_tags: of must be one of {', '.join(KINDS)}, got {of!r}")
    try:
        if of == "ciphertext":
            return recipient_tags(value)
        if isinstance(value, str):
            return recipient_tag(value)
        if not isinstance(value, (list, tuple)):
            raise AgenixError(f"recipients must be a public key or a list of them, got {type(value).__name__}")
        return sorted(recipient_tag(key) for key in value)
    except AgenixError as e:
        raise AnsibleFilterError(f"age_recipient_tags: {e}") from e


class FilterModule:
    """The age_recipient_tags filter."""

    def filters(self):
        return {"age_recipient_tags": age_recipient_tags}
