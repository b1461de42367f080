"""Fleet data: one InstanceRow per LXD instance, built from the cheap listing (recursion=1)
and, when it has arrived, the instance's state; and the HTML of a row or of one of its cells.

`render_instance_row` and `render_instance_cell` are what live pushes call: the fleet page,
htmx responses and pushes all go through the same templates, so they target the same ids.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from ..domain.ids import instance_dom_id
from ..lxd.network import global_addresses
from ..lxd.sizes import human_bytes
from ..lxd.timestamps import parse_time

# Cells that depend on the (expensive) state: each can be rendered and pushed alone.
STATE_CELLS = ("status", "ips", "snapshots", "memory")

STATUS_CHOICES = ("running", "stopped", "frozen", "error")


def row_config(config: dict | None) -> dict:
    """The only config keys a fleet row reads (image_label): what the relay copies to every
    browser's socket, so no other key (environment.*, cloud-init, ...) ever travels there."""
    return {k: v for k, v in (config or {}).items() if k.startswith("image.") or k == "volatile.base_image"}


def image_label(instance: dict) -> str:
    config = instance.get("config") or {}
    os_name = config.get("image.os", "")
    release = config.get("image.release", "")
    if os_name or release:
        return f"{os_name} {release}".strip()
    if config.get("image.description"):
        return config["image.description"]
    base = config.get("volatile.base_image", "")
    return base[:12]


@dataclass
class InstanceRow:
    host_name: str
    name: str
    project: str = "default"
    type: str = "container"
    status: str = ""
    created_at: datetime | None = None
    image: str = ""
    description: str = ""
    profiles: list[str] = field(default_factory=list)
    # From the state (None/False until it has arrived):
    has_state: bool = False
    ipv4: list[str] = field(default_factory=list)
    ipv6: list[str] = field(default_factory=list)
    ips_more: int = 0  # global addresses past the ones a row shows
    memory_usage: int | None = None
    snapshot_count: int | None = None
    # Presentation:
    tentative: bool = False  # shown only once its IPs prove it matches the text filter
    outcome: str = ""  # the result of the last action, shown in the row
    outcome_ok: bool = True
    gone: bool = False  # LXD no longer knows it (deleted meanwhile)

    @classmethod
    def from_lxd(cls, host_name: str, instance: dict, state: dict | None = None) -> InstanceRow:
        state = state if state is not None else instance.get("state")
        row = cls(
            host_name=host_name,
            name=instance.get("name", ""),
            project=instance.get("project") or "default",
            type=instance.get("type") or "container",
            status=(state or {}).get("status") or instance.get("status") or "",
            created_at=parse_time(instance.get("created_at")),
            image=image_label(instance),
            description=instance.get("description") or "",
            profiles=list(instance.get("profiles") or []),
        )
        if "snapshots" in instance:  # recursion=2 or a single full instance; null means none
            row.snapshot_count = len(instance.get("snapshots") or [])
        if state is not None:
            row.has_state = True
            row.ipv4, row.ipv6, row.ips_more = global_addresses(state)
            row.memory_usage = ((state.get("memory") or {}).get("usage")) or 0
        return row

    @property
    def dom_id(self) -> str:
        return instance_dom_id(self.host_name, self.name, self.project)

    @property
    def key(self) -> str:
        """What a bulk selection sends back: host/name, or host/project/name outside the
        default project (none of them may contain a slash)."""
        if self.project == "default":
            return f"{self.host_name}/{self.name}"
        return f"{self.host_name}/{self.project}/{self.name}"

    @property
    def status_key(self) -> str:
        return (self.status or "unknown").lower()

    @property
    def memory_display(self) -> str:
        return human_bytes(self.memory_usage) if self.memory_usage else ("0" if self.has_state else "")

    @property
    def ips(self) -> list[str]:
        return self.ipv4 + self.ipv6

    def matches_text(self, text: str) -> bool:
        """Name, host or project (known from the cheap listing)."""
        needle = text.lower()
        return (
            needle in self.name.lower() or needle in self.host_name.lower() or needle in self.project.lower()
        )

    def matches_ips(self, text: str) -> bool:
        needle = text.lower()
        return any(needle in ip.lower() for ip in self.ips)


def _context(row: InstanceRow, can_operate: bool, oob: bool = False) -> dict:
    return {
        "row": row,
        "can_operate": can_operate,
        "oob": oob,
    }


class _FragmentCache:
    """Rendered rows and cells by everything they show. A fleet page repeats mostly
    unchanged rows, and rendering hundreds of them through the template engine would cost
    more than asking LXD for them; a changed instance has a new key, so nothing goes stale."""

    def __init__(self, size: int = 10_000):
        self._size = size
        self._items: OrderedDict[tuple, str] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_render(self, key: tuple, render) -> str:
        with self._lock:
            html = self._items.get(key)
            if html is not None:
                self._items.move_to_end(key)
                return html
        html = render()
        with self._lock:
            self._items[key] = html
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        return html


