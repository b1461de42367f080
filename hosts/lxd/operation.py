"""An LXD operation, as LXD describes it (an /1.0/operations entry, an async answer, or an
operation event), with its rules: status codes, when it is over, its progress, the objects
it works on.  Everything else in the dashboard uses this one model.

`metadata` is the operation's own metadata and stays in the gateway and the domain code that
started the operation: exec and migration operations keep their websocket secrets there,
token operations their secret.  Nothing built for a page or a browser reads it; `progress`
and `exit_code` are what may be shown of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any
from urllib.parse import unquote, urlsplit

from .timestamps import timestamp_ns


class Status(IntEnum):
    """LXD's status codes (in LXD's source: shared/api/status_code.go).  Use the number, never the text."""

    OPERATION_CREATED = 100
    STARTED = 101
    STOPPED = 102
    RUNNING = 103
    CANCELLING = 104
    PENDING = 105
    STARTING = 106
    STOPPING = 107
    ABORTING = 108
    FREEZING = 109
    FROZEN = 110
    THAWED = 111
    ERROR = 112
    READY = 113
    SUCCESS = 200
    FAILURE = 400
    CANCELLED = 401


def is_final(status_code: int) -> bool:
    return status_code >= 200


def phase(status_code: int) -> int:
    """Where in an operation's life a status code belongs: 0 pending, 1 running, 2 over.
    LXD delivers events out of order; a later phase never goes back to an earlier one."""
    if is_final(status_code):
        return 2
    return 0 if status_code == Status.PENDING else 1


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
        stage=stage[:64],
        percent=None if percent is None else max(0, min(100, int(percent))),
        speed=speed,
        processed=None if processed is None else int(processed),
        text=text[:200],
    )


# Background tasks, and the two ends of a copy or move: the migration source ("Migrating
# instance", a websocket operation) and, in push mode, the target ("Creating instance"), whose
# fs_progress says how much has gone.  Exec sessions, consoles and tokens have none.
MIGRATION_DESCRIPTIONS = ("Migrating instance", "Creating instance")


def shows_progress(op_class: str, description: str) -> bool:
    """Whether a page shows a progress bar for an operation of this class and description."""
    return op_class == "task" or (op_class == "websocket" and description in MIGRATION_DESCRIPTIONS)


# -- the objects an operation works on ----------------------------------------------------------

_KINDS = {"containers": "instances", "virtual-machines": "instances"}


def object_of(url: str) -> tuple[str, str] | None:
    """ "/1.0/instances/c1/snapshots/s1?project=p" -> ("instance", "c1/s1");
    "/1.0/storage-pools/p/volumes/custom/v1" -> ("volume", "p/v1") (other volume types keep
    theirs: "p/container/c1")."""
    parts = [unquote(p) for p in urlsplit(url).path.split("/") if p]
    if len(parts) < 3 or parts[0] != "1.0":
        return None
    if parts[1] == "storage-pools" and len(parts) >= 6 and parts[3] == "volumes":
        kind = "" if parts[4] == "custom" else f"{parts[4]}/"
        return "volume", f"{parts[2]}/{kind}{parts[5]}"
    kind = _KINDS.get(parts[1], parts[1])
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
            obj = object_of(str(url))
            if obj and obj not in seen:
                seen.append(obj)
    return tuple(seen)


# -- the operation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    id: str
    op_class: str = ""  # task, websocket, token
    description: str = ""
    status: str = ""
    status_code: int = 0
    created_at: str = ""  # LXD's text (see timestamps.py)
    ts: int = 0  # when LXD last said anything of it, ns (the event's time, or updated_at)
    objects: tuple[tuple[str, str], ...] = ()
    progress: Progress | None = None
    may_cancel: bool = False
    err: str = ""
    exit_code: int | None = None  # an exec's `return`
    metadata: dict = field(default_factory=dict, repr=False, compare=False)  # secrets: see above

    @classmethod
    def from_lxd(cls, data: Any, ts: int = 0, *, keep_metadata: bool = True) -> Operation:
        """From LXD's JSON; with keep_metadata=False (events) the metadata is read for
        progress and exit code only, and dropped."""
        data = data if isinstance(data, dict) else {}
        metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
        exit_code = metadata.get("return")
        try:
            status_code = int(data.get("status_code") or 0)
        except (TypeError, ValueError):
            status_code = 0
        return cls(
            id=str(data.get("id") or ""),
            op_class=str(data.get("class") or ""),
            description=str(data.get("description") or ""),
            status=str(data.get("status") or ""),
            status_code=status_code,
            created_at=str(data.get("created_at") or ""),
            ts=ts or timestamp_ns(str(data.get("updated_at") or "")),
            objects=parse_objects(data.get("resources")),
            progress=parse_progress(metadata),
            may_cancel=bool(data.get("may_cancel")),
            err=str(data.get("err") or ""),
            exit_code=exit_code if isinstance(exit_code, int) else None,
            metadata=metadata if keep_metadata else {},
        )

    @classmethod
    def done(cls, metadata: Any = None) -> Operation:
        """What a synchronous answer to a write amounts to: an operation already over."""
        return cls(id="", status="Success", status_code=Status.SUCCESS, metadata=metadata or {})

    def without_secrets(self) -> Operation:
        """The same operation without its metadata, for code that keeps it around."""
        return replace(self, metadata={})

    @property
    def is_final(self) -> bool:
        return is_final(self.status_code)

    @property
    def succeeded(self) -> bool:
        return self.status_code == Status.SUCCESS

    @property
    def phase(self) -> int:
        return phase(self.status_code)

    @property
    def error(self) -> str:
        return self.err

    @property
    def instances(self) -> tuple[str, ...]:
        """The instances it works on (not their snapshots)."""
        return tuple(name for kind, name in self.objects if kind == "instance" and "/" not in name)
