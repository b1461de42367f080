"""A browser's upload, streamed over a websocket straight into LXD: the protocol and its
flow control, for every kind of upload (a file into an instance, and anything else a host
takes as a stream).

Why not a plain HTTP upload: daphne (Twisted) receives a whole request body before the
application starts, then queues all of it in memory: a 256 MiB upload grows the server by
256 MiB and only starts towards LXD once it has all arrived (the body limit in
dashboard/body_limit.py refuses such bodies).  Over a websocket each frame goes on to LXD as it
comes, and acknowledgements pace the browser, so the server holds at most a few frames whatever
the size.

Protocol (JSON text frames, binary frames for the data):
  browser -> {"size": N, ...what the kind of upload needs}
  server  -> {"type": "ready"}                      or {"type": "error", "status": 409, "message": ...}
  browser -> binary frames (at most FRAME bytes), no more than WINDOW bytes unacknowledged
  server  -> {"type": "ack", "received": n}         after each frame is queued for LXD
  server  -> {"type": "done", "status": 201|200, "message": ...}   or an error; then it closes.

A subclass says what a header means (`describe`: the job and its size; UserError to refuse),
what to ask LXD before the first byte (`check`) and how the bytes reach LXD (`write`, in a pool
thread, given an iterator of frames).  The base checks the size limit, the role, the names in
the URL and the host, and audits every refusal and every outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
from dataclasses import dataclass, field

from channels.generic.websocket import AsyncWebsocketConsumer

from ..concurrency import SLOW, in_thread, submit
from ..domain.audit import audited, record
from ..domain.roles import OPERATOR, RANK, VIEWER, has_role
from ..domain.uploads import too_large
from ..live.socket_auth import LOGGED_OUT, NOT_ALLOWED, LoginBound
from ..lxd.errors import UserError
from ..lxd.names import NameRule
from ..models import AuditEntry, Host

FRAME = 1024 * 1024  # at most daphne's websocket_max_message_size (1 MiB by default); the page's JS agrees
WINDOW = 4 * FRAME  # the page's script keeps at most this much unacknowledged
QUEUED = 4  # frames waiting for the LXD writer
IDLE_SECONDS = 60
_END = object()
_ABORT = object()


@dataclass
class Job:
    """An upload the base has accepted: where the bytes go, how many, how the audit names it."""

    host: Host
    size: int
    target: str  # the audit entry's target
    upload: object  # what `describe` made of the header
    client: object = None  # the host's LXDClient, made in the writer's thread
    details: dict = field(default_factory=dict)


class StreamedUploadSocket(LoginBound, AsyncWebsocketConsumer):
    audit_action = "upload"
    role = OPERATOR
    refusal = "This upload needs the operator role."
    names: dict[str, NameRule] = {}  # URL keyword -> the LXD name rule it must follow
    audits_writes = True  # False where `write` calls domain code that audits itself

    # -- what a kind of upload says -----------------------------------------------------

    def describe(self, header: dict) -> tuple[object, int, str]:
        """(the upload, its size in bytes, its audit target) from the header; UserError (or
        ValueError, KeyError, TypeError: "not valid") to refuse."""
        raise NotImplementedError

    def max_bytes(self) -> int:
        raise NotImplementedError

    def check(self, job: Job) -> None:
        """In the writer's thread, before `ready`: what LXD must be asked first (UserError)."""

    def write(self, job: Job, entry, frames) -> tuple[int, str]:
        """In a pool thread: stream `frames` into LXD; (HTTP status, message) of the outcome.
        `entry` is the audit entry (entry.follow(...) ties an LXD operation to it)."""
        raise NotImplementedError

    def refused_target(self, header: dict | None) -> str:
        """The audit target of an upload refused before `describe` named one."""
        return self.scope["path"]

    def host_name(self, header: dict) -> str:
        """The host the bytes go to: the URL's, unless the kind of upload says otherwise."""
        return self.scope["url_route"]["kwargs"]["host"]

    async def prepare(self, header: dict) -> Job:
        try:
            upload, size, target = self.describe(header)
            if size < 0:
                raise ValueError
        except UserError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UserError("The upload's description is not valid.", 400) from exc
        if size > self.max_bytes():
            raise too_large(self.max_bytes())
        if not await in_thread(has_role, self.scope["user"], self.role):
            raise UserError(self.refusal, 403)
        kwargs = self.scope["url_route"]["kwargs"]
        for key, rule in self.names.items():
            rule.check(kwargs[key])
        name = self.host_name(header)
        host = await in_thread(Host.objects.select_related("client_certificate").filter(name=name).first)
        if host is None:
            raise UserError(f"There is no host named {name}.", 404)
        return Job(host, size, target, upload)

    def _named_host(self) -> str:
        try:
            return self.host_name(self.header or {})
        except (KeyError, TypeError, AttributeError):
            return ""

    # -- the protocol -------------------------------------------------------------------

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.frames: queue.Queue = queue.Queue(maxsize=QUEUED)
        self.room = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.job: Job | None = None
        self.header: dict | None = None
        self.result: asyncio.Future | None = None
        self.received = 0
        self.aborted = False
        self.abort_reason: tuple[str, int] | None = None  # why, for the writer's audit entry
        self.closed = False
        # Closed when this login ends: logout, deactivation, role lost (live/socket_auth.py).
        if not await self.bind_login(VIEWER):
            await self.close(code=LOGGED_OUT)
            return
        await self.accept()

    async def dispatch(self, message):
        """Channels closes stale database connections (a hop to the database thread) before
        every message; a data frame touches no database here (the writer looks after its own),
        and that hop per 1 MiB frame was a quarter of daphne's CPU in an upload."""
        if message.get("type") == "websocket.receive" and message.get("bytes") is not None:
            return await self.websocket_receive(message)
        return await super().dispatch(message)

    async def disconnect(self, code):
        self.abort()  # the writer notices, stops, and cleans up what it wrote
        await self.unbind_login()

    def abort(self, reason: tuple[str, int] | None = None) -> None:
        self.aborted = True
        if reason is not None and self.abort_reason is None:
            self.abort_reason = reason
        # Wakes a writer waiting for a frame; a busy one looks at `aborted` before its next.
        with contextlib.suppress(queue.Full, AttributeError):
            self.frames.put_nowait(_ABORT)

    async def revoked(self, code: int, message: str) -> None:
        self.abort((message, 401 if code == LOGGED_OUT else 403))
        await self.reply("error", self.abort_reason[1], message, code=code)

    async def role_changed(self, role: str) -> None:
        if self.job is not None and RANK[role] < RANK[self.role]:
            await self.revoked(NOT_ALLOWED, f"This upload needs the {self.role} role.")

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is not None and not self.closed:
            if self.job is not None:
                return await self.fail("The upload has already started.", 400)
            return await self.start(text_data)
        if self.closed:
            return None
        if self.job is None or self.result is None:
            return await self.fail("Send the upload's description before its data.", 400)
        self.received += len(bytes_data or b"")
        if self.received > self.job.size:
            return await self.fail(f"More data arrived than the {self.job.size} bytes announced.", 400)
        if not await self.queue(bytes_data):  # waits while the writer is behind: that paces the browser
            return await self.report()
        await self.send(json.dumps({"type": "ack", "received": self.received}))
        if self.received == self.job.size:
            await self.finish()
        return None

    async def queue(self, item) -> bool:
        """Hand an item to the writer; False if the writer has already ended (with an error)."""
        while not self.result.done():
            try:
                self.frames.put_nowait(item)
                return True
            except queue.Full:
                self.room.clear()
                room = asyncio.ensure_future(self.room.wait())
                await asyncio.wait({room, self.result}, return_when=asyncio.FIRST_COMPLETED)
                room.cancel()
        return False

    async def start(self, text: str) -> None:
        try:
            header = json.loads(text)
            if not isinstance(header, dict):
                raise ValueError
        except ValueError:
            return await self.fail("The upload's description is not valid.", 400)
        self.header = header
        try:
            job = await self.prepare(header)
        except UserError as exc:
            return await self.fail(exc.message, exc.http_status)
        self.job = job
        ready = self.loop.create_future()
        self.result = self.loop.create_future()
        submit(self._write, job, ready, pool=SLOW)
        await asyncio.wait({ready, self.result}, return_when=asyncio.FIRST_COMPLETED)
        if self.result.done():
            return await self.report()
        await self.send(json.dumps({"type": "ready"}))
        if job.size == 0:
            await self.finish()

    async def finish(self) -> None:
        await self.queue(_END)
        await self.report()

    async def report(self) -> None:
        kind, status, message = await self.result
        await self.reply(kind, status, message)

    async def fail(self, message: str, status: int) -> None:
        """Refuse the upload with `message`; audited here, or by the writer if it runs."""
        self.abort((message, status))
        if self.result is None:
            job = self.job
            await in_thread(
                record,
                self.scope["user"],
                self.audit_action,
                host=job.host if job else self._named_host(),
                target=job.target if job else self.refused_target(self.header),
                outcome=AuditEntry.Outcome.REFUSED,
                error=f"{message} (HTTP {status})",
            )
        await self.reply("error", status, message)

    async def reply(self, kind: str, status: int, message: str, code: int = 1000) -> None:
        if not self.closed:
            self.closed = True
            await self.send(json.dumps({"type": kind, "status": status, "message": message}))
            await self.close(code=code)

    # -- the writer (a pool thread) -------------------------------------------------------

    def _write(self, job: Job, ready: asyncio.Future) -> None:
        audit = (
            audited(self.scope["user"], self.audit_action, host=job.host, target=job.target)
            if self.audits_writes
            else contextlib.nullcontext()
        )
        try:
            with audit as entry:
                job.client = job.host.client()
                self.check(job)
                # The browser may start sending once LXD asks for the first byte: every check
                # of `write` (and LXD's own, before it reads a body) has passed by then.
                status, message = self.write(job, entry, self._frames(ready))
            outcome: tuple[str, int, str] = ("done", status, message)
        except UserError as exc:
            outcome = ("error", exc.http_status, str(exc))
        except Exception as exc:  # never leave the page waiting; the audit has the failure
            outcome = ("error", 500, f"The upload failed: {exc}")
        self.loop.call_soon_threadsafe(_set, self.result, outcome)

    def _frames(self, ready: asyncio.Future):
        self.loop.call_soon_threadsafe(_set, ready, True)
        while True:
            if self.aborted:
                raise UserError(
                    *(self.abort_reason or ("The upload was interrupted: the browser went away.", 400))
                )
            try:
                item = self.frames.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                raise UserError(f"The upload stalled: nothing arrived for {IDLE_SECONDS} s.", 408) from None
            self.loop.call_soon_threadsafe(self.room.set)
            if item is _ABORT:
                continue  # the loop's top says why
            if item is _END:
                return
            yield item


def _set(future: asyncio.Future, value) -> None:
    if not future.done():
        future.set_result(value)
