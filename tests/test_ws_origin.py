"""A websocket opens only from the dashboard's own origin: scheme, host and port."""

import pytest
from websockets.exceptions import InvalidStatus

from dashboard.origin import origin_allowed


def handshake(live_dashboard, origin: str | None) -> int:
    """The HTTP status of a logged-in handshake on /ws/live/ sent with this Origin."""
    session = live_dashboard.login()
    try:
        with session.websocket("/ws/live/?topics=operations", origin=origin, open_timeout=10):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def test_the_dashboards_own_origin_opens_a_websocket(live_dashboard):
    assert handshake(live_dashboard, live_dashboard.url) == 101


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:31337",  # another port on the same host
        "https://127.0.0.1:{port}",  # another scheme
        "http://localhost:{port}",  # another host name (in ALLOWED_HOSTS, still not our origin)
        "http://evil.example:{port}",
        None,  # no Origin at all
    ],
)
def test_a_foreign_origin_is_refused_in_the_handshake(live_dashboard, origin):
    origin = origin.format(port=live_dashboard.port) if origin else None
    assert handshake(live_dashboard, origin) == 403


def scope(origin: str, host: str = "dash.example.test", scheme: str = "ws", **headers: str) -> dict:
    pairs = [(b"host", host.encode()), (b"origin", origin.encode())]
    pairs += [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return {"type": "websocket", "scheme": scheme, "headers": pairs, "server": ("10.0.0.1", 8000)}


def test_origin_rules(settings):
    settings.ALLOWED_HOSTS = ["dash.example.test"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://ops.example.test", "https://*.trusted.test"]
    assert origin_allowed(scope("http://dash.example.test"))
    assert not origin_allowed(scope("https://dash.example.test"))
    assert origin_allowed(scope("https://dash.example.test", scheme="wss"))
    # a Host outside ALLOWED_HOSTS (DNS rebinding) is not our origin, even when Origin matches it
    assert not origin_allowed(scope("http://rebound.test", host="rebound.test"))
    assert origin_allowed(scope("https://ops.example.test"))
    assert origin_allowed(scope("https://a.trusted.test"))
    assert not origin_allowed(scope("http://a.trusted.test"))
    assert not origin_allowed(scope("null"))


def test_behind_a_tls_proxy_the_forwarded_scheme_counts(settings):
    settings.ALLOWED_HOSTS = ["dash.example.test"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert origin_allowed(scope("https://dash.example.test", x_forwarded_proto="https"))
    assert not origin_allowed(scope("http://dash.example.test", x_forwarded_proto="https"))
    # without the proxy setting the header is ignored
    settings.SECURE_PROXY_SSL_HEADER = None
    assert not origin_allowed(scope("https://dash.example.test", x_forwarded_proto="https"))
