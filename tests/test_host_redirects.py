"""A host that answers with a redirect is refused: the dashboard never follows one, over
HTTP (any method, streamed or not) or on the events websocket.  LXD's API has no redirects,
so only a compromised host sends them (a fake on loopback plays it)."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.urls import reverse
from websockets.asyncio.client import connect

from hosts.lxd.errors import HostRedirected
from hosts.lxd.events import events_path, open_events
from tests.servers import fake_lxd, fake_lxd_events, lxd_envelope, recording_http_server

pytestmark = pytest.mark.django_db


def redirecting_to(target: str, status: int = 302):
    """The host answers its instance as LXD would, and everything else with a redirect."""

    def script(method, path):
        if path.startswith("/1.0/instances/c1?") or path == "/1.0/instances/c1":
            body = lxd_envelope({"name": "c1", "type": "container", "status": "Running"})
            return 200, {"Content-Type": "application/json"}, body
        return status, {"Location": target + "/internal?token=abc"}, b""

    return script


def test_a_download_the_host_redirects_is_refused_and_the_target_never_asked(admin_client):
    with (
        recording_http_server(b"internal secret") as (internal, asked),
        fake_lxd(redirecting_to(internal)) as fake,
    ):
        fake.register("fake")
        url = reverse("instance-file-download", args=["fake", "c1"]) + "?path=/etc/passwd"
        response = admin_client.get(url)
        content = b"".join(response.streaming_content) if response.streaming else response.content
        assert b"internal secret" not in content
        assert asked == []
        assert response.status_code == 502
        assert "answered with a redirect (HTTP 302), which the dashboard never follows" in content.decode()


@pytest.mark.parametrize(
    ("call", "status"),
    [
        (lambda c: c.file_info("c1", "/etc/passwd"), 302),  # HEAD
        (lambda c: c.server(), 301),  # a JSON GET
        (lambda c: c.push_file("c1", "/root/f", b"file contents"), 307),  # 307 would re-send the body
        (lambda c: c.read_file("c1", "/etc/passwd", 1024), 308),  # streamed GET
    ],
    ids=["HEAD", "GET", "POST", "streamed GET"],
)
def test_no_request_follows_a_redirect(call, status):
    with (
        recording_http_server() as (internal, asked),
        fake_lxd(redirecting_to(internal, status)) as fake,
    ):
        client = fake.register().client()
        with pytest.raises(HostRedirected, match=f"HTTP {status}"):
            call(client)
        assert asked == []


async def test_the_events_stream_does_not_follow_a_redirect():
    """websockets >= 14 follows a handshake's redirect, even to another origin (here
    localhost instead of 127.0.0.1, same certificate, so the pin would not stop it)."""

    def redirect(connection, request):
        if request.path.startswith("/1.0/events"):
            response = connection.respond(HTTPStatus.FOUND, "moved\n")
            port = connection.transport.get_extra_info("sockname")[1]
            response.headers["Location"] = f"wss://localhost:{port}/elsewhere"
            return response
        return None

    assert "process_redirect" in vars(connect)  # the seam _ConnectNoRedirects overrides exists
    async with fake_lxd_events(redirect) as (client, seen):
        uri, kwargs = client.websocket_target(events_path())
        with pytest.raises(HostRedirected, match="HTTP 302"):
            await open_events(uri, kwargs, label="fake")
        assert seen == [events_path()]
