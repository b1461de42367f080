"""Throw-away containers for the files and snapshots tests (prefix `fs-`, always deleted)."""

from __future__ import annotations

import contextlib
import secrets

from tests.lab import LabDaemon

PREFIX = "fs-"


@contextlib.contextmanager
def container(daemon: LabDaemon, *, running: bool = True):
    name = PREFIX + secrets.token_hex(4)
    daemon.lxc("launch" if running else "init", "busybox", name, timeout=120)
    try:
        yield name
    finally:
        daemon.lxc("delete", "--force", name, check=False, timeout=120)


def push(daemon: LabDaemon, name: str, path: str, data: bytes, **headers) -> None:
    """Write a file the way `lxc file push` does (directly, not through the dashboard)."""
    response = daemon.admin().request(
        "POST",
        f"/1.0/instances/{name}/files",
        params={"path": path},
        data=data,
        headers={"Content-Type": "application/octet-stream", **headers},
    )
    assert response.status_code == 200, response.text


def pull(daemon: LabDaemon, name: str, path: str) -> bytes | None:
    response = daemon.admin().request("GET", f"/1.0/instances/{name}/files", params={"path": path})
    return None if response.status_code == 404 else response.content


def head(daemon: LabDaemon, name: str, path: str) -> dict | None:
    response = daemon.admin().request("HEAD", f"/1.0/instances/{name}/files", params={"path": path})
    if response.status_code == 404:
        return None
    return {k.lower(): v for k, v in response.headers.items() if k.lower().startswith("x-lxd-")}


def mkdir(daemon: LabDaemon, name: str, path: str) -> None:
    response = daemon.admin().request(
        "POST", f"/1.0/instances/{name}/files", params={"path": path}, headers={"X-LXD-type": "directory"}
    )
    assert response.status_code == 200, response.text
