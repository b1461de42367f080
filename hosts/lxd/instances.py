"""Instance and operation intentions of LXDClient (mixed into LXDClient)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote, urlsplit

from .errors import LXDAPIError, LXDError
from .operation import Operation

# LXD's own state actions (PUT /1.0/instances/<n>/state).
STATE_ACTIONS = ("start", "stop", "restart", "freeze", "unfreeze")
# What `PUT /1.0/instances/<n>` replaces (LXD-API.md §1.5): everything else LXD keeps.
PUT_FIELDS = ("architecture", "config", "devices", "ephemeral", "profiles", "stateful", "description")


def _q(name: str) -> str:
    return quote(name, safe="")


def name_from_url(url: str) -> str:
    """'/1.0/instances/c1?project=p' -> 'c1' (listing URLs may carry a query string)."""
    return unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])


class InstancesAPI:
    """Methods here use self.call / self.get / self.run from LXDClient."""

    # -- reading -----------------------------------------------------------------------

    def instances(self, recursion: int = 1, timeout: Any = None) -> list[dict]:
        """All instances of the project. recursion=1 is cheap (database only); recursion=2 adds
        every instance's state and snapshots and costs a state query per running instance."""
        return self.get("/1.0/instances", params={"recursion": recursion}, timeout=timeout) or []

    def instance(self, name: str, timeout: Any = None) -> dict:
        """One instance with its state and snapshots (instance_get_full, in 5.0.2)."""
        return self.get(f"/1.0/instances/{_q(name)}", params={"recursion": 1}, timeout=timeout)

    def instance_or_none(self, name: str, timeout: Any = None) -> dict | None:
        """The full instance, or None if LXD does not know it (any other failure raises)."""
        try:
            return self.instance(name, timeout=timeout)
        except LXDAPIError as exc:
            if exc.error_code == 404:
                return None
            raise

    def instance_statuses(self) -> dict[str, str]:
        """Every instance's status, without state (cheap: no per-instance gathering)."""
        return {i["name"]: i.get("status", "") for i in self.instances(recursion=1)}

    def instance_state(self, name: str, timeout: Any = None) -> dict:
        return self.get(f"/1.0/instances/{_q(name)}/state", timeout=timeout)

    def instance_logs(self, name: str) -> list[str]:
        return sorted(name_from_url(url) for url in self.get(f"/1.0/instances/{_q(name)}/logs") or [])

    def instance_log(self, name: str, filename: str, limit: int = 1 << 20) -> tuple[str, bool]:
        """The log's text (the last `limit` bytes) and whether it was cut."""
        response = self.request("GET", f"/1.0/instances/{_q(name)}/logs/{_q(filename)}", stream=True)
        try:
            if response.status_code != 200:
                self.parse_envelope(response)  # raises LXD's error
                raise LXDError(f"{self.label} answered HTTP {response.status_code} for log {filename}")
            data = b""
            truncated = False
            for chunk in response.iter_content(chunk_size=64 * 1024):
                data += chunk
                if len(data) > 2 * limit:
                    data, truncated = data[-limit:], True
            if len(data) > limit:
                data, truncated = data[-limit:], True
        finally:
            response.close()
        return data.decode("utf-8", errors="replace"), truncated

    def profile(self, name: str) -> dict:
        return self.get(f"/1.0/profiles/{_q(name)}") or {}

    def profiles(self) -> list[str]:
        return sorted(name_from_url(url) for url in self.get("/1.0/profiles") or [])

    # -- writing (each returns the Operation; follow it with self.wait) -----------------

    def create_instance(self, body: dict) -> Operation:
        return self.start("POST", "/1.0/instances", body)

    def change_state(
        self, name: str, action: str, *, timeout: int | None = None, force: bool = False
    ) -> Operation:
        """start/stop/restart/freeze/unfreeze. LXD reads `timeout: 0` as "force now", so a
        graceful stop or restart must carry a timeout of at least 1 s (or none: wait forever)."""
        if action not in STATE_ACTIONS:
            raise ValueError(f"unknown state action {action!r}")
        body: dict[str, Any] = {"action": action, "force": bool(force)}
        if action in ("stop", "restart") and not force:
            if timeout is None or timeout < 1:
                raise ValueError("a graceful stop needs a timeout of at least 1 s (timeout 0 means force)")
            body["timeout"] = int(timeout)
        return self.start("PUT", f"/1.0/instances/{_q(name)}/state", body)

    def instance_and_etag(self, name: str) -> tuple[dict, str]:
        """The instance as PUT wants it back, and the ETag to send with it."""
        data, response = self.call("GET", f"/1.0/instances/{_q(name)}")
        return data, response.headers.get("ETag", "")

    def put_instance(self, name: str, instance: dict, etag: str) -> Operation:
        """Replace an instance's writable fields (PUT drops what is not sent back); refused
        (412) if the ETag moved, which volatile keys make it do on every start."""
        body = {key: instance[key] for key in PUT_FIELDS if key in instance}
        headers = {"If-Match": etag} if etag else {}
        return self.start("PUT", f"/1.0/instances/{_q(name)}", body, headers=headers)

    def delete_instance(self, name: str) -> Operation:
        return self.start("DELETE", f"/1.0/instances/{_q(name)}", None)
