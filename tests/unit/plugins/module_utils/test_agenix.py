"""agenix rules, key validation and age headers (plugins/module_utils/_agenix.py).

Keys come from the real ssh-keygen (tests/age_keys.py) or are built byte by byte for the malformed cases.
Headers are built by hand here; tests/integration/test_age_roundtrip.py checks the same functions against
files written by the real age.
"""

import base64
import hashlib
import json
import os
import random
import struct
import subprocess

import pytest
from age_keys import AGE, age_recipient, bech32, ssh_key

from ansible_collections.homelab.nixos.plugins.module_utils._agenix import (
    ARMOR_BEGIN,
    ARMOR_END,
    SECRETS_NIX_HEADER,
    UNKNOWN,
    AgenixError,
    compare_recipients,
    dearmor,
    decrypt,
    decrypt_argv,
    definition_problems,
    encrypt,
    encrypt_argv,
    host_secrets,
    normalize_key,
    normalize_recipients,
    parse_header,
    recipient_tag,
    recipient_tags,
    recipients_map,
    rewrite_reasons,
    run_age,
    secrets_nix,
    ssh_recipient_tag,
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Public keys made by ssh-keygen: three hosts, one admin (ed25519) and one RSA admin."""
    directory = tmp_path_factory.mktemp("keys")
    made = {name: ssh_key(directory, name)[1] for name in ("p620", "razer", "dex5550", "olaf")}
    made["olaf-rsa"] = ssh_key(directory, "olaf-rsa", kind="rsa", bits=2048)[1]
    made["age"] = age_recipient(7)
    return made


def _string(data):
    return struct.pack(">I", len(data)) + data


def _line(kind, *parts):
    return kind + " " + base64.b64encode(b"".join(_string(p) for p in parts)).decode()


def _bare(line):
    return " ".join(line.split()[:2])


def _age_file(stanzas, armor=True):
    """An age file with the given ``(type, args)`` stanzas; the MAC and payload are random bytes."""
    lines = [b"age-encryption.org/v1"]
    for kind, args in stanzas:
        lines.append(" ".join(["->", kind, *args]).encode())
        lines.append(base64.b64encode(os.urandom(32)).rstrip(b"=")[:43])
    data = b"\n".join(lines) + b"\n--- " + base64.b64encode(os.urandom(32)).rstrip(b"=") + b"\n" + os.urandom(40)
    if not armor:
        return data
    body = base64.b64encode(data)
    return b"\n".join([ARMOR_BEGIN, *(body[i : i + 64] for i in range(0, len(body), 64)), ARMOR_END]) + b"\n"


# --- keys ------------------------------------------------------------------------------------------------------


def test_ssh_keys_lose_their_comment(keys):
    assert normalize_key(keys["p620"]) == _bare(keys["p620"])
    assert normalize_key(keys["olaf-rsa"] + "  \n") == _bare(keys["olaf-rsa"])
    assert normalize_key(_bare(keys["p620"])) == _bare(keys["p620"])


def test_a_bare_base64_blob_is_typed_from_its_content(keys):
    """The ssh_host_key_ed25519_public fact holds only the blob."""
    blob = keys["razer"].split()[1]
    assert normalize_key(blob, ("ssh-ed25519",)) == "ssh-ed25519 " + blob


def test_age_recipients_are_checked_and_lowercased():
    recipient = age_recipient(3)
    assert normalize_key(recipient) == recipient
    assert normalize_key(recipient.upper()) == recipient


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a public key must be a non-empty string"),
        ("ssh-ed25519 AAAA", "the key blob is truncated"),
        ("ssh-ed25519 not*base64", "valid base64"),
        (_line("ssh-ed25519", b"ssh-ed25519", b"x" * 31), "must hold 32 bytes"),
        (_line("ssh-ed25519", b"ssh-ed25519", b"x" * 32, b"extra"), "trailing bytes"),
        (_line("ssh-rsa", b"ssh-ed25519", b"x" * 32), "it says 'ssh-rsa' but the key inside is 'ssh-ed25519'"),
        (_line("ssh-rsa", b"ssh-rsa", b"\x01\x00\x01", b"\x00" + b"\xff" * 128), "1024 bits, fewer than 2048"),
        (_line("ecdsa-sha2-nistp256", b"ecdsa-sha2-nistp256", b"nistp256", b"\x04" * 65), "not supported by age"),
        (age_recipient(1)[:-1] + ("q" if age_recipient(1)[-1] != "q" else "p"), "wrong checksum"),
        (bech32("age1yubikey", b"\x01" * 33), "age plugin recipients (age1yubikey1...) are not supported"),
        (bech32("age", b"\x01" * 31), "holds 32 bytes, this one holds 31"),
        (age_recipient(1) + " comment", "an age recipient is a single word"),
    ],
)
def test_invalid_keys_are_refused_with_the_reason(text, message):
    with pytest.raises(AgenixError) as e:
        normalize_key(text)
    assert message in str(e.value)


def test_two_keys_in_one_entry_are_refused(keys):
    with pytest.raises(AgenixError, match="one key per entry"):
        normalize_key(keys["p620"] + "\n" + keys["razer"])


def test_a_private_key_passed_as_a_key_is_never_echoed():
    header = "-----BEGIN OPENSSH " + "PRIVATE KEY-----"
    for text in (header + "\nb3BlbnNzaC1rZXktdjEAAAAA\n", "AGE-SECRET-KEY-1" + "Q" * 58):
        with pytest.raises(AgenixError) as e:
            normalize_key(text, what="admin key 1")
        assert "private key or an age identity" in str(e.value)
        assert "b3BlbnNz" not in str(e.value) and "QQQQ" not in str(e.value)


def test_host_keys_must_be_ed25519(keys):
    with pytest.raises(AgenixError, match="ssh-rsa keys are not accepted here"):
        normalize_key(keys["olaf-rsa"], ("ssh-ed25519",))


def test_recipients_are_deduplicated_in_order(keys):
    assert normalize_recipients([keys["razer"], keys["age"], _bare(keys["razer"])]) == [
        _bare(keys["razer"]),
        keys["age"],
    ]
    with pytest.raises(AgenixError, match="at least one recipient"):
        normalize_recipients([])
    with pytest.raises(AgenixError, match="must be a list"):
        normalize_recipients(keys["razer"])
    with pytest.raises(AgenixError) as e:
        normalize_recipients(["ssh-ed25519 AAAA", "nonsense"])
    assert [p.split(":")[0] for p in e.value.problems] == ["recipient 1 'ssh-ed25519 AAAA'", "recipient 2 'nonsense'"]


def test_ssh_recipient_tag_is_sha256_of_the_wire_format(keys):
    for name in ("p620", "olaf-rsa"):
        blob = base64.b64decode(keys[name].split()[1])
        expected = base64.b64encode(hashlib.sha256(blob).digest()[:4]).decode().rstrip("=")
        assert ssh_recipient_tag(keys[name]) == expected
        assert len(expected) == 6
    assert recipient_tag(keys["age"]) == UNKNOWN
    with pytest.raises(AgenixError, match="age keys are not accepted here"):
        ssh_recipient_tag(keys["age"])


# --- the rules -----------------------------------------------------------------------------------------------


def _host_keys(keys):
    return {"p620": keys["p620"], "razer": keys["razer"], "dex5550": _bare(keys["dex5550"]).split()[1]}


GROUPS = {
    "all": ["p620", "razer", "dex5550", "samsung"],
    "workstations": ["p620", "razer"],
    "servers": ["dex5550"],
    "empty": [],
}


def test_recipients_map_in_the_shape_of_secrets_nix(keys):
    secrets = {
        "p620-wifi": {"hosts": ["p620"]},
        "restic-password": {"hosts": ["workstations", "p620"], "admins": False},
        "admin-only": {},
        "tailscale/authkey.age": {"hosts": ["servers"]},
    }
    rules = recipients_map(secrets, [keys["olaf"], keys["age"]], _host_keys(keys), GROUPS)
    admins = sorted([_bare(keys["olaf"]), keys["age"]])
    assert rules == {
        "admin-only.age": {"publicKeys": admins},
        "p620-wifi.age": {"publicKeys": sorted([*admins, _bare(keys["p620"])])},
        "restic-password.age": {"publicKeys": sorted([_bare(keys["p620"]), _bare(keys["razer"])])},
        "tailscale/authkey.age": {"publicKeys": sorted([*admins, _bare(keys["dex5550"])])},
    }
    assert list(rules) == sorted(rules)


def test_recipients_map_does_not_depend_on_input_order(keys):
    secrets = {f"s{i}": {"hosts": random.sample(["p620", "razer", "servers"], 2)} for i in range(6)}
    admins = [keys["olaf"], keys["olaf-rsa"], keys["age"]]
    first = recipients_map(secrets, admins, _host_keys(keys), GROUPS)
    shuffled = dict(random.sample(list(secrets.items()), len(secrets)))
    host_keys = dict(reversed(list(_host_keys(keys).items())))
    second = recipients_map(shuffled, list(reversed(admins)), host_keys, GROUPS)
    assert json.dumps(first) == json.dumps(second)


def test_a_secret_only_admins_can_read_is_fine_and_an_empty_group_adds_nobody(keys):
    rules = recipients_map({"x": {"hosts": ["empty"]}}, [keys["olaf"]], _host_keys(keys), GROUPS)
    assert rules == {"x.age": {"publicKeys": [_bare(keys["olaf"])]}}


def test_every_problem_is_listed(keys):
    secrets = {
        "nobody": {"admins": False},
        "empty-group": {"admins": False, "hosts": ["empty"]},
        "typo": {"hosts": ["p602", "samsung", "wrkstations"]},
        "bad name": {},
        "../escape": {},
        "dup": {},
        "dup.age": {},
        "extra": {"hosts": ["p620"], "path": "/etc/x"},
        "perms": {"hosts": ["p620"], "owner": "Root Admin", "mode": "0777x"},
        "flag": {"admins": "yes"},
        "string-hosts": {"hosts": "p620"},
    }
    host_keys = dict(_host_keys(keys), broken="ssh-ed25519 AAAA")
    with pytest.raises(AgenixError) as e:
        recipients_map(secrets, [keys["olaf"], "AGE-SECRET-KEY-1" + "Q" * 58], host_keys, GROUPS)
    problems = e.value.problems
    expected = [
        "admin key 2 <a private key or identity, not shown>: this is a private key or an age identity",
        "host key of 'broken' 'ssh-ed25519 AAAA': the key blob is truncated",
        "secret name '../escape': use letters, digits",
        "secret name 'bad name': use letters, digits",
        "secret 'dup.age': dup.age is named twice",
        "secret 'empty-group': nobody can read it (admins: false, its groups have no members)",
        "secret 'extra': unknown keys path (allowed: admins, hosts, owner, group, mode)",
        "secret 'flag': admins must be true or false, got 'yes'",
        "secret 'nobody': nobody can read it (admins: false, no hosts)",
        "secret 'perms': owner must be a user or group name, got 'Root Admin'",
        "secret 'perms': mode must be an octal string such as '0400', got '0777x'",
        "secret 'string-hosts': hosts must be a list of host or group names",
        "secret 'typo': 'p602' is neither a host with a key in host_keys nor a group",
        "secret 'typo': host 'samsung' has no ssh-ed25519 host key in host_keys",
        "secret 'typo': 'wrkstations' is neither a host with a key in host_keys nor a group",
    ]
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start), (problem, start)
    assert "QQQQ" not in str(e.value)


def test_a_group_member_without_a_host_key_is_named_with_its_group(keys):
    groups = dict(GROUPS, lab=["p620", "nixvm"])
    with pytest.raises(AgenixError, match=r"host 'nixvm' \(group 'lab'\) has no ssh-ed25519 host key"):
        recipients_map({"x": {"hosts": ["lab"]}}, [], _host_keys(keys), groups)


def test_a_host_with_an_invalid_key_is_reported_once(keys):
    host_keys = dict(_host_keys(keys), p620=keys["olaf-rsa"])
    with pytest.raises(AgenixError) as e:
        recipients_map({"x": {"hosts": ["workstations"], "admins": False}}, [], host_keys, GROUPS)
    assert len(e.value.problems) == 1
    assert e.value.problems[0].startswith("host key of 'p620'")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((["not", "a", "mapping"], [], {}, {}), "secrets must map secret names"),
        (({"x": {}}, "ssh-ed25519 AAAA", {}, {}), "admin_keys must be a list"),
        (({"x": {}}, [], ["p620"], {}), "host_keys must map host names"),
        (({"x": {}}, [], {}, ["all"]), "groups must map group names"),
    ],
)
def test_wrong_argument_types(args, message):
    with pytest.raises(AgenixError, match=message):
        recipients_map(*args)


def test_secrets_nix_text(keys):
    rules = recipients_map({"p620-wifi": {"hosts": ["p620"], "admins": False}}, [], _host_keys(keys), GROUPS)
    text = secrets_nix(rules)
    assert text == SECRETS_NIX_HEADER + '{\n  "p620-wifi.age".publicKeys = [\n    "%s"\n  ];\n}\n' % _bare(keys["p620"])
    assert text.startswith("# Generated by homelab.nixos")


@pytest.mark.parametrize(
    "rules",
    [{"x.age": {"publicKeys": []}}, {"x.age": {"keys": ["a"]}}, {"x.age": ["a"]}, {"x.age": {"publicKeys": "a"}}],
)
def test_secrets_nix_refuses_other_shapes(rules):
    with pytest.raises(AgenixError, match=r"rule 'x\.age'"):
        secrets_nix(rules)


def _nix_eval(nix_instantiate, directory, expression):
    proc = subprocess.run(
        [nix_instantiate, "--eval", "--strict", "--json", "-E", expression],
        capture_output=True,
        text=True,
        cwd=str(directory),
        env={"LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin", "NIX_REMOTE": "", "HOME": str(directory)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_secrets_nix_evaluates_to_the_same_rules(keys, tmp_path, nix_instantiate):
    """Read back as agenix's CLI reads it: ``rules."<file>".publicKeys`` and ``builtins.attrNames rules``."""
    secrets = {
        "p620-wifi": {"hosts": ["p620"]},
        "restic-password": {"hosts": ["workstations"], "admins": False},
        "tailscale/authkey": {"hosts": ["servers", "workstations"]},
        "admins-only": {},
    }
    admins = [keys["olaf"], keys["olaf-rsa"], keys["age"]]
    rules = recipients_map(secrets, admins, _host_keys(keys), GROUPS)
    path = tmp_path / "secrets.nix"
    path.write_text(secrets_nix(rules))
    assert _nix_eval(nix_instantiate, tmp_path, "import ./secrets.nix") == rules
    assert _nix_eval(nix_instantiate, tmp_path, "builtins.attrNames (import ./secrets.nix)") == list(rules)
    for name, rule in rules.items():
        expression = '(let rules = import ./secrets.nix; in rules."%s".publicKeys)' % name
        assert _nix_eval(nix_instantiate, tmp_path, expression) == rule["publicKeys"]


# --- the age header --------------------------------------------------------------------------------------------


def test_recipient_tags_of_a_header(keys):
    tags = sorted([ssh_recipient_tag(keys["p620"]), ssh_recipient_tag(keys["olaf-rsa"])])
    stanzas = [
        ("ssh-ed25519", [tags[0], "share"]),
        ("X25519", ["share"]),
        ("ssh-rsa", [tags[1]]),
        ("i-J)-grease", ["x", "y"]),
        ("scrypt", ["salt", "18"]),
    ]
    for armor in (True, False):
        data = _age_file(stanzas, armor=armor)
        assert recipient_tags(data) == sorted([*tags, UNKNOWN, UNKNOWN])
        assert parse_header(data)[0] == ("ssh-ed25519", [tags[0], "share"])
    assert recipient_tags(_age_file(stanzas).decode("ascii")) == sorted([*tags, UNKNOWN, UNKNOWN])


def test_dearmor_leaves_binary_alone():
    data = _age_file([("X25519", ["a"])], armor=False)
    assert dearmor(data) == data
    assert dearmor(_age_file([("X25519", ["a"])]))[:22] == b"age-encryption.org/v1\n"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"hello", "does not start with age-encryption.org/v1"),
        (b"age-encryption.org/v1\n-> X25519 a\nAAAA\n", "no MAC line"),
        (b"age-encryption.org/v1\n--- mac\n", "no recipient stanza"),
        (b"age-encryption.org/v1\nAAAA\n-> X25519 a\n--- mac\n", "malformed header line"),
        (b"age-encryption.org/v1\n-> X25519  a\n--- mac\n", "malformed stanza line"),
        (b"age-encryption.org/v1\n-> X25519 a\n!!\n--- mac\n", "malformed header line"),
        (ARMOR_BEGIN + b"\nYWdl\n", "the armor has no END line"),
        (ARMOR_BEGIN + b"\n*not base64*\n" + ARMOR_END, "the armor is not valid base64"),
        ("age-encryption.org/v1 \u00e9", "not ASCII armored"),
        (42, "must be bytes or armored text"),
    ],
)
def test_not_an_age_file(data, message):
    with pytest.raises(AgenixError, match=message):
        recipient_tags(data)


