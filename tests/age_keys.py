"""Throwaway keys for the age/agenix tests, made by the real tools in a test's tmp_path.

``ssh_key`` runs ssh-keygen, ``age_key`` age-keygen (Debian package ``age``); tests that need age call
``require_age()`` first, which skips them with the reason when the binary is missing. ``age_recipient``
builds a syntactically valid ``age1...`` recipient from 32 bytes (bech32), for tests that only parse keys.
Private keys only ever exist in tmp_path.
"""

import os
import shutil
import subprocess

import pytest

AGE = shutil.which("age")
AGE_KEYGEN = shutil.which("age-keygen")
MISSING_AGE = "age is not installed (Debian package `age`: apt-get install -y age), the test needs the real binary"

_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def require_age():
    if not AGE or not AGE_KEYGEN:
        pytest.skip(MISSING_AGE)
    return AGE


def ssh_key(directory, name, kind="ed25519", passphrase="", bits=None):
    """(private key path, public key line with comment) of a new SSH key."""
    path = os.path.join(str(directory), name)
    argv = ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", name + "@test", "-f", path]
    if bits:
        argv += ["-b", str(bits)]
    subprocess.run(argv, check=True, capture_output=True)
    with open(path + ".pub", encoding="ascii") as f:
        return path, f.read().strip()


def age_key(directory, name):
    """(identity file path, age1 recipient) of a new age X25519 key."""
    path = os.path.join(str(directory), name + ".txt")
    subprocess.run([AGE_KEYGEN, "-o", path], check=True, capture_output=True)
    public = subprocess.run([AGE_KEYGEN, "-y", path], check=True, capture_output=True, text=True)
    return path, public.stdout.strip()


def _polymod(values):
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            check ^= gen[i] if (top >> i) & 1 else 0
    return check


def bech32(hrp, data):
    """Encode ``data`` (bytes) as bech32 with the human-readable part ``hrp``."""
    acc = bits = 0
    values = []
    for byte in data:
        acc = (acc << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            values.append((acc >> bits) & 31)
    if bits:
        values.append((acc << (5 - bits)) & 31)
    expanded = [ord(ch) >> 5 for ch in hrp] + [0] + [ord(ch) & 31 for ch in hrp]
    checksum = _polymod([*expanded, *values, 0, 0, 0, 0, 0, 0]) ^ 1
    values += [(checksum >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32[v] for v in values)


def age_recipient(seed=1):
    """A well-formed age1 recipient (not the public half of any known identity)."""
    return bech32("age", bytes((seed + i) % 256 for i in range(32)))
