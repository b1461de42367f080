"""The instance configuration editor on the real lab daemons (lab1 = d1 over its unix socket):
config keys, devices and profiles, the expanded preview, the write policy per role, LXD's
refusals next to their field, and edits racing each other."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from hosts.models import AuditEntry, Host
from tests.config_helpers import editor_form, made_fixture, raw, text  # noqa: F401 (fixture)
from tests.support import logged_in, make_user

pytestmark = pytest.mark.django_db


def url(name: str, project: str = "default") -> str:
    base = reverse("instance-config", args=["lab1", name])
    return base if project == "default" else f"{base}?project={project}"


def show(lab, name: str, project: str = "default") -> dict:
    """The instance as the daemon has it (what `lxc config show` prints), asked with `lxc`."""
    return json.loads(lab.d1.lxc("query", f"/1.0/instances/{name}?project={project}").stdout)


def save(client, name: str, page: str | None = None, project: str = "default", **changes):
    form = editor_form(page or raw(client.get(url(name, project))))
    form.update(changes)
    return client.post(url(name, project), form)


@pytest.fixture
def operator(db):
    return logged_in(make_user("cfg-operator", "operator"))


def test_the_preview_marks_what_each_profile_gives(admin_client, unix_host, lab, instances, made):
    profile = made.profile(lab.d1, made.name("cfgp"), "default", "limits.processes=200", "user.from=profile")
    name = instances.make(lab.d1, running=False)
    lab.d1.lxc("profile", "add", name, profile)
    lab.d1.lxc("config", "set", name, "user.from", "instance")
    page = raw(admin_client.get(url(name)))
    assert "user.from = instance" in page and "limits.processes" not in page.split('id="config-preview"')[0]
    preview = page.split('id="config-preview"', 1)[1]
    assert (
        '<tr data-key="limits.processes" class=""><td><code>limits.processes</code></td><td><code>200</code></td><td>profile '
        + profile
        in preview
    )
    assert (
        '<tr data-key="user.from" class=""><td><code>user.from</code></td><td><code>instance</code></td><td>instance'
        in preview
    )
    assert (
        '<tr data-device="eth0" class=""><td>eth0</td><td>nic</td>' in preview
        and "profile default" in preview
    )

    # what the form would make of it, before saving: the profile dropped, its key gone
    form = editor_form(page)
    form["profiles"] = "default"
    answer = text(admin_client.post(reverse("instance-config-preview", args=["lab1", name]), form))
    assert 'data-key="limits.processes"' not in answer and 'data-key="user.from"' in answer
    assert show(lab, name)["profiles"] == ["default", profile]  # a preview changes nothing


def test_limits_memory_and_a_proxy_on_a_running_instance(admin_client, unix_host, lab, instances):
    name = instances.make(lab.d1)
    page = raw(admin_client.get(url(name)))
    form = editor_form(page)
    response = save(
        admin_client,
        name,
        page,
        config=form["config"] + "\nlimits.memory = 128MiB",
        devices="web proxy listen=tcp:127.0.0.1:18999 connect=tcp:127.0.0.1:80",
    )
    assert response.status_code == 302, text(response)[:2000]
    shown = show(lab, name)
    assert shown["config"]["limits.memory"] == "128MiB"
    assert shown["devices"]["web"] == {
        "type": "proxy",
        "listen": "tcp:127.0.0.1:18999",
        "connect": "tcp:127.0.0.1:80",
    }
    entry = AuditEntry.objects.get(action="instance.config")
    assert entry.outcome == "ok" and "limits.memory=128MiB" in entry.target and "device web" in entry.target


def test_an_operator_writes_what_the_policy_allows_and_nothing_else(operator, unix_host, lab, instances):
    name = instances.make(lab.d1)
    page = raw(operator.get(url(name)))
    allowed = save(operator, name, page, config="limits.memory = 96MiB\nuser.note = ok")
    assert allowed.status_code == 302, text(allowed)[:2000]
    assert show(lab, name)["config"]["limits.memory"] == "96MiB"

    page = raw(operator.get(url(name)))
    for changes, refused in (
        (
            {"devices": "web proxy listen=tcp:127.0.0.1:18998 connect=tcp:127.0.0.1:80"},
            "device web: type proxy",
        ),
        (
            {"config": editor_form(page)["config"] + "\nsecurity.privileged = true"},
            "security.privileged needs",
        ),
        ({"profiles": "default, not-allowed"}, "profile not-allowed is not allowed"),
    ):
        response = save(operator, name, page, **changes)
        assert response.status_code == 403 and refused in text(response), changes
    shown = show(lab, name)
    assert "web" not in shown["devices"] and "security.privileged" not in shown["config"]
    assert shown["profiles"] == ["default"]
    assert AuditEntry.objects.filter(action="instance.config", outcome="refused").count() == 3
    # removing an own device is allowed to operators (it only takes away)
    lab.d1.lxc("config", "device", "add", name, "extra", "none")
    removed = operator.post(reverse("instance-device-remove", args=["lab1", name, "extra"]))
    assert removed.status_code == 302 and "extra" not in show(lab, name)["devices"]


def test_viewers_cannot_open_or_use_the_editor(unix_host, lab, instances):
    viewer = logged_in(make_user("cfg-viewer", None))
    name = instances.make(lab.d1, running=False)
    assert viewer.get(url(name)).status_code == 403
    assert viewer.post(url(name), {"config": "user.x = 1"}).status_code == 403
    assert (
        viewer.post(reverse("instance-meta", args=["lab1", name]), {"field": "description"}).status_code
        == 403
    )
    assert "user.x" not in show(lab, name)["config"]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"config": "foo.bar = 1"}, "config-error", "Unknown configuration key: foo.bar"),
        (
            {"config": "limits.memory = lots"},
            "config-error",
            "limits.memory: Invalid config: Invalid value: lots",
        ),
        (
            {"devices": "tty unix-char mode=0600"},
            "devices-error",
            'Device validation failed for "tty": Unix device entry is missing the required "source" or "path"',
        ),
        ({"profiles": "default, no-such-profile"}, "profiles-error", "Profile not found"),
        ({"devices": "lonely"}, "devices-error", "line 1: expected NAME TYPE"),
    ],
)
def test_lxd_refusals_show_next_to_their_field(
    admin_client, unix_host, lab, instances, changes, field, message
):
    name = instances.make(lab.d1, running=False)
    before = show(lab, name)
    response = save(admin_client, name, **changes)
    assert response.status_code == 400
    page = text(response)
    assert f'id="{field}">' in page and message in page.split(f'id="{field}">', 1)[1].split("</p>", 1)[0]
    assert show(lab, name) == before


def test_two_browsers_editing_at_once_the_second_is_refused_with_the_fresh_values(
    admin_client, unix_host, lab, instances
):
    name = instances.make(lab.d1, running=False)
    other = logged_in(make_user("cfg-admin2", "admin"))
    first_page, second_page = raw(admin_client.get(url(name))), raw(other.get(url(name)))
    assert save(admin_client, name, first_page, config="user.who = first").status_code == 302
    late = save(other, name, second_page, config="user.who = second")
    assert late.status_code == 409
    page = raw(late)
    assert "was changed by someone else since you opened this page: nothing was saved" in page
    assert "user.who = first" in editor_form(page)["config"]
    assert "user.who = second" in page.split('id="editor-rejected"', 1)[1]  # what they sent, to copy from
    assert show(lab, name)["config"]["user.who"] == "first"
    # with the fresh values the same change goes through
    assert save(other, name, page, config="user.who = second").status_code == 302
    assert show(lab, name)["config"]["user.who"] == "second"


def test_a_start_meanwhile_is_no_conflict(admin_client, unix_host, lab, instances):
    """Starting rewrites volatile keys (LXD's ETag moves); the person's edit still applies."""
    name = instances.make(lab.d1, running=False)
    page = raw(admin_client.get(url(name)))
    lab.d1.lxc("start", name)
    response = save(admin_client, name, page, config="user.after-start = yes")
    assert response.status_code == 302, text(response)[:2000]
    assert show(lab, name)["config"]["user.after-start"] == "yes"


def test_a_key_that_waits_for_a_restart_says_so(admin_client, unix_host, lab, instances):
    name = instances.make(lab.d1)
    page = raw(admin_client.get(url(name)))
    form = editor_form(page)
    form["config"] += "\nlimits.kernel.nofile = 2048\nlimits.memory = 100MiB"
    preview = text(admin_client.post(reverse("instance-config-preview", args=["lab1", name]), form))
    assert "Takes effect when " + name + " restarts: limits.kernel.nofile." in preview
    response = admin_client.post(url(name), form, follow=True)
    assert "limits.kernel.nofile: takes effect when " + name + " restarts." in text(response)
    # as LXD does: the running container still has the old limit, a restarted one the new
    limits = lab.d1.lxc("exec", name, "--", "grep", "open files", "/proc/1/limits").stdout
    assert "2048" not in limits
    lab.d1.lxc("restart", "--force", name)
    assert "2048" in lab.d1.lxc("exec", name, "--", "grep", "open files", "/proc/1/limits").stdout


def test_removing_a_device_a_profile_gives_is_explained(admin_client, unix_host, lab, instances):
    name = instances.make(lab.d1, running=False)
    response = admin_client.post(reverse("instance-device-remove", args=["lab1", name, "eth0"]))
    assert response.status_code == 409
    assert "eth0 comes from profile default: it cannot be removed from " + name + " alone" in text(response)
    assert "eth0" in show(lab, name)["expanded_devices"]
    missing = admin_client.post(reverse("instance-device-remove", args=["lab1", name, "nope"]))
    assert missing.status_code == 404


def test_secret_values_stay_hidden_from_operators_and_are_kept(operator, unix_host, lab, instances):
    name = instances.make(lab.d1, running=False)
    lab.d1.lxc("config", "set", name, "environment.TOKEN", "s3cret-value")
    page = raw(operator.get(url(name)))
    assert "s3cret-value" not in page and "environment.TOKEN" in page.split('id="editor-kept"', 1)[1]
    assert save(operator, name, page, config="user.other = 1").status_code == 302
    assert show(lab, name)["config"]["environment.TOKEN"] == "s3cret-value"


def test_description_and_user_keys_inline(operator, unix_host, lab, instances):
    name = instances.make(lab.d1, running=False)
    meta = reverse("instance-meta", args=["lab1", name])
    done = operator.post(meta, {"field": "description", "value": "web front", "original": ""})
    assert done.status_code == 302 and lab.d1.admin().instance(name)["description"] == "web front"
    stale = operator.post(meta, {"field": "description", "value": "db", "original": ""})
    assert stale.status_code == 409 and "was changed meanwhile to 'web front'" in text(stale)
    # emptied again (PATCH could not: LXD keeps a description for "")
    assert (
        operator.post(meta, {"field": "description", "value": "", "original": "web front"}).status_code == 302
    )
    assert lab.d1.admin().instance(name)["description"] == ""

    added = operator.post(
        meta, {"field": "user", "key": "owner", "value": "ops", "original": ""}, HTTP_HX_REQUEST="true"
    )
    assert added.status_code == 200 and 'data-key="user.owner"' in text(added)
    assert show(lab, name)["config"]["user.owner"] == "ops"
    race = operator.post(meta, {"field": "user", "key": "user.owner", "value": "dev", "original": ""})
    assert race.status_code == 409 and "user.owner of " + name + " was set to 'ops' meanwhile" in text(race)
    gone = operator.post(
        meta, {"field": "user", "key": "user.owner", "value": "ops", "original": "ops", "remove": "on"}
    )
    assert gone.status_code == 302 and "user.owner" not in show(lab, name)["config"]
    bad = operator.post(meta, {"field": "user", "key": "../x", "value": "1", "original": ""})
    assert bad.status_code == 400 and "is not a user key" in text(bad)
    page = raw(operator.get(reverse("instance-detail", args=["lab1", name])))
    assert 'id="description-form"' in page and 'id="user-key-add"' in page


def test_an_instance_in_another_project_is_edited_there(admin_client, unix_host, lab, made):
    project = made.project(lab.d1, made.name("cfgproj"), "features.images=false", "features.profiles=false")
    name = made.name("cfg")
    lab.d1.lxc("init", "busybox", name, "--project", project)
    page = raw(admin_client.get(url(name, project)))
    assert f'action="/hosts/lab1/instances/{name}/config/?project={project}"' in page
    response = save(admin_client, name, page, project=project, config="user.where = " + project)
    assert response.status_code == 302 and response["Location"].endswith(f"?project={project}")
    assert show(lab, name, project)["config"]["user.where"] == project
    assert admin_client.get(url(name)).status_code == 404  # not in the default project
    missing = admin_client.get(url(name, "no-such-project"))
    assert missing.status_code == 404 and "lab1 has no project no-such-project" in text(missing)
    assert Host.objects.get(name="lab1").name == "lab1"
