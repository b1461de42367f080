"""Restoring an uploaded backup as a new instance, streamed over a websocket straight into LXD.

The protocol and the pacing are those of the file upload (hosts/upload_consumer.py): daphne
would hold a whole HTTP body in memory before the view runs, while here each acknowledged frame
goes on to LXD as it arrives, so the server holds a few frames whatever the backup's size.

  browser -> {"host": "lab2", "name": "new", "pool": "", "size": N}
  server  -> {"type": "ready"}  (the checks passed)     or {"type": "error", "status": ..., "message": ...}
  browser -> binary frames, at most WINDOW bytes unacknowledged; server -> {"type": "ack", "received": n}
  server  -> {"type": "done", "status": 201, "message": ...}   or an error (not a backup: 400,
             a name taken: 409, a pool missing: 404, what the role may not write: 403 ...)
"""

from __future__ import annotations

import asyncio
import json
import threading
from types import SimpleNamespace

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import close_old_connections

from ..domain.backups import restore
from ..lxd import LXDError
from ..lxd.names import INSTANCE, POOL
from ..models import Host
from ..policy import PolicyRefused
from ..roles import OPERATOR, has_role
from ..upload_consumer import FileUploadConsumer, _set


class BackupUploadConsumer(FileUploadConsumer):
    action = "instance.restore"

    async def role_changed(self, role: str) -> None:
        if self.upload is not None and role not in ("operator", "admin"):
            await self.revoked(4403, "Restoring a backup needs the operator role.")

    def audit_target(self) -> str:
        return f"{self.instance or '?'} (uploaded backup)"

    async def start(self, text: str) -> None:
        try:
            header = json.loads(text)
            self.host_name = str(header.get("host") or "")
            self.instance = str(header.get("name") or "")
            pool = str(header.get("pool") or "")
            size = int(header["size"])
        except (ValueError, KeyError, TypeError, AttributeError):
            return await self.fail("The restore's description is not valid.", 400)
        if size <= 0:
            return await self.fail("The file is empty: it is not a backup.", 400)
        limit = int(settings.DASHBOARD_MAX_BACKUP_UPLOAD_BYTES)
        if size > limit:
            return await self.fail(f"The backup is larger than the restore limit of {limit} bytes.", 413)
        user = self.scope["user"]
        if not await database_sync_to_async(has_role)(user, OPERATOR):
            return await self.fail("Restoring a backup needs the operator role.", 403)
        for rule, value in ((INSTANCE, self.instance), (POOL, pool)):
            if (value or rule is INSTANCE) and (error := rule.error(value)) is not None:
                return await self.fail(error, 400)
        host = await database_sync_to_async(
            Host.objects.select_related("client_certificate").filter(name=self.host_name).first
        )()
        if host is None:
            return await self.fail(f"There is no host named {self.host_name}.", 404)
        self.upload = SimpleNamespace(size=size)
        ready = self.loop.create_future()
        self.result = self.loop.create_future()
        threading.Thread(
            target=self._restore, args=(host, user, pool, size, ready), name="restore upload", daemon=True
        ).start()
        await asyncio.wait({ready, self.result}, return_when=asyncio.FIRST_COMPLETED)
        if self.result.done():
            return await self.report()
        await self.send(json.dumps({"type": "ready"}))
        return None

    def _restore(self, host: Host, user, pool: str, size: int, ready: asyncio.Future) -> None:
        close_old_connections()

        def frames():
            # LXD is asked only once the checks passed: then the browser may start sending.
            self.loop.call_soon_threadsafe(_set, ready, True)
            yield from self._frames()

        try:
            restore(user, host, self.instance, frames(), size, pool=pool, source="an upload")
            outcome = ("done", 201, f"Restored as {self.instance} on {host.name} (stopped).")
        except (LXDError, PolicyRefused) as exc:
            outcome = ("error", exc.http_status, str(exc))
        except Exception as exc:  # never leave the page waiting
            outcome = ("error", 500, f"The restore failed: {exc}")
        finally:
            close_old_connections()
        self.loop.call_soon_threadsafe(_set, self.result, outcome)
