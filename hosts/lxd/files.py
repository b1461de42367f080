"""File and snapshot intentions of LXDClient (mixed into LXDClient).

What LXD 5.0.2 does and this module hides (checked on the lab daemons):
- a directory GET is a bare, unsorted list of names: types come from one HEAD per entry;
- X-Lxd-* headers arrive Go-canonicalised (X-Lxd-Mode): requests' headers are case-insensitive;
  Incus names them X-Incus-* (its 6.0 still reads X-LXD-* but answers only with X-Incus-*):
  each is named through the client's `header` (the host's server kind, hosts/lxd/server.py);
- HEAD has no body, so a 404 cannot say whether the instance or the path is missing;
- symlinks are not followed: their GET body is the target, which 5.0.2 hands back already made
  absolute (`busybox` in /bin comes back as `/bin/busybox`);
- SFTP failures come back as HTTP 500 "sftp: ..." and are mapped to 404/409 with a plain message;
- X-LXD-mode must be "0644" (leading zero); mode/uid/gid only apply when the file is created;
- a stopped instance whose files were read and which was then renamed answers its first file
  request about 15 s late (Incus 6.0 too; `lxc file pull` shows it): a page asking in that
  window gets the host's time-out message, and a retry after it works;
- a download cut short (the browser went away; the dashboard then closes its stream at once)
  leaves LXD 5.0.2 unable to stop that instance for about 30 s.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import requests

from ..concurrency import parallel
from .bodies import read_at_most
from .errors import LXDAPIError, LXDError
from .operation import Operation

UPLOAD_TIMEOUT = (
    0.5,
    120.0,
)  # connect (TLS handshake included) must be quick; LXD answers a push only after the last byte
DOWNLOAD_TIMEOUT = (0.5, 60.0)
LIST_WORKERS = 8
LIST_LIMIT = 2000  # entries whose metadata we fetch; beyond this only names are shown
LIST_SHOWN = 10_000  # entries listed at all; the rest are counted ("N more")
PATH_MAX = 4096  # Linux's limit on a path, and so on a symlink's target


class PathNotFound(LXDAPIError):
    def __init__(self, instance: str, path: str):
        super().__init__(f"{path} does not exist in {instance}", 404)
        self.path = path


class PathConflict(LXDAPIError):
    """The path exists but is the wrong kind of thing, or a directory is not empty."""

    def __init__(self, message: str):
        super().__init__(message, 409)


@dataclass(frozen=True)
class FileInfo:
    path: str
    type: str  # "file", "directory", "symlink"; "unknown" past LIST_LIMIT; "unaddressable"
    mode: str = ""  # "0644"
    uid: int | None = None
    gid: int | None = None
    modified: str = ""
    size: int | None = None  # only a GET tells (HEAD has no Content-Length on 5.0.2)
    target: str | None = None  # a symlink's target, as stored

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1] or "/"

    @property
    def is_dir(self) -> bool:
        return self.type == "directory"

    @property
    def is_file(self) -> bool:
        return self.type == "file"

    @property
    def is_link(self) -> bool:
        return self.type == "symlink"

    @property
    def symbolic_mode(self) -> str:
        """'drwxr-xr-x', as ls shows it."""
        if not self.mode:
            return ""
        kind = {"directory": stat.S_IFDIR, "symlink": stat.S_IFLNK}.get(self.type, stat.S_IFREG)
        return stat.filemode(kind | int(self.mode, 8))


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _info(path: str, headers: Any, prefix: str, size: int | None = None) -> FileInfo:
    return FileInfo(
        path=path,
        type=headers.get(prefix + "Type") or "file",
        mode=headers.get(prefix + "Mode") or "",
        uid=_int_or_none(headers.get(prefix + "Uid")),
        gid=_int_or_none(headers.get(prefix + "Gid")),
        modified=headers.get(prefix + "Modified") or "",
        size=size,
    )


def _sftp_message(instance: str, path: str, exc: LXDAPIError) -> LXDAPIError:
    """Turn LXD's 'sftp: "open /x: is a directory" (SSH_FX_FAILURE)' into a fitting error."""
    text = exc.message
    if exc.error_code == 404 and text in ("Not Found", "not found"):
        return PathNotFound(instance, path)
    if "not a directory" in text:
        return PathConflict(f"a part of {path} is a file, not a directory")
    if "is a directory" in text:
        return PathConflict(f"{path} is a directory")
    if "directory not empty" in text:
        return PathConflict(f"{path} is a directory that is not empty: delete what is inside first")
    if "no such file" in text:
        return PathNotFound(instance, path)
    return exc