def test_compare_recipients(keys):
    p620, razer, age = keys["p620"], keys["razer"], keys["age"]
    data = _age_file([("ssh-ed25519", [ssh_recipient_tag(p620), "s"]), ("X25519", ["s"])])
    same = compare_recipients(data, [age, p620])
    assert (same["current"], same["verified"], same["missing"], same["unexpected"]) == (True, False, [], [])
    changed = compare_recipients(data, [razer])
    assert changed["current"] is False
    assert changed["missing"] == [_bare(razer)]
    assert changed["unexpected"] == [ssh_recipient_tag(p620)]
    assert (changed["unknown_stanzas"], changed["unknown_recipients"]) == (1, 0)
    only_ssh = _age_file([("ssh-ed25519", [ssh_recipient_tag(p620), "s"])])
    assert compare_recipients(only_ssh, [p620])["verified"] is True


# --- rewrite decisions ---------------------------------------------------------------------------------------


def test_rewrite_reasons(keys):
    p620, age = keys["p620"], keys["age"]
    current = _age_file([("ssh-ed25519", [ssh_recipient_tag(p620), "s"]), ("X25519", ["s"])])
    assert rewrite_reasons(None, [p620])["reasons"] == ["the file does not exist"]
    assert rewrite_reasons(b"plain text", [p620])["reasons"][0].startswith("the file is not an age file")
    unchanged = rewrite_reasons(current, [p620, age])
    assert unchanged == {
        "reasons": [],
        "recipients_verified": False,
        "content_verified": False,
        "tags": sorted([ssh_recipient_tag(p620), UNKNOWN]),
    }
    assert rewrite_reasons(current, [p620])["reasons"] == [
        "the recipients changed: 1 X25519 (or other unmatched) stanzas for 0 age1 recipients"
    ]
    assert rewrite_reasons(current, [p620, keys["razer"], age])["reasons"] == [
        "the recipients changed: not encrypted to %s" % _bare(keys["razer"])
    ]