_fragments = _FragmentCache()


def _row_key(row: InstanceRow) -> tuple:
    return (
        row.host_name, row.name, row.project, row.type, row.status, row.created_at, row.image, row.has_state,
        tuple(row.ipv4), tuple(row.ipv6), row.ips_more, row.memory_usage, row.snapshot_count, row.tentative,
        row.outcome, row.outcome_ok, row.gone,
    )  # fmt: skip


def render_instance_row(
    host, instance: dict, state: dict | None, *, can_operate: bool = True, oob: bool = False
) -> str:
    """The <tr> of one instance (host: a Host or anything with .name; instance: an LXD
    instance object at recursion=1 or richer; state: its state, if known)."""
    return render_row(InstanceRow.from_lxd(host.name, instance, state), can_operate=can_operate, oob=oob)


def render_row(row: InstanceRow, *, can_operate: bool = True, oob: bool = False) -> str:
    return _fragments.get_or_render(
        ("row", can_operate, oob, *_row_key(row)),
        lambda: render_to_string("hosts/partials/instance_row.html", _context(row, can_operate, oob)),
    )


def render_rows(rows: list[InstanceRow], *, can_operate: bool) -> str:
    return mark_safe("".join(render_row(row, can_operate=can_operate) for row in rows))  # noqa: S308


def render_instance_cell(host, instance: dict, state: dict | None, cell: str, *, oob: bool = True) -> str:
    """One state cell ("status", "ips", "snapshots" or "memory") of one instance, on its own,
    by default as an out-of-band swap (wrap pushes of <td> in <template> for htmx)."""
    return render_cell(InstanceRow.from_lxd(host.name, instance, state), cell, oob=oob)


def render_cell(row: InstanceRow, cell: str, *, oob: bool = True) -> str:
    if cell not in STATE_CELLS:
        raise ValueError(f"unknown cell {cell!r}")
    return _fragments.get_or_render(
        ("cell", cell, oob, *_row_key(row)),
        lambda: render_to_string(f"hosts/partials/instance_cell_{cell}.html", _context(row, True, oob)),
    )


# -- filtering and sorting ------------------------------------------------------------

_NEVER = datetime.min.replace(tzinfo=UTC)

SORT_KEYS = {
    "host": lambda r: (r.host_name, r.project, r.name),
    "project": lambda r: (r.project, r.host_name, r.name),
    "name": lambda r: (r.name.lower(), r.host_name),
    "type": lambda r: (r.type, r.name),
    "status": lambda r: (r.status_key, r.name),
    "image": lambda r: (r.image.lower(), r.name),
    "created": lambda r: (r.created_at or _NEVER, r.name),
    # State columns: sorted here when known, and again in the browser when the state arrives.
    "ips": lambda r: (not r.ips, r.ips[:1], r.name),
    "snapshots": lambda r: (r.snapshot_count or 0, r.name),
    "memory": lambda r: (r.memory_usage or 0, r.name),
}
STATE_SORTS = ("ips", "snapshots", "memory")


@dataclass(frozen=True)
class FleetQuery:
    q: str = ""
    status: str = ""
    host: str = ""
    project: str = ""
    sort: str = "host"
    desc: bool = False

    @classmethod
    def from_params(cls, params) -> FleetQuery:
        sort = params.get("sort", "host")
        status = params.get("status", "").lower()
        return cls(
            q=params.get("q", "").strip()[:100],
            status=status if status in STATUS_CHOICES else "",
            host=params.get("host", "").strip(),
            project=params.get("project", "").strip()[:63],
            sort=sort if sort in SORT_KEYS else "host",
            desc=params.get("dir") == "desc",
        )

    def as_params(self, **changes) -> dict:
        values = {
            "q": self.q,
            "status": self.status,
            "host": self.host,
            "project": self.project,
            "sort": self.sort,
            "dir": "desc" if self.desc else "asc",
        }
        values.update(changes)
        return {
            k: v
            for k, v in values.items()
            if v and not (k == "sort" and v == "host") and not (k == "dir" and v == "asc")
        }

    def keep(self, row: InstanceRow) -> bool:
        """Status is known from the cheap listing; the text may still match an IP later."""
        if self.status and row.status_key != self.status:
            return False
        if self.project and row.project != self.project:
            return False
        if self.q and not row.matches_text(self.q):
            if row.has_state:
                return row.matches_ips(self.q)
            row.tentative = True
        return True

    def keep_with_state(self, row: InstanceRow) -> bool:
        if self.status and row.status_key != self.status:
            return False
        if self.project and row.project != self.project:
            return False
        return not self.q or row.matches_text(self.q) or row.matches_ips(self.q)

    def sorted(self, rows: list[InstanceRow]) -> list[InstanceRow]:
        return sorted(rows, key=SORT_KEYS[self.sort], reverse=self.desc)
