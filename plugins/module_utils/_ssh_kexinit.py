# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a running SSH server offers, read from its first unencrypted messages.

An SSH server starts every connection in clear text (RFC 4253): its
identification line (section 4.2, ``SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3``),
then a binary packet (section 6: uint32 packet_length, byte padding_length,
payload, padding) whose payload is SSH_MSG_KEXINIT (section 7.1: byte 20, a
16-byte cookie, ten name-lists, boolean first_kex_packet_follows, uint32
reserved). ``read_offer(sock)`` sends our own identification, reads both and
returns the algorithms the server offers; ``probe(host, port, timeout)`` does
it over a new TCP connection. Nothing is negotiated: the connection is closed
right after the KEXINIT.

Every length is checked before it is used. Anything that is not an SSH server's
well-formed greeting raises ``KexinitError`` with a one-line reason; so do
timeouts and a peer that closes or resets the connection early. Failing to
connect at all is the ``OSError`` of ``socket.create_connection``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket
import struct
import time

# Our identification line (RFC 4253 section 4.2).
IDENTIFICATION = b"SSH-2.0-homelab_nixos_probe\r\n"
# Longest line, CR LF included (RFC 4253 section 4.2).
MAX_LINE = 255
# Lines a server may send before its identification (OpenSSH's client limit).
MAX_PRE_BANNER_LINES = 1024
# Largest packet_length accepted (RFC 4253 section 6.1: at least 35000 must be).
MAX_PACKET_LENGTH = 35000
# The unencrypted "cipher" has 8-byte blocks; padding is at least 4 bytes (RFC 4253 section 6).
BLOCK_SIZE = 8
MIN_PADDING = 4
SSH_MSG_DISCONNECT = 1
SSH_MSG_KEXINIT = 20
COOKIE_LENGTH = 16
PROTOCOL_VERSIONS = ("2.0", "1.99")

# The ten name-lists of SSH_MSG_KEXINIT, in order (c2s: client to server).
NAME_LISTS = (
    "kex_algorithms",
    "server_host_key_algorithms",
    "ciphers",
    "ciphers_s2c",
    "macs",
    "macs_s2c",
    "compression",
    "compression_s2c",
    "languages",
    "languages_s2c",
)
# The name-lists read_offer() returns.
OFFER_LISTS = NAME_LISTS[:7]

STRICT_KEX_SERVER = "kex-strict-s-v00@openssh.com"
# Names in kex_algorithms that signal extensions, not key exchange methods
# (RFC 8308 ext-info; OpenSSH's strict KEX against the Terrapin attack).
PSEUDO_KEX_ALGORITHMS = (
    "ext-info-s",
    "ext-info-c",
    STRICT_KEX_SERVER,
    "kex-strict-c-v00@openssh.com",
)


class KexinitError(Exception):
    """The peer's greeting is not a well-formed SSH identification and KEXINIT (or it never came)."""


class _Closed(KexinitError):
    """The peer closed the connection in the middle of something."""


def _show(data, limit=40):
    """Some bytes of a malformed answer, printable in a one-line message."""
    text = repr(bytes(data[:limit]))
    return text + ("..." if len(data) > limit else "")


def _socket_failure(error, doing):
    # socket.timeout is an alias of TimeoutError only from Python 3.10 on.
    if isinstance(error, socket.timeout):
        return "timed out %s" % doing
    return "connection failed %s: %s" % (doing, error.strerror or error)


