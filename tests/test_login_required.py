"""Every URL and websocket route refuses anonymous users."""

import re

import pytest

from tests.routes import all_routes

pytestmark = pytest.mark.django_db

PUBLIC = {"login"}


def concrete(route: str) -> str:
    import re

    route = re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: "1" if m.group(1) in ("int",) else "x", route)
    return "/" + route.lstrip("^").rstrip("$").replace("\\Z", "").replace("\\", "")


def test_every_url_requires_login(client):
    checked = 0
    for route, name in all_routes():
        if name in PUBLIC or route.startswith("admin/") or "(?P" in route:
            continue
        url = concrete(route)
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code in (302, 403, 405), (
                f"{method.upper()} {url} -> {response.status_code}"
            )
            if response.status_code == 302:
                assert "/accounts/login/" in response["Location"], url
        checked += 1
    assert checked >= 5


def test_admin_requires_staff_login(client):
    response = client.get("/admin/hosts/host/")
    assert response.status_code == 302 and "login" in response["Location"]


async def test_every_websocket_route_refuses_anonymous():
    from channels.testing import WebsocketCommunicator

    from dashboard.asgi import application
    from hosts.routing import websocket_urlpatterns

    assert websocket_urlpatterns, "no websocket route to check"
    for pattern in websocket_urlpatterns:
        path = concrete(str(pattern.pattern))
        communicator = WebsocketCommunicator(
            application, path, headers=[(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
        )
        connected, _ = await communicator.connect()
        assert not connected, path
        await communicator.disconnect()


def test_a_viewer_can_change_nothing(viewer_client, https_host, lab):
    """Crawl every route as a viewer: every POST is refused (403) or not allowed (405)
    before anything reaches LXD, whatever the buttons show."""
    from hosts.models import AuditEntry, Host

    before = lab.d2.admin().server()[0]["config"]
    checked, offenders = 0, []
    for route, name in all_routes():
        if name in PUBLIC or name == "logout" or route.startswith("admin/"):
            continue
        values = {"host": https_host.name, "name": "c1", "snap": "snap0", "pk": "1"}
        url = "/" + re.sub(
            r"<(?:(\w+):)?(\w+)>",
            lambda m: (
                https_host.name
                if (m.group(2) == "name" and route.startswith("hosts/<slug:name>"))
                else values.get(m.group(2), "x")
            ),
            route,
        )
        response = viewer_client.post(
            url,
            {
                "config": "",
                "confirm": "on",
                "revoke": "on",
                "name": "v1",
                "image": "busybox",
                "host": https_host.name,
            },
        )
        if response.status_code not in (403, 405):
            offenders.append(f"POST {url} ({name}) -> {response.status_code}")
        checked += 1
    assert not offenders
    assert checked >= 20
    assert Host.objects.filter(pk=https_host.pk).exists()
    assert lab.d2.admin().server()[0]["config"] == before
    assert AuditEntry.objects.filter(outcome="refused", username="viewer").count() >= 10
