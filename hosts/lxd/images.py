"""Image intentions of LXDClient (mixed into LXDClient).

What LXD 5.0.2 does and this module hides (shared/LXD-API.md §9, and the lab):
- an upload (`POST /1.0/images`, the tarball as the body) is read whole onto the daemon's disk
  before LXD answers; only then comes an operation, "Downloading image", with no progress and
  no resources, whose final metadata holds the fingerprint.  A body cut short or a file that is
  no image leaves nothing behind (the failure says why: "Unsupported compression" ...);
- a split image (metadata tarball + rootfs) goes up as multipart/form-data, part `metadata`
  then part `rootfs`, and comes back the same way from the export;
- an export is no operation: a plain answer (a unified image with its Content-Length, a split
  one as chunked multipart);
- a copy from another host is `POST /1.0/images` with a pull source: the target fetches as an
  anonymous client (certificate + fingerprint + one-time secret), reporting `download_progress`;
  a source that drops mid-copy fails it with "unexpected EOF" and the target keeps nothing;
- `PUT /1.0/images/<fp>` replaces properties, profiles, public, auto_update and expires_at:
  what is not sent back is lost.  The ETag covers them.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests

from .errors import InvalidName, LXDAPIError, LXDError

if TYPE_CHECKING:
    from .operation import Operation

UPLOAD_TIMEOUT = (0.5, 300.0)  # LXD answers an upload only once it has the last byte on disk
EXPORT_TIMEOUT = (0.5, 60.0)
HEADERS_MAX = 16 * 1024  # a multipart part's headers, as LXD writes them, are ~200 bytes
SPLIT_PARTS = ("metadata", "rootfs")
# The keys of an image that PUT replaces (everything else is LXD's own).
WRITABLE = ("auto_update", "properties", "public", "expires_at", "profiles")


def _q(name: str) -> str:
    return quote(name, safe="")


def short_fingerprint(fingerprint: str) -> str:
    """The 12 digits `lxc image list` shows."""
    return fingerprint[:12]


class ImageNotFound(LXDAPIError):
    def __init__(self, reference: str, host_label: str):
        super().__init__(
            f"image {reference!r} was not found on {host_label} (neither an alias nor a fingerprint)", 400
        )


@dataclass
class ImageExport:
    """An export under way: `response` streams the body (close it when done)."""

    response: requests.Response
    filename: str
    size: int | None  # None for a split image (chunked multipart)
    boundary: str = ""  # set for a split image

    @property
    def split(self) -> bool:
        return bool(self.boundary)


class ImagesAPI:
    """Methods here use self.call / self.get / self.request from LXDClient."""

    # -- reading -----------------------------------------------------------------------

    def images(self) -> list[dict]:
        return self.get("/1.0/images", params={"recursion": 1}) or []

    def image(self, fingerprint: str) -> dict:
        return self.get(f"/1.0/images/{_q(fingerprint)}")

    def image_and_etag(self, fingerprint: str) -> tuple[dict, str]:
        data, response = self.call("GET", f"/1.0/images/{_q(fingerprint)}")
        return data, response.headers.get("ETag", "")

    def resolve_image(self, reference: str) -> str:
        """An alias or a (partial) fingerprint -> the full fingerprint, as this host knows it."""
        try:  # aliases may hold a '/' (debian/12); LXD reads %2F inside the segment
            return self.get(f"/1.0/images/aliases/{_q(reference)}", encoded_slash_ok=True)["target"]
        except InvalidName as exc:
            raise ImageNotFound(reference, self.label) from exc
        except LXDAPIError as exc:
            if exc.error_code != 404:
                raise
        try:
            return self.image(reference)["fingerprint"]
        except InvalidName as exc:
            raise ImageNotFound(reference, self.label) from exc
        except LXDAPIError as exc:
            if exc.error_code in (400, 404):
                raise ImageNotFound(reference, self.label) from exc
            raise

    def has_image(self, fingerprint: str) -> bool:
        try:
            self.image(fingerprint)
        except LXDAPIError as exc:
            if exc.error_code == 404:
                return False
            raise
        return True

    def alias_target(self, alias: str) -> str | None:
        """The fingerprint `alias` points to on this host, or None when it is free."""
        try:
            return self.get(f"/1.0/images/aliases/{_q(alias)}", encoded_slash_ok=True)["target"]
        except LXDAPIError as exc:
            if exc.error_code == 404:
                return None
            raise

    # -- writing -----------------------------------------------------------------------

    def create_image_secret(self, fingerprint: str) -> tuple[str, str]:
        """A one-time download secret for a private image: (secret, token operation id)."""
        op = self.call("POST", f"/1.0/images/{_q(fingerprint)}/secret", json_body={})[0]
        return str(op.metadata.get("secret", "")), op.id

    def pull_image(
        self, source: dict, *, aliases: Iterable[str] = (), auto_update: bool = False
    ) -> Operation:
        """Have this host fetch an image from another (`source`: a pull source block)."""
        body: dict[str, Any] = {"source": source, "auto_update": auto_update}
        if aliases:
            body["aliases"] = [{"name": alias} for alias in aliases]
        return self.start("POST", "/1.0/images", body)

    def upload_image(
        self, body: Any, *, content_type: str, filename: str = "", public: bool = False
    ) -> Operation:
        """Send an image's bytes (`body`: bytes or a sized iterable, streamed); LXD answers
        with the operation that unpacks it once the last byte is on its disk."""
        from .operation import Operation

        headers = {"Content-Type": content_type, self.header("public"): "1" if public else "0"}
        if filename:
            headers[self.header("filename")] = _header_safe(filename)
        result, _ = self.call("POST", "/1.0/images", data=body, headers=headers, timeout=UPLOAD_TIMEOUT)
        if not isinstance(result, Operation):
            raise LXDError(f"{self.label} answered an image upload without an operation")
        return result

    def put_image(self, fingerprint: str, image: dict, etag: str) -> None:
        """Replace the writable fields (WRITABLE) of an image; refused (412) if the ETag moved."""
        body = {key: image[key] for key in WRITABLE if key in image}
        headers = {"If-Match": etag} if etag else {}
        self.call("PUT", f"/1.0/images/{_q(fingerprint)}", json_body=body, headers=headers)

    def delete_image(self, fingerprint: str) -> Operation:
        return self.start("DELETE", f"/1.0/images/{_q(fingerprint)}", None)

    def add_image_alias(self, alias: str, fingerprint: str, description: str = "") -> None:
        """A taken alias is refused by LXD with 409 ("Alias ... already exists")."""
        body = {"name": alias, "target": fingerprint, "description": description}
        self.call("POST", "/1.0/images/aliases", json_body=body)

    def delete_image_alias(self, alias: str) -> None:
        self.call("DELETE", f"/1.0/images/aliases/{_q(alias)}", encoded_slash_ok=True)

    # -- export ------------------------------------------------------------------------

    def open_image_export(self, fingerprint: str) -> ImageExport:
        """Start an export (streamed; the caller closes `response`, e.g. through iter_chunks)."""
        response = self.request(
            "GET", f"/1.0/images/{_q(fingerprint)}/export", stream=True, timeout=EXPORT_TIMEOUT
        )
        try:
            if response.status_code != 200:
                self.parse_envelope(response)  # raises LXD's error
                raise LXDError(f"{self.label} answered HTTP {response.status_code} to an image export")
            kind = response.headers.get("Content-Type", "")
            match = re.search(r'boundary="?([^";]+)"?', kind)
            length = response.headers.get("Content-Length", "")
            return ImageExport(
                response,
                filename=_disposition_filename(response.headers.get("Content-Disposition", ""))
                or f"{fingerprint}.tar.gz",
                size=int(length) if length.isdigit() else None,
                boundary=match.group(1) if kind.startswith("multipart/") and match else "",
            )
        except BaseException:
            response.close()
            raise


def _header_safe(text: str) -> str:
    """A file name fit for an HTTP header value (LXD only records it)."""
    return "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in text)[:255]


def _disposition_filename(value: str) -> str:
    match = re.search(r'filename="?([^";]+)"?', value or "")
    return match.group(1).strip() if match else ""


# -- split images: multipart bodies, streamed both ways ---------------------------------------


class SplitUpload:
    """The multipart body LXD takes for a split image, built around the two files' bytes as
    they arrive (`chunks` yields the metadata's bytes, then the rootfs'), never joined.
    `len()` is the whole body's, so requests sends a Content-Length."""

    def __init__(self, chunks: Iterable[bytes], metadata_size: int, rootfs_size: int, names: tuple[str, str]):
        self.boundary = secrets.token_hex(16)
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        self._chunks = chunks
        self._sizes = (metadata_size, rootfs_size)
        self._heads = [
            (
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="{part}"; '
                f'filename="{_header_safe(name)}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            for part, name in zip(SPLIT_PARTS, names, strict=True)
        ]
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()

    def __len__(self) -> int:
        return sum(self._sizes) + len(self._heads[0]) + 2 + len(self._heads[1]) + len(self._tail)

    def __bool__(self) -> bool:
        return True

    def __iter__(self) -> Iterator[bytes]:
        yield self._heads[0]
        left = self._sizes[0]
        in_rootfs = False
        for chunk in self._chunks:
            while chunk:
                if in_rootfs:
                    yield chunk
                    break
                piece, chunk = chunk[:left], chunk[left:]
                left -= len(piece)
                if piece:
                    yield piece
                if left == 0:
                    yield b"\r\n" + self._heads[1]
                    in_rootfs = True
        if not in_rootfs:  # an empty metadata file, or a stream cut short (Metered says so)
            yield b"\r\n" + self._heads[1]
        yield self._tail


class MultipartReader:
    """Parts of a streamed multipart body, one at a time, without holding a part whole."""

    def __init__(self, chunks: Iterator[bytes], boundary: str):
        self._chunks = chunks
        self._delimiter = b"\r\n--" + boundary.encode()
        self._buffer = b"\r\n"  # the first delimiter has no line break before it
        self._ended = False

    def _fill(self) -> bool:
        for chunk in self._chunks:
            if chunk:
                self._buffer += chunk
                return True
        return False

    def next_part(self) -> dict[str, str] | None:
        """Skip to the next part; its headers (lower-case names), or None after the last."""
        for _ in self.data():  # the rest of the current part, if any
            pass
        while True:
            start = self._buffer.find(self._delimiter)
            if start >= 0 and len(self._buffer) >= start + len(self._delimiter) + 2:
                break
            if start < 0 and len(self._buffer) > len(self._delimiter):
                self._buffer = self._buffer[-len(self._delimiter) :]
            if not self._fill():
                raise LXDError("the image export ended inside its multipart framing")
        self._buffer = self._buffer[start + len(self._delimiter) :]
        if self._buffer.startswith(b"--"):
            self._ended = True
            return None
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            if len(self._buffer) > HEADERS_MAX or not self._fill():
                raise LXDError("the image export sent a multipart part without readable headers")
        head, self._buffer = self._buffer[:end], self._buffer[end + 4 :]
        self._in_part = True
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        return headers

    def data(self) -> Iterator[bytes]:
        """The current part's bytes, up to (not including) the next delimiter."""
        if not getattr(self, "_in_part", False):
            return
        keep = len(self._delimiter)
        while True:
            end = self._buffer.find(self._delimiter)
            if end >= 0:
                piece, self._buffer = self._buffer[:end], self._buffer[end:]
                self._in_part = False
                if piece:
                    yield piece
                return
            if len(self._buffer) > keep:
                piece, self._buffer = self._buffer[:-keep], self._buffer[-keep:]
                yield piece
            if not self._fill():
                raise LXDError("the image export ended in the middle of a part")


def part_name(headers: dict[str, str]) -> tuple[str, str]:
    """(form name, file name) from a part's Content-Disposition."""
    value = headers.get("content-disposition", "")
    name = re.search(r'\bname="([^"]*)"', value)
    filename = re.search(r'filename="([^"]*)"', value)
    return (name.group(1) if name else "", filename.group(1) if filename else "")
