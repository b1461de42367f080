"""A host's storage: pools (usage), volumes, custom volumes' life (create, resize, copy,
delete, snapshots) and their attachment to instances as disk devices.  No HTML.

Attaching writes an instance's devices, so it goes through the write policy like any other
device (hosts/policy.py: operators attach a custom volume from a pool, never a host path).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.conf import settings

from ..concurrency import parallel
from ..lxd import LXDAPIError, LXDClient, LXDError
from ..lxd.operation import parse_objects
from ..lxd.storage import CUSTOM
from ..models import AuditEntry, Host
from .actions import instance_lock
from .audit import audited, record
from .policy import PolicyRefused, check_write

# What the dir driver does with sizes (checked on 5.0.2): say it wherever a size is shown.
UNENFORCED_DRIVERS = ("dir",)
UNENFORCED_NOTE = (
    "The {driver} driver neither enforces a volume's size nor reports what a volume uses: LXD "
    "stores the size and accepts any, even below what the volume holds, and nothing changes on disk."
)
FULL, HIGH = 95, 80  # percent of a pool in use: shown in red, in amber
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(B|kB|KB|MB|GB|TB|PB|EB|KiB|MiB|GiB|TiB|PiB|EiB)?$")


def size_value(text: str) -> str:
    """A size as LXD reads it (10GiB, 500MB, a byte count); ValueError with the rule."""
    match = _SIZE.match((text or "").strip())
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a size: give a number and a unit, e.g. 10GiB or 500MB")
    return match.group(1) + (match.group(2) or "B")


def unenforced_note(driver: str) -> str:
    return UNENFORCED_NOTE.format(driver=driver) if driver in UNENFORCED_DRIVERS else ""


@dataclass
class PoolRow:
    name: str
    driver: str
    description: str = ""
    status: str = ""
    config: dict = field(default_factory=dict)
    used_by: tuple[tuple[str, str], ...] = ()
    space: dict | None = None  # {"used": bytes, "total": bytes}

    @classmethod
    def from_lxd(cls, data: dict, resources: dict | None = None) -> PoolRow:
        return cls(
            name=str(data.get("name") or ""),
            driver=str(data.get("driver") or ""),
            description=str(data.get("description") or ""),
            status=str(data.get("status") or ""),
            config=dict(data.get("config") or {}),
            used_by=parse_objects({"used_by": data.get("used_by") or []}),
            space=(resources or {}).get("space"),
        )

    @property
    def source(self) -> str:
        return str(self.config.get("source") or "")

    @property
    def percent(self) -> int | None:
        if not self.space or not self.space.get("total"):
            return None
        return min(100, round(100 * int(self.space.get("used") or 0) / int(self.space["total"])))

    @property
    def level(self) -> str:
        percent = self.percent or 0
        return "full" if percent >= FULL else "high" if percent >= HIGH else ""

    @property
    def note(self) -> str:
        if self.driver == "dir":
            return "dir: the usage is that of the file system the pool's directory is on."
        return ""


def pool_rows(client: LXDClient) -> list[PoolRow]:
    pools = sorted(client.storage_pools(), key=lambda p: str(p.get("name")))
    names = [str(p.get("name")) for p in pools]
    usage = parallel(client.pool_resources, names)
    return [PoolRow.from_lxd(p, r) for p, r in zip(pools, usage, strict=True)]


@dataclass
class VolumeRow:
    name: str  # "v1", or "v1/snap0" for a snapshot
    type: str  # custom, container, virtual-machine, image
    content_type: str = ""
    config: dict = field(default_factory=dict)
    used_by: tuple[tuple[str, str], ...] = ()
    description: str = ""

    @classmethod
    def from_lxd(cls, data: dict) -> VolumeRow:
        return cls(
            name=str(data.get("name") or ""),
            type=str(data.get("type") or ""),
            content_type=str(data.get("content_type") or ""),
            config=dict(data.get("config") or {}),
            used_by=parse_objects({"used_by": data.get("used_by") or []}),
            description=str(data.get("description") or ""),
        )

    @property
    def is_snapshot(self) -> bool:
        return "/" in self.name

    @property
    def size(self) -> str:
        return str(self.config.get("size") or "")

    @property
    def instances(self) -> list[str]:
        return [name for kind, name in self.used_by if kind == "instance"]


def volume_rows(client: LXDClient, pool: str) -> list[VolumeRow]:
    order = {CUSTOM: 0, "container": 1, "virtual-machine": 2, "image": 3}
    rows = [VolumeRow.from_lxd(v) for v in client.volumes(pool)]
    return sorted(rows, key=lambda v: (order.get(v.type, 9), v.name))


@dataclass
class Attachment:
    instance: str
    device: str
    path: str
    status: str


def attachments(client: LXDClient, pool: str, volume: VolumeRow) -> list[Attachment]:
    """Where the volume is attached: each instance's own disk devices that name it (one a
    profile adds is listed by LXD too, and is detached from the profile, not here)."""
    found = []
    for name in volume.instances:
        try:
            data = client.instance(name)
        except LXDError:
            continue
        for device, spec in sorted((data.get("devices") or {}).items()):
            if _is_volume_disk(spec, pool, volume.name):
                found.append(
                    Attachment(name, device, str(spec.get("path") or ""), str(data.get("status") or ""))
                )
    return found


def _is_volume_disk(spec, pool: str, volume: str) -> bool:
    return (
        isinstance(spec, dict)
        and spec.get("type") == "disk"
        and spec.get("pool") == pool
        and spec.get("source") == volume
    )


# -- writes ------------------------------------------------------------------------------------


def _client(host: Host) -> LXDClient:
    return host.client(timeout=(settings.LXD_PAGE_TIMEOUT[0], 30))


def _follow(client: LXDClient, entry, op, objects: tuple[tuple[str, str], ...] = ()) -> None:
    if op.id:
        entry.objects = objects
        entry.operation_id = op.id
        client.wait(op, timeout=settings.LXD_OPERATION_TIMEOUT)


def create_pool(request, host: Host, name: str, driver: str, config: dict[str, str]) -> None:
    with audited(request, "pool.create", host=host, target=name):
        _client(host).create_pool(name, driver, config)


def delete_pool(request, host: Host, name: str) -> None:
    client = _client(host)
    with audited(request, "pool.delete", host=host, target=name):
        try:
            client.delete_pool(name)
        except LXDAPIError as exc:
            if "in use" not in exc.message:
                raise
            used = PoolRow.from_lxd(client.storage_pool(name)).used_by
            raise InUse(exc.message, f"pool {name}", used) from exc


def create_volume(request, host: Host, pool: str, name: str, config: dict[str, str]) -> None:
    client = _client(host)
    with audited(request, "volume.create", host=host, target=f"{pool}/{name}") as entry:
        _follow(client, entry, client.create_volume(pool, name, config), (("volume", f"{pool}/{name}"),))


def resize_volume(request, host: Host, pool: str, name: str, size: str) -> None:
    client = _client(host)
    with audited(request, "volume.resize", host=host, target=f"{pool}/{name} size={size}") as entry:
        _follow(client, entry, client.patch_volume_config(pool, name, {"size": size}))


def copy_volume(request, host: Host, pool: str, name: str, new_name: str, target_pool: str) -> None:
    client = _client(host)
    with audited(
        request, "volume.copy", host=host, target=f"{pool}/{name} -> {target_pool}/{new_name}"
    ) as entry:
        op = client.copy_volume(pool, name, new_name, target_pool=target_pool)
        _follow(client, entry, op, (("volume", f"{target_pool}/{new_name}"),))


def delete_volume(request, host: Host, pool: str, name: str) -> None:
    client = _client(host)
    with audited(request, "volume.delete", host=host, target=f"{pool}/{name}") as entry:
        try:
            _follow(client, entry, client.delete_volume(pool, name))
        except LXDAPIError as exc:
            if "in use" not in exc.message:
                raise
            used = VolumeRow.from_lxd(client.volume(pool, name)).used_by
            raise InUse(exc.message, f"volume {name}", used) from exc


def snapshot_volume(request, host: Host, pool: str, name: str, snapshot: str) -> None:
    client = _client(host)
    with audited(request, "volume.snapshot.create", host=host, target=f"{pool}/{name}/{snapshot}") as entry:
        _follow(
            client,
            entry,
            client.create_volume_snapshot(pool, name, snapshot),
            (("volume", f"{pool}/{name}"),),
        )


def restore_volume_snapshot(request, host: Host, pool: str, name: str, snapshot: str) -> None:
    """LXD 5.0.2 refuses to restore a volume a running instance uses, with an HTTP 500."""
    client = _client(host)
    with audited(request, "volume.snapshot.restore", host=host, target=f"{pool}/{name}/{snapshot}") as entry:
        try:
            _follow(client, entry, client.restore_volume_snapshot(pool, name, snapshot))
        except LXDAPIError as exc:
            if "running instances" not in exc.message:
                raise
            raise InUse(
                exc.message, f"volume {name}", VolumeRow.from_lxd(client.volume(pool, name)).used_by
            ) from exc


def delete_volume_snapshot(request, host: Host, pool: str, name: str, snapshot: str) -> None:
    client = _client(host)
    with audited(request, "volume.snapshot.delete", host=host, target=f"{pool}/{name}/{snapshot}") as entry:
        _follow(client, entry, client.delete_volume_snapshot(pool, name, snapshot))


def attach_volume(request, host: Host, pool: str, volume: str, instance: str, device: str, path: str) -> str:
    """Add a disk device for a custom volume; the write policy decides first (an operator may
    attach a pool's volume).  Returns what happened, in words."""
    spec = {"type": "disk", "pool": pool, "source": volume, "path": path}
    target = f"{instance}:{device} <- {pool}/{volume} at {path}"
    try:
        check_write(request.user, host, devices={device: spec})
    except PolicyRefused as exc:
        record(
            request.user,
            "volume.attach",
            host=host,
            target=target,
            outcome=AuditEntry.Outcome.REFUSED,
            error=str(exc),
        )
        raise
    client = _client(host)
    with (
        instance_lock(host.name, instance),
        audited(request, "volume.attach", host=host, target=target) as entry,
    ):
        data, etag = client.instance_and_etag(instance)
        if device in (data.get("expanded_devices") or data.get("devices") or {}):
            raise DeviceTaken(instance, device)
        changed = {**data, "devices": {**(data.get("devices") or {}), device: spec}}
        try:
            _follow(client, entry, client.put_instance(instance, changed, etag))
        except LXDError as exc:
            raise _attach_failure(client, instance, device, data, exc) from exc
    running = str(data.get("status") or "").lower() == "running"
    return f"Attached {pool}/{volume} to {instance} at {path}" + (
        " (live: it is running)." if running else "."
    )


def _attach_failure(client: LXDClient, instance: str, device: str, before: dict, exc: LXDError) -> LXDError:
    """LXD's reason, and whether the device stayed: a running instance that cannot mount it is
    refused whole, the device is not added."""
    try:
        kept = device in (client.instance(instance).get("devices") or {})
    except LXDError:
        return exc
    if kept:
        return exc
    running = str(before.get("status") or "").lower() == "running"
    where = f"{instance} is running and LXD could not attach it live" if running else "LXD refused it"
    failure = LXDError(f"{where}: {exc}. The device was not added; nothing changed.")
    failure.http_status = getattr(exc, "http_status", 409)
    return failure


def detach_volume(request, host: Host, pool: str, volume: str, instance: str, device: str) -> None:
    target = f"{instance}:{device} <- {pool}/{volume}"
    check_write(request.user, host, devices={device: None})
    client = _client(host)
    with (
        instance_lock(host.name, instance),
        audited(request, "volume.detach", host=host, target=target) as entry,
    ):
        data, etag = client.instance_and_etag(instance)
        devices = dict(data.get("devices") or {})
        if not _is_volume_disk(devices.get(device), pool, volume):
            raise NotAttached(instance, device, pool, volume)
        del devices[device]
        _follow(client, entry, client.put_instance(instance, {**data, "devices": devices}, etag))


class InUse(LXDError):
    http_status = 409

    def __init__(self, reason: str, what: str, used_by: tuple[tuple[str, str], ...]):
        users = ", ".join(f"{kind} {who}" for kind, who in used_by) or "something LXD does not list"
        super().__init__(f"LXD refused: {reason}. The {what} is used by {users}: stop or detach them first.")


class DeviceTaken(LXDError):
    http_status = 409

    def __init__(self, instance: str, device: str):
        super().__init__(f"{instance} already has a device named {device}: choose another device name.")


class NotAttached(LXDError):
    http_status = 404

    def __init__(self, instance: str, device: str, pool: str, volume: str):
        super().__init__(f"{instance} has no device {device} for volume {pool}/{volume} of its own.")
