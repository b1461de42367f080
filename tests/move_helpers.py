"""Instances for the copy, move and backup tests (named `t-mv-...`), on the real lab daemons, with
files and snapshots to check; removed from every daemon afterwards."""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager

import pytest

from hosts.lxd import LXDAPIError
from tests.lab import ROOT
from tests.support import new_name, pull, push


class Made:
    def __init__(self, lab):
        self.lab = lab
        self.names: set[str] = set()

    def name(self) -> str:
        name = new_name("mv")
        self.names.add(name)
        return name

    def make(
        self, daemon, *, running: bool = False, snapshots: int = 0, data_mib: int = 0
    ) -> tuple[str, bytes]:
        """An instance with /root/marker (random bytes, returned) and `snapshots` snapshots."""
        name = self.name()
        daemon.lxc("launch", "busybox", name, timeout=120)
        marker = os.urandom(4096)
        push(daemon, name, "/root/marker", marker)
        if data_mib:
            daemon.lxc(
                "exec",
                name,
                "--",
                "dd",
                "if=/dev/urandom",
                "of=/root/data",
                "bs=1M",
                f"count={data_mib}",
                timeout=300,
            )
        for i in range(snapshots):
            daemon.lxc("snapshot", name, f"s{i + 1}")
        if not running:
            daemon.lxc("stop", "--force", name)
        return name, marker

    def cleanup(self) -> None:
        for daemon in self.lab.daemons:
            for name in self.names:
                daemon.lxc("delete", "--force", name, check=False)


@pytest.fixture(name="made")
def made_fixture(lab):
    made = Made(lab)
    yield made
    made.cleanup()


def describe(daemon, name: str) -> dict | None:
    try:
        return daemon.admin().instance(name)
    except LXDAPIError as exc:
        if exc.error_code == 404:
            return None
        raise


def marker_of(daemon, name: str) -> bytes | None:
    return pull(daemon, name, "/root/marker")


def release_stale_mounts(daemon, name: str) -> None:
    """A daemon killed while it sent an instance keeps that instance's snapshots mounted (LXD 5.0.2
    mounts them read-only to send them); they outlive its restart, and the instance cannot be
    deleted until they are gone."""
    prefix = f"{daemon.lxd_dir}/storage-pools/"
    with open("/proc/self/mountinfo") as fh:
        points = [line.split()[4] for line in fh]
    for point in points:
        if point.startswith(prefix) and f"/{name}/" in point + "/":
            subprocess.run(["umount", point], check=False)


def restart_lab() -> None:
    """Start whatever lab daemon a test killed (bin/lab up is idempotent), and close every pooled
    connection: those to the killed daemon are dead (twice in about fifteen runs one was found
    unclosed by the garbage collector, a ResourceWarning this suite turns into an error; where it
    was left open is not known)."""
    from hosts.lxd.client import forget_sessions

    subprocess.run([str(ROOT / "bin" / "lab"), "up", "3"], check=True, capture_output=True, timeout=180)
    forget_sessions()


@contextmanager
def small_pool(daemon, name: str, size_mib: int):
    """A dir storage pool on a tmpfs of `size_mib` MiB: a pool that really runs out of space."""
    # Beside the daemon's directory: LXD refuses a pool source inside it.
    path = os.path.join(os.path.dirname(daemon.lxd_dir), "pools", f"{daemon.name}-{name}")
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", path], check=True)
    try:
        daemon.lxc("storage", "create", name, "dir", f"source={path}")
        try:
            yield name
        finally:
            daemon.lxc("storage", "delete", name, check=False)
    finally:
        subprocess.run(["umount", path], check=False)
        os.rmdir(path)
