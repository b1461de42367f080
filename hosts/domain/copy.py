"""Copy and move instances between registered hosts, and within one.

    plan = plan_transfer(user, TransferSpec(...))   # every refusal, before anything is sent
    task = start_transfer(user, plan)               # the task log row; the work runs in a thread

What a transfer promises:
- refused before any write, with the reason: the target name taken; a profile or the pool
  missing on the target (which, and what the target has, so the form offers a mapping); a
  running instance without the person's consent to stop it; what the user's role may not write
  on the target (hosts/policy.py check_write, the same rule as create);
- the target pulls from the source over HTTPS with the source's certificate and the
  operation's secrets (push mode where only the source can reach the target); both sides'
  LXD operations show as progress bars and tasks through the relay; one task log row of the
  dashboard's own ties them together and ends naming where the instance now is;
- a running instance is stopped first and started again (on the target after a move);
- on failure nothing half-made stays on the target (a host that stopped answering has it
  removed as soon as it answers again: PendingCleanup), the source is untouched (started again
  if it was stopped for the copy), and the task says why;
- a move deletes the source only once the target is verified: it exists, with the same config,
  devices and profile list as asked, and as many snapshots as the source.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.db import close_old_connections
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from .. import tasklog
from ..actions import instance_lock
from ..audit import record
from ..lxd import LXDAPIError, LXDClient, LXDError
from ..lxd.errors import HostUnreachable, OperationFailed
from ..lxd.migration import (
    copy_body,
    is_out_of_space,
    profiles_root_pool,
    root_disk,
    sent_bytes,
    user_config,
)
from ..models import AuditEntry, Host, PendingCleanup, Task
from ..policy import PolicyRefused, check_write

log = logging.getLogger(__name__)

MODES = ("pull", "push")
STOP_GRACE = 30  # seconds a running instance gets to shut down before a copy
PLAN_TIMEOUT = (2.0, 15.0)
WORK_TIMEOUT = (2.0, 60.0)
_SKEW = dt.timedelta(seconds=30)  # between the dashboard's clock and a host's


class TransferRefused(LXDError):
    """The transfer cannot go ahead; nothing was sent.  `missing_profiles` / `missing_pool`
    name what the target lacks, `target_profiles` / `target_pools` what it has (the mapping
    a form offers)."""

    def __init__(
        self,
        message: str,
        status: int = 409,
        *,
        missing_profiles: list[str] | None = None,
        missing_pool: str = "",
        target_profiles: list[str] | None = None,
        target_pools: list[str] | None = None,
    ):
        super().__init__(message)
        self.http_status = status
        self.missing_profiles = missing_profiles or []
        self.missing_pool = missing_pool
        self.target_profiles = target_profiles or []
        self.target_pools = target_pools or []


@dataclass
class TransferSpec:
    source: Host
    name: str
    target: Host
    target_name: str = ""  # "" = the same name
    move: bool = False
    project: str = ""  # "" = the target host's project
    profiles: list[str] | None = None  # None = the source instance's own list
    pool: str = ""  # "" = where the instance's root disk says (its profiles or its own device)
    instance_only: bool = False  # without snapshots
    mode: str = "pull"
    stop_running: bool = False  # consent to stop a running instance and start it again

    @property
    def verb(self) -> str:
        return "move" if self.move else "copy"


@dataclass
class Plan:
    spec: TransferSpec
    instance: dict  # the source, as LXD described it when planned
    body: dict  # what the target is asked to create
    project: str
    running: bool
    same_server: bool
    snapshots: int  # how many the target must end up with
    target_pool: str = ""  # where the root disk lands on the target
    target_free: int | None = None  # bytes free in it when planned (None: the host did not say)

    @property
    def target_name(self) -> str:
        return self.body["name"]

    @property
    def rename_only(self) -> bool:
        """A move within one server and project that changes nothing but the name."""
        spec = self.spec
        return (
            spec.move
            and self.same_server
            and self.project == (spec.source.project or "default")
            and not spec.pool
            and self.body["profiles"] == list(self.instance.get("profiles") or [])
        )

    @property
    def description(self) -> str:
        spec = self.spec
        verb = "Move" if spec.move else "Copy"
        where = spec.target.name if not self.same_server else f"{spec.target.name} (same host)"
        renamed = f" as {self.target_name}" if self.target_name != spec.name else ""
        return f"{verb} {spec.name} from {spec.source.name} to {where}{renamed}"


@dataclass
class Outcome:
    ok: bool
    message: str
    notes: list[str] = field(default_factory=list)


def _is_running(instance: dict) -> bool:
    return (instance.get("status") or "").lower() in ("running", "frozen")


def plan_transfer(user, spec: TransferSpec) -> Plan:
    """Everything that can be refused before a byte moves: TransferRefused, PolicyRefused
    (both recorded in the audit trail), or LXDError from a host."""
    action = f"instance.{spec.verb}"
    audit_target = _audit_target(spec)
    try:
        if spec.mode not in MODES:
            raise TransferRefused(f"unknown transfer mode {spec.mode!r}: pull or push", 400)
        return _plan(user, spec)
    except (TransferRefused, PolicyRefused) as exc:
        record(user, action, host=spec.target, target=audit_target, outcome="refused", error=str(exc))
        raise


def _plan(user, spec: TransferSpec) -> Plan:
    source = spec.source.client(timeout=PLAN_TIMEOUT)
    instance = source.instance(spec.name)
    project = spec.project or spec.target.project or "default"
    target = spec.target.client(timeout=PLAN_TIMEOUT).for_project(project)
    same_server = spec.source.pk == spec.target.pk or spec.source.endpoint == spec.target.endpoint
    target_name = spec.target_name or spec.name
    same_place = same_server and project == (spec.source.project or "default")
    if same_place and target_name == spec.name and (not spec.move or not spec.pool):
        raise TransferRefused(
            f"{spec.name} is already on {spec.target.name} under that name: choose another name"
            + ("" if spec.move else " for the copy")
            + (" or another pool" if spec.move else ""),
            400,
        )
    if not (same_place and target_name == spec.name) and _exists(target, target_name):
        raise TransferRefused(
            f"{spec.target.name} already has an instance named {target_name}"
            + (f" in project {project}" if project != "default" else "")
            + ": choose another name, or delete that one first"
        )
    profiles = list(instance.get("profiles") or []) if spec.profiles is None else list(spec.profiles)
    target_profiles = target.profiles()
    target_pools = target.storage_pool_names()
    missing = [p for p in profiles if p not in target_profiles]
    local_root = (instance.get("devices") or {}).get(root_disk(instance)[0]) or {}
    pool = spec.pool or local_root.get("pool", "")
    if missing or (pool and pool not in target_pools):
        problems = []
        if missing:
            problems.append(
                f"{spec.target.name} has no profile {', '.join(missing)} "
                f"(its profiles: {', '.join(target_profiles) or 'none'})"
            )
        if pool and pool not in target_pools:
            problems.append(
                f"{spec.target.name} has no storage pool {pool} (its pools: {', '.join(target_pools) or 'none'})"
            )
        raise TransferRefused(
            "; ".join(problems) + ": choose what to use there instead",
            409,
            missing_profiles=missing,
            missing_pool=pool if pool and pool not in target_pools else "",
            target_profiles=target_profiles,
            target_pools=target_pools,
        )
    running = _is_running(instance)
    if running and not spec.stop_running:
        raise TransferRefused(
            f"{spec.name} is running: a {spec.verb} needs it stopped (LXD on this server cannot move a "
            f"running container). Confirm that it may be stopped, {spec.verb}ed and started again"
            f"{' on ' + spec.target.name if spec.move else ''}, or stop it first."
        )
    body = copy_body(instance, name=target_name, profiles=profiles, pool=spec.pool or None)
    # The same rule as create: what the copy writes on the target (its own config, devices and
    # the profile list) must be within the user's role there.
    check_write(user, spec.target, config=user_config(instance), devices=body["devices"], profiles=profiles)
    snapshots = 0 if spec.instance_only else len(instance.get("snapshots") or [])
    target_pool = pool or profiles_root_pool([target.profile(p) for p in profiles])
    return Plan(
        spec,
        instance,
        body,
        project,
        running,
        same_server,
        snapshots,
        target_pool=target_pool,
        target_free=_free_space(target, target_pool),
    )


def _free_space(client: LXDClient, pool: str) -> int | None:
    if not pool:
        return None
    try:
        space = client.storage_pool_space(pool)
    except LXDError:
        return None
    try:
        return max(0, int(space["total"]) - int(space.get("used") or 0))  # LXD omits a zero
    except (KeyError, TypeError, ValueError):
        return None


def _exists(client: LXDClient, name: str) -> bool:
    try:
        client.instance_brief(name)
    except LXDAPIError as exc:
        if exc.error_code == 404:
            return False
        raise
    return True


def _audit_target(spec: TransferSpec) -> str:
    return f"{spec.source.name}/{spec.name} -> {spec.target.name}/{spec.target_name or spec.name}"


# -- running it ----------------------------------------------------------------------------------

_workers: ThreadPoolExecutor | None = None
_workers_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _workers
    with _workers_lock:
        if _workers is None:
            _workers = ThreadPoolExecutor(
                max_workers=int(settings.DASHBOARD_TRANSFER_WORKERS), thread_name_prefix="lxd-transfer"
            )
        return _workers


def start_transfer(user, plan: Plan) -> Task:
    """The task log row, at once; the transfer itself in a worker thread."""
    task = _job(user, plan)
    _pool().submit(_in_thread, user, plan, task)
    return task


def transfer_now(user, plan: Plan) -> tuple[Task, Outcome]:
    """The same, in the caller's thread (a command, a test): (the task row, the outcome)."""
    task = _job(user, plan)
    return task, run_transfer(user, plan, task)


