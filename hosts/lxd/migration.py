"""Copying and moving instances between servers and within one (LXD-API.md §13.2), as a mixin
of LXDClient.

- pull: the source opens a migration operation (`"migration": true`) whose metadata holds the
  secrets (`control`, `fs`; `criu` for live); the target creates the instance with source type
  `migration`, mode `pull`, the source operation's URL, the source's certificate and the secrets,
  and connects to the source itself.
- push (the target cannot reach the source): the target opens first (mode `push`) and the source
  connects to it with the target's operation URL, certificate and secrets.
- within one server: source type `copy`, or a rename (`POST {"name": ...}`).

The target is given the instance's own (local) config without `volatile.*` but
`volatile.base_image`, its local devices, the profile list, `architecture` (without it the target
answers "Architecture isn't supported"), `ephemeral`, `description` and `type`.

The secrets are credentials: anyone holding them can connect to the operation's websockets.
They travel in `MigrationSecrets`, whose repr shows no value, and are taken out of the
operation's data so that nothing that prints or stores an Operation carries them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .errors import LXDError

if TYPE_CHECKING:
    from .operation import Operation

KEPT_VOLATILE = ("volatile.base_image",)  # the only volatile key that means something elsewhere
SECRET_KEYS = ("control", "fs", "criu")
OUT_OF_SPACE = ("no space left on device", "disk quota exceeded", "not enough space")


@dataclass(frozen=True)
class MigrationSecrets:
    values: dict[str, str] = field(repr=False)

    def __bool__(self) -> bool:
        return bool(self.values)


@dataclass(frozen=True)
class MigrationEnd:
    """One side of a transfer as LXD opened it: the operation (secrets removed) and its
    websocket URL as the other daemon must dial it."""

    operation: Operation
    secrets: MigrationSecrets
    url: str = ""


def _take_secrets(op: Operation) -> tuple[Operation, MigrationSecrets]:
    """The operation without its secrets (kept around, shown in reprs), and the secrets."""
    secrets = {k: str(op.metadata[k]) for k in SECRET_KEYS if k in op.metadata}
    return op.without_secrets(), MigrationSecrets(secrets)


def local_config(instance: dict) -> dict[str, str]:
    """The config a copy carries: the instance's own keys, LXD's bookkeeping left out."""
    return {
        k: v
        for k, v in (instance.get("config") or {}).items()
        if not k.startswith("volatile.") or k in KEPT_VOLATILE
    }


def user_config(instance: dict) -> dict[str, str]:
    """What a person set (no volatile key at all): what a policy judges and a copy must keep."""
    return {k: v for k, v in (instance.get("config") or {}).items() if not k.startswith("volatile.")}


def root_disk(instance: dict) -> tuple[str, dict]:
    """(device name, device) of the instance's root disk, as expanded from its profiles."""
    for devices in (instance.get("devices") or {}, instance.get("expanded_devices") or {}):
        for name, device in devices.items():
            if isinstance(device, dict) and device.get("type") == "disk" and device.get("path") == "/":
                return name, dict(device)
    return "root", {}


def root_pool(instance: dict) -> str:
    return root_disk(instance)[1].get("pool", "")


def copy_body(
    instance: dict, *, name: str, profiles: list[str] | None = None, pool: str | None = None
) -> dict:
    """The instance as a target must be asked to recreate it, under `name`: the given profile
    list (None: the instance's own) and the root disk in `pool` (None: as it is)."""
    devices = {k: dict(v) for k, v in (instance.get("devices") or {}).items()}
    if pool:
        device_name, device = root_disk(instance)
        local = devices.get(device_name)
        base = local if local is not None else {"type": "disk", "path": "/"}
        size = {"size": device["size"]} if "size" in device and local is None else {}
        devices[device_name] = {**base, **size, "pool": pool}
    return {
        "name": name,
        "type": instance.get("type") or "container",
        "architecture": instance.get("architecture", ""),
        "config": local_config(instance),
        "devices": devices,
        "profiles": list(instance.get("profiles") or []) if profiles is None else list(profiles),
        "ephemeral": bool(instance.get("ephemeral")),
        "description": instance.get("description") or "",
    }


