"""Bad-input sweep: hypothesis throws arbitrary parameters at every URL of the URLconf, as an
admin, against a real (sacrificial) lab daemon.  No request may answer 500 or raise.

All hosts in this test point at lab daemon d3 only: the sweep may unset its configuration,
which is restored afterwards.  Any address the sweep can make the dashboard contact is on
loopback or a unix socket path (never another address)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hosts.domain.registration import register_host
from hosts.models import Host
from tests.routes import all_routes, fill

pytestmark = pytest.mark.django_db

SWEEP_INSTANCE = "sweep-c1"
PARAM_NAMES = [
    "path",
    "q",
    "host",
    "hosts",
    "status",
    "sort",
    "order",
    "page",
    "user",
    "action",
    "outcome",
    "instance",
    "instances",
    "selected",
    "type",
    "name",
    "fingerprint",
    "url",
    "auth",
    "secret",
    "project",
    "config",
    "etag",
    "revoke",
    "confirm",
    "force",
    "timeout",
    "image",
    "source_host",
    "profiles",
    "start",
    "limit",
    "overwrite",
    "mode",
    "uid",
    "gid",
    "snapshot",
    "new_name",
    "stateful",
    "op",
    "operation",
    "offset",
]
NASTY = [
    "",
    "0",
    "-1",
    "99999999999999999999",
    "../..",
    "/../../etc/passwd",
    "a\x00b",
    "x" * 5000,
    "/etc/hosts",
    "true",
    "on",
    "é漢字 ünï",
    "%00",
    "<script>alert(1)</script>",
    "'; DROP TABLE x;--",
    "/",
    "//",
    ".",
    SWEEP_INSTANCE,
    "sweep1",
    "sweep3",
    "default",
    "busybox",
    "running",
    "stopped",
    "start",
    "delete",
]
values = st.one_of(st.sampled_from(NASTY), st.text(max_size=60), st.integers(-10, 10**6).map(str))
# Addresses the dashboard may be asked to contact: loopback or a unix path, nothing else.
safe_urls = st.one_of(
    st.sampled_from(
        [
            "127.0.0.1:1",
            "https://127.0.0.1:9",
            "https://[::1]:2",
            "http://127.0.0.1:80",
            "unix://rel",
            "/nonexistent.socket",
            "/etc/passwd",
            "ftp://127.0.0.1",
            "https://127.0.0.1:99999",
        ]
    ),
    st.text(max_size=40).map(lambda t: "/nonexistent/" + t),
)
segment_values = st.one_of(
    st.sampled_from(["sweep1", "sweep3", SWEEP_INSTANCE, "snap0", "x", "default"]),
    st.text(min_size=1, max_size=40),
)


ROUTES = [(r, n) for r, n in all_routes() if not r.startswith("admin/") and n != "logout"]


@pytest.fixture
def sweep_hosts(lab):
    d3 = lab.d3
    admin = d3.admin()
    original_config = admin.server()[0]["config"]
    d3.lxc("init", "busybox", SWEEP_INSTANCE, check=False)
    d3.lxc("start", SWEEP_INSTANCE, check=False)
    register_host("sweep3", d3.url, token=d3.trust_token("sweep"))
    # the same daemon over its socket too (registration refuses a server twice; a unix host
    # needs nothing registration would check)
    Host.objects.create(name="sweep1", endpoint=d3.socket)
    yield
    d3.lxc("delete", "--force", SWEEP_INSTANCE, check=False)
    for name in [n for n in (admin.get("/1.0/instances") or [])]:
        d3.lxc("delete", "--force", name.rsplit("/", 1)[-1], check=False)
    current = admin.server()[0]["config"]
    restore = {k: v for k, v in original_config.items() if k != "core.trust_password"}
    restore.update({k: "" for k in current if k not in original_config})
    admin.patch_server_config(restore, "")


@st.composite
def requests_(draw):
    route, name = draw(st.sampled_from(ROUTES))
    path = fill(route, lambda _param: quote(draw(segment_values), safe=""))
    method = draw(st.sampled_from(["get", "post"]))
    params = draw(st.dictionaries(st.sampled_from(PARAM_NAMES), values, max_size=6))
    if "url" in params:
        params["url"] = draw(safe_urls)
    if method == "post" and draw(st.booleans()):
        # A file name SimpleUploadedFile accepts (a browser never sends a path as the name).
        file_name = draw(st.text(max_size=20).map(lambda t: t.replace("/", "_").replace("\\", "_")))
        if file_name in ("", ".", ".."):
            file_name = "f"
        params["file"] = SimpleUploadedFile(file_name, draw(st.binary(max_size=2048)))
    htmx = draw(st.booleans())
    return name, path, method, params, htmx


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(req=requests_())
def test_no_input_gives_a_server_error(admin_client, sweep_hosts, req):
    name, path, method, params, htmx = req
    headers = {"HX-Request": "true"} if htmx else {}
    response = getattr(admin_client, method)(path, params, headers=headers)
    event(f"{name} {method.upper()} -> {response.status_code}")
    assert response.status_code < 500 or response.status_code in (502, 504), (
        f"{method.upper()} {path} ({name}) {params!r} -> {response.status_code}"
    )
    if response.status_code >= 500:
        # 502/504 are allowed only as the honest answer about an LXD host, with a message
        assert b"Traceback" not in response.content
