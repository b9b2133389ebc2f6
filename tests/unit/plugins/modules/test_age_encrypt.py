"""age_encrypt with the real age and keys made by ssh-keygen and age-keygen in tmp_path."""

import json
import os
import stat

import pytest
from age_keys import age_key, require_age, ssh_key

from ansible_collections.homelab.nixos.plugins.module_utils._agenix import (
    AgenixError,
    decrypt,
    recipient_tags,
    ssh_recipient_tag,
)
from ansible_collections.homelab.nixos.plugins.modules import age_encrypt

SECRET = "wifi-psk-Zq8vN3kT"


@pytest.fixture
def keys(tmp_path):
    require_age()
    directory = tmp_path / "keys"
    directory.mkdir()
    made = {name: ssh_key(directory, name) for name in ("p620", "razer", "stranger")}
    made["admin"] = age_key(directory, "admin")
    return made


@pytest.fixture
def secret_path(tmp_path):
    directory = tmp_path / "secrets"
    directory.mkdir()
    return str(directory / "p620-wifi.age")


def _run(run_module, path, recipients, check_mode=False, diff=False, **kw):
    args = {"path": path, "content": SECRET, "recipients": recipients}
    args.update(kw)
    failed, result = run_module(age_encrypt.main, args, check_mode=check_mode, diff=diff)
    assert SECRET not in json.dumps(result)
    return failed, result


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_writes_an_armored_file_each_recipient_can_decrypt(run_module, keys, secret_path):
    recipients = [keys["p620"][1], keys["admin"][1]]
    failed, result = _run(run_module, secret_path, recipients)
    assert not failed, result
    assert result["changed"] is True
    assert result["reasons"] == ["the file does not exist"]
    assert result["tags"] == sorted([ssh_recipient_tag(keys["p620"][1]), "unknown"])
    assert _mode(secret_path) == 0o644
    data = open(secret_path, "rb").read()
    assert data.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    assert recipient_tags(data) == result["tags"]
    for name in ("p620", "admin"):
        assert decrypt(data, keys[name][0]) == SECRET.encode()
    assert not [n for n in os.listdir(os.path.dirname(secret_path)) if n != "p620-wifi.age"]


def test_second_run_changes_nothing(run_module, keys, secret_path):
    recipients = [keys["p620"][1], keys["admin"][1]]
    _run(run_module, secret_path, recipients)
    before = open(secret_path, "rb").read()
    failed, result = _run(run_module, secret_path, recipients)
    assert not failed and result["changed"] is False, result
    assert (result["recipients_verified"], result["content_verified"]) == (False, False)
    failed, result = _run(run_module, secret_path, recipients, identity=keys["admin"][0])
    assert not failed and result["changed"] is False, result
    assert result["content_verified"] is True
    assert open(secret_path, "rb").read() == before


def test_only_ssh_recipients_are_verified(run_module, keys, secret_path):
    recipients = [keys["p620"][1], keys["razer"][1]]
    _run(run_module, secret_path, recipients)
    failed, result = _run(run_module, secret_path, list(reversed(recipients)))
    assert not failed and result["changed"] is False
    assert result["recipients_verified"] is True


def test_changed_content_is_found_with_an_identity_only(run_module, keys, secret_path):
    recipients = [keys["p620"][1], keys["admin"][1]]
    _run(run_module, secret_path, recipients)
    args = {"path": secret_path, "content": SECRET + "-new", "recipients": recipients}
    failed, result = run_module(age_encrypt.main, args)
    assert not failed and result["changed"] is False, "without identity the content cannot be compared"
    failed, result = run_module(age_encrypt.main, dict(args, identity=keys["p620"][0]), diff=True)
    assert not failed and result["changed"] is True
    assert result["reasons"] == ["the content changed"]
    assert "content: (not shown, changed)" in result["diff"]["after"]
    assert SECRET not in json.dumps(result)
    assert decrypt(open(secret_path, "rb").read(), keys["admin"][0]) == (SECRET + "-new").encode()


def test_force_rewrites(run_module, keys, secret_path):
    _run(run_module, secret_path, [keys["p620"][1]])
    before = open(secret_path, "rb").read()
    failed, result = _run(run_module, secret_path, [keys["p620"][1]], force=True)
    assert not failed and result["changed"] is True and result["reasons"] == ["force is set"]
    assert open(secret_path, "rb").read() != before


