"""The task log: every LXD operation seen on any host, whoever started it, kept for good.

    /tasks/                                the log, filtered by host, instance and outcome
    /tasks/?host=lab1&instance=c1          one instance's history; with htmx, only the table
                                           (an instance page includes it with hx-get)

Rows change live over the page's websocket (topic `tasks` with the same filters).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from ..live.fragments import op_context
from ..live.groups import task_message
from ..lxd.names import INSTANCE
from ..models import AuditEntry, Host, Task, validate_host_name

PAGE_SIZE = 50


def _validate_instance_name(value: str) -> None:
    if error := INSTANCE.error(value):
        raise forms.ValidationError(error)


class TaskFilterForm(forms.Form):
    host = forms.CharField(required=False, max_length=63, validators=[validate_host_name])
    instance = forms.CharField(required=False, max_length=63, validators=[_validate_instance_name])
    status = forms.ChoiceField(required=False, choices=[("", "any outcome"), *Task.Status.choices])


def _rows(page) -> list[dict]:
    """Each task as the live push renders it (the same partial, the same context)."""
    rows = []
    for task in page:
        row = task_message(task)
        row["username"] = task.username or task.audit_username or ""
        rows.append(op_context(row))
    return rows


@require_safe
def task_list(request):
    form = TaskFilterForm(request.GET)
    if not form.is_valid():
        context = {"form": form, "rows": [], "hosts": Host.objects.values_list("name", flat=True)}
        return render(request, "hosts/task_list.html", context, status=400)
    host, instance, status = (form.cleaned_data[k] for k in ("host", "instance", "status"))
    tasks = Task.objects.all()
    if host:
        tasks = tasks.filter(host_name=host)
    if instance:
        tasks = tasks.filter(targets__contains=f" instance:{instance} ")
    if status:
        tasks = tasks.filter(status=status)
    # Started from the dashboard: the audit trail knows who, even when the task was
    # written before the view recorded its audit entry.
    audit = AuditEntry.objects.filter(
        operation_id=OuterRef("operation_id"), host_name=OuterRef("host_name")
    ).exclude(username="")
    tasks = tasks.annotate(audit_username=Subquery(audit.values("username")[:1]))
    page = Paginator(tasks, PAGE_SIZE).get_page(request.GET.get("page"))
    filters = {k: v for k, v in (("host", host), ("instance", instance), ("status", status)) if v}
    context = {
        "form": form,
        "page": page,
        "rows": _rows(page),
        "filters": filters,
        "hosts": sorted(set(Host.objects.values_list("name", flat=True)) | ({host} if host else set())),
        "rows_url": reverse("task-list") + ("?" + urlencode(filters) if filters else ""),
        "filter_query": urlencode(filters),
        # Only the first page takes new rows live: later pages would shift under the reader.
        "live_topics": "tasks,operations" if page.number == 1 else "operations",
    }
    if request.htmx and request.htmx.target == "task-rows":
        return render(request, "hosts/partials/task_rows.html", context)
    if request.htmx:
        return render(request, "hosts/partials/task_table.html", context)
    return render(request, "hosts/task_list.html", context)
