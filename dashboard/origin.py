"""Websockets open only from the dashboard's own pages: the Origin must be our own origin.

Browsers send the session cookie with a websocket handshake from any page, and do not apply
CORS to websockets, so the Origin header is the only thing that tells our pages from someone
else's.  Channels' AllowedHostsOriginValidator compared host names only: a page on
http://127.0.0.1:31337 (another local service, or a port a malicious page listens on) could open
/ws/live/ with the victim's cookie.  Here scheme, host and port must all match, with exactly the
rule Django's CSRF protection applies to an unsafe HTTP request's Origin: our own origin (the
handshake's Host, validated against ALLOWED_HOSTS, with https when the socket is wss, or when
SECURE_PROXY_SSL_HEADER says so behind a TLS proxy: DASHBOARD_BEHIND_PROXY), or one listed in
CSRF_TRUSTED_ORIGINS.  A handshake without an Origin is refused (browsers always send one).
A refused handshake gets HTTP 403.
"""

from __future__ import annotations

from channels.security.websocket import WebsocketDenier
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware


class _Handshake(HttpRequest):
    """The websocket handshake as the HttpRequest Django's origin check reads."""

    def __init__(self, scope):
        super().__init__()
        for raw_name, raw_value in scope.get("headers", []):
            name, value = raw_name.decode("latin1"), raw_value.decode("latin1")
            if "_" in name:
                continue  # as daphne does for HTTP: X_Forwarded_Proto must not pass for X-Forwarded-Proto
            key = "HTTP_" + name.upper().replace("-", "_")
            self.META[key] = f"{self.META[key]},{value}" if key in self.META else value
        server = scope.get("server") or ("", "")
        self.META["SERVER_NAME"], self.META["SERVER_PORT"] = str(server[0]), str(server[1] or "")
        self._wss = scope.get("scheme") == "wss"

    def _get_scheme(self) -> str:
        return "https" if self._wss else "http"


def origin_allowed(scope) -> bool:
    request = _Handshake(scope)
    if "HTTP_ORIGIN" not in request.META:
        return False
    # Django's own rule (a private method, stable since 4.0): one rule for forms and sockets.
    return CsrfViewMiddleware(lambda request: None)._origin_verified(request)


class SameOriginWebsockets:
    """ASGI middleware for the websocket router: a foreign or missing Origin gets 403."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.app(scope, receive, send)
