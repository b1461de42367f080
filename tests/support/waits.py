"""Waiting on a condition, never on the clock: one wait for sync code, one for async code."""

from __future__ import annotations

import asyncio
import inspect
import time

FIRST_PAUSE, LONGEST_PAUSE = 0.02, 0.25


def _failure(what: str, timeout: float, last) -> AssertionError:
    seen = f" (last seen: {last!r})" if last not in (None, False) else ""
    return AssertionError(f"{what}: not within {timeout} s{seen}")


def wait_until(predicate, timeout: float = 15.0, what: str = "the condition"):
    """Call `predicate()` until it returns something truthy, and return that.  Between calls
    the pause grows from 20 ms to 250 ms: quick when the condition is quick, cheap when not.
    An AssertionError raised by the predicate counts as "not yet" (the last one is reported)."""
    deadline = time.monotonic() + timeout
    pause, last = FIRST_PAUSE, None
    while True:
        try:
            result = predicate()
        except AssertionError as exc:
            result, last = None, exc
        else:
            if result:
                return result
            last = result
        if time.monotonic() >= deadline:
            raise _failure(what, timeout, last)
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 1.5, LONGEST_PAUSE)


async def wait_until_async(predicate, timeout: float = 15.0, what: str = "the condition"):
    """wait_until for the event loop: `predicate()` may return a value or an awaitable
    (a sync predicate that blocks belongs in `asyncio.to_thread`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pause, last = FIRST_PAUSE, None
    while True:
        try:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
        except AssertionError as exc:
            result, last = None, exc
        else:
            if result:
                return result
            last = result
        if loop.time() >= deadline:
            raise _failure(what, timeout, last)
        await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
        pause = min(pause * 1.5, LONGEST_PAUSE)


async def relay_synced(host: str, relay=None, timeout: float = 15.0) -> None:
    """The relay (the embedded one by default) has caught up with `host` on its current
    connection: what changes from now on reaches the groups as events."""
    from hosts.live import relay as relays

    def synced():
        running = relay if relay is not None else relays.embedded()
        watched = running.hosts.get(host) if running is not None else None
        return watched is not None and watched.synced.is_set()

    await wait_until_async(synced, timeout, f"the relay synced with {host}")


def operation_forgotten(daemon, operation_id: str) -> bool:
    """LXD no longer knows the operation (it drops finished ones about 5 s after they end)."""
    response = daemon.admin().request("GET", f"/1.0/operations/{operation_id}")
    return response.status_code == 404
