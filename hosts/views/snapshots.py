"""Snapshots of one instance: list, create, details, restore, rename, delete.

Every write is an LXD operation the view follows to its end (client.wait) before answering, so
the page shows the outcome, not a guess; while it runs, the page shows a progress line (htmx
indicator).  Page or fragment: htmx requests get the panel, plain requests the whole page.
"""

from __future__ import annotations

import time
from datetime import datetime
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from ..domain.audit import audited
from ..domain.config_view import config_entries, config_value
from ..domain.roles import OPERATOR
from ..lxd import LXDError
from ..lxd.names import INSTANCE, SNAPSHOT
from ..models import Host
from .access import role_required
from .common import lxd_names, render_lxd_error
from .files import instance_url


class BadSnapshot(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


def validate_snapshot_name(raw: str | None, *, required: bool = True) -> str:
    name = (raw or "").strip()
    if not name:
        if required:
            raise BadSnapshot("Give the snapshot a name.")
        return ""
    if (error := SNAPSHOT.error(name)) is not None:
        raise BadSnapshot(error)
    return name


def when(value: str | None) -> datetime | None:
    """LXD's RFC 3339 times; the Go zero time (0001-01-01) means 'never'."""
    if not value or value.startswith("0001-01-01"):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _row(snap: dict) -> dict:
    return {
        "name": snap.get("name", ""),
        "created_at": when(snap.get("created_at")),
        "expires_at": when(snap.get("expires_at")),
        "last_used_at": when(snap.get("last_used_at")),
        "stateful": bool(snap.get("stateful")),
        "size": snap.get("size") if isinstance(snap.get("size"), int) and snap["size"] >= 0 else None,
    }


def snapshot_view(view):
    """Host lookup; bad input and LXD failures become the page (or panel) with the message."""

    @wraps(view)
    @lxd_names(name=INSTANCE, snap=SNAPSHOT)
    def wrapped(request, host, name, **kwargs):
        host_obj = get_object_or_404(Host, name=host)
        try:
            return view(request, host_obj, name, **kwargs)
        except BadSnapshot as exc:
            return _panel(request, host_obj, name, error=exc.message, status=exc.status)
        except LXDError as exc:
            if request.method == "GET" and not request.htmx:
                return render_lxd_error(request, exc, title=f"Snapshots of {name} on {host_obj.name}")
            return _panel(request, host_obj, name, error=str(exc), status=exc.http_status)

    return wrapped


def _panel(request, host: Host, name: str, *, outcome: str = "", error: str = "", status: int = 200):
    client = host.client()
    context = {
        "host": host,
        "name": name,
        "outcome": outcome,
        "error": error,
        "instance_url": instance_url(host, name),
    }
    try:
        context["instance"] = client.instance_brief(name)
        context["snapshots"] = [_row(s) for s in client.snapshots(name)]
    except LXDError as exc:
        context["error"] = f"{error} {exc}".strip() if error else str(exc)
        status = status if status != 200 else exc.http_status
    template = "hosts/partials/snapshot_panel.html" if request.htmx else "hosts/snapshots.html"
    return render(request, template, context, status=status)


def _done(request, host: Host, name: str, outcome: str):
    """After a write: the fresh panel for htmx, or back to the page (PRG) for a plain form."""
    if request.htmx:
        return _panel(request, host, name, outcome=outcome)
    messages.success(request, outcome)
    return redirect("instance-snapshots", host.name, name)


def _follow(client, op) -> float:
    """Follow a started operation to its end; returns how long that took."""
    started = time.monotonic()
    if hasattr(op, "id"):
        client.wait(op, timeout=settings.LXD_OPERATION_TIMEOUT)
    return time.monotonic() - started


@require_http_methods(["GET", "POST"])
@snapshot_view
def instance_snapshots(request, host: Host, name: str):
    if request.method == "POST":
        return snapshot_create(request, host.name, name)
    return _panel(request, host, name)


@role_required(OPERATOR)
@snapshot_view
def snapshot_create(request, host: Host, name: str):
    snap = validate_snapshot_name(request.POST.get("name"), required=False)
    stateful = request.POST.get("stateful") in ("on", "1", "yes")
    client = host.client()
    before = {s["name"] for s in client.snapshots(name)}
    if snap and snap in before:
        raise BadSnapshot(f"A snapshot named {snap} already exists on {name}: choose another name.", 409)
    with audited(request, "snapshot.create", host=host, target=f"{name}/{snap or '(automatic)'}") as entry:
        op = client.create_snapshot(name, snap or None, stateful=stateful)
        entry.operation_id = getattr(op, "id", "")
        took = _follow(client, op)
    if not snap:
        made = sorted({s["name"] for s in client.snapshots(name)} - before)
        snap = made[0] if made else "(automatic name)"
    return _done(request, host, name, f"Created snapshot {snap} of {name} in {took:.1f} s.")


@require_GET
@snapshot_view
def snapshot_detail(request, host: Host, name: str, snap: str):
    client = host.client()
    data = client.snapshot(name, snap)
    devices = [
        (device, sorted((k, config_value(v)) for k, v in (conf or {}).items()))
        for device, conf in sorted((data.get("expanded_devices") or {}).items())
    ]
    context = {
        "host": host,
        "name": name,
        "instance": client.instance_brief(name),
        "instance_url": instance_url(host, name),
        "snap": _row(data),
        "data": {k: data.get(k) for k in ("architecture", "ephemeral", "profiles")},
        "config": config_entries(data.get("expanded_config"), request.user),
        "devices": devices,
    }
    return render(request, "hosts/snapshot_detail.html", context)


def _confirm(request, host: Host, name: str, snap: str, action: str):
    context = {"host": host, "name": name, "snap": snap, "action": action}
    template = "hosts/partials/snapshot_confirm.html" if request.htmx else "hosts/snapshot_confirm.html"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
@role_required(OPERATOR)
@snapshot_view
def snapshot_restore(request, host: Host, name: str, snap: str):
    if request.method == "GET" or request.POST.get("confirm") != "yes":
        return _confirm(request, host, name, snap, "restore")
    client = host.client()
    if snap not in {s["name"] for s in client.snapshots(name)}:
        # LXD would accept the request and fail the operation (a 409 here): say it plainly.
        raise BadSnapshot(f"There is no snapshot {snap} of {name}.", 404)
    before = client.instance_brief(name)["status"]
    with audited(request, "snapshot.restore", host=host, target=f"{name}/{snap}") as entry:
        op = client.restore_snapshot(name, snap)
        entry.operation_id = getattr(op, "id", "")
        took = _follow(client, op)
    after = client.instance_brief(name)["status"]
    if before == "Running":
        how = f"LXD stopped {name}, restored it and started it again; it is now {after}."
    else:
        how = f"{name} is {after}."
    return _done(request, host, name, f"Restored snapshot {snap} in {took:.1f} s. {how}")


@require_http_methods(["POST"])
@role_required(OPERATOR)
@snapshot_view
def snapshot_rename(request, host: Host, name: str, snap: str):
    new = validate_snapshot_name(request.POST.get("new_name"))
    if new == snap:
        raise BadSnapshot(f"{snap} already has that name.", 400)
    client = host.client()
    if new in {s["name"] for s in client.snapshots(name)}:
        raise BadSnapshot(f"A snapshot named {new} already exists on {name}: choose another name.", 409)
    with audited(request, "snapshot.rename", host=host, target=f"{name}/{snap} -> {new}") as entry:
        op = client.rename_snapshot(name, snap, new)
        entry.operation_id = getattr(op, "id", "")
        _follow(client, op)
    return _done(request, host, name, f"Renamed snapshot {snap} to {new}.")


@require_http_methods(["GET", "POST"])
@role_required(OPERATOR)
@snapshot_view
def snapshot_delete(request, host: Host, name: str, snap: str):
    if request.method == "GET" or request.POST.get("confirm") != "yes":
        return _confirm(request, host, name, snap, "delete")
    client = host.client()
    with audited(request, "snapshot.delete", host=host, target=f"{name}/{snap}") as entry:
        op = client.delete_snapshot(name, snap)
        entry.operation_id = getattr(op, "id", "")
        _follow(client, op)
    return _done(request, host, name, f"Deleted snapshot {snap} of {name}.")
