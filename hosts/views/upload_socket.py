"""The browser's file upload into an instance, streamed over a websocket straight into LXD
(the protocol and its flow control: stream_socket.py).

Header: {"path": "/dir/name", "size": N, "mode": "0644", "uid": "", "gid": "", "overwrite": false}
"""

from __future__ import annotations

from ..concurrency import in_thread
from ..domain import paths, uploads
from ..domain.roles import OPERATOR, has_role
from ..lxd.errors import UserError
from ..lxd.names import INSTANCE
from ..models import Host
from .stream_socket import FRAME, WINDOW, Job, StreamedUploadSocket

__all__ = ["FRAME", "WINDOW", "FileUploadConsumer"]


class FileUploadConsumer(StreamedUploadSocket):
    audit_action = "file.push"

    @property
    def instance(self) -> str:
        return self.scope["url_route"]["kwargs"]["name"]

    def refused_target(self, header: dict | None) -> str:
        """instance:path as the browser named it (a refused path may be no valid path)."""
        path = str((header or {}).get("path") or "")
        if len(path) > paths.PATH_MAX:  # bounded by the message size only: keep PATH_MAX of it
            path = f"{path[: paths.PATH_MAX]}… ({len(path)} characters)"
        return f"{self.instance}:{path}"

    async def prepare(self, header: dict) -> Job:
        try:
            upload = uploads.Upload(
                self.instance,
                paths.normalise_path(str(header.get("path") or "")),
                size=int(header["size"]),
                mode=paths.parse_mode(header.get("mode")),
                uid=paths.parse_id(str(header.get("uid") or ""), "uid"),
                gid=paths.parse_id(str(header.get("gid") or ""), "gid"),
                overwrite=bool(header.get("overwrite")),
            )
            if upload.size < 0:
                raise ValueError
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if isinstance(exc, UserError):
                raise
            raise UserError("The upload's description is not valid.", 400) from exc
        if upload.size > uploads.max_upload_bytes():
            raise uploads.too_large(uploads.max_upload_bytes())
        if not await in_thread(has_role, self.scope["user"], OPERATOR):
            raise UserError("Uploading needs the operator role.", 403)
        INSTANCE.check(self.instance)
        host_name = self.scope["url_route"]["kwargs"]["host"]
        host = await in_thread(Host.objects.select_related("client_certificate").filter(name=host_name).first)
        if host is None:
            raise UserError(f"There is no host named {host_name}.", 404)
        return Job(host, upload.size, f"{upload.instance}:{upload.path}", {"upload": upload})

    def check(self, job: Job) -> None:
        job.details["client"] = job.host.client()
        uploads.check(job.details["client"], job.details["upload"])

    def write(self, job: Job, frames) -> tuple[int, str]:
        upload = job.details["upload"]
        written = uploads.write(job.details["client"], upload, frames)
        verb = "Replaced" if upload.replaces else "Created"
        return 200 if upload.replaces else 201, f"{verb} {upload.path} ({written} bytes)."
