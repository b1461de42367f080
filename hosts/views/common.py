"""Small helpers shared by the views (access, errors and the host a URL names: access.py)."""

from __future__ import annotations

from collections.abc import Callable

from ..concurrency import parallel
from ..domain.config_view import config_value
from ..models import Host


def parallel_clients(hosts: list[Host], ask: Callable) -> list[tuple[Host, object]]:
    """ask(client) for every host at once (clients built here, in the request's thread):
    [(host, answer)] in the hosts' order."""
    clients = [host.client() for host in hosts]
    return list(zip(hosts, parallel(ask, clients), strict=True))


def config_to_text(config: dict) -> str:
    return "\n".join(f"{key} = {config_value(value)}" for key, value in sorted((config or {}).items()))


def config_changes(original: dict, edited: dict[str, str]) -> dict[str, str]:
    """Only what the person changed: new or changed keys, and "" for removed ones."""
    changes = {
        key: value
        for key, value in edited.items()
        if config_value(original.get(key)) != value or key not in original
    }
    changes.update({key: "" for key in original if key not in edited})
    return changes
