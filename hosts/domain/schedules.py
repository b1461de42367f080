"""Scheduled backups: which schedules are due, the instances they match, one backup per instance
per minute, retention, and the lease that keeps two processes from both running them.

    tick(holder, now)   what the scheduler (hosts/live/scheduler.py) calls every few seconds

- due: a schedule's latest cron slot at or before `now`, if it has not run that slot yet;
  slots missed while the dashboard was down are not replayed one by one: the latest runs
  once (per schedule), when the scheduler next looks.  A new schedule starts with the first
  slot after its creation.
- one run per instance per minute: every backup of a run claims (host, project, instance,
  slot) in the database first; a second schedule matching the same instance at the same
  minute finds it claimed and skips it.
- never twice at once: only the holder of the `backup-scheduler` lease runs anything; the
  lease is renewed while a run goes on, and taken over only once it has expired.
- each backup is a task log row of its own ("Scheduled backup (NAME)") ending with its size
  and duration, or with the reason it failed.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.defaultfilters import filesizeformat

from ..lxd import LXDError
from ..models import BackupRecord, BackupSchedule, Host, Lease
from . import tasklog
from .backups import BackupSpec, delete_record, make_backup
from .cron import Cron, CronError
from .retention import Rules, to_prune
from .transfer import clean_pending

LEASE = "backup-scheduler"
LEASE_SECONDS = 300


# -- the lease ---------------------------------------------------------------------------------------


def acquire_lease(holder: str, now: dt.datetime, seconds: int = LEASE_SECONDS) -> bool:
    """Take or renew the scheduler's lease: True for its holder until `now + seconds`."""
    try:
        with transaction.atomic():
            Lease.objects.get_or_create(name=LEASE)
    except IntegrityError:
        pass  # made by another process meanwhile
    taken = (
        Lease.objects.filter(name=LEASE)
        .filter(Q(holder=holder) | Q(holder="") | Q(expires_at__lt=now))
        .update(holder=holder, expires_at=now + dt.timedelta(seconds=seconds))
    )
    return taken == 1


def release_lease(holder: str) -> None:
    Lease.objects.filter(name=LEASE, holder=holder).update(holder="")


# -- what is due, what matches -----------------------------------------------------------------------


def due_slot(schedule: BackupSchedule, now: dt.datetime) -> dt.datetime | None:
    try:
        slot = Cron.parse(schedule.cron).latest(now)
    except CronError:
        return None
    if slot is None:
        return None
    since = schedule.last_slot or schedule.created_at
    return slot if slot > since else None


def next_slot(schedule: BackupSchedule, now: dt.datetime) -> dt.datetime | None:
    try:
        return Cron.parse(schedule.cron).next_after(now)
    except CronError:
        return None


def host_matches(schedule: BackupSchedule, host: Host) -> bool:
    if schedule.host_name and host.name != schedule.host_name:
        return False
    return not schedule.project or (host.project or "default") == schedule.project


def instance_matches(schedule: BackupSchedule, instance: dict) -> bool:
    if schedule.name_pattern and not fnmatch.fnmatchcase(instance.get("name", ""), schedule.name_pattern):
        return False
    if schedule.user_key:
        config = instance.get("config") or {}
        if schedule.user_key not in config:
            return False
        if schedule.user_value and config[schedule.user_key] != schedule.user_value:
            return False
    return True


# -- running ------------------------------------------------------------------------------------------


@dataclass
class RunReport:
    schedule: str
    slot: dt.datetime
    made: list[BackupRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)


def backup_name(schedule: BackupSchedule, slot: dt.datetime) -> str:
    return f"auto-{schedule.pk}-{slot:%Y%m%d-%H%M}"


def run_schedule(
    schedule: BackupSchedule, slot: dt.datetime, now: dt.datetime, renew: Callable[[], object] = lambda: None
) -> RunReport:
    report = RunReport(schedule.name, slot)
    hosts = [h for h in Host.objects.select_related("client_certificate") if host_matches(schedule, h)]
    for host in hosts:
        try:
            instances = host.client(timeout=(2.0, 30.0)).instances(recursion=1)
        except LXDError as exc:
            report.errors.append(f"{host.name}: {exc}")
            continue
        for instance in instances:
            if instance_matches(schedule, instance):
                renew()
                _backup_one(schedule, slot, now, host, instance["name"], report)
    return report