def test_rewrite_reasons_compares_the_decrypted_content(keys):
    current = _age_file([("ssh-ed25519", [ssh_recipient_tag(keys["p620"]), "s"])])

    def decrypted_fake():
        """Test double standing for age decrypting the existing file."""
        return b"old secret"

    same = rewrite_reasons(current, [keys["p620"]], "old secret", decrypted_fake)
    assert (same["reasons"], same["content_verified"]) == ([], True)
    changed = rewrite_reasons(current, [keys["p620"]], "new secret", decrypted_fake)
    assert changed["reasons"] == ["the content changed"]
    with pytest.raises(AgenixError, match="content is needed"):
        rewrite_reasons(current, [keys["p620"]], None, decrypted_fake)


# --- running age ---------------------------------------------------------------------------------------------


def test_argv_has_public_keys_only(keys, tmp_path):
    argv = encrypt_argv([keys["p620"], keys["age"]], "age", output="/x/y.age")
    assert argv == ["age", "--encrypt", "--armor", "-r", _bare(keys["p620"]), "-r", keys["age"], "-o", "/x/y.age"]
    identity = tmp_path / "id"
    identity.write_text("not really a key\n")
    assert decrypt_argv(str(identity), "age", input_path="/x/y.age") == [
        "age",
        "--decrypt",
        "-i",
        str(identity),
        "/x/y.age",
    ]


