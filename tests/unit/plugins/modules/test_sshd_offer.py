"""sshd_offer run in-process against greeting_server, a test double of an SSH server's clear-text greeting.

greeting_server starts a FakeTcpServer (tests/unit/fake_tcp_server.py) on 127.0.0.1 that answers each connection
with fixed bytes: Debian 12's OpenSSH 9.2p1 identification and a KEXINIT packet built here (the parser itself is
tested in tests/unit/plugins/module_utils/test_ssh_kexinit.py). It proves the module's wrapping, not a real sshd.
"""

import contextlib
import struct

import pytest
from fake_tcp_server import FakeTcpServer, closed_port, read_line

from ansible_collections.homelab.nixos.plugins.modules import sshd_offer

KEX = [
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "ecdh-sha2-nistp256",
    "diffie-hellman-group14-sha256",
    "ext-info-s",
    "kex-strict-s-v00@openssh.com",
]
HOST_KEYS = ["rsa-sha2-512", "rsa-sha2-256", "ecdsa-sha2-nistp256", "ssh-ed25519"]
CIPHERS = ["chacha20-poly1305@openssh.com", "aes128-ctr", "aes256-gcm@openssh.com"]
MACS = ["hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com"]
COMPRESSION = ["none", "zlib@openssh.com"]


def _name_list(names):
    data = ",".join(names).encode("ascii")
    return struct.pack(">I", len(data)) + data


def _greeting(kex=None):
    lists = [KEX if kex is None else kex, HOST_KEYS, CIPHERS, CIPHERS, MACS, MACS, COMPRESSION, COMPRESSION, [], []]
    payload = bytes([20]) + bytes(16) + b"".join(_name_list(names) for names in lists) + bytes(5)
    padding = 8 - (len(payload) + 5) % 8
    padding += 8 if padding < 4 else 0
    packet = struct.pack(">IB", len(payload) + padding + 1, padding) + payload + bytes(padding)
    return b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n" + packet


def _answer_with(data):
    """A FakeTcpServer handler: read the client's identification line, then send ``data``."""

    def answer(conn):
        read_line(conn)
        conn.sendall(data)

    return answer


@pytest.fixture
def greeting_server():
    """``greeting_server(data)`` starts a FakeTcpServer answering with ``data``, closed after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda data: stack.enter_context(FakeTcpServer(_answer_with(data)))


@pytest.mark.parametrize("check_mode", [False, True])
def test_returns_the_offer(run_module, greeting_server, check_mode):
    fake = greeting_server(_greeting())
    failed, result = run_module(sshd_offer.main, {"port": fake.port, "timeout": 2}, check_mode=check_mode)
    assert not failed, result
    assert result == {
        "changed": False,
        "banner": "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3",
        "software": "OpenSSH_9.2p1 Debian-2+deb12u3",
        "kex_algorithms": KEX,
        "kex_algorithms_real": KEX[:4],
        "strict_kex": True,
        "server_host_key_algorithms": HOST_KEYS,
        "ciphers": CIPHERS,
        "ciphers_s2c": CIPHERS,
        "macs": MACS,
        "macs_s2c": MACS,
        "compression": COMPRESSION,
    }


def test_without_strict_kex(run_module, greeting_server):
    fake = greeting_server(_greeting(kex=["curve25519-sha256", "ext-info-c"]))
    failed, result = run_module(sshd_offer.main, {"host": "127.0.0.1", "port": fake.port})
    assert not failed, result
    assert result["strict_kex"] is False
    assert result["kex_algorithms_real"] == ["curve25519-sha256"]


def test_connection_refused_names_host_and_port(run_module):
    port = closed_port()
    failed, result = run_module(sshd_offer.main, {"host": "127.0.0.1", "port": port, "timeout": 2})
    assert failed
    assert result["msg"] == "cannot connect to 127.0.0.1 port %d: Connection refused" % port
    assert (result["host"], result["port"]) == ("127.0.0.1", port)


def test_non_ssh_peer_names_host_port_and_reason(run_module, greeting_server):
    fake = greeting_server(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    failed, result = run_module(sshd_offer.main, {"port": fake.port, "timeout": 2})
    assert failed
    assert result["msg"].startswith(
        "SSH server 127.0.0.1 port %d: the peer closed the connection before sending an SSH identification" % fake.port
    )
    assert "not an SSH server?" in result["msg"]


def test_malformed_kexinit_fails(run_module, greeting_server):
    fake = greeting_server(b"SSH-2.0-OpenSSH_9.2\r\n" + struct.pack(">I", 1 << 20))
    failed, result = run_module(sshd_offer.main, {"port": fake.port, "timeout": 2})
    assert failed
    assert "claims 1048576 bytes, more than the 35000 allowed" in result["msg"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"port": 0}, "port must be between 1 and 65535, got 0"),
        ({"port": 65536}, "port must be between 1 and 65535, got 65536"),
        ({"timeout": 0}, "timeout must be a positive number of seconds, got 0"),
        ({"host": ""}, "host must not be empty"),
    ],
)
def test_bad_arguments(run_module, args, message):
    failed, result = run_module(sshd_offer.main, args)
    assert failed and result["msg"] == message
