"""agenix secrets end to end with the real age, ssh-keygen, age-keygen, ansible-playbook and nix-instantiate.

Keys are made in tmp_path. The secret reaches the playbook through an environment variable, so the only
plaintext on disk is the tests' own fixture input (the large pattern written for the corruption test is
never written at all: it stays in memory).
"""

import json
import os
import secrets
import subprocess
import sys

import pytest
from age_keys import AGE, age_key, require_age, ssh_key

from ansible_collections.homelab.nixos.plugins.module_utils._agenix import (
    AgenixError,
    compare_recipients,
    dearmor,
    decrypt,
    encrypt,
    parse_header,
    recipient_tags,
    recipients_map,
    rekey,
    ssh_recipient_tag,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    require_age()
    directory = tmp_path_factory.mktemp("keys")
    made = {name: ssh_key(directory, name) for name in ("p620", "razer", "stranger")}
    made["olaf-rsa"] = ssh_key(directory, "olaf-rsa", kind="rsa", bits=2048)
    made["locked"] = ssh_key(directory, "locked", passphrase="correct horse")
    made["admin"] = age_key(directory, "admin")
    return made


@pytest.fixture
def plaintext():
    return ("s3cret-" + secrets.token_hex(12)).encode()


def _pub(keys, *names):
    return [keys[name][1] for name in names]


def _age_cli(recipients, data, armor=True):
    argv = [AGE, "--encrypt"] + (["--armor"] if armor else [])
    for recipient in recipients:
        argv += ["-r", recipient]
    return subprocess.run(argv, input=data, capture_output=True, check=True).stdout


# --- the library against the real age -------------------------------------------------------------------------


def test_age_writes_the_tags_we_compute(keys, plaintext):
    """age's own ssh-ed25519 and ssh-rsa stanza tags equal ssh_recipient_tag; age1 stanzas are unknown."""
    recipients = _pub(keys, "p620", "olaf-rsa", "admin")
    expected = sorted([ssh_recipient_tag(keys["p620"][1]), ssh_recipient_tag(keys["olaf-rsa"][1]), "unknown"])
    for armor in (True, False):
        data = _age_cli(recipients, plaintext, armor=armor)
        assert recipient_tags(data) == expected
        assert compare_recipients(data, recipients)["current"] is True
    assert sorted(kind for kind, _args in parse_header(data)) == ["X25519", "ssh-ed25519", "ssh-rsa"]


def test_each_private_key_decrypts(keys, plaintext):
    data = encrypt(plaintext, _pub(keys, "p620", "olaf-rsa", "admin"))
    assert data.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    assert plaintext not in data and plaintext not in dearmor(data)
    for name in ("p620", "olaf-rsa", "admin"):
        assert decrypt(data, keys[name][0]) == plaintext
    binary = _age_cli(_pub(keys, "p620"), plaintext, armor=False)
    assert decrypt(binary, keys["p620"][0]) == plaintext


def test_rekey_after_adding_a_host(keys, plaintext):
    old = encrypt(plaintext, _pub(keys, "p620", "admin"))
    recipients = _pub(keys, "p620", "razer", "admin")
    before = compare_recipients(old, recipients)
    assert before["current"] is False
    assert before["missing"] == [" ".join(keys["razer"][1].split()[:2])]
    with pytest.raises(AgenixError, match="is not one of the file's recipients"):
        decrypt(old, keys["razer"][0])
    new = rekey(old, keys["admin"][0], recipients)
    assert recipient_tags(new) == sorted(
        [ssh_recipient_tag(keys["p620"][1]), ssh_recipient_tag(keys["razer"][1]), "unknown"]
    )
    assert compare_recipients(new, recipients)["current"] is True
    assert decrypt(new, keys["razer"][0]) == plaintext
    assert decrypt(new, keys["p620"][0]) == plaintext


def test_a_wrong_identity_fails_without_leaking(keys, plaintext):
    data = encrypt(plaintext, _pub(keys, "p620", "admin"))
    with pytest.raises(AgenixError) as e:
        decrypt(data, keys["stranger"][0])
    message = str(e.value)
    assert "%s is not one of the file's recipients (recipient tags: " % keys["stranger"][0] in message
    assert ssh_recipient_tag(keys["p620"][1]) in message
    assert plaintext.decode() not in message and "PRIVATE" not in message


def test_a_corrupt_file_fails_without_leaking(keys):
    """The plaintext spans several 64 KiB chunks; the last one is damaged, so age has written the first ones to
    its standard output before it fails. None of it may reach the error."""
    marker = secrets.token_hex(8).encode()
    plaintext = marker * 20000
    data = bytearray(dearmor(encrypt(plaintext, _pub(keys, "p620"))))
    data[-5] ^= 0x01
    with pytest.raises(AgenixError) as e:
        decrypt(bytes(data), keys["p620"][0])
    assert "the file is corrupt or was modified" in str(e.value)
    assert marker.decode() not in str(e.value)
    with pytest.raises(AgenixError) as e:
        decrypt(bytes(data[: len(data) // 2]), keys["p620"][0])
    assert marker.decode() not in str(e.value)


def test_a_passphrase_protected_identity_is_explained(keys, plaintext):
    data = encrypt(plaintext, _pub(keys, "locked"))
    with pytest.raises(AgenixError, match="is passphrase-protected and age cannot ask for the passphrase here"):
        decrypt(data, keys["locked"][0])


# --- in a real playbook ---------------------------------------------------------------------------------------


def _run_playbook(tmp_path, tasks, secret=b"", play_vars=None, verbosity="-vvv"):
    play_vars = dict(play_vars or {}, ansible_python_interpreter=sys.executable)
    play = [{"name": "agenix", "hosts": "localhost", "gather_facts": False, "vars": play_vars, "tasks": tasks}]
    path = tmp_path / "play.yml"
    path.write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="default")
    env.update(ANSIBLE_FACT_CACHING="memory", ANSIBLE_NOCOLOR="1", HOMELAB_TEST_SECRET=secret.decode())
    return subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local", verbosity, str(path)],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def _playbook_vars(keys, tmp_path):
    return {
        "agenix_secrets": {"p620-wifi": {"hosts": ["workstations"]}, "restic": {"hosts": ["p620"], "admins": False}},
        "admin_keys": _pub(keys, "admin", "olaf-rsa"),
        "host_keys": {"p620": keys["p620"][1], "razer": keys["razer"][1]},
        "inventory_groups": {"all": ["p620", "razer"], "workstations": ["p620", "razer"]},
        "secrets_dir": str(tmp_path / "secrets"),
    }


ENCRYPT = {
    "homelab.nixos.age_encrypt": {
        "path": "{{ secrets_dir }}/p620-wifi.age",
        "content": "{{ lookup('ansible.builtin.env', 'HOMELAB_TEST_SECRET') }}",
        "recipients": "{{ rules['p620-wifi.age'].publicKeys }}",
        "identity": "{{ admin_identity }}",
    },
    # The module's arguments (the secret) go through a pipe, not an AnsiballZ file.
    "vars": {"ansible_pipelining": True},
}


def test_secrets_in_a_playbook_never_show_with_vvv(keys, tmp_path, plaintext, nix_instantiate):
    (tmp_path / "secrets").mkdir()
    play_vars = dict(_playbook_vars(keys, tmp_path), admin_identity=keys["admin"][0], host_identity=keys["p620"][0])
    tasks = [
        {
            "name": "agenix rules",
            "ansible.builtin.set_fact": {
                "rules": "{{ agenix_secrets"
                " | homelab.nixos.agenix_recipients(admin_keys, host_keys, inventory_groups) }}"
            },
        },
        {
            "name": "secrets.nix",
            "ansible.builtin.copy": {
                "dest": "{{ secrets_dir }}/secrets.nix",
                "mode": "0644",
                "content": "{{ agenix_secrets | homelab.nixos.agenix_recipients(admin_keys, host_keys, "
                "inventory_groups, format='nix') }}",
            },
        },
        dict(ENCRYPT, name="encrypt", register="first"),
        dict(ENCRYPT, name="encrypt again", register="second"),
        {
            "name": "read it back (relative to the playbook)",
            "ansible.builtin.assert": {
                "that": ["secret == lookup('ansible.builtin.env', 'HOMELAB_TEST_SECRET')"],
                "quiet": True,
            },
            "vars": {
                "secret": "{{ lookup('homelab.nixos.age_secret', 'secrets/p620-wifi.age', identity=host_identity) }}"
            },
            "no_log": True,
        },
        {
            "name": "use it",
            "ansible.builtin.debug": {
                "msg": "{{ lookup('homelab.nixos.age_secret', secrets_dir ~ '/p620-wifi.age', "
                "identity=admin_identity) }}"
            },
            "no_log": True,
        },
        {
            "name": "written once, encrypted to exactly the rules' keys",
            "ansible.builtin.assert": {
                "that": [
                    "first is changed",
                    "second is not changed",
                    "second.content_verified",
                    "(lookup('ansible.builtin.file', 'secrets/p620-wifi.age') | homelab.nixos.age_recipient_tags)"
                    " == (rules['p620-wifi.age'].publicKeys"
                    " | homelab.nixos.age_recipient_tags(of='recipients'))",
                ]
            },
        },
    ]
    proc = _run_playbook(tmp_path, tasks, plaintext, play_vars)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert plaintext.decode() not in output
    assert "the output has been hidden" in output
    assert "AnsiballZ_age_encrypt" not in output, "the module's arguments were written to a file"
    assert "failed=0" in output
    assert decrypt((tmp_path / "secrets" / "p620-wifi.age").read_bytes(), keys["razer"][0]) == plaintext

    rules = recipients_map(
        play_vars["agenix_secrets"], play_vars["admin_keys"], play_vars["host_keys"], play_vars["inventory_groups"]
    )
    evaluated = subprocess.run(
        [nix_instantiate, "--eval", "--strict", "--json", str(tmp_path / "secrets" / "secrets.nix")],
        capture_output=True,
        text=True,
        env={"LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin", "NIX_REMOTE": "", "HOME": str(tmp_path)},
        check=False,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout) == rules


@pytest.mark.parametrize(
    "case",
    [
        ("secrets/p620-wifi.age", "stranger", "is not one of the file's recipients (recipient tags: "),
        ("secrets/corrupt.age", "p620", "the file is corrupt or was modified"),
        ("secrets/missing.age", "p620", "age_secret: secrets/missing.age not found in the files search path"),
        ("secrets/p620-wifi.age", None, "the identity file /nonexistent/id_ed25519 does not exist"),
        ("secrets/p620-wifi.age", "locked", "is passphrase-protected"),
    ],
)
def test_lookup_errors_are_clear_and_leak_nothing(keys, tmp_path, plaintext, case):
    term, identity, message = case
    (tmp_path / "secrets").mkdir()
    data = encrypt(plaintext, _pub(keys, "p620", "locked"))
    (tmp_path / "secrets" / "p620-wifi.age").write_bytes(data)
    corrupt = bytearray(dearmor(data))
    corrupt[-3] ^= 0x01
    (tmp_path / "secrets" / "corrupt.age").write_bytes(bytes(corrupt))
    identity_path = keys[identity][0] if identity else "/nonexistent/id_ed25519"
    tasks = [
        {
            "name": "decrypt",
            "ansible.builtin.debug": {
                "msg": "{{ lookup('homelab.nixos.age_secret', '%s', identity='%s') }}" % (term, identity_path)
            },
            "no_log": True,
        }
    ]
    proc = _run_playbook(tmp_path, tasks, plaintext)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert plaintext.decode() not in output
    # no_log hides the task's error too; without it the message is there, still without the secret.
    tasks[0]["no_log"] = False
    proc = _run_playbook(tmp_path, tasks, plaintext)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert message in output, output
    assert plaintext.decode() not in output
