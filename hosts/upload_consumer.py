"""The browser's file upload, streamed over a websocket straight into LXD.

Why not a plain HTTP upload: daphne (Twisted) receives a whole request body before the
application starts, then queues all of it, in 8 KiB pieces, in memory: a 256 MiB upload grows the
server by 256 MiB and only starts towards LXD once it has all arrived.  Over a websocket each
frame goes on to LXD as it comes, and acknowledgements pace the browser, so the server holds at
most a few frames whatever the file size.

Protocol (JSON text frames, binary frames for the data):
  browser -> {"path": "/dir/name", "size": N, "mode": "0644", "uid": "", "gid": "", "overwrite": false}
  server  -> {"type": "ready"}                      or {"type": "error", "status": 409, "message": ...}
  browser -> binary frames (at most FRAME bytes), no more than WINDOW bytes unacknowledged
  server  -> {"type": "ack", "received": n}         after each frame is queued for LXD
  server  -> {"type": "done", "status": 201|200, "message": ...}   or an error; then it closes.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import close_old_connections

from . import paths, uploads
from .audit import audited, record
from .lxd import LXDError
from .lxd.names import INSTANCE
from .models import AuditEntry, Host
from .roles import OPERATOR, RANK, VIEWER, has_role
from .socket_auth import LOGGED_OUT, NOT_ALLOWED, LoginBound

FRAME = 1024 * 1024  # at most daphne's websocket_max_message_size (1 MiB by default); files.js agrees
WINDOW = 4 * FRAME  # the page's script keeps at most this much unacknowledged
QUEUED = 4  # frames waiting for the LXD writer
IDLE_SECONDS = 60
_END = object()


class FileUploadConsumer(LoginBound, AsyncWebsocketConsumer):
    action = "file.push"  # what a refusal is audited as

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        kwargs = self.scope["url_route"]["kwargs"]
        self.host_name, self.instance = kwargs.get("host", ""), kwargs.get("name", "")
        # The writer thread takes frames from a thread-safe queue; when it is full the consumer
        # waits for `room`, which the writer sets (through the loop) after each frame it takes.
        self.frames: queue.Queue = queue.Queue(maxsize=QUEUED)
        self.room = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.upload: uploads.Upload | None = None
        self.result: asyncio.Future | None = None
        self.received = 0
        self.aborted = False
        self.abort_reason: tuple[str, int] | None = None  # why, for the writer's audit entry
        self.requested_path = ""
        self.closed = False
        # Closed when this login ends: logout, deactivation, role lost (hosts/socket_auth.py).
        if not await self.bind_login(VIEWER):
            await self.close(code=LOGGED_OUT)
            return
        await self.accept()

    async def disconnect(self, code):
        self.aborted = True  # the writer thread notices, stops, and removes the partial file
        await self.unbind_login()

    async def revoked(self, code: int, message: str) -> None:
        self.aborted, self.abort_reason = True, (message, 401 if code == LOGGED_OUT else 403)
        await self.reply("error", self.abort_reason[1], message, code=code)

    async def role_changed(self, role: str) -> None:
        if self.upload is not None and RANK[role] < RANK[OPERATOR]:
            await self.revoked(NOT_ALLOWED, "Uploading needs the operator role.")

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is not None and not self.closed:
            if self.upload is not None:
                return await self.fail("The upload has already started.", 400)
            return await self.start(text_data)
        if self.closed:
            return None
        if self.upload is None or self.result is None:
            return await self.fail("Send the file's description before its data.", 400)
        self.received += len(bytes_data or b"")
        if self.received > (self.upload.size or 0):
            return await self.fail(f"More data arrived than the {self.upload.size} bytes announced.", 400)
        if not await self.queue(bytes_data):  # waits while the writer is behind: that paces the browser
            return await self.report()
        await self.send(json.dumps({"type": "ack", "received": self.received}))
        if self.received == self.upload.size:
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
            self.requested_path = str(header.get("path") or "")
            upload = uploads.Upload(
                self.instance,
                paths.normalise_path(self.requested_path),
                size=int(header["size"]),
                mode=paths.parse_mode(header.get("mode")),
                uid=paths.parse_id(str(header.get("uid") or ""), "uid"),
                gid=paths.parse_id(str(header.get("gid") or ""), "gid"),
                overwrite=bool(header.get("overwrite")),
            )
            if upload.size < 0:
                raise ValueError
        except paths.BadPath as exc:
            return await self.fail(str(exc), 400)
        except (ValueError, KeyError, TypeError, AttributeError):
            return await self.fail("The upload's description is not valid.", 400)
        if upload.size > uploads.max_upload_bytes():
            return await self.fail(str(uploads.too_large(uploads.max_upload_bytes())), 413)
        user = self.scope["user"]
        if not await database_sync_to_async(has_role)(user, OPERATOR):
            return await self.fail("Uploading needs the operator role.", 403)
        if (error := INSTANCE.error(self.instance)) is not None:
            return await self.fail(error, 400)
        host = await database_sync_to_async(
            Host.objects.select_related("client_certificate").filter(name=self.host_name).first
        )()
        if host is None:
            return await self.fail(f"There is no host named {self.host_name}.", 404)
        self.upload = upload
        ready = self.loop.create_future()
        self.result = self.loop.create_future()
        threading.Thread(
            target=self._write, args=(host, user, upload, ready), name=f"upload {upload.path}", daemon=True
        ).start()
        await asyncio.wait({ready, self.result}, return_when=asyncio.FIRST_COMPLETED)
        if self.result.done():
            return await self.report()
        await self.send(json.dumps({"type": "ready"}))
        if upload.size == 0:
            await self.finish()

    async def finish(self) -> None:
        await self.queue(_END)
        await self.report()

    async def report(self) -> None:
        kind, status, message = await self.result
        await self.reply(kind, status, message)

    async def fail(self, message: str, status: int) -> None:
        """Refuse the upload with `message`; audited here, or by the writer if it runs."""
        self.aborted = True
        if self.result is None:
            await database_sync_to_async(record)(
                self.scope["user"],
                self.action,
                host=self.host_name,
                target=self.audit_target(),
                outcome=AuditEntry.Outcome.REFUSED,
                error=f"{message} (HTTP {status})",
            )
        elif self.abort_reason is None:
            self.abort_reason = (message, status)
        await self.reply("error", status, message)

    def audit_target(self) -> str:
        """instance:path as the browser named it (a refused path may be no valid path)."""
        path = self.requested_path
        if len(path) > paths.PATH_MAX:  # bounded by the message size only: keep PATH_MAX of it
            path = f"{path[: paths.PATH_MAX]}… ({len(path)} characters)"
        return f"{self.instance}:{path}"

    async def reply(self, kind: str, status: int, message: str, code: int = 1000) -> None:
        if not self.closed:
            self.closed = True
            await self.send(json.dumps({"type": kind, "status": status, "message": message}))
            await self.close(code=code)

    # -- the writer thread ------------------------------------------------------------

    def _write(self, host: Host, user, upload: uploads.Upload, ready: asyncio.Future) -> None:
        close_old_connections()
        try:
            with audited(user, "file.push", host=host, target=f"{upload.instance}:{upload.path}"):
                client = host.client()
                uploads.check(client, upload)
                self.loop.call_soon_threadsafe(_set, ready, True)
                written = uploads.write(client, upload, self._frames())
            verb = "Replaced" if upload.replaces else "Created"
            outcome: tuple[str, int, str] = (
                "done",
                200 if upload.replaces else 201,
                f"{verb} {upload.path} ({written} bytes).",
            )
        except (uploads.UploadRefused, LXDError) as exc:
            outcome = ("error", exc.http_status, str(exc))
        except Exception as exc:  # never leave the page waiting
            outcome = ("error", 500, f"The upload failed: {exc}")
        finally:
            close_old_connections()
        self.loop.call_soon_threadsafe(_set, self.result, outcome)

    def _frames(self):
        idle = 0.0
        while True:
            if self.aborted:
                message, status = self.abort_reason or (
                    "The upload was interrupted: the browser went away.",
                    400,
                )
                raise uploads.UploadRefused(message, status)
            try:
                item = self.frames.get(timeout=0.5)
            except queue.Empty:
                idle += 0.5
                if idle >= IDLE_SECONDS:
                    raise uploads.UploadRefused(
                        f"The upload stalled: nothing arrived for {IDLE_SECONDS} s.", 408
                    ) from None
                continue
            self.loop.call_soon_threadsafe(self.room.set)
            idle = 0.0
            if item is _END:
                return
            yield item


def _set(future: asyncio.Future, value) -> None:
    if not future.done():
        future.set_result(value)
