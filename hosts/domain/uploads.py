"""Pushing a file into an instance: check first, stream second, clean up on failure.

Shared by the raw PUT view, the multipart form and the websocket upload, so the rules are the
same everywhere:
- refused before anything reaches LXD: over DASHBOARD_MAX_UPLOAD_BYTES (413), the parent
  directory missing (404) or not a directory (409), the target a directory or a symlink (409),
  the target an existing file without the person's confirmation to replace it (409);
- streamed: the bytes go to LXD as they come, in chunks; nothing joins them in memory;
- on failure once bytes may have reached LXD (a stream cut short, a limit crossed mid-stream,
  LXD failing), the file at the target path is deleted.  LXD 5.0.2's files API has no rename,
  so we cannot write to a temporary name and swap; deleting is the only way to leave nothing
  half-written.  A replaced file had already been truncated by LXD when the write began, so it
  is gone either way: the message says so.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.template.defaultfilters import filesizeformat

from ..lxd import LXDClient, LXDError
from ..lxd.errors import UserError
from ..lxd.files import PathNotFound
from .paths import parent_of

CHUNK = 1024 * 1024
MULTIPART_SLACK = 1024 * 1024  # form fields and boundaries around the file itself


class UploadRefused(UserError):
    """The upload cannot go ahead, or broke."""


def max_upload_bytes() -> int:
    return int(settings.DASHBOARD_MAX_UPLOAD_BYTES)


def max_http_upload_bytes() -> int:
    """Daphne holds a whole HTTP request body in memory before the view runs (the websocket
    upload does not), so plain HTTP uploads get their own, lower, limit."""
    return min(max_upload_bytes(), int(settings.DASHBOARD_MAX_HTTP_UPLOAD_BYTES))


def max_http_body_bytes() -> int:
    """The largest request body the plain-HTTP upload route reads (dashboard/body_limit.py
    refuses a larger one before daphne reads it): the file plus the multipart form around it."""
    return max_http_upload_bytes() + MULTIPART_SLACK


def too_large(limit: int) -> UploadRefused:
    message = f"The file is larger than the upload limit of {filesizeformat(limit)} ({limit} bytes)."
    if limit < max_upload_bytes():
        message += (
            f" That is the limit for plain HTTP uploads; the page's upload (over a websocket, with"
            f" JavaScript on) takes up to {filesizeformat(max_upload_bytes())}."
        )
    return UploadRefused(message, 413)


@dataclass
class Upload:
    instance: str
    path: str  # normalised (hosts.paths.normalise_path)
    size: int | None = None  # None when the sender did not say (chunked)
    mode: str | None = None  # "0644"; applies only when the file is created
    uid: int | None = None
    gid: int | None = None
    overwrite: bool = False
    replaces: bool = False  # set by check(): an existing file will be replaced
    limit: int | None = None  # bytes allowed; None: DASHBOARD_MAX_UPLOAD_BYTES

    @property
    def max_bytes(self) -> int:
        return self.limit if self.limit is not None else max_upload_bytes()


def check(client: LXDClient, upload: Upload) -> Upload:
    """Everything that can be refused before a byte is sent."""
    if upload.size is not None and upload.size > upload.max_bytes:
        raise too_large(upload.max_bytes)
    client.instance_brief(upload.instance)  # "Instance not found" rather than "no such directory"
    parent = parent_of(upload.path)
    folder = client.file_info_or_none(upload.instance, parent)
    if folder is None:
        raise UploadRefused(f"The directory {parent} does not exist in {upload.instance}.", 404)
    if not folder.is_dir:
        raise UploadRefused(f"{parent} is a {folder.type}, not a directory.", 409)
    existing = client.file_info_or_none(upload.instance, upload.path)
    if existing is not None:
        if existing.is_dir:
            raise UploadRefused(f"{upload.path} is a directory: upload under another name.", 409)
        if existing.is_link:
            raise UploadRefused(
                f"{upload.path} is a symbolic link: delete it first or choose another name.", 409
            )
        if not upload.overwrite:
            raise UploadRefused(
                f"{upload.path} already exists. Confirm that you want to replace it (its mode and owner stay as they are).",
                409,
            )
        upload.replaces = True
    return upload


class Metered:
    """The body sent to LXD: counts bytes, stops at the limit, insists on the announced size.

    Raising inside the iteration makes requests drop the connection, so LXD sees the body
    cut short and stops writing.  `__len__` (when the size is known) makes requests send a
    Content-Length instead of chunked encoding.
    """

    def __init__(self, chunks: Iterable[bytes], size: int | None, limit: int):
        self._chunks = chunks
        self.size = size
        self.limit = limit
        self.sent = 0
        self.started = False

    def __len__(self) -> int:
        return self.size or 0  # 0: requests falls back to chunked encoding

    def __bool__(self) -> bool:
        return True  # requests sends `data or {}`: an "empty" body would be dropped

    def __iter__(self) -> Iterator[bytes]:
        self.started = True
        for chunk in self._chunks:
            if not chunk:
                continue
            self.sent += len(chunk)
            if self.sent > self.limit:
                raise too_large(self.limit)
            if self.size is not None and self.sent > self.size:
                raise UploadRefused(f"More data arrived than the {self.size} bytes announced.", 400)
            yield chunk
        if self.size is not None and self.sent != self.size:
            raise UploadRefused(f"The upload stopped after {self.sent} of {self.size} bytes.", 400)


def push(client: LXDClient, upload: Upload, chunks: Iterable[bytes]) -> int:
    """Check, then stream `chunks` into the file; returns the number of bytes written."""
    check(client, upload)
    return write(client, upload, chunks)


def write(client: LXDClient, upload: Upload, chunks: Iterable[bytes]) -> int:
    """Stream `chunks` into the file (after check()); on failure remove what was written."""
    body = Metered(chunks, upload.size, upload.max_bytes)
    try:
        client.push_file(
            upload.instance,
            upload.path,
            b"" if upload.size == 0 else body,
            mode=None if upload.replaces else upload.mode,
            uid=None if upload.replaces else upload.uid,
            gid=None if upload.replaces else upload.gid,
        )
        if upload.size == 0:
            list(body)  # still checks that the sender really sent nothing
    except BaseException as exc:
        if not body.started:
            raise  # nothing reached LXD: an existing file is intact
        removed = remove_partial(client, upload)
        if isinstance(exc, UploadRefused | LXDError):
            raise UploadRefused(_after_failure(exc, upload, removed), exc.http_status) from exc
        raise
    return body.sent


def _after_failure(exc: Exception, upload: Upload, removed: bool) -> str:
    if not removed:
        return f"{exc} The partial file {upload.path} could not be removed: check it."
    if upload.replaces:
        return f"{exc} The file {upload.path} had been partly overwritten and was removed."
    return f"{exc} Nothing was left at {upload.path}."


def remove_partial(client: LXDClient, upload: Upload) -> bool:
    """Delete what a failed write left.  LXD may still be closing its side of the write when
    we get here, so look again after a moment."""
    for attempt in range(5):
        try:
            client.delete_file(upload.instance, upload.path)
        except PathNotFound:
            pass
        except LXDError:
            return False
        time.sleep(0.05 * (attempt + 1))
        try:
            if client.file_info_or_none(upload.instance, upload.path) is None:
                return True
        except LXDError:
            return False
    return False


def request_chunks(request, size: int = CHUNK) -> Iterator[bytes]:
    """The raw request body, read as a stream (Django spools it to disk above 2.5 MB)."""
    while True:
        chunk = request.read(size)
        if not chunk:
            return
        yield chunk
