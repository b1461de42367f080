"""Profiles per host on the real lab daemons (lab1 = d1 over its socket, lab2 = d2 over HTTPS):
list with their instances, create, edit, rename, delete, copy to another host after showing the
differences; the write policy for operators on every path."""

from __future__ import annotations

import pytest
from django.urls import reverse

from hosts.models import AuditEntry, Host
from tests.config_helpers import form_value, made_fixture, raw, text  # noqa: F401 (fixture)
from tests.support import logged_in, make_user

pytestmark = pytest.mark.django_db


def profile_of(daemon, name: str) -> dict:
    return daemon.admin().profile_and_etag(name)[0]


def edit_form(page: str) -> dict:
    return {name: form_value(page, name) for name in ("description", "config", "devices", "etag")}


@pytest.fixture
def operator(db):
    return logged_in(make_user("prof-operator", "operator"))


def test_the_list_shows_each_profile_with_the_instances_using_it(
    admin_client, unix_host, lab, instances, made
):
    profile = made.profile(lab.d1, made.name("prof"), "default", "limits.processes=50")
    name = instances.make(lab.d1, running=False)
    lab.d1.lxc("profile", "add", name, profile)
    page = raw(admin_client.get(reverse("profile-list", args=["lab1"])))
    row = page.split(f'data-profile="{profile}"', 1)[1].split("</tr>", 1)[0]
    assert "1 key" in row and f'href="/hosts/lab1/instances/{name}/">{name}</a>' in row
    default_row = page.split('data-profile="default"', 1)[1].split("</tr>", 1)[0]
    assert "eth0 <small>(nic)</small>" in default_row and name in default_row


def test_an_admin_creates_a_profile_and_a_clash_is_refused(admin_client, unix_host, lab, made):
    name = made.track_profile(lab.d1, made.name("prof"))
    form = {
        "name": name,
        "description": "web",
        "config": "limits.memory = 64MiB",
        "devices": "data disk path=/data source=/tmp",
    }
    created = admin_client.post(reverse("profile-list", args=["lab1"]), form)
    assert created.status_code == 302, text(created)[:2000]
    assert profile_of(lab.d1, name)["config"] == {"limits.memory": "64MiB"}
    assert profile_of(lab.d1, name)["devices"]["data"]["path"] == "/data"
    clash = admin_client.post(reverse("profile-list", args=["lab1"]), {**form, "devices": ""})
    assert clash.status_code == 409 and f"lab1 already has a profile named {name}" in text(clash)
    bad = admin_client.post(reverse("profile-list", args=["lab1"]), {**form, "name": "a b"})
    assert bad.status_code == 400 and "is not a valid profile name" in text(bad)
    unknown_key = admin_client.post(
        reverse("profile-list", args=["lab1"]), {**form, "name": name + "x", "config": "no.such = 1"}
    )
    assert unknown_key.status_code == 400 and "Unknown configuration key: no.such" in text(unknown_key)
    assert name + "x" not in lab.d1.admin().profiles()
    entry = AuditEntry.objects.filter(action="profile.create").order_by("id").first()
    assert entry.outcome == "ok" and entry.target == name