class FakeAgeEchoingInput:
    """Test double for an age that fails and repeats its input on stderr (the real age never does), to
    check that the error message cuts the plaintext out."""

    def __call__(self, argv, data):
        return 1, b"", b"age: error: cannot encrypt " + data + b"\nage: report unexpected or unhelpful errors at x\n"


def test_encrypt_errors_never_contain_the_plaintext(keys):
    with pytest.raises(AgenixError) as e:
        encrypt(b"hunter2-plaintext", [keys["p620"]], runner=FakeAgeEchoingInput())
    assert str(e.value) == "age could not encrypt (rc 1): cannot encrypt <redacted>"


def test_missing_age_executable(keys, tmp_path):
    with pytest.raises(AgenixError, match="was not found"):
        encrypt(b"x", [keys["p620"]], age=str(tmp_path / "no-age"))
    with pytest.raises(AgenixError, match="was not found"):
        run_age([str(tmp_path / "no-age")], b"")


def test_decrypt_needs_an_existing_identity(keys, tmp_path):
    data = _age_file([("ssh-ed25519", [ssh_recipient_tag(keys["p620"]), "s"])])
    with pytest.raises(AgenixError, match="does not exist"):
        decrypt(data, str(tmp_path / "nope"))
    with pytest.raises(AgenixError, match="an identity file"):
        decrypt(data, "")
    with pytest.raises(AgenixError, match="not an age file"):
        decrypt(b"garbage", str(tmp_path / "nope"))


