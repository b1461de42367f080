"""Request bodies over the limit are refused by daphne itself, before they are read (413)."""

import os
import subprocess
import sys

from django.conf import settings

from hosts.domain.uploads import max_http_body_bytes, max_http_upload_bytes
from tests.lab import ROOT
from tests.raw_http import post_body
from tests.support import free_port, port_open, wait_until

MiB = 1024 * 1024
UPLOAD = "/hosts/lab1/instances/c1/files/upload/?path=/root/f"


def port(live_dashboard) -> int:
    return live_dashboard.port


def test_a_large_content_length_is_refused_before_the_body_is_sent(live_dashboard):
    reply = post_body(port(live_dashboard), "/accounts/login/", 256 * MiB, send_body=False, timeout=10)
    assert reply.status == 413, reply.text
    assert "Request body too large" in reply.text
    assert f"({settings.DASHBOARD_MAX_REQUEST_BODY_BYTES} bytes)" in reply.text
    assert "connection: close" in reply.text.lower()


def test_a_chunked_body_over_the_limit_is_refused_as_it_arrives(live_dashboard):
    size = 16 * settings.DASHBOARD_MAX_REQUEST_BODY_BYTES
    reply = post_body(port(live_dashboard), "/accounts/login/", size, chunked=True, timeout=10)
    assert reply.status == 413, reply.text
    # answered while the body was still going out (the socket buffers hold a few MiB of it)
    assert reply.sent < size


def test_a_body_under_the_limit_reaches_django(live_dashboard):
    reply = post_body(port(live_dashboard), "/accounts/login/", 64 * 1024, timeout=10)
    assert reply.status == 403 and "CSRF" in reply.text, reply.text  # Django read it


def test_the_upload_route_has_the_upload_limit(live_dashboard):
    # Larger than the general limit: read whole, then Django refuses it (CSRF).
    reply = post_body(port(live_dashboard), UPLOAD, 8 * MiB, method="PUT", timeout=30)
    assert reply.status == 403 and "CSRF" in reply.text, reply.text
    over = post_body(port(live_dashboard), UPLOAD, max_http_body_bytes() + 1, send_body=False, timeout=10)
    assert over.status == 413, over.text
    assert f"upload limit of 64.0\xa0MB ({max_http_upload_bytes()} bytes)" in over.text  # the view's words


def test_runserver_refuses_too_large_bodies_too(tmp_path):
    """bin/run serves with `manage.py runserver` (daphne's): the same guard applies there."""
    free = free_port()
    env = {**os.environ, "DASHBOARD_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "dashboard.settings"}
    command = [sys.executable, "manage.py", "runserver", "--noreload", "--insecure", f"127.0.0.1:{free}"]
    with open(tmp_path / "runserver.log", "wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: server.poll() is not None or port_open(free), 30, "runserver listening")
        assert server.poll() is None, (tmp_path / "runserver.log").read_text()
        reply = post_body(free, "/accounts/login/", 256 * MiB, send_body=False, timeout=10)
        assert reply.status == 413, reply.text
    finally:
        server.terminate()
        server.wait(10)
