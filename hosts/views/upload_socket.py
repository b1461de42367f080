"""The browser's file upload into an instance, streamed over a websocket straight into LXD
(the protocol and its flow control: stream_socket.py).

Header: {"path": "/dir/name", "size": N, "mode": "0644", "uid": "", "gid": "", "overwrite": false}
"""

from __future__ import annotations

from ..domain import paths, uploads
from ..lxd.names import INSTANCE
from .stream_socket import FRAME, WINDOW, Job, StreamedUploadSocket

__all__ = ["FRAME", "WINDOW", "FileUploadConsumer"]


class FileUploadConsumer(StreamedUploadSocket):
    audit_action = "file.push"
    refusal = "Uploading needs the operator role."
    names = {"name": INSTANCE}

    @property
    def instance(self) -> str:
        return self.scope["url_route"]["kwargs"]["name"]

    def refused_target(self, header: dict | None) -> str:
        """instance:path as the browser named it (a refused path may be no valid path)."""
        path = str((header or {}).get("path") or "")
        if len(path) > paths.PATH_MAX:  # bounded by the message size only: keep PATH_MAX of it
            path = f"{path[: paths.PATH_MAX]}… ({len(path)} characters)"
        return f"{self.instance}:{path}"

    def describe(self, header: dict) -> tuple[uploads.Upload, int, str]:
        upload = uploads.Upload(
            self.instance,
            paths.normalise_path(str(header.get("path") or "")),
            size=int(header["size"]),
            mode=paths.parse_mode(header.get("mode")),
            uid=paths.parse_id(str(header.get("uid") or ""), "uid"),
            gid=paths.parse_id(str(header.get("gid") or ""), "gid"),
            overwrite=bool(header.get("overwrite")),
        )
        return upload, upload.size, f"{upload.instance}:{upload.path}"

    def max_bytes(self) -> int:
        return uploads.max_upload_bytes()

    def check(self, job: Job) -> None:
        uploads.check(job.client, job.upload)

    def write(self, job: Job, entry, frames) -> tuple[int, str]:
        upload = job.upload
        written = uploads.write(job.client, upload, frames)
        verb = "Replaced" if upload.replaces else "Created"
        return 200 if upload.replaces else 201, f"{verb} {upload.path} ({written} bytes)."
