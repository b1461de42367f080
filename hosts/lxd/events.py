"""LXD's /1.0/events stream, parsed into small typed events.

Only this module reads raw event JSON.  What leaves it is an `OperationUpdate` or a
`Lifecycle` that carries names, states and progress, never the event's metadata as such:
operation events of exec sessions hold the websocket secrets (`metadata.fds`), and the
logging stream is never asked for.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import CloseCode

from .errors import (
    CertificateMismatch,
    HostRedirected,
    HostUnreachable,
    LXDAPIError,
    LXDError,
    NotLXD,
    NotTrusted,
    ResponseTooLarge,
)

EVENT_TYPES = "operation,lifecycle"
# LXD pings every 10 s and drops a listener that misses pings; our own pings find a host
# that vanished without closing the connection (a pulled cable) within about 20 s.
PING_INTERVAL = 10.0
PING_TIMEOUT = 10.0
# The largest event we accept.  LXD's are a few KiB; the largest seen carry an operation's
# resources (a bulk action lists every instance it touches), far below this.
MAX_EVENT_BYTES = 4 * 1024 * 1024


# -- timestamps ---------------------------------------------------------------------------

_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


def parse_timestamp(text: str) -> int:
    """RFC 3339 with up to nanoseconds (Go trims trailing zeros, so strings do not sort):
    nanoseconds since the epoch, or 0 when unreadable."""
    match = _TS.match(text or "")
    if not match:
        return 0
    seconds, fraction, zone = match.groups()
    base = dt.datetime.fromisoformat(seconds + ("+00:00" if zone == "Z" else zone))
    return int(base.timestamp()) * 1_000_000_000 + int((fraction or "0").ljust(9, "0"))


# -- progress -----------------------------------------------------------------------------

_PERCENT = re.compile(r"(\d{1,3})(?:\.\d+)?\s*%")
_RATE = re.compile(r"\(([\d.]+\s*[kKMGTP]?i?B/s)\)")
# A byte count in a progress text: "mv-1: 148.90MB (37.21MB/s)" (migration fs_progress)
_AMOUNT = re.compile(r"(?<![\d.])([\d.]+)\s*([kKMGTP]?)(i?)B(?!/s)")
STAGE_LABELS = {
    "download": "Downloading image",
    "create_instance_from_image_unpack": "Unpacking image",
    "create_image_from_container_pack": "Packing image",
    "create_instance_from_image": "Creating instance",
    "container": "",
}


@dataclass(frozen=True)
class Progress:
    """What LXD said about an operation's progress, with every value already a number."""

    stage: str  # "download", "create_instance_from_image_unpack", "fs" ...
    percent: int | None  # None while LXD gives no percentage
    speed: float | None  # bytes per second
    processed: int | None  # bytes
    text: str  # LXD's own phrase, e.g. "Unpack: 42% (22.82MB/s)"

    @property
    def label(self) -> str:
        if self.stage in STAGE_LABELS:
            return STAGE_LABELS[self.stage]
        return self.stage.replace("_", " ").capitalize()


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _rate_from_text(text: str) -> float | None:
    match = _RATE.search(text)
    if not match:
        return None
    raw = match.group(1).replace(" ", "")
    units = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
    number = re.match(r"[\d.]+", raw)
    prefix = raw[len(number.group(0)) :].removesuffix("B/s").removesuffix("i") if number else ""
    value = _number(number.group(0)) if number else None
    if value is None or prefix not in units:
        return None
    return value * units[prefix]


def _amount_from_text(text: str) -> int | None:
    """LXD's byte counts in texts (units.GetByteSizeString: decimal kB, MB ... or binary KiB ...)."""
    match = _AMOUNT.search(text)
    if not match:
        return None
    value = _number(match.group(1))
    powers = {"": 0, "k": 1, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5}
    if value is None:
        return None
    return int(value * (1024 if match.group(3) else 1000) ** powers[match.group(2)])


