"""Running a planned copy or move (hosts/domain/copy.py plans it): the two hosts' LXD
operations, the check of what arrived, the repairs when it fails, and the removal of what a
failed copy left on a host that was not answering (PendingCleanup)."""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from ..concurrency import SLOW, parallel
from ..lxd import LXDAPIError, LXDClient, LXDError
from ..lxd.errors import HostUnreachable, OperationFailed
from ..lxd.migration import is_out_of_space, sent_bytes, user_config
from ..lxd.timestamps import parse_time
from ..models import Host, PendingCleanup, Task
from . import tasklog
from .audit import record

if TYPE_CHECKING:
    from .copy import Plan

STOP_GRACE = 30  # seconds a running instance gets to shut down before a copy
PLAN_TIMEOUT = (2.0, 15.0)
WORK_TIMEOUT = (2.0, 60.0)
_SKEW = dt.timedelta(seconds=30)  # between the dashboard's clock and a host's


@dataclass
class Outcome:
    ok: bool
    message: str
    notes: list[str] = field(default_factory=list)


def is_running(instance: dict) -> bool:
    return (instance.get("status") or "").lower() in ("running", "frozen")


def exists(client: LXDClient, name: str) -> bool:
    try:
        client.instance_brief(name)
    except LXDAPIError as exc:
        if exc.error_code == 404:
            return False
        raise
    return True


class Transfer:
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
                # The source stays the instance that runs; the verified copy waits, stopped.
                self._restart_source()
                return Outcome(
                    False,
                    f"copied and verified on {spec.target.name}, but {spec.name} could not be deleted "
                    f"on {spec.source.name}: {exc}",
                    [f"{spec.name} is now on both {spec.source.name} and {spec.target.name} (stopped there)"],
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
        tasklog.job_objects(
            self.task,
            [
                ("operation", f"{spec.source.name}/{source_op.id}"),
                ("operation", f"{spec.target.name}/{target_op.id}"),
            ],
        )
        self.say(
            f"{spec.mode}: {spec.source.name} operation {source_op.id[:8]} -> "
            f"{spec.target.name} operation {target_op.id[:8]}"
        )
        self._follow_both(source_op, target_op)

    def _follow_both(self, source_op, target_op) -> None:
        """Both ends at once: one that ended may be forgotten by LXD 5 s later."""
        failures: dict[str, LXDError] = {}

        def wait(end: tuple[str, LXDClient, object]) -> None:
            side, client, op = end
            try:
                self.follow(client, op)
            except LXDError as exc:
                failures[side] = exc
                other = target_op if side == "source" else source_op
                other_client = self.target if side == "source" else self.source
                self._cancel(other_client, other.id)  # the other end would wait for nothing

        parallel(wait, [("source", self.source, source_op), ("target", self.target, target_op)], pool=SLOW)
        if failures:
            raise TransferBroke(failures)

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
        if isinstance(exc, TransferBroke):
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
        if free is None or not isinstance(exc, TransferBroke):
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
            if not exists(self.target, plan.target_name):
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


class TransferBroke(LXDError):
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
            created = parse_time(instance.get("created_at") or "")
            if created is not None and created < pending.not_before - _SKEW:
                pending.delete()  # an older instance of that name: not ours to remove
                continue
            if is_running(instance):
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
