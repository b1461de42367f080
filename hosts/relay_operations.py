"""What the relay knows of one host's operations: ordered, monotonic, throttled.

LXD delivers operation events out of order (Running before Pending, 7 % then 4 %): an
update older than the last one applied is dropped, a finished operation stays finished,
and the percentage never goes back within a stage.  Progress is pushed at most
`PUSH_INTERVAL` apart (a 1 MB unpack sends ~30 updates in 40 ms); status changes and the
end are pushed at once.  Every update goes to the task log through the TaskRecorder, which
coalesces them and writes off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from channels.db import database_sync_to_async

from . import groups, tasklog
from .lxd.events import OperationUpdate, Progress
from .models import Task

if TYPE_CHECKING:
    from .relay import HostRelay, Relay

log = logging.getLogger(__name__)

PUSH_INTERVAL = 0.1
FORGET_AFTER = 120.0  # keep finished operations this long, to drop their late events


def _rank(status_code: int) -> int:
    if status_code >= 200:
        return 2
    return 0 if status_code == 105 else 1


def human_rate(speed: float | None) -> str:
    if not speed or speed <= 0:
        return ""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if speed < 1000 or unit == "TB":
            return f"{speed:.3g} {unit}/s" if speed < 100 else f"{speed:.0f} {unit}/s"
        speed /= 1000
    return ""


@dataclass
class OpState:
    update: OperationUpdate
    stage: str = ""
    stage_label: str = ""
    percent: int | None = None
    speed: float | None = None
    text: str = ""
    updates_in_stage: int = 0
    stage_started: float = field(default_factory=time.monotonic)
    stage_start_percent: int = 0
    last_push: float = 0.0
    finished_at: float | None = None
    username: str = ""
    claimed_targets: tuple[tuple[str, str], ...] = ()  # what the dashboard said it concerns
    trailing: asyncio.TimerHandle | None = None

    @property
    def final(self) -> bool:
        return self.update.is_final

    def take_progress(self, progress: Progress | None) -> None:
        if progress is None:
            return
        if progress.stage != self.stage:
            self.stage, self.stage_label = progress.stage, progress.label
            self.percent, self.updates_in_stage = None, 0
            self.stage_started, self.stage_start_percent = time.monotonic(), progress.percent or 0
        self.updates_in_stage += 1
        if progress.percent is not None:
            self.percent = max(self.percent or 0, progress.percent)
        # LXD's first speed of a stage is meaningless (e.g. 125 GB/s): skip it.
        self.speed = progress.speed if self.updates_in_stage > 1 else None
        self.text = progress.text or self.text

    def eta(self) -> float | None:
        if self.final or self.percent is None or self.percent >= 100:
            return None
        elapsed = time.monotonic() - self.stage_started
        done = self.percent - self.stage_start_percent
        if done <= 0 or elapsed < 0.5:
            return None
        return elapsed * (100 - self.percent) / done

    def summary(self) -> str:
        """The last progress in words, for the task log."""
        if not self.text:
            return ""
        if self.stage_label and self.stage_label.lower().split()[0] not in self.text.lower():
            return f"{self.stage_label}: {self.text}"
        return self.text

    def message(self) -> dict:
        u = self.update
        return {
            "type": groups.OPERATION,
            "id": u.id,
            "op_class": u.op_class,
            "description": u.description,
            "status": str(tasklog.status_of(u.status_code)),
            "status_code": u.status_code,
            "final": u.is_final,
            "ok": u.status_code == 200,
            "err": u.err,
            "percent": self.percent,
            "stage": self.stage_label,
            "rate": human_rate(self.speed),
            "eta": self.eta(),
            "text": self.text,
            "targets": [list(t) for t in u.objects or self.claimed_targets],
            "instances": list(u.instances),
            "started_at": u.created_at,
            "ended_at": "",
            "username": self.username,
        }

    def record(self, host_name: str) -> tasklog.TaskRecord:
        u = self.update
        return tasklog.TaskRecord(
            host_name=host_name,
            operation_id=u.id,
            op_class=u.op_class,
            description=u.description,
            targets=u.objects,
            status=tasklog.status_of(u.status_code),
            status_code=u.status_code,
            started_at=tasklog.parse_time(u.created_at),
            error=u.err,
            progress=self.summary(),
            percent=self.percent,
        )


class OperationTracker:
    def __init__(self, relay: HostRelay):
        self.relay = relay
        self.ops: dict[str, OpState] = {}

    def busy(self, instance: str) -> bool:
        """Is an unfinished operation working on this instance?"""
        return any(not op.final and instance in op.update.instances for op in self.ops.values())

    def on_update(self, update: OperationUpdate) -> None:
        if not update.id:
            return
        op = self.ops.get(update.id)
        if op is None:
            op = self.ops[update.id] = OpState(update)
            op.take_progress(update.progress)
            urgent = True
        else:
            if op.final:
                return
            if update.ts < op.update.ts or _rank(update.status_code) < _rank(op.update.status_code):
                return  # an older event delivered late
            # Pending -> Running looks the same on a page (LXD sends both at once): only
            # the end is worth a push of its own; progress is throttled.
            urgent = update.is_final and not op.final
            op.update = update
            op.take_progress(update.progress)
        if op.final:
            op.finished_at = time.monotonic()
        self.relay.relay.recorder.note(op.record(self.relay.name))
        self._push(op, urgent)
        self._forget_old()

    def attribute(self, op_id: str, claimed: tasklog.Claimed) -> None:
        """The task log found who started it (and what it concerns, where LXD does not
        say): show it on the next push (or now)."""
        op = self.ops.get(op_id)
        if op is None:
            return
        news = False
        if claimed.username and not op.username:
            op.username, news = claimed.username, True
        if claimed.targets and not op.claimed_targets:
            op.claimed_targets, news = claimed.targets, True
        if news:
            self._push(op, urgent=False)

    def _push(self, op: OpState, urgent: bool) -> None:
        now = time.monotonic()
        wait = op.last_push + PUSH_INTERVAL - now
        if urgent or wait <= 0:
            if op.trailing is not None:
                op.trailing.cancel()
                op.trailing = None
            op.last_push = now
            self.relay.send(op.message())
        elif op.trailing is None:
            op.trailing = asyncio.get_running_loop().call_later(wait, self._trail, op)

    def _trail(self, op: OpState) -> None:
        op.trailing = None
        op.last_push = time.monotonic()
        self.relay.send(op.message())

    def _forget_old(self) -> None:
        now = time.monotonic()
        for op_id in [i for i, o in self.ops.items() if o.finished_at and now - o.finished_at > FORGET_AFTER]:
            del self.ops[op_id]

    def stop(self) -> None:
        for op in self.ops.values():
            if op.trailing is not None:
                op.trailing.cancel()
                op.trailing = None


class TaskRecorder:
    """Coalesces task updates: progress is written at most twice a second, an operation's
    end at once (a page reloaded right after it must list it)."""

    BATCH = 0.5
    # The dashboard learns an operation's id only from LXD's answer: a short one (an image
    # upload's unpacking) may end before the claim naming who started it is written.  Ended
    # operations nobody had claimed are looked up once more, this much later.
    LATE_CLAIM = 1.0

    def __init__(self, relay: Relay):
        self.relay = relay
        self.pending: dict[tuple[str, str], tasklog.TaskRecord] = {}
        self.wake = asyncio.Event()
        self.urgent = asyncio.Event()
        self.saving: asyncio.Future | None = None  # a write in its thread: waited for on stop
        self.late: dict[tuple[str, str], float] = {}  # ended, unclaimed -> when to look again
        self.late_timer: asyncio.TimerHandle | None = None

    def note(self, record: tasklog.TaskRecord) -> None:
        self.pending[(record.host_name, record.operation_id)] = record
        self.wake.set()
        if record.status in Task.FINAL:
            self.urgent.set()

    async def run(self) -> None:
        while True:
            await self.wake.wait()
            self.urgent.clear()
            await self.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.urgent.wait(), self.BATCH)

    async def close(self) -> None:
        """Wait for a write under way, then write what is left."""
        if self.late_timer is not None:
            self.late_timer.cancel()
        if self.saving is not None and not self.saving.done():
            await asyncio.wait([self.saving])
        await self.flush()

    async def flush(self) -> None:
        self.wake.clear()
        batch, self.pending = self.pending, {}
        if batch:
            await self._save(batch)
        await self._late_claims()

    async def _save(self, batch: dict[tuple[str, str], tasklog.TaskRecord]) -> None:
        save = database_sync_to_async(tasklog.save, thread_sensitive=False)
        self.saving = asyncio.ensure_future(save(batch.values()))
        try:
            # Shielded: a cancelled relay must not leave a thread writing behind its back.
            attributed = await asyncio.shield(self.saving)
        except Exception:
            log.exception("could not write %d task(s) to the task log; will try again", len(batch))
            for key, record in batch.items():
                self.pending.setdefault(key, record)  # unless a newer state came meanwhile
            self.wake.set()
            return
        self._attribute(attributed)
        later = time.monotonic() + self.LATE_CLAIM
        for key, record in batch.items():
            if record.status in Task.FINAL and key not in attributed:
                self.late[key] = later

    async def _late_claims(self) -> None:
        now = time.monotonic()
        due = [key for key, when in self.late.items() if when <= now]
        for key in due:
            del self.late[key]
        if due:
            claims = database_sync_to_async(tasklog.claims, thread_sensitive=False)
            try:
                self._attribute(await claims(due))
            except Exception:
                log.exception("could not read the task log's claims")
        if self.late and self.late_timer is None:
            self.late_timer = asyncio.get_running_loop().call_later(
                max(0.0, min(self.late.values()) - now), self._late_due
            )

    def _late_due(self) -> None:
        self.late_timer = None
        self.wake.set()

    def _attribute(self, found: dict[tuple[str, str], tasklog.Claimed]) -> None:
        for (host_name, op_id), claimed in found.items():
            host = self.relay.hosts.get(host_name)
            if host is not None:
                host.operations.attribute(op_id, claimed)
