"""One subscription per web process to the relay's groups, fanned out to that process's
browser sockets: each message is rendered once per audience, and the same bytes go to every
socket of that audience.

Why not one channel-layer subscription per browser: with 100 browsers every message was
copied into 100 channels of at most 100 messages each; a busy moment filled them and the
layer silently dropped messages, so pages missed changes for good.  Here each message
crosses the layer once per process.

Why not a task per socket that renders what its mailbox holds: with 100 sockets an event
woke 100 tasks, each sending its copy through the ASGI path; the added latency grew with the
number of sockets (p50 40-85 ms with 100).  Here the hub asks each socket which audience it
is in for the message (a cheap, synchronous question that also updates what the socket's page
holds), renders once per audience, and writes the framed bytes to each socket at once
(wire.py).  A socket that cannot take them now (its page is still loading, or its browser
stopped reading) keeps them in its mailbox, which holds only the latest message per subject
(an instance's status, an instance's row, an operation): it skips what is already superseded
and never loses the current state.

If the channel layer fails (Redis restarted), the pages say so, and once the hub hears the
layer again they refresh their tables over HTTP (static/js/live.js), since what the relay
published meanwhile is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import OrderedDict
from collections.abc import Hashable
from typing import Protocol

from channels.layers import get_channel_layer

from ..concurrency import in_thread
from ..models import Host
from . import groups
from .wire import Push

log = logging.getLogger(__name__)


def subject(message: dict) -> Hashable:
    """Messages about the same subject supersede each other (the latest wins)."""
    kind, host = message.get("type"), message.get("host", "")
    if kind == groups.HOST_STATUS:
        return (kind, host)
    if kind == groups.INSTANCE_STATUS:
        return (kind, host, message["instance"])
    if kind in (groups.INSTANCE_STATE, groups.INSTANCE_GONE):
        # A row push and a removal replace each other; a status push after them is newer.
        return ("row", host, message["instance"])
    if kind in (groups.OPERATION, groups.OPERATION_REMOVED):
        return (groups.OPERATION, host, message["id"])
    return ("once", message.get("seq") or id(message))


class Mailbox:
    """Latest message per subject, in the order the latest ones arrived."""

    def __init__(self) -> None:
        self.items: OrderedDict[Hashable, dict] = OrderedDict()
        self.ready = asyncio.Event()

    def put(self, message: dict) -> None:
        key = subject(message)
        if key in self.items:
            # Keep a "new row" mark: a later state of an instance the page has no row
            # for yet must still insert it.
            if message.get("type") == groups.INSTANCE_STATE and self.items[key].get("new"):
                message = {**message, "new": True}
            del self.items[key]
        self.items[key] = message
        self.ready.set()

    def take(self) -> list[dict]:
        taken = list(self.items.values())
        self.items.clear()
        self.ready.clear()
        return taken


class Subscriber(Protocol):
    def audience(self, message: dict) -> Hashable | None:
        """Which rendering of `message` this socket's page needs now (None: none); frames for
        a socket that is not ready for direct writes go to its mailbox, and it answers None."""

    def render(self, message: dict, audience: Hashable) -> Push | None: ...

    def push(self, push: Push) -> None: ...


class LoginWatcher(Protocol):
    def login_message(self, message: dict) -> None: ...


# Channel layers forget a group membership after a day (group_expiry, 86400 s by default):
# the hub joins its groups again well before that.
RENEW_SECONDS = 3600
# How long a finished operation stays in the panel (the task log keeps it for good).
KEEP_DONE, KEEP_FAILED = 8.0, 60.0
RETRY_SECONDS = 0.5  # between attempts to reach a failed channel layer again


class Hub:
    def __init__(self, layer=None):
        self.layer = layer or get_channel_layer()
        self.subscribers: set[Subscriber] = set()
        self.logins: set[LoginWatcher] = set()  # sockets bound to a login (hosts/socket_auth.py)
        self.joined: set[str] = set()
        # The facts the relay published that a socket opened later still needs: when the
        # relay started watching each host (groups.host_synced), once it has caught up.
        self.synced: dict[str, float | None] = {}
        self.synced_changed = asyncio.Event()
        self.channel = ""
        self.task: asyncio.Task | None = None
        self.renewer: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.online = False  # False while the channel layer is failing
        self.removals: dict[tuple[str, str], asyncio.TimerHandle] = {}

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self._subscribe()
        self.online = True
        self.task = self.loop.create_task(self._run(), name="live-hub")
        self.renewer = self.loop.create_task(self._renew(), name="live-hub-renew")

    async def _subscribe(self) -> None:
        # The default prefix, as every consumer's channel has: channels-redis receives all of
        # a process's channels that share a prefix with one blocking pop, but a channel with
        # another prefix waits for that pop to time out (5 s) whenever a consumer's receive
        # holds the process's receive lock (every change reached the pages 5 s late).
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(groups.HOSTS, self.channel)
        await self.layer.group_add(groups.AUTH, self.channel)
        names = await in_thread(lambda: list(Host.objects.values_list("name", flat=True)))
        self.joined = set()
        for name in names:
            await self._join(name)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            try:
                for group in (groups.HOSTS, groups.AUTH, *map(groups.host_group, self.joined)):
                    await self.layer.group_add(group, self.channel)
            except Exception as exc:  # _run notices a failed layer and subscribes afresh
                log.warning("live updates: could not renew the hub's groups (%r)", exc)

    async def _join(self, host: str) -> None:
        if host and host not in self.joined:
            self.joined.add(host)
            await self.layer.group_add(groups.host_group(host), self.channel)

    async def _run(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except Exception as exc:  # Redis restarted or unreachable: the stream has a gap
                log.warning("live updates: the channel layer failed (%r); reconnecting", exc)
                await self._recover()
                continue
            if message.get("type") in (groups.SESSION_ENDED, groups.USER_CHANGED):
                for watcher in list(self.logins):
                    try:
                        watcher.login_message(message)
                    except Exception:
                        log.exception("a browser socket refused an auth message")
                continue
            if message.get("type") == groups.HOST_STATUS:
                await self._join(message.get("host", ""))  # a host registered since
            if message.get("type") == groups.HOST_SYNCED:
                self.synced[message.get("host", "")] = message.get("watching_since")
                self.synced_changed.set()
                self.synced_changed = asyncio.Event()
            self.fan_out(message)

    def fan_out(self, message: dict) -> None:
        """Render once per audience, then the same push to every socket of that audience."""
        audiences: dict[Hashable, list[Subscriber]] = {}
        for subscriber in list(self.subscribers):
            try:
                audience = subscriber.audience(message)
            except Exception:
                log.exception("a browser socket refused a message")
                continue
            if audience is not None:
                audiences.setdefault(audience, []).append(subscriber)
        for audience, members in audiences.items():
            try:
                push = members[0].render(message, audience)
            except Exception:
                log.exception("could not render %s", message.get("type"))
                continue
            if push is None or not push.texts:
                continue
            for subscriber in members:
                try:
                    subscriber.push(push)
                except Exception:
                    log.exception("could not push to a browser socket")
        if message.get("type") == groups.OPERATION and message.get("final"):
            self._remove_later(message)

    def _remove_later(self, message: dict) -> None:
        key = (message.get("host", ""), message.get("id", ""))
        if key in self.removals:
            return
        delay = KEEP_DONE if message.get("ok") else KEEP_FAILED
        self.removals[key] = self.loop.call_later(delay, self._remove, key)

    def _remove(self, key: tuple[str, str]) -> None:
        self.removals.pop(key, None)
        self.fan_out(groups.operation_removed(*key))

    async def _recover(self) -> None:
        """Until the layer answers again, pages say live updates are interrupted; then every
        page refreshes its tables over HTTP (what the relay published meanwhile is lost, and
        a restarted Redis forgot the hub's groups, joined again here).  The sockets stay open:
        closing a thousand at once would bring them all back at once."""
        self.online = False
        self.fan_out(groups.live_notice(groups.LIVE_INTERRUPTED))
        while True:
            await asyncio.sleep(RETRY_SECONDS)
            try:
                await self._subscribe()
            except Exception as exc:
                log.info("live updates: the channel layer still fails (%r)", exc)
                continue
            break
        self.online = True
        log.warning("live updates: the channel layer answers again")
        self.fan_out(groups.live_notice(groups.LIVE_RESUMED))

    async def watching_since(self, host: str, patience: float) -> float | None:
        """When the relay started watching `host`, once it has caught up with it; waits up to
        `patience` seconds for that fact, None if it has not come by then."""
        deadline = asyncio.get_running_loop().time() + patience
        while host not in self.synced:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.synced_changed.wait(), remaining)
        return self.synced[host]

    async def stop(self) -> None:
        tasks = [t for t in (self.task, self.renewer) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for handle in self.removals.values():
            handle.cancel()
        self.removals.clear()
        for group in (*map(groups.host_group, self.joined), groups.HOSTS, groups.AUTH):
            with contextlib.suppress(Exception):  # a layer that is down forgets them anyway
                await self.layer.group_discard(group, self.channel)


_hub: Hub | None = None
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


async def ensure_hub() -> Hub:
    """This process's hub, started on first use (on the running loop)."""
    global _hub
    loop = asyncio.get_running_loop()
    if _hub is not None and _hub.loop is loop and _hub.task is not None and not _hub.task.done():
        return _hub
    async with _locks.setdefault(loop, asyncio.Lock()):
        if _hub is None or _hub.loop is not loop or _hub.task is None or _hub.task.done():
            hub = Hub()
            await hub.start()
            _hub = hub
    return _hub


def hub_loop() -> asyncio.AbstractEventLoop | None:
    """The loop this process's hub receives on, while it runs (None: no browser here)."""
    hub = _hub
    if hub is None or hub.loop is None or hub.task is None or hub.task.done() or hub.loop.is_closed():
        return None
    return hub.loop


async def stop_hub() -> None:
    global _hub
    hub, _hub = _hub, None
    if hub is not None:
        await hub.stop()
