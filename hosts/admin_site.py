"""Django's admin, audited: every add, change and delete made there is recorded in the audit
trail (hosts.audit.record) as the dashboard's own pages record theirs, in the same
transaction as the change.

One place for every model, Django's User and Group included: the site mixes AuditedAdmin into
whatever ModelAdmin registers with it.  It hooks the admin's own logging (log_addition,
log_change, log_deletions) rather than LogEntry's post_save, because the admin writes the
LogEntries of a bulk "delete selected" with bulk_create, which sends no signal.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model

from .domain.audit import record
from .models import Host


def _describe(obj) -> str:
    """For a user, what decides their role: the audit should say what they became."""
    if not isinstance(obj, get_user_model()):
        return ""
    groups = ", ".join(sorted(obj.groups.values_list("name", flat=True))) or "none"
    flags = ", ".join(
        f"{label} {'yes' if getattr(obj, field) else 'no'}"
        for field, label in (("is_active", "active"), ("is_staff", "staff"), ("is_superuser", "superuser"))
    )
    return f" [now: groups {groups}; {flags}]"


def _audit(request, verb: str, obj, message: str = "") -> None:
    target = f"{obj._meta.label_lower} {obj} (#{obj.pk})"
    if message:
        target += f": {message}"
    if verb != "delete":
        target += _describe(obj)
    host = obj.name if isinstance(obj, Host) else None
    record(request.user, f"admin.{verb}", host=host, target=target)


class AuditedAdmin:
    """Mixed into every ModelAdmin of the site: each logged admin action is also audited."""

    def log_addition(self, request, obj, message):
        entry = super().log_addition(request, obj, message)
        _audit(request, "add", obj, entry.get_change_message())
        return entry

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        _audit(request, "change", obj, entry.get_change_message())
        return entry

    def log_deletions(self, request, queryset):
        entries = super().log_deletions(request, queryset)
        for obj in queryset:
            _audit(request, "delete", obj)
        return entries


class AuditedAdminSite(admin.AdminSite):
    def register(self, model_or_iterable, admin_class=None, **options):
        base = admin_class or admin.ModelAdmin
        if not issubclass(base, AuditedAdmin):
            base = type(base.__name__, (AuditedAdmin, base), {"__module__": base.__module__})
        super().register(model_or_iterable, base, **options)
