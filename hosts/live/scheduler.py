"""The backup scheduler: runs beside the events relay, in the relay's worker process, so that
schedules run with no browser open.

- `manage.py relay` (external mode) runs it in its own process;
- in the embedded mode the web process starts it (with the relay) as soon as daphne's reactor
  runs, without waiting for a request (dashboard/startup.py).

Every few seconds (DASHBOARD_SCHEDULER_TICK_SECONDS) it asks the domain to run what is due
(hosts/domain/schedules.py tick), in a worker thread: the database lease there decides which
process runs schedules, so two processes started by mistake never both do.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import uuid

from django.conf import settings
from django.utils import timezone

from ..concurrency import SLOW, in_thread
from ..domain import schedules

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, tick_seconds: float | None = None):
        self.tick_seconds = tick_seconds or float(settings.DASHBOARD_SCHEDULER_TICK_SECONDS)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ticks = 0

    def tick(self) -> list[schedules.RunReport]:
        return schedules.tick(self.holder, timezone.now())

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    await in_thread(self.tick, pool=SLOW)  # backups are made in it
                except Exception:  # the database is busy or gone for a moment: next tick
                    log.exception("the backup scheduler's tick failed")
                self.ticks += 1
                await asyncio.sleep(self.tick_seconds)
        finally:
            await in_thread(schedules.release_lease, self.holder)


_embedded: asyncio.Task | None = None
_lock = threading.Lock()


def ensure_embedded() -> asyncio.Task | None:
    """Start this process's scheduler once, on the running loop (embedded mode only)."""
    global _embedded
    if getattr(settings, "DASHBOARD_RELAY", "embedded") != "embedded":
        return None
    loop = asyncio.get_running_loop()
    with _lock:
        if _embedded is None or _embedded.done() or _embedded.get_loop() is not loop:
            _embedded = loop.create_task(Scheduler().run(), name="backup-scheduler")
        return _embedded


async def start_worker() -> None:
    """The web process's share of the worker (embedded mode): the relay and the scheduler.
    The hub first: it keeps the relay's first "host synced" facts for the sockets to come."""
    from . import hub, relay

    await hub.ensure_hub()
    relay.ensure_embedded()
    ensure_embedded()
