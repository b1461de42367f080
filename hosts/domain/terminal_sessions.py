"""Terminal sessions once started: the bounds on how many, the idle timeout, and the audit
trail (the session itself: hosts/domain/terminal.py; flow control: terminal_window.py).

Audit: a row when a session starts (or is refused) and a row when it ends, with its exit code:
their times are the session's start and end, the operation id ties them together.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

from django.conf import settings

from ..models import AuditEntry, Host
from .audit import record
from .tasklog import claim
from .terminal import TerminalRefused

# -- bounds -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ticket:
    user_id: int
    instance: tuple[str, str]


def _sessions(count: int) -> str:
    return f"{count} terminal session{'' if count == 1 else 's'}"


class Sessions:
    """Open sessions of this web process, per user and per instance (with several web
    processes each keeps its own count)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.per_user: Counter[int] = Counter()
        self.per_instance: Counter[tuple[str, str]] = Counter()

    def claim(self, user_id: int, host: str, instance: str) -> Ticket:
        per_user = settings.DASHBOARD_TERMINAL_SESSIONS_PER_USER
        per_instance = settings.DASHBOARD_TERMINAL_SESSIONS_PER_INSTANCE
        key = (host, instance)
        with self._lock:
            if self.per_user[user_id] >= per_user:
                raise TerminalRefused(
                    f"You have {_sessions(per_user)} open, the most allowed: close one first.", 429
                )
            if self.per_instance[key] >= per_instance:
                raise TerminalRefused(
                    f"{instance} on {host} has {_sessions(per_instance)} open, the most allowed.", 429
                )
            self.per_user[user_id] += 1
            self.per_instance[key] += 1
        return Ticket(user_id, key)

    def release(self, ticket: Ticket) -> None:
        with self._lock:
            self.per_user[ticket.user_id] -= 1
            self.per_instance[ticket.instance] -= 1
            self.per_user += Counter()  # drop the zeros
            self.per_instance += Counter()

    def count(self) -> int:
        with self._lock:
            return sum(self.per_user.values())


SESSIONS = Sessions()


def idle_seconds() -> float:
    return float(settings.DASHBOARD_TERMINAL_IDLE_SECONDS)


# -- audit --------------------------------------------------------------------------------


def audit_refused(user, host: Host | str, instance: str, mode: str, message: str) -> None:
    record(
        user,
        "terminal.start",
        host=host,
        target=f"{instance}: {mode}",
        outcome=AuditEntry.Outcome.REFUSED,
        error=message,
    )


def audit_start(user, host: Host, target: str, operation_id: str) -> None:
    """The session's first row (its start); the exec operation is also claimed in the task log."""
    record(user, "terminal.start", host=host, target=target, operation_id=operation_id)
    claim(host, operation_id, user)


def audit_failed_start(user, host: Host | str, target: str, message: str) -> None:
    record(user, "terminal.start", host=host, target=target, outcome=AuditEntry.Outcome.FAILED, error=message)


def audit_end(user, host: Host, target: str, operation_id: str, *, ok: bool, detail: str) -> None:
    """The session's last row (its end): how it ended, with the exit code when there is one."""
    record(
        user,
        "terminal.end",
        host=host,
        target=target,
        outcome=AuditEntry.Outcome.OK if ok else AuditEntry.Outcome.FAILED,
        error=detail,
        operation_id=operation_id,
    )
