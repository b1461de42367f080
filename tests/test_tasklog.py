"""The lasting task log: operations seen on the real daemons are kept after LXD forgets
them, with who started them when the dashboard did, and shown on /tasks/."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse

from hosts.domain import tasklog
from hosts.domain.audit import record
from hosts.live.relay import Relay
from hosts.models import AuditEntry, Task
from tests.support import fresh_channel_layer, operation_forgotten, relay_synced, wait_until_async

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def relay():
    relay = Relay(fresh_channel_layer())
    task = asyncio.get_running_loop().create_task(relay.run(), name="relay")
    await asyncio.wait_for(relay.ready.wait(), 10)
    yield relay
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
def instance(lab, instances):
    # A name of its own per test: LXD lists finished operations for 5 s, so a resync
    # rightly records the previous test's operations too.
    return instances.make(lab.d1, running=False)


async def task_for(description: str, instance: str, *, timeout: float = 15) -> Task:
    """The task log's finished task of that kind for the instance, once it is there."""

    def finished() -> Task | None:
        tasks = Task.objects.filter(description=description, targets__contains=f" instance:{instance} ")
        return next((t for t in tasks if t.is_final), None)

    return await wait_until_async(
        sync_to_async(finished), timeout, f"a finished task {description!r} for {instance}"
    )


async def test_an_lxc_start_is_kept_after_lxd_forgets_it(relay, unix_host, lab, instance):
    await relay_synced("lab1", relay)
    await asyncio.to_thread(lab.d1.lxc, "start", instance)
    task = await task_for("Starting instance", instance)
    assert (task.host_name, task.status, task.op_class) == ("lab1", "success", "task")
    assert task.target_list() == [("instance", instance)]
    assert task.ended_at >= task.started_at and task.username == ""  # not started from the dashboard
    # LXD drops a finished operation about 5 s after its end.
    await wait_until_async(
        lambda: asyncio.to_thread(operation_forgotten, lab.d1, task.operation_id),
        15,
        "LXD forgetting the operation",
    )
    assert await sync_to_async(Task.objects.filter(pk=task.pk).exists)()


async def test_a_failed_operation_keeps_lxds_error(relay, unix_host, lab, instance):
    await relay_synced("lab1", relay)
    await asyncio.to_thread(lab.d1.lxc, "start", instance)
    # A start of a running instance is accepted (202) and fails in the operation.
    client = unix_host.client(timeout=(5, 30))
    op, _ = await asyncio.to_thread(
        client.call, "PUT", f"/1.0/instances/{instance}/state", json_body={"action": "start"}
    )

    def finished() -> Task | None:
        task = Task.objects.filter(operation_id=op.id).first()
        return task if task is not None and task.is_final else None

    task = await wait_until_async(sync_to_async(finished), 15, "the failed start in the task log")
    assert task.status == "failure"
    assert "already running" in task.error


async def test_the_dashboard_user_who_started_it_is_recorded(relay, unix_host, lab, instance, admin_user):
    await relay_synced("lab1", relay)
    client = unix_host.client(timeout=(5, 30))
    op, _ = await asyncio.to_thread(
        client.call, "PUT", f"/1.0/instances/{instance}/state", json_body={"action": "start"}
    )
    await sync_to_async(tasklog.claim)(unix_host, op.id, admin_user)
    task = await task_for("Starting instance", instance)
    assert (task.operation_id, task.username, task.user_id) == (op.id, "admin", admin_user.pk)

    # Or, without a claim, through the audit trail's operation id.
    op2, _ = await asyncio.to_thread(
        client.call, "PUT", f"/1.0/instances/{instance}/state", json_body={"action": "stop", "force": True}
    )
    await sync_to_async(record)(
        admin_user, "instance.stop", host=unix_host, target=instance, operation_id=op2.id
    )
    task2 = await task_for("Stopping instance", instance)
    assert task2.username == "admin"


