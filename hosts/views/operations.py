"""Operations, per host and fleet-wide: list, cancel (where LXD allows), wait (the seed's /wait).
Every operation goes through hosts.operations.safe_operation before a template sees it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST, require_safe

from ..domain.audit import audited
from ..domain.operations import operation_sort_key, safe_operation
from ..domain.roles import OPERATOR
from ..lxd import LXDAPIError, LXDError
from ..lxd.names import OPERATION
from ..models import AuditEntry, Host
from .access import role_required
from .common import lxd_names, render_lxd_error

MAX_WAIT = 60


def _listing(client):
    try:
        return [safe_operation(op) for op in client.operations()], None
    except LXDError as exc:
        return [], exc


@require_safe
def operation_list(request):
    hosts = list(Host.objects.select_related("client_certificate"))
    host_names = [h.name for h in hosts]
    selected = request.GET.get("host", "")
    if selected:
        hosts = [h for h in hosts if h.name == selected]
    clients = [h.client() for h in hosts]
    results = []
    if clients:
        with ThreadPoolExecutor(max_workers=min(16, len(clients))) as pool:
            results = list(pool.map(_listing, clients))
    groups = []
    for host, (ops, error) in zip(hosts, results, strict=True):
        groups.append({"host": host, "operations": sorted(ops, key=operation_sort_key), "error": error})
    recent = AuditEntry.objects.exclude(operation_id="")
    if selected:
        recent = recent.filter(host_name=selected)
    context = {
        "groups": groups,
        "host_names": host_names,
        "selected": selected,
        "running": sum(1 for g in groups for op in g["operations"] if not op["final"]),
        "recent": recent[:25],
    }
    template = "hosts/partials/operation_table.html" if request.htmx else "hosts/operation_list.html"
    return render(request, template, context)


def _host(host: str) -> Host:
    return get_object_or_404(Host.objects.select_related("client_certificate"), name=host)


def _op_response(request, host: Host, op: dict, error: str = "", status: int = 200):
    if request.htmx:
        html = render_to_string(
            "hosts/partials/operation_row.html", {"host": host, "op": op, "error": error}, request=request
        )
        return HttpResponse(html, status=status)
    return render(
        request, "hosts/operation_page.html", {"host": host, "op": op, "error": error}, status=status
    )


def _gone(op_id: str) -> dict:
    return safe_operation({"id": op_id, "status": "Gone", "status_code": 0})


@require_POST
@role_required(OPERATOR)
@lxd_names(op_id=OPERATION)
def operation_cancel(request, host, op_id):
    host = _host(host)
    client = host.client()
    try:
        with audited(request, "operation.cancel", host=host, target=op_id) as entry:
            entry.operation_id = op_id
            client.cancel_operation(op_id)
    except LXDError as exc:
        try:
            op = safe_operation(client.operation(op_id).data)
        except LXDError:
            op = _gone(op_id)
        return _op_response(request, host, op, f"LXD refused to cancel: {exc}", exc.http_status)
    try:
        op = safe_operation(client.operation(op_id).data)
    except LXDError:
        op = _gone(op_id)
    if not request.htmx:
        messages.success(request, f"Operation {op_id} on {host.name} cancelled.")
        return redirect(f"/operations/?host={host.name}")
    return _op_response(request, host, op)


@require_safe
@lxd_names(op_id=OPERATION)
def operation_wait(request, host, op_id):
    """Wait up to ?timeout= seconds for the operation (LXD answers 200 even if it failed, and
    with the still-running operation on timeout: the row shows which)."""
    host = _host(host)
    try:
        timeout = max(1, min(MAX_WAIT, int(request.GET.get("timeout", "10"))))
    except ValueError:
        return render(
            request,
            "hosts/error.html",
            {"title": "Invalid timeout", "message": "give whole seconds, 1 to 60"},
            status=400,
        )
    try:
        op = safe_operation(host.client().wait_once(op_id, timeout))
    except LXDAPIError as exc:
        if exc.error_code == 404:
            message = "LXD no longer knows this operation (it forgets finished ones after 5 s)."
            return _op_response(request, host, _gone(op_id), message, 404)
        return render_lxd_error(request, exc)
    except LXDError as exc:
        return render_lxd_error(request, exc)
    return _op_response(request, host, op)
