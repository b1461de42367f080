"""Live sockets end with their login, on a real daphne server: log out, or be deactivated by
an admin, and every open socket of that login closes (hosts/socket_auth.py)."""

from __future__ import annotations

import contextlib
import json
import re
import secrets

import pytest
from websockets.exceptions import ConnectionClosed

from tests.support import form_fields

PASSWORD = "socket-auth-" + secrets.token_hex(4)
pytestmark = pytest.mark.django_db(transaction=True)


def close_code(ws, timeout: float = 30.0) -> int:
    """Read until the server closes the socket; its close code.  Fails if it stays open."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            ws.recv(timeout=timeout)
    return ws.close_code


@pytest.fixture
def user(live_dashboard):
    name = "sock-" + secrets.token_hex(4)
    live_dashboard.create_users([name], "operator", PASSWORD)
    return name


def test_logging_out_closes_the_sessions_sockets(live_dashboard, user):
    session = live_dashboard.login(user, PASSWORD)
    other = live_dashboard.login(user, PASSWORD)  # the same user, another browser
    with (
        session.websocket("/ws/live/?topics=hosts,operations", open_timeout=30) as live,
        session.websocket("/ws/hosts/lab1/instances/c1/files/upload/", open_timeout=30) as upload,
        other.websocket("/ws/live/?topics=hosts", open_timeout=30) as stays,
    ):
        assert session.post("/accounts/logout/").status_code == 302
        assert close_code(live) == 4401
        assert close_code(upload) == 4401
        # The other login of the same user is not affected: it still answers a request.
        stays.send(json.dumps({"action": "launch-missiles"}))
        while "unknown request" not in stays.recv(timeout=30):
            pass


def test_deactivating_a_user_in_the_admin_closes_their_sockets(live_dashboard, user):
    session = live_dashboard.login(user, PASSWORD)
    with session.websocket("/ws/live/?topics=hosts", open_timeout=30) as live:
        admin = live_dashboard.login()
        listing = admin.get(f"/admin/auth/user/?q={user}").text
        change = re.search(r"/admin/auth/user/\d+/change/", listing).group(0)
        fields = form_fields(admin.get(change).text, "user_form")
        fields.pop("is_active")
        assert admin.post(change, {**fields, "_save": "Save"}).status_code == 302
        assert close_code(live) == 4403
