"""What the relay knows of one host's instances: the live model of them, kept in step with
LXD's events, and the two pushes per change.

First push: what the lifecycle event itself says (the new status), at once, with no LXD
call.  Second push: that one instance's full state (IPs, memory, snapshots), fetched
after a short pause that merges the bursts LXD sends (a snapshot of a running container
is snapshot-created + paused + resumed + the operation's end).

Full listings (`listing`): recursion=1 on each connect (LXD replays nothing), recursion=2 at
the counters' cadence (memory, CPU and network counters of running instances; an instance
created or deleted without our hearing of it is found there too).  Every change goes to the
model (`store`) and to the pages (`send`).

LXD delivers events out of order, so each instance remembers the timestamp of the last
status it applied and ignores older ones; a deleted instance leaves a tombstone so a late
"stopped" cannot bring its row back.  An event for an instance the model does not know
makes it fetch that instance (and add its row) rather than trust a status alone.

The tracker is given what it needs (`send` a message, `spawn` a task, `fetch` one instance,
`busy`: is an operation working on it, `store` rows in the model) and nothing else: it is
tested on plain inputs, without a relay, a host or a database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass

from ..fleet.model import model_data, model_detail
from ..lxd.errors import LXDError
from ..lxd.events import Lifecycle
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
# A started instance gets its address from DHCP a moment later, which LXD tells nobody:
# look again after these delays (the counters' listing would find it too, later).
LOOK_AGAIN_AFTER_START = (2.0, 5.0)
DELETED = "deleted"

Row = tuple[dict, dict]  # (data, detail): hosts/fleet/model.py
Store = Callable[..., None]  # store({name: Row | None}, every=set of names | None)


@dataclass
class Seen:
    status: str
    ts: int = 0  # LXD timestamp (ns) of the event that set `status`
    touched: float = 0.0  # local monotonic time it was set


def with_status(row: Row, status: str) -> Row:
    """The row with a new status, from an event: the state LXD had before no longer holds
    (IPs and memory come with the fetch that follows)."""
    data = {**row[0], "status": status}
    if isinstance(data.get("state"), dict):
        data["state"] = {**data["state"], "status": status}
    return data, row[1]


def _without_state(data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in ("state", "snapshots")}


class InstanceTracker:
    def __init__(
        self,
        *,
        send: Callable[[dict], None],
        spawn: Callable[[Coroutine, str], asyncio.Task],
        fetch: Callable[[str], Awaitable[dict | None]],
        busy: Callable[[str], bool],
        store: Store | None = None,
        look_again: tuple[float, ...] = (),
    ):
        """`look_again`: delays after a start at which to fetch the instance once more (the
        relay passes LOOK_AGAIN_AFTER_START; plain-input tests leave it out)."""
        self.send, self.spawn, self.fetch, self.busy = send, spawn, fetch, busy
        self.look_again = look_again
        self.store: Store = store or (lambda rows, every=None: None)
        self.seen: dict[str, Seen] = {}
        self.rows: dict[str, Row] = {}  # the model: what the pages show of each instance
        self.fresh: set[str] = set()  # rows the pages do not have yet (created, renamed)
        self.refreshing: dict[str, asyncio.Task] = {}
        self.dirty: set[str] = set()
        self.baselined = False

    def _gone(self, name: str, ts: int) -> None:
        self.seen[name] = Seen(DELETED, ts, time.monotonic())
        self.fresh.discard(name)
        self.rows.pop(name, None)
        self.store({name: None})
        self.send(groups.instance_gone(name))

    def _put(self, name: str, row: Row) -> None:
        self.rows[name] = row
        self.store({name: row})

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
        elif self.baselined and name not in self.rows and (seen is None or seen.status != DELETED):
            # Not in the model (an event that overtook the listing, a lost one): the fetch
            # below adds its row; a status alone would update a row no page has.
            self.fresh.add(name)
        status = STATUS_AFTER.get(event.action) if "/" not in event.name else None
        if status is not None:
            self.seen[name] = Seen(status, event.ts, time.monotonic())
            if name not in self.fresh:
                if name in self.rows:
                    self._put(name, with_status(self.rows[name], status))
                self.send(groups.instance_status(name, status, event.action))
            if event.action != "instance-paused" and status == "Running":
                for delay in self.look_again:
                    self.spawn(self._look_again(name, delay), f"look-again:{name}")
        if event.action in REFRESH_AFTER or name in self.fresh:
            self.refresh(name)

    async def _look_again(self, name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        if name in self.rows:
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
                row = (model_data(data), model_detail(data))
                if new or row != self.rows.get(name):
                    self._put(name, row)
                    self.send(groups.instance_state(name, row[0], new))
                return
        except LXDError as exc:
            log.info("could not read %s: %s", name, exc)
        finally:
            self.refreshing.pop(name, None)
            self.dirty.discard(name)

    def listing(self, instances: list[dict], started: float, *, with_state: bool) -> None:
        """Every instance of the host, as a listing that began at `started` (monotonic) shows
        them: recursion=1 after each connect (LXD replays nothing), recursion=2 (with state)
        at the counters' cadence.  The model becomes the listing; the differences from what
        the pages were sent are pushed.  Instances an event or a fetch has touched since the
        listing began are left alone: what that said is at least as new."""
        first = not self.baselined
        self.baselined = True
        listed = {str(i["name"]): i for i in instances if isinstance(i, dict) and i.get("name")}
        changed: dict[str, Row | None] = {}
        for name, instance in listed.items():
            seen = self.seen.get(name)
            if seen is not None and seen.touched > started:
                continue
            status = str(instance.get("status") or "")
            row = (model_data(instance), model_detail(instance))
            old = self.rows.get(name)
            if not with_state and old is not None:
                if old[0].get("status") == status:
                    row = ({**old[0], **_without_state(row[0])}, {**old[1], "rev": row[1]["rev"]})
                else:
                    row = (row[0], {"rev": row[1]["rev"]})  # the old state no longer holds
            if first:
                self.seen.setdefault(name, Seen(status, 0, time.monotonic()))
                self.rows[name] = changed[name] = row
                continue
            if seen is None or seen.status == DELETED:
                self.seen[name] = Seen(status, 0, time.monotonic())
                self.rows[name] = changed[name] = row
                if with_state:
                    self.send(groups.instance_state(name, row[0], True))
                else:
                    self.fresh.add(name)
                    self.refresh(name)
                continue
            if row == old:
                continue
            self.rows[name] = changed[name] = row
            if seen.status != status:
                seen.status, seen.touched = status, time.monotonic()
                self.send(groups.instance_status(name, status))
            if with_state:
                self.send(groups.instance_state(name, row[0], name in self.fresh))
                self.fresh.discard(name)
            else:
                self.refresh(name)
        for name, seen in list(self.seen.items()):
            if name not in listed and seen.status != DELETED and seen.touched <= started:
                self.seen[name] = Seen(DELETED, seen.ts, time.monotonic())
                self.fresh.discard(name)
                self.rows.pop(name, None)
                changed[name] = None
                self.send(groups.instance_gone(name))
        self.store(changed, every=set(self.rows))

    def resync(self, statuses: dict[str, str], started: float) -> None:
        """A listing of names and statuses only (recursion=1 reduced): see `listing`."""
        self.listing([{"name": n, "status": s} for n, s in statuses.items()], started, with_state=False)