def sent_bytes(operation: Operation | None) -> int | None:
    """How much a migration operation had sent or received (its `fs_progress`), if it said."""
    progress = operation.progress if operation is not None else None
    return progress.processed if progress else None


def profiles_root_pool(profiles: list[dict]) -> str:
    """The pool of the root disk a list of profiles gives (the last one that has one wins)."""
    pool = ""
    for profile in profiles:
        for device in (profile.get("devices") or {}).values():
            if isinstance(device, dict) and device.get("type") == "disk" and device.get("path") == "/":
                pool = device.get("pool", pool)
    return pool


def is_out_of_space(error: LXDError | str) -> bool:
    text = str(error).lower()
    return any(phrase in text for phrase in OUT_OF_SPACE)


class MigrationAPI:
    """Methods here use self.call / self.endpoint from LXDClient."""

    def _instance_url(self, name: str) -> str:
        return f"/1.0/instances/{quote(name, safe='')}"

    def operation_url(self, op_id: str, server_url: str) -> str:
        return f"{server_url}/1.0/operations/{quote(op_id, safe='')}"

    def migration_source(self, name: str, *, instance_only: bool) -> MigrationEnd:
        """Pull: open the source end.  `live` is always false (no CRIU): a running container
        would be copied as its files change under the copy, so callers stop it first."""
        body = {"migration": True, "live": False, "instance_only": instance_only}
        op = self.call("POST", self._instance_url(name), json_body=body)[0]
        return MigrationEnd(*_take_secrets(op))

    def migration_pull(
        self, body: dict, *, source_url: str, certificate: str, secrets: MigrationSecrets, instance_only: bool
    ) -> Operation:
        """Pull: the target creates the instance and fetches it from the source's operation."""
        request = dict(body)
        request["source"] = {
            "type": "migration",
            "mode": "pull",
            "operation": source_url,
            "certificate": certificate,
            "secrets": secrets.values,
            "instance_only": instance_only,
            "live": False,
        }
        return self.call("POST", "/1.0/instances", json_body=request)[0]

    def migration_sink(self, body: dict, *, instance_only: bool) -> MigrationEnd:
        """Push: the target opens its end first; the source then connects to it."""
        request = dict(body)
        request["source"] = {
            "type": "migration",
            "mode": "push",
            "instance_only": instance_only,
            "live": False,
        }
        op = self.call("POST", "/1.0/instances", json_body=request)[0]
        return MigrationEnd(*_take_secrets(op))

    def migration_push(
        self, name: str, *, target_url: str, certificate: str, secrets: MigrationSecrets, instance_only: bool
    ) -> Operation:
        body: dict[str, Any] = {
            "migration": True,
            "live": False,
            "instance_only": instance_only,
            "target": {"operation": target_url, "certificate": certificate, "secrets": secrets.values},
        }
        op = self.call("POST", self._instance_url(name), json_body=body)[0]
        return _take_secrets(op)[0]

    def copy_instance_here(
        self, body: dict, source_name: str, *, instance_only: bool, source_project: str | None = None
    ) -> Operation:
        """A copy within this server (any pool, from any project)."""
        request = dict(body)
        request["source"] = {"type": "copy", "source": source_name, "instance_only": instance_only}
        if source_project and source_project != self.project:
            request["source"]["project"] = source_project
        return self.call("POST", "/1.0/instances", json_body=request)[0]

    def move_to_pool(self, name: str, pool: str, *, instance_only: bool = False) -> Operation:
        """Within this server: the instance (same name) onto another pool (instance_pool_move)."""
        body = {"migration": True, "live": False, "pool": pool, "name": name, "instance_only": instance_only}
        return self.start("POST", self._instance_url(name), body)

    def rename_instance(self, name: str, new_name: str) -> Operation:
        return self.start("POST", self._instance_url(name), {"name": new_name})
