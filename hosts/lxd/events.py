"""LXD's /1.0/events stream, parsed into small typed events.

Only this module reads raw event JSON.  What leaves it is an `Operation` (operation.py, its
metadata dropped) or a `Lifecycle` that carries names, states and progress, never the
event's metadata as such:
operation events of exec sessions hold the websocket secrets (`metadata.fds`), and the
logging stream is never asked for.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from .errors import HostUnreachable, ResponseTooLarge
from .operation import Operation, object_of
from .timestamps import timestamp_ns
from .websocket import connect_websocket

EVENT_TYPES = "operation,lifecycle"
# LXD pings every 10 s and drops a listener that misses pings; our own pings find a host
# that vanished without closing the connection (a pulled cable) within about 20 s.
PING_INTERVAL = 10.0
PING_TIMEOUT = 10.0
# The largest event we accept.  LXD's are a few KiB; the largest seen carry an operation's
# resources (a bulk action lists every instance it touches), far below this.
MAX_EVENT_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Lifecycle:
    ts: int
    action: str  # "instance-started" ...
    kind: str  # "instance", "image" ...
    name: str  # the object's name; an instance snapshot is "c1/s1"
    old_name: str = ""  # renames
    requestor: str = ""  # "user@address" when LXD tells (it often does not)
    project: str = "default"

    @property
    def instance(self) -> str:
        """The instance an instance-* action concerns (for a snapshot: its instance)."""
        return self.name.split("/", 1)[0] if self.kind == "instance" else ""


def parse_event(raw: Any) -> Operation | Lifecycle | None:
    """One event from the stream, or None for anything we do not use.  An operation event's
    own metadata is read for progress only and dropped: exec sessions keep secrets there."""
    if not isinstance(raw, dict) or not isinstance(raw.get("metadata"), dict):
        return None
    meta = raw["metadata"]
    ts = timestamp_ns(str(raw.get("timestamp") or ""))
    project = str(raw.get("project") or "default")
    if raw.get("type") == "operation":
        return replace(Operation.from_lxd(meta, ts, keep_metadata=False), project=project)
    if raw.get("type") == "lifecycle":
        obj = object_of(str(meta.get("source") or ""))
        if obj is None:
            return None
        context = meta.get("context") if isinstance(meta.get("context"), dict) else {}
        requestor = meta.get("requestor") if isinstance(meta.get("requestor"), dict) else {}
        who = "@".join(str(requestor.get(k) or "") for k in ("username", "address")).strip("@")
        return Lifecycle(
            ts=ts,
            action=str(meta.get("action") or ""),
            kind=obj[0],
            name=obj[1],
            old_name=str(context.get("old_name") or ""),
            requestor=who,
            project=project,
        )
    return None


class EventStream:
    """One open /1.0/events connection.  `async for event in stream` yields parsed events
    and ends (with HostUnreachable) when the host closes or drops the connection."""

    def __init__(self, connection: ClientConnection, label: str = ""):
        self.connection = connection
        self.label = label

    @property
    def local_address(self) -> Any:
        return self.connection.transport.get_extra_info("sockname")

    async def __aiter__(self) -> AsyncIterator[Operation | Lifecycle]:
        try:
            async for message in self.connection:
                try:
                    event = parse_event(json.loads(message))
                except ValueError:
                    continue
                if event is not None:
                    yield event
        except ConnectionClosed as exc:
            if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                raise ResponseTooLarge(self.label or "the host", "an event", MAX_EVENT_BYTES) from exc
            raise HostUnreachable(f"the events connection closed ({exc})") from exc
        raise HostUnreachable("the host closed the events connection")

    async def close(self) -> None:
        await self.connection.close()


def events_path(project: str = "default", *, all_projects: bool = False) -> str:
    """The events URL of one project, or of every project the certificate may see (each
    event then names its project)."""
    path = f"/1.0/events?type={EVENT_TYPES}"
    if all_projects:
        return path + "&all-projects=true"
    if project and project != "default":
        path += "&project=" + quote(project, safe="")
    return path


async def open_events(
    uri: str, connect_kwargs: dict, *, label: str, fingerprint: str = "", open_timeout: float = 5.0
) -> EventStream:
    """Connect to a host's event stream.  `uri, connect_kwargs` come from
    `LXDClient.websocket_target(events_path(...))` (built off the event loop: it
    loads the client key).  Failures become the same LXDError classes as HTTP calls."""
    connection = await connect_websocket(
        uri,
        connect_kwargs,
        label=label,
        what="the events stream",
        fingerprint=fingerprint,
        max_size=MAX_EVENT_BYTES,
        # Read everything LXD sends at once: it drops listeners that stall for 5 s.
        max_queue=1024,
        open_timeout=open_timeout,
        ping_interval=PING_INTERVAL,
        ping_timeout=PING_TIMEOUT,
    )
    return EventStream(connection, label)


__all__ = [
    "EVENT_TYPES",
    "EventStream",
    "Lifecycle",
    "events_path",
    "open_events",
    "parse_event",
]
