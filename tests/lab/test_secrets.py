"""agenix-style secrets on the lab: encrypted on the controller to the admin
key and the SSH host keys collected from the hosts, decrypted by each host
with its own host key, and the admin key rotation that proves the new key by
a real login before the old one leaves authorized_keys."""

import hashlib
import json
import os
import subprocess

import pytest
from labtools import BIN, ROOT, env, recap, run_site

from ansible_collections.homelab.nixos.plugins.module_utils import _agenix as agenix

ADDRESSES = {"p620": "10.89.60.11", "razer": "10.89.60.12", "p510": "10.89.60.13", "dex5550": "10.89.60.14"}
ADDRESSES.update(samsung="10.89.60.15", nixvm="10.89.60.16")
STATE = os.path.join(ROOT, ".cache", "lab")
KEY = os.path.join(STATE, "id_ed25519")
KNOWN_HOSTS = os.path.join(STATE, "known_hosts")
SECRETS = os.path.join(STATE, "secrets")
SSH_OPTIONS = [
    "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=" + KNOWN_HOSTS, "-o", "StrictHostKeyChecking=accept-new",
    "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "ControlPath=none", "-o", "ConnectTimeout=5",
]  # fmt: skip


def _ssh(host, command, key=KEY, check=True):
    proc = subprocess.run(
        ["ssh", *SSH_OPTIONS, "-i", key, "admin@" + ADDRESSES[host], command],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if check:
        assert proc.returncode == 0, (host, command, proc.stderr)
    return proc


def _plaintext(name, key=KEY):
    with open(os.path.join(SECRETS, name + ".age"), "rb") as f:
        return agenix.decrypt(f.read(), key)


def _host_key(host):
    return _ssh(host, "cat /etc/ssh/ssh_host_ed25519_key.pub").stdout.strip()


def _tags(path):
    with open(path, "rb") as f:
        return agenix.recipient_tags(f.read())


def _decrypted(host, name):
    """(owner group mode, sha256) of /run/agenix/<name> on the host, or None."""
    proc = _ssh(host, f"sudo stat -c '%U %G %a' /run/agenix/{name} && sudo sha256sum /run/agenix/{name}", check=False)
    if proc.returncode != 0:
        return None
    lines = proc.stdout.split("\n")
    return lines[0], lines[1].split()[0]


def test_each_host_decrypts_its_secrets_with_its_own_host_key(hardened_lab):
    canary, monitoring = _plaintext("lab-canary"), _plaintext("lab-monitoring")
    host_keys = {host: _host_key(host) for host in ADDRESSES}
    admin = open(KEY + ".pub").read().strip()

    # The rules (agenix's secrets.nix, evaluated by the real Nix) and the files
    # agree with the keys the hosts really have.
    evaluated = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", os.path.join(SECRETS, "secrets.nix")],
        capture_output=True,
        text=True,
        check=True,
    )
    rules = json.loads(evaluated.stdout)
    # (lab-backup is the restic repositories' password, for every host like lab-canary)
    assert set(rules) == {"lab-canary.age", "lab-monitoring.age", "lab-backup.age"}
    for name in ("lab-canary.age", "lab-backup.age"):
        assert set(rules[name]["publicKeys"]) == {agenix.normalize_key(k) for k in [admin, *host_keys.values()]}
    assert set(rules["lab-monitoring.age"]["publicKeys"]) == {
        agenix.normalize_key(admin),
        agenix.normalize_key(host_keys["dex5550"]),
    }
    assert _tags(os.path.join(SECRETS, "lab-canary.age")) == sorted(
        agenix.ssh_recipient_tag(k) for k in [admin, *host_keys.values()]
    )

    for host in ADDRESSES:
        assert _decrypted(host, "lab-canary") == ("root root 400", hashlib.sha256(canary).hexdigest()), host
        if host == "dex5550":
            assert _decrypted(host, "lab-monitoring") == ("root adm 440", hashlib.sha256(monitoring).hexdigest())
        else:
            # Only the hosts a secret names receive it, even encrypted.
            assert _decrypted(host, "lab-monitoring") is None, host
            assert _ssh(host, "sudo test -e /var/lib/homelab/agenix/lab-monitoring.age", check=False).returncode == 1
        assert _ssh(host, "systemctl is-enabled homelab-agenix.service").stdout.strip() == "enabled"

    # A rerun with -v --diff changes nothing and shows no secret.
    rc, out = run_site("--tags", "secrets", "-v", "--diff")
    assert rc == 0, out[-3000:]
    assert all(changed == 0 for _ok, changed, _u, _f in recap(out).values()), recap(out)
    for secret in (canary, monitoring):
        value = secret.decode().strip()
        assert value not in out
        for host in ("dex5550", "samsung"):
            assert value not in _ssh(host, "sudo journalctl -u homelab-agenix --no-pager").stdout
        grep = subprocess.run(
            ["grep", "-rlF", value, SECRETS, os.path.join(ROOT, "build")], capture_output=True, check=False
        )
        assert grep.returncode == 1, grep.stdout