def test_operators_edit_only_allowed_profiles_within_the_policy(admin_client, operator, unix_host, lab, made):
    profile = made.profile(lab.d1, made.name("prof"), "default", "user.a=1")
    url = reverse("profile-detail", args=["lab1", profile])
    # not allowed for operators on lab1 yet: refused, whatever the key
    page = raw(operator.get(url))
    refused = operator.post(url, {**edit_form(page), "config": "user.a = 2"})
    assert refused.status_code == 403 and f"profile {profile} is not allowed for operators" in text(refused)
    assert (
        operator.post(reverse("profile-list", args=["lab1"]), {"name": profile + "-new"}).status_code == 403
    )
    admin_client.post(reverse("host-profiles", args=["lab1"]), {"profile": ["default", profile]})

    page = raw(operator.get(url))
    saved = operator.post(url, {**edit_form(page), "config": "user.a = 2\nlimits.cpu = 1"})
    assert saved.status_code == 302, text(saved)[:2000]
    assert profile_of(lab.d1, profile)["config"] == {"user.a": "2", "limits.cpu": "1"}
    page = raw(operator.get(url))
    for change, message in (
        ({"config": "security.privileged = true"}, "security.privileged needs the admin role"),
        ({"devices": "gpu0 gpu"}, "device gpu0: type gpu needs the admin role"),
        ({"devices": "host disk source=/etc path=/mnt"}, "host paths need the admin role"),
    ):
        response = operator.post(url, {**edit_form(page), **change})
        assert response.status_code == 403 and message in text(response), change
    assert profile_of(lab.d1, profile)["config"] == {"user.a": "2", "limits.cpu": "1"}
    assert AuditEntry.objects.filter(action="profile.edit", outcome="refused").count() == 4
    # renaming and deleting are the admins'
    assert (
        operator.post(reverse("profile-rename", args=["lab1", profile]), {"new_name": "x"}).status_code == 403
    )
    assert operator.post(reverse("profile-delete", args=["lab1", profile])).status_code == 403


def test_an_edit_made_meanwhile_is_refused_with_the_fresh_values(admin_client, unix_host, lab, made):
    profile = made.profile(lab.d1, made.name("prof"), "default", "user.who=first")
    url = reverse("profile-detail", args=["lab1", profile])
    page = raw(admin_client.get(url))
    lab.d1.lxc("profile", "set", profile, "user.who", "someone-else")
    late = admin_client.post(url, {**edit_form(page), "config": "user.who = me"})
    assert late.status_code == 409
    fresh = text(late)
    assert f"Profile {profile} changed on lab1 since you opened this page" in fresh
    assert "user.who = someone-else" in form_value(fresh, "config") and "user.who = me" in fresh
    assert profile_of(lab.d1, profile)["config"]["user.who"] == "someone-else"


def test_rename_and_delete_with_lxds_reasons(admin_client, unix_host, lab, instances, made):
    profile = made.profile(lab.d1, made.name("prof"))
    renamed = made.track_profile(lab.d1, profile + "-r")
    assert (
        admin_client.post(
            reverse("profile-rename", args=["lab1", profile]), {"new_name": renamed}
        ).status_code
        == 302
    )
    assert renamed in lab.d1.admin().profiles() and profile not in lab.d1.admin().profiles()
    clash = admin_client.post(reverse("profile-rename", args=["lab1", renamed]), {"new_name": "default"})
    assert clash.status_code == 409 and "already has a profile named default" in text(clash)
    no_default = admin_client.post(reverse("profile-rename", args=["lab1", "default"]), {"new_name": "other"})
    assert no_default.status_code == 403 and 'The "default" profile cannot be renamed' in text(no_default)

    name = instances.make(lab.d1, running=False)
    lab.d1.lxc("profile", "add", name, renamed)
    in_use = admin_client.post(reverse("profile-delete", args=["lab1", renamed]))
    assert in_use.status_code == 409
    assert f"LXD refused: Profile is currently in use. {renamed} is used by {name}." in text(in_use)
    assert renamed in lab.d1.admin().profiles()
    lab.d1.lxc("profile", "remove", name, renamed)
    assert admin_client.post(reverse("profile-delete", args=["lab1", renamed])).status_code == 302
    assert renamed not in lab.d1.admin().profiles()
    entries = AuditEntry.objects.filter(action="profile.delete").values_list("outcome", flat=True)
    assert sorted(entries) == ["failed", "ok"]


