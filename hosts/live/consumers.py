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
from . import fragments, groups, relay
from .hub import Mailbox, ensure_hub
from .socket_auth import LoginBound

log = logging.getLogger(__name__)

TOPICS = {"hosts", "instances", "operations", "tasks"}
# How long a finished operation stays in the panel (the task log keeps it for good).
KEEP_DONE, KEEP_FAILED = 8.0, 60.0


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


def _joinable(frame: str) -> bool:
    """Frames that may share one websocket message (table parts must travel alone: HTML
    parses a bare <tr> or <td> only among its own kind)."""
    return not frame.lstrip().startswith(("<tr", "<td", "<tbody"))


class LiveConsumer(LoginBound, AsyncWebsocketConsumer):
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
        # Subscribed before accepting, so nothing sent after the page sees "open" is missed.
        self.hub = await ensure_hub()
        relay.ensure_embedded()
        self.hub.subscribers.add(self)
        await self.accept()
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

    async def _send(self, frames: list[str]) -> None:
        """Send frames, joining neighbours into one message where HTML parsing allows."""
        batch: list[str] = []
        for frame in frames:
            if _joinable(frame):
                batch.append(frame)
                continue
            if batch:
                await self.send(text_data="".join(batch))
                batch = []
            await self.send(text_data=frame)
        if batch:
            await self.send(text_data="".join(batch))

    async def send_initial(self) -> None:
        """What the page may have missed: after a reconnect, or between render and open."""
        frames: list[str] = []
        if "hosts" in self.watch.topics:
            for name, status, detail in await _db(_host_states)():
                if self.watch.wants_host(name):
                    frames += fragments.host_status(name, status, detail)
        if "operations" in self.watch.topics:
            names = [n for n in await _db(_host_names)() if self.watch.wants_host(n)]
            running = await _db(_running_operations)(names)
            self.seen_ops = {(m["host"], m["id"]) for m in running}
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

    def offer(self, message: dict) -> None:
        """Called by the hub for every message: keep what this page shows."""
        kind, host = message.get("type"), message.get("host", "")
        if not self.watch.wants_host(host):
            return
        if kind == groups.HOST_STATUS:
            wanted = "hosts" in self.watch.topics
        elif kind in (groups.INSTANCE_STATUS, groups.INSTANCE_STATE, groups.INSTANCE_GONE):
            wanted = "instances" in self.watch.topics
        elif kind == groups.OPERATION:
            wanted = "operations" in self.watch.topics or self.watch.wants_task(message)
        else:
            wanted = False
        if wanted:
            self.mailbox.put(message)

    async def _deliver(self) -> None:
        while True:
            await self.mailbox.ready.wait()
            frames: list[str] = []
            for message in self.mailbox.take():
                try:
                    frames += self.render(message)
                except Exception:
                    log.exception("could not render %s", message.get("type"))
            if frames:
                await self._send(frames)

    def render(self, message: dict) -> list[str]:
        kind = message["type"]
        if kind == groups.HOST_STATUS:
            return fragments.cached(
                message,
                "host",
                lambda: fragments.host_status(message["host"], message["status"], message["detail"]),
            )
        if kind == groups.INSTANCE_STATUS:
            return fragments.cached(message, "status", lambda: fragments.instance_status(message))
        operate = self.can_operate
        if kind == groups.INSTANCE_GONE:
            return fragments.cached(
                message, f"gone{operate}", lambda: fragments.instance_gone(message, operate)
            )
        if kind == groups.INSTANCE_STATE:
            return fragments.cached(
                message, f"state{operate}", lambda: fragments.instance_state(message, operate)
            )
        if kind == groups.OPERATION:
            return self._operation_frames(message)
        return []

    def _operation_frames(self, message: dict) -> list[str]:
        frames: list[str] = []
        key = (message["host"], message["id"])
        if "operations" in self.watch.topics and shows_progress(
            message.get("op_class", ""), message.get("description", "")
        ):
            first = key not in self.seen_ops
            self.seen_ops.add(key)
            frames += fragments.cached(
                message, f"op{first}", lambda: fragments.operation_item(message, first)
            )
            if message.get("final") and key not in self.timers:
                delay = KEEP_DONE if message.get("ok") else KEEP_FAILED
                self.timers[key] = asyncio.get_running_loop().create_task(self._remove_later(key, delay))
        if self.watch.wants_task(message):
            first = key not in self.seen_tasks
            self.seen_tasks.add(key)
            operate = self.can_operate
            frames += fragments.cached(
                message, f"task{first}{operate}", lambda: fragments.task_row(message, first, operate)
            )
        return frames

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

    async def _remove_later(self, key: tuple[str, str], delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            self.seen_ops.discard(key)
            await self._send(fragments.operation_removed(*key))
        finally:
            self.timers.pop(key, None)
