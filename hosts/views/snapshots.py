"""Snapshots of one instance: list, create, details, restore, rename, delete.

Every write is an LXD operation the view follows to its end (client.wait) before answering, so
the page shows the outcome, not a guess; while it runs, the page shows a progress line (htmx
indicator).  Page or fragment: htmx requests get the panel, plain requests the whole page.
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from ..domain.audit import audited
from ..domain.config_view import config_entries, config_value
from ..domain.roles import OPERATOR, VIEWER
from ..lxd import LXDError
from ..lxd.errors import UserError
from ..lxd.names import INSTANCE, SNAPSHOT
from ..lxd.timestamps import parse_time
from ..models import Host
from .access import error_page, host_view, refusal
from .files import instance_url


def validate_snapshot_name(raw: str | None, *, required: bool = True) -> str:
    name = (raw or "").strip()
    if not name:
        if required:
            raise UserError("Give the snapshot a name.")
        return ""
    if (error := SNAPSHOT.error(name)) is not None:
        raise UserError(error)
    return name


def _row(snap: dict) -> dict:
    return {
        "name": snap.get("name", ""),
        "created_at": parse_time(snap.get("created_at")),
        "expires_at": parse_time(snap.get("expires_at")),
        "last_used_at": parse_time(snap.get("last_used_at")),
        "stateful": bool(snap.get("stateful")),
        "size": snap.get("size") if isinstance(snap.get("size"), int) and snap["size"] >= 0 else None,
    }


def _refused(request, host: Host, exc: UserError, name: str, **_):
    """A refusal or LXD's failure: the page with the message, or the panel for htmx and forms."""
    if request.method == "GET" and not request.htmx:
        return error_page(request, exc, title=f"Snapshots of {name} on {host.name}")
    return _panel(request, host, name, error=str(exc), status=exc.http_status)


def snapshot_view(role: str = VIEWER):
    return host_view(role, on_error=_refused, name=INSTANCE, snap=SNAPSHOT)


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
    template = "hosts/snapshots.html#panel" if request.htmx else "hosts/snapshots.html"
    return render(request, template, context, status=status)


def _done(request, host: Host, name: str, outcome: str):
    """After a write: the fresh panel for htmx, or back to the page (PRG) for a plain form."""
    if request.htmx:
        return _panel(request, host, name, outcome=outcome)
    messages.success(request, outcome)
    return redirect("instance-snapshots", host.name, name)


@require_http_methods(["GET", "POST"])
@snapshot_view()
def instance_snapshots(request, host: Host, name: str):
    if request.method == "POST":
        return refusal(request, OPERATOR, "snapshot_create") or _create(request, host, name)
    return _panel(request, host, name)


def _create(request, host: Host, name: str):
    snap = validate_snapshot_name(request.POST.get("name"), required=False)
    stateful = request.POST.get("stateful") in ("on", "1", "yes")
    client = host.client()
    before = {s["name"] for s in client.snapshots(name)}
    if snap and snap in before:
        raise UserError(f"A snapshot named {snap} already exists on {name}: choose another name.", 409)
    with audited(request, "snapshot.create", host=host, target=f"{name}/{snap or '(automatic)'}") as entry:
        took = entry.follow(client, client.create_snapshot(name, snap or None, stateful=stateful))
    if not snap:
        made = sorted({s["name"] for s in client.snapshots(name)} - before)
        snap = made[0] if made else "(automatic name)"
    return _done(request, host, name, f"Created snapshot {snap} of {name} in {took:.1f} s.")


@require_GET
@snapshot_view()
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
    template = "hosts/snapshot_confirm.html#confirm" if request.htmx else "hosts/snapshot_confirm.html"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
@snapshot_view(OPERATOR)
def snapshot_restore(request, host: Host, name: str, snap: str):
    if request.method == "GET" or request.POST.get("confirm") != "yes":
        return _confirm(request, host, name, snap, "restore")
    client = host.client()
    if snap not in {s["name"] for s in client.snapshots(name)}:
        # LXD would accept the request and fail the operation (a 409 here): say it plainly.
        raise UserError(f"There is no snapshot {snap} of {name}.", 404)
    before = client.instance_brief(name)["status"]
    with audited(request, "snapshot.restore", host=host, target=f"{name}/{snap}") as entry:
        took = entry.follow(client, client.restore_snapshot(name, snap))
    after = client.instance_brief(name)["status"]
    if before == "Running":
        how = f"{host.server_label} stopped {name}, restored it and started it again; it is now {after}."
    else:
        how = f"{name} is {after}."
    return _done(request, host, name, f"Restored snapshot {snap} in {took:.1f} s. {how}")


@require_http_methods(["POST"])
@snapshot_view(OPERATOR)
def snapshot_rename(request, host: Host, name: str, snap: str):
    new = validate_snapshot_name(request.POST.get("new_name"))
    if new == snap:
        raise UserError(f"{snap} already has that name.", 400)
    client = host.client()
    if new in {s["name"] for s in client.snapshots(name)}:
        raise UserError(f"A snapshot named {new} already exists on {name}: choose another name.", 409)
    with audited(request, "snapshot.rename", host=host, target=f"{name}/{snap} -> {new}") as entry:
        entry.follow(client, client.rename_snapshot(name, snap, new))
    return _done(request, host, name, f"Renamed snapshot {snap} to {new}.")


@require_http_methods(["GET", "POST"])
@snapshot_view(OPERATOR)
def snapshot_delete(request, host: Host, name: str, snap: str):
    if request.method == "GET" or request.POST.get("confirm") != "yes":
        return _confirm(request, host, name, snap, "delete")
    client = host.client()
    with audited(request, "snapshot.delete", host=host, target=f"{name}/{snap}") as entry:
        entry.follow(client, client.delete_snapshot(name, snap))
    return _done(request, host, name, f"Deleted snapshot {snap} of {name}.")
