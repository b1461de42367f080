"""Things that are not LXD, on loopback, for the bad-input tests: they inject the faults a
real daemon cannot be made to show on demand (a host that hangs, a port that is not LXD)."""

from __future__ import annotations

import http.server
import os
import socket
import ssl
import tempfile
import threading
from contextlib import contextmanager, suppress

from hosts.lxd.certs import generate_client_certificate


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = b"<html>hello, not LXD</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET  # noqa: N815

    def log_message(self, *args):
        pass


@contextmanager
def plain_http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def tls_server_not_lxd():
    cert = generate_client_certificate("not-lxd", purpose="server")
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
        with open(cert_path, "w") as fh:
            fh.write(cert.certificate_pem)
        with open(key_path, "w") as fh:
            fh.write(cert.private_key_pem)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_path, key_path)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"https://127.0.0.1:{server.server_address[1]}", cert.fingerprint
        finally:
            server.shutdown()
            server.server_close()


@contextmanager
def hanging_server():
    """Accepts TCP connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        listener.close()


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


class CuttableProxy:
    """A TCP relay to a real daemon whose connections can be dropped on demand: the fault
    of a host that vanishes mid-stream (a cable pulled) and comes back."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.cut_off = threading.Event()
        self.stopped = threading.Event()
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.listener.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            if self.cut_off.is_set():
                conn.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                conn.close()
                continue
            conn.settimeout(None)
            upstream.settimeout(None)
            with self.lock:
                self.pairs.append((conn, upstream))
                self.accepted += 1
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self):
        """Drop every connection and refuse new ones until restore()."""
        self.cut_off.set()
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for s in pair:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def restore(self):
        self.cut_off.clear()

    def close(self):
        self.stopped.set()
        self.cut()
        self.listener.close()
