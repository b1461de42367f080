"""Storage pools (what a copy, a move or a restore may put an instance on), as a mixin of LXDClient."""

from __future__ import annotations

from urllib.parse import quote

from .instances import name_from_url


class StorageAPI:
    """Methods here use self.get from LXDClient."""

    def storage_pools(self) -> list[dict]:
        """Each pool with its name and driver, by name."""
        pools = self.get("/1.0/storage-pools", params={"recursion": 1}) or []
        return sorted(pools, key=lambda p: p.get("name", ""))

    def storage_pool_names(self) -> list[str]:
        return sorted(name_from_url(url) for url in self.get("/1.0/storage-pools") or [])

    def storage_pool_space(self, name: str) -> dict:
        """{"used": bytes, "total": bytes} of a pool (for a dir pool: its file system's)."""
        resources = self.get(f"/1.0/storage-pools/{quote(name, safe='')}/resources") or {}
        return resources.get("space") or {}
