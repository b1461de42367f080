"""The fleet page (home): every instance of every host, from the live model (hosts/fleet/model.py)
where it is fresh; a host asked directly gets its state columns lazily."""

from __future__ import annotations

from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import urlencode

from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_safe

from ..domain.roles import OPERATOR, has_role
from ..fleet.load import STATE_TIMEOUT, host_state_rows, load_fleet
from ..fleet.rows import (
    STATE_CELLS,
    STATE_SORTS,
    STATUS_CHOICES,
    FleetQuery,
    render_cell,
    render_row,
    render_rows,
)
from ..lxd.errors import UserError
from ..models import Host
from .access import host_view

ROWS_MARKER = "<!--fleet-rows-->"
COLUMNS = [
    ("host", "Host"),
    ("name", "Name"),
    ("type", "Type"),
    ("status", "Status"),
    ("ips", "IPv4 / IPv6"),
    ("image", "Image"),
    ("created", "Created"),
    ("snapshots", "Snapshots"),
    ("memory", "Memory"),
]


@require_safe
def fleet(request):
    """The page, or (for htmx: filters, sorting) the fleet partial, from the same view."""
    query = FleetQuery.from_params(request.GET)
    hosts = list(Host.objects.select_related("client_certificate"))
    host_names = [host.name for host in hosts]
    if query.host:
        hosts = [host for host in hosts if host.name == query.host]
    load = load_fleet(hosts, query, request.user.pk)
    context = {
        "load": load,
        "rows": load.rows,
        "query": query,
        "host_names": host_names,
        "status_choices": STATUS_CHOICES,
        "columns": [(key, label, _sort_params(query, key)) for key, label in COLUMNS],
        "state_sort": query.sort in STATE_SORTS,
        "state_query": urlencode(query.as_params(t=load.token)),
        "live_model": f"{load.version:.6f}" if load.version else "",
        "rows_html": mark_safe(ROWS_MARKER),  # noqa: S308 - a constant comment
    }
    partial = request.htmx and not request.htmx.boosted
    template = "hosts/partials/fleet_table.html" if partial else "hosts/fleet.html"
    response = render(request, template, context)
    # Hundreds of rows would be copied at every level of the template's nodes: put them in
    # once, at the end (each row is rendered by the row template, see render_rows).
    rows = render_rows(load.rows, can_operate=has_role(request.user, OPERATOR))
    response.content = response.content.replace(ROWS_MARKER.encode(), rows.encode(), 1)
    return response


def _sort_params(query: FleetQuery, key: str) -> str:
    desc = not query.desc if query.sort == key else False
    return urlencode(query.as_params(sort=key, dir="desc" if desc else "asc"))


def _state_error(request, host: Host, exc: UserError):
    context = {"host": host, "error": str(exc)}
    return render(request, "hosts/partials/fleet_state.html", context, status=exc.http_status)


@require_safe
@host_view(on_error=_state_error)
def fleet_state(request, host: Host):
    """One host's state columns, as out-of-band swaps into the fleet table (lazy part)."""
    query = FleetQuery.from_params(request.GET)
    try:
        rows = host_state_rows(host, request.GET.get("t", ""), request.user.pk)
    except FutureTimeout as exc:
        raise UserError(f"{host.name} gave no state within {sum(STATE_TIMEOUT):g} s", 504) from exc
    can_operate = has_role(request.user, OPERATOR)
    parts = []
    for row in rows:
        if not query.q or row.matches_text(query.q):
            if not query.status or row.status_key == query.status:
                parts.extend(render_cell(row, cell) for cell in STATE_CELLS)
        elif query.keep_with_state(row):
            # On the page only as a hidden, tentative row: its IPs show it matches.
            parts.append(render_row(row, can_operate=can_operate, oob=True))
        else:
            parts.append(f'<tr id="{row.dom_id}" hx-swap-oob="delete"></tr>')
    context = {"host": host, "fragments": mark_safe("".join(parts))}  # noqa: S308 - rendered fragments
    return render(request, "hosts/partials/fleet_state.html", context)