def test_a_secret_for_a_group_the_host_lacks_fails_clearly(hardened_lab):
    before = _decrypted("samsung", "lab-canary")
    wrong = {"secrets_definitions": {"lab-canary": {"hosts": ["samsung"], "group": "nosuchgroup", "mode": "0440"}}}
    rc, out = run_site("--limit", "samsung", "--tags", "secrets", "-e", json.dumps(wrong))
    assert rc != 0
    assert "samsung: group nosuchgroup does not exist, needed by lab-canary" in out
    # The secret on the host is left as it was.
    assert _decrypted("samsung", "lab-canary") == before


def test_a_lost_secret_and_a_new_host_key_are_repaired(hardened_lab):
    old_key = _host_key("samsung")
    _ssh(
        "samsung",
        "sudo rm -f /run/agenix/lab-canary /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub"
        " && sudo ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key && sudo systemctl restart ssh",
    )
    subprocess.run(["ssh-keygen", "-R", ADDRESSES["samsung"], "-f", KNOWN_HOSTS], capture_output=True, check=True)
    new_key = _host_key("samsung")
    assert new_key != old_key

    rc, out = run_site("--limit", "samsung", "--tags", "secrets")
    assert rc == 0, out[-3000:]
    assert "the recipients changed" in out
    tags = _tags(os.path.join(SECRETS, "lab-canary.age"))
    assert agenix.ssh_recipient_tag(new_key) in tags
    assert agenix.ssh_recipient_tag(old_key) not in tags
    with open(os.path.join(SECRETS, "hosts", "samsung.pub")) as f:
        assert f.read().strip() == new_key
    canary = hashlib.sha256(_plaintext("lab-canary")).hexdigest()
    assert _decrypted("samsung", "lab-canary") == ("root root 400", canary)
    # The others still hold the earlier ciphertext of the same value; the
    # next run without --limit gives them the new file.
    assert _decrypted("p620", "lab-canary") == ("root root 400", canary)


def _write_rotation_inventory(tmp_path, key, hosts):
    inventory = {
        "all": {
            "hosts": {host: {"ansible_host": ADDRESSES[host]} for host in hosts},
            "vars": {
                "ansible_user": "admin",
                "ansible_ssh_private_key_file": str(key),
                "ansible_ssh_common_args": " ".join(SSH_OPTIONS[:8]),
                "ansible_python_interpreter": "/usr/bin/python3",
                "secrets_dir": str(tmp_path / "secrets"),
                "secrets_definitions": {"rotation-test": {"hosts": ["all"]}},
            },
        }
    }
    path = tmp_path / "hosts.yml"
    path.write_text(json.dumps(inventory))
    return path


def _rotate(inventory):
    proc = subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), "-i", str(inventory), "playbooks/ops/rotate-ssh-key.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env(),
        check=False,
        timeout=600,
    )
    return proc.returncode, proc.stdout + proc.stderr


def _authorized(host):
    """The keys (type and base64, without comments) in admin's authorized_keys."""
    return [" ".join(line.split()[:2]) for line in _ssh(host, "cat ~/.ssh/authorized_keys").stdout.split("\n") if line]


