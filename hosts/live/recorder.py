"""The task log's writer for the relay: coalesces task updates and writes them off the
event loop.  Progress is written at most twice a second, an operation's end at once (a page
reloaded right after it must list it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from channels.db import database_sync_to_async

from ..domain import tasklog
from ..models import Task

log = logging.getLogger(__name__)


class TaskRecorder:
    BATCH = 0.5

    def __init__(self, attributed: Callable[[str, str, str], None]):
        """`attributed(host, operation id, username)`: told when the task log learns who
        started an operation (from the audit trail)."""
        self.attributed = attributed
        self.pending: dict[tuple[str, str], tasklog.TaskRecord] = {}
        self.wake = asyncio.Event()
        self.urgent = asyncio.Event()
        self.saving: asyncio.Future | None = None  # a write in its thread: waited for on stop

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
        if self.saving is not None and not self.saving.done():
            await asyncio.wait([self.saving])
        await self.flush()

    async def flush(self) -> None:
        self.wake.clear()
        batch, self.pending = self.pending, {}
        if not batch:
            return
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
        for (host, op_id), username in attributed.items():
            self.attributed(host, op_id, username)
