"""What the relay knows of one host's operations: ordered, monotonic, throttled.

LXD delivers operation events out of order (Running before Pending, 7 % then 4 %): an
update older than the last one applied is dropped, a finished operation stays finished,
and the percentage never goes back within a stage.  Progress is pushed at most
`PUSH_INTERVAL` apart (a 1 MB unpack sends ~30 updates in 40 ms); status changes and the
end are pushed at once.  Every update is noted for the task log (the TaskRecorder
coalesces them and writes off the event loop).

The tracker is given what it needs (`send` a message, `note` a task record) and nothing
else: it is tested on plain inputs, without a relay, a host or a database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..domain import tasklog
from ..lxd.operation import Operation, Progress
from ..lxd.sizes import human_rate
from ..lxd.timestamps import parse_time
from .groups import operation_message

PUSH_INTERVAL = 0.1
FORGET_AFTER = 120.0  # keep finished operations this long, to drop their late events


@dataclass
class OpState:
    update: Operation
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
    stages_seen: set[str] = field(default_factory=set)

    @property
    def final(self) -> bool:
        return self.update.is_final

    def take_progress(self, progress: Progress | None) -> None:
        if progress is None:
            return
        if progress.stage != self.stage and progress.stage in self.stages_seen:
            return  # a late update of a stage already left behind: stages only go forward
        self.stages_seen.add(progress.stage)
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

    def message(self, host: str) -> dict:
        u = self.update
        return operation_message(
            host=host,
            op_id=u.id,
            op_class=u.op_class,
            description=u.description,
            status=tasklog.status_of(u.status_code),
            status_code=u.status_code,
            err=u.err,
            percent=self.percent,
            stage=self.stage_label,
            rate=human_rate(self.speed),
            eta=self.eta(),
            text=self.text,
            targets=u.objects or self.claimed_targets,
            started_at=u.created_at,
            username=self.username,
            exit_code=u.exit_code,
        )

    def record(self, host: str) -> tasklog.TaskRecord:
        u = self.update
        return tasklog.TaskRecord(
            host_name=host,
            operation_id=u.id,
            op_class=u.op_class,
            description=u.description,
            targets=u.objects,
            status=tasklog.status_of(u.status_code),
            status_code=u.status_code,
            started_at=parse_time(u.created_at),
            error=u.err,
            progress=self.summary(),
            percent=self.percent,
        )


class OperationTracker:
    def __init__(
        self,
        host: str,
        *,
        send: Callable[[dict], None],
        note: Callable[[tasklog.TaskRecord], None],
    ):
        self.host = host
        self.send = send
        self.note = note
        self.ops: dict[str, OpState] = {}

    def busy(self, instance: str) -> bool:
        """Is an unfinished operation working on this instance?"""
        return any(not op.final and instance in op.update.instances for op in self.ops.values())

    def on_update(self, update: Operation) -> None:
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
            if update.ts < op.update.ts or update.phase < op.update.phase:
                return  # an older event delivered late
            # Pending -> Running looks the same on a page (LXD sends both at once): only
            # the end is worth a push of its own; progress is throttled.
            urgent = update.is_final
            op.update = update
            op.take_progress(update.progress)
        if op.final:
            op.finished_at = time.monotonic()
        self.note(op.record(self.host))
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
            self.send(op.message(self.host))
        elif op.trailing is None:
            op.trailing = asyncio.get_running_loop().call_later(wait, self._trail, op)

    def _trail(self, op: OpState) -> None:
        op.trailing = None
        op.last_push = time.monotonic()
        self.send(op.message(self.host))

    def _forget_old(self) -> None:
        now = time.monotonic()
        for op_id in [i for i, o in self.ops.items() if o.finished_at and now - o.finished_at > FORGET_AFTER]:
            del self.ops[op_id]

    def flush(self) -> None:
        """Send every throttled push now (the latest state of each operation)."""
        for op in self.ops.values():
            if op.trailing is not None:
                op.trailing.cancel()
                self._trail(op)

    def stop(self) -> None:
        for op in self.ops.values():
            if op.trailing is not None:
                op.trailing.cancel()
                op.trailing = None
