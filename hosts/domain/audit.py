"""The audit trail: every mutating request is recorded with its outcome.

    with audited(request, "instance.start", host=host, target=name) as entry:
        op = client.change_state(...)
        entry.operation_id = op.id

An LXDError (or any exception) inside the block is recorded as a failure with its message,
then re-raised for the view to turn into a page.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

from django.conf import settings

from ..models import AuditEntry, Host
from .tasklog import claim


def record(
    user,
    action: str,
    *,
    host: Host | str | None = None,
    target: str = "",
    outcome: str = "ok",
    error: str = "",
    operation_id: str = "",
    actor: str = "",
) -> AuditEntry:
    """`actor` names who acted when no user did (a management command)."""
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    host_name = host.name if isinstance(host, Host) else (host or "")
    return AuditEntry.objects.create(
        user=user if authenticated else None,
        username=user.get_username() if authenticated else actor,
        action=action,
        # A refused request may name a host that does not exist: whatever its length.
        host_name=host_name[: AuditEntry._meta.get_field("host_name").max_length],
        target=_text(target),  # whole: a long path or a list of keys is what was asked
        outcome=outcome,
        error=_text(error),
        operation_id=operation_id,
    )


def _text(value) -> str:
    # What a person typed may hold a NUL byte, which PostgreSQL's text type refuses.
    return str(value).replace("\x00", "\\x00")


class PendingEntry:
    """What `audited` yields.  Setting `operation_id` as soon as LXD gives one also tells
    the task log who started that operation, while it still runs (tasklog.claim)."""

    def __init__(self, user, host: Host | str | None, target: str):
        self.user, self.host, self.target = user, host, target
        self._operation_id = ""
        # What the operation concerns, for the task log, when LXD names nothing (set it
        # before operation_id): (("image", fingerprint),) ...
        self.objects: tuple[tuple[str, str], ...] = ()

    def follow(self, client, op, timeout: float | None = None) -> float:
        """Tie the operation `op` to this entry, follow it to its end (client.wait: LXD's
        failure comes out as OperationFailed) and return how many seconds that took."""
        self.operation_id = op.id
        started = time.monotonic()
        client.wait(op, timeout=timeout or settings.LXD_OPERATION_TIMEOUT)
        return time.monotonic() - started

    @property
    def operation_id(self) -> str:
        return self._operation_id

    @operation_id.setter
    def operation_id(self, value: str) -> None:
        self._operation_id = value or ""
        if self.host:
            for op_id in filter(None, self._operation_id.split(",")):
                claim(self.host, op_id, self.user, self.objects)


@contextmanager
def audited(
    request_or_user, action: str, *, host: Host | str | None = None, target: str = "", actor: str = ""
):
    """`actor` names who acts when no user does (the backup scheduler, a command)."""
    user = getattr(request_or_user, "user", request_or_user)
    entry = PendingEntry(user, host, str(target))
    try:
        yield entry
    except Exception as exc:
        record(
            user,
            action,
            host=host,
            target=entry.target,
            outcome=AuditEntry.Outcome.FAILED,
            error=str(exc),
            operation_id=entry.operation_id,
            actor=actor,
        )
        raise
    record(user, action, host=host, target=entry.target, operation_id=entry.operation_id, actor=actor)
