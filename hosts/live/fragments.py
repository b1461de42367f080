"""HTML fragments pushed to browsers: relay messages (groups.py) -> htmx out-of-band swaps.

Each function returns a list of frames; each frame is sent as one websocket message, which
the htmx ws extension swaps element by element by id (`hx-swap-oob`, default outerHTML).
Table rows go in frames of their own: HTML parses a bare <tr> only among table elements.

The page and the push render the same partials, so a live change looks exactly like a
reload.  A fragment depends only on its message, so one process renders it once (by the
message's `seq`) however many browsers it serves.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from types import SimpleNamespace
from typing import TypeVar

from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from ..domain.ids import dom_id, instance_dom_id
from ..fleet.rows import InstanceRow, render_instance_cell, render_instance_row, render_row
from ..lxd.images import short_fingerprint
from ..lxd.timestamps import parse_time
from ..models import Host, Task

# -- one render per message per process --------------------------------------------------------

_cache: OrderedDict[tuple[str, str], object] = OrderedDict()
_cache_lock = threading.Lock()
CACHE_SIZE = 512
T = TypeVar("T")


def cached(message: dict, kind: str, build: Callable[[], T]) -> T:
    seq = message.get("seq")
    if not seq:
        return build()
    key = (seq, kind)
    with _cache_lock:
        frames = _cache.get(key)
    if frames is None:
        frames = build()
        with _cache_lock:
            _cache[key] = frames
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return frames


# -- hosts -------------------------------------------------------------------------------------


def host_status(host_name: str, status: str, detail: str) -> list[str]:
    try:
        label = Host.Status(status).label
    except ValueError:
        label = status
    context = {"host": {"name": host_name}, "status": status, "detail": detail, "label": label, "oob": True}
    return [
        render_to_string("hosts/partials/host_status.html", context)
        + render_to_string("hosts/partials/host_status_detail.html", context)
    ]


# -- instances: the fleet table's own rows and cells (hosts/fleet.py renders them) -----------


def _host(name: str) -> SimpleNamespace:
    return SimpleNamespace(name=name)  # all the fleet's templates need of a host


def instance_status(message: dict) -> list[str]:
    """First push: the status cell alone, from what the event said (no LXD call)."""
    instance = {
        "name": message["instance"],
        "status": message["status"],
        "project": message.get("project", "default"),
    }
    return [render_instance_cell(_host(message["host"]), instance, None, "status")]


def instance_gone(message: dict, can_operate: bool) -> list[str]:
    """The row stays, marked gone, as the fleet shows an instance LXD no longer knows."""
    row = InstanceRow(
        message["host"],
        message["instance"],
        project=message.get("project", "default"),
        status="unknown",
        gone=True,
    )
    return [render_row(row, can_operate=can_operate, oob=True)]


def instance_state(message: dict, can_operate: bool) -> list[str]:
    """Second push: the whole row, with the state one LXD call fetched for this instance.
    A new instance's row goes at the end of the table (after removing any copy a page
    loaded meanwhile may already show)."""
    data, host = message["data"], _host(message["host"])
    if not message.get("new"):
        return [render_instance_row(host, data, data.get("state"), can_operate=can_operate, oob=True)]
    row = render_instance_row(host, data, data.get("state"), can_operate=can_operate)
    return [
        format_html(
            '<tr id="{}" hx-swap-oob="delete"></tr>',
            instance_dom_id(message["host"], message["instance"], message.get("project", "default")),
        ),
        format_html('<tbody hx-swap-oob="beforeend:#fleet-table tbody">{}</tbody>', mark_safe(row)),  # noqa: S308
    ]


# -- operations: the live panel and the task log -----------------------------------------------


def _duration(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def op_context(message: dict) -> dict:
    """A relay operation message (or tasklog.task_message) ready for the templates."""
    status = message.get("status", "")
    try:
        label = Task.Status(status).label
    except ValueError:
        label = status
    eta = message.get("eta")
    started = parse_time(message.get("started_at") or "")
    ended = parse_time(message.get("ended_at") or "")
    targets = [tuple(t) for t in message.get("targets") or []]
    return {
        **message,
        "status_label": label,
        "eta_text": _eta_text(eta) if eta is not None else "",
        "started": started,
        "duration": _duration(started, ended),
        "targets": targets,
        "target_text": ", ".join(short_fingerprint(n) if kind == "image" else n for kind, n in targets),
    }


def _eta_text(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60:02d} s"


def operation_item(message: dict, first: bool) -> list[str]:
    """The panel's entry for an operation: inserted at the top the first time a browser
    sees it (after removing any copy it may hold from before a reconnect), then replaced."""
    item = render_to_string("hosts/partials/operation.html", {"op": op_context(message)})
    if not first:
        return [item]
    return [
        format_html(
            '<li id="{}" hx-swap-oob="delete"></li>', dom_id("operation", message["host"], message["id"])
        ),
        format_html('<ul hx-swap-oob="afterbegin:#live-operations">{}</ul>', item),
    ]


def operation_removed(host: str, op_id: str) -> list[str]:
    return [format_html('<li id="{}" hx-swap-oob="delete"></li>', dom_id("operation", host, op_id))]


def operations_panel(messages: list[dict]) -> list[str]:
    items = "".join(
        render_to_string("hosts/partials/operation.html", {"op": op_context(m)}) for m in messages
    )
    return [format_html('<ul id="live-operations" hx-swap-oob="innerHTML">{}</ul>', items)]


def task_row(message: dict, first: bool, can_operate: bool = False) -> list[str]:
    row = render_to_string(
        "hosts/partials/task_row.html", {"t": op_context(message), "can_operate": can_operate}
    )
    if not first:
        return [row]
    return [
        format_html('<tr id="{}" hx-swap-oob="delete"></tr>', dom_id("task", message["host"], message["id"])),
        format_html('<tbody hx-swap-oob="afterbegin:#task-rows">{}</tbody>', row),
    ]


def live_error(text: str) -> list[str]:
    return [format_html('<div id="live-error" class="error" hx-swap-oob="true">{}</div>', text)]


def live_cleared() -> list[str]:
    """The live error is over (as the page renders it: empty)."""
    return ['<div id="live-error" hx-swap-oob="true"></div>']


def live_resync() -> list[str]:
    """Tells the page (static/js/live.js) to refresh its tables over HTTP."""
    return [f'<div id="live-resync" hidden hx-swap-oob="true" data-at="{time.time():.3f}"></div>']


def live_synced() -> list[str]:
    """The page is caught up with the relay: live from here on (the indicator says so)."""
    return ['<span id="live-indicator" class="live-indicator" data-synced="1" hx-swap-oob="true"></span>']
