"""The browser socket, through the real ASGI application (auth, origin check, routing) with
the relay embedded, against the real lab daemons."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from hosts.live import hub, relay
from tests.support import fresh_channel_layer, logged_in, make_user, relay_synced

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def live():
    """Open sockets as a given user; the embedded relay is stopped (and awaited) afterwards."""
    fresh_channel_layer()
    opened: list[WebsocketCommunicator] = []

    async def open_socket(client, query: str) -> WebsocketCommunicator:
        from dashboard.asgi import application

        cookie = client.cookies["sessionid"].value
        communicator = WebsocketCommunicator(
            application,
            f"/ws/live/?{query}",
            headers=[
                (b"origin", b"http://127.0.0.1"),
                (b"host", b"127.0.0.1"),
                (b"cookie", f"sessionid={cookie}".encode()),
            ],
        )
        opened.append(communicator)
        return communicator

    yield open_socket
    for communicator in opened:
        await communicator.disconnect()
    await hub.stop_hub()
    await relay.stop_embedded()
    assert [t for t in asyncio.all_tasks() if t.get_name().startswith("relay")] == []


class Frames:
    def __init__(self, communicator: WebsocketCommunicator):
        self.communicator = communicator
        self.texts: list[str] = []
        self.closed: int | None = None

    async def until(self, predicate, timeout: float = 15.0, what: str = "a frame") -> str:
        for text in self.texts:
            if predicate(text):
                return text
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.closed is None:
            try:
                message = await self.communicator.receive_output(timeout=deadline - time.monotonic())
            except TimeoutError:
                break
            if message["type"] == "websocket.close":
                self.closed = message.get("code")
                break
            self.texts.append(message["text"])
            if predicate(message["text"]):
                return message["text"]
        raise AssertionError(f"no {what} (closed={self.closed}); got {[t[:120] for t in self.texts[-10:]]}")

    async def close_code(self, timeout: float = 15.0) -> int:
        """Read on until the server closes the socket: its close code."""
        with contextlib.suppress(AssertionError):
            await self.until(lambda t: False, timeout)
        assert self.closed is not None, f"the socket stayed open for {timeout} s"
        return self.closed


@pytest.fixture
def container(lab, instances):
    return instances.make(lab.d1, running=False)


async def test_lxc_start_changes_the_row_cells_live(live, admin_client, unix_host, lab, container):
    socket = await live(admin_client, "topics=hosts,instances,operations")
    connected, _ = await socket.connect()
    assert connected
    frames = Frames(socket)
    badge = await frames.until(lambda t: 'id="host-status-lab1"' in t, what="the host badge")
    assert "hx-swap-oob" in badge
    await frames.until(lambda t: 'id="live-operations"' in t, what="the operations panel")
    await relay_synced("lab1")
    # The state listing that follows a connect sends the row once with its state: from here on,
    # only what the start changes.
    await frames.until(lambda t: f'id="instance-lab1-{container}-memory"' in t, what="the listed row")
    frames.texts.clear()

    await asyncio.to_thread(lab.d1.lxc, "start", container)
    status = await frames.until(
        lambda t: f'id="instance-lab1-{container}-status"' in t, what="the status push"
    )
    assert status.startswith("<td") and "Running" in status and 'hx-swap-oob="true"' in status
    row = await frames.until(lambda t: f'id="instance-lab1-{container}-memory"' in t, what="the state push")
    assert row.startswith(f'<tr id="instance-lab1-{container}"') and 'hx-swap-oob="true"' in row
    assert frames.texts.index(status) < frames.texts.index(row)
    assert "MiB" in row or "KiB" in row
    assert 'data-action="stop"' in row  # an admin gets the row's buttons
    done = await frames.until(lambda t: "Starting instance" in t and "done" in t, what="the operation's end")
    assert 'id="operation-lab1-' in done
    # An operation that fails ends its bar with LXD's own error text.
    client = unix_host.client(timeout=(5, 30))
    op, _ = await asyncio.to_thread(
        client.call, "PUT", f"/1.0/instances/{container}/state", json_body={"action": "start"}
    )
    failed = await frames.until(
        lambda t: f"operation-lab1-{op.id}" in t and "op-error" in t, what="the failure"
    )
    assert "already running" in failed
    assert all("secret" not in t and '"fds"' not in t for t in frames.texts)


async def test_unknown_topics_are_refused_with_a_message(live, admin_client):
    socket = await live(admin_client, "topics=everything")
    connected, _ = await socket.connect()
    frames = Frames(socket)
    error = await frames.until(lambda t: 'id="live-error"' in t)
    assert "unknown topics everything" in error
    assert await frames.close_code() == 4400


async def test_every_request_is_checked_against_the_role(live, client):
    viewer = await sync_to_async(make_user)("viewer")
    await sync_to_async(logged_in)(viewer, client)
    socket = await live(client, "topics=hosts")
    connected, _ = await socket.connect()
    assert connected  # a viewer may watch
    frames = Frames(socket)
    await socket.send_to(text_data="{not json")
    assert "must be a JSON object" in await frames.until(lambda t: 'id="live-error"' in t)
    await socket.send_to(text_data=json.dumps({"action": "launch-missiles"}))
    assert "unknown request" in await frames.until(lambda t: "unknown request" in t)

    viewer.is_active = False
    await sync_to_async(viewer.save)()
    await socket.send_to(text_data=json.dumps({"action": "resync"}))
    assert await frames.close_code() == 4403


async def test_a_password_change_closes_the_sockets_of_other_sessions(live, client):
    user = await sync_to_async(make_user)("pw-user")
    await sync_to_async(logged_in)(user, client)
    socket = await live(client, "topics=hosts")
    assert (await socket.connect())[0]
    frames = Frames(socket)
    await frames.until(lambda t: 'id="live-indicator"' in t, what="the socket's first frames")

    user.set_password("another-long-password")
    await sync_to_async(user.save)()  # Django logs out every other session of this user
    assert await frames.close_code() == 4401
    assert "log in again" in frames.texts[-1]


async def test_a_socket_closes_when_its_session_expires(live, client):
    from datetime import timedelta

    from django.contrib.sessions.models import Session
    from django.utils import timezone

    user = await sync_to_async(make_user)("short")
    await sync_to_async(logged_in)(user, client)
    await sync_to_async(Session.objects.filter(session_key=client.session.session_key).update)(
        expire_date=timezone.now() + timedelta(seconds=3)
    )
    socket = await live(client, "topics=hosts")
    assert (await socket.connect())[0]
    frames = Frames(socket)
    assert await frames.close_code(timeout=30) == 4401


async def test_task_rows_follow_the_pages_filters(live, admin_client, unix_host, lab, instances, container):
    # a name the filter's instance name is a prefix of
    other = await asyncio.to_thread(instances.make, lab.d1, container + "x", running=False)
    socket = await live(admin_client, f"topics=tasks&host=lab1&instance={container}")
    assert (await socket.connect())[0]
    frames = Frames(socket)
    await relay_synced("lab1")
    await asyncio.to_thread(lab.d1.lxc, "start", other)
    await asyncio.to_thread(lab.d1.lxc, "start", container)
    row = await frames.until(lambda t: "Starting instance" in t and container in t and "success" in t)
    assert 'id="task-lab1-' in row
    assert not any(f">{other}<" in t for t in frames.texts), "a row of another instance arrived"


def test_a_socket_that_falls_behind_keeps_the_latest_of_each_subject():
    from hosts.live.groups import INSTANCE_GONE, INSTANCE_STATE, INSTANCE_STATUS, OPERATION
    from hosts.live.hub import Mailbox

    box = Mailbox()
    box.put({"type": INSTANCE_STATUS, "host": "h", "instance": "c1", "status": "Running", "seq": "1"})
    box.put({"type": INSTANCE_STATE, "host": "h", "instance": "c1", "data": {}, "new": True, "seq": "2"})
    box.put({"type": OPERATION, "host": "h", "id": "op", "percent": 10, "seq": "3"})
    box.put({"type": INSTANCE_STATUS, "host": "h", "instance": "c1", "status": "Stopped", "seq": "4"})
    box.put({"type": OPERATION, "host": "h", "id": "op", "percent": 70, "seq": "5"})
    box.put({"type": INSTANCE_STATE, "host": "h", "instance": "c1", "data": {}, "new": False, "seq": "6"})
    box.put({"type": INSTANCE_STATUS, "host": "h", "instance": "c2", "status": "Frozen", "seq": "7"})
    taken = box.take()
    assert [m["seq"] for m in taken] == ["4", "5", "6", "7"]
    assert taken[2]["new"] is True  # the row still has to be inserted
    box.put({"type": INSTANCE_GONE, "host": "h", "instance": "c2", "seq": "8"})
    assert [m["seq"] for m in box.take()] == ["8"] and not box.ready.is_set()


async def test_a_page_from_an_older_model_catches_up_when_its_socket_opens(
    live, admin_client, unix_host, lab, container, settings
):
    """A page rendered from the live model, whose socket opens after a change was written (and
    pushed before the socket listened), is told to refresh; a page as new as the model is not."""
    import re

    from hosts.fleet import model as fleet_model
    from hosts.models import HostSync
    from tests.support import wait_until_async

    settings.DASHBOARD_COUNTERS_SECONDS = 3600  # after the first state listing, only events write
    first = await live(admin_client, "topics=hosts,instances")  # starts the embedded relay
    assert (await first.connect())[0]
    await relay_synced("lab1")

    def listed() -> bool:
        return HostSync.objects.filter(host=unix_host, counters_at__isnull=False).exists()

    await wait_until_async(lambda: asyncio.to_thread(listed), 15, "the first state listing")

    def version() -> str:
        html = admin_client.get("/").content.decode()
        found = re.search(r"&amp;model=([0-9.]+)", html)
        return found.group(1) if found else ""

    shown = await sync_to_async(version)()
    assert shown, "the page was not rendered from the live model"
    current = Frames(await live(admin_client, f"topics=hosts,instances&model={shown}"))
    assert (await current.communicator.connect())[0]
    await current.until(lambda t: 'data-synced="1"' in t, what="caught up")
    assert not any('id="live-resync"' in t for t in current.texts)

    await asyncio.to_thread(lab.d1.lxc, "start", container)

    def written() -> bool:
        return fleet_model.freshness([unix_host])[unix_host.pk].version > float(shown)

    await wait_until_async(lambda: asyncio.to_thread(written), 15, "the change written to the model")
    late = Frames(await live(admin_client, f"topics=hosts,instances&model={shown}"))
    assert (await late.communicator.connect())[0]
    await late.until(lambda t: 'id="live-resync"' in t, what="the catch-up")


def test_the_hub_renders_once_per_audience_and_pushes_the_same_bytes_to_each_socket():
    """Fan-out: 5 sockets in two audiences (operators' rows carry action buttons, viewers'
    do not) and one that does not watch this host: two renders, and each socket of an
    audience gets that audience's one Push (the same framed bytes on the wire)."""
    from hosts.live.groups import INSTANCE_STATE
    from hosts.live.hub import Hub
    from hosts.live.wire import Push

    class Socket:
        def __init__(self, audience):
            self.answer, self.pushes = audience, []

        def audience(self, message):
            return self.answer

        def render(self, message, audience):
            renders.append(audience)
            return Push([f"<div hx-swap-oob='true'>{audience}</div>"])

        def push(self, push):
            self.pushes.append(push)

    renders: list = []
    operators = [Socket(("state", True)) for _ in range(3)]
    viewers = [Socket(("state", False)) for _ in range(2)]
    elsewhere = Socket(None)
    hub = Hub(layer=fresh_channel_layer())
    hub.subscribers.update([*operators, *viewers, elsewhere])
    hub.fan_out(
        {"type": INSTANCE_STATE, "host": "h", "instance": "c1", "data": {}, "new": False, "seq": "s1"}
    )
    assert sorted(renders) == [("state", False), ("state", True)]
    for group in (operators, viewers):
        assert all(len(s.pushes) == 1 for s in group)
        assert len({id(s.pushes[0]) for s in group}) == 1
    assert operators[0].pushes[0].texts != viewers[0].pushes[0].texts
    assert elsewhere.pushes == []
