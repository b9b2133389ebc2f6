"""FakeTcpServer: a TCP test double that runs a handler for every connection, in a thread, on 127.0.0.1 port 0.

The handler may be plain bytes, sent as they are. Leaving the ``with`` block (or ``close()``) stops and joins the
thread and closes every socket. pytest puts tests/unit on sys.path (for its conftest.py), so tests import this
as ``fake_tcp_server``.
"""

import socket
import threading


class FakeTcpServer:
    """Runs ``handler(conn)`` for each connection in turn, then closes it, unless the handler returned a true
    value: then it stays open until the server closes. ``port`` is where it listens, ``connections`` how many came.
    """

    def __init__(self, handler, *, host="127.0.0.1"):
        if isinstance(handler, bytes):
            data = handler

            def handler(conn):
                conn.sendall(data)

        self._handler = handler
        self.connections = 0
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.sock.bind((host, 0))
            self.sock.listen(16)
        except OSError:
            self.sock.close()
            raise
        self.sock.settimeout(0.02)  # how often the thread looks whether it should stop
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._held = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _address = self.sock.accept()
            except OSError:  # the accept timeout, or the socket closed by close()
                continue
            self.connections += 1
            conn.settimeout(2)
            keep = False
            try:
                keep = self._handler(conn)
            except OSError:  # the client went away, or sent nothing in time
                pass
            finally:
                with self._lock:
                    if keep and not self._stop.is_set():
                        self._held.append(conn)
                    else:
                        conn.close()

    def close(self):
        with self._lock:
            self._stop.set()
            held, self._held = self._held, []
        self._thread.join(2)
        self.sock.close()
        for conn in held:
            conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.close()


def read_line(conn, limit=300):
    """The bytes ``conn`` sends up to and including a line feed (fewer at ``limit`` bytes or if it closes)."""
    data = b""
    while not data.endswith(b"\n") and len(data) < limit:
        chunk = conn.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def closed_port():
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port
