"""Browser websockets: join the groups of what the page shows, push rendered fragments.

    <div hx-ext="ws" ws-connect="/ws/live/?topics=hosts,operations">   (templates/hosts/partials/live.html)

Topics: `hosts` (status badges), `instances` (fleet rows), `operations` (the progress
panel), `tasks` (task log rows; filters `host`, `instance`, `status` as on the page).
`host=<name>` limits everything to one host.

Login is required (anonymous sockets are refused during the handshake), every request a
browser sends is checked against its role, fresh from the database, and the socket closes
when its login ends (hosts/socket_auth.py).  No LXD code here:
the relay sends messages, this process's hub (hosts/hub.py) hands each socket those its
page shows, and this renders them (hosts/fragments.py).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
from collections.abc import Hashable
from dataclasses import dataclass
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth import get_user_model

from ..concurrency import in_thread
from ..domain import tasklog
from ..domain.roles import OPERATOR, RANK, VIEWER, has_role
from ..fleet.model import changed_since
from ..lxd.operation import shows_progress
from ..models import Host, Task
from . import fragments, groups, relay, wire
from .hub import Mailbox, ensure_hub
from .socket_auth import LoginBound

log = logging.getLogger(__name__)

TOPICS = {"hosts", "instances", "operations", "tasks"}
INTERRUPTED = "Live updates are interrupted: the dashboard will catch up when they are back."


@dataclass
class Watch:
    topics: set[str]
    host: str = ""
    instance: str = ""
    status: str = ""
    since: float = 0.0  # when the page was rendered (server clock)
    model: float = 0.0  # the live model's version the page shows (hosts/fleet/model.py)

    @classmethod
    def from_query(cls, query: bytes) -> Watch:
        params = {k: v[-1] for k, v in parse_qs(query.decode("latin-1")).items()}
        since, model = _seconds(params.get("since")), _seconds(params.get("model"))
        topics = {t for t in params.get("topics", "").split(",") if t}
        if not topics or topics - TOPICS:
            raise ValueError(f"unknown topics {', '.join(sorted(topics - TOPICS)) or '(none)'}")
        status = params.get("status", "")
        if status and status not in Task.Status.values:
            raise ValueError(f"unknown task status {status!r}")
        return cls(topics, params.get("host", ""), params.get("instance", ""), status, since, model)

    def wants_host(self, name: str) -> bool:
        return not self.host or self.host == name

    def wants_task(self, message: dict) -> bool:
        if "tasks" not in self.topics or not self.wants_host(message["host"]):
            return False
        if self.instance and self.instance not in message.get("instances", []):
            return False
        return not self.status or self.status == message.get("status")


def _seconds(value: str | None) -> float:
    """A time a page passes back (seconds since the epoch); anything else counts as none."""
    try:
        seconds = float(value or 0)
    except ValueError:
        return 0.0
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0


def _db(func):
    """Database reads off the event loop, not in the one thread Django's sync views share
    (a slow view must not hold up a socket)."""
    return functools.partial(in_thread, func)


def _fresh_has_role(user_id: int, role: str) -> bool:
    user = get_user_model().objects.filter(pk=user_id).first()
    return user is not None and has_role(user, role)


def _host_names() -> list[str]:
    return list(Host.objects.values_list("name", flat=True))


def _host_states() -> list[tuple[str, str, str]]:
    return list(Host.objects.values_list("name", "status", "status_detail"))


def _running_operations(names: list[str]) -> list[dict]:
    return [groups.task_message(t) for t in tasklog.running(names)]


def frames_for(message: dict, audience: Hashable) -> list[str]:
    """The fragments of `message` for one audience (LiveConsumer.audience): depends on
    nothing else, so a process renders it once for all the sockets of that audience."""
    kind = audience[0]
    if kind == "host":
        return fragments.host_status(message["host"], message["status"], message["detail"])
    if kind == "status":
        return fragments.instance_status(message)
    if kind == "gone":
        return fragments.instance_gone(message, audience[1])
    if kind == "state":
        return fragments.instance_state(message, audience[1])
    if kind == "removed":
        return fragments.operation_removed(message["host"], message["id"])
    if kind == "interrupted":
        return fragments.live_error(INTERRUPTED)
    if kind == "resumed":
        return fragments.live_cleared() + fragments.live_resync()
    if kind == "op":
        _, op_first, task = audience
        frames: list[str] = []
        if op_first is not None:
            frames += fragments.operation_item(message, op_first)
        if task is not None:
            frames += fragments.task_row(message, *task)
        return frames
    return []


class LiveConsumer(LoginBound, AsyncWebsocketConsumer):
    # No channel-layer channel of its own: the process's hub receives for every socket (with
    # Redis, a channel per socket would be one more waiter on the process's receive lock).
    channel_layer_alias = "live sockets listen through the hub"

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()  # refused in the handshake: HTTP 403
            return
        self.user_id = user.pk
        if not await _db(_fresh_has_role)(self.user_id, VIEWER):
            await self.close()
            return
        # Rows carry action buttons for operators only (the actions check the role again).
        self.can_operate = await _db(_fresh_has_role)(self.user_id, OPERATOR)
        # Closed when this login ends: logout, deactivation, role lost (hosts/socket_auth.py).
        if not await self.bind_login(VIEWER):
            await self.close()
            return
        self.seen_ops: set[tuple[str, str]] = set()
        self.seen_tasks: set[tuple[str, str]] = set()
        self.timers: dict[tuple[str, str], asyncio.Task] = {}
        self.mailbox = Mailbox()
        self.worker: asyncio.Task | None = None
        self.wire = None
        self.direct = False  # pushes written at once; False: through the mailbox
        self.hub = None
        try:
            self.watch = Watch.from_query(self.scope.get("query_string", b""))
        except ValueError as exc:
            self.watch = None
            await self.accept()
            await self._send(fragments.live_error(f"Live updates refused: {exc}."))
            await self.close(code=4400)
            return
        # The hub first: it hears the embedded relay's very first "host synced".
        # Subscribed before accepting, so nothing sent after the page sees "open" is missed
        # (it waits in the mailbox until the page has its initial state).
        self.hub = await ensure_hub()
        relay.ensure_embedded()
        self.hub.subscribers.add(self)
        await self.accept()
        self.wire = wire.attach(self.scope, on_resume=self.mailbox.ready.set)
        await self.send_initial()
        loop = asyncio.get_running_loop()
        self.worker = loop.create_task(self._deliver(), name="live-socket")
        self.timers[("resync", "")] = loop.create_task(self._catch_up_if_stale())

    async def disconnect(self, code: int) -> None:
        if getattr(self, "hub", None) is not None:
            self.hub.subscribers.discard(self)
        await self.unbind_login()
        tasks = [*getattr(self, "timers", {}).values()]
        if getattr(self, "worker", None) is not None:
            tasks.append(self.worker)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if getattr(self, "wire", None) is not None:
            self.wire.close()

    async def _send(self, frames: list[str]) -> None:
        """Frames for this socket alone, through the ASGI path."""
        for text in wire.messages(frames):
            await self.send(text_data=text)

    async def send_initial(self) -> None:
        """What the page may have missed: after a reconnect, or between render and open."""
        frames: list[str] = [] if self.hub.online else fragments.live_error(INTERRUPTED)
        if "hosts" in self.watch.topics:
            for name, status, detail in await _db(_host_states)():
                if self.watch.wants_host(name):
                    frames += fragments.host_status(name, status, detail)
        if "operations" in self.watch.topics:
            names = [n for n in await _db(_host_names)() if self.watch.wants_host(n)]
            running = await _db(_running_operations)(names)
            self.seen_ops |= {(m["host"], m["id"]) for m in running}
            frames += fragments.operations_panel(running)
        await self._send(frames)

    async def revoked(self, code: int, message: str) -> None:
        if getattr(self, "hub", None) is not None:
            self.hub.subscribers.discard(self)
        await self._send(fragments.live_error(message))
        await self.close(code=code)

    async def role_changed(self, role: str) -> None:
        self.can_operate = RANK[role] >= RANK[OPERATOR]

    # -- requests from the browser (each one checked against the user's role) ---------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            request = json.loads(text_data or "")
        except ValueError:
            request = None
        if not isinstance(request, dict):
            await self._send(fragments.live_error("Live updates: a request must be a JSON object."))
            return
        if not await _db(_fresh_has_role)(self.user_id, VIEWER):
            await self._send(fragments.live_error("You are no longer allowed to watch this dashboard."))
            await self.close(code=4403)
            return
        if request.get("action") == "resync":
            await self.send_initial()
        else:
            await self._send(fragments.live_error("Live updates: unknown request."))

    # -- messages from the relay, through this process's hub ----------------------------------

    def audience(self, message: dict) -> Hashable | None:
        """Called by the hub for every message: which rendering this page needs, if any."""
        if not self.direct or self.wire.paused or self.mailbox.items:
            if self._wants(message):
                self.mailbox.put(message)  # in order, after what waits there already
            return None
        return self._audience(message)

    def _wants(self, message: dict) -> bool:
        kind, host = message.get("type"), message.get("host", "")
        if kind in (groups.LIVE_INTERRUPTED, groups.LIVE_RESUMED):
            return True
        if not self.watch.wants_host(host):
            return False
        if kind == groups.HOST_STATUS:
            return "hosts" in self.watch.topics
        if kind in (groups.INSTANCE_STATUS, groups.INSTANCE_STATE, groups.INSTANCE_GONE):
            return "instances" in self.watch.topics
        if kind == groups.OPERATION:
            return "operations" in self.watch.topics or self.watch.wants_task(message)
        return kind == groups.OPERATION_REMOVED and "operations" in self.watch.topics

    def _audience(self, message: dict) -> Hashable | None:
        """The audience, and what the page holds once it has the push (the operations and
        task rows it has, to insert a new one and replace a known one)."""
        if not self._wants(message):
            return None
        kind = message["type"]
        if kind == groups.LIVE_INTERRUPTED:
            return ("interrupted",)
        if kind == groups.LIVE_RESUMED:
            return ("resumed",)
        if kind == groups.HOST_STATUS:
            return ("host",)
        if kind == groups.INSTANCE_STATUS:
            return ("status",)
        if kind == groups.INSTANCE_GONE:
            return ("gone", self.can_operate)
        if kind == groups.INSTANCE_STATE:
            return ("state", self.can_operate)
        key = (message["host"], message["id"])
        if kind == groups.OPERATION_REMOVED:
            if key not in self.seen_ops:
                return None
            self.seen_ops.discard(key)
            return ("removed",)
        op_first = task = None
        if "operations" in self.watch.topics and shows_progress(
            message.get("op_class", ""), message.get("description", "")
        ):
            op_first = key not in self.seen_ops
            self.seen_ops.add(key)
        if self.watch.wants_task(message):
            task = (key not in self.seen_tasks, self.can_operate)
            self.seen_tasks.add(key)
        if op_first is None and task is None:
            return None
        return ("op", op_first, task)

    def render(self, message: dict, audience: Hashable) -> wire.Push:
        return fragments.cached(message, repr(audience), lambda: wire.Push(frames_for(message, audience)))

    def push(self, push: wire.Push) -> None:
        self.wire.write(push)

    async def _deliver(self) -> None:
        """Sends what waits in the mailbox: on a socket daphne does not serve directly, all
        pushes; otherwise those that came before the initial state or while the browser was
        not reading.  Once it is empty, pushes go direct again."""
        while True:
            if self.wire is not None and not self.wire.paused and not self.mailbox.items:
                self.direct = True
            await self.mailbox.ready.wait()
            if self.wire is not None and self.wire.paused:
                self.mailbox.ready.clear()  # resumeProducing sets it again
                continue
            for message in self.mailbox.take():
                try:
                    audience = self._audience(message)
                    if audience is None:
                        continue
                    push = self.render(message, audience)
                except Exception:
                    log.exception("could not render %s", message.get("type"))
                    continue
                if self.wire is not None:
                    self.push(push)
                else:
                    for text in push.texts:
                        await self.send(text_data=text)

    async def _catch_up_if_stale(self, patience: float = 5.0) -> None:
        """Have the page refresh its tables (static/js/live.js) if it may have missed a change:
        - it was rendered from the live model, which was written since (the relay pushes a
          change once it is written: a push this socket was too late for is such a write);
        - an embedded relay starts with the first browser socket: what changed between this
          page's render and the relay's first look at a host was never an event (the relay's
          "host synced" fact says when it started watching).
        Then mark the page caught up."""
        try:
            names = [n for n in await _db(_host_names)() if self.watch.wants_host(n)]
            if self.watch.model and await _db(changed_since)(names, self.watch.model):
                await self._send(fragments.live_resync())
                return
            if not self.watch.since:
                return
            wait = patience if relay.mode() == "embedded" else 0.0  # external: it runs all along
            deadline = asyncio.get_running_loop().time() + wait
            for name in names:
                remaining = max(0.0, deadline - asyncio.get_running_loop().time())
                since = await self.hub.watching_since(name, remaining)
                if since is not None and since > self.watch.since:
                    await self._send(fragments.live_resync())
                    return
        finally:
            self.timers.pop(("resync", ""), None)
            await self._send(fragments.live_synced())