def _bare(key):
    return " ".join(key.split()[:2])


@pytest.fixture
def rotation(hardened_lab, tmp_path):
    """A throwaway admin key authorized on two hosts, and a secret encrypted to it and their host keys."""
    hosts = ("samsung", "razer")
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rotation", "-f", str(key)], check=True)
    public = (tmp_path / "id_ed25519.pub").read_text().strip()
    for host in hosts:
        _ssh(host, f"printf '%s\\n' '{public}' >> ~/.ssh/authorized_keys")
    (tmp_path / "secrets").mkdir()
    value = os.urandom(24).hex().encode()
    ciphertext = agenix.encrypt(value, [public, *(_host_key(host) for host in hosts)])
    (tmp_path / "secrets" / "rotation-test.age").write_bytes(ciphertext)
    yield dict(
        hosts=hosts, key=key, public=public, value=value, inventory=_write_rotation_inventory(tmp_path, key, hosts)
    )
    for host in hosts:
        _ssh(
            host, "sudo chown admin:admin ~/.ssh && chmod 0700 ~/.ssh && sed -i '/ rotation$/d' ~/.ssh/authorized_keys"
        )


def test_a_rotation_that_cannot_reach_every_host_changes_nothing(rotation, tmp_path):
    before = {host: _authorized(host) for host in rotation["hosts"]}
    key_before = rotation["key"].read_bytes()
    secret_before = (tmp_path / "secrets" / "rotation-test.age").read_bytes()
    # razer's ~/.ssh becomes root's: the new key cannot be added there.
    _ssh("razer", "sudo chown root:root ~/.ssh && sudo chmod 0755 ~/.ssh")

    rc, out = _rotate(rotation["inventory"])

    assert rc != 0
    assert "Rotation aborted, the old key" in out and "razer: adding the key failed" in out
    assert {host: _authorized(host) for host in rotation["hosts"]} == before  # withdrawn from samsung
    assert rotation["key"].read_bytes() == key_before
    assert not os.path.exists(str(rotation["key"]) + ".rotating")
    assert (tmp_path / "secrets" / "rotation-test.age").read_bytes() == secret_before
    for host in rotation["hosts"]:
        _ssh(host, "true", key=str(rotation["key"]))


def test_the_new_key_is_proven_before_the_old_one_is_removed(rotation, tmp_path):
    rc, out = _rotate(rotation["inventory"])
    assert rc == 0, out[-4000:]

    key = str(rotation["key"])
    new_public = open(key + ".pub").read().strip()
    assert new_public != rotation["public"]
    retired = [
        name for name in os.listdir(tmp_path) if name.startswith("id_ed25519.retired-") and name.endswith(".pub")
    ]
    assert len(retired) == 1
    assert (tmp_path / retired[0]).read_text().strip() == rotation["public"]
    old_key = str(tmp_path / retired[0][: -len(".pub")])

    for host in rotation["hosts"]:
        _ssh(host, "true", key=key)
        refused = _ssh(host, "true", key=old_key, check=False)
        assert refused.returncode == 255 and "Permission denied" in refused.stderr
        authorized = _authorized(host)
        assert _bare(new_public) in authorized and _bare(rotation["public"]) not in authorized

    # The secret is re-encrypted to the new admin key (and still to the host
    # keys), with the same value; the old key no longer reads it.
    path = tmp_path / "secrets" / "rotation-test.age"
    expected = [new_public, *(_host_key(host) for host in rotation["hosts"])]
    assert _tags(str(path)) == sorted(agenix.ssh_recipient_tag(k) for k in expected)
    assert agenix.decrypt(path.read_bytes(), key) == rotation["value"]
    with pytest.raises(agenix.AgenixError, match="not one of the file's recipients"):
        agenix.decrypt(path.read_bytes(), old_key)
    rules = (tmp_path / "secrets" / "secrets.nix").read_text()
    assert new_public.split()[1] in rules and rotation["public"].split()[1] not in rules