def start_many(user, plans: list[Plan], parallel: int) -> list[Task]:
    """Bulk: every transfer gets its row now; at most `parallel` run at a time."""
    tasks = [_job(user, plan) for plan in plans]
    gate = threading.BoundedSemaphore(max(1, parallel))

    def one(plan: Plan, task: Task) -> None:
        with gate:
            _in_thread(user, plan, task)

    # Each waits on the gate in a thread of its own: a short-lived wait, not a worker slot.
    for plan, task in zip(plans, tasks, strict=True):
        threading.Thread(target=one, args=(plan, task), name="lxd-transfer-bulk", daemon=True).start()
    return tasks


def _job(user, plan: Plan) -> Task:
    spec = plan.spec
    targets = [("instance", plan.target_name), ("source", f"{spec.source.name}/{spec.name}")]
    return tasklog.start_job(spec.target.name, "transfer", plan.description, targets, user)


def _in_thread(user, plan: Plan, task: Task) -> Outcome:
    close_old_connections()
    try:
        return run_transfer(user, plan, task)
    except Exception as exc:  # never leave the row running
        log.exception("transfer %s failed", task.operation_id)
        tasklog.end_job(task, error=f"the transfer failed unexpectedly: {exc}")
        return Outcome(False, str(exc))
    finally:
        close_old_connections()


