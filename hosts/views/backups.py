"""Backups: one instance's (make, download, delete), the overview with the schedules and the
exports kept in the backup directory, restore (an upload goes over a websocket:
hosts/views/backup_upload_socket.py), and the instances with no recent backup.

Roles: viewers see lists; operators make, restore and delete backups; downloads are for
admins, because a backup holds the instance's whole config, secret values included
(environment.*, cloud-init), which only admins may read; schedules are for admins (they
decide what is kept, where, and what is deleted).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST, require_safe

from ..domain import schedules
from ..domain.audit import audited
from ..domain.audit import record as record_audit
from ..domain.backups import (
    BackupRefused,
    BackupSpec,
    delete_record,
    start_backup,
    start_restore_file,
    stored_path,
)
from ..domain.roles import ADMIN, OPERATOR
from ..lxd.errors import UserError
from ..lxd.names import BACKUP, INSTANCE
from ..models import BackupRecord, BackupSchedule, Host
from .access import error_page, host_view, requested_host, role_required
from .backup_forms import BackupForm, RestoreForm, ScheduleForm
from .streaming import file_chunks, lxd_chunks, streamed_download


def _tasks_url(host: str, instance: str) -> str:
    return reverse("task-list") + "?" + urlencode({"host": host, "instance": instance})


# -- one instance -------------------------------------------------------------------------------------


@require_safe
@host_view(name=INSTANCE)
def instance_backups(request, host: Host, name: str):
    return _page(request, host, name, BackupForm())


@require_POST
@host_view(OPERATOR, name=INSTANCE)
def backup_create(request, host: Host, name: str):
    form = BackupForm(request.POST)
    if not form.is_valid():
        return _page(request, host, name, form, 400)
    data = form.cleaned_data
    spec = BackupSpec(
        name,
        data["name"],
        instance_only=data["instance_only"],
        optimized=data["optimized"],
        compression=data["compression"],
        keep_on_host=data["where"] in ("host", "both"),
        export=data["where"] in ("dir", "both"),
    )
    try:
        start_backup(request.user, host, spec)
    except UserError as exc:
        form.add_error(None, str(exc))
        return _page(request, host, name, form, exc.http_status)
    messages.info(request, f"Backing up {name} on {host.name}: follow it below.")
    return redirect(_tasks_url(host.name, name))


def _page(request, host: Host, name: str, form: BackupForm, status: int = 200):
    client = host.client()
    brief = client.instance_brief(name)
    on_host = client.backups(name)
    records = {r.name: r for r in BackupRecord.objects.filter(host_name=host.name, instance=name)}
    context = {
        "host": host,
        "name": name,
        "instance": brief,
        "backups": [(b, records.get(b["name"])) for b in on_host],
        "exports": [r for r in records.values() if r.file],
        "form": form,
    }
    return render(request, "hosts/instance_backups.html", context, status=status)


@require_GET
@host_view(ADMIN, name=INSTANCE, backup=BACKUP)
def backup_download(request, host: Host, name: str, backup: str):
    with audited(request, "backup.download", host=host, target=f"{name}:{backup}"):
        size, response = host.client().open_backup_export(name, backup)
    return streamed_download(
        request, lxd_chunks(response), response.close, filename=f"{name}-{backup}.tar.gz", size=size
    )


@require_POST
@host_view(OPERATOR, name=INSTANCE, backup=BACKUP)
def backup_delete(request, host: Host, name: str, backup: str):
    with audited(request, "backup.delete", host=host, target=f"{name}:{backup}") as entry:
        client = host.client(timeout=(2.0, 30.0))
        entry.follow(client, client.delete_backup(name, backup))
    BackupRecord.objects.filter(host_name=host.name, instance=name, name=backup).update(on_host=False)
    BackupRecord.objects.filter(host_name=host.name, instance=name, name=backup, file="").delete()
    messages.success(request, f"Deleted backup {backup} of {name} on {host.name}.")
    return redirect("instance-backups", host=host.name, name=name)


# -- the overview, exports, restore -----------------------------------------------------------------


@require_safe
def backups_home(request):
    now = timezone.now()
    rows = [
        {"schedule": s, "next": schedules.next_slot(s, now) if s.enabled else None}
        for s in BackupSchedule.objects.all()
    ]
    context = {
        "schedules": rows,
        "records": BackupRecord.objects.select_related("schedule")[:100],
        "backup_dir": settings.DASHBOARD_BACKUP_DIR,
    }
    return render(request, "hosts/backups.html", context)


@require_GET
@role_required(ADMIN)
def record_download(request, pk):
    record = get_object_or_404(BackupRecord, pk=pk)
    try:
        path = stored_path(record)
        size = path.stat().st_size
    except (BackupRefused, OSError):
        gone = UserError(f"The export of {record.name} is no longer in the backup directory.", 404)
        return error_page(request, gone, title="Not found")
    record_audit(
        request.user, "backup.download", host=record.host_name, target=f"{record.instance}:{record.name}"
    )
    handle = path.open("rb")
    return streamed_download(request, file_chunks(handle), handle.close, filename=path.name, size=size)


@require_POST
@role_required(OPERATOR)
def record_delete(request, pk):
    record = get_object_or_404(BackupRecord, pk=pk)
    try:
        delete_record(request.user, record)
    except UserError as exc:
        return error_page(request, exc, title=f"Could not delete {record.name}")
    messages.success(request, f"Deleted backup {record.name} of {record.instance}.")
    return redirect("backups")


@require_http_methods(["GET", "POST"])
@role_required(OPERATOR)
def backup_restore(request):
    """GET: the upload page (and the form for a kept export, ?record=ID).  POST: restore a kept
    export as a new instance (a job; an upload goes over the websocket instead)."""
    host_names = list(Host.objects.values_list("name", flat=True))
    record = None
    if request.method == "POST":
        form = RestoreForm(request.POST, host_names=host_names)
        if str(request.POST.get("record", "")).isdigit():  # the form stays on the page with its errors
            record = BackupRecord.objects.filter(pk=int(request.POST["record"])).first()
        if form.is_valid():
            record = get_object_or_404(BackupRecord, pk=form.cleaned_data["record"])
            host = requested_host(form.cleaned_data["host"])
            try:
                start_restore_file(
                    request.user, host, record, form.cleaned_data["name"], form.cleaned_data["pool"]
                )
            except UserError as exc:
                form.add_error(None, str(exc))
            else:
                messages.info(
                    request, f"Restoring {record.name} as {form.cleaned_data['name']} on {host.name}."
                )
                return redirect(_tasks_url(host.name, form.cleaned_data["name"]))
        status = 400
    else:
        status = 200
        if request.GET.get("record", "").isdigit():
            record = BackupRecord.objects.filter(pk=int(request.GET["record"])).first()
        form = RestoreForm(
            initial={"record": record.pk if record else None, "host": record.host_name if record else ""},
            host_names=host_names,
        )
    context = {
        "form": form,
        "record": record,
        "host_names": host_names,
        "max_upload": int(settings.DASHBOARD_MAX_BACKUP_UPLOAD_BYTES),
    }
    return render(request, "hosts/backup_restore.html", context, status=status)


# -- schedules -------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def schedule_edit(request, pk=None):
    schedule = get_object_or_404(BackupSchedule, pk=pk) if pk is not None else None
    form = ScheduleForm(request.POST or None, instance=schedule)
    if request.method == "POST":
        action = "schedule.change" if schedule else "schedule.create"
        if form.is_valid():
            with audited(request, action, target=form.cleaned_data["name"]):
                saved = form.save(commit=False)
                if schedule is None:
                    saved.created_at = timezone.now()  # its first slot is the first one after now
                saved.save()
            messages.success(request, f"Saved the schedule {saved.name}.")
            return redirect("backups")
        return render(request, "hosts/schedule_form.html", {"form": form, "schedule": schedule}, status=400)
    return render(request, "hosts/schedule_form.html", {"form": form, "schedule": schedule})


@require_POST
@role_required(ADMIN)
def schedule_delete(request, pk):
    schedule = get_object_or_404(BackupSchedule, pk=pk)
    with audited(request, "schedule.delete", target=schedule.name):
        schedule.delete()  # its backups stay (their records lose the link; retention no longer prunes them)
    messages.success(request, f"Deleted the schedule {schedule.name}; its backups are kept.")
    return redirect("backups")


@require_safe
def backups_stale(request):
    try:
        hours = max(1, min(24 * 366, int(request.GET.get("hours") or settings.DASHBOARD_BACKUP_STALE_HOURS)))
    except ValueError:
        hours = settings.DASHBOARD_BACKUP_STALE_HOURS
    hosts = list(Host.objects.select_related("client_certificate"))
    stale, errors = schedules.stale_instances(hosts, timezone.now(), hours)
    return render(request, "hosts/backups_stale.html", {"stale": stale, "errors": errors, "hours": hours})
