"""What the relay knows of one host's instances, and the two pushes per change.

First push: what the lifecycle event itself says (the new status), at once, with no LXD
call.  Second push: that one instance's full state (IPs, memory, snapshots), fetched
after a short pause that merges the bursts LXD sends (a snapshot of a running container
is snapshot-created + paused + resumed + the operation's end).

LXD delivers events out of order, so each instance remembers the timestamp of the last
status it applied and ignores older ones; a deleted instance leaves a tombstone so a late
"stopped" cannot bring its row back.

The tracker is given what it needs (`send` a message, `spawn` a task, `fetch` one instance,
`busy`: is an operation working on it) and nothing else: it is tested on plain inputs,
without a relay, a host or a database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass

from ..fleet.rows import row_config
from ..lxd.errors import LXDError
from ..lxd.events import Lifecycle
from ..lxd.network import shown_network
from . import groups

log = logging.getLogger(__name__)

STATUS_AFTER = {
    "instance-started": "Running",
    "instance-restarted": "Running",
    "instance-resumed": "Running",
    "instance-shutdown": "Stopped",
    "instance-stopped": "Stopped",
    "instance-paused": "Frozen",
}
REFRESH_AFTER = {
    *STATUS_AFTER,
    "instance-created",
    "instance-restored",
    "instance-updated",
    "instance-snapshot-created",
    "instance-snapshot-deleted",
    "instance-snapshot-renamed",
}
REFRESH_DELAY = 0.05
DELETED = "deleted"


@dataclass
class Seen:
    status: str
    ts: int = 0  # LXD timestamp (ns) of the event that set `status`
    touched: float = 0.0  # local monotonic time it was set


def slim(instance: dict) -> dict:
    """The instance as a row needs it, small enough to copy to every browser's channel:
    LXD's instance object without devices and backups, its config reduced to the image keys
    the row shows (no secrets: environment.*, cloud-init ...), snapshots as names, and the
    network reduced to the addresses a row shows (a bounded number)."""
    data = {
        k: v
        for k, v in instance.items()
        if k not in ("backups", "snapshots", "devices", "expanded_devices", "state", "expanded_config")
    }
    data["config"] = row_config(instance.get("config"))
    data["snapshots"] = [
        {"name": s.get("name", ""), "created_at": s.get("created_at", "")}
        for s in instance.get("snapshots") or []
    ]
    state = instance.get("state")
    if isinstance(state, dict):
        data["state"] = {k: v for k, v in state.items() if k != "network"}
        data["state"].update(shown_network(state))
    return data


class InstanceTracker:
    def __init__(
        self,
        *,
        send: Callable[[dict], None],
        spawn: Callable[[Coroutine, str], asyncio.Task],
        fetch: Callable[[str], Awaitable[dict | None]],
        busy: Callable[[str], bool],
    ):
        self.send, self.spawn, self.fetch, self.busy = send, spawn, fetch, busy
        self.seen: dict[str, Seen] = {}
        self.fresh: set[str] = set()  # rows the pages do not have yet (created, renamed)
        self.refreshing: dict[str, asyncio.Task] = {}
        self.dirty: set[str] = set()
        self.baselined = False

    def _gone(self, name: str, ts: int) -> None:
        self.seen[name] = Seen(DELETED, ts, time.monotonic())
        self.fresh.discard(name)
        self.send(groups.instance_gone(name))

    def on_lifecycle(self, event: Lifecycle) -> None:
        name = event.instance
        if not name:
            return
        seen = self.seen.get(name)
        if event.action == "instance-renamed":
            if event.old_name:
                self._gone(event.old_name, event.ts)
            self.seen[name] = Seen("", event.ts, time.monotonic())
            self.fresh.add(name)
            self.refresh(name)
            return
        if event.action == "instance-deleted":
            self._gone(name, event.ts)
            return
        if seen is not None and event.ts < seen.ts and event.action in STATUS_AFTER:
            return  # older than what we showed: LXD's delivery order is not event order
        if event.action == "instance-created":
            if seen is None or seen.status == DELETED:
                self.seen[name] = Seen("Stopped", event.ts, time.monotonic())
                self.fresh.add(name)
            if self.busy(name):
                return  # the creating operation's end refreshes it: the row appears when done
        status = STATUS_AFTER.get(event.action) if "/" not in event.name else None
        if status is not None:
            self.seen[name] = Seen(status, event.ts, time.monotonic())
            if name not in self.fresh:
                self.send(groups.instance_status(name, status, event.action))
        if event.action in REFRESH_AFTER:
            self.refresh(name)

    def refresh(self, name: str) -> None:
        """Fetch one instance's state soon; requests made meanwhile merge into one fetch."""
        if name in self.refreshing:
            self.dirty.add(name)
            return
        self.refreshing[name] = self.spawn(self._refresh(name), f"refresh:{name}")

    async def _refresh(self, name: str) -> None:
        try:
            await asyncio.sleep(REFRESH_DELAY)
            while True:
                self.dirty.discard(name)
                data = await self.fetch(name)
                if name in self.dirty:
                    continue  # something changed while we asked: this answer may be stale
                seen = self.seen.get(name)
                if data is None:
                    if seen is None or seen.status != DELETED:
                        self._gone(name, seen.ts if seen else 0)
                    return
                if seen is not None and seen.status == DELETED:
                    return
                self.seen[name] = Seen(data.get("status", ""), seen.ts if seen else 0, time.monotonic())
                new = name in self.fresh
                self.fresh.discard(name)
                self.send(groups.instance_state(name, slim(data), new))
                return
        except LXDError as exc:
            log.info("could not read %s: %s", name, exc)
        finally:
            self.refreshing.pop(name, None)
            self.dirty.discard(name)

    def resync(self, statuses: dict[str, str], started: float) -> None:
        """After (re)connecting: LXD replays nothing, so compare what it lists now with
        what we last knew, and push the differences.  Instances an event has touched
        since the listing began are left alone: the event is at least as new."""
        if not self.baselined:
            self.baselined = True
            for name, status in statuses.items():
                self.seen.setdefault(name, Seen(status, 0, time.monotonic()))
            return
        for name, status in statuses.items():
            seen = self.seen.get(name)
            if seen is not None and seen.touched > started:
                continue
            if seen is None or seen.status == DELETED:
                self.seen[name] = Seen(status, 0, time.monotonic())
                self.fresh.add(name)
                self.refresh(name)
            elif seen.status != status:
                seen.status, seen.touched = status, time.monotonic()
                self.send(groups.instance_status(name, status))
                self.refresh(name)
        for name, seen in list(self.seen.items()):
            if name not in statuses and seen.status != DELETED and seen.touched <= started:
                self._gone(name, seen.ts)
