"""Which profiles operators may attach, per host: marked by an admin on the host page."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse

from hosts.models import AuditEntry, Host
from tests.support import PREFIX, logged_in, make_user, status_of

pytestmark = pytest.mark.django_db

PROFILE = PREFIX + "allowed"


@pytest.fixture
def extra_profile(lab):
    lab.d1.lxc("profile", "create", PROFILE, check=False)
    yield PROFILE
    for user in lab.d1.admin().get(f"/1.0/profiles/{PROFILE}")["used_by"]:  # then it can go
        lab.d1.lxc("delete", "--force", user.rsplit("/", 1)[-1].split("?")[0], check=False)
    lab.d1.lxc("profile", "delete", PROFILE, check=False)


def test_a_new_host_lets_operators_attach_only_the_default_profile(unix_host):
    assert Host.objects.get(pk=unix_host.pk).operator_profiles == ["default"]
    assert Host.objects.create(name="other", endpoint="/nonexistent.socket").operator_profiles == ["default"]


def test_an_admin_marks_a_profile_and_operators_may_then_attach_it(
    admin_client, unix_host, lab, extra_profile, instances
):
    page = admin_client.get(reverse("host-detail", args=["lab1"])).content.decode()
    assert f'name="profile" value="{PROFILE}">' in page  # offered, not checked
    assert 'name="profile" value="default" checked>' in page

    operator = logged_in(make_user("op", "operator"))
    name = instances.track(lab.d1, instances.name("pol"))
    form = {"host": "lab1", "name": name, "image": "busybox", "profiles": f"default,{PROFILE}"}
    assert operator.post(reverse("instance-create"), form).status_code == 403
    assert status_of(lab.d1, name) is None

    saved = admin_client.post(reverse("host-profiles", args=["lab1"]), {"profile": ["default", PROFILE]})
    assert saved.status_code == 302
    assert Host.objects.get(name="lab1").operator_profiles == ["default", PROFILE]
    entry = AuditEntry.objects.get(action="host.operator_profiles")
    assert entry.outcome == "ok" and entry.target == f"default, {PROFILE}" and entry.username == "admin"

    created = operator.post(reverse("instance-create"), form)
    assert created.status_code == 302, created.content.decode()[:2000]
    assert lab.d1.admin().instance(name)["profiles"] == ["default", PROFILE]

    # unmarking every profile: operators may not even rely on LXD's default any more
    admin_client.post(reverse("host-profiles", args=["lab1"]), {})
    assert Host.objects.get(name="lab1").operator_profiles == []
    other = instances.track(lab.d1, instances.name("pol"))
    refused = operator.post(reverse("instance-create"), {"host": "lab1", "name": other, "image": "busybox"})
    assert refused.status_code == 403 and "profile default is not allowed" in refused.content.decode()
    assert status_of(lab.d1, other) is None


def test_viewers_and_operators_see_the_allowed_profiles_but_cannot_mark_them(unix_host, lab):
    for username, role in (("viewer", None), ("op", "operator")):
        client = logged_in(make_user(username, role))
        page = client.get(reverse("host-detail", args=["lab1"])).content.decode()
        assert "<li><code>default</code></li>" in page and 'name="profile"' not in page
        refused = client.post(reverse("host-profiles", args=["lab1"]), {"profile": ["default", "x"]})
        assert refused.status_code == 403
    assert Host.objects.get(name="lab1").operator_profiles == ["default"]


def test_marking_needs_the_csrf_token(admin_user, unix_host):
    client = logged_in(admin_user, Client(enforce_csrf_checks=True))
    assert client.post(reverse("host-profiles", args=["lab1"]), {}).status_code == 403
    assert Host.objects.get(name="lab1").operator_profiles == ["default"]


@pytest.mark.parametrize(
    ("profile", "status", "message"),
    [
        ("..", 400, "not a valid profile name"),
        ("no-such-profile", 400, "lab1 has no profile no-such-profile"),
    ],
)
def test_bad_or_unknown_profiles_are_refused(admin_client, unix_host, profile, status, message):
    response = admin_client.post(reverse("host-profiles", args=["lab1"]), {"profile": ["default", profile]})
    assert response.status_code == status and message in response.content.decode()
    assert Host.objects.get(name="lab1").operator_profiles == ["default"]


@pytest.mark.django_db(transaction=True)
def test_hosts_registered_before_the_migration_allow_the_default_profile():
    executor = MigrationExecutor(connection)
    executor.migrate([("hosts", "0003_tasklog")])
    old = executor.loader.project_state([("hosts", "0003_tasklog")]).apps
    old.get_model("hosts", "Host").objects.create(name="before", endpoint="/nonexistent.socket")
    executor = MigrationExecutor(connection)
    executor.migrate([("hosts", "0004_operator_profiles")])
    migrated = executor.loader.project_state([("hosts", "0004_operator_profiles")]).apps
    assert migrated.get_model("hosts", "Host").objects.get(name="before").operator_profiles == ["default"]
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
