"""The terminal's rules: what a browser may ask for, flow control, the bounds on sessions and
the idle timeout (the socket run in-process through the real ASGI application, against the
real lab), and what the instance page offers."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from hosts.domain.terminal import Offer, TerminalRefused, TerminalRequest, clamp_size, offer
from hosts.domain.terminal_window import OutputWindow
from hosts.live import hub
from tests.support import an_instance, fresh_channel_layer
from tests.terminal_helpers import running_execs, terminal_path


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("not a dict", "Send the session's description first."),
        ({"type": "resize"}, "Send the session's description first."),
        ({"type": "start", "mode": "vnc"}, "Unknown session kind 'vnc': exec or console."),
        ({"type": "start", "command": ["sh"]}, "The command must be text."),
        ({"type": "start", "command": "sh\x00"}, "The command contains a NUL byte."),
        ({"type": "start", "command": "x" * 5000}, "The command is longer than 4096 bytes."),
        ({"type": "start", "user": "u" * 300}, "The user is longer than 256 bytes."),
        ({"type": "start", "cwd": "relative/dir"}, "The working directory must be an absolute path."),
        ({"type": "start", "cwd": "/.."}, "The working directory: '/..' climbs above the root"),
        ({"type": "start", "cols": "eighty"}, "The terminal size must be two whole numbers"),
        ({"type": "start", "rows": 1e400}, "The terminal size must be two whole numbers"),
    ],
)
def test_a_bad_start_is_refused_with_a_reason(message, error):
    with pytest.raises(TerminalRefused) as refused:
        TerminalRequest.parse(message)
    assert refused.value.message.startswith(error) and refused.value.status == 400


def test_a_start_is_read_as_typed():
    request = TerminalRequest.parse(
        {"type": "start", "command": "sh -c 'echo a b'", "user": " alice ", "cwd": "/tmp//x/../y", "cols": 90}
    )
    assert request == TerminalRequest("exec", ("sh", "-c", "echo a b"), "alice", "", "/tmp/y", 90, 24)
    assert TerminalRequest.parse({"type": "start", "mode": "console"}).command == ()


def test_sizes_are_clamped():
    assert clamp_size(10**9, -3) == (500, 2)
    assert clamp_size("132", "43") == (132, 43)
    assert clamp_size(1, 1) == (2, 2)  # LXD 5.0.2 turns a 1 into 80x24


def test_the_output_window_waits_for_acknowledgements():
    async def scenario():
        window = OutputWindow(size=100)
        window.sent(60)
        await asyncio.wait_for(window.room(), 1)  # 60 in flight: room left
        window.sent(50)
        waiting = asyncio.ensure_future(window.room())
        await asyncio.sleep(0)
        assert not waiting.done()  # 110 in flight: the relay stops reading LXD
        window.acknowledge(20)
        await asyncio.wait_for(waiting, 1)
        for bad in (10, 111, "20", True, None):  # backwards, more than sent, not a count
            with pytest.raises(TerminalRefused):
                window.acknowledge(bad)

    # A loop of its own, in a thread: after a browser test, Playwright's loop is still marked
    # running in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result()


# -- the instance page --------------------------------------------------------------------


def test_the_page_offers_a_terminal_to_operators_only(
    client, admin_client, django_user_model, unix_host, lab
):
    with an_instance(lab.d1) as name:
        page = admin_client.get(f"/hosts/lab1/instances/{name}/").content.decode()
        assert 'id="terminal-panel"' in page and f'data-ws="{terminal_path("lab1", name)}"' in page
        assert 'value="/bin/sh"' in page  # busybox: no /bin/bash
        assert "<noscript>" in page and "hidden" in page.split('id="terminal-panel"')[1][:200]
        assert "js/terminal.js" in page and "vendor/xterm/xterm.js" in page
        viewer = django_user_model.objects.create_user("viewer", password="a-long-viewer-password")
        client.force_login(viewer)
        page = client.get(f"/hosts/lab1/instances/{name}/").content.decode()
        assert "terminal" not in page.lower() and 'id="instance-state"' in page


def test_what_the_page_offers(lab):
    with an_instance(lab.d1, running=False) as name:
        client = lab.d1.admin()
        assert offer(client, client.instance(name)) == Offer(
            False, f"{name} is stopped: start it to open a terminal."
        )
        client.run("PUT", f"/1.0/instances/{name}/state", json_body={"action": "start"})
        assert offer(client, client.instance(name)) == Offer(True, command="/bin/sh", console=True)
        client.run("PUT", f"/1.0/instances/{name}/state", json_body={"action": "freeze"})
        assert (
            offer(client, client.instance(name)).reason
            == f"{name} is frozen: unfreeze it to open a terminal."
        )
        client.run("PUT", f"/1.0/instances/{name}/state", json_body={"action": "unfreeze"})
    # a VM whose agent does not answer (here: none at all): no terminal, and why
    vm = {"name": "no-such-vm", "type": "virtual-machine", "status": "Running"}
    refused = offer(lab.d1.admin(), vm)
    assert not refused.available and refused.reason.startswith("The VM's agent does not answer")


# -- bounds and idle timeout, through the real ASGI application ------------------------------

pytestmark_db = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def sockets():
    fresh_channel_layer()
    opened: list[WebsocketCommunicator] = []

    async def open_socket(django_client, host: str, name: str) -> WebsocketCommunicator:
        from dashboard.asgi import application

        cookie = django_client.cookies["sessionid"].value
        communicator = WebsocketCommunicator(
            application,
            terminal_path(host, name),
            headers=[
                (b"origin", b"http://127.0.0.1"),
                (b"host", b"127.0.0.1"),
                (b"cookie", f"sessionid={cookie}".encode()),
            ],
        )
        connected, _ = await communicator.connect()
        assert connected
        opened.append(communicator)
        return communicator

    yield open_socket
    for communicator in opened:
        await communicator.disconnect()
    await hub.stop_hub()


async def start(communicator, **fields) -> dict:
    await communicator.send_to(text_data=json.dumps({"type": "start", "cols": 80, "rows": 24, **fields}))
    return await next_message(communicator)


async def next_message(communicator, timeout: float = 30) -> dict:
    while True:
        message = await communicator.receive_output(timeout)
        if message["type"] == "websocket.close":
            return {"type": "closed", "code": message.get("code")}
        if message.get("text") is not None:
            return json.loads(message["text"])


@pytest.fixture
def instance(lab):
    with an_instance(lab.d1) as name:
        yield name


@pytestmark_db
async def test_sessions_per_instance_are_bounded(sockets, admin_client, unix_host, instance, settings):
    settings.DASHBOARD_TERMINAL_SESSIONS_PER_INSTANCE = 1
    first = await sockets(admin_client, "lab1", instance)
    assert (await start(first, command="sh"))["type"] == "started"
    second = await sockets(admin_client, "lab1", instance)
    assert await start(second) == {
        "type": "error",
        "status": 429,
        "message": f"{instance} on lab1 has 1 terminal session open, the most allowed.",
    }
    assert await next_message(second) == {"type": "closed", "code": 4400}
    await first.send_to(bytes_data=b"exit 5\r")
    while (reply := await next_message(first))["type"] != "exit":
        pass
    assert reply["code"] == 5
    third = await sockets(admin_client, "lab1", instance)  # the ended session freed its place
    assert (await start(third, command="true"))["type"] == "started"


@pytestmark_db
async def test_sessions_per_user_are_bounded(sockets, admin_client, unix_host, instance, settings):
    settings.DASHBOARD_TERMINAL_SESSIONS_PER_USER = 2
    for _ in range(2):
        assert (await start(await sockets(admin_client, "lab1", instance), command="sh"))["type"] == "started"
    refused = await start(await sockets(admin_client, "lab1", instance))
    assert (refused["status"], refused["message"]) == (
        429,
        "You have 2 terminal sessions open, the most allowed: close one first.",
    )


@pytestmark_db
async def test_an_idle_session_is_closed(sockets, admin_client, unix_host, instance, lab, settings):
    settings.DASHBOARD_TERMINAL_IDLE_SECONDS = 1
    communicator = await sockets(admin_client, "lab1", instance)
    assert (await start(communicator, command="sh"))["type"] == "started"
    while (reply := await next_message(communicator))["type"] != "exit":
        pass
    assert reply == {
        "type": "exit",
        "code": 137,
        "message": "Closed after 1 s without a keystroke.",
    }
    assert await next_message(communicator) == {"type": "closed", "code": 1000}
    assert await sync_to_async(running_execs)(lab.d1, instance) == []


@pytestmark_db
async def test_bad_requests_on_the_socket_are_refused(sockets, admin_client, unix_host):
    from hosts.lxd.names import INSTANCE

    unknown = await sockets(admin_client, "nohost", "c1")
    assert await start(unknown) == {
        "type": "error",
        "status": 404,
        "message": "There is no host named nohost.",
    }
    bad_name = await sockets(admin_client, "lab1", "bad_name!")
    assert await start(bad_name) == {"type": "error", "status": 400, "message": INSTANCE.error("bad_name!")}
    early = await sockets(admin_client, "lab1", "c1")
    await early.send_to(bytes_data=b"ls\r")
    assert (await next_message(early))["message"] == "Send the session's description before any input."
    garbage = await sockets(admin_client, "lab1", "c1")
    await garbage.send_to(text_data="{not json")
    assert await next_message(garbage) == {
        "type": "error",
        "status": 400,
        "message": "The terminal did not understand that message.",
    }
    assert await next_message(garbage) == {"type": "closed", "code": 4400}


@pytestmark_db
async def test_losing_the_operator_role_closes_the_terminal(
    sockets, client, django_user_model, unix_host, instance, lab
):
    from django.contrib.auth.models import Group

    def make_operator():
        user = django_user_model.objects.create_user("op", password="a-long-operator-password")
        user.groups.add(Group.objects.get_or_create(name="operator")[0])  # flushed by earlier tests
        client.force_login(user)
        return user

    user = await sync_to_async(make_operator)()
    communicator = await sockets(client, "lab1", instance)
    assert (await start(communicator, command="sh"))["type"] == "started"
    await sync_to_async(user.groups.clear)()
    while (reply := await next_message(communicator))["type"] != "exit":
        pass
    assert reply["message"] == "Your account may no longer open terminals: the terminal is closed."
    assert await next_message(communicator) == {"type": "closed", "code": 4403}
    assert await sync_to_async(running_execs)(lab.d1, instance) == []


def test_ids_beyond_what_linux_takes_are_refused_before_asking_the_instance():
    from hosts.domain.terminal import resolve_identity

    for user, group in (("99999999999", ""), ("", "4294967295")):
        with pytest.raises(TerminalRefused, match=r"must be a number from 0 to 4294967294\.$"):
            resolve_identity(None, "c1", user, group)  # no client needed: refused first
