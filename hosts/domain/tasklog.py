"""The lasting task log: every operation the relay saw, kept after LXD forgets it.

Plain synchronous database code: the relay calls it through a thread, views directly.
A stored Task and a live operation look the same to templates: hosts/live/groups.py
`task_message(task)` turns a Task into the message the relay would send for it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ..lxd.operation import MIGRATION_DESCRIPTIONS, Status, is_final
from ..models import AuditEntry, Host, Task

# The dashboard's own jobs (a copy or move that ties two hosts' operations together, a scheduled
# backup): task log rows of their own, with an id no LXD operation has.
JOB_CLASSES = ("transfer", "backup")
JOB_PREFIX = "dashboard-"

LOST_ERROR = (
    "the operation ended while the dashboard was not connected to the host; LXD keeps no record of it"
)


def status_of(status_code: int) -> str:
    """LXD's operation status code -> Task.Status (Cancelling counts as running)."""
    if status_code == Status.SUCCESS:
        return Task.Status.SUCCESS
    if status_code == Status.CANCELLED:
        return Task.Status.CANCELLED
    if is_final(status_code):
        return Task.Status.FAILURE
    if status_code == Status.PENDING:
        return Task.Status.PENDING
    return Task.Status.RUNNING


def is_final_status(status: str) -> bool:
    """Whether a Task.Status value is an end (LOST included)."""
    return status in Task.FINAL


@dataclass
class TaskRecord:
    """What the relay knows about one operation, as it should be stored."""

    host_name: str
    operation_id: str
    op_class: str
    description: str
    targets: tuple[tuple[str, str], ...]
    status: str
    status_code: int
    started_at: dt.datetime | None
    error: str = ""
    progress: str = ""
    percent: int | None = None
    ended_at: dt.datetime | None = None


@dataclass(frozen=True)
class Claimed:
    """What the dashboard said of an operation it started: who, and (for operations LXD
    names no object for, such as an image copy or upload) what it concerns."""

    username: str
    targets: tuple[tuple[str, str], ...] = ()


def save(records: Iterable[TaskRecord]) -> dict[tuple[str, str], Claimed]:
    """Insert or update tasks; never turns a finished task back into a running one.
    Fills in who started an operation from the audit trail when the dashboard did, and
    keeps the objects a claim named when LXD names none.
    Returns {(host, operation id): Claimed} for the tasks the dashboard claimed.

    SQLite: the reads happen before the transaction, whose first statement is a write.
    A transaction that reads first must upgrade its lock to write, and under concurrent
    writers SQLite then fails at once ("database is locked") instead of waiting."""
    records = list(records)
    if not records:
        return {}
    ids = {r.operation_id for r in records}
    now = timezone.now()
    attributed: dict[tuple[str, str], Claimed] = {}
    existing = {(t.host_name, t.operation_id): t for t in Task.objects.filter(operation_id__in=ids)}
    audits = {
        (a.host_name, a.operation_id): a
        for a in AuditEntry.objects.filter(operation_id__in=ids).exclude(username="").order_by("time")
    }
    with transaction.atomic():
        for r in records:
            key = (r.host_name, r.operation_id)
            task = existing.get(key)
            if task is None:
                task = Task(
                    host_name=r.host_name, operation_id=r.operation_id, started_at=r.started_at or now
                )
            elif task.is_final:
                continue
            claimed_targets = () if r.targets or task.pk is None else tuple(task.target_list())
            task.op_class, task.description = r.op_class[:16], r.description[:255]
            task.targets = Task.targets_text(r.targets or claimed_targets)[:2048]
            task.status, task.status_code = r.status, r.status_code
            task.error, task.progress, task.percent = r.error, r.progress[:255], r.percent
            task.updated_at = now
            if task.is_final:
                task.ended_at = r.ended_at or now
            audit = audits.get(key)
            if not task.username and audit is not None:
                task.user_id, task.username = audit.user_id, audit.username
            if task.username or claimed_targets:
                attributed[key] = Claimed(task.username, claimed_targets)
            try:
                with transaction.atomic():
                    task.save()
            except IntegrityError:  # a view claimed it in between: update that row instead
                claimed = Task.objects.get(host_name=r.host_name, operation_id=r.operation_id)
                task.pk, task.user_id, task.username = claimed.pk, claimed.user_id, claimed.username
                task.save(force_update=True)
    return attributed


