"""Faults on real daemons: hosts that hang, die, or restart under the dashboard."""

from __future__ import annotations

import gc
import warnings

import pytest

from hosts.lxd import HostUnreachable, LXDClient
from hosts.models import Host
from tests.routes import dashboard_routes, fill
from tests.servers import hanging_server
from tests.support import wait_until

pytestmark = pytest.mark.django_db


@pytest.mark.timeout(120)  # a page that waited for the hung host's answer would never answer
def test_every_page_answers_when_a_host_hangs(admin_client, https_host, settings):
    """A host that accepts TCP and never answers: every page of (and about) it answers, by
    its own timeout, without a 500, and the rest of the fleet still renders.  (How long the
    pages take with the configured timeout: bench/hanging_host.py.)"""
    # Shorter timeouts than the default (0.5 s to connect, TLS handshake included; 1 s to
    # read): the same paths, on 80-odd pages, in a third of the time.
    settings.LXD_PAGE_TIMEOUT = (0.15, 0.15)
    with hanging_server() as address:
        Host.objects.create(
            name="hung",
            endpoint=f"https://{address}",
            server_certificate=https_host.server_certificate,
            server_fingerprint=https_host.server_fingerprint,
            client_certificate=https_host.client_certificate,
        )
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
            response = admin_client.get(path, {"host": "hung"})
            assert response.status_code != 500, path
            checked += 1
        assert checked >= 5 and address.connections() >= 1
        # Nothing is left waiting on the hung host behind the answered pages.
        wait_until(address.all_dropped, 15, "every page hanging up on the hung host")
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
