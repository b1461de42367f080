"""Every API request a lab daemon handles, as the daemon itself logs it ("Handling API request"
on its logging stream, with method, url and the client's address): how tests and benches count
what the dashboard asks of LXD, with no proxy and no mock in the way."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
import time
from dataclasses import dataclass

from websockets.asyncio.client import unix_connect

from tests.lab import LabDaemon


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    ip: str


class RequestLog:
    """Reads one daemon's logging stream in a thread of its own (usable from sync and async
    code).  `settled()` asks the daemon a marker request and waits until the log shows it: every
    request the daemon handled before the marker is then in `requests`."""

    MARKER = "/1.0?request-log-marker="

    def __init__(self, daemon: LabDaemon):
        self.daemon = daemon
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._error: BaseException | None = None

    def __enter__(self) -> RequestLog:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"no logging stream from {self.daemon.name}: {self._error}")
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        try:
            asyncio.run(self._read())
        except BaseException as exc:  # reported by __enter__ / settled()
            self._error = exc

    async def _read(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        url = "ws://lxd/1.0/events?type=logging"
        async with unix_connect(self.daemon.socket, url, max_size=None) as ws:
            self._ready.set()
            stopping = asyncio.ensure_future(self._stop.wait())
            while not stopping.done():
                receiving = asyncio.ensure_future(ws.recv())
                await asyncio.wait([receiving, stopping], return_when=asyncio.FIRST_COMPLETED)
                if not receiving.done():
                    receiving.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await receiving
                    break
                meta = json.loads(receiving.result()).get("metadata") or {}
                if meta.get("message") == "Handling API request":
                    context = meta.get("context") or {}
                    with self._lock:
                        self.requests.append(
                            Request(context.get("method", ""), context.get("url", ""), context.get("ip", ""))
                        )

    def mark(self) -> int:
        with self._lock:
            return len(self.requests)

    def settled(self, timeout: float = 15.0) -> None:
        """Until the daemon's log has caught up with now (a marker request of our own)."""
        token = secrets.token_hex(8)
        self.daemon.admin().get(self.MARKER + token)
        deadline = time.monotonic() + timeout
        while not any(r.url.endswith(token) for r in self.since(0, marker=True)):
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise AssertionError(f"{self.daemon.name}'s log did not show the marker ({self._error})")
            time.sleep(0.02)

    def since(self, mark: int, *, marker: bool = False) -> list[Request]:
        """Requests handled after `mark` (the log's markers left out unless asked for)."""
        with self._lock:
            found = self.requests[mark:]
        return [r for r in found if marker or self.MARKER not in r.url]
