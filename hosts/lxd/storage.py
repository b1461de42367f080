"""Storage intentions of LXDClient (mixed into LXDClient): pools, volumes, volume snapshots.

What LXD 5.0.2 does (checked on the lab's `dir` pools):
- pool usage comes from `/1.0/storage-pools/<p>/resources` (for `dir`, the file system the
  pool lives on); a volume's own usage (`.../state`) answers 500 "Not supported" on `dir`;
- a `dir` volume's `size` is stored and never enforced: any size is accepted, a size below
  what the volume holds too, and nothing changes on disk;
- volume create, update and delete are synchronous (later LXD makes them operations:
  `storage_and_profile_operations`, so both answers are followed alike); copies and volume
  snapshots are operations ("Copying storage volume", "Creating storage volume snapshot");
- a taken volume name is a 409 "Volume by that name already exists"; a pool in use is refused
  on delete ("The storage pool is currently in use");
- a custom volume hot-plugs into a running container; a mount LXD cannot make there is refused
  and the device is not added (while a stopped instance takes it and then fails to start);
- `GET .../volumes` lists custom, container, virtual-machine and image volumes and their
  snapshots (named `volume/snapshot`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .errors import LXDAPIError
from .instances import name_from_url

if TYPE_CHECKING:
    from .operation import Operation

CUSTOM = "custom"


def _q(name: str) -> str:
    return quote(name, safe="")


class StorageAPI:
    """Methods here use self.call / self.get / self._async from LXDClient."""

    # -- pools -------------------------------------------------------------------------

    def storage_pools(self) -> list[dict]:
        """Each pool with its name and driver, by name."""
        pools = self.get("/1.0/storage-pools", params={"recursion": 1}) or []
        return sorted(pools, key=lambda p: p.get("name", ""))

    def storage_pool_names(self) -> list[str]:
        return sorted(name_from_url(url) for url in self.get("/1.0/storage-pools") or [])

    def storage_pool(self, name: str) -> dict:
        return self.get(f"/1.0/storage-pools/{_q(name)}")

    def pool_resources(self, name: str) -> dict | None:
        """{"space": {"used", "total"}, "inodes": {...}}; None where the driver cannot tell."""
        try:
            return self.get(f"/1.0/storage-pools/{_q(name)}/resources")
        except LXDAPIError as exc:
            if exc.error_code in (400, 404, 500, 501):
                return None
            raise

    def storage_pool_space(self, name: str) -> dict:
        """{"used": bytes, "total": bytes} of a pool (for a dir pool: its file system's); {}
        where the driver cannot tell."""
        return (self.pool_resources(name) or {}).get("space") or {}

    def create_pool(self, name: str, driver: str, config: dict[str, str], description: str = "") -> None:
        body = {"name": name, "driver": driver, "config": config, "description": description}
        self.call("POST", "/1.0/storage-pools", json_body=body)

    def delete_pool(self, name: str) -> None:
        self.call("DELETE", f"/1.0/storage-pools/{_q(name)}")

    # -- volumes -------------------------------------------------------------------------

    def _volume_url(self, pool: str, name: str, kind: str = CUSTOM) -> str:
        return f"/1.0/storage-pools/{_q(pool)}/volumes/{_q(kind)}/{_q(name)}"

    def volumes(self, pool: str) -> list[dict]:
        """Every volume of a pool (all types, snapshots as `volume/snapshot`)."""
        return self.get(f"/1.0/storage-pools/{_q(pool)}/volumes", params={"recursion": 1}) or []

    def volume(self, pool: str, name: str, kind: str = CUSTOM) -> dict:
        return self.get(self._volume_url(pool, name, kind))

    def volume_usage(self, pool: str, name: str, kind: str = CUSTOM) -> int | None:
        """Bytes used, or None where the driver does not say (`dir`: "Not supported")."""
        try:
            state = self.get(self._volume_url(pool, name, kind) + "/state") or {}
        except LXDAPIError as exc:
            if exc.error_code in (400, 404, 500, 501):
                return None
            raise
        used = (state.get("usage") or {}).get("used")
        return int(used) if isinstance(used, int) else None

    def create_volume(
        self, pool: str, name: str, config: dict[str, str], *, content_type: str = "filesystem"
    ) -> Operation:
        body = {"name": name, "type": CUSTOM, "config": config, "content_type": content_type}
        return self.start("POST", f"/1.0/storage-pools/{_q(pool)}/volumes/{CUSTOM}", body)

    def copy_volume(
        self, pool: str, name: str, new_name: str, *, target_pool: str | None = None
    ) -> Operation:
        body = {"name": new_name, "type": CUSTOM, "source": {"type": "copy", "name": name, "pool": pool}}
        return self.start("POST", f"/1.0/storage-pools/{_q(target_pool or pool)}/volumes/{CUSTOM}", body)

    def patch_volume_config(self, pool: str, name: str, changes: dict[str, str]) -> Operation:
        """Set only the given config keys (`size` ...)."""
        return self.start("PATCH", self._volume_url(pool, name), {"config": changes})

    def delete_volume(self, pool: str, name: str) -> Operation:
        return self.start("DELETE", self._volume_url(pool, name), None)

    # -- volume snapshots --------------------------------------------------------------

    def volume_snapshots(self, pool: str, name: str) -> list[dict]:
        items = self.get(self._volume_url(pool, name) + "/snapshots", params={"recursion": 1}) or []
        for item in items:
            item["name"] = str(item.get("name", "")).rsplit("/", 1)[-1]
        return items

    def create_volume_snapshot(self, pool: str, name: str, snapshot: str) -> Operation:
        body: dict[str, Any] = {"name": snapshot} if snapshot else {}
        return self.start("POST", self._volume_url(pool, name) + "/snapshots", body)

    def delete_volume_snapshot(self, pool: str, name: str, snapshot: str) -> Operation:
        return self.start("DELETE", self._volume_url(pool, name) + f"/snapshots/{_q(snapshot)}", None)

    def restore_volume_snapshot(self, pool: str, name: str, snapshot: str) -> Operation:
        volume = self.volume(pool, name)
        body = {
            "config": volume.get("config") or {},
            "description": volume.get("description", ""),
            "restore": snapshot,
        }
        return self.start("PUT", self._volume_url(pool, name), body)