class FilesAPI:
    """Methods here use self.request / self.call / self.run from LXDClient."""

    # -- files ------------------------------------------------------------------------

    def _files_url(self, instance: str) -> str:
        return f"/1.0/instances/{quote(instance, safe='')}/files"

    def _raise_for_files(self, response: requests.Response, instance: str, path: str) -> None:
        if response.status_code < 400:
            return
        if response.status_code == 404 and not self.read_body(response):
            raise PathNotFound(instance, path)  # a HEAD: no body to tell us more
        try:
            self.parse_envelope(response)
        except LXDAPIError as exc:
            raise _sftp_message(instance, path, exc) from exc
        raise LXDAPIError(f"HTTP {response.status_code} from the files API", response.status_code)

    def file_info(self, instance: str, path: str) -> FileInfo:
        """HEAD: type, mode, owner (no size, no symlink target)."""
        response = self.request("HEAD", self._files_url(instance), params={"path": path})
        response.close()
        if response.status_code >= 400 and response.status_code != 404:
            # A HEAD error has no body; the same GET says why ("not a directory" ...).
            failed = self.request("GET", self._files_url(instance), params={"path": path}, stream=True)
            try:
                self._raise_for_files(failed, instance, path)
            finally:
                failed.close()
        self._raise_for_files(response, instance, path)
        return _info(path, response.headers, self.kind.header_prefix)

    def file_info_or_none(self, instance: str, path: str) -> FileInfo | None:
        try:
            return self.file_info(instance, path)
        except PathNotFound:
            return None

    def symlink_target(self, instance: str, path: str) -> str:
        """The target as LXD gives it, at most PATH_MAX bytes (cut with "…" past that)."""
        response = self.request("GET", self._files_url(instance), params={"path": path}, stream=True)
        try:
            self._raise_for_files(response, instance, path)
            data, more = read_at_most(response, PATH_MAX)
        finally:
            response.close()
        text = data.decode("utf-8", "replace")
        return text + "…" if more else text

    def list_directory(self, instance: str, path: str) -> tuple[list[FileInfo], int]:
        """(entries, how many more were not listed): directories first, then by name.  The
        first LIST_LIMIT names come with their metadata, up to LIST_SHOWN with names only."""
        names = self.get(self._files_url(instance), params={"path": path})
        self.kind  # noqa: B018 - known before the probes below run in parallel (one GET /1.0 at most)
        if not isinstance(names, list):
            raise PathConflict(f"{path} is not a directory")
        prefix = path.rstrip("/") + "/"
        not_shown = max(0, len(names) - LIST_SHOWN)
        wanted = [prefix + str(n) for n in names[:LIST_SHOWN]]
        to_probe, rest = wanted[:LIST_LIMIT], wanted[LIST_LIMIT:]

        def probe(entry: str) -> FileInfo:
            try:
                info = self.file_info(instance, entry)
                if info.is_link:
                    target = self.symlink_target(instance, entry)
                    info = replace(info, target=target)
                return info
            except PathNotFound:
                if "\ufffd" in entry:  # LXD's JSON replaced bytes that are not UTF-8: unreachable
                    return FileInfo(entry, "unaddressable")
                return FileInfo(entry, "gone")  # deleted between the listing and the HEAD

        # At most LIST_WORKERS requests at a time to the host: one chunk of entries each.
        chunks = [to_probe[i::LIST_WORKERS] for i in range(LIST_WORKERS)]
        probed = parallel(lambda chunk: [probe(entry) for entry in chunk], chunks)
        entries = [e for chunk in probed for e in chunk if e.type != "gone"]
        entries += [FileInfo(entry, "unknown") for entry in rest]
        entries.sort(key=lambda e: (not e.is_dir, e.name.casefold(), e.name))
        return entries, not_shown

    def open_file(
        self, instance: str, path: str, *, timeout: tuple[float, float] = DOWNLOAD_TIMEOUT
    ) -> tuple[FileInfo, requests.Response]:
        """A streamed GET of a regular file; the caller reads it with iter_chunks (which closes it)."""
        response = self.request(
            "GET", self._files_url(instance), params={"path": path}, stream=True, timeout=timeout
        )
        try:
            self._raise_for_files(response, instance, path)
            length = response.headers.get("Content-Length")
            size = int(length) if length and length.isdigit() else None
            info = _info(path, response.headers, self.kind.header_prefix, size)
            if not info.is_file:
                kind = "a directory" if info.is_dir else f"a {info.type}"
                raise PathConflict(f"{path} is {kind}, not a file")
        except BaseException:
            response.close()
            raise
        return info, response

    def read_file(self, instance: str, path: str, limit: int) -> tuple[FileInfo, bytes, bool]:
        """The first `limit` bytes of a file: (info, data, truncated)."""
        info, response = self.open_file(instance, path, timeout=self.timeout)
        try:
            data, more = read_at_most(response, limit)
        finally:
            response.close()
        return info, data, more or (info.size or 0) > limit

    def push_file(
        self,
        instance: str,
        path: str,
        data: bytes | Iterable[bytes],
        *,
        mode: str | None = None,
        uid: int | None = None,
        gid: int | None = None,
        timeout: tuple[float, float] = UPLOAD_TIMEOUT,
    ) -> None:
        """Write a file (overwriting).  `data` may be a sized iterable: it is streamed, never joined."""
        headers = {
            "Content-Type": "application/octet-stream",
            self.header("type"): "file",
            self.header("write"): "overwrite",
        }
        headers.update(self._ownership(mode, uid, gid))
        response = self.request(
            "POST",
            self._files_url(instance),
            params={"path": path},
            data=data,
            headers=headers,
            timeout=timeout,
        )
        self._raise_for_files(response, instance, path)

    def make_directory(
        self,
        instance: str,
        path: str,
        *,
        mode: str | None = None,
        uid: int | None = None,
        gid: int | None = None,
    ) -> None:
        """Create a directory.  LXD answers 200 even when a *file* is there, so look first."""
        existing = self.file_info_or_none(instance, path)
        if existing is not None:
            kind = "directory" if existing.is_dir else existing.type
            raise PathConflict(f"{path} already exists (a {kind})")
        headers = {self.header("type"): "directory", **self._ownership(mode, uid, gid)}
        response = self.request("POST", self._files_url(instance), params={"path": path}, headers=headers)
        self._raise_for_files(response, instance, path)

    def delete_file(self, instance: str, path: str) -> None:
        """Delete a file, a symlink or an empty directory."""
        response = self.request("DELETE", self._files_url(instance), params={"path": path})
        self._raise_for_files(response, instance, path)

    # -- snapshots --------------------------------------------------------------------

    def _snapshots_url(self, instance: str, name: str | None = None) -> str:
        url = f"/1.0/instances/{quote(instance, safe='')}/snapshots"
        return url if name is None else f"{url}/{quote(name, safe='')}"

    def instance_brief(self, instance: str) -> dict:
        """The instance's name, type and status (what the files and snapshots pages show)."""
        data = self.get(f"/1.0/instances/{quote(instance, safe='')}") or {}
        return {
            "name": data.get("name", instance),
            "type": data.get("type", ""),
            "status": data.get("status", ""),
        }

    def snapshots(self, instance: str) -> list[dict]:
        """Oldest first, as LXD keeps them."""
        items = self.get(self._snapshots_url(instance), params={"recursion": 1}) or []
        for item in items:
            item["name"] = str(item.get("name", "")).rsplit("/", 1)[-1]
        return sorted(items, key=lambda s: s.get("created_at") or "")

    def snapshot(self, instance: str, name: str) -> dict:
        item = self.get(self._snapshots_url(instance, name)) or {}
        item["name"] = str(item.get("name", name)).rsplit("/", 1)[-1]
        return item

    def create_snapshot(self, instance: str, name: str | None = None, *, stateful: bool = False) -> Operation:
        """Start a snapshot; without a name LXD picks snapN or snapshots.pattern."""
        body: dict[str, Any] = {"stateful": stateful}
        if name:
            body["name"] = name
        return self.start("POST", self._snapshots_url(instance), body)

    def rename_snapshot(self, instance: str, name: str, new_name: str) -> Operation:
        """A taken name is refused synchronously with 409."""
        return self.start("POST", self._snapshots_url(instance, name), {"name": new_name})

    def delete_snapshot(self, instance: str, name: str) -> Operation:
        return self.start("DELETE", self._snapshots_url(instance, name), None)

    def restore_snapshot(self, instance: str, name: str) -> Operation:
        """LXD stops a running instance, restores, and starts it again."""
        return self.start("PUT", f"/1.0/instances/{quote(instance, safe='')}", {"restore": name})

    def _ownership(self, mode: str | None, uid: int | None, gid: int | None) -> dict[str, str]:
        headers = {}
        if mode:
            if not (len(mode) == 4 and mode.startswith("0")):
                raise LXDError(f"mode {mode!r} must be four octal digits with a leading zero")
            headers[self.header("mode")] = mode
        if uid is not None:
            headers[self.header("uid")] = str(uid)
        if gid is not None:
            headers[self.header("gid")] = str(gid)
        return headers
