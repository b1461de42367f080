"""A raw HTTP/1.1 client for what requests/urllib3 will not do.

post_body sends a large request body the way an attacker would: requests would send the whole
body before looking at the answer; this client stops sending as soon as the server answers (or
closes), and reports how much of the body went out (tests/test_body_limit.py, bench/body.py).
start_download reads part of an answer and leaves the rest unread (tests/test_files_live.py).
"""

from __future__ import annotations

import select
import socket
import time
from dataclasses import dataclass

PIECE = 64 * 1024


@dataclass
class RawReply:
    status: int | None  # None: the connection closed without an answer
    sent: int  # body bytes sent before the answer (or the close)
    text: str  # the answer as received (headers and body)


def post_body(
    port: int,
    path: str,
    size: int,
    *,
    chunked: bool = False,
    send_body: bool = True,
    method: str = "POST",
    timeout: float = 30,
) -> RawReply:
    """Send `method path` with a body of `size` zero bytes (Content-Length, or chunked) to
    127.0.0.1:port and return the reply.  With send_body=False only the headers go out."""
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/octet-stream"]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}")
    piece = bytes(PIECE)
    framed = b"%x\r\n%s\r\n" % (PIECE, piece) if chunked else piece
    sent, pending = 0, b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sock.setblocking(False)
        deadline = time.monotonic() + timeout
        answered = False
        try:
            while send_body and sent < size and time.monotonic() < deadline:
                readable, writable, _ = select.select([sock], [sock], [], 1)
                if readable:
                    answered = True
                    break
                if not writable:
                    continue
                if not pending:
                    pending = framed
                    sent += PIECE
                pending = pending[sock.send(pending) :]
            if send_body and chunked and not answered and sent >= size:
                sock.setblocking(True)
                sock.sendall(pending + b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        return RawReply(_status(reply := _read_reply(sock, deadline)), sent, reply)


def _read_reply(sock: socket.socket, deadline: float) -> str:
    data = b""
    sock.setblocking(True)
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
        if _complete(data):
            break
    return data.decode("utf-8", "replace")


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def _status(reply: str) -> int | None:
    parts = reply.split(" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[0].startswith("HTTP/") else None


def start_download(port: int, path: str, headers: dict[str, str], want: int, timeout: float = 30):
    """GET `path` and read the answer's head and at least `want` bytes of its body, then stop
    reading, as a browser tab closed mid-download would: (the open socket, the status, the
    body bytes read).  The caller drops the socket (close() with data unread resets it)."""
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in headers.items())]
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < want:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return sock, _status(head.decode("latin-1")), body
