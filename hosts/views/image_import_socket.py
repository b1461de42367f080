"""An image upload from the browser (ws/hosts/<host>/images/import/), streamed into the host.

The protocol is the file upload's (stream_socket.py); the description is
  {"files": [{"name": "image.tar.gz", "size": N}], "aliases": ["web"]}            (unified)
  {"files": [{"name": "meta.tar.xz", "size": M}, {"name": "rootfs.squashfs", "size": R}], ...}
and for a split image the frames carry the metadata's bytes, then the rootfs'.
"""

from __future__ import annotations

from ..domain import image_import
from .stream_socket import Job, StreamedUploadSocket


class ImageImportConsumer(StreamedUploadSocket):
    audit_action = "image.import"
    refusal = "Importing images needs the operator role."

    def refused_target(self, header: dict | None) -> str:
        return "(an image upload)"

    def describe(self, header: dict) -> tuple[image_import.ImageUpload, int, str]:
        upload = image_import.describe(header)
        return upload, upload.size, upload.names or "(an image upload)"

    def max_bytes(self) -> int:
        return image_import.max_bytes()

    def check(self, job: Job) -> None:
        image_import.check(job.client, job.upload)

    def write(self, job: Job, entry, frames) -> tuple[int, str]:
        return image_import.write(job.client, entry, job.upload, frames)
