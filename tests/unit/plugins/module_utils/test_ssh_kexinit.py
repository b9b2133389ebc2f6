"""_ssh_kexinit against FakeSshServer, a test double of an SSH server's clear-text greeting.

FakeSshServer (a FakeTcpServer from tests/unit/fake_tcp_server.py) listens on 127.0.0.1 and answers every
connection with the bytes it is given: pre-banner lines, an identification line and a KEXINIT packet built here
from the lists that Debian 12's OpenSSH 9.2p1 (openssh-server 1:9.2p1-2+deb12u10, default configuration) sends,
or malformed variants. It proves the parser against RFC 4253's byte layout, never that a real sshd is what it
imitates.
"""

import contextlib
import socket
import struct
import time

import pytest
from fake_tcp_server import FakeTcpServer, closed_port, read_line

from ansible_collections.homelab.nixos.plugins.module_utils._ssh_kexinit import (
    IDENTIFICATION,
    KexinitError,
    parse_kexinit,
    probe,
    read_offer,
    real_kex_algorithms,
    strict_kex,
)

BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10"
# SSH_MSG_KEXINIT name-lists in RFC 4253 section 7.1 order, as Debian 12's sshd sends them.
OPENSSH_9_2 = [
    (
        "kex_algorithms",
        [
            "sntrup761x25519-sha512",
            "sntrup761x25519-sha512@openssh.com",
            "curve25519-sha256",
            "curve25519-sha256@libssh.org",
            "ecdh-sha2-nistp256",
            "ecdh-sha2-nistp384",
            "ecdh-sha2-nistp521",
            "diffie-hellman-group-exchange-sha256",
            "diffie-hellman-group16-sha512",
            "diffie-hellman-group18-sha512",
            "diffie-hellman-group14-sha256",
            "kex-strict-s-v00@openssh.com",
        ],
    ),
    ("server_host_key_algorithms", ["rsa-sha2-512", "rsa-sha2-256", "ecdsa-sha2-nistp256", "ssh-ed25519"]),
    (
        "ciphers",
        [
            "chacha20-poly1305@openssh.com",
            "aes128-ctr",
            "aes192-ctr",
            "aes256-ctr",
            "aes128-gcm@openssh.com",
            "aes256-gcm@openssh.com",
        ],
    ),
    ("ciphers_s2c", None),  # None: same as the list before
    (
        "macs",
        [
            "umac-64-etm@openssh.com",
            "umac-128-etm@openssh.com",
            "hmac-sha2-256-etm@openssh.com",
            "hmac-sha2-512-etm@openssh.com",
            "hmac-sha1-etm@openssh.com",
            "umac-64@openssh.com",
            "umac-128@openssh.com",
            "hmac-sha2-256",
            "hmac-sha2-512",
            "hmac-sha1",
        ],
    ),
    ("macs_s2c", None),
    ("compression", ["none", "zlib@openssh.com"]),
    ("compression_s2c", None),
    ("languages", []),
    ("languages_s2c", []),
]


def lists(**changes):
    """The OpenSSH 9.2 name-lists as {field: names}, with ``changes`` applied."""
    result = {}
    previous = None
    for field, names in OPENSSH_9_2:
        previous = list(previous if names is None else names)
        result[field] = previous
    result.update(changes)
    return result


def name_list(names):
    data = names if isinstance(names, bytes) else ",".join(names).encode("ascii")
    return struct.pack(">I", len(data)) + data


def kexinit_payload(values=None, cookie=bytes(range(16)), follows=0, reserved=0):
    values = lists() if values is None else values
    body = b"".join(name_list(values[field]) for field, _names in OPENSSH_9_2)
    return bytes([20]) + cookie + body + bytes([follows]) + struct.pack(">I", reserved)


def packet(payload, block=8):
    """An unencrypted binary packet (RFC 4253 section 6) around ``payload``."""
    padding = block - (len(payload) + 5) % block
    if padding < 4:
        padding += block
    return struct.pack(">IB", len(payload) + padding + 1, padding) + payload + bytes(padding)


GREETING = BANNER + b"\r\n" + packet(kexinit_payload())


