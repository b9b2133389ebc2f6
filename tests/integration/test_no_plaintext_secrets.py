"""No plaintext secret in the repository: every tracked file is scanned for
private keys, age identities and well-known token formats, and every YAML
variable named like a secret must be empty, a Jinja expression or vaulted."""

import os
import re
import subprocess

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKEN_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:OPENSSH |RSA |EC |DSA |ENCRYPTED |PGP )?PRIVATE KEY( BLOCK)?-----"),
    "age identity": re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]{58}"),
    "Tailscale key": re.compile(r"tskey-(?:auth|client|api)-[A-Za-z0-9]{8,}"),
    "GitHub token": re.compile(r"\b(?:ghp|gho|ghs|ghr|github_pat)_[A-Za-z0-9_]{30,}"),
    "OpenAI/Anthropic key": re.compile(r"\bsk-(?:ant-)?[A-Za-z0-9_-]{32,}"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
}
SECRET_NAME = re.compile(r"(password|passwd|secret|api_key|apikey|token|private_key)$", re.IGNORECASE)
YAML_DIRS = ("inventory", "roles", "playbooks", "molecule", "changelogs")
# What shadow(5) puts in a password field for an account without a password (a locked one).
LOCKED_PASSWORD = re.compile(r"^[!*]+$")


def scan_text(text):
    """Names of the token patterns found in ``text``."""
    return sorted(name for name, pattern in TOKEN_PATTERNS.items() if pattern.search(text))


def _literal_secrets(data, path=""):
    """(path, value) of variables named like secrets whose value is a plain, non-empty literal."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and SECRET_NAME.search(key) and isinstance(value, str):
                reference = value.startswith(("$ANSIBLE_VAULT", "$__file{", "$__env{"))
                locked = bool(LOCKED_PASSWORD.match(value))
                literal = value.strip() and "{{" not in value and not reference and not locked
                if literal:
                    found.append((where, value))
            found += _literal_secrets(value, where)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            found += _literal_secrets(item, f"{path}[{index}]")
    return found


class _VaultLoader(yaml.SafeLoader):
    """Reads `!vault |` values as the encrypted text they are."""


_VaultLoader.add_constructor("!vault", lambda loader, node: loader.construct_scalar(node))


def _tracked_files():
    proc = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip("not a git checkout")
    return [name for name in proc.stdout.split("\0") if name]


def test_the_scanner_finds_what_it_looks_for():
    header = "-----BEGIN OPENSSH " + "PRIVATE KEY-----"
    assert scan_text(f"x\n{header}\nabc") == ["private key"]
    assert scan_text("AGE-SECRET-KEY-1" + "Q" * 58) == ["age identity"]
    assert scan_text("key: tskey-auth-" + "k" * 20) == ["Tailscale key"]
    assert _literal_secrets({"vars": {"grafana_admin_password": "hunter2"}}) == [
        ("vars.grafana_admin_password", "hunter2")
    ]
    assert (
        _literal_secrets({"a_password": "", "b_token": "{{ vault_b }}", "c_secret": "$ANSIBLE_VAULT;1.1;AES256"}) == []
    )
    # A locked account's password field is no secret; anything more is.
    assert _literal_secrets({"user": {"password": "!"}, "other": {"password": "*"}}) == []
    assert _literal_secrets({"user": {"password": "!hunter2"}}) == [("user.password", "!hunter2")]


def test_no_tracked_file_holds_a_key_or_token():
    problems = []
    for name in _tracked_files():
        path = os.path.join(ROOT, name)
        if not os.path.isfile(path) or os.path.islink(path):
            continue
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        # This file spells the patterns out; they are split so that it does not match itself.
        found = scan_text(text)
        if found:
            problems.append(f"{name}: {', '.join(found)}")
    assert problems == []


def test_no_yaml_variable_holds_a_plaintext_secret():
    problems = []
    for name in _tracked_files():
        if not name.endswith((".yml", ".yaml")) or not name.startswith(YAML_DIRS):
            continue
        with open(os.path.join(ROOT, name), encoding="utf-8") as f:
            try:
                documents = list(yaml.load_all(f, Loader=_VaultLoader))
            except yaml.YAMLError:
                continue  # Jinja-templated YAML; ansible-lint checks its syntax
        for document in documents:
            problems += [f"{name}: {where} = {value!r}" for where, value in _literal_secrets(document)]
    assert problems == []