@pytest.mark.skipif(AGE is None, reason="age is not installed (Debian package `age`)")
def test_decrypt_of_a_forged_header_fails_cleanly(keys, tmp_path):
    identity, public = ssh_key(tmp_path, "host")
    data = _age_file([("ssh-ed25519", [ssh_recipient_tag(public), base64.b64encode(b"\x09" * 32).decode()[:43]])])
    with pytest.raises(AgenixError) as e:
        decrypt(data, identity)
    assert str(e.value).startswith("age could not decrypt (rc 1): ")


# --- the secrets a host receives ------------------------------------------------------------------------


def test_definition_problems_lists_everything_before_hosts_are_contacted():
    definitions = {
        "wifi": {"hosts": ["p620"]},
        "restic": {"hosts": ["workstations", "p602"], "admins": False},
        "grafana": {"hosts": ["servers"], "owner": "grafana", "mode": "640"},
        "bad name": {},
        "vault-only": {"hosts": ["all"], "admins": False},
    }
    problems = definition_problems(
        definitions, GROUPS, value_names=["wifi", "vault-only", "stray"], existing_files=["restic.age", "grafana.age"]
    )
    assert problems == [
        "secret name 'bad name': use letters, digits and _ . @ + - (a relative path with / is fine)",
        "secret 'restic': not a host or group of the inventory: p602",
        "secret 'restic': admins cannot read it (admins: false), so its value must be given",
        "values given for undeclared secrets: stray",
    ]
    assert definition_problems({"new": {"hosts": ["all"]}}, GROUPS) == [
        "secret 'new': no value in the inventory and no new.age in the secrets directory"
    ]
    assert definition_problems({}, GROUPS) == []
    assert definition_problems(["wifi"], GROUPS) == [
        "secrets must map secret names to {hosts, admins, owner, group, mode}"
    ]


