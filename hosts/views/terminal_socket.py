"""The browser's terminal: an exec or console session relayed between the page and LXD.

The browser speaks only to this socket; the dashboard asks LXD for the session, connects LXD's
data and control sockets itself (pinned TLS or the unix socket) and pumps bytes both ways.
LXD's socket secrets never leave the server.

Protocol (JSON text frames; binary frames carry terminal bytes both ways):
  browser -> {"type": "start", "mode": "exec"|"console", "command": "/bin/sh -l",
              "user": "", "group": "", "cwd": "", "cols": 80, "rows": 24}
  server  -> {"type": "started", "target": "c1: /bin/sh (uid 0, gid 0, cwd /root)"}
             then binary output frames (a console's log buffer first)
  browser -> binary input frames; {"type": "resize", "cols": C, "rows": R};
             {"type": "ack", "written": N} (output bytes written to the terminal, in all)
  server  -> {"type": "notice", "message": ...}       (a refused resize, the console log's end)
  server  -> {"type": "exit", "code": 3 | null, "message": ...}  or
             {"type": "error", "status": 403, "message": ...}, then it closes the socket.

The server keeps at most OUTPUT_WINDOW output bytes unacknowledged (hosts/domain/terminal_window.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging

from autobahn.exception import Disconnected
from channels.generic.websocket import AsyncWebsocketConsumer

from ..concurrency import in_thread
from ..domain import terminal, terminal_sessions
from ..domain.roles import OPERATOR, has_role
from ..domain.terminal import CONSOLE, TerminalRefused, TerminalRequest
from ..domain.terminal_window import OutputWindow
from ..live.socket_auth import LOGGED_OUT, NOT_ALLOWED, LoginBound
from ..lxd import LXDError
from ..lxd.exec import TerminalSocket, attach
from ..lxd.names import INSTANCE
from ..models import Host

log = logging.getLogger(__name__)

# Input waiting for a command that does not read it (a large paste): past this it is dropped.
INPUT_BACKLOG = 8 * 1024 * 1024
# How long the end of a session waits for LXD's outcome (daphne cancels a consumer that has
# not finished 10 s after its browser left).
OUTCOME_TIMEOUT = 5.0


def _db(func):
    return functools.partial(in_thread, func)


_lxd = _db


def _host(name: str) -> Host | None:
    return Host.objects.select_related("client_certificate").filter(name=name).first()


class TerminalConsumer(LoginBound, AsyncWebsocketConsumer):
    # No channel of its own: nothing is sent to a terminal through the channel layer (login
    # changes come through the hub), and a channel costs a receive per message (a Redis round
    # trip with REDIS_URL).
    channel_layer_alias = None

    async def dispatch(self, message: dict) -> None:
        # Channels closes stale database connections before every message, through the one
        # thread Django's sync code shares: a keystroke would wait behind any sync view.  This
        # consumer reaches the database only through database_sync_to_async, which does it.
        if message["type"] == "websocket.receive":
            await self.websocket_receive(message)
        else:
            await super().dispatch(message)

    async def connect(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        self.host_name, self.instance = kwargs["host"], kwargs["name"]
        self.request: TerminalRequest | None = None
        self.host: Host | None = None
        self.ticket: terminal_sessions.Ticket | None = None
        self.socket: TerminalSocket | None = None
        self.operation_id = ""
        self.target = ""
        self.window = OutputWindow()
        self.input: asyncio.Queue[bytes] = asyncio.Queue()
        self.input_backlog = 0  # bytes queued for LXD
        self.tasks: list[asyncio.Task] = []
        self.last_input = asyncio.get_running_loop().time()
        self.ending = False
        self.ended = asyncio.Event()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            self.ending = True
            self.ended.set()
            await self.close()  # refused in the handshake: HTTP 403
            return
        await self.accept()
        if not await _db(has_role)(user, OPERATOR):
            # A shell is root in the instance: viewers get none, and the attempt is recorded.
            message = "A terminal needs the operator role: a shell is root in the instance."
            await _db(terminal_sessions.audit_refused)(
                user, self.host_name, self.instance, "terminal", message
            )
            await self.refuse(message, 403, code=NOT_ALLOWED)
            return
        # Closed when this login ends or loses the role: logout, deactivation (socket_auth.py).
        if not await self.bind_login(OPERATOR):
            await self.refuse("Your session ended: log in again.", 401, code=LOGGED_OUT)
            return
        self.tasks.append(asyncio.get_running_loop().create_task(self._watch_idle(), name="terminal-idle"))

    async def disconnect(self, code: int) -> None:
        await self.end("The browser closed the terminal.", tell=False)
        await self.unbind_login()

    async def revoked(self, code: int, message: str) -> None:
        if code == LOGGED_OUT:
            message = "Your login ended: the terminal is closed."
        else:
            message = "Your account may no longer open terminals: the terminal is closed."
        await self.end(message, close_code=code, ok=True)

    # -- from the browser --------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if self.ending:
            return
        if bytes_data is not None:
            if self.socket is None:
                return await self.refuse("Send the session's description before any input.", 400)
            self.last_input = asyncio.get_running_loop().time()
            return await self.queue_input(bytes_data)
        try:
            message = json.loads(text_data or "")
        except ValueError:
            message = None
        kind = message.get("type") if isinstance(message, dict) else None
        try:
            if kind == "start" and self.request is None:
                return await self.start(message)
            if kind == "resize" and self.socket is not None:
                return await self.resize(message)
            if kind == "ack":
                return self.window.acknowledge(message.get("written"))
        except TerminalRefused as exc:
            return await self.refuse(exc.message, exc.status)
        return await self.refuse("The terminal did not understand that message.", 400)

    async def queue_input(self, data: bytes) -> None:
        """Input goes to LXD from a task of its own: a command that does not read its input
        must not hold up the acknowledgements that let its output through.  A keystroke with
        nothing before it goes out at once (it cannot wait), saving the hop to that task."""
        if not self.input_backlog and self.socket.writes_at_once(len(data)):
            with contextlib.suppress(LXDError):  # the output pump sees the same break and ends
                await self.socket.write(data)
            return
        if self.input_backlog + len(data) > INPUT_BACKLOG:
            message = f"The command is not reading its input: {len(data)} bytes were dropped."
            await self.send(json.dumps({"type": "notice", "message": message}))
            return
        self.input_backlog += len(data)
        self.input.put_nowait(data)

    async def _write_input(self) -> None:
        while True:
            data = await self.input.get()
            with contextlib.suppress(LXDError):  # the output pump sees the same break and ends
                await self.socket.write(data)
            self.input_backlog -= len(data)

    async def resize(self, message: dict) -> None:
        try:
            cols, rows = terminal.clamp_size(message.get("cols"), message.get("rows"))
        except TerminalRefused as exc:
            await self.send(json.dumps({"type": "notice", "message": exc.message}))
            return
        with contextlib.suppress(LXDError):  # the output pump sees the same break and ends
            await self.socket.resize(cols, rows)

    # -- starting ----------------------------------------------------------------------

    async def start(self, message: dict) -> None:
        user = self.scope["user"]
        try:
            self.request = TerminalRequest.parse(message)
        except TerminalRefused as exc:
            await _db(terminal_sessions.audit_refused)(
                user, self.host_name, self.instance, "terminal", exc.message
            )
            raise
        mode = self.request.mode
        if (error := INSTANCE.error(self.instance)) is not None:
            await _db(terminal_sessions.audit_refused)(user, self.host_name, self.instance, mode, error)
            raise TerminalRefused(error, 400)
        self.host = await _db(_host)(self.host_name)
        if self.host is None:
            message = f"There is no host named {self.host_name}."
            await _db(terminal_sessions.audit_refused)(user, self.host_name, self.instance, mode, message)
            raise TerminalRefused(message, 404)
        try:
            self.ticket = terminal_sessions.SESSIONS.claim(user.pk, self.host_name, self.instance)
        except TerminalRefused as exc:
            await _db(terminal_sessions.audit_refused)(user, self.host, self.instance, mode, exc.message)
            raise
        try:
            started = await _db(terminal.start_session)(self.host, self.instance, self.request)
            self.socket = await attach(started.attachment)
        except (LXDError, TerminalRefused) as exc:
            status = exc.status if isinstance(exc, TerminalRefused) else exc.http_status
            message = f"{self.instance} on {self.host_name}: {exc}"
            await _db(terminal_sessions.audit_failed_start)(
                user, self.host, f"{self.instance}: {mode}", message
            )
            raise TerminalRefused(message, status) from exc
        self.operation_id, self.target = started.attachment.operation_id, started.target
        await _db(terminal_sessions.audit_start)(user, self.host, self.target, self.operation_id)
        await self.send(json.dumps({"type": "started", "mode": mode, "target": self.target}))
        if mode == CONSOLE:
            await self.output(started.console_log)
            await self.send(json.dumps({"type": "notice", "message": "Attached to the console."}))
        loop = asyncio.get_running_loop()
        self.tasks.append(loop.create_task(self._pump(), name="terminal-pump"))
        self.tasks.append(loop.create_task(self._write_input(), name="terminal-input"))

    # -- to the browser ----------------------------------------------------------------

    async def output(self, data: bytes) -> None:
        if data:
            self.window.sent(len(data))
            await self.send(bytes_data=data)  # Disconnected once the browser has left

    async def _pump(self) -> None:
        """LXD's output to the browser, never more than the window ahead of the browser:
        while it is full, LXD's socket is not read."""
        try:
            while True:
                await self.window.room()
                data = await self.socket.read()
                if data is None:
                    break
                await self.output(data)
        except LXDError as exc:
            text = str(exc)
            await self.end(f"{text[:1].upper()}{text[1:]}: the session is over.", ok=False, broken=True)
            return
        except Disconnected:
            return  # the browser left: its disconnect, queued behind, ends the session
        except Exception:
            # A fault of ours: say so and close, rather than leave a session nobody pumps.
            log.exception("terminal on %s/%s failed", self.host_name, self.instance)
            await self.end("The dashboard failed to relay this session.", ok=False, broken=True)
            return
        await self.end(None)

    async def _watch_idle(self) -> None:
        limit = terminal_sessions.idle_seconds()
        loop = asyncio.get_running_loop()
        while (remaining := self.last_input + limit - loop.time()) > 0:
            await asyncio.sleep(remaining)
        await self.end(f"Closed after {limit:g} s without a keystroke.", ok=True)

    # -- ending ------------------------------------------------------------------------

    async def end(
        self,
        reason: str | None,
        *,
        ok: bool = True,
        broken: bool = False,
        tell: bool = True,
        close_code: int = 1000,
    ) -> None:
        """End the session once, whoever asks: close LXD's sockets (which kills a command
        still running), read the exit code, audit the end, tell the page and close."""
        if self.ending:
            await self.ended.wait()
            return
        self.ending = True
        try:
            current = asyncio.current_task()
            tasks = [t for t in self.tasks if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            code, message = None, reason
            if self.socket is not None:
                await self.socket.close()
                code, message, ok = await self._outcome(reason, ok, broken)
                user = self.scope["user"]
                detail = message if code is None else f"{message} (exit code {code})"
                await _db(terminal_sessions.audit_end)(
                    user, self.host, self.target, self.operation_id, ok=ok, detail=detail
                )
            if tell:
                with contextlib.suppress(Disconnected):  # the browser left meanwhile
                    await self.send(json.dumps({"type": "exit", "code": code, "message": message or ""}))
                    await self.close(code=close_code)
        finally:
            if self.ticket is not None:
                terminal_sessions.SESSIONS.release(self.ticket)
                self.ticket = None
            self.ended.set()

    async def _outcome(self, reason: str | None, ok: bool, broken: bool) -> tuple[int | None, str, bool]:
        if self.request.mode == CONSOLE:
            return None, reason or "The console closed.", ok
        try:
            outcome = await _lxd(terminal.session_end)(self.host, self.operation_id, OUTCOME_TIMEOUT)
        except LXDError as exc:
            if broken:
                return None, reason or str(exc), False
            return None, f"{reason or 'The session ended.'} Its exit code is unknown: {exc}.", False
        if outcome.error:
            return outcome.code, outcome.error, False
        return outcome.code, reason or "The command exited.", ok

    async def refuse(self, message: str, status: int, code: int = 4400) -> None:
        """Refuse with a message the page shows, then close: no half-open session."""
        if self.ending:
            return
        if self.socket is not None:
            await self.end(message, ok=False, close_code=code)
            return
        self.ending = True
        try:
            await self.send(json.dumps({"type": "error", "status": status, "message": message}))
            await self.close(code=code)
        finally:
            for task in self.tasks:
                task.cancel()
            if self.ticket is not None:
                terminal_sessions.SESSIONS.release(self.ticket)
                self.ticket = None
            self.ended.set()
