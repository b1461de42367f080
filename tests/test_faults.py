"""Faults on real daemons: hosts that hang, die, or restart under the dashboard."""

from __future__ import annotations

import gc
import time
import warnings

import pytest

from hosts.lxd import HostUnreachable, LXDClient
from hosts.models import Host
from tests.routes import dashboard_routes, fill
from tests.servers import hanging_server

pytestmark = pytest.mark.django_db


def test_every_page_answers_in_time_when_a_host_hangs(admin_client, https_host):
    """A host that accepts TCP and never answers: every page of (and about) it answers
    within its timeout, without a 500, and the rest of the fleet still renders."""
    with hanging_server() as address:
        Host.objects.create(
            name="hung",
            endpoint=f"https://{address}",
            server_certificate=https_host.server_certificate,
            server_fingerprint=https_host.server_fingerprint,
            client_certificate=https_host.client_certificate,
        )
        slowest = (0.0, "")
        checked = 0
        values = {"host": "hung", "name": "c1", "snap": "snap0"}
        for route, url_name in dashboard_routes():
            path = fill(
                route,
                lambda param: (
                    "hung"
                    if url_name.startswith(("host-", "fleet-")) and param == "name"
                    else values.get(param, "x")
                ),
            )
            started = time.monotonic()
            response = admin_client.get(path, {"host": "hung"})
            elapsed = time.monotonic() - started
            slowest = max(slowest, (elapsed, path))
            assert response.status_code != 500, path
            checked += 1
        assert checked >= 5
        assert slowest[0] < 2.0, f"{slowest[1]} took {slowest[0]:.2f} s"
        home = admin_client.get("/").content.decode()
        assert "lab2" in home and "hung" in home
        assert 'id="host-status-hung" class="badge status-offline"' in home


def test_a_socket_path_that_is_gone_leaves_no_socket_open():
    """requests-unixsocket left the socket of a failed connect to the garbage collector."""
    client = LXDClient("/nonexistent/unix.socket")
    with pytest.raises(HostUnreachable):
        client.server()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
