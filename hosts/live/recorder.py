"""The task log's writer for the relay: coalesces task updates and writes them off the
event loop.  Progress is written at most twice a second, an operation's end at once (a page
reloaded right after it must list it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from ..concurrency import in_thread
from ..domain import tasklog
from ..models import Task

log = logging.getLogger(__name__)


class TaskRecorder:
    BATCH = 0.5
    # The dashboard learns an operation's id only from LXD's answer: a short one (an image
    # upload's unpacking) may end before the claim naming who started it is written.  Ended
    # operations nobody had claimed are looked up once more, this much later.
    LATE_CLAIM = 1.0

    def __init__(self, attributed: Callable[[str, str, tasklog.Claimed], None]):
        """`attributed(host, operation id, claimed)`: told when the task log learns who started
        an operation (and what it concerns, where LXD names nothing)."""
        self.attributed = attributed
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
        self.saving = asyncio.ensure_future(in_thread(tasklog.save, batch.values()))
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
            try:
                self._attribute(await in_thread(tasklog.claims, due))
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
        for (host, op_id), claimed in found.items():
            self.attributed(host, op_id, claimed)
