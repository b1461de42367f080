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

import logging
from dataclasses import dataclass

from django.utils import timezone

from .. import concurrency
from ..concurrency import submit
from ..lxd import LXDClient, LXDError
from ..lxd.migration import copy_body, profiles_root_pool, root_disk, user_config
from ..models import AuditEntry, Host, Task
from . import jobs, tasklog
from .actions import instance_lock
from .audit import record
from .policy import PolicyRefused, check_write
from .transfer import PLAN_TIMEOUT, Outcome, Transfer, exists, is_running

log = logging.getLogger(__name__)

MODES = ("pull", "push")


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
    if not (same_place and target_name == spec.name) and exists(target, target_name):
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
    running = is_running(instance)
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


def _audit_target(spec: TransferSpec) -> str:
    return f"{spec.source.name}/{spec.name} -> {spec.target.name}/{spec.target_name or spec.name}"


# -- running it ----------------------------------------------------------------------------------


def start_transfer(user, plan: Plan) -> Task:
    """The task log row, at once; the transfer itself in a worker thread."""
    task = _job(user, plan)
    jobs.submit(task, lambda: run_transfer(user, plan, task))
    return task


def transfer_now(user, plan: Plan) -> tuple[Task, Outcome]:
    """The same, in the caller's thread (a command, a test): (the task row, the outcome)."""
    task = _job(user, plan)
    return task, run_transfer(user, plan, task)


def start_many(user, plans: list[Plan], parallel: int) -> list[Task]:
    """Bulk: every transfer gets its row now; at most `parallel` run at a time."""
    tasks = [_job(user, plan) for plan in plans]
    pairs = list(zip(plans, tasks, strict=True))
    lanes = max(1, min(parallel, len(pairs)))

    def lane(mine: list[tuple[Plan, Task]]) -> None:
        for plan, task in mine:  # one after the other within a lane
            jobs.run_job(task, lambda plan=plan, task=task: run_transfer(user, plan, task))

    # `parallel` lanes, each one job of the pool running its transfers in turn.
    for i in range(lanes):
        submit(lane, pairs[i::lanes], pool=concurrency.jobs())
    return tasks


def _job(user, plan: Plan) -> Task:
    spec = plan.spec
    targets = [("instance", plan.target_name), ("source", f"{spec.source.name}/{spec.name}")]
    return tasklog.start_job(spec.target.name, "transfer", plan.description, targets, user)


def run_transfer(user, plan: Plan, task: Task) -> Outcome:
    """Do it (in the caller's thread) and write the outcome into `task` and the audit trail."""
    spec = plan.spec
    started = timezone.now()
    work = Transfer(user, plan, task)
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