async def test_tasks_lxd_no_longer_knows_end_as_lost(unix_host, lab, relay):
    stale = await sync_to_async(Task.objects.create)(
        host_name="lab1", operation_id="00000000-dead-beef-0000-000000000000", description="Starting instance"
    )
    await relay_synced("lab1", relay)
    await sync_to_async(stale.refresh_from_db)()
    assert stale.status == "lost" and "not connected" in stale.error


def make_task(**fields) -> Task:
    defaults = {
        "host_name": "lab1",
        "op_class": "task",
        "status": "success",
        "description": "Starting instance",
    }
    return Task.objects.create(**{**defaults, **fields})


def test_task_page_filters_by_host_instance_and_outcome(admin_client, db):
    make_task(operation_id="a", targets=" instance:web1 ")
    make_task(operation_id="b", targets=" instance:web10 ", status="failure", error="boom")
    make_task(operation_id="c", host_name="lab2", targets=" instance:web1 ")
    url = reverse("task-list")

    def ids(response):
        return [row["id"] for row in response.context["rows"]]

    assert sorted(ids(admin_client.get(url))) == ["a", "b", "c"]
    assert sorted(ids(admin_client.get(url, {"instance": "web1"}))) == ["a", "c"]  # not web10
    assert ids(admin_client.get(url, {"host": "lab1", "instance": "web1"})) == ["a"]
    failed = admin_client.get(url, {"status": "failure"})
    assert ids(failed) == ["b"] and "boom" in failed.content.decode()


def test_the_page_shows_what_the_live_row_shows(admin_client, db):
    from django.utils import timezone

    start = timezone.now()
    make_task(
        operation_id="a",
        targets=" instance:web1 ",
        started_at=start,
        ended_at=start + timezone.timedelta(seconds=2.5),
    )
    body = admin_client.get(reverse("task-list")).content.decode()
    row = body[body.index('id="task-lab1-a"') :].split("</tr>")[0]
    assert ">success<" in row and "2.5 s" in row and start.strftime("%Y-%m-%d %H:%M:%S") in row


def test_instance_history_is_a_partial_for_htmx(admin_client, db):
    make_task(operation_id="a", targets=" instance:web1 ")
    response = admin_client.get(
        reverse("task-list"), {"host": "lab1", "instance": "web1"}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body and 'id="task-rows"' in body
    assert 'id="task-lab1-a"' in body
    rows = admin_client.get(
        reverse("task-list"), {"instance": "web1"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="task-rows"
    ).content.decode()
    assert "<table" not in rows and 'id="task-lab1-a"' in rows


def test_bad_filters_are_refused_with_a_message(admin_client, db):
    response = admin_client.get(reverse("task-list"), {"instance": "no spaces/allowed", "status": "bogus"})
    body = response.content.decode()
    assert response.status_code == 400
    assert "letters, digits and hyphens, starting with a letter" in body and "bogus" in body


def test_the_user_shown_comes_from_the_audit_trail_when_the_task_has_none(admin_client, admin_user, db):
    make_task(operation_id="op-x", targets=" instance:web1 ")
    record(admin_user, "instance.start", host="lab1", target="web1", operation_id="op-x")
    rows = admin_client.get(reverse("task-list")).context["rows"]
    assert rows[0]["username"] == "admin"


async def test_an_action_from_the_dashboard_names_its_user_while_it_runs(
    relay, unix_host, lab, instance, admin_client
):
    await relay_synced("lab1", relay)
    url = reverse("instance-action", args=["lab1", instance, "start"])
    response = await sync_to_async(admin_client.post)(url)
    assert response.status_code in (200, 302)
    task = await task_for("Starting instance", instance)
    assert (task.username, task.status) == ("admin", "success")
    audit = await sync_to_async(AuditEntry.objects.get)(action="instance.start", target=instance)
    assert audit.operation_id == task.operation_id
