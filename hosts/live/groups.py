"""Channel-layer group names and the messages the relay publishes, each built here once.
The relay sends them, each process's hub hands them to its browser sockets, the consumer
renders them (fragments.py).  Messages are small dicts of plain values; none carries an LXD
event as such.

    HOSTS                 host.status       {host, status, detail}
                          host.synced       {host, watching_since}   the relay caught up with
                                                                     the host (after each connect)
    host_group(name)      instance.status   {host, project, instance, status, action}  first push, no LXD call
                          instance.state    {host, project, instance, data, new}  second push: one instance
                          instance.gone     {host, project, instance}
                          operation.update  operation_message(): an operation, live or from the
                                            task log, in one shape
                          operation.removed {host, id}  (each hub's own: a finished operation
                                            leaves the panel)
    (each hub's own)      live.interrupted, live.resumed  {}  the channel layer failed / is back
    RELAY                 hosts.changed     {}  (the relay re-reads the host list)
    AUTH                  auth.session_ended {session}  a login ended (live/socket_auth.py)
                          auth.user_changed  {user}     a user's account changed: re-check

Every message also carries `seq`, unique per message, so a process renders a fragment
once however many browsers it serves.
"""

from __future__ import annotations

import itertools
import secrets

from ..domain.tasklog import is_final_status
from ..models import Task

HOSTS = "live.hosts"
RELAY = "live.relay"
AUTH = "live.auth"

HOST_STATUS = "host.status"
HOST_SYNCED = "host.synced"
INSTANCE_STATUS = "instance.status"
INSTANCE_STATE = "instance.state"
INSTANCE_GONE = "instance.gone"
OPERATION = "operation.update"
HOSTS_CHANGED = "hosts.changed"
# Not from the relay: each hub's own, when a finished operation leaves the panel, and when
# the channel layer failed (live updates interrupted) and answers again (pages catch up).
OPERATION_REMOVED = "operation.removed"
LIVE_INTERRUPTED = "live.interrupted"
LIVE_RESUMED = "live.resumed"
SESSION_ENDED = "auth.session_ended"
USER_CHANGED = "auth.user_changed"


def host_group(name: str) -> str:
    """Instance and operation messages of one host (host names are [a-z0-9-])."""
    return f"live.host.{name}"


_counter = itertools.count(1)
_prefix = secrets.token_hex(4) + "."  # per process, so two relays never collide


def next_seq() -> str:
    return _prefix + str(next(_counter))


# -- the messages -------------------------------------------------------------------------------


def host_status(status: str, detail: str = "") -> dict:
    return {"type": HOST_STATUS, "status": str(status), "detail": detail}


def host_synced(watching_since: float | None) -> dict:
    return {"type": HOST_SYNCED, "watching_since": watching_since}


def instance_status(instance: str, status: str, action: str = "") -> dict:
    return {"type": INSTANCE_STATUS, "instance": instance, "status": status, "action": action}


def instance_state(instance: str, data: dict, new: bool) -> dict:
    return {"type": INSTANCE_STATE, "instance": instance, "data": data, "new": new}


def operation_removed(host: str, op_id: str) -> dict:
    return {"type": OPERATION_REMOVED, "host": host, "id": op_id, "seq": next_seq()}


def live_notice(kind: str) -> dict:
    return {"type": kind, "seq": next_seq()}


def instance_gone(instance: str) -> dict:
    return {"type": INSTANCE_GONE, "instance": instance}


def operation_message(
    *,
    host: str,
    op_id: str,
    op_class: str,
    description: str,
    status: str,
    status_code: int,
    err: str = "",
    percent: int | None = None,
    stage: str = "",
    rate: str = "",
    eta: float | None = None,
    text: str = "",
    targets: tuple[tuple[str, str], ...] | list = (),
    started_at: str = "",
    ended_at: str = "",
    username: str = "",
    exit_code: int | None = None,
) -> dict:
    """An operation as pages show it: a live one (the relay's OpState) or a stored one
    (task_message).  `status` is a Task.Status value."""
    targets = [list(t) for t in targets]
    return {
        "type": OPERATION,
        "host": host,
        "id": op_id,
        "op_class": op_class,
        "description": description,
        "status": str(status),
        "status_code": status_code,
        "final": is_final_status(status),
        "ok": status == Task.Status.SUCCESS,
        "err": err,
        "percent": percent,
        "stage": stage,
        "rate": rate,
        "eta": eta,
        "text": text,
        "targets": targets,
        "instances": [name for kind, name in targets if kind == "instance" and "/" not in name],
        "started_at": started_at,
        "ended_at": ended_at,
        "username": username,
        "exit_code": exit_code,
    }


def task_message(task: Task) -> dict:
    """A stored task, in the shape of the relay's operation message."""
    return operation_message(
        host=task.host_name,
        op_id=task.operation_id,
        op_class=task.op_class,
        description=task.description,
        status=task.status,
        status_code=task.status_code,
        err=task.error,
        percent=task.percent,
        text=task.progress,
        targets=task.target_list(),
        started_at=task.started_at.isoformat() if task.started_at else "",
        ended_at=task.ended_at.isoformat() if task.ended_at else "",
        username=task.username,
    )
