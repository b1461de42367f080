"""Faults on real daemons: hosts that hang, die, or restart under the dashboard."""

from __future__ import annotations

import re
import time

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from hosts.models import Host
from tests.servers import hanging_server

pytestmark = pytest.mark.django_db
CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


def get_routes():
    found = []

    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                found.append(prefix + str(p.pattern))

    walk(get_resolver().url_patterns)
    return [r for r in found if not r.startswith(("admin/", "accounts/"))]


def test_every_page_answers_in_time_when_a_host_hangs(admin_client, https_host):
    """A host that accepts TCP and never answers: every page of (and about) it answers
    within its timeout, without a 500, and the rest of the fleet still renders."""
    with hanging_server() as address:
        hung = Host.objects.create(
            name="hung",
            endpoint=f"https://{address}",
            server_certificate=https_host.server_certificate,
            server_fingerprint=https_host.server_fingerprint,
            client_certificate=https_host.client_certificate,
        )
        slowest = (0.0, "")
        checked = 0
        for route in get_routes():
            names = iter(["hung", "c1", "snap0"])
            path = "/" + CONVERTER.sub(lambda m: next(names, "x"), route)
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
        assert Host.objects.get(pk=hung.pk).status == Host.Status.OFFLINE
