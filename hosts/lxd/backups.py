"""Instance backups (LXD-API.md §13.1), as a mixin of LXDClient.

- create: `POST /1.0/instances/<n>/backups` -> operation "Backing up instance";
- export: `GET .../backups/<b>/export` streams the tarball, with a Content-Length (HEAD is 501);
- restore anywhere: `POST /1.0/instances` with the tarball as an octet-stream body and
  `X-LXD-name` (and `X-LXD-pool`); LXD reads the whole body, then answers with an operation
  "Restoring backup" and the instance appears stopped.

What 5.0.2 answers for a body that is not a backup, and what this module makes of it:
  random bytes        500 "Unsupported compression"        -> NotABackup (400)
  a tarball, no index 400 "Backup is missing index.yaml"   -> NotABackup (400)
  an unknown pool     500 "Storage pool not found: ..."    -> PoolNotFound (404)
  a truncated backup  the operation fails; LXD removes what it had made
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests

from .errors import LXDAPIError

if TYPE_CHECKING:
    from .operation import Operation

# What 5.0.2 accepts as compression_algorithm ("none": an uncompressed tarball).
COMPRESSIONS = ("gzip", "bzip2", "xz", "lzma", "zstd", "none")
# Drivers whose backups can be "optimized" (the driver's own send stream instead of a tarball).
OPTIMIZED_DRIVERS = ("btrfs", "zfs")
EXPORT_TIMEOUT = (0.5, 120.0)
# LXD answers a restore only once it has read the whole body and unpacked the index.
IMPORT_TIMEOUT = (0.5, 600.0)


class NotABackup(LXDAPIError):
    def __init__(self, host_label: str, detail: str):
        super().__init__(f"{host_label} says this is not an LXD instance backup ({detail})", 400)


class PoolNotFound(LXDAPIError):
    def __init__(self, pool: str, host_label: str):
        super().__init__(f"there is no storage pool {pool!r} on {host_label}", 404)


def _q(name: str) -> str:
    return quote(name, safe="")


class BackupsAPI:
    """Methods here use self.call / self.request / self.get from LXDClient."""

    def _backups_url(self, instance: str, name: str | None = None) -> str:
        url = f"/1.0/instances/{_q(instance)}/backups"
        return url if name is None else f"{url}/{_q(name)}"

    def backups(self, instance: str) -> list[dict]:
        """Oldest first; names without the instance prefix LXD adds."""
        items = self.get(self._backups_url(instance), params={"recursion": 1}) or []
        for item in items:
            item["name"] = str(item.get("name", "")).rsplit("/", 1)[-1]
        return sorted(items, key=lambda b: b.get("created_at") or "")

    def create_backup(
        self,
        instance: str,
        name: str,
        *,
        instance_only: bool = False,
        optimized: bool = False,
        compression: str = "gzip",
        expires_at: dt.datetime | None = None,
    ) -> Operation:
        body: dict[str, Any] = {
            "name": name,
            "instance_only": instance_only,
            "optimized_storage": optimized,
            "compression_algorithm": compression,
        }
        if expires_at is not None:
            body["expires_at"] = expires_at.isoformat()
        return self.start("POST", self._backups_url(instance), body)

    def delete_backup(self, instance: str, name: str) -> Operation:
        return self.start("DELETE", self._backups_url(instance, name), None)

    def open_backup_export(self, instance: str, name: str) -> tuple[int | None, requests.Response]:
        """(size, the streamed response): read it with iter_chunks (which closes it)."""
        response = self.request(
            "GET", self._backups_url(instance, name) + "/export", stream=True, timeout=EXPORT_TIMEOUT
        )
        if response.status_code != 200:
            try:
                self.parse_envelope(response)  # raises LXD's error
            finally:
                response.close()
            raise LXDAPIError(f"{self.label} answered HTTP {response.status_code} to an export", 502)
        length = response.headers.get("Content-Length", "")
        return (int(length) if length.isdigit() else None), response

    def backup_size(self, instance: str, name: str) -> int | None:
        """The export's size (HEAD is not implemented: the GET is opened and dropped)."""
        size, response = self.open_backup_export(instance, name)
        response.close()
        return size

    def import_backup(
        self, data: bytes | Iterable[bytes], *, name: str, pool: str = "", timeout=IMPORT_TIMEOUT
    ) -> Operation:
        """Restore a backup tarball as a new instance `name` (streamed when `data` is an
        iterable: with `__len__` it goes with a Content-Length, else chunked)."""
        headers = {"Content-Type": "application/octet-stream", "X-LXD-name": name}
        if pool:
            headers["X-LXD-pool"] = pool
        response = self.request("POST", "/1.0/instances", data=data, headers=headers, timeout=timeout)
        try:
            return self._operation_or_sync(self.parse_envelope(response))
        except LXDAPIError as exc:
            text = exc.message
            if "Unsupported compression" in text or "missing index.yaml" in text:
                raise NotABackup(self.label, text) from exc
            if "Storage pool not found" in text:
                raise PoolNotFound(pool, self.label) from exc
            raise

    def _operation_or_sync(self, result: Any) -> Operation:
        from .operation import Operation

        if isinstance(result, Operation):
            return result
        return Operation({"id": "", "status_code": 200, "status": "Success", "metadata": result})