def test_host_secrets_follow_hosts_and_groups_with_default_permissions():
    definitions = {
        "wifi": {"hosts": ["p620"]},
        "restic": {"hosts": ["workstations", "servers"]},
        "grafana": {"hosts": ["servers"], "owner": "grafana", "group": "grafana", "mode": "440"},
        "admins-only": {},
        "nested/token": {"hosts": ["all"]},
    }
    p620 = host_secrets(definitions, "p620", GROUPS)
    assert [s["name"] for s in p620] == ["nested/token", "restic", "wifi"]
    assert p620[2] == {
        "name": "wifi",
        "file": "wifi.age",
        "source": "/var/lib/homelab/agenix/wifi.age",
        "dest": "/run/agenix/wifi",
        "owner": "root",
        "group": "root",
        "mode": "0400",
    }
    assert p620[0]["dest"] == "/run/agenix/nested/token"
    dex = host_secrets(definitions, "dex5550", GROUPS)
    assert [(s["name"], s["owner"], s["mode"]) for s in dex] == [
        ("grafana", "grafana", "0440"),
        ("nested/token", "root", "0400"),
        ("restic", "root", "0400"),
    ]
    assert host_secrets(definitions, "samsung", GROUPS) == [dict(p620[0])]
    with pytest.raises(AgenixError, match="not a host or group of the inventory: wfi"):
        host_secrets({"x": {"hosts": ["wfi"]}}, "p620", GROUPS)
