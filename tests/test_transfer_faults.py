"""A host that dies in the middle of a copy, on the real lab daemons (d3 is the one tests may
kill; bin/lab up brings it back): the source stays untouched, nothing half-made stays on the
target, and the task says why."""

from __future__ import annotations

import os
import signal
import time

import pytest

from hosts.domain.copy import TransferSpec, plan_transfer, start_transfer
from hosts.domain.registration import register_host
from hosts.domain.transfer import clean_pending
from hosts.models import PendingCleanup, Task
from tests.move_helpers import (  # noqa: F401 (fixture)
    describe,
    made_fixture,
    marker_of,
    release_stale_mounts,
    restart_lab,
)

pytestmark = pytest.mark.django_db(transaction=True)

DATA_MIB = 150  # about 4 s of rsync between two lab daemons: time to kill one mid-way


@pytest.fixture
def lab3(db, lab):
    return register_host("lab3", lab.d3.url, token=lab.d3.trust_token("transfer-faults"))


def daemon_pid(daemon) -> int:
    return daemon.admin().server()[0]["environment"]["server_pid"]


def wait_until_sending(daemon, timeout: float = 60) -> None:
    """Until the daemon reports bytes sent or received by a migration (its fs_progress)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for op in daemon.admin().operations():
            if op.progress is not None and op.progress.stage == "fs":
                return
        time.sleep(0.05)
    raise AssertionError(f"no migration under way on {daemon.name}")


def wait_task(task: Task, timeout: float = 120) -> Task:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task.refresh_from_db()
        if task.is_final:
            return task
        time.sleep(0.2)
    raise AssertionError(f"task {task.description} still {task.status}")


def test_the_source_dies_mid_copy(admin_user, https_host, lab3, lab, made):
    name, marker = made.make(lab.d3, snapshots=1, data_mib=DATA_MIB)
    plan = plan_transfer(admin_user, TransferSpec(lab3, name, https_host, move=True))
    task = start_transfer(admin_user, plan)
    try:
        wait_until_sending(lab.d3)
        os.kill(daemon_pid(lab.d3), signal.SIGKILL)
        task = wait_task(task)
    finally:
        restart_lab()
    assert task.status == Task.Status.FAILURE
    assert "lab3 stopped answering during the move" in task.error
    assert task.progress.startswith(f"{name} is still on lab3")
    assert describe(lab.d2, name) is None  # nothing half-made on the target
    source = describe(lab.d3, name)  # untouched: there, with its snapshot and its files
    assert source is not None and [s["name"] for s in source["snapshots"]] == ["s1"]
    assert marker_of(lab.d3, name) == marker
    assert not PendingCleanup.objects.exists()
    release_stale_mounts(lab.d3, name)  # what the killed daemon left mounted (see the helper)


def test_the_target_dies_mid_copy_and_its_leftover_goes_when_it_is_back(
    admin_user, unix_host, lab3, lab, made
):
    name, marker = made.make(lab.d1, data_mib=DATA_MIB)
    plan = plan_transfer(admin_user, TransferSpec(unix_host, name, lab3, move=True))
    task = start_transfer(admin_user, plan)
    try:
        wait_until_sending(lab.d1)
        os.kill(daemon_pid(lab.d3), signal.SIGKILL)
        task = wait_task(task)
        assert task.status == Task.Status.FAILURE
        assert "lab3 stopped answering during the move" in task.error
        assert "lab3 is not answering: a partial" in task.progress
        assert PendingCleanup.objects.filter(host_name="lab3", instance=name).exists()
    finally:
        restart_lab()
    assert describe(lab.d1, name) is not None and marker_of(lab.d1, name) == marker  # the source stays
    # lab3 is back: what the broken copy left there is removed (the scheduler does this each tick)
    # (killed mid-transfer, LXD keeps the half-received instance's record across its restart)
    assert describe(lab.d3, name) is not None
    assert clean_pending() == [f"lab3/{name}"]
    assert describe(lab.d3, name) is None
    assert not PendingCleanup.objects.exists()
