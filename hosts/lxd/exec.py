"""Exec and console sessions (mixed into LXDClient), and the websockets that carry them.

What LXD 5.0.2 does and this module hides (shared/LXD-API.md §7):
- `POST .../exec` (interactive, wait-for-websocket) and `POST .../console` answer with a
  websocket operation whose metadata holds one secret per socket ("0" and "control").  The
  secrets are bearer tokens: they stay inside `Attachment` (never in its repr), are never
  logged and never leave the server.  Events and `/1.0/operations` repeat them: readers of
  those never forward raw operations (hosts/lxd/events.py).
- Both sockets must be connected within 5 s of the POST, or LXD fails the operation.
- Data frames are binary both ways; a text frame from LXD is the end of the output.  An
  interactive exec completes only once we close socket 0; closing the control socket kills
  the command (SIGKILL).  `window-resize` takes its width and height as strings.
- The exit code is `metadata.return` of the finished operation, which is a Success even for
  a non-zero exit; a Failure (`err: "Command not found"`, return 127) when the exec itself
  failed.  Finished operations vanish after 5 s.
- The console attaches a moment after its sockets connect; the console log
  (`GET .../console`) answers 500 "open : no such file or directory" while it is empty.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

from .errors import HostUnreachable, LXDAPIError, LXDError, OperationFailed
from .operation import Operation
from .websocket import connect_websocket

# LXD fails an exec or console operation whose sockets are not all connected 5 s after the
# POST; our own connection attempts give up a little earlier, with a clear message.
CONNECT_WITHIN = 4.5
# The largest frame we accept from LXD (a PTY read is at most a few tens of KiB).
MAX_FRAME = 1024 * 1024
# Output frames read ahead from LXD before we stop reading its socket: past this, TCP holds
# the command in the instance until the reader catches up (see hosts/domain/terminal.py).
READ_AHEAD_FRAMES = 8
# Our pings on the control socket find a host that vanished without closing the connection.
PING_INTERVAL = 10.0
PING_TIMEOUT = 20.0
CLOSE_TIMEOUT = 2.0
# Input at most this large, with nothing queued before it, is written without waiting.
DIRECT_WRITE_BYTES = 16 * 1024
# Output frames already received are joined into one piece of at most about this size.
COALESCE_BYTES = 64 * 1024


@dataclass(frozen=True)
class ExecCommand:
    """What to run, as LXD's exec takes it (user and group are numeric ids)."""

    command: tuple[str, ...]
    width: int
    height: int
    environment: Mapping[str, str] = field(default_factory=dict)
    user: int = 0
    group: int = 0
    cwd: str = ""


@dataclass(frozen=True)
class Attachment:
    """A started exec or console operation waiting for its sockets: the operation's id and
    where to connect.  The targets carry the secrets, so they are kept out of repr."""

    operation_id: str
    label: str
    fingerprint: str
    targets: dict[str, tuple[str, dict]] = field(repr=False)


@dataclass(frozen=True)
class SessionEnd:
    """How an exec ended: its exit code (None when LXD no longer knows) and LXD's error."""

    code: int | None
    error: str = ""


class ExecAPI:
    """Methods here use self.call / self.request / self.websocket_target from LXDClient."""

    def _instance_url(self, instance: str) -> str:
        return f"/1.0/instances/{quote(instance, safe='')}"

    def start_exec(self, instance: str, spec: ExecCommand) -> Attachment:
        """Start an interactive command; connect to it with `attach` within CONNECT_WITHIN."""
        body: dict[str, Any] = {
            "command": list(spec.command),
            "environment": dict(spec.environment),
            "interactive": True,
            "wait-for-websocket": True,
            "record-output": False,
            "width": spec.width,
            "height": spec.height,
            "user": spec.user,
            "group": spec.group,
        }
        if spec.cwd:
            body["cwd"] = spec.cwd
        return self._attachment(self.call("POST", self._instance_url(instance) + "/exec", json_body=body)[0])

    def start_console(self, instance: str, width: int, height: int) -> Attachment:
        """Attach to the instance's text console (containers and VMs)."""
        body = {"type": "console", "width": width, "height": height}
        return self._attachment(
            self.call("POST", self._instance_url(instance) + "/console", json_body=body)[0]
        )

    def _attachment(self, operation: Operation) -> Attachment:
        fds = operation.metadata.get("fds") or {}
        if not isinstance(fds, dict) or not fds.get("0") or not fds.get("control"):
            raise LXDError(f"{self.label} started a session without the sockets it needs")
        op_id = quote(operation.id, safe="")
        # One TLS context for both sockets: building it loads the client key.
        uri, kwargs = self.websocket_target(f"/1.0/operations/{op_id}/websocket")
        targets = {fd: (f"{uri}?secret={quote(str(fds[fd]), safe='')}", kwargs) for fd in ("0", "control")}
        fingerprint = self.tls.server_fingerprint if self.tls else ""
        return Attachment(operation.id, self.label, fingerprint, targets)

    def session_end(self, operation_id: str, timeout: float = 10) -> SessionEnd:
        """The finished exec's exit code and error (only the code and LXD's message are read:
        the operation itself holds the session's secrets)."""
        try:
            op, error = self.wait(operation_id, timeout=timeout), ""
        except OperationFailed as exc:
            op, error = exc.operation, exc.message
        return SessionEnd(op.exit_code, error)

    def console_log(self, instance: str, limit: int) -> bytes:
        """The last `limit` bytes of the console's log buffer (b"" while there is none)."""
        response = self.request("GET", self._instance_url(instance) + "/console", stream=True)
        try:
            if response.status_code != 200:
                try:
                    self.parse_envelope(response)
                except LXDAPIError as exc:
                    if exc.error_code == 500 and "no such file" in exc.message:
                        return b""
                    raise
                raise LXDError(f"{self.label} answered HTTP {response.status_code} for the console log")
            tail: collections.deque[bytes] = collections.deque()
            kept = 0
            for chunk in response.iter_content(chunk_size=64 * 1024):
                tail.append(chunk)
                kept += len(chunk)
                while kept - len(tail[0]) >= limit:
                    kept -= len(tail.popleft())
            return b"".join(tail)[-limit:] if limit else b""
        finally:
            response.close()