class _Reader:
    """Buffered reads from ``sock`` that never wait past ``deadline`` (a time.monotonic() value)."""

    def __init__(self, sock, deadline=None):
        self.sock = sock
        self.deadline = deadline
        self.buffer = b""

    def _fill(self, what):
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise KexinitError("timed out while waiting for %s" % what)
            self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(4096)
        except OSError as e:
            raise KexinitError(_socket_failure(e, "while waiting for %s" % what)) from None
        if not chunk:
            raise _Closed("the peer closed the connection while we waited for %s" % what)
        self.buffer += chunk

    def line(self, what):
        """The next line, its LF included; at most MAX_LINE bytes."""
        while True:
            end = self.buffer.find(b"\n", 0, MAX_LINE)
            if end >= 0:
                line, self.buffer = self.buffer[: end + 1], self.buffer[end + 1 :]
                return line
            if len(self.buffer) >= MAX_LINE:
                raise KexinitError(
                    "no line end within %d bytes while waiting for %s (not an SSH server?): %s"
                    % (MAX_LINE, what, _show(self.buffer))
                )
            self._fill(what)

    def exactly(self, size, what):
        while len(self.buffer) < size:
            try:
                self._fill(what)
            except _Closed:
                raise _Closed(
                    "the peer closed the connection after %d of the %d bytes of %s" % (len(self.buffer), size, what)
                ) from None
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data


def _send_identification(sock):
    try:
        sock.sendall(IDENTIFICATION)
    except OSError as e:
        raise KexinitError(_socket_failure(e, "while sending our SSH identification")) from None


def read_identification(reader):
    """The server's identification line without CR LF, skipping the lines a server may send before it."""
    others = []
    while True:
        try:
            raw = reader.line("the server's SSH identification")
        except _Closed:
            reason = "the peer closed the connection before sending an SSH identification"
            if others:
                reason += " (it sent %d other line(s), the first %s: not an SSH server?)" % (
                    len(others),
                    _show(others[0]),
                )
            elif reader.buffer:
                reason += " (it sent %s: not an SSH server?)" % _show(reader.buffer)
            raise KexinitError(reason) from None
        line = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
        if line.startswith(b"SSH-"):
            break
        others.append(line)
        if len(others) >= MAX_PRE_BANNER_LINES:
            raise KexinitError(
                "no SSH identification within the first %d lines (not an SSH server?); the first was %s"
                % (MAX_PRE_BANNER_LINES, _show(others[0]))
            )
    if b"\0" in line:
        raise KexinitError("the SSH identification contains a NUL byte: %s" % _show(line))
    banner = line.decode("utf-8", "replace")
    parts = banner.split("-", 2)
    if len(parts) < 3 or not parts[2]:
        raise KexinitError("malformed SSH identification %r: expected SSH-2.0-<software>" % banner)
    if parts[1] not in PROTOCOL_VERSIONS:
        raise KexinitError("the server speaks SSH protocol %s, not 2.0: %r" % (parts[1], banner))
    return banner


def read_packet(reader):
    """The payload of the next unencrypted binary packet (RFC 4253 section 6)."""
    try:
        head = reader.exactly(4, "the server's first binary packet")
    except _Closed:
        if not reader.buffer:
            raise KexinitError("the peer closed the connection after its identification, before its KEXINIT") from None
        raise
    (packet_length,) = struct.unpack(">I", head)
    if packet_length > MAX_PACKET_LENGTH:
        raise KexinitError(
            "the first packet claims %d bytes, more than the %d allowed (starts %s)"
            % (packet_length, MAX_PACKET_LENGTH, _show(head))
        )
    if packet_length < 1 + 1 + MIN_PADDING:
        raise KexinitError("the first packet claims %d bytes, too short for any SSH packet" % packet_length)
    if (4 + packet_length) % BLOCK_SIZE:
        raise KexinitError(
            "the first packet's length %d + 4 is not a multiple of %d bytes (RFC 4253 section 6)"
            % (packet_length, BLOCK_SIZE)
        )
    body = reader.exactly(packet_length, "the server's first binary packet")
    padding_length = body[0]
    if padding_length < MIN_PADDING or padding_length > packet_length - 2:
        raise KexinitError(
            "the first packet has padding_length %d, outside %d..%d for its length %d"
            % (padding_length, MIN_PADDING, packet_length - 2, packet_length)
        )
    return body[1 : packet_length - padding_length]


