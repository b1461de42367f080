"""An image upload from the browser (ws/hosts/<host>/images/import/), streamed into the host.

The protocol is the file upload's (hosts/upload_consumer.py); the description is
  {"files": [{"name": "image.tar.gz", "size": N}], "aliases": ["web"]}            (unified)
  {"files": [{"name": "meta.tar.xz", "size": M}, {"name": "rootfs.squashfs", "size": R}], ...}
and for a split image the frames carry the metadata's bytes, then the rootfs'.
"""

from __future__ import annotations

from ..domain import image_import
from ..upload_consumer import StreamingUploadConsumer


class ImageImportConsumer(StreamingUploadConsumer):
    action = "image.import"
    refusal = "Importing images needs the operator role."

    def describe(self, header: dict) -> tuple[image_import.ImageUpload, int]:
        upload = image_import.describe(header)
        self.requested = upload.names
        return upload, upload.size

    def max_bytes(self) -> int:
        return image_import.max_bytes()

    def audit_target(self) -> str:
        return getattr(self, "requested", "") or "(an image upload)"

    def prepare(self, client, job: image_import.ImageUpload) -> None:
        image_import.check(client, job)

    def write(self, client, entry, job: image_import.ImageUpload, frames) -> tuple[int, str]:
        return image_import.write(client, entry, job, frames)
