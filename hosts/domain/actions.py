"""Instance lifecycle actions, each followed through its LXD operation to the end.

LXD's traps handled here:
- a write answers 202 and fails later ("already running", "name taken"): we always wait;
- `/wait` answers 200 for a failed operation: LXDClient.wait checks status_code and raises
  OperationFailed with LXD's `err`;
- `timeout: 0` means force: a graceful stop always carries a timeout >= 1 s;
- two writes racing on one instance fail with "busy": the dashboard serialises its own writes
  per instance (in this process).

`perform` runs in worker threads for bulk actions, so it touches no database; the caller
records the audit entry from the ActionResult in the request thread.
"""

from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings

from ..concurrency import SLOW, parallel
from ..lxd import LXDAPIError, LXDClient, LXDError, Operation
from ..lxd.errors import UserError
from ..models import Host
from .audit import audited

ACTIONS = ("start", "stop", "restart", "freeze", "unfreeze", "delete")
BULK_ACTIONS = ACTIONS
DEFAULT_GRACE = 30
MAX_GRACE = 600


class InstanceBusy(UserError):
    http_status = 409


class ConfirmationMissing(UserError):
    http_status = 400


@dataclass
class ActionRequest:
    action: str
    timeout: int = DEFAULT_GRACE  # graceful stop/restart: seconds before LXD gives up
    force: bool = False
    confirmed: bool = False  # delete only
    stop_first: bool = False  # delete only: force-stop a running instance first


@dataclass
class ActionResult:
    host_name: str
    name: str
    action: str
    error: UserError | None = None
    project: str = "default"
    operation_ids: list[str] = field(default_factory=list)
    instance: dict | None = None  # as LXD describes it after the action (full, with state)
    gone: bool = False  # LXD no longer knows the instance

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def message(self) -> str:
        if self.error is not None:
            return str(self.error)
        done = {
            "start": "started",
            "stop": "stopped",
            "restart": "restarted",
            "freeze": "frozen",
            "unfreeze": "unfrozen",
            "delete": "deleted",
        }
        return done.get(self.action, "done")

    @property
    def http_status(self) -> int:
        return 200 if self.error is None else self.error.http_status


# One lock per instance while anyone holds or waits for it: the mapping holds them weakly, so
# it never grows past the instances being acted on.
_locks: weakref.WeakValueDictionary[tuple[str, str], _InstanceLock] = weakref.WeakValueDictionary()
_locks_guard = threading.Lock()


class _InstanceLock:
    """threading.Lock cannot be weakly referenced; this can."""

    def __init__(self):
        self._lock = threading.Lock()

    def acquire(self, timeout: float) -> bool:
        return self._lock.acquire(timeout=timeout)

    def release(self) -> None:
        self._lock.release()


@contextmanager
def instance_lock(host_name: str, name: str, wait: float = 2.0):
    with _locks_guard:
        lock = _locks.get((host_name, name))
        if lock is None:
            lock = _locks[(host_name, name)] = _InstanceLock()
    if not lock.acquire(timeout=wait):
        raise InstanceBusy(
            f"another dashboard action on {name} ({host_name}) is still running; try again shortly"
        )
    try:
        yield
    finally:
        lock.release()


def _operation_timeout(req: ActionRequest) -> float:
    if req.action in ("stop", "restart") and not req.force:
        return req.timeout + 30
    return settings.LXD_OPERATION_TIMEOUT


def perform(client: LXDClient, host_name: str, name: str, req: ActionRequest) -> ActionResult:
    """Do one action and re-read the instance. Never raises a UserError: it is in the result."""
    result = ActionResult(host_name, name, req.action, project=client.project)

    def run(op: Operation) -> None:
        if op.id:
            result.operation_ids.append(op.id)
        client.wait(op, timeout=_operation_timeout(req))

    try:
        with instance_lock(host_name, name):
            if req.action == "delete":
                if not req.confirmed:
                    raise ConfirmationMissing(f"deleting {name} needs a confirmation: nothing was done")
                if req.stop_first:
                    status = (client.instance(name).get("status") or "").lower()
                    if status in ("running", "frozen"):
                        run(client.change_state(name, "stop", force=True))
                run(client.delete_instance(name))
            else:
                run(client.change_state(name, req.action, timeout=req.timeout, force=req.force))
    except UserError as exc:
        result.error = exc
    if req.action == "delete" and result.ok:
        result.gone = True
        return result
    try:
        result.instance = client.instance(name)
    except LXDAPIError as exc:
        result.gone = exc.error_code == 404
    except LXDError:
        pass  # the row keeps what the page knew; the error (if any) is already in the result
    return result


def audit_result(request, host, result: ActionResult) -> None:
    """Record one action's outcome (ok, or failed with LXD's text) in the audit trail."""
    if isinstance(host, Host):
        host = host.for_project(result.project)
    try:
        with audited(request, f"instance.{result.action}", host=host, target=result.name) as entry:
            entry.operation_id = ",".join(result.operation_ids)[:64]
            if result.error is not None:
                raise result.error
    except UserError:
        pass


def perform_many(
    jobs: list[tuple[LXDClient | UserError, str, str]], req: ActionRequest
) -> list[ActionResult]:
    """jobs: (client scoped to the instance's project, or the UserError that stops us reaching
    the host), host name, instance name. All run in parallel; each instance gets its own
    result."""

    def one(job):
        client, host_name, name = job
        if isinstance(client, UserError):
            return ActionResult(host_name, name, req.action, error=client)
        return perform(client, host_name, name, req)

    return parallel(one, jobs, pool=SLOW)  # each follows its operation to the end
