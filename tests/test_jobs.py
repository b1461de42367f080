"""The dashboard's own jobs in the task log (a copy or move, a scheduled backup): rows of their
own, pushed to pages like the relay's LXD operations, never taken for lost LXD operations; and
which operations get a progress bar."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async  # the test drives the DB from async code

from hosts.domain import tasklog
from hosts.live import hub
from hosts.lxd.operation import shows_progress
from hosts.models import Host, Task
from tests.support import fresh_channel_layer

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_resync_does_not_mark_the_dashboards_jobs_lost():
    job = tasklog.start_job("lab1", "transfer", "Move c1 from lab1 to lab2", [("instance", "c1")])
    lxd = Task.objects.create(host_name="lab1", operation_id="0b1c2d3e-0000", op_class="task")
    lost = tasklog.mark_lost("lab1", alive=set())
    assert [t.pk for t in lost] == [lxd.pk]
    job.refresh_from_db()
    assert job.status == Task.Status.RUNNING


async def test_a_job_row_is_pushed_to_the_pages_as_it_changes():
    fresh_channel_layer()
    await database_sync_to_async(Host.objects.create)(name="lab2", endpoint="/nonexistent/unix.socket")
    # A hub an earlier test left on this loop joined the groups of the hosts it knew then.
    await hub.stop_hub()
    live = await hub.ensure_hub()
    seen: list[dict] = []
    arrived = asyncio.Event()

    class Page:  # a subscriber of the hub (hosts/live/hub.py Subscriber) that only looks
        def audience(self, message):
            seen.append(message)
            arrived.set()
            return None  # nothing to render for it

    page = Page()
    live.subscribers.add(page)
    try:

        def run_job():  # in a worker thread, as a transfer runs
            task = tasklog.start_job("lab2", "transfer", "Copy c1 from lab1 to lab2", [("instance", "c1")])
            tasklog.end_job(task, text="copy now on lab2; c1 stays on lab1")

        await database_sync_to_async(run_job, thread_sensitive=False)()
        async with asyncio.timeout(10):
            while not [m for m in seen if m.get("status") == "success"]:
                arrived.clear()
                await arrived.wait()
    finally:
        live.subscribers.discard(page)
        await hub.stop_hub()
    done = [m for m in seen if m["status"] == "success"][-1]
    assert done["type"] == "operation.update" and done["host"] == "lab2" and done["op_class"] == "transfer"
    assert done["text"] == "copy now on lab2; c1 stays on lab1" and done["instances"] == ["c1"]


@pytest.mark.parametrize(
    ("op_class", "description", "bar"),
    [
        ("task", "Creating instance", True),
        ("websocket", "Migrating instance", True),  # the source end of a copy (pull)
        ("websocket", "Creating instance", True),  # the target end (push)
        ("websocket", "Executing command", False),
        ("token", "Image download token", False),
    ],
)
def test_which_operations_have_a_progress_bar(op_class, description, bar):
    assert shows_progress(op_class, description) is bar
