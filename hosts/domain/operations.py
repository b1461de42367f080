"""The one way an LXD operation reaches a browser: `safe_operation` keeps an allow-list of
fields. Operation metadata is never shown raw: exec operations carry their websocket secrets
in `metadata.fds`, certificate tokens and image secrets carry `secret`, exec carries the
command line and environment (which may hold passwords)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ..fleet.rows import parse_lxd_time

_FIELDS = ("id", "class", "description", "status", "status_code", "may_cancel", "err", "location")
_PERCENT = re.compile(r"(\d{1,3})%")
_HEX = re.compile(r"^[0-9a-f]{12,64}$")
_STAGE = re.compile(r"^[a-z0-9_]{1,64}$")


def safe_operation(op: dict) -> dict:
    """Only what a person may see of an operation, in plain Python types."""
    op = op if isinstance(op, dict) else {}
    safe = {key: op.get(key) for key in _FIELDS}
    safe["id"] = str(safe["id"] or "")
    safe["status_code"] = _int(safe["status_code"])
    safe["may_cancel"] = bool(safe["may_cancel"])
    safe["err"] = str(safe["err"] or "")
    safe["created_at"] = parse_lxd_time(op.get("created_at"))
    safe["updated_at"] = parse_lxd_time(op.get("updated_at"))
    safe["resources"] = _resources(op.get("resources"))
    safe["progress"] = safe_progress(op.get("metadata"))
    safe["final"] = safe["status_code"] >= 200
    return safe


def _int(value) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _resources(resources) -> list[tuple[str, str]]:
    """[(kind, path)], without the legacy `containers` duplicate and without query strings."""
    out: list[tuple[str, str]] = []
    if not isinstance(resources, dict):
        return out
    for kind, urls in sorted(resources.items()):
        if kind == "containers" and "instances" in resources:
            continue
        for url in urls or []:
            if isinstance(url, str):
                out.append((str(kind), urlsplit(url).path))
    return out


def safe_progress(metadata) -> dict:
    """Progress, from the fields LXD 5.0.2 actually sends (LXD-API.md §2.5): `*_progress`
    texts, the `progress` dict (all strings), an image's fingerprint/size, exec's exit code."""
    out: dict = {}
    if not isinstance(metadata, dict):
        return out
    for key, value in sorted(metadata.items()):
        if key.endswith("_progress") and isinstance(value, str) and value:
            out["text"] = value[:120]
            match = _PERCENT.search(value)
            if match:
                out.setdefault("percent", min(100, int(match.group(1))))
    progress = metadata.get("progress")
    if isinstance(progress, dict):
        if str(progress.get("percent", "")).isdigit():
            out["percent"] = min(100, int(progress["percent"]))
        stage = str(progress.get("stage", ""))
        if _STAGE.match(stage):
            out["stage"] = stage
    if isinstance(metadata.get("fingerprint"), str) and _HEX.match(metadata["fingerprint"]):
        out["fingerprint"] = metadata["fingerprint"]
    if isinstance(metadata.get("return"), int):
        out["return"] = metadata["return"]
    return out


def operation_sort_key(op: dict):
    """Running first, then newest first."""
    created = op.get("created_at")
    return (op.get("final", False), -(created.timestamp() if created else 0))
