"""The audit trail, for admins: who changed what, when, and how it ended."""

from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_safe

from ..domain.roles import ADMIN
from ..models import AuditEntry
from .access import role_required
from .sorting import Column, Sorting

COLUMNS = (
    Column("time", "Time", "time"),
    Column("user", "User", "username"),
    Column("action", "Action", "action"),
    Column("host", "Host", "host_name"),
    Column("object", "Object", "target"),
    Column("outcome", "Outcome", "outcome"),
    Column("error", "Error"),
    Column("operation", "Operation"),
)
FILTERS = {"user": "username", "action": "action__startswith", "host": "host_name", "outcome": "outcome"}


@require_safe
@role_required(ADMIN)
def audit_log(request):
    entries = AuditEntry.objects.all()
    active = {}
    for param, lookup in FILTERS.items():
        value = request.GET.get(param, "").strip()[:150]
        if value:
            entries = entries.filter(**{lookup: value})
            active[param] = value
    text = request.GET.get("q", "").strip()[:200]
    if text:
        entries = entries.filter(target__icontains=text) | entries.filter(error__icontains=text)
        active["q"] = text
    sorting = Sorting.from_params(request.GET, COLUMNS, default="time")
    page = Paginator(sorting.apply(entries), 50).get_page(request.GET.get("page"))
    template = "hosts/audit.html#rows" if request.htmx else "hosts/audit.html"
    context = {
        "page": page,
        "active": active,
        "outcomes": AuditEntry.Outcome.choices,
        "headers": sorting.headers(request.GET),
        "sorting": sorting.params(),
    }
    return render(request, template, context)
