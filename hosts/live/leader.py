"""Exactly one active relay per deployment, however many `manage.py relay` run.

Each relay process takes a lock before it opens any upstream connection; the others stand by
and try again every POLL seconds.  The lock is held by a live process, not for a time:

    PostgreSQL   pg_try_advisory_lock on a connection of its own: the server drops it the
                 moment that session ends (a SIGKILLed holder's socket closes with it)
    SQLite       flock() on a file in the data directory (SQLite means one machine): the
                 kernel drops it with the holder's last file descriptor

So a standby takes over within POLL seconds of the holder's death, with no lease to wait out,
and a holder that loses its lock (PostgreSQL restarted, its connection gone) notices within
CHECK seconds and stops relaying before it tries to take the lock again.  The new holder's
relay resynchronises every host on connect (relay.HostRelay.resync): running operations are
recorded and vanished ones marked lost, and the task log's unique (host, operation) makes a
second record of the same operation impossible.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.db import DatabaseError, connections

from ..concurrency import in_thread

log = logging.getLogger(__name__)

POLL = 0.5  # a standby's attempts to take the lock
CHECK = 1.0  # the holder's checks that the lock is still its own
# One advisory-lock key per deployment (a database is one deployment): a fixed 63-bit number.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"lxd-fleet-dashboard:relay").digest()[:8], "big") >> 1


class Lock(Protocol):
    def acquire(self) -> bool: ...  # one attempt, never waits for the holder

    def held(self) -> bool: ...

    def release(self) -> None: ...


class PostgresLock:
    """A session-level advisory lock on a connection of its own (not the pooled per-thread
    connections Django closes after each unit of work)."""

    def __init__(self, alias: str = "default"):
        self.alias = alias
        self.conn = None

    def acquire(self) -> bool:
        self.release()
        conn = connections.create_connection(self.alias)
        conn.inc_thread_sharing()  # used from whichever pool thread runs the check
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
                got = bool(cursor.fetchone()[0])
        except DatabaseError:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self.conn = conn
        return True

    def held(self) -> bool:
        if self.conn is None:
            return False
        try:
            with self.conn.cursor() as cursor:
                cursor.execute("SELECT 1")  # the lock lives exactly as long as this session
            return True
        except DatabaseError:
            return False

    def release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(DatabaseError):
                conn.close()  # ending the session releases the lock


class FileLock:
    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        if self.fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def held(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)


def deployment_lock() -> Lock:
    if connections["default"].vendor == "postgresql":
        return PostgresLock()
    return FileLock(Path(settings.DATA_DIR) / "relay.lock")


async def _try(call, patience: float) -> bool:
    """A lock call in a thread; an error or no answer within `patience` counts as "no"."""
    try:
        return await asyncio.wait_for(in_thread(call, db=False), patience)
    except (DatabaseError, OSError, TimeoutError) as exc:
        log.warning("relay lock: %s", exc or type(exc).__name__)
        return False


async def lead(
    run: Callable[[], Awaitable[None]],
    *,
    make_lock: Callable[[], Lock] = deployment_lock,
    say: Callable[[str], None] = log.warning,
    poll: float = POLL,
    check: float = CHECK,
) -> None:
    """Run `run()` only while this process holds the deployment's lock; stand by otherwise.
    Returns when `run()` returns; cancelled, it stops `run()` and releases the lock."""
    lock = make_lock()
    standing_by = False
    try:
        while True:
            if not await _try(lock.acquire, patience=5 * check):
                if not standing_by:
                    say("relay: standby (another relay holds the lock)")
                    standing_by = True
                await asyncio.sleep(poll)
                continue
            standing_by = False
            say("relay: active")
            task = asyncio.get_running_loop().create_task(run(), name="relay")
            try:
                while not task.done():
                    await asyncio.wait({task}, timeout=check)
                    if not task.done() and not await _try(lock.held, patience=3 * check):
                        say("relay: standby (lost the lock)")
                        standing_by = True
                        break
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            if not standing_by:
                task.result()  # run() ended by itself (or failed): so do we
                return
            # A lock whose connection may still hang in a thread is left to it; a new one next.
            with contextlib.suppress(Exception):
                lock.release()
            lock = make_lock()
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(in_thread(lock.release, db=False), 5)
