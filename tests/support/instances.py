"""Throwaway instances on the lab daemons, and what lies inside them.

Every instance (and profile) a test makes is named with PREFIX, so that what an interrupted
run left behind is recognisable: sweep_leftovers() removes it at the start of the next run."""

from __future__ import annotations

import contextlib
import secrets

from hosts.lxd import LXDAPIError
from tests.lab import LabDaemon

PREFIX = "t-"


def new_name(tag: str = "") -> str:
    """A fresh instance or profile name: t-[tag-]<8 hex digits> (a valid LXD name)."""
    return f"{PREFIX}{tag + '-' if tag else ''}{secrets.token_hex(4)}"


class Instances:
    """Instances made (or tracked) by one test, deleted at its end: the `instances` fixture."""

    def __init__(self):
        self.made: list[tuple[LabDaemon, str]] = []

    def name(self, tag: str = "") -> str:
        return new_name(tag)

    def make(
        self,
        daemon: LabDaemon,
        name: str | None = None,
        *,
        running: bool = True,
        ip: str | None = None,
        image: str = "busybox",
        config: dict[str, str] | None = None,
    ) -> str:
        """`lxc launch` (or `init` when not running); `ip` is added inside it (LXD's state
        reports it) for the tests that look for addresses."""
        name = self.track(daemon, name or self.name())
        options = [arg for key, value in (config or {}).items() for arg in ("-c", f"{key}={value}")]
        daemon.lxc("launch" if running else "init", image, name, *options, timeout=120)
        if ip:
            daemon.lxc("exec", name, "--", "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
        return name

    def track(self, daemon: LabDaemon, name: str) -> str:
        """An instance something else creates (the dashboard, say): deleted at the end too."""
        assert name.startswith(PREFIX), f"test instances are named {PREFIX}...: {name}"
        self.made.append((daemon, name))
        return name

    def cleanup(self) -> None:
        for daemon, name in reversed(self.made):
            daemon.lxc("delete", "--force", name, check=False, timeout=120)
        self.made.clear()


@contextlib.contextmanager
def an_instance(daemon: LabDaemon, **options):
    """One throwaway instance for a block (or a module-scoped fixture): Instances.make's options."""
    made = Instances()
    try:
        yield made.make(daemon, **options)
    finally:
        made.cleanup()


def status_of(daemon: LabDaemon, name: str) -> str | None:
    """The instance's status as LXD tells it, None once it is gone."""
    try:
        return daemon.admin().instance(name)["status"]
    except LXDAPIError as exc:
        if exc.error_code == 404:
            return None
        raise


def sweep_leftovers(daemons) -> list[str]:
    """Delete the test instances, profiles and image aliases an interrupted run left on
    these daemons (anything named with PREFIX); what was deleted, as daemon:name."""
    swept = []
    for daemon in daemons:
        admin = daemon.admin()
        for kind in ("instances", "profiles"):
            for url in admin.get(f"/1.0/{kind}") or []:
                name = url.rsplit("/", 1)[-1]
                if name.startswith(PREFIX):
                    verb = ("delete", "--force") if kind == "instances" else ("profile", "delete")
                    daemon.lxc(*verb, name, check=False, timeout=120)
                    swept.append(f"{daemon.name}:{name}")
        for alias in admin.get("/1.0/images/aliases", params={"recursion": 1}) or []:
            if alias["name"].startswith(PREFIX):
                daemon.lxc("image", "delete", alias["target"], check=False)
                swept.append(f"{daemon.name}:image {alias['name']}")
    return swept


# -- files inside an instance, straight from LXD (what `lxc file` does, not the dashboard) -----


def push(daemon: LabDaemon, name: str, path: str, data: bytes, **headers) -> None:
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
    """The X-LXD-* headers of a path (mode, uid, gid, type), None if it does not exist."""
    response = daemon.admin().request("HEAD", f"/1.0/instances/{name}/files", params={"path": path})
    if response.status_code == 404:
        return None
    return {k.lower(): v for k, v in response.headers.items() if k.lower().startswith("x-lxd-")}


def mkdir(daemon: LabDaemon, name: str, path: str) -> None:
    response = daemon.admin().request(
        "POST", f"/1.0/instances/{name}/files", params={"path": path}, headers={"X-LXD-type": "directory"}
    )
    assert response.status_code == 200, response.text
