"""The audit trail, for admins: who changed what, when, and how it ended."""

from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_safe

from ..domain.roles import ADMIN
from ..models import AuditEntry
from .access import role_required

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
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    template = "hosts/audit.html#rows" if request.htmx else "hosts/audit.html"
    return render(request, template, {"page": page, "active": active, "outcomes": AuditEntry.Outcome.choices})
