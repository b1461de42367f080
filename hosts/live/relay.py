"""The events relay: exactly one /1.0/events connection per registered host, however many
browsers watch, turned into small messages on channel-layer groups (see groups.py).

    Relay          the hosts' supervisor: one named asyncio task per host, started and
                   stopped (cancelled *and awaited*) as hosts are added, changed, removed
    HostRelay      one host: connect, resynchronise, read events, reconnect with backoff;
                   its trackers (instances.py, operations.py) turn events into messages
                   and keep the live model; a state listing at the counters' cadence
    TaskRecorder   (recorder.py) writes the task log in batches, off the event loop
    ModelWriter    (model.py) writes the live model in batches, off the event loop; a
                   change reaches the browsers once it is written

The path of an event is a straight line: parse (lxd/events.py) -> track (the trackers,
given only the callables they need) -> message (groups.py) -> publish (the channel layer)
-> render (each process's hub and consumers).  The relay publishes facts ("host synced")
rather than letting readers look inside it.

Embedded by default (`ensure_embedded()` from the first browser socket, in the web
process, with the in-memory channel layer).  With a cross-process channel layer it runs
as its own process, `manage.py relay`, so every web worker shares one connection per host.

No blocking I/O runs on the event loop: LXD HTTP calls and the database go through
threads.  The relay never renders HTML; it never forwards an event as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time

from channels.layers import get_channel_layer
from django.conf import settings

from ..concurrency import SLOW, in_thread
from ..domain import tasklog
from ..domain.hoststatus import status_of_error
from ..fleet import model as fleet_model
from ..lxd.errors import LXDError
from ..lxd.events import Lifecycle, events_path, open_events
from ..lxd.operation import Operation
from ..models import Host
from . import groups
from .instances import LOOK_AGAIN_AFTER_START, InstanceTracker
from .model import HostModel, ModelWriter
from .operations import OperationTracker
from .recorder import TaskRecorder

log = logging.getLogger(__name__)

BACKOFF_FIRST, BACKOFF_MAX = 0.25, 8.0
HOSTS_POLL = 5.0  # seconds between re-reads of the host list (a host added by another process)
# The state listing (recursion=2: a state query per running instance) may take a while on a
# big host; it runs in the pool for slow calls, one at a time per host.
COUNTERS_TIMEOUT = (3.0, 120.0)


def _in_thread(func, *args, **kwargs):
    """Blocking LXD I/O, in a pool thread (never the thread Django's sync views share)."""
    return in_thread(func, *args, db=False, **kwargs)


class HostRelay:
    """One host's upstream connection and what it tells us."""

    def __init__(self, host: Host, *, layer, note, model: HostModel):
        self.layer = layer
        self.model = model
        self.host = host
        self.name = host.name
        self.status = ""
        self.detail = ""
        self.connected_at: float | None = None
        self.connections = 0  # upstream connections opened over this object's life
        self.local_address = None  # our end of the current one (tests match it daemon-side)
        self.synced = asyncio.Event()  # set once a resync has completed on the current connection
        # Wall time of the first connection: what changed before it was never seen as an
        # event (a page rendered earlier may be stale: the consumer asks it to catch up).
        self.watching_since: float | None = None
        self.client = None  # the current connection's LXDClient (state fetches use it)
        self.operations = OperationTracker(self.name, send=self.send, note=note)
        # One tracker per LXD project (instance names are unique within one): the events
        # stream covers every project the certificate may see, each event naming its own.
        # Each keeps its project's part of the live model.
        self.trackers: dict[str, InstanceTracker] = {}
        self.listed = False  # a first listing was handed out (trackers made later are past theirs)
        self.task: asyncio.Task | None = None
        self.children: set[asyncio.Task] = set()
        # Messages leave in the order events were applied, whatever the channel layer
        # does, and only once the model changes noted before them are written (a page
        # rendered from the model meanwhile then sees a newer version: it catches up).
        # The sender task sends them; the reading loop never waits for the database.
        self.outbox: asyncio.Queue[tuple[str, dict, int]] = asyncio.Queue()
        self._flushing = asyncio.Lock()
        self._queued = asyncio.Event()

    # -- sending ------------------------------------------------------------------------

    def send(self, message: dict, group: str | None = None) -> None:
        message.setdefault("host", self.name)
        message["seq"] = groups.next_seq()
        self.outbox.put_nowait((group or groups.host_group(self.name), message, self.model.writer.count))
        self._queued.set()

    async def flush(self) -> None:
        async with self._flushing:
            while not self.outbox.empty():
                group, message, stamp = self.outbox.get_nowait()
                await self.model.writer.written(stamp)
                try:
                    await self.layer.group_send(group, message)
                except Exception:
                    log.exception("could not send %s for %s", message.get("type"), self.name)

    async def _sender(self) -> None:
        while True:
            await self._queued.wait()
            self._queued.clear()
            await self.flush()

    def spawn(self, coro, name: str) -> asyncio.Task:
        """A child task that dies with this host's relay."""
        task = asyncio.get_running_loop().create_task(coro, name=f"relay:{self.name}:{name}")
        self.children.add(task)
        task.add_done_callback(self._child_done)
        return task

    def _child_done(self, task: asyncio.Task) -> None:
        self.children.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("relay task %s failed", task.get_name(), exc_info=task.exception())

    async def set_status(self, status: str, detail: str = "") -> None:
        if (status, detail) == (self.status, self.detail):
            return
        self.status, self.detail = status, detail
        self.send(groups.host_status(status, detail), groups.HOSTS)
        await in_thread(self.host.record_status, status, detail)

    # -- the connection loop ------------------------------------------------------------

    async def run(self) -> None:
        delay = BACKOFF_FIRST
        sender = asyncio.get_running_loop().create_task(self._sender(), name=f"relay:{self.name}:sender")
        try:
            while True:
                try:
                    await self._session()
                except LXDError as exc:
                    log.warning("%s: events stream ended: %s", self.name, exc)
                    await self.set_status(status_of_error(exc), str(exc))
                except (OSError, ValueError) as exc:
                    log.warning("%s: events stream failed: %r", self.name, exc)
                    await self.set_status(Host.Status.OFFLINE, f"{self.name}: {exc}")
                if self.connected_at is not None and time.monotonic() - self.connected_at > 30:
                    delay = BACKOFF_FIRST  # it had been up a while: retry promptly
                self.connected_at = None
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter
                delay = min(delay * 2, BACKOFF_MAX)
        finally:
            await self._stop_children()
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    async def _session(self) -> None:
        client = self.client = await _in_thread(self.host.client, timeout=(3.0, 30.0))
        uri, kwargs = await _in_thread(client.websocket_target, events_path(all_projects=True))
        stream = await open_events(uri, kwargs, label=self.name, fingerprint=self.host.server_fingerprint)
        self.connections += 1
        self.local_address = stream.local_address
        if self.watching_since is None:
            self.watching_since = time.time()
        log.info(
            "%s: events stream open from %s (connection %d)", self.name, self.local_address, self.connections
        )
        self.connected_at = time.monotonic()
        self.model.connected()
        try:
            await self.set_status(Host.Status.ONLINE)
            # Resynchronise while reading: LXD replays nothing, and a listener that
            # stops reading for 5 s is dropped.
            self.spawn(self.resync(), "resync")
            async for event in stream:
                self.model.heard()
                self.handle(event)
        finally:
            self.model.lost()
            await self._stop_children()
            await stream.close()

    async def _stop_children(self) -> None:
        self.operations.stop()
        children = list(self.children)
        for child in children:
            child.cancel()
        if children:
            await asyncio.gather(*children, return_exceptions=True)

    def instances(self, project: str = "default") -> InstanceTracker:
        """The tracker of one project's instances (made when the project first shows)."""
        tracker = self.trackers.get(project)
        if tracker is None:

            def send(message: dict, group: str | None = None) -> None:
                message["project"] = project
                self.send(message, group)

            async def fetch(name: str) -> dict | None:
                """One instance with its state and snapshots, None if it is gone."""
                instance = await _in_thread(self.client.for_project(project).instance_or_none, name)
                self.model.heard()
                return instance

            def store(rows: dict, every: set[str] | None = None) -> None:
                self.model.store(rows, every, project=project)

            tracker = InstanceTracker(
                send=send,
                spawn=self.spawn,
                fetch=fetch,
                busy=self.operations.busy,
                store=store,
                look_again=LOOK_AGAIN_AFTER_START,
            )
            # A project that shows after the first listing (or a host that had no instance at
            # all then): what it holds is news to the pages.
            tracker.baselined = self.listed
            self.trackers[project] = tracker
        return tracker

    def listing(self, instances: list[dict], started: float, *, with_state: bool) -> None:
        """A listing of every project, each project's part to its tracker: a project the
        listing no longer shows has no instances left; the model drops any project that is
        neither listed nor tracked (one kept from before a restart)."""
        by_project: dict[str, list[dict]] = {project: [] for project in self.trackers}
        for instance in instances:
            if isinstance(instance, dict):
                by_project.setdefault(instance.get("project") or "default", []).append(instance)
        # Every tracker first: one made while the listing is handed out is not its first.
        trackers = {project: self.instances(project) for project in by_project}
        for project, listed in by_project.items():
            trackers[project].listing(listed, started, with_state=with_state)
        self.listed = True
        self.model.projects(set(trackers))

    def handle(self, event: Operation | Lifecycle) -> None:
        """Apply one event; sends go out as tasks so reading never waits on them."""
        if isinstance(event, Lifecycle):
            self.instances(event.project).on_lifecycle(event)
        else:
            self.operations.on_update(event)
            if event.is_final:
                for name in event.instances:
                    self.instances(event.project).refresh(name)

    async def resync(self) -> None:
        started = time.monotonic()
        try:
            # LXD or Incus, and which version: kept fresh (a host may be upgraded, or moved
            # from LXD to Incus with lxd-to-incus, and come back on the same address).
            server = await _in_thread(self.client.server_info)
            await in_thread(self.host.record_server, server)
            instances = await _in_thread(self.client.instances, 1, all_projects=True)
            operations = await _in_thread(self.client.operations)
        except LXDError as exc:
            log.warning("resync of %s failed: %s", self.name, exc)
            return
        self.listing(instances, started, with_state=False)
        self.model.synced()
        self.spawn(self.counters(), "counters")
        for op in operations:
            self.operations.on_update(op.without_secrets())
        lost = await in_thread(tasklog.mark_lost, self.name, {op.id for op in operations})
        for task in lost:
            self.send(groups.task_message(task))
        self.synced.set()
        self.send(groups.host_synced(self.watching_since), groups.HOSTS)

    async def counters(self) -> None:
        """The state of every instance (memory, CPU, network counters; IPs an event did not
        announce), from one listing per host at the counters' cadence, whoever watches.
        Listings start early enough that the counters a page shows are never older than the
        cadence; at least a second (or the cadence) passes between two of them."""
        while True:
            started, wall = time.monotonic(), time.time()
            try:
                instances = await in_thread(
                    self.client.instances, 2, COUNTERS_TIMEOUT, all_projects=True, pool=SLOW, db=False
                )
            except LXDError as exc:
                log.warning("state listing of %s failed: %s", self.name, exc)
            else:
                self.listing(instances, started, with_state=True)
                self.model.counters(wall)
            took = time.monotonic() - started
            cadence = fleet_model.cadence()
            await asyncio.sleep(max(cadence - 2 * took, min(cadence, 1.0)))


class Relay:
    """Supervises one HostRelay task per registered host."""

    def __init__(self, layer=None, *, hosts_poll: float = HOSTS_POLL):
        self.layer = layer or get_channel_layer()
        self.hosts_poll = hosts_poll
        self.hosts: dict[str, HostRelay] = {}
        self._keys: dict[str, tuple] = {}
        self.recorder = TaskRecorder(attributed=self.attribute)
        self.model = ModelWriter()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.changed: asyncio.Event | None = None
        self.ready = asyncio.Event()

    @staticmethod
    def _key(host: Host) -> tuple:
        return (host.pk, host.endpoint, host.server_fingerprint, host.client_certificate_id)

    def notify_hosts_changed(self) -> None:
        """Thread-safe: re-read the host list now."""
        if self.loop is not None and self.changed is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.changed.set)

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.changed = asyncio.Event()
        _running.add(self)
        helpers = [
            self.loop.create_task(self.recorder.run(), name="relay:task-log"),
            self.loop.create_task(self.model.run(), name="relay:model"),
            self.loop.create_task(self._control(), name="relay:control"),
        ]
        try:
            while True:
                try:
                    await self.sync_hosts()
                except Exception:  # the database is busy or gone for a moment: try again
                    log.exception("could not read the host list")
                self.ready.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), self.hosts_poll)
                self.changed.clear()
        finally:
            _running.discard(self)
            await self.stop_hosts(list(self.hosts))
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await self.recorder.close()
            await self.model.close()

    async def _control(self) -> None:
        """Messages for the relay from other processes (a host added in a web worker)."""
        channel = await self.layer.new_channel()  # the default prefix: see hub.Hub.start
        await self.layer.group_add(groups.RELAY, channel)
        try:
            while True:
                message = await self.layer.receive(channel)
                if message.get("type") == groups.HOSTS_CHANGED:
                    self.changed.set()
        finally:
            await self.layer.group_discard(groups.RELAY, channel)

    async def sync_hosts(self) -> None:
        hosts = await in_thread(lambda: list(Host.objects.select_related("client_certificate")))
        wanted = {h.name: h for h in hosts}
        gone = [n for n in self.hosts if n not in wanted or self._keys[n] != self._key(wanted[n])]
        await self.stop_hosts(gone)
        for name, host in wanted.items():
            if name not in self.hosts:
                relay = HostRelay(
                    host, layer=self.layer, note=self.recorder.note, model=self.model.host(host.pk)
                )
                relay.task = self.loop.create_task(relay.run(), name=f"relay:{name}")
                self.hosts[name], self._keys[name] = relay, self._key(host)

    def attribute(self, host: str, op_id: str, claimed) -> None:
        """The task log found who started an operation: the host's tracker shows it."""
        relay = self.hosts.get(host)
        if relay is not None:
            relay.operations.attribute(op_id, claimed)

    async def stop_hosts(self, names: list[str]) -> None:
        stopping = [self.hosts.pop(n) for n in names]
        for name in names:
            self._keys.pop(name, None)
        for relay in stopping:
            relay.task.cancel()
        await asyncio.gather(*(r.task for r in stopping), return_exceptions=True)
        for relay in stopping:
            self.model.forget(relay.host.pk)


