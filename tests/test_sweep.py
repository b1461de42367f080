"""Bad-input sweep: hypothesis throws arbitrary parameters at every URL of the URLconf, as an
admin, against a real (sacrificial) lab daemon.  No request may answer 500 or raise.

All hosts in this test point at lab daemon d3 only: the sweep may unset its configuration,
which is restored afterwards.  Any address the sweep can make the dashboard contact is on
loopback or a unix socket path (never another address)."""

from __future__ import annotations

import contextlib
from collections import Counter
from urllib.parse import quote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hosts.domain.registration import register_host
from tests.routes import all_routes, fill
from tests.support import PREFIX

pytestmark = [pytest.mark.django_db, pytest.mark.destructive]  # d3's configuration

SWEEP_INSTANCE = PREFIX + "sweep"
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


class World:
    """d3 and the dashboard's database as the sweep's examples find them.  Each example starts
    from the same world: reset() puts back on d3 what the previous one changed (server config,
    trust store, profiles, images, instances and their snapshots, status and files), and the
    example's database changes are rolled back (example())."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.admin = daemon.admin()
        self.make_instance()
        self.config = self.server_config()
        self.certificates = {c["fingerprint"]: c for c in self.admin.certificates()}
        self.profiles = self.by_name(self.admin.get("/1.0/profiles", params={"recursion": 1}))
        self.images = {i["fingerprint"] for i in self.admin.images()}
        self.instance = self.comparable(self.admin.instance(SWEEP_INSTANCE))
        self.files_touched = False
        self.repairs: list[str] = []

    @staticmethod
    def by_name(items) -> dict[str, dict]:
        return {i["name"]: {k: i.get(k) for k in ("config", "devices", "description")} for i in items}

    @staticmethod
    def comparable(instance: dict) -> dict:
        config = {k: v for k, v in instance["config"].items() if not k.startswith("volatile.")}
        return {"config": config, "devices": instance["devices"], "profiles": instance["profiles"]}

    def server_config(self) -> dict:
        return self.admin.server()[0]["config"]

    def make_instance(self) -> None:
        self.daemon.lxc("delete", "--force", SWEEP_INSTANCE, check=False)
        self.daemon.lxc("launch", "busybox", SWEEP_INSTANCE)

    def reset(self) -> None:
        admin, repairs = self.admin, self.repairs
        current = self.server_config()
        if current != self.config:
            repairs.append("config")
            changes = {k: "" for k in current if k not in self.config}
            # (LXD shows a trust password as "true": one that was set is left alone)
            changes.update(
                {k: v for k, v in self.config.items() if current.get(k) != v and k != "core.trust_password"}
            )
            admin.patch_server_config(changes, "")
        trusted = {c["fingerprint"] for c in admin.certificates()}
        for fingerprint in trusted - self.certificates.keys():
            repairs.append("certificate added")
            admin.delete_certificate(fingerprint)
        for fingerprint in self.certificates.keys() - trusted:
            repairs.append("certificate removed")
            entry = self.certificates[fingerprint]
            admin.add_trusted_certificate(
                entry["certificate"],
                name=entry["name"],
                restricted=entry.get("restricted", False),
                projects=entry.get("projects"),
            )
        instances = {i["name"]: i for i in admin.instances(1)}
        for name in instances.keys() - {SWEEP_INSTANCE}:
            repairs.append("instance created")
            self.daemon.lxc("delete", "--force", name, check=False)
        ours = instances.get(SWEEP_INSTANCE)
        if ours is None or self.files_touched or self.comparable(ours) != self.instance:
            repairs.append(
                "instance gone"
                if ours is None
                else "files touched"
                if self.files_touched
                else "instance changed"
            )
            self.make_instance()
        else:
            for snapshot in admin.snapshots(SWEEP_INSTANCE):
                repairs.append("snapshot")
                admin.wait(admin.delete_snapshot(SWEEP_INSTANCE, snapshot["name"]))
            if ours["status"] != "Running":
                repairs.append("status")
                verb = "start" if ours["status"] == "Stopped" else "unfreeze"
                self.daemon.lxc(verb, SWEEP_INSTANCE, check=False)
        profiles = self.by_name(admin.get("/1.0/profiles", params={"recursion": 1}))
        for name in profiles.keys() - self.profiles.keys():
            repairs.append("profile created")
            self.daemon.lxc("profile", "delete", name, check=False)
        for name, profile in self.profiles.items():
            if profiles.get(name) != profile:
                repairs.append("profile changed")
                admin.call("PUT", f"/1.0/profiles/{name}", json_body=profile)
        for fingerprint in {i["fingerprint"] for i in admin.images()} - self.images:
            repairs.append("image")
            self.daemon.lxc("image", "delete", fingerprint, check=False)
        self.files_touched = False

    @contextlib.contextmanager
    def example(self):
        """One example: from the same world, its database changes rolled back after it."""
        from hosts.models import AuditEntry

        self.reset()
        with transaction.atomic():
            yield
            # Writes inside the instance are not visible in LXD's API: the audit trail says.
            self.files_touched = (
                AuditEntry.objects.filter(action__startswith="file.")
                .exclude(outcome=AuditEntry.Outcome.REFUSED)
                .exists()
            )
            transaction.set_rollback(True)


@pytest.fixture
def world(db, lab):
    d3 = lab.d3
    register_host("sweep1", d3.socket)
    register_host("sweep3", d3.url, token=d3.trust_token("sweep"))
    world = World(d3)
    yield world
    print(f"\nsweep repairs between examples: {dict(Counter(world.repairs))}")
    world.reset()
    d3.lxc("delete", "--force", SWEEP_INSTANCE, check=False)


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
def test_no_input_gives_a_server_error(admin_client, world, req):
    name, path, method, params, htmx = req
    headers = {"HX-Request": "true"} if htmx else {}
    with world.example():
        response = getattr(admin_client, method)(path, params, headers=headers)
    event(f"{name} {method.upper()} -> {response.status_code}")
    assert response.status_code < 500 or response.status_code in (502, 504), (
        f"{method.upper()} {path} ({name}) {params!r} -> {response.status_code}"
    )
    if response.status_code >= 500:
        # 502/504 are allowed only as the honest answer about an LXD host, with a message
        assert b"Traceback" not in response.content


def test_each_example_finds_the_same_world(world, lab):
    """What an example may leave behind on d3 is put back before the next one."""
    from hosts.models import Host

    d3, admin = lab.d3, lab.d3.admin()
    first = next(iter(world.certificates))
    with world.example():
        Host.objects.create(name="extra", endpoint="/nonexistent.socket")  # a database change
        d3.lxc("config", "set", "user.sweep", "changed")
        d3.lxc("snapshot", SWEEP_INSTANCE, "snap0")
        d3.lxc("stop", "--force", SWEEP_INSTANCE)
        d3.lxc("init", "busybox", PREFIX + "sweep-extra")
        d3.lxc("profile", "create", PREFIX + "sweep-profile")
        admin.delete_certificate(first)
    world.reset()
    assert world.server_config() == world.config
    assert {c["fingerprint"] for c in admin.certificates()} == set(world.certificates)
    assert [i["name"] for i in admin.instances(1)] == [SWEEP_INSTANCE]
    assert admin.instance(SWEEP_INSTANCE)["status"] == "Running"
    assert admin.snapshots(SWEEP_INSTANCE) == []
    assert PREFIX + "sweep-profile" not in admin.profiles()
    assert sorted(Host.objects.values_list("name", flat=True)) == ["sweep1", "sweep3"]
