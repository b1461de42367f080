"""Things that are not LXD, on loopback, for the bad-input tests: they inject the faults a
real daemon cannot be made to show on demand (a host that hangs, a port that is not LXD)."""

from __future__ import annotations

import http.server
import json
import os
import select
import socket
import ssl
import tempfile
import threading
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass

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


def tls_server_context(name: str):
    """(server-side TLS context, its certificate) for a self-signed loopback server."""
    cert = generate_client_certificate(name, purpose="server")
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
        for path, content in ((cert_path, cert.certificate_pem), (key_path, cert.private_key_pem)):
            with open(path, "w") as fh:
                fh.write(content)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_path, key_path)
    return ctx, cert


@contextmanager
def tls_server_not_lxd():
    ctx, cert = tls_server_context("not-lxd")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert.fingerprint
    finally:
        server.shutdown()
        server.server_close()


class _Recording(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler, script=None):
        super().__init__(("127.0.0.1", 0), handler)
        self.seen: list[tuple[str, str]] = []
        self.script = script


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers as the server's script(method, path) says: (status, headers, body), where the
    body is bytes or an iterable of bytes (sent as it is produced)."""

    protocol_version = "HTTP/1.1"

    def _answer(self):
        self.server.seen.append((self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status, headers, body = self.server.script(self.command, self.path)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if isinstance(body, bytes) and "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        with suppress(OSError):  # the client may stop reading: that is what some tests check
            for chunk in [body] if isinstance(body, bytes) else body:
                self.wfile.write(chunk)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _answer  # noqa: N815

    def log_message(self, *args):
        pass


def lxd_envelope(metadata) -> bytes:
    return json.dumps(
        {"type": "sync", "status": "Success", "status_code": 200, "metadata": metadata}
    ).encode()


@dataclass
class FakeHost:
    url: str
    certificate_pem: str
    fingerprint: str
    seen: list[tuple[str, str]]

    def register(self, name: str = "fake"):
        """A Host row for it, as registration would have made (pinned, our certificate)."""
        from hosts.models import ClientCertificate, Host

        return Host.objects.create(
            name=name,
            endpoint=self.url,
            server_certificate=self.certificate_pem,
            server_fingerprint=self.fingerprint,
            client_certificate=ClientCertificate.default(),
        )


@contextmanager
def fake_lxd(script):
    """A TLS server on loopback that plays a (compromised) LXD host: `script(method, path)`
    decides every answer.  For faults a real daemon never shows (redirects, huge answers)."""
    ctx, cert = tls_server_context("fake-lxd")
    server = _Recording(_Scripted, script)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield FakeHost(
            f"https://127.0.0.1:{server.server_address[1]}",
            cert.certificate_pem,
            cert.fingerprint,
            server.seen,
        )
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def recording_http_server(body: bytes = b"internal secret"):
    """A plain HTTP server on loopback that counts who asks it for anything."""
    server = _Recording(_Scripted, lambda method, path: (200, {"Content-Type": "text/plain"}, body))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.seen
    finally:
        server.shutdown()
        server.server_close()


class HangingAddress(str):
    """host:port of a hanging_server(), which also tells whether its clients gave up."""

    held: list[socket.socket]
    listener: socket.socket

    def take(self) -> None:
        """Accept what is waiting in the backlog now (the server's thread does it too)."""
        while select.select([self.listener], [], [], 0)[0]:
            try:
                self.held.append(self.listener.accept()[0])
            except OSError:
                break

    def connections(self) -> int:
        self.take()
        return len(self.held)

    def all_dropped(self) -> bool:
        """Every connection made to it was closed by the client (who stopped waiting)."""
        self.take()
        return all(_closed_by_peer(conn) for conn in list(self.held))


def _closed_by_peer(conn: socket.socket) -> bool:
    conn.setblocking(False)
    try:
        while conn.recv(65536):  # what the client sent before it gave up
            pass
        return True
    except BlockingIOError:
        return False
    except OSError:  # reset
        return True


@contextmanager
def hanging_server():
    """Accepts TCP connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    address = HangingAddress(f"127.0.0.1:{listener.getsockname()[1]}")
    address.held, address.listener = [], listener
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                address.held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield address
    finally:
        stop.set()
        thread.join(2)
        for conn in address.held:
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


@asynccontextmanager
async def fake_lxd_events(process_request=None, handler=None):
    """A TLS websocket server on loopback playing a host's /1.0/events: `process_request`
    may answer the handshake itself (a redirect), `handler` talks once it is open.  Yields
    (an LXDClient pinned to it, the paths asked for)."""
    from websockets.asyncio.server import serve

    from hosts.lxd import LXDClient, TLSIdentity

    ctx, cert = tls_server_context("fake-lxd-events")
    seen: list[str] = []

    def on_request(connection, request):
        seen.append(request.path)
        return process_request(connection, request) if process_request else None

    async def on_open(connection):
        if handler is not None:
            await handler(connection)
        await connection.wait_closed()

    client_cert = generate_client_certificate("dashboard-test")
    async with serve(on_open, "127.0.0.1", 0, ssl=ctx, process_request=on_request) as server:
        port = server.sockets[0].getsockname()[1]
        tls = TLSIdentity(cert.certificate_pem, client_cert.certificate_pem, client_cert.private_key_pem)
        yield LXDClient(f"https://127.0.0.1:{port}", tls=tls, label="fake"), seen