class FakeSshServer(FakeTcpServer):
    """Test double of an SSH server's greeting on 127.0.0.1 (on ::1 with ``ipv6``).

    For every connection it optionally waits for the client's identification line (``read_client``), sends
    each of ``chunks`` (pausing ``pause`` seconds between them), then closes the connection (with a TCP reset
    when ``reset`` is set), or keeps it open until ``close()`` when ``hold`` is set. What clients sent is
    collected in ``received``.
    """

    def __init__(self, chunks, *, read_client=True, pause=0.0, hold=False, reset=False, ipv6=False):
        self.chunks = [chunks] if isinstance(chunks, bytes) else list(chunks)
        self.read_client = read_client
        self.pause = pause
        self.hold = hold
        self.reset = reset
        self.received = []
        super().__init__(self._answer, host="::1" if ipv6 else "127.0.0.1")

    def _answer(self, conn):
        if self.reset:
            # Linger 0: close() sends a TCP reset instead of a FIN.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if self.read_client:
            self.received.append(read_line(conn, 300))
        for index, chunk in enumerate(self.chunks):
            if index and self.pause:
                time.sleep(self.pause)
            conn.sendall(chunk)
        return self.hold


@pytest.fixture
def server():
    """``server(chunks, **options)`` starts a FakeSshServer that is closed after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda chunks, **options: stack.enter_context(FakeSshServer(chunks, **options))


def offer_from(fake, timeout=2):
    return probe("127.0.0.1", fake.port, timeout)


def error_from(fake, timeout=2):
    with pytest.raises(KexinitError) as exc:
        probe("127.0.0.1", fake.port, timeout)
    return str(exc.value)


def test_reads_openssh_9_2_offer_after_pre_banner_lines(server):
    fake = server([b"Welcome to p620\r\n", b"Authorised users only\n", GREETING])
    offer = offer_from(fake)
    expected = lists()
    assert offer == {
        "banner": "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10",
        "software": "OpenSSH_9.2p1 Debian-2+deb12u10",
        "kex_algorithms": expected["kex_algorithms"],
        "server_host_key_algorithms": ["rsa-sha2-512", "rsa-sha2-256", "ecdsa-sha2-nistp256", "ssh-ed25519"],
        "ciphers": expected["ciphers"],
        "ciphers_s2c": expected["ciphers"],
        "macs": expected["macs"],
        "macs_s2c": expected["macs"],
        "compression": ["none", "zlib@openssh.com"],
    }
    assert fake.received == [IDENTIFICATION]
    assert IDENTIFICATION == b"SSH-2.0-homelab_nixos_probe\r\n"


def test_greeting_in_one_byte_pieces(server):
    fake = server([bytes([b]) for b in b"pre\r\n" + GREETING])
    offer = offer_from(fake, timeout=10)
    assert offer["banner"] == BANNER.decode()
    assert offer["macs_s2c"][-1] == "hmac-sha1"


def test_directions_are_kept_apart(server):
    values = lists(ciphers=["aes256-gcm@openssh.com"], ciphers_s2c=["aes128-ctr"], macs=["hmac-sha2-512"])
    offer = offer_from(server(BANNER + b"\r\n" + packet(kexinit_payload(values))))
    assert offer["ciphers"] == ["aes256-gcm@openssh.com"]
    assert offer["ciphers_s2c"] == ["aes128-ctr"]
    assert offer["macs"] == ["hmac-sha2-512"]
    assert offer["macs_s2c"] == lists()["macs"]


def test_lf_only_line_ends_and_protocol_1_99(server):
    fake = server(b"hello\nSSH-1.99-dropbear_2022.83\n" + packet(kexinit_payload()))
    offer = offer_from(fake)
    assert offer["banner"] == "SSH-1.99-dropbear_2022.83"
    assert offer["software"] == "dropbear_2022.83"


def test_packet_padded_to_a_larger_block_and_trailing_payload_bytes(server):
    payload = kexinit_payload(follows=1) + b"extension data"
    offer = offer_from(server(BANNER + b"\r\n" + packet(payload, block=16)))
    assert offer["compression"] == ["none", "zlib@openssh.com"]


def test_read_offer_on_a_connected_socket_uses_its_timeout(server):
    fake = server(GREETING)
    sock = socket.create_connection(("127.0.0.1", fake.port), timeout=2)
    try:
        assert read_offer(sock)["software"] == "OpenSSH_9.2p1 Debian-2+deb12u10"
    finally:
        sock.close()


def test_ipv6_loopback(server):
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    try:
        fake = server(GREETING, ipv6=True)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    assert probe("::1", fake.port, 2)["banner"] == BANNER.decode()


def test_strict_kex_and_real_algorithms():
    kex = lists()["kex_algorithms"] + ["ext-info-s"]
    assert strict_kex(kex) is True
    assert strict_kex(["curve25519-sha256", "kex-strict-c-v00@openssh.com"]) is False
    assert real_kex_algorithms(kex) == lists()["kex_algorithms"][:-1]
    assert real_kex_algorithms(["ext-info-c", "kex-strict-c-v00@openssh.com", "curve25519-sha256"]) == [
        "curve25519-sha256"
    ]


# Malformed or missing greetings


def test_oversized_packet_length(server):
    message = error_from(server(BANNER + b"\r\n" + struct.pack(">IB", 35001, 4) + bytes(64)))
    assert "claims 35001 bytes, more than the 35000 allowed" in message


def test_huge_packet_length_is_refused_before_reading_it(server):
    fake = server(BANNER + b"\r\n" + b"\xff\xff\xff\xff", hold=True)
    start = time.monotonic()
    message = error_from(fake, timeout=5)
    assert "claims 4294967295 bytes" in message
    assert time.monotonic() - start < 2


def test_packet_length_too_short_or_unaligned(server):
    assert "too short" in error_from(server(BANNER + b"\r\n" + struct.pack(">IB", 4, 4) + bytes(8)))
    assert "not a multiple of 8" in error_from(server(BANNER + b"\r\n" + struct.pack(">IB", 13, 4) + bytes(13)))


def test_truncated_packet(server):
    full = packet(kexinit_payload())
    message = error_from(server(BANNER + b"\r\n" + full[:100]))
    length = struct.unpack(">I", full[:4])[0]
    assert message == (
        "the peer closed the connection after 96 of the %d bytes of the server's first binary packet" % length
    )


def test_peer_closes_after_its_identification(server):
    message = error_from(server(BANNER + b"\r\n"))
    assert message == "the peer closed the connection after its identification, before its KEXINIT"


def test_peer_closes_without_a_word(server):
    message = error_from(server([]))
    assert message == "the peer closed the connection before sending an SSH identification"


def test_peer_resets_the_connection(server):
    message = error_from(server([], reset=True))
    assert message == "connection failed while waiting for the server's SSH identification: Connection reset by peer"


def test_peer_resets_in_the_middle_of_the_packet(server):
    message = error_from(server(BANNER + b"\r\n" + packet(kexinit_payload())[:50], reset=True))
    assert message == "connection failed while waiting for the server's first binary packet: Connection reset by peer"


def test_wrong_message_number(server):
    message = error_from(server(BANNER + b"\r\n" + packet(bytes([2]) + bytes(20))))
    assert message == "the first packet is message 2, not SSH_MSG_KEXINIT (20)"


def test_disconnect_instead_of_kexinit_is_reported_with_its_reason(server):
    description = b"Too many connections"
    payload = bytes([1]) + struct.pack(">I", 7) + struct.pack(">I", len(description)) + description + name_list([])
    message = error_from(server(BANNER + b"\r\n" + packet(payload)))
    assert message == "the server sent SSH_MSG_DISCONNECT (reason 7) instead of KEXINIT: Too many connections"


def test_non_ssh_peer_answering_http(server):
    fake = server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    message = error_from(fake)
    assert message == (
        "the peer closed the connection before sending an SSH identification"
        " (it sent 3 other line(s), the first b'HTTP/1.1 400 Bad Request': not an SSH server?)"
    )


def test_non_ssh_peer_sending_binary_without_line_end(server):
    message = error_from(server(b"\x16\x03\x01" + bytes(300), hold=True))
    assert message.startswith(
        "no line end within 255 bytes while waiting for the server's SSH identification (not an SSH server?): "
        "b'\\x16\\x03\\x01"
    )


def test_unfinished_text_before_close(server):
    message = error_from(server(b"220 mail.example ESMTP"))
    assert message == (
        "the peer closed the connection before sending an SSH identification"
        " (it sent b'220 mail.example ESMTP': not an SSH server?)"
    )


def test_line_of_256_bytes_is_too_long_and_255_is_fine(server):
    assert offer_from(server(b"x" * 253 + b"\r\n" + GREETING))["banner"] == BANNER.decode()
    assert "no line end within 255 bytes" in error_from(server(b"x" * 254 + b"\r\n" + GREETING))


def test_too_many_pre_banner_lines(server):
    message = error_from(server(b"motd\r\n" * 1024 + GREETING))
    assert message == "no SSH identification within the first 1024 lines (not an SSH server?); the first was b'motd'"


def test_ssh_protocol_1_is_refused(server):
    assert error_from(server(b"SSH-1.5-OpenSSH_3.4\r\n")) == (
        "the server speaks SSH protocol 1.5, not 2.0: 'SSH-1.5-OpenSSH_3.4'"
    )


@pytest.mark.parametrize("banner", [b"SSH-2.0-", b"SSH-2.0", b"SSH-"])
def test_identification_without_software_version(server, banner):
    assert "malformed SSH identification" in error_from(server(banner + b"\r\n" + packet(kexinit_payload())))


def test_identification_with_nul(server):
    assert "NUL byte" in error_from(server(b"SSH-2.0-evil\0\r\n" + packet(kexinit_payload())))


@pytest.mark.parametrize(
    ("padding_length", "payload"),
    [(3, kexinit_payload()), (0, kexinit_payload()), (255, bytes([20]) + bytes(16)), (19, bytes([20]) + bytes(16))],
)
def test_bad_padding_length(server, padding_length, payload):
    body = bytes([padding_length]) + payload
    body += bytes(-(len(body) + 4) % 8)
    message = error_from(server(BANNER + b"\r\n" + struct.pack(">I", len(body)) + body))
    assert "padding_length %d, outside 4..%d" % (padding_length, len(body) - 2) in message


def test_name_list_longer_than_the_packet(server):
    payload = bytes([20]) + bytes(16) + struct.pack(">I", 5000) + b"curve25519-sha256"
    message = error_from(server(BANNER + b"\r\n" + packet(payload)))
    assert message == "the KEXINIT packet is truncated: kex_algorithms needs 5000 bytes, 17 are left of 38"


def test_kexinit_cut_before_the_reserved_field():
    payload = kexinit_payload()[:-3]
    with pytest.raises(KexinitError, match="reserved needs 4 bytes, 1 are left"):
        parse_kexinit(payload)


def test_kexinit_cut_inside_the_cookie():
    with pytest.raises(KexinitError, match="cookie needs 16 bytes, 5 are left of 6"):
        parse_kexinit(bytes([20, 1, 2, 3, 4, 5]))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"curve25519-sha256,,ecdh-sha2-nistp256", "empty or unprintable name"),
        (b"curve25519-sha256,", "empty or unprintable name"),
        (b"curve25519 sha256", "empty or unprintable name"),
        (b"curve25519-sha256\0", "empty or unprintable name"),
        (b"curve\xc3\xa925519", "is not ASCII"),
    ],
)
def test_bad_names(raw, reason):
    values = lists(kex_algorithms=raw)
    with pytest.raises(KexinitError, match="name-list kex_algorithms") as exc:
        parse_kexinit(kexinit_payload(values))
    assert reason in str(exc.value)


def test_parse_kexinit_returns_all_ten_lists():
    parsed = parse_kexinit(kexinit_payload(lists(languages=["en-US"]), follows=1))
    assert parsed["languages"] == ["en-US"]
    assert parsed["languages_s2c"] == []
    assert parsed["compression_s2c"] == ["none", "zlib@openssh.com"]
    assert parsed["first_kex_packet_follows"] is True


def test_silent_server_times_out_at_the_deadline(server):
    fake = server([], hold=True)
    start = time.monotonic()
    message = error_from(fake, timeout=0.5)
    elapsed = time.monotonic() - start
    assert message == "timed out while waiting for the server's SSH identification"
    assert 0.4 < elapsed < 2


def test_server_dripping_bytes_cannot_outlast_the_deadline(server):
    fake = server([b"x"] * 50, pause=0.1, hold=True)
    start = time.monotonic()
    message = error_from(fake, timeout=0.6)
    assert message.startswith("timed out")
    assert time.monotonic() - start < 2


def test_read_offer_reports_the_socket_timeout(server):
    fake = server(BANNER + b"\r\n", hold=True)
    sock = socket.create_connection(("127.0.0.1", fake.port), timeout=0.3)
    try:
        with pytest.raises(KexinitError, match=r"^timed out while waiting for the server's first binary packet$"):
            read_offer(sock)
    finally:
        sock.close()


def test_nothing_listening_is_the_connect_oserror():
    with pytest.raises(ConnectionRefusedError):
        probe("127.0.0.1", closed_port(), 2)