def run_transfer(user, plan: Plan, task: Task) -> Outcome:
    """Do it (in the caller's thread) and write the outcome into `task` and the audit trail."""
    spec = plan.spec
    started = timezone.now()
    work = _Transfer(user, plan, task)
    try:
        with (
            instance_lock(spec.source.name, spec.name, wait=30),
            instance_lock(spec.target.name, plan.target_name, wait=30),
        ):
            outcome = work.run()
    except LXDError as exc:
        outcome = Outcome(False, str(exc))
    error = "" if outcome.ok else outcome.message
    text = outcome.message if outcome.ok else "; ".join(outcome.notes)
    tasklog.end_job(task, error=error, text=text)
    record(
        user,
        f"instance.{spec.verb}",
        host=spec.target,
        target=_audit_target(spec),
        outcome=AuditEntry.Outcome.OK if outcome.ok else AuditEntry.Outcome.FAILED,
        error=error,
        operation_id=task.operation_id,
    )
    log.info("%s: %s (%.1f s)", plan.description, outcome.message, (timezone.now() - started).total_seconds())
    return outcome


class _Transfer:
    def __init__(self, user, plan: Plan, task: Task):
        self.user, self.plan, self.task = user, plan, task
        spec = plan.spec
        self.spec = spec
        self.source = spec.source.client(timeout=WORK_TIMEOUT)
        self.target = spec.target.client(timeout=WORK_TIMEOUT).for_project(plan.project)
        self.timeout = float(settings.LXD_TRANSFER_TIMEOUT)
        self.stopped_source = False
        self.target_started_at = None
        self.notes: list[str] = []

    def say(self, text: str) -> None:
        tasklog.job_progress(self.task, text)

    def claim(self, host: Host, op_id: str) -> None:
        tasklog.claim(host, op_id, self.user)

    def follow(self, client: LXDClient, op) -> None:
        if op.id:
            client.wait(op, timeout=self.timeout)

    def run(self) -> Outcome:
        spec, plan = self.spec, self.plan
        if plan.running:
            self.say(f"stopping {spec.name} on {spec.source.name}")
            op = self.source.change_state(spec.name, "stop", timeout=STOP_GRACE)
            self.claim(spec.source, op.id)
            self.follow(self.source, op)
            self.stopped_source = True
        if plan.rename_only:
            return self._rename()
        if plan.same_server and plan.target_name == spec.name:
            return self._move_within()
        self.target_started_at = timezone.now()
        try:
            self._copy()
            self._verify()
        except LXDError as exc:
            reason = self._reason(exc)
            self._clean_target()
            self._restart_source()
            self.notes.insert(0, f"{spec.name} is still on {spec.source.name}")
            return Outcome(False, reason, self.notes)
        if spec.move:
            self.say(f"verified on {spec.target.name}; deleting {spec.name} on {spec.source.name}")
            try:
                op = self.source.delete_instance(spec.name)
                self.claim(spec.source, op.id)
                self.follow(self.source, op)
            except LXDError as exc:
                self._start_target_if_moved()
                return Outcome(
                    False,
                    f"copied and verified on {spec.target.name}, but {spec.name} could not be deleted "
                    f"on {spec.source.name}: {exc}",
                    [f"{spec.name} is now on both {spec.source.name} and {spec.target.name}"],
                )
            self._start_target_if_moved()
            return Outcome(True, f"now on {spec.target.name}" + self._as_name(), self.notes)
        self._restart_source()
        return Outcome(
            True,
            f"copy now on {spec.target.name}{self._as_name()}; {spec.name} stays on {spec.source.name}",
            self.notes,
        )

    def _as_name(self) -> str:
        return f" as {self.plan.target_name}" if self.plan.target_name != self.spec.name else ""

    # -- the three ways ----------------------------------------------------------------------

    def _copy(self) -> None:
        spec, plan = self.spec, self.plan
        only = spec.instance_only
        if plan.same_server:
            self.say(f"copying {spec.name} within {spec.target.name}")
            op = self.target.copy_instance_here(
                plan.body, spec.name, instance_only=only, source_project=spec.source.project or "default"
            )
            self.claim(spec.target, op.id)
            self.follow(self.target, op)
            return
        if spec.mode == "pull":
            server, certificate = self.source.remote_server()
            end = self.source.migration_source(spec.name, instance_only=only)
            self.claim(spec.source, end.operation.id)
            try:
                target_op = self.target.migration_pull(
                    plan.body,
                    source_url=self.source.operation_url(end.operation.id, server),
                    certificate=certificate,
                    secrets=end.secrets,
                    instance_only=only,
                )
            except LXDError:
                self._cancel(self.source, end.operation.id)
                raise
            source_op = end.operation
        else:
            server, certificate = self.target.remote_server()
            end = self.target.migration_sink(plan.body, instance_only=only)
            target_op = end.operation
            self.claim(spec.target, target_op.id)
            try:
                source_op = self.source.migration_push(
                    spec.name,
                    target_url=self.target.operation_url(target_op.id, server),
                    certificate=certificate,
                    secrets=end.secrets,
                    instance_only=only,
                )
            except LXDError:
                self._cancel(self.target, target_op.id)
                raise
        self.claim(spec.target, target_op.id)
        self.claim(spec.source, source_op.id)
        self.say(
            f"{spec.mode}: {spec.source.name} operation {source_op.id[:8]} -> "
            f"{spec.target.name} operation {target_op.id[:8]}"
        )
        self._follow_both(source_op, target_op)

    def _follow_both(self, source_op, target_op) -> None:
        """Both ends at once: one that ended may be forgotten by LXD 5 s later."""
        failures: dict[str, LXDError] = {}

        def wait(side: str, client: LXDClient, op) -> None:
            close_old_connections()
            try:
                self.follow(client, op)
            except LXDError as exc:
                failures[side] = exc
                other = target_op if side == "source" else source_op
                other_client = self.target if side == "source" else self.source
                self._cancel(other_client, other.id)  # the other end would wait for nothing
            finally:
                close_old_connections()

        threads = [
            threading.Thread(target=wait, args=("source", self.source, source_op), daemon=True),
            threading.Thread(target=wait, args=("target", self.target, target_op), daemon=True),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise _TransferBroke(failures)

    def _rename(self) -> Outcome:
        spec, plan = self.spec, self.plan
        self.say(f"renaming {spec.name} to {plan.target_name}")
        try:
            op = self.source.rename_instance(spec.name, plan.target_name)
            self.claim(spec.source, op.id)
            self.follow(self.source, op)
        except LXDError as exc:
            self._restart_source()
            return Outcome(False, str(exc), [f"{spec.name} is unchanged on {spec.source.name}"])
        self._start_target_if_moved()
        return Outcome(True, f"now on {spec.target.name} as {plan.target_name}", self.notes)

    def _move_within(self) -> Outcome:
        """Same server, same name, another pool: LXD moves it itself (instance_pool_move)."""
        spec = self.spec
        self.say(f"moving {spec.name} to pool {spec.pool} on {spec.target.name}")
        try:
            op = self.source.move_to_pool(spec.name, spec.pool, instance_only=spec.instance_only)
            self.claim(spec.source, op.id)
            self.follow(self.source, op)
        except LXDError as exc:
            self._restart_source()
            return Outcome(
                False, self._reason(exc), [f"{spec.name} is still in its pool on {spec.source.name}"]
            )
        self._start_target_if_moved()
        return Outcome(True, f"now on {spec.target.name} in pool {spec.pool}", self.notes)

    # -- checks and repairs ------------------------------------------------------------------

    def _verify(self) -> None:
        """The target is what was asked for before a move may delete the source."""
        spec, plan = self.spec, self.plan
        self.say(f"verifying {plan.target_name} on {spec.target.name}")
        made = self.target.instance(plan.target_name)
        problems = []
        if user_config(made) != {
            k: v for k, v in plan.body["config"].items() if not k.startswith("volatile.")
        }:
            problems.append("its config differs")
        if (made.get("devices") or {}) != plan.body["devices"]:
            problems.append("its devices differ")
        if list(made.get("profiles") or []) != plan.body["profiles"]:
            problems.append("its profiles differ")
        count = len(made.get("snapshots") or [])
        if count != plan.snapshots:
            problems.append(f"it has {count} snapshots instead of {plan.snapshots}")
        if problems:
            raise LXDError(f"the copy on {spec.target.name} is not what was asked: {', '.join(problems)}")

    def _reason(self, exc: LXDError) -> str:
        spec = self.spec
        if isinstance(exc, _TransferBroke):
            parts = []
            for side, host in (("target", spec.target), ("source", spec.source)):
                error = exc.failures.get(side)
                if error is None:
                    continue
                if isinstance(error, HostUnreachable):
                    parts.append(f"{host.name} stopped answering during the {spec.verb}: {error}")
                else:
                    parts.append(f"{host.name}: {error}")
            text = "; ".join(parts)
        else:
            text = str(exc)
        if is_out_of_space(text) or self._filled_the_pool(exc):
            plan = self.plan
            pool = f" (pool {plan.target_pool})" if plan.target_pool else ""
            text = f"not enough space on {spec.target.name}{pool}: {text}"
            if plan.target_free is not None:
                text += f" [{filesizeformat(plan.target_free)} were free there before the {spec.verb}]"
        return text

    def _filled_the_pool(self, exc: LXDError) -> bool:
        """Both ends of a failed rsync report the first error either saw: often the sender's
        "broken pipe" rather than the receiver's "no space left".  A transfer that broke
        after sending (nearly) as much as the target's pool had free ran out of space."""
        free = self.plan.target_free
        if free is None or not isinstance(exc, _TransferBroke):
            return False
        sent = [
            n
            for error in exc.failures.values()
            if isinstance(error, OperationFailed) and (n := sent_bytes(error.operation)) is not None
        ]
        return bool(sent) and max(sent) >= free * 0.9

    def _cancel(self, client: LXDClient, op_id: str) -> None:
        # Already over, or its host is gone: either way nobody waits on it.
        with contextlib.suppress(LXDError):
            client.cancel_operation(op_id)

    def _clean_target(self) -> None:
        """Remove what the failed copy left on the target (LXD usually has already)."""
        spec, plan = self.spec, self.plan
        try:
            if not _exists(self.target, plan.target_name):
                return
            brief = self.target.instance_brief(plan.target_name)
            if (brief.get("status") or "").lower() in ("running", "frozen"):
                self.follow(self.target, self.target.change_state(plan.target_name, "stop", force=True))
            self.follow(self.target, self.target.delete_instance(plan.target_name))
            self.notes.append(f"the partial {plan.target_name} was removed from {spec.target.name}")
        except LXDError as exc:
            PendingCleanup.objects.create(
                host_name=spec.target.name,
                project=plan.project,
                instance=plan.target_name,
                not_before=self.target_started_at or timezone.now(),
                reason=f"{plan.description} failed",
                last_error=str(exc),
            )
            self.notes.append(
                f"{spec.target.name} is not answering: a partial {plan.target_name} there will be removed "
                "as soon as it answers again"
            )

    def _restart_source(self) -> None:
        if not self.stopped_source:
            return
        spec = self.spec
        try:
            op = self.source.change_state(spec.name, "start")
            self.claim(spec.source, op.id)
            self.follow(self.source, op)
            self.stopped_source = False
            self.notes.append(f"{spec.name} was started again on {spec.source.name}")
        except LXDError as exc:
            self.notes.append(f"{spec.name} could not be started again on {spec.source.name}: {exc}")

    def _start_target_if_moved(self) -> None:
        if not self.stopped_source:
            return
        spec, plan = self.spec, self.plan
        host, client = (spec.target, self.target) if spec.move else (spec.source, self.source)
        name = plan.target_name if spec.move else spec.name
        try:
            op = client.change_state(name, "start")
            self.claim(host, op.id)
            self.follow(client, op)
            self.notes.append(f"{name} was started on {host.name}")
        except LXDError as exc:
            self.notes.append(f"{name} could not be started on {host.name}: {exc}")


class _TransferBroke(LXDError):
    def __init__(self, failures: dict[str, LXDError]):
        self.failures = failures
        super().__init__("; ".join(f"{side}: {error}" for side, error in failures.items()))


# -- leftovers -----------------------------------------------------------------------------------


def clean_pending(now=None) -> list[str]:
    """Remove the half-made instances failed copies left on hosts that were not answering.
    Only an instance created at or after the failed copy began is removed.  Returns what was
    removed ("host/instance")."""
    removed = []
    hosts = {h.name: h for h in Host.objects.select_related("client_certificate")}
    for pending in PendingCleanup.objects.all():
        host = hosts.get(pending.host_name)
        if host is None:
            pending.delete()
            continue
        client = host.client(timeout=PLAN_TIMEOUT).for_project(pending.project)
        try:
            try:
                instance = client.instance(pending.instance)
            except LXDAPIError as exc:
                if exc.error_code != 404:
                    raise
                pending.delete()  # LXD removed it itself, or someone did
                continue
            created = tasklog.parse_time(instance.get("created_at") or "")
            if created is not None and created < pending.not_before - _SKEW:
                pending.delete()  # an older instance of that name: not ours to remove
                continue
            if _is_running(instance):
                client.wait(client.change_state(pending.instance, "stop", force=True), timeout=60)
            op = client.delete_instance(pending.instance)
            if op.id:
                client.wait(op, timeout=120)
            record(
                None,
                "instance.cleanup",
                host=host,
                target=pending.instance,
                error=pending.reason,
                actor="dashboard",
            )
            removed.append(f"{host.name}/{pending.instance}")
            pending.delete()
        except LXDError as exc:
            pending.attempts += 1
            pending.last_error = str(exc)
            pending.save(update_fields=["attempts", "last_error"])
    return removed