def _backup_one(schedule, slot, now, host: Host, name: str, report: RunReport) -> None:
    try:
        with transaction.atomic():
            record = BackupRecord.objects.create(
                host_name=host.name,
                project=host.project or "default",
                instance=name,
                name=backup_name(schedule, slot),
                schedule=schedule,
                slot=slot,
                created_at=now,
                instance_only=schedule.instance_only,
                compression=schedule.compression,
            )
    except IntegrityError:
        other = BackupRecord.objects.filter(
            host_name=host.name, project=host.project or "default", instance=name, slot=slot
        ).first()
        by = f" by schedule {other.schedule.name}" if other and other.schedule else ""
        report.skipped.append(f"{host.name}/{name}: already backed up at {slot:%Y-%m-%d %H:%M}{by}")
        return
    task = tasklog.start_job(
        host.name, "backup", f"Scheduled backup ({schedule.name})", [("instance", name)], None
    )
    started = time.monotonic()
    spec = BackupSpec(
        name,
        record.name,
        instance_only=schedule.instance_only,
        optimized=schedule.optimized,
        compression=schedule.compression,
        keep_on_host=schedule.keeps_on_host,
        export=schedule.exports,
    )
    record = make_backup(None, host, spec, schedule=schedule, slot=slot, record=record)
    seconds = time.monotonic() - started
    if record.status == BackupRecord.Status.OK:
        size = filesizeformat(record.size) if record.size is not None else "size unknown"
        where = {"host": "kept on the host", "dir": "exported", "both": "kept on the host and exported"}
        text = f"{size} in {seconds:.1f} s, {where[schedule.where]}"
        tasklog.end_job(task, text=text)
        report.made.append(record)
        report.pruned += prune(schedule, host.name, record.project, name, now)
    else:
        tasklog.end_job(task, error=record.error, text=f"failed after {seconds:.1f} s")
        report.errors.append(f"{host.name}/{name}: {record.error}")


def prune(
    schedule: BackupSchedule, host_name: str, project: str, instance: str, now: dt.datetime
) -> list[str]:
    """Delete this schedule's backups of one instance that its rules no longer keep."""
    rules = Rules(schedule.keep_last, schedule.keep_daily, schedule.keep_weekly, schedule.keep_monthly)
    records = BackupRecord.objects.filter(
        schedule=schedule,
        host_name=host_name,
        project=project,
        instance=instance,
        status=BackupRecord.Status.OK,
    )
    gone = []
    for record in to_prune(records, lambda r: r.created_at, rules, now):
        try:
            delete_record(None, record)
            gone.append(f"{host_name}/{instance}:{record.name}")
        except LXDError:
            pass  # its host is away: tried again after the next run
    return gone


def tick(holder: str, now: dt.datetime) -> list[RunReport]:
    """Run whatever is due, if this process holds the lease; also clear failed copies' leftovers."""
    if not acquire_lease(holder, now):
        return []
    clean_pending()
    reports = []
    for schedule in BackupSchedule.objects.filter(enabled=True):
        slot = due_slot(schedule, now)
        if slot is None:
            continue
        # Claim the slot (compare-and-set): a schedule runs a slot once, whoever looks.
        claimed = BackupSchedule.objects.filter(pk=schedule.pk, last_slot=schedule.last_slot)
        if schedule.last_slot is None:
            claimed = BackupSchedule.objects.filter(pk=schedule.pk, last_slot__isnull=True)
        if claimed.update(last_slot=slot) != 1:
            continue
        schedule.last_slot = slot
        report = run_schedule(schedule, slot, now, renew=lambda: acquire_lease(holder, _now()))
        schedule.last_run_at = now
        schedule.last_error = "; ".join(report.errors)
        schedule.save(update_fields=["last_run_at", "last_error"])
        reports.append(report)
    return reports


def _now() -> dt.datetime:
    from django.utils import timezone

    return timezone.now()


# -- instances with no recent backup -------------------------------------------------------------------


@dataclass
class Stale:
    host: str
    instance: str
    last: BackupRecord | None


def stale_instances(hosts: list[Host], now: dt.datetime, hours: int) -> tuple[list[Stale], list[str]]:
    """(instances whose newest good backup made through the dashboard is older than `hours`,
    or that have none; hosts that did not answer)."""
    cutoff = now - dt.timedelta(hours=hours)
    stale, errors = [], []
    for host in hosts:
        try:
            names = [i["name"] for i in host.client().instances(recursion=1)]
        except LXDError as exc:
            errors.append(f"{host.name}: {exc}")
            continue
        newest: dict[str, BackupRecord] = {}
        for record in BackupRecord.objects.filter(
            host_name=host.name, project=host.project or "default", status=BackupRecord.Status.OK
        ).order_by("created_at"):
            newest[record.instance] = record
        for name in sorted(names):
            last = newest.get(name)
            if last is None or last.created_at < cutoff:
                stale.append(Stale(host.name, name, last))
    return stale, errors
