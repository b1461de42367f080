"""Browser websockets: join the groups of what the page shows, push rendered fragments.

    <div hx-ext="ws" ws-connect="/ws/live/?topics=hosts,operations">   (templates/hosts/partials/live.html)

Topics: `hosts` (status badges), `instances` (fleet rows), `operations` (the progress
panel), `tasks` (task log rows; filters `host`, `instance`, `status` as on the page).
`host=<name>` limits everything to one host.

Login is required (anonymous sockets are refused during the handshake) and every request a
browser sends is checked against its role, fresh from the database.  No LXD code here:
the relay sends messages, this renders them (hosts/fragments.py).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth import get_user_model

from . import fragments, groups, relay, tasklog
from .models import Host, Task
from .roles import VIEWER, has_role

TOPICS = {"hosts", "instances", "operations", "tasks"}
# How long a finished operation stays in the panel (the task log keeps it for good).
KEEP_DONE, KEEP_FAILED = 8.0, 60.0


@dataclass
class Watch:
    topics: set[str]
    host: str = ""
    instance: str = ""
    status: str = ""
    hosts: set[str] = field(default_factory=set)  # the hosts whose groups we joined

    @classmethod
    def from_query(cls, query: bytes) -> Watch:
        params = {k: v[-1] for k, v in parse_qs(query.decode("latin-1")).items()}
        topics = {t for t in params.get("topics", "").split(",") if t}
        if not topics or topics - TOPICS:
            raise ValueError(f"unknown topics {', '.join(sorted(topics - TOPICS)) or '(none)'}")
        status = params.get("status", "")
        if status and status not in Task.Status.values:
            raise ValueError(f"unknown task status {status!r}")
        return cls(topics, params.get("host", ""), params.get("instance", ""), status)

    def wants_host(self, name: str) -> bool:
        return not self.host or self.host == name

    def wants_task(self, message: dict) -> bool:
        if "tasks" not in self.topics or not self.wants_host(message["host"]):
            return False
        if self.instance and self.instance not in message.get("instances", []):
            return False
        return not self.status or self.status == message.get("status")


def _fresh_has_role(user_id: int, role: str) -> bool:
    user = get_user_model().objects.filter(pk=user_id).first()
    return user is not None and has_role(user, role)


def _host_names() -> list[str]:
    return list(Host.objects.values_list("name", flat=True))


def _host_states() -> list[tuple[str, str, str]]:
    return list(Host.objects.values_list("name", "status", "status_detail"))


def _running_operations(names: list[str]) -> list[dict]:
    return [tasklog.task_message(t) for t in tasklog.running(names)]


class LiveConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()  # refused in the handshake: HTTP 403
            return
        self.user_id = user.pk
        if not await database_sync_to_async(_fresh_has_role)(self.user_id, VIEWER):
            await self.close()
            return
        self.seen_ops: set[tuple[str, str]] = set()
        self.seen_tasks: set[tuple[str, str]] = set()
        self.timers: dict[tuple[str, str], asyncio.Task] = {}
        self.hosts: dict[str, Host] = {}
        try:
            self.watch = Watch.from_query(self.scope.get("query_string", b""))
        except ValueError as exc:
            self.watch = Watch(set())
            await self.accept()
            await self._send(fragments.live_error(f"Live updates refused: {exc}."))
            await self.close(code=4400)
            return
        relay.ensure_embedded()
        # Join before accepting, so nothing sent after the page sees "open" is missed.
        await self.channel_layer.group_add(groups.HOSTS, self.channel_name)
        for name in await database_sync_to_async(_host_names)():
            await self._join_host(name)
        await self.accept()
        await self.send_initial()

    async def disconnect(self, code: int) -> None:
        for timer in getattr(self, "timers", {}).values():
            timer.cancel()
        watch = getattr(self, "watch", None)
        if watch is None:
            return
        await self.channel_layer.group_discard(groups.HOSTS, self.channel_name)
        for name in watch.hosts:
            await self.channel_layer.group_discard(groups.host_group(name), self.channel_name)

    async def _join_host(self, name: str) -> None:
        if name in self.watch.hosts or not self.watch.wants_host(name):
            return
        self.watch.hosts.add(name)
        await self.channel_layer.group_add(groups.host_group(name), self.channel_name)

    async def _send(self, frames: list[str]) -> None:
        for frame in frames:
            await self.send(text_data=frame)

    async def send_initial(self) -> None:
        """What the page may have missed: after a reconnect, or between render and open."""
        if "hosts" in self.watch.topics:
            for name, status, detail in await database_sync_to_async(_host_states)():
                if self.watch.wants_host(name):
                    await self._send(fragments.host_status(name, status, detail))
        if "operations" in self.watch.topics:
            running = await database_sync_to_async(_running_operations)(sorted(self.watch.hosts))
            self.seen_ops = {(m["host"], m["id"]) for m in running}
            await self._send(fragments.operations_panel(running))

    # -- requests from the browser (each one checked against the user's role) ---------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            request = json.loads(text_data or "")
        except ValueError:
            request = None
        if not isinstance(request, dict):
            await self._send(fragments.live_error("Live updates: a request must be a JSON object."))
            return
        if not await database_sync_to_async(_fresh_has_role)(self.user_id, VIEWER):
            await self._send(fragments.live_error("You are no longer allowed to watch this dashboard."))
            await self.close(code=4403)
            return
        if request.get("action") == "resync":
            await self.send_initial()
        else:
            await self._send(fragments.live_error("Live updates: unknown request."))

    # -- messages from the relay ------------------------------------------------------------

    async def host_status(self, message: dict) -> None:
        name = message["host"]
        await self._join_host(name)  # a host registered after this page was opened
        if "hosts" in self.watch.topics and self.watch.wants_host(name):
            await self._send(
                fragments.cached(
                    message,
                    "host",
                    lambda: fragments.host_status(name, message["status"], message["detail"]),
                )
            )

    async def instance_status(self, message: dict) -> None:
        if "instances" in self.watch.topics:
            await self._send(fragments.cached(message, "status", lambda: fragments.instance_status(message)))

    async def instance_gone(self, message: dict) -> None:
        if "instances" in self.watch.topics:
            await self._send(fragments.cached(message, "gone", lambda: fragments.instance_gone(message)))

    async def instance_state(self, message: dict) -> None:
        if "instances" not in self.watch.topics:
            return
        host = await self._host(message["host"])
        key = "state"
        frames = fragments.peek(message, key)
        if frames is None:
            # The fleet's row renderer is not ours: it may touch the database.
            frames = await database_sync_to_async(fragments.cached)(
                message, key, lambda: fragments.instance_state(message, host)
            )
        await self._send(frames)

    async def _host(self, name: str) -> Host | None:
        if name not in self.hosts:
            host = await database_sync_to_async(
                lambda: Host.objects.select_related("client_certificate").filter(name=name).first()
            )()
            if host is None:
                return None
            self.hosts[name] = host
        return self.hosts[name]

    async def operation_update(self, message: dict) -> None:
        key = (message["host"], message["id"])
        if "operations" in self.watch.topics and message.get("op_class") == "task":
            first = key not in self.seen_ops
            self.seen_ops.add(key)
            await self._send(
                fragments.cached(message, f"op{first}", lambda: fragments.operation_item(message, first))
            )
            if message.get("final") and key not in self.timers:
                delay = KEEP_DONE if message.get("ok") else KEEP_FAILED
                self.timers[key] = asyncio.get_running_loop().create_task(self._remove_later(key, delay))
        if self.watch.wants_task(message):
            first = key not in self.seen_tasks
            self.seen_tasks.add(key)
            await self._send(
                fragments.cached(message, f"task{first}", lambda: fragments.task_row(message, first))
            )

    async def _remove_later(self, key: tuple[str, str], delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            self.seen_ops.discard(key)
            await self._send(fragments.operation_removed(*key))
        finally:
            self.timers.pop(key, None)