def claim(host: Host | str, operation_id: str, user, targets: tuple[tuple[str, str], ...] = ()) -> None:
    """Say who started an operation, as soon as a view has its id (before waiting on it):
    the live task row and the log then show the user at once.  `targets` names what the
    operation concerns when LXD does not (an image copy or upload has no resources).
    Single statements only (see save() on SQLite's locks): many requests claim at once."""
    host_name = host.name if isinstance(host, Host) else host
    if not operation_id or user is None or not user.is_authenticated:
        return
    who = {"user": user, "username": user.get_username()}
    what = {"targets": Task.targets_text(targets)[:2048]} if targets else {}
    rows = Task.objects.filter(host_name=host_name, operation_id=operation_id)
    if rows.filter(username="").update(**who, **what):
        return
    if rows.exists():  # claimed already (by this request, earlier): add what it concerns
        if what:
            rows.update(**what)
        return
    try:
        Task.objects.create(host_name=host_name, operation_id=operation_id, **who, **what)
    except IntegrityError:  # the relay recorded it meanwhile
        rows.filter(username="").update(**who)
        if what:
            rows.update(**what)


def claims(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Claimed]:
    """{(host, operation id): Claimed} of those tasks the dashboard claimed."""
    keys = set(keys)
    rows = Task.objects.filter(operation_id__in={op_id for _, op_id in keys}).exclude(username="")
    return {
        (t.host_name, t.operation_id): Claimed(t.username, tuple(t.target_list()))
        for t in rows
        if (t.host_name, t.operation_id) in keys
    }


def mark_lost(host_name: str, alive: set[str]) -> list[Task]:
    """Unfinished tasks of a host that LXD no longer lists: their outcome is unknown."""
    stale = list(
        Task.objects.filter(host_name=host_name)
        .exclude(status__in=Task.FINAL)
        .exclude(operation_id__in=alive)
        .exclude(op_class__in=JOB_CLASSES)  # the dashboard's jobs are not LXD's to list
    )
    now = timezone.now()
    for task in stale:
        task.status, task.error, task.ended_at, task.updated_at = Task.Status.LOST, LOST_ERROR, now, now
    if stale:
        Task.objects.bulk_update(stale, ["status", "error", "ended_at", "updated_at"])
    return stale


def running(host_names: Iterable[str] | None = None) -> list[Task]:
    """Unfinished operations that show a progress bar (lxd/operation.py shows_progress)."""
    tasks = Task.objects.exclude(status__in=Task.FINAL).filter(
        Q(op_class="task") | Q(op_class="websocket", description__in=MIGRATION_DESCRIPTIONS)
    )
    if host_names is not None:
        tasks = tasks.filter(host_name__in=list(host_names))
    return list(tasks.order_by("started_at"))


# -- the dashboard's own jobs -------------------------------------------------------------------


def start_job(
    host_name: str, kind: str, description: str, targets: Iterable[tuple[str, str]], user=None
) -> Task:
    """A task log row for a job of the dashboard's (kind: one of JOB_CLASSES), running from now."""
    who = {}
    if user is not None and getattr(user, "is_authenticated", False):
        who = {"user": user, "username": user.get_username()}
    return Task.objects.create(
        host_name=host_name,
        operation_id=f"{JOB_PREFIX}{uuid.uuid4()}",
        op_class=kind,
        description=description[:255],
        targets=Task.targets_text(list(targets))[:2048],
        status=Task.Status.RUNNING,
        status_code=Status.RUNNING,
        **who,
    )


def job_objects(task: Task, objects: Iterable[tuple[str, str]]) -> None:
    """Name more objects in a job's row (the LXD operations a transfer ties together)."""
    known = task.target_list()
    task.targets = Task.targets_text(known + [o for o in objects if o not in known])[:2048]
    task.save(update_fields=["targets"])


def job_progress(task: Task, text: str, percent: int | None = None) -> None:
    task.progress, task.percent, task.updated_at = text[:255], percent, timezone.now()
    task.save(update_fields=["progress", "percent", "updated_at"])


def end_job(task: Task, *, error: str = "", text: str = "") -> None:
    """Success without `error`, failure with it (LXD's own reason, or ours)."""
    now = timezone.now()
    task.status = Task.Status.FAILURE if error else Task.Status.SUCCESS
    task.status_code = Status.FAILURE if error else Status.SUCCESS
    task.error, task.ended_at, task.updated_at = error, now, now
    if text:
        task.progress = text[:255]
    task.percent = None if error else task.percent
    task.save(
        update_fields=["status", "status_code", "error", "ended_at", "updated_at", "progress", "percent"]
    )