def test_a_new_host_rekeys_the_file(run_module, keys, secret_path):
    _run(run_module, secret_path, [keys["p620"][1], keys["admin"][1]])
    recipients = [keys["p620"][1], keys["razer"][1], keys["admin"][1]]
    failed, result = _run(run_module, secret_path, recipients, diff=True)
    assert not failed and result["changed"] is True
    razer = " ".join(keys["razer"][1].split()[:2])
    assert result["reasons"] == ["the recipients changed: not encrypted to " + razer]
    assert "recipient %s\n" % ssh_recipient_tag(razer) in result["diff"]["after"]
    assert "recipient %s\n" % ssh_recipient_tag(razer) not in result["diff"]["before"]
    assert decrypt(open(secret_path, "rb").read(), keys["razer"][0]) == SECRET.encode()
    # A host removed again.
    failed, result = _run(run_module, secret_path, [keys["razer"][1], keys["admin"][1]])
    assert result["reasons"] == [
        "the recipients changed: encrypted to keys no longer listed (tags %s)" % ssh_recipient_tag(keys["p620"][1])
    ]
    with pytest.raises(AgenixError, match="is not one of the file's recipients"):
        decrypt(open(secret_path, "rb").read(), keys["p620"][0])


def test_check_mode_writes_nothing(run_module, keys, secret_path):
    failed, result = _run(run_module, secret_path, [keys["p620"][1]], check_mode=True, diff=True)
    assert not failed and result["changed"] is True
    assert result["diff"]["before"] == ""
    assert not os.path.exists(secret_path)
    _run(run_module, secret_path, [keys["p620"][1]])
    before = open(secret_path, "rb").read()
    failed, result = _run(run_module, secret_path, [keys["razer"][1]], check_mode=True)
    assert not failed and result["changed"] is True
    assert open(secret_path, "rb").read() == before


def test_mode_is_restored(run_module, keys, secret_path):
    _run(run_module, secret_path, [keys["p620"][1]])
    os.chmod(secret_path, 0o600)
    failed, result = _run(run_module, secret_path, [keys["p620"][1]], check_mode=True)
    assert not failed and result["changed"] is True and _mode(secret_path) == 0o600
    failed, result = _run(run_module, secret_path, [keys["p620"][1]])
    assert not failed and result["changed"] is True and result["reasons"] == [] and _mode(secret_path) == 0o644


def test_a_file_that_is_not_age_is_replaced(run_module, keys, secret_path):
    with open(secret_path, "w") as f:
        f.write("plain text\n")
    failed, result = _run(run_module, secret_path, [keys["p620"][1]], identity=keys["p620"][0])
    assert not failed and result["changed"] is True
    assert result["reasons"][0].startswith("the file is not an age file")
    assert decrypt(open(secret_path, "rb").read(), keys["p620"][0]) == SECRET.encode()


def test_a_wrong_identity_fails_without_the_secret(run_module, keys, secret_path):
    _run(run_module, secret_path, [keys["p620"][1]])
    failed, result = _run(run_module, secret_path, [keys["p620"][1]], identity=keys["stranger"][0])
    assert failed
    assert "is not one of the file's recipients" in result["msg"]


def test_empty_and_large_content(run_module, keys, secret_path):
    recipients = [keys["p620"][1]]
    failed, result = run_module(age_encrypt.main, {"path": secret_path, "content": "", "recipients": recipients})
    assert not failed, result
    assert decrypt(open(secret_path, "rb").read(), keys["p620"][0]) == b""
    big = "0123456789abcdef" * 40000  # 640 KB: more than any pipe buffer
    args = {"path": secret_path, "content": big, "recipients": recipients, "identity": keys["p620"][0]}
    failed, result = run_module(age_encrypt.main, args)
    assert not failed and result["reasons"] == ["the content changed"], result
    failed, result = run_module(age_encrypt.main, args)
    assert not failed and result["changed"] is False
    assert decrypt(open(secret_path, "rb").read(), keys["p620"][0]) == big.encode()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"recipients": ["ssh-ed25519 AAAA"]}, "recipient 1 'ssh-ed25519 AAAA': the key blob is truncated"),
        ({"recipients": []}, "at least one recipient"),
        ({"path": "/nonexistent-dir/x.age"}, "the directory /nonexistent-dir does not exist"),
    ],
)
def test_bad_arguments(run_module, keys, secret_path, args, message):
    args = dict({"path": secret_path, "content": SECRET, "recipients": [keys["p620"][1]]}, **args)
    failed, result = run_module(age_encrypt.main, args)
    assert failed and message in result["msg"]
