"""Helpers for tests of the live path: a channel-layer inbox and the lab's daemon-side view
of events listeners and connections (from LXD's own logging stream and the kernel, not from
our code)."""

from __future__ import annotations

import asyncio
import json
import time

from channels.layers import InMemoryChannelLayer, channel_layers
from websockets.asyncio.client import unix_connect


def fresh_channel_layer() -> InMemoryChannelLayer:
    """Each test gets its own in-memory layer: queues are bound to one event loop."""
    channel_layers.backends.pop("default", None)
    return channel_layers["default"]


class Inbox:
    """A channel subscribed to some groups; keeps everything it received."""

    def __init__(self, layer):
        self.layer = layer
        self.channel = ""
        self.received: list[dict] = []

    async def join(self, *groups: str) -> Inbox:
        if not self.channel:
            self.channel = await self.layer.new_channel("test.")
        for group in groups:
            await self.layer.group_add(group, self.channel)
        return self

    async def wait_for(self, predicate, timeout: float = 15.0, what: str = "a message") -> dict:
        for message in self.received:
            if predicate(message):
                return message
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                kinds = [
                    (
                        m.get("type"),
                        m.get("instance") or m.get("description"),
                        m.get("status"),
                        m.get("detail"),
                    )
                    for m in self.received
                ]
                raise AssertionError(f"no {what} within {timeout} s; got {kinds[-30:]}")
            try:
                message = await asyncio.wait_for(self.layer.receive(self.channel), remaining)
            except TimeoutError:
                continue
            self.received.append(message)
            if predicate(message):
                return message


class ListenerLog:
    """Events listeners as the daemon itself reports them ("Event listener server handler
    started/stopped" on its logging stream), counted by remote address."""

    def __init__(self, socket_path: str):
        self.socket_path = socket_path
        self.started: dict[str, str] = {}  # listener id -> remote address
        self.stopped: set[str] = set()
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Event()

    async def __aenter__(self) -> ListenerLog:
        self._task = asyncio.get_running_loop().create_task(self._read())
        await asyncio.wait_for(self._ready.wait(), 10)
        return self

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _read(self) -> None:
        async with unix_connect(self.socket_path, "ws://lxd/1.0/events?type=logging", max_size=None) as ws:
            self._ready.set()
            async for raw in ws:
                meta = json.loads(raw).get("metadata") or {}
                context = meta.get("context") or {}
                if meta.get("message") == "Event listener server handler started":
                    self.started[context.get("id", "")] = context.get("remote", "")
                elif meta.get("message") == "Event listener server handler stopped":
                    self.stopped.add(context.get("listener", ""))

    def open_from(self, predicate) -> list[str]:
        """Remote addresses of listeners still open whose remote matches."""
        return [r for i, r in self.started.items() if i not in self.stopped and predicate(r)]


def tcp_local_ports(pid: int, remote_port: int) -> set[int]:
    """Local ports of the established TCP connections process `pid` holds to `remote_port`."""
    import subprocess

    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( dport = :{remote_port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ports = set()
    for line in out.splitlines():
        fields = line.split()
        if f"pid={pid}," in line and len(fields) >= 3:
            ports.add(int(fields[2].rsplit(":", 1)[1]))
    return ports


def unix_connections(pid: int, socket_path: str) -> dict[int, int]:
    """The unix-socket connections process `pid` holds to the server listening at
    `socket_path` (an LXD daemon), by inode: the bytes each has received and not read yet."""
    import subprocess

    out = subprocess.run(["ss", "-xpH"], capture_output=True, text=True, check=True).stdout
    server_ends: set[str] = set()
    ours: dict[str, int] = {}
    for line in out.splitlines():
        fields = line.split()  # netid state recv-q send-q local inode peer peer-inode process
        if len(fields) < 8:
            continue
        if fields[4] == socket_path:
            server_ends.add(fields[7])
        elif f"pid={pid}," in line:
            ours[fields[5]] = int(fields[2])
    return {int(inode): queued for inode, queued in ours.items() if inode in server_ends}
