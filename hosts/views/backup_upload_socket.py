"""Restoring an uploaded backup as a new instance, streamed over a websocket straight into LXD
(the protocol and its flow control: stream_socket.py).

  browser -> {"host": "lab2", "name": "new", "pool": "", "size": N}
  server  -> {"type": "ready"} once LXD is about to read it, or an error (not a backup: 400, a
             name taken: 409, a pool missing: 404, what the role may not write: 403 ...)
"""

from __future__ import annotations

from django.conf import settings

from ..domain.backups import restore
from ..lxd.errors import UserError
from ..lxd.names import INSTANCE, STORAGE_POOL
from .stream_socket import Job, StreamedUploadSocket


class BackupUploadConsumer(StreamedUploadSocket):
    audit_action = "instance.restore"
    refusal = "Restoring a backup needs the operator role."
    audits_writes = False  # restore() audits the restore itself

    def refused_target(self, header: dict | None) -> str:
        return f"{(header or {}).get('name') or '?'} (uploaded backup)"

    def host_name(self, header: dict) -> str:
        return str(header.get("host") or "")

    def describe(self, header: dict) -> tuple[dict, int, str]:
        name, pool = str(header.get("name") or ""), str(header.get("pool") or "")
        size = int(header["size"])
        if size == 0:
            raise UserError("The file is empty: it is not a backup.", 400)
        INSTANCE.check(name)
        if pool:
            STORAGE_POOL.check(pool)
        return {"name": name, "pool": pool}, size, f"{name} (uploaded backup)"

    def max_bytes(self) -> int:
        return int(settings.DASHBOARD_MAX_BACKUP_UPLOAD_BYTES)

    def write(self, job: Job, entry, frames) -> tuple[int, str]:
        name = job.upload["name"]
        restore(
            self.scope["user"], job.host, name, frames, job.size, pool=job.upload["pool"], source="an upload"
        )
        return 201, f"Restored as {name} on {job.host.name} (stopped)."
