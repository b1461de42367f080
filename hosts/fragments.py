"""HTML fragments pushed to browsers: relay messages (groups.py) -> htmx out-of-band swaps.

Each function returns a list of frames; each frame is sent as one websocket message, which
the htmx ws extension swaps element by element by id (`hx-swap-oob`, default outerHTML).
Table rows go in frames of their own: HTML parses a bare <tr> only among table elements.

The page and the push render the same partials, so a live change looks exactly like a
reload.  A fragment depends only on its message, so one process renders it once (by the
message's `seq`) however many browsers it serves.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import importlib.util
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from channels.db import database_sync_to_async
from django.template.loader import render_to_string
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

from .ids import dom_id
from .models import Host, Task
from .tasklog import parse_time

# -- one render per message per process --------------------------------------------------------

_cache: OrderedDict[tuple[str, str], list[str]] = OrderedDict()
_cache_lock = threading.Lock()
CACHE_SIZE = 512


_inflight: dict[tuple[str, str], asyncio.Future] = {}


async def cached_in_thread(message: dict, kind: str, build: Callable[[], list[str]]) -> list[str]:
    """As `cached`, for a build that may block (the fleet's row renderer may read the
    database): it runs once, in a worker thread, and every browser waits on that one run."""
    key = (message.get("seq", ""), kind)
    frames = peek(message, kind)
    if frames is not None:
        return frames
    future = _inflight.get(key)
    if future is None:
        future = _inflight[key] = asyncio.ensure_future(
            database_sync_to_async(cached, thread_sensitive=False)(message, kind, build)
        )
        future.add_done_callback(lambda _: _inflight.pop(key, None))
    return await asyncio.shield(future)


def peek(message: dict, kind: str) -> list[str] | None:
    """Frames already rendered for this message, if any."""
    with _cache_lock:
        return _cache.get((message.get("seq", ""), kind))


def cached(message: dict, kind: str, build: Callable[[], list[str]]) -> list[str]:
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


# -- instances (rows of the fleet table; the row itself is the fleet module's) -------------------


def instance_row_id(host: str, name: str) -> str:
    return dom_id("instance", host, name)


def instance_status(message: dict) -> list[str]:
    cell = dom_id("instance", message["host"], message["instance"], "status")
    badge = render_to_string("hosts/partials/instance_status.html", {"status": message["status"]})
    return [format_html('<div id="{}" hx-swap-oob="innerHTML">{}</div>', cell, badge)]


def instance_gone(message: dict) -> list[str]:
    row = instance_row_id(message["host"], message["instance"])
    return [format_html('<tr id="{}" hx-swap-oob="delete"></tr>', row)]


_row_renderer: Callable | None | bool = False


def row_renderer() -> Callable | None:
    """The fleet table's `render_instance_row(host, instance, state) -> str`, when present."""
    global _row_renderer
    if _row_renderer is False:
        _row_renderer = None
        # Only a module of this very package: an editable install of another checkout on
        # sys.path would otherwise lend us its hosts.fleet.
        spec = importlib.util.find_spec(f"{__package__}.fleet")
        if spec is not None and spec.origin and Path(spec.origin).parent == Path(__file__).parent:
            _row_renderer = importlib.import_module(f"{__package__}.fleet").render_instance_row
    return _row_renderer  # type: ignore[return-value]


def addresses(state: dict | None) -> list[str]:
    """Global addresses of an instance, loopback and link-local left out."""
    found = []
    for iface, net in ((state or {}).get("network") or {}).items():
        if iface == "lo" or net.get("type") == "loopback":
            continue
        for addr in net.get("addresses") or []:
            if addr.get("scope") == "global":
                found.append(addr.get("address", ""))
    return found


def human_bytes(value: Any) -> str:
    try:
        size = float(value)
    except (TypeError, ValueError):
        return ""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def instance_state(message: dict, host: Host | None) -> list[str]:
    """The second push: the whole row when the fleet renderer exists, else its cells."""
    data = message["data"]
    render = row_renderer()
    if render is not None and host is not None:
        row = mark_safe(render(host, data, data.get("state")))  # noqa: S308 - the fleet's own template
        if message.get("new"):
            body = dom_id("instances", message["host"])
            return [
                *instance_gone(message),
                format_html('<tbody hx-swap-oob="beforeend:#{}">{}</tbody>', body, row),
            ]
        return [row]
    return instance_cells(message)


def instance_cells(message: dict) -> list[str]:
    """Cell by cell, into the row's cells by their ids (no row renderer in this build)."""
    host, name, data = message["host"], message["instance"], message["data"]
    state = data.get("state") or {}
    memory = (state.get("memory") or {}).get("usage")
    cells = {
        "status": render_to_string("hosts/partials/instance_status.html", {"status": data.get("status", "")}),
        "ips": escape(", ".join(addresses(state))),
        "snapshots": str(len(data.get("snapshots") or [])),
        "memory": escape(human_bytes(memory) if memory else ""),
    }
    return [
        "".join(
            format_html(
                '<div id="{}" hx-swap-oob="innerHTML">{}</div>', dom_id("instance", host, name, c), html
            )
            for c, html in cells.items()
        )
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
        "target_text": ", ".join(name for _, name in targets),
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


def task_row(message: dict, first: bool) -> list[str]:
    row = render_to_string("hosts/partials/task_row.html", {"t": op_context(message)})
    if not first:
        return [row]
    return [
        format_html('<tr id="{}" hx-swap-oob="delete"></tr>', dom_id("task", message["host"], message["id"])),
        format_html('<tbody hx-swap-oob="afterbegin:#task-rows">{}</tbody>', row),
    ]


def live_error(text: str) -> list[str]:
    return [format_html('<div id="live-error" class="error" hx-swap-oob="true">{}</div>', text)]