class _Cursor:
    """Bounds-checked reads of SSH data types (RFC 4251 section 5) from one payload."""

    def __init__(self, data, what):
        self.data = data
        self.what = what
        self.offset = 0

    def take(self, size, field):
        left = len(self.data) - self.offset
        if size > left:
            raise KexinitError(
                "%s is truncated: %s needs %d bytes, %d are left of %d" % (self.what, field, size, left, len(self.data))
            )
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def byte(self, field):
        return self.take(1, field)[0]

    def uint32(self, field):
        return struct.unpack(">I", self.take(4, field))[0]

    def string(self, field):
        return self.take(self.uint32(field + " length"), field)

    def name_list(self, field):
        raw = self.string(field)
        if not raw:
            return []
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise KexinitError("%s: name-list %s is not ASCII: %s" % (self.what, field, _show(raw))) from None
        names = text.split(",")
        for name in names:
            if not name or any(not 0x21 <= ord(c) <= 0x7E for c in name):
                raise KexinitError("%s: name-list %s holds an empty or unprintable name: %r" % (self.what, field, text))
        return names


def _disconnect_reason(payload):
    cursor = _Cursor(payload, "SSH_MSG_DISCONNECT")
    try:
        cursor.byte("message number")
        code = cursor.uint32("reason code")
        description = cursor.string("description").decode("utf-8", "replace")
    except KexinitError:
        return "the server sent SSH_MSG_DISCONNECT instead of KEXINIT"
    return "the server sent SSH_MSG_DISCONNECT (reason %d) instead of KEXINIT: %s" % (
        code,
        " ".join(description.split()),
    )


def parse_kexinit(payload):
    """The ten name-lists and first_kex_packet_follows of an SSH_MSG_KEXINIT payload (RFC 4253 section 7.1).

    Bytes after the reserved field are ignored, as OpenSSH does.
    """
    if not payload:
        raise KexinitError("the first packet has an empty payload, not KEXINIT")
    if payload[0] == SSH_MSG_DISCONNECT:
        raise KexinitError(_disconnect_reason(payload))
    if payload[0] != SSH_MSG_KEXINIT:
        raise KexinitError("the first packet is message %d, not SSH_MSG_KEXINIT (%d)" % (payload[0], SSH_MSG_KEXINIT))
    cursor = _Cursor(payload, "the KEXINIT packet")
    cursor.byte("message number")
    cursor.take(COOKIE_LENGTH, "cookie")
    result = {}
    for field in NAME_LISTS:
        result[field] = cursor.name_list(field)
    result["first_kex_packet_follows"] = bool(cursor.byte("first_kex_packet_follows"))
    cursor.uint32("reserved")
    return result


def read_offer(sock, deadline=None):
    """Send our identification on the connected ``sock`` and read what the server offers.

    Returns ``{banner, software, kex_algorithms, server_host_key_algorithms, ciphers, ciphers_s2c, macs,
    macs_s2c, compression}`` (lists of strings; ``ciphers``, ``macs`` and ``compression`` are the client to
    server lists). Waits per read as long as the socket's timeout allows, and never past ``deadline``
    (a ``time.monotonic()`` value) when one is given. Raises KexinitError.
    """
    _send_identification(sock)
    reader = _Reader(sock, deadline)
    banner = read_identification(reader)
    kexinit = parse_kexinit(read_packet(reader))
    offer = {"banner": banner, "software": banner.split("-", 2)[2]}
    for field in OFFER_LISTS:
        offer[field] = kexinit[field]
    return offer


def probe(host, port, timeout):
    """``read_offer`` over a new TCP connection to ``host``:``port`` (IPv4 or IPv6), within ``timeout`` seconds.

    Raises OSError (socket.timeout included) when the connection cannot be made, KexinitError after that.
    """
    deadline = time.monotonic() + timeout
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        return read_offer(sock, deadline=deadline)
    finally:
        sock.close()


def strict_kex(kex_algorithms):
    """Whether the server offers OpenSSH's strict key exchange (the Terrapin countermeasure)."""
    return STRICT_KEX_SERVER in kex_algorithms


def real_kex_algorithms(kex_algorithms):
    """``kex_algorithms`` without the pseudo-algorithms that only signal extensions."""
    return [name for name in kex_algorithms if name not in PSEUDO_KEX_ALGORITHMS]