# -- the embedded relay (one per process, inside the web server's event loop) ----------------

_running: set[Relay] = set()  # every relay running in this process (normally one)
_embedded: Relay | None = None
_embedded_task: asyncio.Task | None = None
_lock = threading.Lock()


def mode() -> str:
    return getattr(settings, "DASHBOARD_RELAY", "embedded")


def ensure_embedded() -> Relay | None:
    """Start the in-process relay once, on the running loop (called by browser sockets)."""
    global _embedded, _embedded_task
    if mode() != "embedded":
        return None
    loop = asyncio.get_running_loop()
    with _lock:
        if _embedded_task is None or _embedded_task.done() or _embedded.loop not in (None, loop):
            _embedded = Relay()
            _embedded_task = loop.create_task(_embedded.run(), name="relay")
        return _embedded


def embedded() -> Relay | None:
    return _embedded if _embedded_task is not None and not _embedded_task.done() else None


async def stop_embedded() -> None:
    """Cancel the in-process relay and wait until every host task has ended."""
    global _embedded, _embedded_task
    task, _embedded, _embedded_task = _embedded_task, None, None
    if task is not None and not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def notify_hosts_changed() -> None:
    """After a host is added, changed or removed (from any thread)."""
    for relay in list(_running):
        relay.notify_hosts_changed()
    if mode() == "external":
        from asgiref.sync import async_to_sync

        try:
            async_to_sync(get_channel_layer().group_send)(groups.RELAY, {"type": groups.HOSTS_CHANGED})
        except Exception:  # the relay re-reads the host list every few seconds anyway
            log.warning("could not tell the relay that the hosts changed", exc_info=True)
