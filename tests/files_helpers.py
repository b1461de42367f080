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
    """Write a file the way `lxc file push` does (directly, not through the dashboard).
    `headers` by their short names (mode="0640", uid="0"), sent as the daemon names them."""
    admin = daemon.admin()
    response = admin.request(
        "POST",
        f"/1.0/instances/{name}/files",
        params={"path": path},
        data=data,
        headers={
            "Content-Type": "application/octet-stream",
            **{admin.header(k): v for k, v in headers.items()},
        },
    )
    assert response.status_code == 200, response.text


def pull(daemon: LabDaemon, name: str, path: str) -> bytes | None:
    response = daemon.admin().request("GET", f"/1.0/instances/{name}/files", params={"path": path})
    return None if response.status_code == 404 else response.content


def head(daemon: LabDaemon, name: str, path: str) -> dict | None:
    """The file's metadata headers by their short names ("mode", "uid" ...), LXD's or Incus'."""
    admin = daemon.admin()
    response = admin.request("HEAD", f"/1.0/instances/{name}/files", params={"path": path})
    if response.status_code == 404:
        return None
    prefix = admin.kind.header_prefix.lower()
    return {k.lower()[len(prefix) :]: v for k, v in response.headers.items() if k.lower().startswith(prefix)}


def mkdir(daemon: LabDaemon, name: str, path: str) -> None:
    admin = daemon.admin()
    response = admin.request(
        "POST",
        f"/1.0/instances/{name}/files",
        params={"path": path},
        headers={admin.header("type"): "directory"},
    )
    assert response.status_code == 200, response.text


# -- talking to a live dashboard over HTTP and websockets (tests and bench/files.py) ---------


def login(base_url: str, username: str, password: str):
    """A requests session logged in through the login form, with the CSRF header set."""
    import requests

    session = requests.Session()
    session.trust_env = False
    session.get(base_url + "/accounts/login/", timeout=10)
    token = session.cookies["csrftoken"]
    response = session.post(
        base_url + "/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        timeout=10,
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text[:500]
    session.headers["X-CSRFToken"] = session.cookies["csrftoken"]
    return session


def ws_upload(
    base_url: str,
    session,
    host: str,
    name: str,
    path: str,
    chunks,
    size: int,
    *,
    overwrite: bool = False,
    frame: int = 1024 * 1024,
    window: int = 4 * 1024 * 1024,
    stop_after: int | None = None,
) -> dict:
    """Upload as the page's script does: header, frames within the window, wait for the outcome.

    `stop_after` closes the socket once that many bytes are sent (an interrupted upload)."""
    import json

    from websockets.sync.client import connect

    uri = base_url.replace("http://", "ws://") + f"/ws/hosts/{host}/instances/{name}/files/upload/"
    cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    with connect(uri, origin=base_url, additional_headers={"Cookie": cookie}, max_size=None) as ws:
        ws.send(json.dumps({"path": path, "size": size, "overwrite": overwrite}))
        reply = json.loads(ws.recv(timeout=30))
        if reply["type"] != "ready":
            return reply
        sent = acked = 0

        def pieces():
            for chunk in chunks:
                if len(chunk) <= frame:
                    yield chunk
                else:
                    yield from (chunk[i : i + frame] for i in range(0, len(chunk), frame))

        for piece in pieces():
            while sent - acked >= window:
                reply = json.loads(ws.recv(timeout=60))
                if reply["type"] != "ack":
                    return reply
                acked = reply["received"]
            ws.send(piece)
            sent += len(piece)
            if stop_after is not None and sent >= stop_after:
                return {"type": "stopped", "sent": sent}
        while True:
            reply = json.loads(ws.recv(timeout=60))
            if reply["type"] != "ack":
                return reply
