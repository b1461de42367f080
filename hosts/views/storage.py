"""A host's storage: pools (usage bars) and their volumes for everyone; custom volumes'
create, resize, copy, delete, snapshots and attach/detach for operators; pool create and
delete for admins (hosts/domain/storage.py)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from ..domain import paths
from ..domain import storage as domain
from ..domain.audit import record
from ..domain.roles import ADMIN, OPERATOR
from ..lxd.names import DEVICE, INSTANCE, SNAPSHOT, STORAGE_POOL, STORAGE_VOLUME, NameRule
from ..models import AuditEntry, Host
from .access import host_view, role_required

POOL_DRIVERS = ("dir",)  # what the dashboard offers to create (others need host-side setup)


class Refused(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


def _refuse(request, host: Host, action: str, target: str, exc: Refused):
    record(
        request.user, action, host=host, target=target, outcome=AuditEntry.Outcome.REFUSED, error=exc.message
    )
    return render(
        request, "hosts/error.html", {"title": "Refused", "message": exc.message}, status=exc.status
    )


def _name(rule: NameRule, value: str | None) -> str:
    value = (value or "").strip()
    if (error := rule.error(value)) is not None:
        raise Refused(error)
    return value


def _size(value: str | None, required: bool = True) -> str:
    if not (value or "").strip() and not required:
        return ""
    try:
        return domain.size_value(value or "")
    except ValueError as exc:
        raise Refused(str(exc)) from exc


def pool_url(host: Host, pool: str) -> str:
    return reverse("pool-detail", args=[host.name, pool])


def volume_url(host: Host, pool: str, volume: str) -> str:
    return reverse("volume-detail", args=[host.name, pool, volume])


# -- pools -----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@host_view()
def pool_list(request, host: Host):
    if request.method == "POST":
        return pool_create(request, host=host.name)
    context = {"host": host, "pools": domain.pool_rows(host.client()), "drivers": POOL_DRIVERS}
    return render(request, "hosts/storage.html", context)


@role_required(ADMIN)
@host_view()
def pool_create(request, host: Host):
    name = request.POST.get("name", "").strip()
    try:
        name = _name(STORAGE_POOL, name)
        driver = request.POST.get("driver", "dir")
        if driver not in POOL_DRIVERS:
            raise Refused(f"The dashboard creates {', '.join(POOL_DRIVERS)} pools only.")
        source = request.POST.get("source", "").strip()
        if source and not source.startswith("/"):
            raise Refused("The source of a dir pool is an absolute directory on the host (or empty).")
    except Refused as exc:
        return _refuse(request, host, "pool.create", name, exc)
    domain.create_pool(request, host, name, driver, {"source": source} if source else {})
    messages.success(request, f"Storage pool {name} created on {host.name}.")
    return redirect(pool_url(host, name))


@require_http_methods(["GET", "POST"])
@host_view(pool=STORAGE_POOL)
def pool_detail(request, host: Host, pool: str):
    if request.method == "POST":
        return volume_create(request, host=host.name, pool=pool)
    client = host.client()
    row = domain.PoolRow.from_lxd(client.storage_pool(pool), client.pool_resources(pool))
    context = {
        "host": host,
        "pool": row,
        "volumes": domain.volume_rows(client, pool),
        "size_note": domain.unenforced_note(row.driver),
    }
    return render(request, "hosts/pool_detail.html", context)


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
@host_view(pool=STORAGE_POOL)
def pool_delete(request, host: Host, pool: str):
    if request.method == "GET" or request.POST.get("confirm") != "yes":
        row = domain.PoolRow.from_lxd(host.client().storage_pool(pool))
        return render(request, "hosts/pool_delete.html", {"host": host, "pool": row})
    domain.delete_pool(request, host, pool)
    messages.success(request, f"Storage pool {pool} deleted from {host.name}.")
    return redirect("pool-list", host=host.name)


# -- custom volumes --------------------------------------------------------------------------


@role_required(OPERATOR)
@host_view(pool=STORAGE_POOL)
def volume_create(request, host: Host, pool: str):
    name = request.POST.get("name", "").strip()
    try:
        name = _name(STORAGE_VOLUME, name)
        size = _size(request.POST.get("size"), required=False)
    except Refused as exc:
        return _refuse(request, host, "volume.create", f"{pool}/{name}", exc)
    domain.create_volume(request, host, pool, name, {"size": size} if size else {})
    messages.success(request, f"Volume {name} created in {pool}" + (f" ({size})." if size else "."))
    return redirect(volume_url(host, pool, name))


@require_safe
@host_view(pool=STORAGE_POOL, volume=STORAGE_VOLUME)
def volume_detail(request, host: Host, pool: str, volume: str):
    client = host.client()
    pool_row = domain.PoolRow.from_lxd(client.storage_pool(pool))
    row = domain.VolumeRow.from_lxd(client.volume(pool, volume))
    context = {
        "host": host,
        "pool": pool_row,
        "volume": row,
        "usage": client.volume_usage(pool, volume),
        "size_note": domain.unenforced_note(pool_row.driver),
        "snapshots": client.volume_snapshots(pool, volume),
        "attachments": domain.attachments(client, pool, row),
        "instances": sorted(str(i.get("name")) for i in client.instances(recursion=1)),
        "pools": sorted(str(p.get("name")) for p in client.storage_pools()),
    }
    return render(request, "hosts/volume_detail.html", context)


@require_POST
@role_required(OPERATOR)
@host_view(pool=STORAGE_POOL, volume=STORAGE_VOLUME)
def volume_resize(request, host: Host, pool: str, volume: str):
    try:
        size = _size(request.POST.get("size"))
    except Refused as exc:
        return _refuse(request, host, "volume.resize", f"{pool}/{volume}", exc)
    domain.resize_volume(request, host, pool, volume, size)
    driver = str(host.client().storage_pool(pool).get("driver") or "")
    note = domain.unenforced_note(driver)
    messages.success(request, f"Volume {volume} set to {size}." + (f" {note}" if note else ""))
    return redirect(volume_url(host, pool, volume))


@require_POST
@role_required(OPERATOR)
@host_view(pool=STORAGE_POOL, volume=STORAGE_VOLUME)
def volume_copy(request, host: Host, pool: str, volume: str):
    try:
        new_name = _name(STORAGE_VOLUME, request.POST.get("new_name"))
        target_pool = _name(STORAGE_POOL, request.POST.get("target_pool") or pool)
    except Refused as exc:
        return _refuse(request, host, "volume.copy", f"{pool}/{volume}", exc)
    domain.copy_volume(request, host, pool, volume, new_name, target_pool)
    messages.success(request, f"Volume {volume} copied to {target_pool}/{new_name}.")
    return redirect(volume_url(host, target_pool, new_name))


@require_http_methods(["GET", "POST"])
@role_required(OPERATOR)
@host_view(pool=STORAGE_POOL, volume=STORAGE_VOLUME)
def volume_delete(request, host: Host, pool: str, volume: str):
    if request.method == "GET" or request.POST.get("confirm") != "yes":
        row = domain.VolumeRow.from_lxd(host.client().volume(pool, volume))
        return render(request, "hosts/volume_delete.html", {"host": host, "pool": pool, "volume": row})
    domain.delete_volume(request, host, pool, volume)
    messages.success(request, f"Volume {volume} deleted from {pool}.")
    return redirect(pool_url(host, pool))


@require_POST
@role_required(OPERATOR)
@host_view(pool=STORAGE_POOL, volume=STORAGE_VOLUME)
def volume_attach(request, host: Host, pool: str, volume: str):
    """A disk device on the instance: pool + source + path (the write policy decides)."""
    instance = request.POST.get("instance", "")
    try:
        instance = _name(INSTANCE, instance)
        device = _name(DEVICE, request.POST.get("device") or volume)
        try:
            path = paths.normalise_path(request.POST.get("path") or f"/mnt/{volume}")
        except paths.BadPath as exc:
            raise Refused(str(exc)) from exc
        if path == "/":
            raise Refused(
                "A volume cannot be mounted over the instance's root: give a directory such as /mnt/data."
            )
    except Refused as exc:
        return _refuse(request, host, "volume.attach", f"{instance} <- {pool}/{volume}", exc)
    done = domain.attach_volume(request, host, pool, volume, instance, device, path)
    messages.success(request, done)
    return redirect(volume_url(host, pool, volume))


@require_POST
@role_required(OPERATOR)
@host_view(pool=STORAGE_POOL, volume=STORAGE_VOLUME)
def volume_detach(request, host: Host, pool: str, volume: str):
    try:
        instance = _name(INSTANCE, request.POST.get("instance"))
        device = _name(DEVICE, request.POST.get("device"))
    except Refused as exc:
        return _refuse(request, host, "volume.detach", f"{pool}/{volume}", exc)
    domain.detach_volume(request, host, pool, volume, instance, device)
    messages.success(request, f"Detached {pool}/{volume} from {instance} (device {device}).")
    return redirect(volume_url(host, pool, volume))


# -- volume snapshots ------------------------------------------------------------------------


@require_POST
@role_required(OPERATOR)
@host_view(pool=STORAGE_POOL, volume=STORAGE_VOLUME)
def volume_snapshot_create(request, host: Host, pool: str, volume: str):
    try:
        snapshot = _name(SNAPSHOT, request.POST.get("name"))
    except Refused as exc:
        return _refuse(request, host, "volume.snapshot.create", f"{pool}/{volume}", exc)
    existing = {s.get("name") for s in host.client().volume_snapshots(pool, volume)}
    if snapshot in existing:
        exc = Refused(f"{volume} already has a snapshot named {snapshot}: choose another name.", 409)
        return _refuse(request, host, "volume.snapshot.create", f"{pool}/{volume}/{snapshot}", exc)
    domain.snapshot_volume(request, host, pool, volume, snapshot)
    messages.success(request, f"Snapshot {snapshot} of {volume} taken.")
    return redirect(volume_url(host, pool, volume))


@require_POST
@role_required(OPERATOR)
@host_view(pool=STORAGE_POOL, volume=STORAGE_VOLUME, snap=SNAPSHOT)
def volume_snapshot_restore(request, host: Host, pool: str, volume: str, snap: str):
    domain.restore_volume_snapshot(request, host, pool, volume, snap)
    messages.success(request, f"{volume} restored to snapshot {snap}.")
    return redirect(volume_url(host, pool, volume))


@require_POST
@role_required(OPERATOR)
@host_view(pool=STORAGE_POOL, volume=STORAGE_VOLUME, snap=SNAPSHOT)
def volume_snapshot_delete(request, host: Host, pool: str, volume: str, snap: str):
    domain.delete_volume_snapshot(request, host, pool, volume, snap)
    messages.success(request, f"Snapshot {snap} of {volume} deleted.")
    return redirect(volume_url(host, pool, volume))
