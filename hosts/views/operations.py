"""Operations, per host and fleet-wide: list, cancel where LXD allows it, wait (the seed's /wait).
The list comes from the task log, which the relay keeps from every host's events, for hosts
whose live model is fresh (no LXD call); other hosts are asked as the seed did (GET
/1.0/operations), and the page says why.  An operation reaches a template only as the one message
shape the live path and the task log use (live/groups.py operation_message): never its
metadata, which holds exec and token secrets.  The page is live: the task log's pushes
update its rows (no polling)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from ..domain import tasklog
from ..domain.audit import audited
from ..domain.roles import OPERATOR, has_role
from ..fleet.model import freshness
from ..live.fragments import op_context
from ..live.groups import task_message
from ..live.operations import OpState
from ..lxd import LXDAPIError, LXDError, Operation
from ..lxd.errors import UserError
from ..lxd.names import OPERATION
from ..models import AuditEntry, Host
from .access import error_page, host_view
from .common import parallel_clients

MAX_WAIT = 60


def _row(host_name: str, op: Operation) -> dict:
    """An operation as a task row shows it."""
    return op_context(OpState(op.without_secrets()).message(host_name))


def _listing(client) -> tuple[list[Operation], LXDError | None]:
    try:
        return client.operations(), None
    except LXDError as exc:
        return [], exc


@require_safe
def operation_list(request):
    hosts = list(Host.objects.select_related("client_certificate"))
    host_names = [h.name for h in hosts]
    selected = request.GET.get("host", "")
    if selected:
        hosts = [h for h in hosts if h.name == selected]
    found = freshness(hosts)
    live = [h for h in hosts if found[h.pk].fresh]
    logged: dict[str, list[dict]] = {h.name: [] for h in live}
    for task in tasklog.current(logged):
        logged[task.host_name].append(op_context(task_message(task)))
    asked = dict(parallel_clients([h for h in hosts if not found[h.pk].fresh], _listing))
    groups = []
    for host in hosts:
        if host in asked:
            ops, error = asked[host]
            ops = sorted(ops, key=lambda op: (op.is_final, op.created_at))
            rows, note = [_row(host.name, op) for op in ops], found[host.pk].why_stale
        else:
            rows, error, note = logged[host.name], None, ""
        groups.append({"host": host, "rows": rows, "error": error, "note": note})
    recent = AuditEntry.objects.exclude(operation_id="")
    if selected:
        recent = recent.filter(host_name=selected)
    context = {
        "groups": groups,
        "host_names": host_names,
        "selected": selected,
        "recent": recent[:25],
        "can_operate": has_role(request.user, OPERATOR),
    }
    return render(request, "hosts/operation_list.html", context)


def _op_response(request, host: Host, row: dict, error: str = "", status: int = 200):
    context = {"host": host, "t": row, "error": error, "can_operate": has_role(request.user, OPERATOR)}
    if request.htmx:
        return HttpResponse(render_to_string("hosts/partials/task_row.html", context, request), status=status)
    return render(request, "hosts/operation_page.html", context, status=status)


def _gone(host: Host, op_id: str) -> dict:
    return _row(host.name, Operation(id=op_id, status="Gone"))


def _current(host: Host, client, op_id: str) -> dict:
    try:
        return _row(host.name, client.operation(op_id))
    except LXDError:
        return _gone(host, op_id)


@require_POST
@host_view(OPERATOR, op_id=OPERATION)
def operation_cancel(request, host: Host, op_id: str):
    client = host.client()
    try:
        with audited(request, "operation.cancel", host=host, target=op_id) as entry:
            entry.operation_id = op_id
            client.cancel_operation(op_id)
    except LXDError as exc:
        row = _current(host, client, op_id)
        return _op_response(
            request, host, row, f"{host.server_label} refused to cancel: {exc}", exc.http_status
        )
    if not request.htmx:
        messages.success(request, f"Operation {op_id} on {host.name} cancelled.")
        return redirect(reverse("operation-list") + f"?host={host.name}")
    return _op_response(request, host, _current(host, client, op_id))


@require_safe
@host_view(op_id=OPERATION)
def operation_wait(request, host: Host, op_id: str):
    """Wait up to ?timeout= seconds for the operation (LXD answers 200 even if it failed, and
    with the still-running operation on timeout: the row shows which)."""
    try:
        timeout = max(1, min(MAX_WAIT, int(request.GET.get("timeout", "10"))))
    except ValueError:
        return error_page(request, UserError("give whole seconds, 1 to 60", 400), title="Invalid timeout")
    try:
        op = host.client().wait_step(op_id, timeout)
    except LXDAPIError as exc:
        if exc.error_code == 404:
            message = "LXD no longer knows this operation (it forgets finished ones after 5 s)."
            return _op_response(request, host, _gone(host, op_id), message, 404)
        return error_page(request, exc)
    return _op_response(request, host, _row(host.name, op))