class TerminalSocket:
    """The two websockets of one exec or console session."""

    def __init__(self, data: ClientConnection, control: ClientConnection, label: str):
        self.data, self.control, self.label = data, control, label
        self._ended = False
        self._broken: HostUnreachable | None = None

    async def read(self) -> bytes | None:
        """The next output; None once LXD says the output ended.  HostUnreachable when the
        connection breaks instead (the host died, or the session was killed).  Frames LXD
        already sent are joined (up to COALESCE_BYTES): a PTY gives them a few KiB at a time,
        and passing each on alone costs the relay more than the bytes do."""
        if self._broken is not None:
            raise self._broken
        if self._ended:
            return None
        first = await self._receive()
        if first is None:
            return None
        chunks, size = [first], len(first)
        while size < COALESCE_BYTES and self._waiting() and not self._ended:
            try:
                more = await self._receive()
            except HostUnreachable as exc:
                self._broken = exc  # what came before the break is still passed on
                break
            if more is not None:
                chunks.append(more)
                size += len(more)
        return b"".join(chunks) if len(chunks) > 1 else first

    async def _receive(self) -> bytes | None:
        try:
            message = await self.data.recv()
        except ConnectionClosedOK:
            self._ended = True
            return None
        except ConnectionClosed as exc:
            raise HostUnreachable(f"the connection to {self.label} broke off") from exc
        if isinstance(message, str):
            self._ended = True  # LXD's end-of-output barrier
            return None
        return message

    def _waiting(self) -> bool:
        """Whether a frame has already arrived (so recv() returns at once).  `websockets`
        keeps read-ahead frames in `recv_messages.frames`; without it, no joining."""
        frames = getattr(getattr(self.data, "recv_messages", None), "frames", None)
        return bool(frames)

    async def write(self, data: bytes) -> None:
        try:
            await self.data.send(bytes(data))  # a binary frame: LXD ignores stdin after a text one
        except ConnectionClosed as exc:
            raise HostUnreachable(f"the connection to {self.label} broke off") from exc

    def writes_at_once(self, size: int) -> bool:
        """Whether writing `size` bytes now goes straight out without waiting: nothing is
        queued before it, and it stays under `websockets`' write limit (32 KiB by default),
        so its send() does not suspend for flow control."""
        transport = self.data.transport
        return (
            size <= DIRECT_WRITE_BYTES
            and not transport.is_closing()
            and not transport.get_write_buffer_size()
        )

    async def resize(self, width: int, height: int) -> None:
        message = {"command": "window-resize", "args": {"width": str(width), "height": str(height)}}
        try:
            await self.control.send(json.dumps(message))
        except ConnectionClosed as exc:
            raise HostUnreachable(f"the connection to {self.label} broke off") from exc

    async def close(self) -> None:
        """Close control first (LXD kills the command if it still runs), then the data socket
        (an interactive exec completes only then).  Bounded: `websockets` waits for its
        unsent data to drain before the close frame, and LXD stops reading input a command
        does not read; past CLOSE_TIMEOUT the connection is dropped."""
        for connection in (self.control, self.data):
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await connection.close()
            except TimeoutError:
                connection.transport.abort()
            except (OSError, ConnectionClosed):
                pass  # already gone: nothing to close

    @property
    def closed(self) -> bool:
        return self.data.close_code is not None or self.control.close_code is not None


async def attach(attachment: Attachment) -> TerminalSocket:
    """Connect the session's data and control sockets (LXD fails the operation unless both are
    connected within 5 s of the POST)."""
    connected: list[ClientConnection] = []
    try:
        for fd in ("0", "control"):
            uri, kwargs = attachment.targets[fd]
            connected.append(
                await connect_websocket(
                    uri,
                    kwargs,
                    label=attachment.label,
                    what="the terminal",
                    fingerprint=attachment.fingerprint,
                    open_timeout=CONNECT_WITHIN,
                    close_timeout=CLOSE_TIMEOUT,
                    max_size=MAX_FRAME,
                    # Data: no pings of ours (its reading pauses under backpressure, which would
                    # fail them), and a short read-ahead.  Control: always read, pinged.
                    max_queue=READ_AHEAD_FRAMES if fd == "0" else 16,
                    ping_interval=None if fd == "0" else PING_INTERVAL,
                    ping_timeout=None if fd == "0" else PING_TIMEOUT,
                )
            )
    except BaseException:
        for connection in connected:
            await connection.close()
        raise
    return TerminalSocket(connected[0], connected[1], attachment.label)
