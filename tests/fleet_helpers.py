"""Instances made by the fleet tests on the real lab daemons (prefix `flt-`), removed afterwards."""

from __future__ import annotations

import re
import uuid

import pytest

from hosts.lxd import LXDAPIError

PREFIX = "flt-"


class Instances:
    def __init__(self):
        self.made: list[tuple[object, str]] = []

    def name(self) -> str:
        return f"{PREFIX}{uuid.uuid4().hex[:8]}"

    def make(
        self,
        daemon,
        name: str | None = None,
        *,
        running: bool = True,
        ip: str | None = None,
        image: str = "busybox",
    ) -> str:
        name = name or self.name()
        self.made.append((daemon, name))
        daemon.lxc("launch" if running else "init", image, name)
        if ip:
            daemon.lxc("exec", name, "--", "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
        return name

    def track(self, daemon, name: str) -> str:
        self.made.append((daemon, name))
        return name

    def cleanup(self) -> None:
        for daemon, name in self.made:
            daemon.lxc("delete", "--force", name, check=False)


@pytest.fixture(name="instances")
def instances_fixture():
    made = Instances()
    yield made
    made.cleanup()


def status_of(daemon, name: str) -> str | None:
    try:
        return daemon.admin().instance(name)["status"]
    except LXDAPIError as exc:
        if exc.error_code == 404:
            return None
        raise


def loader_urls(html: str) -> list[str]:
    """The lazy per-host state requests the fleet page asks the browser to make."""
    return [url.replace("&amp;", "&") for url in re.findall(r'hx-get="(/fleet/state/[^"]+)"', html)]


def cell(html: str, dom_id: str) -> str:
    """The <td> (or <tr>) carrying `dom_id`, as text."""
    match = re.search(rf'<(td|tr) id="{re.escape(dom_id)}"[^>]*>(.*?)</\1>', html, re.S)
    assert match, f"no element with id {dom_id}"
    return match.group(0)
