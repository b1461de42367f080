"""Uploading an image to a host: a unified tarball, or a split image (metadata tarball, then
its rootfs), streamed into LXD's `POST /1.0/images` as the bytes arrive (the browser sends them
over a websocket: hosts/views/image_import_socket.py).  Nothing is held whole here or written
to the dashboard's disk.

What LXD 5.0.2 does with it (hosts/lxd/images.py): it keeps the body on its own disk until the
last byte, then unpacks it in an operation ("Downloading image") that ends with the
fingerprint or with why the file is no image.  A body cut short leaves nothing on the host.
Aliases are created afterwards, one by one, as `lxc image import --alias` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.template.defaultfilters import filesizeformat

from ..lxd import LXDAPIError, LXDError, OperationFailed
from ..lxd.images import SplitUpload, short_fingerprint
from ..lxd.names import IMAGE_ALIAS
from .uploads import Metered, UploadRefused

MAX_ALIASES = 16
NAME_MAX = 255


@dataclass
class ImageUpload:
    files: list[tuple[str, int]]  # (file name, size): the tarball, or metadata then rootfs
    aliases: list[str] = field(default_factory=list)

    @property
    def split(self) -> bool:
        return len(self.files) == 2

    @property
    def size(self) -> int:
        return sum(size for _, size in self.files)

    @property
    def names(self) -> str:
        return " + ".join(name for name, _ in self.files)


def max_bytes() -> int:
    return int(settings.DASHBOARD_MAX_IMAGE_UPLOAD_BYTES)


def describe(header: dict) -> ImageUpload:
    """The browser's description: {"files": [{"name", "size"}, ...], "aliases": [...]}."""
    files = header.get("files")
    if not isinstance(files, list) or len(files) not in (1, 2):
        raise UploadRefused("Send one image file (unified), or two: the metadata, then the rootfs.", 400)
    described = []
    for item in files:
        name, size = str(item.get("name") or "")[:NAME_MAX], int(item["size"])
        if size < 0:
            raise ValueError("a negative size")
        described.append((name or "image", size))
    aliases = header.get("aliases") or []
    if not isinstance(aliases, list) or len(aliases) > MAX_ALIASES:
        raise UploadRefused(f"Give at most {MAX_ALIASES} aliases.", 400)
    for alias in aliases:
        if (error := IMAGE_ALIAS.error(alias)) is not None:
            raise UploadRefused(error, 400)
    return ImageUpload(described, list(dict.fromkeys(aliases)))


def check(client, upload: ImageUpload) -> None:
    """Everything that can be refused before a byte is sent: the aliases must be free."""
    for alias in upload.aliases:
        target = client.alias_target(alias)
        if target is not None:
            raise UploadRefused(
                f"The alias {alias} is taken on {client.label}: it points to image "
                f"{short_fingerprint(target)}. Remove it there first, or choose another name.",
                409,
            )


def write(client, entry, upload: ImageUpload, frames) -> tuple[int, str]:
    """Stream the image into the host, wait for LXD to unpack it, then add the aliases.
    `entry` is the audit entry under way: the operation is claimed through it."""
    body = Metered(frames, upload.size, max_bytes())
    if upload.split:
        (metadata, metadata_size), (rootfs, rootfs_size) = upload.files
        payload = SplitUpload(body, metadata_size, rootfs_size, (metadata, rootfs))
        content_type = payload.content_type
    else:
        payload, content_type = body, "application/octet-stream"
    try:
        op = client.upload_image(payload, content_type=content_type, filename=upload.files[-1][0])
    except (UploadRefused, LXDError) as exc:
        if not body.started:
            raise
        raise UploadRefused(
            f"{exc} Nothing was kept on {client.label}: LXD drops an upload cut short.",
            getattr(exc, "http_status", 502),
        ) from exc
    # LXD's operation names nothing: the task log shows the upload until the image is known
    entry.objects = (
        ("upload", "".join(c if c.isprintable() and not c.isspace() else "_" for c in upload.names)),
    )
    entry.operation_id = op.id
    try:
        done = client.wait(op, timeout=settings.LXD_OPERATION_TIMEOUT)
    except OperationFailed as exc:
        kind = "a split image (metadata tarball, then rootfs)" if upload.split else "an image tarball"
        raise UploadRefused(
            f"{client.label} did not take {upload.names} as {kind}: {exc}. Nothing was kept.", 400
        ) from exc
    fingerprint = str(done.metadata.get("fingerprint") or "")
    entry.objects = (("image", fingerprint),)
    entry.operation_id = op.id  # claims it again, now naming the image (in the kept log)
    added, notes = [], []
    for alias in upload.aliases:
        try:
            client.add_image_alias(alias, fingerprint)
            added.append(alias)
        except LXDAPIError as exc:  # taken meanwhile (409)
            notes.append(f"The alias {alias} was not added: {exc}.")
    message = (
        f"Imported image {short_fingerprint(fingerprint)} ({filesizeformat(upload.size)}) on {client.label}"
        + (f" as {', '.join(added)}" if added else "")
        + "."
    )
    return 201, " ".join([message, *notes])
