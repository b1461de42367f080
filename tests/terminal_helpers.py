"""A terminal client for the live dashboard's terminal socket, as the page's script speaks it
(tests and bench/terminal.py), and the LXD-side counts the tests check."""

from __future__ import annotations

import contextlib
import json
import re
import time

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

ACK_EVERY = 64 * 1024  # as static/js/terminal.js: every 64 KiB,
ACK_DELAY = 0.1  # or 100 ms after the output was written


def terminal_path(host: str, name: str, project: str = "default") -> str:
    path = f"/ws/hosts/{host}/instances/{name}/terminal/"
    return path if project == "default" else f"{path}?project={project}"


class TerminalClient:
    """Opens the socket; `start()` sends the description; output is collected as it comes and
    acknowledged (unless `ack=False`: a stalled browser)."""

    def __init__(
        self,
        base_url: str,
        cookies,
        host: str,
        name: str,
        *,
        ack: bool = True,
        origin=None,
        project="default",
    ):
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        uri = base_url.replace("http://", "ws://") + terminal_path(host, name, project)
        # Entered by hand: a test holds several, and closes each (or drops it, as a browser can).
        self.ws = connect(
            uri,
            origin=origin or base_url,
            additional_headers={"Cookie": cookie},
            max_size=None,
            open_timeout=30,
            compression=None,
        ).__enter__()
        self.ack = ack
        self.output = bytearray()
        self.written = self.acked = 0
        self.unacked_since = 0.0
        self.messages: list[dict] = []
        self.closed: int | None = None

    def start(self, mode: str = "exec", cols: int = 80, rows: int = 24, **fields) -> dict:
        self.ws.send(json.dumps({"type": "start", "mode": mode, "cols": cols, "rows": rows, **fields}))
        return self.until_message(lambda m: m["type"] in ("started", "error", "exit"))

    def send(self, text: str | bytes) -> None:
        self.ws.send(text.encode() if isinstance(text, str) else text)

    def resize(self, cols, rows) -> None:
        self.ws.send(json.dumps({"type": "resize", "cols": cols, "rows": rows}))

    def _acknowledge(self) -> None:
        if self.ack and self.written > self.acked:
            self.acked = self.written
            try:
                self.ws.send(json.dumps({"type": "ack", "written": self.written}))
            except ConnectionClosed:
                # The server ended the session meanwhile.  What it sent before closing (its
                # "exit" message) may still be unread: recv() hands it over, then reports the
                # close, so the close is noted there, not here.
                self.ack = False

    def _read_one(self, timeout: float) -> None:
        """One frame (TimeoutError if none comes in `timeout`).  Output is acknowledged as the
        page does: every ACK_EVERY bytes, or ACK_DELAY after it arrived."""
        if self.ack and self.written > self.acked:
            due = self.unacked_since + ACK_DELAY - time.monotonic()
            if due <= 0:
                self._acknowledge()
            else:
                timeout = min(timeout, due)  # wake up in time to acknowledge
        try:
            frame = self.ws.recv(timeout=timeout)
        except ConnectionClosed:
            self.closed = self.ws.close_code
            return
        if isinstance(frame, bytes):
            if self.written == self.acked:
                self.unacked_since = time.monotonic()
            self.output += frame
            self.written += len(frame)
            if self.written - self.acked >= ACK_EVERY:
                self._acknowledge()
        else:
            self.messages.append(json.loads(frame))

    def until(self, predicate, timeout: float = 30.0, what: str = "it"):
        deadline = time.monotonic() + timeout
        while True:
            found = predicate()
            if found:
                return found
            if self.closed is not None or time.monotonic() > deadline:
                tail = bytes(self.output[-400:])
                raise AssertionError(
                    f"no {what} (closed={self.closed}); {self.messages[-5:]}; output {tail!r}"
                )
            with contextlib.suppress(TimeoutError):
                self._read_one(max(0.01, deadline - time.monotonic()))

    def until_output(self, pattern: str, timeout: float = 30.0) -> re.Match:
        regex = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        return self.until(lambda: regex.search(bytes(self.output)), timeout, f"output matching {pattern!r}")

    def until_message(self, predicate, timeout: float = 30.0) -> dict:
        def found():
            return next((m for m in self.messages if predicate(m)), None)

        return self.until(found, timeout, "message")

    def until_closed(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while self.closed is None and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                self._read_one(max(0.01, deadline - time.monotonic()))
        if self.closed is None:
            raise AssertionError(f"the socket stayed open; {self.messages[-5:]}")
        return self.closed

    def close(self) -> None:
        self.ws.close()


def running_execs(daemon, name: str, description: str = "Executing command") -> list[str]:
    """The ids of LXD's exec operations on `name` that are still running, from LXD itself
    (description="Showing console" for console sessions)."""
    return [
        op.id
        for op in daemon.admin().operations()
        if name in op.instances and op.description == description and op.status == "Running"
    ]
