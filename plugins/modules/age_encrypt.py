#!/usr/bin/python
# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: age_encrypt
short_description: Write an age (agenix) secret file encrypted to a list of recipients
version_added: 0.1.0
description:
  - Encrypts O(content) with C(age --encrypt --armor) to every key of O(recipients) and writes the ASCII armored
    result to O(path), atomically, with mode C(0644) (the file is encrypted; agenix keeps it in the repository and
    the Nix store). The content reaches age on its standard input only; it is never written to a file, never on a
    command line, and never in the result, a message or the diff.
  - Meant for the controller, with C(delegate_to=localhost), next to agenix's C(secrets.nix) (see
    P(homelab.nixos.agenix_recipients#filter)).
  - An age file cannot be read without a private key, and age encrypts anew every time, so the module decides from
    the file's header whether to write. It rewrites the file when it does not exist or is not an age file, and when
    its recipients differ from O(recipients) - the tag of every C(ssh-ed25519) and C(ssh-rsa) stanza is compared
    with the keys, and the number of other stanzas (C(X25519)) with the number of C(age1...) recipients.
  - With O(identity), the module also decrypts the existing file (when its recipients are current) and rewrites it
    when the plaintext differs from O(content). Without O(identity) a changed content alone is not noticed; set
    O(force=true) to write anyway.
options:
  path:
    description: The age file to write. Its directory must exist.
    type: path
    required: true
  content:
    description: The secret. Written as UTF-8 exactly as given (a trailing newline is kept).
    type: str
    required: true
  recipients:
    description:
      - Public keys that can decrypt the file - ssh-ed25519 or ssh-rsa public keys (RSA of at least 2048 bits, the
        comment is dropped) and age X25519 recipients (C(age1...)). At least one; duplicates are dropped.
    type: list
    elements: str
    required: true
  identity:
    description:
      - A private key that is one of the recipients (SSH private key without a passphrase, or age identity file),
        to decrypt the existing file and compare its content. Never shown in the output.
    type: path
  force:
    description: Encrypt and write the file even when nothing shows that it changed.
    type: bool
    default: false
  executable:
    description: Path of the age executable. By default C(age) is looked up in E(PATH).
    type: path
attributes:
  check_mode:
    support: full
    description: Reads and, with O(identity), decrypts the existing file; encrypts and writes nothing.
  diff_mode:
    support: full
    description:
      - The recipient tags of the file before and after, and whether the content changed. Never the content.
notes:
  - Run the task with pipelining (C(ansible_pipelining=true), as in the example). Without it, Ansible itself writes
    the module's arguments, O(content) among them, to a temporary C(AnsiballZ_age_encrypt.py) file on the
    controller for the duration of the task.
  - Two C(age1...) recipients cannot be told apart from the header; replacing one by another is noticed only when
    the number of them changes, or with O(force=true).
seealso:
  - plugin: homelab.nixos.age_secret
    plugin_type: lookup
  - plugin: homelab.nixos.agenix_recipients
    plugin_type: filter
  - plugin: homelab.nixos.age_recipient_tags
    plugin_type: filter
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Encrypt the Wi-Fi password for p620 and the admins
  homelab.nixos.age_encrypt:
    path: "{{ playbook_dir }}/secrets/p620-wifi.age"
    content: "{{ vault_p620_wifi_password }}"
    recipients: "{{ agenix_rules['p620-wifi.age'].publicKeys }}"
    identity: ~/.ssh/id_ed25519
  delegate_to: localhost
  run_once: true
  vars:
    ansible_pipelining: true  # the content goes to the module through a pipe, not a file
"""

RETURN = r"""
path:
  description: The age file.
  returned: always
  type: str
recipients:
  description: The recipients, normalised (C(type base64) for SSH keys).
  returned: always
  type: list
  elements: str
tags:
  description: Recipient tags of the file after the task (V(unknown) for C(age1...) recipients), sorted.
  returned: always
  type: list
  elements: str
  sample: [a8ZWDw, mFtFnw, unknown]
reasons:
  description: Why the file was (or in check mode would be) written. Empty when it was left alone.
  returned: always
  type: list
  elements: str
  sample: ["the recipients changed: not encrypted to ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEbM..."]
recipients_verified:
  description: The existing file's recipients all matched by tag (no C(X25519) stanza, which cannot be matched).
  returned: always
  type: bool
content_verified:
  description: The existing file was decrypted with O(identity) and compared with O(content).
  returned: always
  type: bool
checksum:
  description:
    - SHA-256 of the age file (the ciphertext) after the task. V(null) in check mode when the file would be written.
  returned: always
  type: str
"""

import hashlib
import os
import tempfile
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.nixos.plugins.module_utils._agenix import (
    ARMOR_BEGIN,
    AgenixError,
    decrypt_argv,
    decrypt_error,
    encrypt_argv,
    encrypt_error,
    normalize_recipients,
    recipient_tag,
    recipient_tags,
    rewrite_reasons,
)

ENV = {"LC_ALL": "C"}
MODE = "0644"
CONTENT_CHANGED = "the content changed"


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            content=dict(type="str", required=True, no_log=True),
            recipients=dict(type="list", elements="str", required=True),
            identity=dict(type="path", no_log=True),
            force=dict(type="bool", default=False),
            executable=dict(type="path"),
        ),
        supports_check_mode=True,
    )


def _diff_text(tags, content):
    return "".join("recipient %s\n" % tag for tag in tags) + "content: %s\n" % content


class AgeEncrypt:
    def __init__(self, module):
        self.module = module
        params = module.params
        self.path = params["path"]
        try:
            self.content = params["content"].encode("utf-8")
        except UnicodeEncodeError:
            raise AgenixError("content is not valid Unicode text") from None
        self.recipients = normalize_recipients(params["recipients"])
        self.identity = params["identity"]
        self.age = params["executable"] or module.get_bin_path("age", required=True)
        self.result = dict(changed=False, path=self.path, recipients=self.recipients)

    def read_existing(self):
        if os.path.isdir(self.path):
            raise AgenixError("%s is a directory" % self.path)
        if not os.path.exists(self.path):
            return None
        with open(self.path, "rb") as f:
            return f.read()

    def decrypt_existing(self, existing):
        """A callable returning the file's plaintext. age reads the file itself, so nothing big goes through
        run_command's stdin (it writes all of its data before reading any output)."""

        def run():
            argv = decrypt_argv(self.identity, self.age, input_path=self.path)
            rc, out, err = self.module.run_command(argv, encoding=None, environ_update=ENV)
            if rc != 0:
                raise decrypt_error(rc, err, argv[3], recipient_tags(existing))
            return out

        return run

    def write(self):
        """Encrypt to a temporary file next to ``path`` (age writes the ciphertext itself, ``-o``) and move it
        into place. The plaintext only goes to age's standard input."""
        directory = os.path.dirname(self.path) or "."
        fd, tmp = tempfile.mkstemp(prefix=".ansible-age-", suffix=".tmp", dir=directory)
        os.close(fd)
        try:
            argv = encrypt_argv(self.recipients, self.age, output=tmp)
            if not self.content:
                # run_command passes no stdin for empty data: let age read the empty input from /dev/null.
                argv.append(os.devnull)
            rc, _out, err = self.module.run_command(
                argv, data=self.content or None, binary_data=True, encoding=None, environ_update=ENV
            )
            if rc != 0:
                raise encrypt_error(rc, err, self.content)
            with open(tmp, "rb") as f:
                if f.read(len(ARMOR_BEGIN)) != ARMOR_BEGIN:
                    raise AgenixError("age --encrypt --armor wrote no armored age file")
            self.module.atomic_move(tmp, self.path)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)

    def run(self):
        directory = os.path.dirname(self.path) or "."
        if not os.path.isdir(directory):
            raise AgenixError("the directory %s does not exist" % directory)
        existing = self.read_existing()
        decrypt_existing = self.decrypt_existing(existing) if self.identity and existing is not None else None
        status = rewrite_reasons(existing, self.recipients, self.content, decrypt_existing)
        reasons = status["reasons"]
        if self.module.params["force"] and not reasons:
            reasons.append("force is set")
        new_tags = sorted(recipient_tag(key) for key in self.recipients)
        self.result.update(
            reasons=reasons,
            recipients_verified=status["recipients_verified"],
            content_verified=status["content_verified"],
            tags=new_tags if reasons else status["tags"],
        )
        self.result["changed"] = bool(reasons)
        if reasons and self.module._diff:
            self.result["diff"] = dict(
                before_header=self.path,
                after_header=self.path,
                before="" if existing is None else _diff_text(status["tags"], "(not shown)"),
                after=_diff_text(new_tags, "(not shown, changed)" if CONTENT_CHANGED in reasons else "(not shown)"),
            )
        if reasons and not self.module.check_mode:
            self.write()
        self.result["checksum"] = None
        if os.path.exists(self.path):
            self.result["changed"] = self.module.set_mode_if_different(self.path, MODE, self.result["changed"])
            if not (reasons and self.module.check_mode):
                with open(self.path, "rb") as f:
                    self.result["checksum"] = hashlib.sha256(f.read()).hexdigest()
        return self.result


def main():
    module = build_module()
    try:
        task = AgeEncrypt(module)
    except AgenixError as e:
        module.fail_json(msg=str(e))
    try:
        result = task.run()
    except AgenixError as e:
        module.fail_json(msg=str(e), path=task.path)
    except Exception as e:
        module.fail_json(
            msg="age_encrypt failed unexpectedly: %s" % type(e).__name__,
            exception=traceback.format_exc(),
            path=task.path,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