def test_copy_shows_the_differences_first_then_makes_them_the_same(
    admin_client, unix_host, https_host, lab, made
):
    profile = made.profile(lab.d1, made.name("prof"), "default", "limits.memory=128MiB", "user.tier=web")
    made.track_profile(lab.d2, profile)
    url = reverse("profile-copy", args=["lab1", profile])
    page = raw(admin_client.get(url, {"to": "lab2"}))
    target = page.split('id="copy-lab2"', 1)[1].split("</section>", 1)[0]
    assert 'data-state="missing"' in target and "it will be created" in target
    assert (
        "<td><code>limits.memory</code></td><td><code>(unset)</code></td><td><code>128MiB</code></td>"
        in target
    )
    assert profile not in lab.d2.admin().profiles()  # showing changes nothing

    done = admin_client.post(url, {"to": "lab2", "etag-lab2": ""})
    assert done.status_code == 200 and "lab2: created" in text(done)
    assert profile_of(lab.d2, profile)["config"] == {"limits.memory": "128MiB", "user.tier": "web"}

    lab.d1.lxc("profile", "set", profile, "limits.memory", "256MiB")
    lab.d2.lxc("profile", "set", profile, "user.only-here", "x")
    page = raw(admin_client.get(url, {"to": "lab2"}))
    target = page.split('id="copy-lab2"', 1)[1].split("</section>", 1)[0]
    assert "2 differences" in target and "<td><code>128MiB</code></td><td><code>256MiB</code></td>" in target
    assert (
        "<td><code>user.only-here</code></td><td><code>x</code></td><td><code>(unset)</code></td>" in target
    )
    etag = form_value(page, "etag-lab2")
    lab.d2.lxc("profile", "set", profile, "user.meanwhile", "y")  # after the differences were shown
    stale = admin_client.post(url, {"to": "lab2", "etag-lab2": etag})
    assert stale.status_code == 409 and "lab2: its profile changed since the differences were shown" in text(
        stale
    )
    page = raw(admin_client.get(url, {"to": "lab2"}))
    etag = form_value(page, "etag-lab2")
    assert admin_client.post(url, {"to": "lab2", "etag-lab2": etag}).status_code == 200
    assert profile_of(lab.d2, profile)["config"] == {"limits.memory": "256MiB", "user.tier": "web"}
    assert AuditEntry.objects.filter(action="profile.copy", host_name="lab2", outcome="ok").count() == 2


def test_operators_copy_only_to_hosts_that_allow_the_profile(operator, unix_host, https_host, lab, made):
    profile = made.profile(lab.d1, made.name("prof"), "default", "user.x=1")
    made.track_profile(lab.d2, profile)
    url = reverse("profile-copy", args=["lab1", profile])
    refused = operator.post(url, {"to": "lab2", "etag-lab2": ""})
    assert refused.status_code == 409 and f"profile {profile} is not allowed for operators on lab2" in text(
        refused
    )
    assert profile not in lab.d2.admin().profiles()
    assert AuditEntry.objects.filter(action="profile.copy", outcome="refused").exists()
    Host.objects.filter(name="lab2").update(operator_profiles=["default", profile])
    lab.d2.lxc("profile", "create", profile)
    page = raw(operator.get(url, {"to": "lab2"}))
    etag = form_value(page, "etag-lab2")
    assert operator.post(url, {"to": "lab2", "etag-lab2": etag}).status_code == 200
    assert profile_of(lab.d2, profile)["config"] == {"user.x": "1"}


def test_secret_values_of_a_profile_stay_hidden_from_operators(
    admin_client, operator, unix_host, https_host, lab, made
):
    profile = made.profile(
        lab.d1, made.name("prof"), "default", "environment.API_TOKEN=t0ken-value", "user.a=1"
    )
    made.track_profile(lab.d2, profile)
    admin_client.post(reverse("host-profiles", args=["lab1"]), {"profile": ["default", profile]})
    url = reverse("profile-detail", args=["lab1", profile])
    page = raw(operator.get(url))
    assert "t0ken-value" not in page and "environment.API_TOKEN" in page.split('id="editor-kept"', 1)[1]
    assert operator.post(url, {**edit_form(page), "config": "user.a = 2"}).status_code == 302
    assert profile_of(lab.d1, profile)["config"] == {"environment.API_TOKEN": "t0ken-value", "user.a": "2"}
    diff = text(operator.get(reverse("profile-copy", args=["lab1", profile]), {"to": "lab2"}))
    assert "t0ken-value" not in diff and "environment.API_TOKEN" in diff
    assert "t0ken-value" in text(admin_client.get(url))
