# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: age_secret
short_description: Decrypt an age (agenix) secret on the controller
version_added: 0.1.0
description:
  - Decrypts each age file with C(age --decrypt -i <identity>) and returns its text, less one trailing newline.
    The ciphertext goes to age's standard input and the plaintext comes back on its standard output; no plaintext
    is written to any file.
  - A relative path is looked up like the P(ansible.builtin.file#lookup) lookup does, in the C(files) directories
    of the role and the playbook's search path; an absolute path is used as it is.
  - A missing file or identity, an identity that is not one of the file's recipients, a passphrase-protected
    identity (age cannot prompt for it here), a corrupt file or a secret that is not UTF-8 text each fail with an
    error that names the file and the identity and contains no secret material.
  - The result is the secret itself. Use it only in tasks with C(no_log=true), or the secret shows up in the output
    (with C(-v), in task results and in callbacks).
options:
  _terms:
    description: Paths of age files (armored or binary).
    required: true
  identity:
    description:
      - The private key to decrypt with - an SSH private key (ssh-ed25519 or ssh-rsa, without a passphrase) or an
        age identity file. C(~) is expanded.
    type: path
    required: true
    env:
      - name: HOMELAB_AGE_IDENTITY
    vars:
      - name: homelab_age_identity
  executable:
    description: The age executable, a name looked up in E(PATH) or a path.
    type: str
    default: age
  keep_trailing_newline:
    description: Return the plaintext exactly, with its trailing newline.
    type: bool
    default: false
notes:
  - The lookup runs on the controller; the identity never leaves it.
seealso:
  - module: homelab.nixos.age_encrypt
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Configure the Wi-Fi password on p620
  ansible.builtin.template:
    src: wpa_supplicant.conf.j2
    dest: /etc/wpa_supplicant.conf
    mode: "0600"
  vars:
    wifi_password: "{{ lookup('homelab.nixos.age_secret', 'secrets/p620-wifi.age', identity='~/.ssh/id_ed25519') }}"
  no_log: true
"""

RETURN = r"""
_raw:
  description: The plaintext of each file, as text without one trailing newline.
  type: list
  elements: str
"""

import os

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.homelab.nixos.plugins.module_utils._agenix import AgenixError, decrypt

display = Display()

MAX_SIZE = 16 * 1024 * 1024


def _read(path):
    try:
        if os.path.getsize(path) > MAX_SIZE:
            raise AnsibleLookupError(f"age_secret: {path} is larger than {MAX_SIZE} bytes, not a secret")
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise AnsibleLookupError(f"age_secret: cannot read {path}: {e.strerror}") from None


def age_secret(path, identity, executable="age", keep_trailing_newline=False):
    """The plaintext of the age file ``path`` as text."""
    try:
        plaintext = decrypt(_read(path), identity, age=executable)
    except AgenixError as e:
        raise AnsibleLookupError(f"age_secret: {path}: {e}") from e
    try:
        text = plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise AnsibleLookupError(f"age_secret: {path}: the secret is not UTF-8 text") from None
    if not keep_trailing_newline and text.endswith("\n"):
        text = text[:-1]
    return text


class LookupModule(LookupBase):
    """The age_secret lookup."""

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        identity = self.get_option("identity")
        if not identity:
            raise AnsibleLookupError("age_secret: set identity (an SSH private key or an age identity file)")
        results = []
        for term in terms:
            path = self.find_file_in_search_path(variables or {}, "files", str(term), ignore_missing=True)
            if not path:
                raise AnsibleLookupError(f"age_secret: {term} not found in the files search path")
            display.vvv(f"age_secret: decrypting {path} with {identity}")
            results.append(
                age_secret(path, identity, self.get_option("executable"), self.get_option("keep_trailing_newline"))
            )
        return results
