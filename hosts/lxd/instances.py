"""Instance, image and operation intentions of LXDClient (mixed into LXDClient)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from .errors import InvalidName, LXDAPIError, LXDError

if TYPE_CHECKING:
    from .client import Operation

# LXD's own state actions (PUT /1.0/instances/<n>/state).
STATE_ACTIONS = ("start", "stop", "restart", "freeze", "unfreeze")


def _q(name: str) -> str:
    return quote(name, safe="")


def name_from_url(url: str) -> str:
    """'/1.0/instances/c1?project=p' -> 'c1' (listing URLs may carry a query string)."""
    return unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])


class ImageNotFound(LXDAPIError):
    def __init__(self, reference: str, host_label: str):
        super().__init__(
            f"image {reference!r} was not found on {host_label} (neither an alias nor a fingerprint)", 400
        )


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

    def profiles(self) -> list[str]:
        return sorted(name_from_url(url) for url in self.get("/1.0/profiles") or [])

    def profile(self, name: str) -> dict:
        return self.get(f"/1.0/profiles/{_q(name)}") or {}

    # -- images ------------------------------------------------------------------------

    def images(self) -> list[dict]:
        return self.get("/1.0/images", params={"recursion": 1}) or []

    def image(self, fingerprint: str) -> dict:
        return self.get(f"/1.0/images/{_q(fingerprint)}")

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

    def create_image_secret(self, fingerprint: str) -> tuple[str, str]:
        """A one-time download secret for a private image: (secret, token operation id)."""
        op = self.call("POST", f"/1.0/images/{_q(fingerprint)}/secret", json_body={})[0]
        return (op.data.get("metadata") or {}).get("secret", ""), op.id

    # -- writing (each returns the Operation; follow it with self.wait) -----------------

    def create_instance(self, body: dict) -> Operation:
        return self._async("POST", "/1.0/instances", body)

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
        return self._async("PUT", f"/1.0/instances/{_q(name)}/state", body)

    def delete_instance(self, name: str) -> Operation:
        return self._async("DELETE", f"/1.0/instances/{_q(name)}", None)

    def _async(self, method: str, path: str, body: Any) -> Operation:
        from .client import Operation

        result = self.call(method, path, json_body=body)[0]
        if not isinstance(result, Operation):  # a sync answer: already done
            return Operation({"id": "", "status_code": 200, "status": "Success", "metadata": result})
        return result

    # -- operations --------------------------------------------------------------------

    def wait_once(self, op_id: str, timeout: int) -> dict:
        """The seed's /wait, once: LXD answers 200 with the operation as it is after at most
        `timeout` seconds, finished or not, failed or not."""
        return self.get(
            f"/1.0/operations/{_q(op_id)}/wait",
            params={"timeout": int(timeout)},
            timeout=(self.timeout[0], timeout + 5),
            project_scoped=False,
        )