def parse_progress(metadata: Any) -> Progress | None:
    """Progress from an operation's metadata, in any of the shapes 5.0.2 and later send:
    `download_progress: "50% (170.05MB/s)"` alone, `*_progress` strings next to a
    `progress` dict whose values are all strings (percent left out while 0), or only a
    text (`container_progress: "Remapping container filesystem"`)."""
    if not isinstance(metadata, dict):
        return None
    texts = [(k, v) for k, v in metadata.items() if k.endswith("_progress") and isinstance(v, str) and v]
    details = metadata.get("progress") if isinstance(metadata.get("progress"), dict) else {}
    if not texts and not details:
        return None
    key, text = texts[0] if texts else ("", "")
    stage = str(details.get("stage") or key.removesuffix("_progress"))
    percent = _number(details.get("percent"))
    if percent is None and text:
        match = _PERCENT.search(text)
        percent = _number(match.group(1)) if match else None
    if percent is None and details and "stage" in details and "processed" not in details:
        percent = 0.0  # LXD omits percent while it is 0
    speed = _number(details.get("speed"))
    if speed is None and text:
        speed = _rate_from_text(text)
    processed = _number(details.get("processed"))
    if processed is None and text and not details:
        processed = _amount_from_text(text)  # a migration says how much it has sent so far
    return Progress(
        stage=stage,
        percent=None if percent is None else max(0, min(100, int(percent))),
        speed=speed,
        processed=None if processed is None else int(processed),
        text=text,
    )


# -- which operations have a progress bar -----------------------------------------------------

# Background tasks, and the two ends of a copy or move: the migration source ("Migrating
# instance", a websocket operation) and, in push mode, the target ("Creating instance"), whose
# fs_progress says how much has gone.  Exec sessions, consoles and tokens have none.
MIGRATION_DESCRIPTIONS = ("Migrating instance", "Creating instance")


def shows_progress(op_class: str, description: str) -> bool:
    return op_class == "task" or (op_class == "websocket" and description in MIGRATION_DESCRIPTIONS)


# -- events -------------------------------------------------------------------------------


def _object_of(url: str) -> tuple[str, str] | None:
    """ "/1.0/instances/c1/snapshots/s1?project=p" -> ("instance", "c1/s1")."""
    parts = [unquote(p) for p in urlsplit(url).path.split("/") if p]
    if len(parts) < 3 or parts[0] != "1.0":
        return None
    kind = parts[1]
    kind = {"containers": "instances", "virtual-machines": "instances"}.get(kind, kind)
    name = parts[2] if len(parts) < 5 else f"{parts[2]}/{parts[4]}"
    return kind.removesuffix("s").replace("-", "_"), name


def parse_objects(resources: Any) -> tuple[tuple[str, str], ...]:
    """An operation's resources as (kind, name) pairs, without the legacy `containers` twin."""
    seen: list[tuple[str, str]] = []
    if not isinstance(resources, dict):
        return ()
    for key, urls in resources.items():
        if key == "containers" and "instances" in resources:
            continue
        for url in urls or []:
            obj = _object_of(str(url))
            if obj and obj not in seen:
                seen.append(obj)
    return tuple(seen)


@dataclass(frozen=True)
class OperationUpdate:
    ts: int  # event timestamp, ns
    id: str
    op_class: str  # task, websocket, token
    description: str
    status: str
    status_code: int
    created_at: str
    objects: tuple[tuple[str, str], ...]
    progress: Progress | None
    may_cancel: bool
    err: str

    @property
    def is_final(self) -> bool:
        return self.status_code >= 200

    @property
    def instances(self) -> tuple[str, ...]:
        return tuple(name for kind, name in self.objects if kind == "instance" and "/" not in name)


@dataclass(frozen=True)
class Lifecycle:
    ts: int
    action: str  # "instance-started" ...
    kind: str  # "instance", "image" ...
    name: str  # the object's name; an instance snapshot is "c1/s1"
    old_name: str = ""  # renames
    requestor: str = ""  # "user@address" when LXD tells (it often does not)

    @property
    def instance(self) -> str:
        """The instance an instance-* action concerns (for a snapshot: its instance)."""
        return self.name.split("/", 1)[0] if self.kind == "instance" else ""


def parse_operation(meta: dict, ts: int = 0) -> OperationUpdate:
    """An operation as /1.0/operations or an operation event describes it.  The
    operation's own metadata is read for progress only: exec sessions keep secrets there."""
    return OperationUpdate(
        ts=ts or parse_timestamp(str(meta.get("updated_at") or "")),
        id=str(meta.get("id") or ""),
        op_class=str(meta.get("class") or ""),
        description=str(meta.get("description") or ""),
        status=str(meta.get("status") or ""),
        status_code=int(meta.get("status_code") or 0),
        created_at=str(meta.get("created_at") or ""),
        objects=parse_objects(meta.get("resources")),
        progress=parse_progress(meta.get("metadata")),
        may_cancel=bool(meta.get("may_cancel")),
        err=str(meta.get("err") or ""),
    )


