"""The one way the dashboard runs blocking work (LXD calls, database access) off the calling
thread: bounded thread pools, named by what waits in them.

    in_thread(func, *args)      from async code (the relay, websockets): awaits func in a
                                thread, with Django's database connections handled as
                                channels' database_sync_to_async does
    parallel(func, items)       from sync code (views, bulk actions): func over items at once,
                                results in order
    submit(func, *args)         a Future, for code that starts work now and collects it later

Three pools: downloads hold a reader each for as long as they last (STREAMS), and the
expensive calls (recursion=2 state listings, operations followed to
their end) can never hold up the quick ones a first paint waits for.  Code running in a pool
may start work in the *other* pool and wait for it, never in its own (it could wait for a
thread that is waiting for it).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from django.conf import settings
from django.db import close_old_connections

T = TypeVar("T")
R = TypeVar("R")

QUICK = ThreadPoolExecutor(max_workers=48, thread_name_prefix="quick")  # listings, single reads, DB
SLOW = ThreadPoolExecutor(max_workers=24, thread_name_prefix="slow")  # state listings, followed operations
STREAMS = ThreadPoolExecutor(
    max_workers=32, thread_name_prefix="stream"
)  # downloads read ahead (views/streaming.py)


_jobs: ThreadPoolExecutor | None = None
_jobs_lock = threading.Lock()


def jobs() -> ThreadPoolExecutor:
    """The dashboard's own long jobs (a copy, a move, a backup started from a page):
    DASHBOARD_TRANSFER_WORKERS threads, so a burst of requests queues rather than opening a
    thread (and a database connection) each."""
    global _jobs
    with _jobs_lock:
        if _jobs is None:
            _jobs = ThreadPoolExecutor(
                max_workers=int(settings.DASHBOARD_TRANSFER_WORKERS), thread_name_prefix="job"
            )
        return _jobs


def _with_connections(func: Callable[..., R], *args, **kwargs) -> R:
    close_old_connections()
    try:
        return func(*args, **kwargs)
    finally:
        close_old_connections()


async def in_thread(
    func: Callable[..., R], *args: Any, pool: ThreadPoolExecutor = QUICK, db: bool = True, **kwargs: Any
) -> R:
    """Run blocking `func` in a pool thread and await its result.  db=False for work that
    touches no database (a chunk of a download): no connection bookkeeping around it."""
    loop = asyncio.get_running_loop()
    call = functools.partial(_with_connections, func) if db else func
    return await loop.run_in_executor(pool, functools.partial(call, *args, **kwargs))


def submit(func: Callable[..., R], *args: Any, pool: ThreadPoolExecutor = QUICK, **kwargs: Any) -> Future:
    return pool.submit(_with_connections, func, *args, **kwargs)


def parallel(func: Callable[[T], R], items: Iterable[T], *, pool: ThreadPoolExecutor = QUICK) -> list[R]:
    """func(item) for every item at once; the results (or the first exception) in order."""
    futures = [submit(func, item, pool=pool) for item in items]
    return [future.result() for future in futures]