def parse_event(raw: Any) -> OperationUpdate | Lifecycle | None:
    """One event from the stream, or None for anything we do not use."""
    if not isinstance(raw, dict) or not isinstance(raw.get("metadata"), dict):
        return None
    meta = raw["metadata"]
    ts = parse_timestamp(str(raw.get("timestamp") or ""))
    if raw.get("type") == "operation":
        return parse_operation(meta, ts)
    if raw.get("type") == "lifecycle":
        obj = _object_of(str(meta.get("source") or ""))
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

    async def __aiter__(self) -> AsyncIterator[OperationUpdate | Lifecycle]:
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


def events_path(project: str = "default") -> str:
    path = f"/1.0/events?type={EVENT_TYPES}"
    if project and project != "default":
        path += "&project=" + quote(project, safe="")
    return path


async def open_events(
    uri: str, connect_kwargs: dict, *, label: str, fingerprint: str = "", open_timeout: float = 5.0
) -> EventStream:
    """Connect to a host's event stream.  `uri, connect_kwargs` come from
    `LXDClient.websocket_target(events_path(project))` (built off the event loop: it
    loads the client key).  Failures become the same LXDError classes as HTTP calls."""
    kwargs = dict(connect_kwargs)
    options: dict[str, Any] = {
        "max_size": MAX_EVENT_BYTES,
        # Read everything LXD sends at once: it drops listeners that stall for 5 s.
        "max_queue": 1024,
        "open_timeout": open_timeout,
        "ping_interval": PING_INTERVAL,
        "ping_timeout": PING_TIMEOUT,
        "compression": None,
        "user_agent_header": "lxd-fleet-dashboard",
    }
    try:
        if "unix_path" in kwargs:
            connection = await _ConnectNoRedirects(uri, unix=True, path=kwargs.pop("unix_path"), **options)
        else:
            connection = await _ConnectNoRedirects(uri, proxy=None, **kwargs, **options)
    except InvalidStatus as exc:
        code = exc.response.status_code
        if 300 <= code < 400:
            raise HostRedirected(label, code) from exc
        if code == 403:
            raise NotTrusted(f"{label} refused the events stream: not authorized") from exc
        raise LXDAPIError(f"{label} refused the events stream (HTTP {code})", code) from exc
    except ssl.SSLCertVerificationError as exc:
        raise CertificateMismatch(label, fingerprint or "the pinned certificate", None) from exc
    except ssl.SSLError as exc:
        raise NotLXD(f"{label}: TLS failure on the events stream: {exc.reason or exc}") from exc
    except InvalidHandshake as exc:
        raise NotLXD(f"{label} did not open an events stream: {exc}") from exc
    except TimeoutError as exc:
        raise HostUnreachable(f"{label} did not answer in time") from exc
    except FileNotFoundError as exc:
        raise HostUnreachable(f"{label} is unreachable: socket not found") from exc
    except ConnectionRefusedError as exc:
        raise HostUnreachable(f"{label} is unreachable: connection refused") from exc
    except OSError as exc:
        raise HostUnreachable(f"{label} is unreachable: {exc.strerror or exc}") from exc
    return EventStream(connection, label)


class _ConnectNoRedirects(connect):
    """`websockets` (14 and later) follows a handshake's 3xx to wherever Location says, a
    cross-origin wss:// one too.  LXD never redirects: the 3xx stays an InvalidStatus."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


# -- the few reads the relay makes (plain functions: client.py is shared) -------------------


def fetch_instance(client, name: str) -> dict | None:
    """One instance with its state and snapshots (`instance_get_full`), None if it is gone."""
    try:
        return client.get(f"/1.0/instances/{quote(name, safe='')}", params={"recursion": 1})
    except LXDAPIError as exc:
        if exc.error_code == 404:
            return None
        raise


def list_instance_statuses(client) -> dict[str, str]:
    """Every instance's status, without state (cheap: no per-instance gathering)."""
    return {
        i["name"]: i.get("status", "") for i in client.get("/1.0/instances", params={"recursion": 1}) or []
    }


def list_operations(client) -> list[OperationUpdate]:
    return [parse_operation(op) for op in client.operations()]


__all__ = [
    "EVENT_TYPES",
    "EventStream",
    "Lifecycle",
    "LXDError",
    "OperationUpdate",
    "Progress",
    "events_path",
    "fetch_instance",
    "list_instance_statuses",
    "list_operations",
    "open_events",
    "parse_event",
    "parse_operation",
    "parse_progress",
    "parse_timestamp",
]
